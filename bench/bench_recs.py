"""Benchmarks recommendation latency (k=10, ml-100k) through the companion app against a naive baseline, same run.

    python -m bench.bench_recs [--requests 300] [--seed 0]

Baseline: top-N the way the seed did it (and Surprise's docs show): one predict() call per unrated item, then sort,
with scikit-surprise's SVD and KNNWithMeans(pearson) fitted on the same ratings (falls back to our own per-item
predict() without Surprise). Requests go through the real ASGI app (TestClient) with a private redis-server for
the moderation block list.
Prints p50/p95/p99 per strategy and the ratio against the baseline. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from companion.app import create_app
from models.faq.tfidf_baseline import TfidfEncoder
from models.recsys.data import load_ratings
from models.recsys.engine import RecEngine
from service.core.config import Settings
from service.core.config_companion import CompanionSettings
from service.store import keys
from tests.support.redis_server import RedisServer
from training.recsys.fetch import DEFAULT_DATA_DIR, fetch


def pct(ts: list[float]) -> tuple[float, float, float]:
    a = np.array(ts) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(np.percentile(a, 99))


def naive_baselines(users: list[str], k: int) -> dict[str, tuple[str, list[float]]]:
    """{strategy: (name, per-request seconds)} for the predict-every-item-then-sort approach."""
    data = load_ratings(DEFAULT_DATA_DIR / "ml-100k")
    rated: dict[str, set[str]] = {}
    for u, i, _ in data.triples():
        rated.setdefault(u, set()).add(i)
    predictors: dict[str, tuple[str, Callable[[str, str], float]]] = {}
    try:
        from surprise import SVD, Dataset, KNNWithMeans, Reader

        fd, path = tempfile.mkstemp(suffix=".tsv")
        with os.fdopen(fd, "w") as fh:
            fh.writelines(f"{u}\t{i}\t{r}\n" for u, i, r in data.triples())
        ds = Dataset.load_from_file(path, Reader(line_format="user item rating", sep="\t", rating_scale=(1, 5)))
        os.unlink(path)
        full = ds.build_full_trainset()
        svd = SVD(random_state=0).fit(full)
        knn = KNNWithMeans(k=40, sim_options={"name": "pearson", "user_based": True}, verbose=False).fit(full)
        predictors["svd"] = ("surprise SVD.predict per item", lambda u, i: svd.predict(u, i).est)
        predictors["knn"] = ("surprise KNNWithMeans.predict per item", lambda u, i: knn.predict(u, i).est)
    except ImportError:
        from models.recsys.knn import UserKNN
        from models.recsys.svd import SVD as OurSVD

        predictors["svd"] = ("our SVD.predict per item", OurSVD().fit(data).predict)
        predictors["knn"] = ("our UserKNN.predict per item", UserKNN().fit(data).predict)
    out = {}
    for strategy, (name, predict) in predictors.items():
        times = []
        for u in tqdm(users, desc=f"baseline {strategy}"):
            t0 = time.perf_counter()
            scores = sorted(((predict(u, i), i) for i in data.item_ids if i not in rated[u]), reverse=True)
            _ = scores[:k]
            times.append(time.perf_counter() - t0)
        out[strategy] = (name, times)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--baseline-requests", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    threadpool_limits(1)  # what the app's lifespan does (compute_threads=1); also applied to the baseline
    fetch(DEFAULT_DATA_DIR)
    engine = RecEngine.build(DEFAULT_DATA_DIR, tune_blend=False)
    rng = np.random.default_rng(args.seed)
    users = [engine.bundle.data.user_ids[u] for u in rng.integers(0, 943, args.requests)]
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(workdir=Path(tmp))
        server.start()
        try:
            settings = Settings(env="test", redis_url=server.url(0),
                                companion=CompanionSettings(fetch_on_start=False, recs_refit_interval_s=0,
                                                            recs_artifact_dir=Path(tmp) / "artifacts"))
            import redis

            r = redis.Redis.from_url(server.url(0))
            # A realistic block list: 50 removed films, so filtering does real work.
            r.sadd(keys.blocked("demo"), *[f"movie:{i}" for i in rng.integers(1, 1683, 50)])
            rows = []
            with TestClient(create_app(settings, engine=engine, encoder=TfidfEncoder())) as c:
                for strategy in ("svd", "knn", "content", "implicit", "hybrid"):
                    c.get(f"/v1/recommendations/users/1?k=10&strategy={strategy}")  # warm-up
                    ts = []
                    for u in tqdm(users, desc=strategy):
                        t0 = time.perf_counter()
                        resp = c.get(f"/v1/recommendations/users/{u}", params={"k": 10, "strategy": strategy})
                        ts.append(time.perf_counter() - t0)
                        assert resp.status_code == 200
                    rows.append((f"GET users/{{id}} {strategy}", pct(ts)))
                ts = []
                for i in tqdm(rng.integers(1, 1683, args.requests), desc="similar"):
                    t0 = time.perf_counter()
                    c.get(f"/v1/recommendations/items/{i}/similar", params={"k": 10})
                    ts.append(time.perf_counter() - t0)
                rows.append(("GET items/{id}/similar", pct(ts)))
                ts = []
                for n in tqdm(range(100), desc="fold-in"):
                    body = {"ratings": [{"item_id": str(i), "rating": float(rng.integers(1, 6))}
                                        for i in rng.integers(1, 1683, 20)]}
                    t0 = time.perf_counter()
                    c.post(f"/v1/recommendations/users/bench-{n}/ratings", json=body)
                    ts.append(time.perf_counter() - t0)
                rows.append(("POST users/{id}/ratings (20, new user)", pct(ts)))
        finally:
            server.stop()
    baselines = naive_baselines(users[: args.baseline_requests], 10)
    print(f"\nlatency in ms, k=10, ml-100k, {args.requests} requests each (TestClient + private redis-server);")
    print(f"baselines: {args.baseline_requests} users, model call only (no HTTP, no Redis)")
    print(f"{'operation':<44}{'p50':>8}{'p95':>8}{'p99':>8}{'p99 / same-strategy baseline':>30}")
    for name, (p50, p95, p99) in rows:
        strategy = name.rsplit(" ", 1)[-1]
        ratio = f"{p99 / pct(baselines[strategy][1])[2]:.3f}" if strategy in baselines else "-"
        print(f"{name:<44}{p50:>8.2f}{p95:>8.2f}{p99:>8.2f}{ratio:>30}")
    for strategy, (bname, ts) in baselines.items():
        b50, b95, b99 = pct(ts)
        print(f"{'baseline ' + strategy + ': ' + bname:<44}{b50:>8.2f}{b95:>8.2f}{b99:>8.2f}{'1.000':>30}")
    print("goal: p99 <= 20 ms for k=10")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
