"""Owns the cold-start fallback: items ranked by a Bayesian average rating (shrunk towards the global mean)."""

from __future__ import annotations

import numpy as np

from models.recsys.data import Ratings


class Popularity:
    """score_i = (C * m + sum_i) / (C + n_i), C = mean ratings per item: few ratings pull towards mean m."""

    def __init__(self, prior_count: float | None = None) -> None:
        self.prior_count = prior_count
        self.counts = np.zeros(0)
        self.means = np.zeros(0)
        self.scores = np.zeros(0)
        self.order = np.zeros(0, dtype=np.int64)

    def fit(self, data: Ratings) -> Popularity:
        self.counts = np.bincount(data.items, minlength=data.n_items).astype(np.float64)
        sums = np.bincount(data.items, weights=data.values, minlength=data.n_items)
        m = float(data.values.mean())
        c = self.prior_count if self.prior_count is not None else float(self.counts.mean())
        self.means = np.where(self.counts > 0, sums / np.maximum(self.counts, 1), m)
        self.scores = (c * m + sums) / (c + self.counts)
        self.order = np.lexsort((np.arange(data.n_items), -self.scores))
        return self

    def top(self, n: int, exclude: set[int]) -> list[tuple[int, float]]:
        out: list[tuple[int, float]] = []
        for i in self.order:
            if int(i) in exclude:
                continue
            out.append((int(i), float(self.scores[i])))
            if len(out) == n:
                break
        return out
