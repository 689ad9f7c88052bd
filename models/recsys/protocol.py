"""Owns the history-length ranking protocol shared by the evaluation CLI and the blend tuning at (re)fit time.

Given a train/test split of ratings, every user is put at random (seeded) in one of four groups: 1, 3 or 10 of
their training ratings are kept (the rest are removed from the training data, so no model ever sees them), or
all are kept ("20+": only users with >= 20 training ratings are scored there). Models fit on the reduced
training set, then rank every catalogue item with >= min_support training ratings that the user had not rated
in the full training data; relevant = the user's held-out ratings >= 4 (explicit view) or any held-out rating
(implicit view). P@k, R@k and NDCG@k are averaged per bucket and over all scored users.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.recsys.data import Ratings

BUCKETS: tuple[str, ...] = ("1", "3", "10", "20+")
KEEP: dict[str, int | None] = {"1": 1, "3": 3, "10": 10, "20+": None}


def bucket_of(n: int) -> str:
    """Serving: the simulated history length nearest (in log scale) to a user's n rated/interacted items."""
    if n <= 1:
        return "1"
    if n <= 5:
        return "3"
    if n <= 14:
        return "10"
    return "20+"


@dataclass
class Split:
    """One ranking split: reduced training ratings plus, per scored user, what to skip and what is relevant."""

    train: Ratings
    train_positions: np.ndarray  # positions (in the parent Ratings) of the reduced training ratings
    users: np.ndarray
    buckets: np.ndarray  # bucket label per scored user
    exclude: list[np.ndarray]  # items rated in the full training data (kept or removed)
    relevant: list[np.ndarray]  # held-out items rated >= threshold
    relevant_any: list[np.ndarray]  # every held-out item (implicit view)
    thin: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def make_split(data: Ratings, train_pos: np.ndarray, test_pos: np.ndarray, seed: int, min_support: int = 10,
               threshold: float = 4.0, max_users: int | None = None) -> Split:
    """Reduce train_pos per the user's group; test_pos gives relevance. max_users caps scored users (scale)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, len(BUCKETS), data.n_users)
    tu = data.users[train_pos]
    order = np.argsort(tu, kind="stable")
    bounds = np.searchsorted(tu[order], np.arange(data.n_users + 1))
    keep = np.ones(len(train_pos), dtype=bool)
    full_hist: list[np.ndarray] = []
    for u in range(data.n_users):
        pos = order[bounds[u]:bounds[u + 1]]
        full_hist.append(data.items[train_pos[pos]])
        n = KEEP[BUCKETS[group[u]]]
        if n is not None:
            keep[rng.permutation(pos)[n:]] = False
    kept = train_pos[keep]
    train = data.subset(kept)
    kept_len = np.bincount(train.users, minlength=data.n_users)
    te_u, te_i, te_r = data.users[test_pos], data.items[test_pos], data.values[test_pos]
    t_order = np.argsort(te_u, kind="stable")
    t_bounds = np.searchsorted(te_u[t_order], np.arange(data.n_users + 1))
    users, buckets, exclude, relevant, rel_any = [], [], [], [], []
    for u in range(data.n_users):
        sel = t_order[t_bounds[u]:t_bounds[u + 1]]
        b = BUCKETS[group[u]]
        if sel.size == 0 or kept_len[u] == 0 or (b == "20+" and kept_len[u] < 20):
            continue
        rel = te_i[sel][te_r[sel] >= threshold]
        if rel.size == 0:
            continue
        users.append(u)
        buckets.append(b)
        exclude.append(full_hist[u])
        relevant.append(rel)
        rel_any.append(te_i[sel])
    idx = np.arange(len(users))
    if max_users is not None and len(users) > max_users:
        idx = np.sort(rng.choice(len(users), max_users, replace=False))
    thin = np.bincount(train.items, minlength=data.n_items) < min_support
    return Split(train, kept, np.array(users, dtype=np.int64)[idx], np.array(buckets)[idx],
                 [exclude[j] for j in idx], [relevant[j] for j in idx], [rel_any[j] for j in idx], thin)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best finite scores, best first, ties by index (deterministic)."""
    s = np.nan_to_num(scores, nan=-np.inf)
    finite = np.flatnonzero(np.isfinite(s))
    if finite.size == 0:
        return finite
    take = min(k, finite.size)
    part = finite[np.argpartition(-s[finite], take - 1)[:take]]
    return part[np.lexsort((part, -s[part]))]


def prn_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> tuple[float, float, float]:
    """(precision@k, recall@k, NDCG@k), binary relevance."""
    hits = np.isin(ranked[:k], relevant).astype(np.float64)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    idcg = disc[: min(k, len(relevant))].sum()
    return float(hits.sum() / k), float(hits.sum() / len(relevant)), float((hits * disc[: len(hits)]).sum() / idcg)


def masked(split: Split, j: int, scores: np.ndarray) -> np.ndarray:
    """Scores for scored user j with the protocol's exclusions (rated before, thin items) set to -inf."""
    s = np.asarray(scores, dtype=np.float64).copy()
    s[split.exclude[j]] = -np.inf
    s[split.thin] = -np.inf
    return s


def evaluate(split: Split, scores_for: Callable[[int], np.ndarray], k: int = 10,
             implicit_view: bool = False) -> dict[str, dict[str, float]]:
    """{bucket or 'all': {p, r, ndcg, users}} for a scorer of inner user ids."""
    per: dict[str, list[tuple[float, float, float]]] = {b: [] for b in (*BUCKETS, "all")}
    rel = split.relevant_any if implicit_view else split.relevant
    for j, u in enumerate(split.users):
        ranked = top_k(masked(split, j, scores_for(int(u))), k)
        m = prn_at_k(ranked, rel[j], k)
        per[str(split.buckets[j])].append(m)
        per["all"].append(m)
    return {b: ({"p": float(np.mean([x[0] for x in v])), "r": float(np.mean([x[1] for x in v])),
                 "ndcg": float(np.mean([x[2] for x in v])), "users": len(v)} if v else {"users": 0})
            for b, v in per.items()}
