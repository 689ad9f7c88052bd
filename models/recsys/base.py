"""Owns the recommender contract: fit(data) -> self, predict(user, item), PredictionImpossible, top-N ranking."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from models.recsys.data import Ratings


class PredictionImpossible(Exception):  # noqa: N818 - the name Surprise users know
    """The model has no basis for this (user, item): unknown id or no neighbours. Callers fall back explicitly."""


class Recommender(ABC):
    """Shared bookkeeping: id maps, per-user rated items, global mean; subclasses fill the math."""

    name = "base"

    def __init__(self) -> None:
        self.data: Ratings | None = None
        self.global_mean = 0.0
        # Per-user rated items/ratings: the exclusion list for top-N and the neighbourhood for content/kNN.
        self.user_items: list[np.ndarray] = []
        self.user_ratings: list[np.ndarray] = []

    def _index(self, data: Ratings) -> None:
        self.data = data
        self.global_mean = float(data.values.mean())
        order = np.argsort(data.users, kind="stable")
        bounds = np.searchsorted(data.users[order], np.arange(data.n_users + 1))
        self.user_items = [data.items[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self.user_ratings = [data.values[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    @abstractmethod
    def fit(self, data: Ratings) -> Recommender: ...

    @abstractmethod
    def predict_inner(self, u: int, i: int) -> float:
        """Estimate for inner ids; raises PredictionImpossible when there is no basis."""

    @abstractmethod
    def scores_for_user(self, u: int) -> np.ndarray:
        """Estimated rating (or score) for every item for inner user u; NaN where impossible."""

    def set_user(self, u: int, items: np.ndarray, ratings: np.ndarray) -> None:
        """Replace (or append, when u == n known users) inner user u's history; subclasses fold them in."""
        if u == len(self.user_items):
            self.user_items.append(items)
            self.user_ratings.append(ratings)
        else:
            self.user_items[u], self.user_ratings[u] = items, ratings

    def inner_user(self, user: str) -> int:
        assert self.data is not None, "fit() first"
        u = self.data.user_index.get(user)
        if u is None or u >= len(self.user_items):
            raise PredictionImpossible(f"unknown user {user!r}")
        return u

    def inner_item(self, item: str) -> int:
        assert self.data is not None, "fit() first"
        i = self.data.item_index.get(item)
        if i is None:
            raise PredictionImpossible(f"unknown item {item!r}")
        return i

    def predict(self, user: str, item: str) -> float:
        """Estimated rating, clipped to the rating scale; PredictionImpossible for unknown ids."""
        assert self.data is not None
        est = self.predict_inner(self.inner_user(user), self.inner_item(item))
        lo, hi = self.data.scale
        return float(min(hi, max(lo, est)))

    def predict_many(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Inner-id batch estimates; impossible pairs get the global mean (evaluation convention, as Surprise)."""
        assert self.data is not None
        out = np.empty(len(users))
        for k, (u, i) in enumerate(zip(users, items, strict=True)):
            try:
                out[k] = self.predict_inner(int(u), int(i))
            except PredictionImpossible:
                out[k] = self.global_mean
        lo, hi = self.data.scale
        return np.clip(out, lo, hi)

    def top_n(self, u: int, n: int, exclude: set[int] | None = None) -> list[tuple[int, float]]:
        """Best n unrated items for inner user u as (inner item, score), skipping `exclude`."""
        scores = self.scores_for_user(u).astype(np.float64, copy=True)
        scores[self.user_items[u]] = np.nan
        if exclude:
            scores[list(exclude)] = np.nan
        valid = np.flatnonzero(~np.isnan(scores))
        if valid.size == 0:
            return []
        take = min(n, valid.size)
        part = valid[np.argpartition(-scores[valid], take - 1)[:take]]
        part = part[np.lexsort((part, -scores[part]))]  # score desc, id asc: deterministic ties
        return [(int(i), float(scores[i])) for i in part]
