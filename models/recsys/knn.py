"""Owns user-based collaborative filtering: mean-centred Pearson, significance shrinkage, sparse neighbour lists.

Similarities are computed block by block from sparse products and only each user's `neighbours` most similar
users (positive similarity) are kept, as a CSR matrix: memory is users x neighbours, not users x users, so the
same code fits 50k users (bench/bench_scale.py). A user whose ratings changed since the fit gets a live row
(four sparse mat-vecs against the fitted users), so serving never mutates the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.recsys.base import PredictionImpossible, Recommender
from models.recsys.data import Ratings


@dataclass
class KnnEvidence:
    """What a kNN list score for one item was computed from (for the reason text)."""

    n_neighbours: int
    mean_rating: float
    user_mean: float


class UserKNN(Recommender):
    """r(u,i) = mean_u + sum_v s(u,v) (r(v,i) - mean_v) / sum_v s(u,v) over the k most similar raters of i.

    s(u,v) is Pearson over co-rated items (each user centred on their own mean), times n/(n + shrinkage)
    for n co-rated items, so a correlation from three shared films does not outrank one from fifty.
    """

    name = "knn"

    def __init__(self, k: int = 40, shrinkage: float = 100.0, min_k: int = 1, candidates: int = 150,
                 rank_shrinkage: float = 1.0, neighbours: int = 400, block_cells: int = 20_000_000) -> None:
        super().__init__()
        self.k, self.shrinkage, self.min_k = k, shrinkage, min_k
        # Whole-catalogue ranking looks only at this many most similar users (keeps it at a few ms) and adds
        # rank_shrinkage to the weight sum, pulling items backed by little similarity towards the user's mean.
        # Without it, a film one weak neighbour rated 5 tops the list (catalogue P@10 0.081 -> 0.120 on fold 0).
        self.candidates, self.rank_shrinkage = candidates, rank_shrinkage
        self.neighbours, self.block_cells = neighbours, block_cells
        self.means = np.zeros(0)
        self.Rc = sp.csr_matrix((0, 0))  # centred ratings, users x items
        self.M = sp.csr_matrix((0, 0))  # rated mask
        self.Rc_sq = sp.csr_matrix((0, 0))
        self.Rc_csc = sp.csc_matrix((0, 0))
        self.nbr = sp.csr_matrix((0, 0))  # top-`neighbours` positive similarities per user

    def fit(self, data: Ratings) -> UserKNN:
        self._index(data)
        n_u, n_i = data.n_users, data.n_items
        counts = np.bincount(data.users, minlength=n_u)
        sums = np.bincount(data.users, weights=data.values, minlength=n_u)
        self.means = np.where(counts > 0, sums / np.maximum(counts, 1), self.global_mean)
        dev = data.values - self.means[data.users]
        self.Rc = sp.csr_matrix((dev, (data.users, data.items)), shape=(n_u, n_i))
        self.M = sp.csr_matrix((np.ones(len(data)), (data.users, data.items)), shape=(n_u, n_i))
        self.Rc.sort_indices()
        self.M.sort_indices()
        self.Rc_sq = self.Rc.multiply(self.Rc).tocsr()
        self.Rc_csc = self.Rc.tocsc()
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        step = max(1, self.block_cells // max(n_u, 1))
        RcT, MT, SqT = self.Rc.T.tocsc(), self.M.T.tocsc(), self.Rc_sq.T.tocsc()
        for a in range(0, n_u, step):
            b = min(n_u, a + step)
            num = (self.Rc[a:b] @ RcT).toarray()
            sq_a = (self.Rc_sq[a:b] @ MT).toarray()
            sq_b = (self.M[a:b] @ SqT).toarray()
            n_common = (self.M[a:b] @ MT).toarray()
            s = self._combine(num, sq_a, sq_b, n_common)
            s[np.arange(b - a), np.arange(a, b)] = 0.0
            r, c, v = self._top(s)
            rows.append(r + a)
            cols.append(c)
            vals.append(v)
        self.nbr = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                 shape=(n_u, n_u))
        return self

    def _combine(self, num: np.ndarray, sq_a: np.ndarray, sq_b: np.ndarray, n_common: np.ndarray) -> np.ndarray:
        den = np.sqrt(sq_a * sq_b)
        with np.errstate(divide="ignore", invalid="ignore"):
            pearson = np.where(den > 0, num / den, 0.0)
        return pearson * n_common / (n_common + self.shrinkage)

    def _top(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, col, sim) of each row's `neighbours` largest positive similarities."""
        keep = min(self.neighbours, s.shape[1])
        idx = np.argpartition(-s, keep - 1, axis=1)[:, :keep] if keep < s.shape[1] else np.tile(
            np.arange(s.shape[1]), (s.shape[0], 1))
        v = np.take_along_axis(s, idx, axis=1)
        r = np.repeat(np.arange(s.shape[0]), idx.shape[1]).reshape(idx.shape)
        pos = v > 0
        return r[pos], idx[pos], v[pos]

    @property
    def sim(self) -> sp.csr_matrix:
        """The kept neighbour similarities (users x users, sparse)."""
        return self.nbr

    # ---- rating prediction -------------------------------------------------------------------------
    def predict_inner(self, u: int, i: int) -> float:
        if u >= self.nbr.shape[0] or i >= self.M.shape[1]:
            raise PredictionImpossible("unknown id")
        return float(self._predict_group(np.array([u]), i)[0])

    def _predict_group(self, us: np.ndarray, i: int) -> np.ndarray:
        col = self.Rc_csc
        raters = col.indices[col.indptr[i]:col.indptr[i + 1]]
        dev = col.data[col.indptr[i]:col.indptr[i + 1]]
        means = self.means[us]
        if raters.size == 0:
            return means
        s = self.nbr[us][:, raters].toarray()
        if s.shape[1] > self.k:
            top = np.argpartition(-s, self.k - 1, axis=1)[:, : self.k]
            s = np.take_along_axis(s, top, axis=1)
            d = dev[top]
        else:
            d = np.broadcast_to(dev, s.shape)
        n_pos = (s > 0).sum(axis=1)
        wsum = s.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            est = means + np.where(wsum > 0, (s * d).sum(axis=1) / wsum, 0.0)
        # Too few neighbours: the user's mean is the honest estimate (Surprise's min_k behaviour).
        return np.where(n_pos >= self.min_k, est, means)

    def predict_many(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        assert self.data is not None
        out = np.empty(len(users))
        order = np.argsort(items, kind="stable")
        bounds = np.flatnonzero(np.diff(items[order])) + 1
        for grp in np.split(order, bounds):
            if grp.size:
                out[grp] = self._predict_group(users[grp], int(items[grp[0]]))
        return np.clip(out, *self.data.scale)

    # ---- list ranking --------------------------------------------------------------------------------
    def live_row(self, items: np.ndarray, ratings: np.ndarray, exclude: int | None = None) -> np.ndarray:
        """Similarity of a user with this history to every fitted user (the fit's formula, dense vector)."""
        n_i = self.M.shape[1]
        mean = float(ratings.mean())
        x = np.zeros(n_i)
        x[items] = ratings - mean
        m = np.zeros(n_i)
        m[items] = 1.0
        num = self.Rc @ x
        sq_a = self.M @ (x * x)
        sq_b = self.Rc_sq @ m
        n_common = self.M @ m
        row = self._combine(num, sq_a, sq_b, n_common)
        if exclude is not None:
            row[exclude] = 0.0
        return row

    def _neighbour_row(self, u: int | None, items: np.ndarray, ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(neighbour ids, sims) best first: the fitted list when the history is the fitted one, else live."""
        if u is not None and u < self.nbr.shape[0] and _same(self.user_items[u], self.user_ratings[u], items, ratings):
            a, b = self.nbr.indptr[u], self.nbr.indptr[u + 1]
            ids, sims = self.nbr.indices[a:b], self.nbr.data[a:b]
        else:
            row = self.live_row(items, ratings, u)
            ids = np.flatnonzero(row > 0)
            sims = row[ids]
        order = np.lexsort((ids, -sims))[: self.candidates]
        return ids[order], sims[order]

    def _rank(self, cand: np.ndarray, sw: np.ndarray, mean: float) -> tuple[np.ndarray, np.ndarray]:
        """(list estimate per item, whether any neighbour rated it). Sparse throughout: the cost follows the
        candidates' ratings, not candidates x catalogue (dense, 150 x 20k per request at the scale bench)."""
        m = sp.coo_matrix(self.M[cand])
        # Candidates are sorted by similarity, so an item's k nearest raters are its first k raters in row order:
        # the rank of an entry within its column (by row) replaces a per-item top-k selection.
        order = np.lexsort((m.row, m.col))
        rows, cols = m.row[order], m.col[order]
        starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
        rank = np.arange(len(cols)) - np.repeat(starts, np.diff(np.r_[starts, len(cols)]))
        kept = rank < self.k
        keep = sp.csr_matrix((np.ones(int(kept.sum())), (rows[kept], cols[kept])), shape=m.shape)
        wsum = keep.T @ sw
        num = sp.csr_matrix(keep.multiply(self.Rc[cand])).T @ sw
        denom = wsum + self.rank_shrinkage
        est = mean + np.divide(num, denom, out=np.zeros_like(num), where=denom > 0)
        return est, np.bincount(cols[kept], minlength=m.shape[1]) > 0

    def scores_for_history(self, items: np.ndarray, ratings: np.ndarray, u: int | None = None) -> np.ndarray:
        """List scores; NaN for items no similar user rated. All NaN when the user has no similar user at all
        (one rating, or all ratings equal: Pearson is undefined), which the engine reports as a fallback."""
        n_i = self.M.shape[1]
        if len(items) == 0:
            return np.full(n_i, np.nan)
        cand, sw = self._neighbour_row(u, items, ratings)
        if cand.size == 0:
            return np.full(n_i, np.nan)
        est, rated = self._rank(cand, sw, float(ratings.mean()))
        return np.where(rated, est, np.nan)

    def scores_for_user(self, u: int) -> np.ndarray:
        return self.scores_for_history(self.user_items[u], self.user_ratings[u], u)

    def evidence(self, items: np.ndarray, ratings: np.ndarray, i: int, u: int | None = None) -> KnnEvidence:
        """The neighbours that entered item i's list score, and their mean rating of i."""
        mean = float(ratings.mean()) if len(ratings) else self.global_mean
        cand, sw = self._neighbour_row(u, items, ratings) if len(items) else (np.zeros(0, int), np.zeros(0))
        if cand.size == 0:
            return KnnEvidence(0, 0.0, mean)
        col = np.asarray(self.M[cand, i].todense()).ravel()
        used = cand[(col > 0) & (np.cumsum(col) <= self.k)]
        if used.size == 0:
            return KnnEvidence(0, 0.0, mean)
        r = np.asarray(self.Rc[used, i].todense()).ravel() + self.means[used]
        return KnnEvidence(int(used.size), float(r.mean()), mean)


def _same(a_items: np.ndarray, a_r: np.ndarray, b_items: np.ndarray, b_r: np.ndarray) -> bool:
    if len(a_items) != len(b_items):
        return False
    oa, ob = np.argsort(a_items), np.argsort(b_items)
    return bool(np.array_equal(a_items[oa], b_items[ob]) and np.allclose(a_r[oa], b_r[ob]))


def predict_history(knn: UserKNN, items: np.ndarray, ratings: np.ndarray, i: int, u: int | None = None) -> float:
    """Rating estimate for item i for a user with this history (fitted neighbour list when unchanged, else live)."""
    mean = float(ratings.mean()) if len(ratings) else knn.global_mean
    if len(items) == 0:
        return mean
    if u is not None and u < knn.nbr.shape[0] and _same(knn.user_items[u], knn.user_ratings[u], items, ratings):
        row = knn.nbr[u].toarray().ravel()
    else:
        row = np.maximum(knn.live_row(items, ratings, u), 0.0)
    col = knn.Rc_csc
    raters = col.indices[col.indptr[i]:col.indptr[i + 1]]
    dev = col.data[col.indptr[i]:col.indptr[i + 1]]
    s = row[raters]
    top = np.argsort(-s, kind="stable")[: knn.k]
    s, d = s[top], dev[top]
    pos = s > 0
    if pos.sum() < knn.min_k:
        return mean
    return float(mean + (s[pos] * d[pos]).sum() / s[pos].sum())
