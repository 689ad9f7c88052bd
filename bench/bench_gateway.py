"""Gateway benchmark: submit N texts at concurrency C, then measure verdict throughput, latency and loss.

In the same run it measures a bare FastAPI endpoint (same number of uvicorn processes) on the same machine,
interleaving gateway and bare repeats, and prints the median and minimum of each side and the accept-rate ratio.
    python -m bench.bench_gateway --n 2000 --concurrency 32            # private stack (redis, worker, gateway)
    python -m bench.bench_gateway --url http://127.0.0.1:8000 --key dev-platform-key   # a running stack
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tqdm import tqdm

from bench.stack import ROOT, free_port, private_stack, wait_http


async def submit_all(base: str, headers: dict[str, str], texts: list[str], concurrency: int) -> tuple[list[str], float]:
    ids: list[str] = []
    refused: list[int] = []
    sem = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(texts), desc="submit", leave=False, disable=None)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(text: str) -> None:
            async with sem:
                resp = await client.post("/v1/moderations", json={"text": text})
                if resp.status_code in (200, 202):
                    ids.append(resp.json()["id"])
                else:
                    refused.append(resp.status_code)
                bar.update()
        start = time.perf_counter()
        await asyncio.gather(*(one(t) for t in texts))
        elapsed = time.perf_counter() - start
    bar.close()
    if refused:
        print(f"{base}: {len(refused)} submissions refused, statuses {sorted(set(refused))}", file=sys.stderr)
    return ids, elapsed


async def collect(base: str, headers: dict[str, str], ids: list[str], deadline_s: float) -> list[dict]:
    done: dict[str, dict] = {}
    end = time.monotonic() + deadline_s
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        pending = list(ids)
        sem = asyncio.Semaphore(8)
        while pending and time.monotonic() < end:

            async def check(item_id: str) -> None:
                async with sem:
                    item = (await client.get(f"/v1/moderations/{item_id}")).json()
                    if item.get("status") in ("done", "failed", "rejected"):
                        done[item_id] = item
            await asyncio.gather(*(check(i) for i in pending))
            pending = [i for i in pending if i not in done]
            if pending:
                await asyncio.sleep(0.5)
    return list(done.values())


def bare_server() -> tuple[subprocess.Popen[bytes], str]:
    """The bare endpoint, served like the gateway (one uvicorn process, same loop/http auto-selection)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(port),
                             "--log-level", "warning"], cwd=ROOT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/docs")
    return proc, base


def summary(rates: list[float]) -> str:
    runs = ", ".join(f"{r:.0f}" for r in rates)
    return f"median={statistics.median(rates):.1f}/s min={min(rates):.1f}/s (runs: {runs})"


def run(base: str, key: str, n: int, concurrency: int, repeats: int = 3) -> None:
    """Interleaved repeats: gateway, bare, gateway, bare, ... each submitting the same N texts."""
    headers = {"Authorization": f"Bearer {key}"}
    proc, bare_base = bare_server()
    gw_rates: list[float] = []
    bare_rates: list[float] = []
    all_ids: list[str] = []
    try:
        for rep in range(repeats):
            texts = [f"comment {rep}.{i}: this film was {['great', 'awful', 'fine', 'long'][i % 4]} "
                     f"and I enjoyed parts of it" for i in range(n)]
            ids, submit_s = asyncio.run(submit_all(base, headers, texts, concurrency))
            all_ids += ids
            gw_rates.append(len(ids) / submit_s)
            bare_ids, bare_s = asyncio.run(submit_all(bare_base, {}, texts, concurrency))
            bare_rates.append(len(bare_ids) / bare_s)
            print(f"repeat {rep + 1}/{repeats}: gateway {gw_rates[-1]:.1f}/s  bare {bare_rates[-1]:.1f}/s  "
                  f"ratio {gw_rates[-1] / bare_rates[-1]:.2f}  load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        proc.terminate()
        proc.wait()
    total = n * repeats
    items = asyncio.run(collect(base, headers, all_ids, deadline_s=max(120.0, total / 5)))
    ok = [i for i in items if i["status"] == "done"]
    lat = sorted(i["completed_at"] - i["created_at"] for i in ok)
    span = max(i["completed_at"] for i in ok) - min(i["created_at"] for i in ok) if ok else float("nan")
    print(f"load average (1/5/15 min) at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  cpus={os.cpu_count()}")
    print(f"submitted={total} accepted={len(all_ids)} verdicts={len(ok)} failed={len(items) - len(ok)} "
          f"lost={total - len(ok)}")
    print(f"verdicts/s={len(ok) / span:.1f}")
    if lat:
        print(f"submit->verdict p50={statistics.median(lat) * 1000:.0f} ms  "
              f"p99={lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000:.0f} ms")
    print(f"gateway accepted/s {summary(gw_rates)}")
    print(f"bare    accepted/s {summary(bare_rates)}")
    ratios = [g / b for g, b in zip(gw_rates, bare_rates, strict=True)]
    of_medians = statistics.median(gw_rates) / statistics.median(bare_rates)
    print(f"accept-rate ratio gateway/bare: of medians={of_medians:.2f} of mins={min(gw_rates) / min(bare_rates):.2f} "
          f"per-pair median={statistics.median(ratios):.2f} (goal >= 0.7)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--url", default=None, help="a running gateway; default: start a private stack")
    parser.add_argument("--key", default="dev-platform-key")
    parser.add_argument("--model", default=None, help="text model path for the private stack")
    parser.add_argument("--worker-concurrency", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved gateway/bare pairs")
    args = parser.parse_args()
    if args.url:
        run(args.url, args.key, args.n, args.concurrency, args.repeats)
        return
    model = args.model or os.environ.get("MOD_TEXT_MODEL_PATH") or str(ROOT / "var" / "models" / "text-default")
    if not Path(model).exists():
        sys.exit(f"model {model} missing: run `python -m scripts.prepare` or pass --model")
    # The limiter still runs on every request; its submit quota is raised so that a fast gateway measures its
    # own cost, not the default 200/s per key (which would turn the excess into 429s).
    env = {"MOD_TEXT_MODEL_PATH": model, "MOD_BOOTSTRAP_PLATFORM_KEY": args.key,
           "MOD_RATELIMIT_SUBMIT_KEY_PER_S": "100000", "MOD_RATELIMIT_SUBMIT_TENANT_PER_S": "100000"}
    with private_stack(env, [("text,webhooks", args.worker_concurrency)]) as (base, _):
        run(base, args.key, args.n, args.concurrency, args.repeats)


if __name__ == "__main__":
    main()
