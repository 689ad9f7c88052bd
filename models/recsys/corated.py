"""Owns "people who watched your films also rated": item co-rating counts summed over the user's rated items.

score_i = sum over the user's rated items j of #users who rated both j and i (any rating value: on ml-100k fold 0
this beats the liked-only count at 1 and 3 ratings, 0.187/0.216 vs 0.161/0.194 NDCG@10, training/recsys/
probe_time.py). Computed per request as R^T (R x) with the sparse user-item matrix R, so nothing items x items is
stored and a catalogue of any size costs two sparse products.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.recsys.data import Ratings


class CoRated:
    def __init__(self) -> None:
        self.r = sp.csr_matrix((0, 0))
        self.rt = sp.csr_matrix((0, 0))
        self.user_items: list[np.ndarray] = []

    def fit(self, data: Ratings) -> CoRated:
        self.r = sp.csr_matrix((np.ones(len(data), dtype=np.float32), (data.users, data.items)),
                               shape=(data.n_users, data.n_items))
        self.r.sum_duplicates()
        self.r.data[:] = 1.0
        self.rt = sp.csr_matrix(self.r.T)
        self.user_items = [self.r.indices[a:b].copy() for a, b in zip(self.r.indptr[:-1], self.r.indptr[1:],
                                                                      strict=True)]
        return self

    def scores_for_history(self, items: np.ndarray) -> np.ndarray:
        """Co-rating counts for every fitted item; NaN everywhere for an empty history."""
        n = self.r.shape[1]
        items = np.asarray(items, dtype=np.int64)
        items = items[(items >= 0) & (items < n)]
        if not len(items):
            return np.full(n, np.nan)
        x = np.zeros(n, dtype=np.float32)
        x[items] = 1.0
        return np.asarray(self.rt @ (self.r @ x), dtype=np.float64).ravel()

    def scores_for_user(self, u: int) -> np.ndarray:
        return self.scores_for_history(self.user_items[u])

    def evidence(self, items: np.ndarray, i: int) -> tuple[int, int]:
        """(the user's item j sharing the most raters with i, how many raters i and j share)."""
        items = np.asarray(items, dtype=np.int64)
        items = items[items < self.r.shape[1]]
        if not len(items) or i >= self.r.shape[1]:
            return -1, 0
        both = np.asarray((self.rt[items] @ self.rt[i].T).todense()).ravel()
        k = int(np.argmax(both))
        return int(items[k]), int(both[k])
