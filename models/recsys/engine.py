"""Owns serving-side recommendation logic: strategies, cold-start fallback, exclusions, fold-in, reason strings.

Pure Python/numpy: the moderation block list arrives as a callable, so this module stays free of Redis/HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from models.recsys.base import PredictionImpossible, Recommender
from models.recsys.content import ContentTfidf
from models.recsys.data import Item, Ratings, load_items, load_ratings
from models.recsys.knn import UserKNN
from models.recsys.metadata import Coverage, enrich
from models.recsys.popular import Popularity
from models.recsys.svd import SVD

Strategy = Literal["svd", "knn", "content", "hybrid"]
STRATEGIES: tuple[str, ...] = ("svd", "knn", "content", "hybrid")
# Hybrid = weighted sum of per-strategy z-scores; SVD is the most accurate model so it leads.
HYBRID_WEIGHTS = {"svd": 0.5, "knn": 0.3, "content": 0.2}
BlockedFn = Callable[[Sequence[str]], set[str]]


class UnknownItem(KeyError):
    """An item id outside the catalogue."""


@dataclass
class Rec:
    item_id: str
    score: float
    reason: str


@dataclass
class RecResult:
    items: list[Rec]
    strategy: str
    fallback: bool = False
    fallback_reason: str | None = None
    excluded_blocked: int = 0
    extra: dict[str, object] = field(default_factory=dict)


def _no_blocks(ids: Sequence[str]) -> set[str]:
    return set()


class RecEngine:
    """All fitted models over one ratings set and catalogue. Reads and fold-ins share one lock."""

    def __init__(self, ratings: Ratings, catalogue: dict[str, Item], models: dict[str, Recommender],
                 popular: Popularity, coverage: Coverage | None = None, min_support: int = 10) -> None:
        self.ratings, self.catalogue, self.models, self.popular = ratings, catalogue, models, popular
        # Personalised lists skip items with fewer ratings than this: a film rated 5★ by two people gets a
        # large learned bias and would top every list, which is a data artefact, not a recommendation.
        self.min_support = min_support
        self._thin = np.flatnonzero(popular.counts < min_support)
        self.coverage = coverage
        self.lock = threading.RLock()
        svd = models["svd"]
        assert isinstance(svd, SVD)
        qn = np.linalg.norm(svd.Q, axis=1, keepdims=True)
        self._q_unit = svd.Q / np.where(qn > 0, qn, 1.0)  # for "because you rated X" reasons

    @classmethod
    def build(cls, data_dir: Path, svd: SVD | None = None, knn: UserKNN | None = None,
              content_k: int = 30, min_support: int = 10) -> RecEngine:
        """Load ml-100k (+ metadata when present) from data_dir (var/data layout) and fit every model."""
        ratings = load_ratings(data_dir / "ml-100k")
        catalogue = load_items(data_dir / "ml-100k")
        coverage = enrich(catalogue, data_dir / "film-metadata" / "movies.db", data_dir / "plots" / "movies.csv")
        models: dict[str, Recommender] = {
            "svd": (svd or SVD()).fit(ratings),
            "knn": (knn or UserKNN()).fit(ratings),
            "content": ContentTfidf(catalogue, k=content_k).fit(ratings),
        }
        return cls(ratings, catalogue, models, Popularity().fit(ratings), coverage, min_support)

    # ---- lookups -------------------------------------------------------------------------------------
    def item(self, item_id: str) -> Item:
        if item_id not in self.ratings.item_index:
            raise UnknownItem(item_id)
        return self.catalogue.get(item_id) or Item(item_id, item_id)

    def _title(self, i: int) -> str:
        return self.item(self.ratings.item_ids[i]).title

    def known_user(self, user_id: str) -> bool:
        u = self.ratings.user_index.get(user_id)
        return u is not None and len(self.models["svd"].user_items[u]) > 0

    def history(self, user_id: str) -> list[tuple[str, float]]:
        u = self.ratings.user_index.get(user_id)
        if u is None:
            return []
        m = self.models["svd"]
        return [(self.ratings.item_ids[i], float(r)) for i, r in zip(m.user_items[u], m.user_ratings[u],
                                                                    strict=True)]

    # ---- recommendations -----------------------------------------------------------------------------
    def recommend(self, user_id: str, k: int, strategy: str = "svd", blocked: BlockedFn = _no_blocks,
                  format_id: Callable[[str], str] = str) -> RecResult:
        """Top-k unrated, unblocked items; unknown users get the popularity fallback (flagged)."""
        with self.lock:
            if not self.known_user(user_id):
                return self._popular(k, set(), blocked, format_id, strategy, "cold_start")
            u = self.ratings.user_index[user_id]
            scores = self._scores(u, strategy)
            scores[self._thin] = np.nan
            seen = set(int(i) for i in self.models["svd"].user_items[u])
            ranked, n_blocked = self._filter(scores, k, seen, blocked, format_id)
            if not ranked:
                return self._popular(k, seen, blocked, format_id, strategy, "no_candidates")
            recs = [Rec(self.ratings.item_ids[i], s, self._reason(u, i, strategy)) for i, s in ranked]
            return RecResult(recs, strategy, excluded_blocked=n_blocked)

    def _scores(self, u: int, strategy: str) -> np.ndarray:
        if strategy != "hybrid":
            return self.models[strategy].scores_for_user(u)
        return hybrid_scores(self.models, u)

    def _filter(self, scores: np.ndarray, k: int, seen: set[int], blocked: BlockedFn,
                format_id: Callable[[str], str]) -> tuple[list[tuple[int, float]], int]:
        """Best k by score after removing seen and moderation-blocked items (asks the block list in batches)."""
        s = scores.astype(np.float64, copy=True)
        if seen:
            s[list(seen)] = np.nan
        valid = np.flatnonzero(~np.isnan(s))
        order = valid[np.lexsort((valid, -s[valid]))]
        out: list[tuple[int, float]] = []
        n_blocked = 0
        start, batch = 0, max(2 * k, 20)
        while len(out) < k and start < len(order):
            chunk = order[start:start + batch]
            ext = [format_id(self.ratings.item_ids[i]) for i in chunk]
            bad = blocked(ext)
            for i, e in zip(chunk, ext, strict=True):
                if e in bad:
                    n_blocked += 1
                elif len(out) < k:
                    out.append((int(i), float(s[i])))
            start += batch
            batch *= 2  # many blocked items in a row: widen the window instead of many tiny round trips
        return out, n_blocked

    def _popular(self, k: int, seen: set[int], blocked: BlockedFn, format_id: Callable[[str], str],
                 strategy: str, why: str) -> RecResult:
        ranked, n_blocked = self._filter(self.popular.scores, k, seen, blocked, format_id)
        recs = [Rec(self.ratings.item_ids[i], s,
                    f"popular: {int(self.popular.counts[i])} ratings, "
                    f"{self.popular.means[i]:.1f}★ average") for i, s in ranked]
        return RecResult(recs, strategy, fallback=True, fallback_reason=why, excluded_blocked=n_blocked)

    def similar(self, item_id: str, k: int, blocked: BlockedFn = _no_blocks,
                format_id: Callable[[str], str] = str) -> RecResult:
        self.item(item_id)
        content = self.models["content"]
        assert isinstance(content, ContentTfidf)
        i = self.ratings.item_index[item_id]
        with self.lock:
            sims = content.item_sims(i).astype(np.float64, copy=True)
            sims[sims <= 0] = np.nan
            ranked, n_blocked = self._filter(sims, k, {i}, blocked, format_id)
        title = self._title(i)
        recs = []
        for j, s in ranked:
            shared = content.shared_features(i, j)
            why = f"similar {_join(shared)} to {title}" if shared else f"similar description to {title}"
            recs.append(Rec(self.ratings.item_ids[j], s, why))
        return RecResult(recs, "content", excluded_blocked=n_blocked)

    def predict(self, user_id: str, item_id: str, strategy: str = "svd") -> tuple[float, bool]:
        """(estimate, fallback): PredictionImpossible falls back to the item's Bayesian average."""
        self.item(item_id)
        with self.lock:
            try:
                if not self.known_user(user_id):
                    raise PredictionImpossible(f"unknown user {user_id!r}")
                return self.models["svd" if strategy == "hybrid" else strategy].predict(user_id, item_id), False
            except PredictionImpossible:
                return float(self.popular.scores[self.ratings.item_index[item_id]]), True

    # ---- fold-in ------------------------------------------------------------------------------------
    def add_ratings(self, user_id: str, new: Sequence[tuple[str, float]]) -> int:
        """Merge ratings into the user's history and refresh their factors/similarities (no retrain)."""
        for item_id, _ in new:
            self.item(item_id)
        with self.lock:
            merged = dict(self.history(user_id))
            merged.update({i: float(r) for i, r in new})
            items = np.array([self.ratings.item_index[i] for i in merged], dtype=np.int64)
            vals = np.array(list(merged.values()), dtype=np.float64)
            u = self.ratings.user_index.get(user_id)
            if u is None:
                u = len(self.ratings.user_ids)
                self.ratings.user_ids.append(user_id)
                self.ratings.user_index[user_id] = u
            for m in self.models.values():
                m.set_user(u, items, vals)
            return len(merged)

    # ---- reasons ------------------------------------------------------------------------------------
    def _reason(self, u: int, i: int, strategy: str) -> str:
        if strategy == "hybrid":
            strategy = "svd"  # the MF neighbour-in-factor-space reason explains the leading component best
        if strategy == "knn":
            knn = self.models["knn"]
            assert isinstance(knn, UserKNN)
            n, avg = knn.neighbour_support(u, i)
            return f"{n} users with tastes like yours rated it {avg:.1f}★ on average".replace(
                "1 users", "1 user")
        items, ratings = self.models["svd"].user_items[u], self.models["svd"].user_ratings[u]
        liked = items[ratings >= max(4.0, float(ratings.max()) - 0.5)] if len(ratings) else items
        if len(liked) == 0:
            return "matches your ratings"
        if strategy == "content":
            content = self.models["content"]
            assert isinstance(content, ContentTfidf)
            j = int(liked[np.argmax(content.item_sims(i)[liked])])
            shared = content.shared_features(i, j)
            what = f"similar {_join(shared)} to" if shared else "similar to"
            return f"{what} {self._title(j)}, which you rated {self._rating(u, j):g}★"
        j = int(liked[np.argmax(self._q_unit[liked] @ self._q_unit[i])])
        return f"because you rated {self._title(j)} {self._rating(u, j):g}★"

    def _rating(self, u: int, j: int) -> float:
        m = self.models["svd"]
        return float(m.user_ratings[u][m.user_items[u] == j][0])


def hybrid_scores(models: dict[str, Recommender], u: int) -> np.ndarray:
    """Weighted sum of per-model z-scores (weights fixed a priori, not tuned on the evaluation fold)."""
    total: np.ndarray | None = None
    for name, w in HYBRID_WEIGHTS.items():
        s = models[name].scores_for_user(u)
        ok = ~np.isnan(s)
        z = np.zeros_like(s)
        if ok.sum() > 1 and s[ok].std() > 0:
            z[ok] = (s[ok] - s[ok].mean()) / s[ok].std()
        total = w * z if total is None else total + w * z
    assert total is not None
    return total


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
