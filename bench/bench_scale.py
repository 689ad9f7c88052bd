"""Benchmarks the recommender at scale on synthetic data: fit time, peak memory and per-request latency (p50/p99).

    python -m bench.bench_scale [--ratings 1000000] [--users 50000] [--items 20000] [--requests 300] [--tune]

Ratings come from a seeded latent-factor model with Zipf item popularity (1-5 stars); items get synthetic
genres/directors/cast so the content model has text. Every model is fitted as the companion fits it (sparse
neighbour lists, no dense user x user or item x item matrix); latency is RecEngine.recommend for random users
(k=10, no HTTP, no Redis). Peak memory is the process's max RSS. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
from threadpoolctl import threadpool_limits

from models.recsys.bundle import FitParams, fit_bundle
from models.recsys.data import Item, Ratings
from models.recsys.engine import STRATEGIES, RecEngine, UserHistory


def synthetic(n_ratings: int, n_users: int, n_items: int, seed: int = 0) -> tuple[Ratings, dict[str, Item]]:
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop /= pop.sum()
    activity = rng.pareto(1.5, n_users) + 1
    # Draw 15 % extra (user, item) pairs, keep one rating per pair, then exactly n_ratings of them.
    activity = np.maximum(5, np.round(activity / activity.sum() * n_ratings * 1.15)).astype(np.int64)
    users = np.repeat(np.arange(n_users), activity)
    items = rng.choice(n_items, size=len(users), p=pop)
    key = np.unique(users.astype(np.int64) * n_items + items)
    key = np.sort(rng.choice(key, min(n_ratings, len(key)), replace=False))
    users, items = (key // n_items).astype(np.int32), (key % n_items).astype(np.int32)
    P, Q = rng.normal(0, 0.5, (n_users, 8)), rng.normal(0, 0.5, (n_items, 8))
    raw = 3.5 + rng.normal(0, 0.4, n_items)[items] + np.einsum("ij,ij->i", P[users], Q[items])
    values = np.clip(np.round(raw + rng.normal(0, 0.7, len(users))), 1, 5)
    data = Ratings(users, items, values, [str(u) for u in range(n_users)], [str(i) for i in range(n_items)])
    genres = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Documentary", "Animation"]
    cat = {str(i): Item(str(i), f"Film {i}", int(1950 + i % 70), [genres[i % 9], genres[(i * 7) % 9]],
                        f"Director {i % 3000}", f"Writer {i % 5000}",
                        ", ".join(f"Actor {(i * k) % 20000}" for k in (1, 3, 7))) for i in range(n_items)}
    return data, cat


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratings", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--tune", action="store_true", help="also tune the blend on a validation split (2x fit)")
    args = ap.parse_args(argv)
    threadpool_limits(1)
    t0 = time.perf_counter()
    data, cat = synthetic(args.ratings, args.users, args.items)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"synthetic: {len(data):,} ratings, {data.n_users:,} users, {data.n_items:,} items "
          f"({time.perf_counter() - t0:.1f} s, RSS {rss0:.0f} MiB)")
    t0 = time.perf_counter()
    bundle = fit_bundle(data, cat, FitParams(), tune_blend=args.tune)
    print(f"  (load average during the fit: {os.getloadavg()[0]:.1f})")
    fit_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fit (SVD, kNN lists, content, implicit ALS, popularity{', blend tuning' if args.tune else ''}): "
          f"{fit_s:.1f} s; peak RSS {peak:.0f} MiB; kNN lists {bundle.knn.nbr.nnz:,} entries "
          f"({bundle.knn.nbr.nnz / data.n_users:.0f}/user, vs {data.n_users ** 2:,} dense)")
    engine = RecEngine(bundle)
    rng = np.random.default_rng(1)
    users = rng.choice(data.n_users, args.requests, replace=False)
    order = np.argsort(data.users, kind="stable")
    bounds = np.searchsorted(data.users[order], np.arange(data.n_users + 1))
    hists = []
    for u in users:
        sel = order[bounds[u]:bounds[u + 1]]
        hists.append(UserHistory(str(u), {data.item_ids[i]: float(r) for i, r in zip(data.items[sel],
                                                                                   data.values[sel], strict=True)}))
    print(f"{'strategy':<10}{'p50 ms':>9}{'p99 ms':>9}")
    for strategy in STRATEGIES:
        ts = []
        for h in hists:
            t0 = time.perf_counter()
            engine.recommend(h, 10, strategy)
            ts.append((time.perf_counter() - t0) * 1000)
        print(f"{strategy:<10}{np.percentile(ts, 50):>9.1f}{np.percentile(ts, 99):>9.1f}")
    print(f"final peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
