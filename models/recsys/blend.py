"""Owns the hybrid ranking: per-history-bucket weighted sums of component z-scores, weights tuned on validation.

Components: popularity (most liked), implicit ALS, SVD, user kNN, content, trending (most liked around the user's
rating times, models.recsys.trending) and co-rated (models.recsys.corated). A bucket's weights are found by
coordinate ascent on NDCG@10 over a validation split of the *training* data (models.recsys.protocol), starting
from popularity alone, so a bucket where nothing beats popularity on validation keeps serving popularity: that is
the "popularity -> hybrid" switch, chosen per history length rather than fixed a priori.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.recsys.protocol import BUCKETS, Split

COMPONENTS: tuple[str, ...] = ("popularity", "implicit", "svd", "knn", "content", "trending", "corated")
Weights = dict[str, dict[str, float]]
GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)
# Used when no validation tuning ran (tests with tune=False): measured-sensible, implicit-led; at 1 and 3 ratings
# trending + co-rated lead (training/recsys/probe_time.py, fold 0: 0.221 vs 0.176 most-liked at 1 rating).
DEFAULT_WEIGHTS: Weights = {
    "1": {"popularity": 0.5, "trending": 1.0, "corated": 1.0, "implicit": 0.25},
    "3": {"popularity": 0.5, "implicit": 1.0, "knn": 0.25, "trending": 0.5, "corated": 0.5},
    "10": {"popularity": 0.25, "implicit": 1.0, "knn": 0.5},
    "20+": {"popularity": 0.25, "implicit": 1.0, "knn": 0.5, "svd": 0.25},
}


def zscore(s: np.ndarray) -> np.ndarray:
    """Row-wise z-scores over finite entries; non-finite entries get 0 (no evidence = average)."""
    s = np.asarray(s, dtype=np.float64)
    ok = np.isfinite(s)
    out = np.zeros_like(s)
    if s.ndim == 1:
        if ok.sum() > 1 and s[ok].std() > 0:
            out[ok] = (s[ok] - s[ok].mean()) / s[ok].std()
        return out
    for r in range(s.shape[0]):
        out[r] = zscore(s[r])
    return out


def blend(z: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    total: np.ndarray | None = None
    for name, w in weights.items():
        if w and name in z:
            total = w * z[name] if total is None else total + w * z[name]
    if total is None:
        return next(iter(z.values())) * 0.0
    return total


def _ndcg_rows(scores: np.ndarray, rel: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k of row-wise rankings; scores already -inf where excluded; rel is a boolean matrix."""
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top_s = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_s, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    hits = np.take_along_axis(rel, top, axis=1)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    n_rel = np.minimum(rel.sum(axis=1), k)
    idcg = np.cumsum(disc)[np.maximum(n_rel, 1) - 1]
    return float(((hits * disc).sum(axis=1) / idcg).mean())


def tune(split: Split, scorers: dict[str, Callable[[int], np.ndarray]], passes: int = 2) -> tuple[Weights, dict]:
    """Per-bucket weights maximising validation NDCG@10, and the validation NDCG per bucket (pop vs blend)."""
    n_items = len(split.thin)
    z: dict[str, np.ndarray] = {c: np.empty((len(split.users), n_items)) for c in scorers}
    mask = np.zeros((len(split.users), n_items), dtype=bool)
    rel = np.zeros((len(split.users), n_items), dtype=bool)
    for j, u in enumerate(split.users):
        for c, fn in scorers.items():
            z[c][j] = zscore(fn(int(u)))
        mask[j, split.exclude[j]] = True
        rel[j, split.relevant[j]] = True
    mask |= split.thin[None, :]
    weights: Weights = {}
    report: dict[str, dict[str, float]] = {}
    for b in BUCKETS:
        rows = np.flatnonzero(split.buckets == b)
        if rows.size == 0:
            weights[b] = dict(DEFAULT_WEIGHTS[b])
            continue
        zb = {c: v[rows] for c, v in z.items()}
        mb, rb = mask[rows], rel[rows]

        def score(w: dict[str, float], zb: dict[str, np.ndarray] = zb, mb: np.ndarray = mb,
                  rb: np.ndarray = rb) -> float:
            s = blend(zb, w)
            return _ndcg_rows(np.where(mb, -np.inf, s), rb)

        w = {c: (1.0 if c == "popularity" else 0.0) for c in scorers}
        base = best = score(w)
        for _ in range(passes):
            for c in scorers:
                for g in GRID:
                    trial = {**w, c: g}
                    if not any(trial.values()):
                        continue
                    val = score(trial)
                    if val > best + 1e-6:
                        best, w = val, trial
        weights[b] = {c: v for c, v in w.items() if v}
        report[b] = {"popularity_ndcg": base, "blend_ndcg": best, "users": int(rows.size)}
    return weights, report
