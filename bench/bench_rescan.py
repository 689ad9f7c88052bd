"""Live traffic during a rescan: submit→verdict latency of live texts alone vs while a rescan runs.

    python -m bench.bench_rescan --stored 2000 --live 200
A text worker (`-Q text`) and a rescan worker (`-Q rescan`) share the 2 cores, as in run.sh; rescan chunks
yield while the live queues have waiting messages (MOD_RESCAN_YIELD_MAX_S).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.stack import ROOT, private_stack


def live_latencies(base: str, headers: dict[str, str], n: int, tag: str) -> list[float]:
    """Submit n single texts at 4 per second-ish (platform-like trickle); server-side created→completed."""
    def one(i: int) -> float:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            item = c.post("/v1/moderations?wait=10", json={"text": f"live {tag} comment {i}"}).json()
            return float(item["completed_at"] - item["created_at"]) if item.get("completed_at") else float("inf")
    with ThreadPoolExecutor(4) as pool:
        return sorted(pool.map(one, range(n)))


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stored", type=int, default=2000)
    parser.add_argument("--live", type=int, default=200)
    parser.add_argument("--model", default=str(ROOT / "var" / "models" / "text-default"))
    args = parser.parse_args()
    if not Path(args.model).exists():
        sys.exit(f"model {args.model} missing")
    env = {"MOD_TEXT_MODEL_PATH": args.model, "MOD_BOOTSTRAP_PLATFORM_KEY": "bench-key",
           "MOD_BOOTSTRAP_ADMIN_KEY": "bench-admin", "MOD_TORCH_THREADS": "1"}
    headers = {"Authorization": "Bearer bench-key"}
    admin = {"Authorization": "Bearer bench-admin"}
    with private_stack(env, [("text,webhooks", 1), ("rescan", 1)]) as (base, _):
        c = httpx.Client(base_url=base, timeout=60)
        ids: list[str] = []
        for i in range(0, args.stored, 256):
            batch = [{"text": f"stored comment {j}"} for j in range(i, min(args.stored, i + 256))]
            resp = c.post("/v1/moderations/batch", json={"items": batch}, headers=headers)
            ids += [x["id"] for x in resp.json()["items"]]
        while c.get(f"/v1/moderations/{ids[-1]}", headers=headers).json()["status"] != "done":
            time.sleep(0.5)
        alone = live_latencies(base, headers, args.live, "alone")
        c.put("/v1/policies/demo", json={"categories": {"toxicity": {"review": 0.0, "block": 0.0}}}, headers=admin)
        job = c.post("/v1/rescans", json={"tenant": "demo"}, headers=admin).json()["id"]
        during = live_latencies(base, headers, args.live, "during")
        progress = c.get(f"/v1/rescans/{job}", headers=admin).json()
        while progress["status"] not in ("done", "cancelled"):
            time.sleep(0.5)
            progress = c.get(f"/v1/rescans/{job}", headers=admin).json()
    print(f"live texts: {args.live} per phase, stored items rescanned: {progress['total']}")
    print(f"alone:  p50 {pct(alone, 0.5):.0f} ms  p99 {pct(alone, 0.99):.0f} ms")
    print(f"during rescan: p50 {pct(during, 0.5):.0f} ms  p99 {pct(during, 0.99):.0f} ms  "
          f"(ratio p50 {statistics.median(during) / statistics.median(alone):.2f})")
    print(f"rescan: {progress['done']} done, {progress['changed']} changed, rate {progress['rate_per_s']}/s")


if __name__ == "__main__":
    main()
