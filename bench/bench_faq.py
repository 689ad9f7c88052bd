"""Benchmarks FAQ answer latency through the companion app: e5 (served), MiniLM and the TF-IDF baseline, same run.

    python -m bench.bench_faq [--requests 200]

Questions are the dev split of the evaluation set (English and Chinese), cycled. One compute thread, as the app
runs.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from fastapi.testclient import TestClient
from tqdm import tqdm

from companion.app import create_app
from models.faq.encoder import Encoder
from models.recsys.engine import RecEngine
from service.core.config import Settings
from service.core.config_companion import CompanionSettings
from training.faq.evalset import load_split
from training.faq.evaluate import make_encoder
from training.recsys.fetch import DEFAULT_DATA_DIR, fetch


def run(engine: RecEngine, encoder: Encoder, name: str, questions: list[str]) -> list[float]:
    # Redis is never touched by FAQ requests; an unused URL keeps the bench self-contained.
    settings = Settings(env="test", redis_url="redis://127.0.0.1:1/0",
                        companion=CompanionSettings(fetch_on_start=False, faq_encoder=name))
    times = []
    with TestClient(create_app(settings, engine=engine, encoder=encoder)) as c:
        c.post("/v1/faq/answer", json={"question": "warm up"})
        for q in tqdm(questions, desc=name):
            t0 = time.perf_counter()
            r = c.post("/v1/faq/answer", json={"question": q, "k": 3})
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    fetch(DEFAULT_DATA_DIR)
    engine = RecEngine.build(DEFAULT_DATA_DIR)
    pool = [q.q for q in load_split("dev").questions]
    questions = [pool[(i * 7) % len(pool)] for i in range(args.requests)]
    rows = {name: run(engine, make_encoder(name), name, questions) for name in ("tfidf", "minilm", "e5", "e5+minilm")}
    base = float(np.percentile(rows["tfidf"], 99))
    print(f"\nPOST /v1/faq/answer latency in ms, {args.requests} requests (TestClient, 1 compute thread)")
    print(f"{'encoder':<10}{'p50':>8}{'p95':>8}{'p99':>8}{'p99 / tfidf p99':>18}")
    for name, ts in rows.items():
        a = np.array(ts) * 1000
        print(f"{name:<10}{np.percentile(a, 50):>8.2f}{np.percentile(a, 95):>8.2f}{np.percentile(a, 99):>8.2f}"
              f"{np.percentile(ts, 99) / base:>18.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
