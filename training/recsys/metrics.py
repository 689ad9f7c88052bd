"""Owns accuracy and ranking metrics: RMSE/MAE, precision/recall/NDCG@k."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def rmse(est: np.ndarray, true: np.ndarray) -> float:
    return float(np.sqrt(np.mean((est - true) ** 2)))


def mae(est: np.ndarray, true: np.ndarray) -> float:
    return float(np.mean(np.abs(est - true)))


def ranking_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> tuple[float, float, float]:
    """(precision@k, recall@k, NDCG@k) with binary relevance; ranked is best-first."""
    top = list(ranked[:k])
    hits = [1.0 if i in relevant else 0.0 for i in top]
    p = sum(hits) / k
    r = sum(hits) / len(relevant) if relevant else 0.0
    dcg = sum(h / math.log2(pos + 2) for pos, h in enumerate(hits))
    idcg = sum(1.0 / math.log2(pos + 2) for pos in range(min(k, len(relevant))))
    return p, r, (dcg / idcg if idcg > 0 else 0.0)


def per_user_ranking(
    users: np.ndarray, items: np.ndarray, true: np.ndarray, est: np.ndarray, k: int = 10, threshold: float = 4.0
) -> tuple[float, float, float]:
    """Mean P/R/NDCG@k ranking each user's held-out items by estimate (relevant = true rating >= threshold).

    This is the protocol of Surprise's FAQ (rank the test-set predictions), which lets every algorithm be
    scored from the same predictions; users without a relevant held-out item are skipped.
    """
    order = np.lexsort((items, -est, users))
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    ps, rs, ns = [], [], []
    for grp in np.split(order, bounds):
        relevant = set(items[grp][true[grp] >= threshold].tolist())
        if not relevant:
            continue
        p, r, n = ranking_at_k(items[grp].tolist(), relevant, k)
        ps.append(p)
        rs.append(r)
        ns.append(n)
    return float(np.mean(ps)), float(np.mean(rs)), float(np.mean(ns))
