"""Owns the implicit-feedback model: the `implicit` library's ALS (Hu, Koren & Volinsky 2008) on interaction weights.

Input is a users x items confidence matrix: every rating counts as one interaction (ml-100k read as implicit
data), and events posted to the companion (play, watch time, click; skip subtracts) add to it. A user is always
recomputed from their current interactions (`recalculate_user`, one least-squares solve), so serving never
mutates the model, and `explain` splits a score into per-item contributions exactly (section 5 of the paper).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.recsys.base import PredictionImpossible, Recommender
from models.recsys.data import Ratings

# Event -> confidence added to (user, item). A full play counts like a rating; watch time counts per 10 minutes
# (capped at 3 plays); a click is half an interest signal; a skip takes one back (weights are clipped at 0).
EVENT_WEIGHTS: dict[str, float] = {"play": 1.0, "click": 0.5, "skip": -1.0}
WATCH_SECONDS_PER_PLAY = 600.0


def event_weight(kind: str, seconds: float | None = None) -> float:
    if kind == "watch":
        return min(3.0, max(0.0, seconds or 0.0) / WATCH_SECONDS_PER_PLAY)
    return EVENT_WEIGHTS[kind]


def interactions(data: Ratings, extra: sp.csr_matrix | None = None) -> sp.csr_matrix:
    """Confidence matrix: 1 per rated (user, item), plus event weights (clipped at 0: a skip cancels a click)."""
    c = sp.csr_matrix((np.ones(len(data), dtype=np.float32), (data.users, data.items)),
                      shape=(data.n_users, data.n_items))
    if extra is not None:
        c = sp.csr_matrix(c + extra)
        c.data = np.maximum(c.data, 0)
        c.eliminate_zeros()
    return c


def _row(items: np.ndarray, weights: np.ndarray, n_items: int) -> sp.csr_matrix:
    keep = weights > 0
    return sp.csr_matrix((weights[keep].astype(np.float32), (np.zeros(int(keep.sum()), dtype=np.int64),
                                                             items[keep])), shape=(1, n_items))


class ImplicitALS(Recommender):
    """Scores are preference estimates (not ratings): only lists and explanations use them, never RMSE."""

    name = "implicit"

    def __init__(self, factors: int = 16, regularization: float = 0.05, alpha: float = 1.0, iterations: int = 15,
                 seed: int = 0) -> None:
        super().__init__()
        self.factors, self.regularization, self.alpha, self.iterations = factors, regularization, alpha, iterations
        self.seed = seed
        self.model: Any = None
        self.n_items = 0

    def _new_model(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        # One native thread: deterministic for a seed, and the companion scales by processes. BLAS threads are
        # the caller's choice (the companion and CLIs limit them process-wide; a `with threadpool_limits` here
        # would restore the previous limits on exit and undo that).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # implicit's BLAS-threads advice
            return AlternatingLeastSquares(factors=self.factors, regularization=self.regularization,
                                           alpha=self.alpha, iterations=self.iterations, random_state=self.seed,
                                           num_threads=1)

    def fit(self, data: Ratings, confidence: sp.csr_matrix | None = None) -> ImplicitALS:
        self._index(data)
        c = confidence if confidence is not None else interactions(data)
        self.n_items = c.shape[1]
        self.model = self._new_model()
        self.model.fit(sp.csr_matrix(c, dtype=np.float32), show_progress=False)
        return self

    def user_factor(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.recalculate_user(0, _row(items, weights, self.n_items)), dtype=np.float64)

    def scores_for_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Preference of every item for a user with these interaction weights (NaN without any)."""
        if not np.any(weights > 0):
            return np.full(self.n_items, np.nan)
        return np.asarray(self.model.item_factors, dtype=np.float64) @ self.user_factor(items, weights)

    def scores_for_user(self, u: int) -> np.ndarray:
        return np.asarray(self.model.item_factors, dtype=np.float64) @ np.asarray(self.model.user_factors[u],
                                                                                   dtype=np.float64)

    def explainer(self, items: np.ndarray, weights: np.ndarray) -> Callable[[int, int], list[tuple[int, float]]]:
        """f(i, n): the n interacted items contributing most to item i's score (Cholesky factored once per user)."""
        row = _row(items, weights, self.n_items)
        cache: dict[str, Any] = {}

        def explain(i: int, n: int = 3) -> list[tuple[int, float]]:
            _, top, cache["w"] = self.model.explain(0, row, i, user_weights=cache.get("w"), N=n)
            return [(int(j), float(c)) for j, c in top]

        return explain

    def predict_inner(self, u: int, i: int) -> float:
        raise PredictionImpossible("the implicit model ranks; it does not estimate ratings")
