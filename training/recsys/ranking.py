"""Owns the ranking evaluation per history-length bucket: ours, Surprise's SVD and popularity on the same folds.

Per fold (the same seeded folds as the RMSE table): blend weights are tuned on a validation split of that fold's
*training* ratings; the fold's test users are truncated per models.recsys.protocol; every model (and Surprise's
SVD, through the same training positions) fits on the reduced training set and ranks the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from models.recsys.blend import blend, zscore
from models.recsys.bundle import FitParams, fit_models, scorers, tune_weights
from models.recsys.data import Item, Ratings
from models.recsys.popular import Popularity
from models.recsys.protocol import BUCKETS, Split, make_split, masked, prn_at_k, top_k

Scorer = Callable[[int], np.ndarray]


def per_user(split: Split, fn: Scorer, implicit_view: bool, k: int = 10) -> list[tuple[str, float, float, float]]:
    rel = split.relevant_any if implicit_view else split.relevant
    out = []
    for j, u in enumerate(split.users):
        p, r, n = prn_at_k(top_k(masked(split, j, fn(int(u))), k), rel[j], k)
        out.append((str(split.buckets[j]), p, r, n))
    return out


def summarise(rows: list[tuple[str, float, float, float]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for b in (*BUCKETS, "all"):
        sel = [x for x in rows if b == "all" or x[0] == b]
        if sel:
            a = np.array([x[1:] for x in sel])
            out[b] = {"p@10": float(a[:, 0].mean()), "r@10": float(a[:, 1].mean()), "ndcg@10": float(a[:, 2].mean()),
                      "users": len(sel)}
    return out


def fold_scorers(split: Split, data: Ratings, catalogue: dict[str, Item], train_idx: np.ndarray,
                 params: FitParams, surprise: Any | None, seed: int) -> tuple[dict[str, Scorer], dict[str, Any]]:
    weights, report = tune_weights(data.subset(train_idx), catalogue, params)
    models = fit_models(split.train, catalogue, params)
    sc = scorers(models)
    hist = np.bincount(split.train.users, minlength=data.n_users)
    from models.recsys.protocol import bucket_of

    def hybrid(u: int) -> np.ndarray:
        w = weights[bucket_of(int(hist[u]))]
        return blend({c: zscore(sc[c](u)) for c in w if w[c]}, w)

    bayes = Popularity(mode="bayes").fit(split.train)
    out: dict[str, Scorer] = {"popularity (most liked)": sc["popularity"],
                              "popularity (Bayesian avg)": lambda u: bayes.scores,
                              "ours SVD": sc["svd"], "ours kNN": sc["knn"], "ours content": sc["content"],
                              "ours implicit ALS": sc["implicit"], "ours trending": sc["trending"],
                              "ours co-rated": sc["corated"], "ours hybrid": hybrid}
    if surprise is not None:
        from surprise import SVD as SSVD

        from training.recsys.evaluate import surprise_svd_scores

        algo, _ = surprise.fit(SSVD(random_state=seed), split.train_positions)
        out["Surprise SVD"] = surprise_svd_scores(algo, data)
    return out, {"weights": weights, "validation": report}


def evaluate_ranking(data: Ratings, catalogue: dict[str, Item], folds: list[np.ndarray], seed: int,
                     surprise: Any | None, params: FitParams | None = None) -> dict[str, Any]:
    params = params or FitParams()
    rows: dict[str, dict[str, list[tuple[str, float, float, float]]]] = {}
    tuned = []
    for f, test_idx in enumerate(folds):
        train_idx = np.setdiff1d(np.arange(len(data)), test_idx)
        split = make_split(data, train_idx, test_idx, seed=seed + f, min_support=params.min_support)
        fns, info = fold_scorers(split, data, catalogue, train_idx, params, surprise, seed)
        tuned.append(info)
        for name, fn in fns.items():
            for view in ("explicit", "implicit"):
                rows.setdefault(view, {}).setdefault(name, []).extend(per_user(split, fn, view == "implicit"))
    return {"explicit": {n: summarise(r) for n, r in rows["explicit"].items()},
            "implicit": {n: summarise(r) for n, r in rows["implicit"].items()}, "tuning": tuned}


def print_ranking(res: dict[str, Any]) -> None:
    for view, title in (("explicit", "relevant = held-out rating >= 4"),
                        ("implicit", "ml-100k as implicit data: relevant = any held-out rating")):
        tab = res[view]
        users = tab["popularity (most liked)"]
        print(f"\nRanking, {title}; users per bucket: "
              + ", ".join(f"{b}: {users[b]['users']}" for b in (*BUCKETS, "all") if b in users))
        for metric in ("ndcg@10", "p@10", "r@10"):
            print(f"{metric.upper():<28}" + "".join(f"{b:>8}" for b in (*BUCKETS, "all")))
            for name, m in tab.items():
                print(f"{name:<28}" + "".join(f"{m[b][metric]:>8.4f}" if b in m else "       -"
                                              for b in (*BUCKETS, "all")))
        h = tab["ours hybrid"]
        for pop in ("popularity (most liked)", "popularity (Bayesian avg)"):
            p = tab[pop]
            gains = "  ".join(f"{b}: {100 * (h[b]['ndcg@10'] / p[b]['ndcg@10'] - 1):+.0f}%"
                              for b in (*BUCKETS, "all") if b in h and p[b]["ndcg@10"] > 0)
            print(f"hybrid NDCG@10 vs {pop}: {gains}  (goal: >= +25% everywhere)")
