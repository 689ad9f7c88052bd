"""Rescan throughput per worker vs the live text path's, and live latency alone vs during a rescan, one run.

    python -m bench.bench_rescan --stored 2000 --live 200 --repeat 3 [--baseline-tree DIR]

One stack per tree: a text worker (`-Q text,webhooks -c 1`) and a rescan worker (`-Q rescan -c 1`), one torch
thread each, sharing the cores as in run.sh. Each stack first stores `--stored` texts; then each round, for every
stack in turn (interleaved, so a busy machine hurts all alike):
  (a) live throughput: `--stored` new texts of the same shape, submitted in batches and drained by the one text
      worker: items / (last completed_at - first created_at), as the service recorded them;
  (b) rescan throughput through the one rescan worker, items / (finished_at - started_at) of the job, planning
      included, after a policy bump (a new policy id: no cached verdict applies; thresholds alternate so every
      verdict changes and is written): first policy-only (a rescan may re-decide from scores this same model
      stored), then as after a model upgrade (the stored verdicts' `models` rewritten to an older version in
      Redis first, so the model runs on every text: the figure to compare with (a));
  (c) live submit→verdict latency (created→completed) of `--live` single texts at concurrency 4, alone and
      then while a model-upgrade rescan of the stored texts runs (only texts finished before it did count).
`--baseline-tree DIR` (another checkout, e.g. `git archive HEAD | tar -x -C DIR`, `var` symlinked) runs a second
stack on that code in the same rounds. Prints median and minimum (best: max for rates) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.stack import ROOT, private_stack, stack_from
from service.store import keys

SHORT = ["what a great episode", "this song is trash lol", "you are an idiot", "see you at the show tonight",
         "worst referee ever", "I love this band so much", "get out of here", "subscribe for more videos"]
HEADERS = {"Authorization": "Bearer bench-key"}
ADMIN = {"Authorization": "Bearer bench-admin"}
OLD_MODELS = '[{"name":"bench-old-model","version":"0"}]'


def texts(tag: str, n: int) -> list[str]:
    return [f"{SHORT[i % len(SHORT)]} #{tag}{i}" for i in range(n)]


def submit_and_drain(c: httpx.Client, r: redis.Redis, items: list[str]) -> list[tuple[str, float, float]]:
    """Submit in API batches; once all are done, their (id, created_at, completed_at), read from the store."""
    ids: list[str] = []
    for i in range(0, len(items), 256):
        resp = c.post("/v1/moderations/batch", json={"items": [{"text": t} for t in items[i : i + 256]]},
                      headers=HEADERS)
        resp.raise_for_status()
        ids += [x["id"] for x in resp.json()["items"]]
    deadline = time.monotonic() + 600
    while True:
        pipe = r.pipeline(transaction=False)
        for item_id in ids:
            pipe.hmget(keys.item(item_id), "status", "created_at", "completed_at")
        rows = pipe.execute()
        if all(row[0] == b"done" for row in rows):
            return [(i, float(row[1]), float(row[2])) for i, row in zip(ids, rows, strict=True)]
        if time.monotonic() > deadline:
            raise TimeoutError("texts not drained")
        time.sleep(0.2)


def live_latencies(base: str, n: int, tag: str) -> list[tuple[float, float]]:
    """n single texts at concurrency 4 (platform-like trickle): (completed_at, created→completed seconds)."""
    def one(i: int) -> tuple[float, float]:
        with httpx.Client(base_url=base, headers=HEADERS, timeout=60) as c:
            item = c.post("/v1/moderations?wait=10", json={"text": f"live {tag} comment {i}"}).json()
            done = item.get("completed_at")
            return (float(done), float(done - item["created_at"])) if done else (float("inf"), float("inf"))
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


class Bench:
    """One stack's state between rounds: its client, the stored window and the policy toggle."""

    def __init__(self, urls: tuple[str, str], stored: int) -> None:
        self.base = urls[0]
        self.c = httpx.Client(base_url=self.base, timeout=60)
        self.r = redis.Redis.from_url(urls[1])
        self.flip = 0
        seeded = submit_and_drain(self.c, self.r, texts("stored", stored))
        # The rescans cover exactly the stored texts: a created-time window, not the live texts made later.
        self.window = {"tenant": "demo", "since": min(t for _, t, _ in seeded), "until": max(t for _, t, _ in seeded)}
        self.ids = [i for i, _, _ in seeded]
        # Block everything / allow almost everything, over the categories this model scores.
        cats = json.loads(self.r.hget(keys.item(self.ids[0]), "scores") or "{}")
        self.policies = [{c: {"review": 0.0, "block": 0.0} for c in cats},
                         {c: {"review": 0.999, "block": 0.9999} for c in cats}]
        self.stored = stored

    def bump_policy(self) -> None:
        self.flip ^= 1
        self.c.put("/v1/policies/demo", json={"categories": self.policies[self.flip]}, headers=ADMIN).raise_for_status()

    def start_rescan(self) -> str:
        return str(self.c.post("/v1/rescans", json=self.window, headers=ADMIN).json()["id"])

    def wait_rescan(self, job: str) -> dict[str, Any]:
        deadline = time.monotonic() + 600
        while (p := self.c.get(f"/v1/rescans/{job}", headers=ADMIN).json())["status"] not in ("done", "cancelled"):
            if time.monotonic() > deadline:
                raise TimeoutError(job)
            time.sleep(0.1)
        if p["total"] != self.stored:
            raise RuntimeError(f"rescan covered {p['total']} items, not {self.stored}")
        return dict(p)

    def live_rate(self, tag: str) -> float:
        done = submit_and_drain(self.c, self.r, texts(tag, self.stored))
        span = max(end for _, _, end in done) - min(start for _, start, _ in done)
        return len(done) / span

    def age_models(self) -> None:
        """Make the stored verdicts look made by an older model version (as after a model upgrade), so the rescan
        must run the model on every text; a policy-only rescan may re-decide from the stored scores."""
        pipe = self.r.pipeline(transaction=False)
        for i in self.ids:
            pipe.hset(keys.item(i), "models", OLD_MODELS)
        pipe.execute()

    def rescan_rate(self, upgrade: bool) -> tuple[float, int]:
        if upgrade:
            self.age_models()
        self.bump_policy()
        job = self.wait_rescan(self.start_rescan())
        return job["done"] / (job["finished_at"] - job["started_at"]), int(job["changed"])

    def latencies(self, n: int, tag: str) -> tuple[list[float], list[float]]:
        alone = [lat for _, lat in live_latencies(self.base, n, tag + "a")]
        self.age_models()  # the model runs throughout: the rescan that competes hardest with live texts
        self.bump_policy()
        job = self.start_rescan()
        during = live_latencies(self.base, n, tag + "d")
        end = float(self.wait_rescan(job)["finished_at"])
        return sorted(alone), sorted(lat for done, lat in during if done <= end)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] * 1000 if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stored", type=int, default=2000)
    parser.add_argument("--live", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default=str(ROOT / "var" / "models" / "text-default"))
    parser.add_argument("--baseline-tree", type=Path, default=None, help="checkout to compare with, same rounds")
    args = parser.parse_args()
    if not Path(args.model).exists():
        sys.exit(f"model {args.model} missing")
    env = {"MOD_TEXT_MODEL_PATH": args.model, "MOD_BOOTSTRAP_PLATFORM_KEY": "bench-key",
           "MOD_BOOTSTRAP_ADMIN_KEY": "bench-admin", "MOD_TORCH_THREADS": "1"}
    stacks: dict[str, Callable[..., AbstractContextManager[tuple[str, str]]]] = {"this tree": private_stack}
    if args.baseline_tree is not None:
        stacks = {"baseline tree": stack_from(args.baseline_tree.resolve()), **stacks}
    load_before = os.getloadavg()
    res: dict[str, dict[str, list[float]]] = {name: {"live": [], "rescan": [], "ratio": [], "p50a": [],
                                                      "policy": [], "pratio": [], "p99a": [], "p50d": [], "p99d": [],
                                                      "lat": [], "n_d": []}
                                               for name in stacks}
    with ExitStack() as es:
        benches = {name: Bench(es.enter_context(make(env, [("text,webhooks", 1), ("rescan", 1)])), args.stored)
                   for name, make in stacks.items()}
        for r in range(args.repeat):
            for name, b in benches.items():
                row = res[name]
                live = b.live_rate(f"r{r}-")
                policy, _ = b.rescan_rate(upgrade=False)
                rescan, changed = b.rescan_rate(upgrade=True)
                alone, during = b.latencies(args.live, f"r{r}")
                row["live"].append(live)
                row["rescan"].append(rescan)
                row["ratio"].append(rescan / live)
                row["policy"].append(policy)
                row["pratio"].append(policy / live)
                row["p50a"].append(pct(alone, 0.5))
                row["p99a"].append(pct(alone, 0.99))
                row["p50d"].append(pct(during, 0.5))
                row["p99d"].append(pct(during, 0.99))
                row["lat"].append(statistics.median(during) / statistics.median(alone) if during else float("nan"))
                row["n_d"].append(len(during))
                print(f"  round {r + 1} {name}: live {live:.0f}/s  rescan {rescan:.0f}/s ({changed} changed), "
                      f"policy-only {policy:.0f}/s  "
                      f"latency p50 {row['p50a'][-1]:.0f}→{row['p50d'][-1]:.0f} ms  "
                      f"p99 {row['p99a'][-1]:.0f}→{row['p99d'][-1]:.0f} ms ({len(during)} during)", flush=True)
    print(f"stored {args.stored} texts, {args.live} live texts per latency phase, {args.repeat} rounds; "
          f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    for name, row in res.items():
        def fmt(key: str, unit: str, best: Callable[[list[float]], float] = max, row: dict = row) -> str:
            return f"median {statistics.median(row[key]):.2f}{unit} (best {best(row[key]):.2f}{unit})"
        print(f"{name}:")
        print(f"  (a) live text path per worker: {fmt('live', '/s')}")
        print(f"  (b) rescan per worker, model runs on every text: {fmt('rescan', '/s')}   b/a {fmt('ratio', '')}")
        print(f"      policy-only rescan (stored scores of this model reused where the code does): "
              f"{fmt('policy', '/s')}   /a {fmt('pratio', '')}")
        print(f"  (c) live p50 alone {fmt('p50a', ' ms', min)}, during rescan {fmt('p50d', ' ms', min)}")
        print(f"      live p99 alone {fmt('p99a', ' ms', min)}, during rescan {fmt('p99d', ' ms', min)}")
        print(f"      p50 during/alone {fmt('lat', '', min)}; texts finished during the rescan: "
              f"{int(min(row['n_d']))}-{int(max(row['n_d']))} of {args.live}")


if __name__ == "__main__":
    main()
