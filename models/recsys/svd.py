"""Owns biased matrix factorisation (r = mu + b_u + b_i + p_u.q_i) fitted by alternating least squares.

ALS instead of Surprise's SGD: each half-step is a batch of small ridge regressions solved with numpy, so fitting
is vectorised (no per-rating Python loop) and folding in a new user is exactly one user half-step.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.recsys.base import PredictionImpossible, Recommender
from models.recsys.data import Ratings


class SVD(Recommender):
    """Biased MF; `reg` is scaled by each row's rating count (weighted-lambda ALS, Zhou et al. 2008)."""

    name = "svd"

    def __init__(
        self, n_factors: int = 20, n_epochs: int = 8, reg: float = 0.12, reg_bias: float = 0.05,
        init_std: float = 0.1, seed: int = 0,
    ) -> None:
        super().__init__()
        self.n_factors, self.n_epochs, self.reg, self.reg_bias = n_factors, n_epochs, reg, reg_bias
        self.init_std, self.seed = init_std, seed
        self.P = np.zeros((0, n_factors))
        self.Q = np.zeros((0, n_factors))
        self.bu = np.zeros(0)
        self.bi = np.zeros(0)

    def fit(self, data: Ratings) -> SVD:
        self._index(data)
        rng = np.random.default_rng(self.seed)
        k = self.n_factors
        self.P = rng.normal(0, self.init_std, (data.n_users, k))
        self.Q = rng.normal(0, self.init_std, (data.n_items, k))
        self.bu = np.zeros(data.n_users)
        self.bi = np.zeros(data.n_items)
        r = data.values - self.global_mean
        by_user = _Side(data.users, data.items, r, data.n_users, data.n_items)
        by_item = _Side(data.items, data.users, r, data.n_items, data.n_users)
        for _ in range(self.n_epochs):
            self.P, self.bu = _half_step(by_user, self.Q, self.bi, self.reg, self.reg_bias)
            self.Q, self.bi = _half_step(by_item, self.P, self.bu, self.reg, self.reg_bias)
        return self

    def predict_inner(self, u: int, i: int) -> float:
        if u >= len(self.bu) or i >= len(self.bi):
            raise PredictionImpossible("unknown id")
        return float(self.global_mean + self.bu[u] + self.bi[i] + self.P[u] @ self.Q[i])

    def predict_many(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        assert self.data is not None
        est = self.global_mean + self.bu[users] + self.bi[items] + np.einsum("ij,ij->i", self.P[users], self.Q[items])
        return np.clip(est, *self.data.scale)

    def scores_for_user(self, u: int) -> np.ndarray:
        return self.global_mean + self.bu[u] + self.bi + self.Q @ self.P[u]

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> tuple[np.ndarray, float]:
        """Factors and bias for a user with these (inner item, rating) pairs, items fixed: no retrain."""
        side = _Side(np.zeros(len(items), dtype=np.int64), items, ratings - self.global_mean, 1, len(self.bi))
        P, bu = _half_step(side, self.Q, self.bi, self.reg, self.reg_bias)
        return P[0], float(bu[0])

    def set_user(self, u: int, items: np.ndarray, ratings: np.ndarray) -> None:
        """Install folded-in factors for inner user u (u == n_users appends a new user)."""
        super().set_user(u, items, ratings)
        p, b = self.fold_in(items, ratings)
        if u == len(self.bu):
            self.P = np.vstack([self.P, p])
            self.bu = np.append(self.bu, b)
        else:
            self.P[u], self.bu[u] = p, b


class _Side:
    """Sparse incidence (rows x others) of one side's ratings, built once per fit.

    Row Gram matrices are sums of per-*other* outer products, so A = M @ vec(x x^T) is one sparse-dense
    product: no per-rating outer products and no Python loop over rows.
    """

    def __init__(self, rows: np.ndarray, others: np.ndarray, r: np.ndarray, n_rows: int, n_others: int) -> None:
        shape = (n_rows, n_others)
        self.M = sp.csr_matrix((np.ones(len(rows)), (rows, others)), shape=shape)
        self.R = sp.csr_matrix((r, (rows, others)), shape=shape)
        self.counts = np.asarray(self.M.sum(axis=1)).ravel()


def _half_step(
    side: _Side, F: np.ndarray, fb: np.ndarray, reg: float, reg_bias: float
) -> tuple[np.ndarray, np.ndarray]:
    """Solve every row's ridge regression [x, b] from r - other_bias ~ [F_other, 1] . [x, b]."""
    n_others, k = F.shape
    X = np.empty((n_others, k + 1))
    X[:, :k] = F
    X[:, k] = 1.0
    A = (side.M @ np.einsum("ni,nj->nij", X, X).reshape(n_others, -1)).reshape(-1, k + 1, k + 1)
    rhs = side.R @ X - side.M @ (X * fb[:, None])
    ridge = np.full(k + 1, reg)
    ridge[k] = reg_bias
    # Regularise in proportion to the count so heavy and light raters get comparable shrinkage.
    A[:, np.arange(k + 1), np.arange(k + 1)] += np.maximum(side.counts, 1)[:, None] * ridge
    sol = np.linalg.solve(A, rhs[..., None])[..., 0]
    return sol[:, :k], sol[:, k]
