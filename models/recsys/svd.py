"""Owns biased matrix factorisation (r = mu + b_u + b_i + p_u.q_i) fitted by alternating least squares.

ALS instead of Surprise's SGD: each half-step is a batch of small ridge regressions solved with numpy, so fitting
is vectorised (no per-rating Python loop) and folding in a new user is exactly one user half-step. The fit ends
with a user half-step, so a fitted user's factors *are* the fold-in of their ratings: serving can recompute any
user from their current ratings, and a score splits exactly into one contribution per rated item (`explain`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.recsys.base import PredictionImpossible, Recommender
from models.recsys.data import Ratings


class SVD(Recommender):
    """Biased MF. Factor ridge = `reg` x the row's rating count (weighted-lambda ALS, Zhou et al. 2008); the bias
    ridge is a constant `reg_bias`, so an item rated by two people keeps b_i ~ sum/(2 + reg_bias): shrunk to the
    mean instead of topping every list (Koren 2008's shrunk baseline).
    """

    name = "svd"

    def __init__(
        self, n_factors: int = 20, n_epochs: int = 6, reg: float = 0.12, reg_bias: float = 5.0,
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
        # Users last: P is then exactly the fold-in of each user's ratings against the final Q.
        self.P, self.bu = _half_step(by_user, self.Q, self.bi, self.reg, self.reg_bias)
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
        # Only the rated items enter the solve: index them 0..n-1 so the cost is O(n), not O(catalogue).
        n = len(items)
        side = _Side(np.zeros(n, dtype=np.int64), np.arange(n), ratings - self.global_mean, 1, n)
        P, bu = _half_step(side, self.Q[items], self.bi[items], self.reg, self.reg_bias)
        return P[0], float(bu[0])

    def fold_in_item(self, users: np.ndarray, ratings: np.ndarray) -> tuple[np.ndarray, float]:
        """Factors and bias for an item rated by these (inner user, rating) pairs, users fixed: the item half-step
        of the fit for one new item, so an item added at runtime is collaborative before the next refit."""
        n = len(users)
        side = _Side(np.zeros(n, dtype=np.int64), np.arange(n), ratings - self.global_mean, 1, n)
        Q, bi = _half_step(side, self.P[users], self.bu[users], self.reg, self.reg_bias)
        return Q[0], float(bi[0])

    def scores_for_history(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Estimated rating of every item for a user with this history (fold-in; equals the fit for its users)."""
        if len(items) == 0:
            return np.full(len(self.bi), np.nan)
        p, b = self.fold_in(items, ratings)
        return self.global_mean + b + self.bi + self.Q @ p

    def explain(self, items: np.ndarray, ratings: np.ndarray, i: int) -> tuple[float, np.ndarray]:
        """(mu + b_i, per-rated-item contributions) with score = mu + b_i + contributions.sum(), exactly.

        The user's [p, b_u] is A^-1 sum_j x_j (r_j - mu - b_j) with x_j = [q_j, 1]; so [q_i, 1].[p, b_u] is a
        sum over rated items j of ([q_i, 1] A^-1 x_j) (r_j - mu - b_j) (Hu, Koren & Volinsky 2008, section 5).
        """
        k = self.n_factors
        X = np.hstack([self.Q[items], np.ones((len(items), 1))])
        A = X.T @ X
        ridge = np.full(k + 1, self.reg * max(len(items), 1))
        ridge[k] = self.reg_bias
        A[np.arange(k + 1), np.arange(k + 1)] += ridge
        w = X @ np.linalg.solve(A, np.append(self.Q[i], 1.0))
        return float(self.global_mean + self.bi[i]), w * (ratings - self.global_mean - self.bi[items])


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
    iu = np.triu_indices(k + 1)
    # Only the upper triangle of each outer product (symmetric): ~half the columns in the sparse product.
    outer = (X[:, iu[0]] * X[:, iu[1]])
    tri = side.M @ outer
    A = np.empty((side.M.shape[0], k + 1, k + 1))
    A[:, iu[0], iu[1]] = tri
    A[:, iu[1], iu[0]] = tri
    rhs = side.R @ X - side.M @ (X * fb[:, None])
    diag = np.arange(k + 1)
    # Factors: ridge in proportion to the count, so heavy and light raters get comparable shrinkage.
    A[:, diag[:k], diag[:k]] += np.maximum(side.counts, 1)[:, None] * reg
    # Bias: a constant ridge, so rows with few ratings are pulled to the mean (b = sum / (n + reg_bias)).
    A[:, k, k] += reg_bias
    sol = np.linalg.solve(A, rhs[..., None])[..., 0]
    return sol[:, :k], sol[:, k]
