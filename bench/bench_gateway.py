"""Gateway benchmark: submit N texts at concurrency C, then measure verdict throughput, latency and loss.

In the same run it measures a bare FastAPI endpoint on the same machine and prints the accept-rate ratio.
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
    sem = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(texts), desc="submit", leave=False)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(text: str) -> None:
            async with sem:
                resp = await client.post("/v1/moderations", json={"text": text})
                if resp.status_code in (200, 202):
                    ids.append(resp.json()["id"])
                bar.update()
        start = time.perf_counter()
        await asyncio.gather(*(one(t) for t in texts))
        elapsed = time.perf_counter() - start
    bar.close()
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


def bare_accept_rate(texts: list[str], concurrency: int) -> float:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(port),
                             "--log-level", "warning"], cwd=ROOT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/docs")
        ids, elapsed = asyncio.run(submit_all(f"http://127.0.0.1:{port}", {}, texts, concurrency))
        return len(ids) / elapsed
    finally:
        proc.terminate()
        proc.wait()


def run(base: str, key: str, n: int, concurrency: int) -> None:
    texts = [f"comment {i}: this film was {['great', 'awful', 'fine', 'long'][i % 4]} and I enjoyed parts of it"
             for i in range(n)]
    headers = {"Authorization": f"Bearer {key}"}
    ids, submit_s = asyncio.run(submit_all(base, headers, texts, concurrency))
    items = asyncio.run(collect(base, headers, ids, deadline_s=max(120.0, n / 5)))
    ok = [i for i in items if i["status"] == "done"]
    lat = sorted(i["completed_at"] - i["created_at"] for i in ok)
    span = max(i["completed_at"] for i in ok) - min(i["created_at"] for i in ok) if ok else float("nan")
    accept_rate = len(ids) / submit_s
    bare = bare_accept_rate(texts, concurrency)
    print(f"submitted={n} accepted={len(ids)} verdicts={len(ok)} failed={len(items) - len(ok)} "
          f"lost={n - len(ok)}")
    print(f"accepted/s={accept_rate:.1f}  verdicts/s={len(ok) / span:.1f}")
    if lat:
        print(f"submit->verdict p50={statistics.median(lat) * 1000:.0f} ms  "
              f"p99={lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000:.0f} ms")
    print(f"bare FastAPI accepted/s={bare:.1f}  accept-rate ratio gateway/bare={accept_rate / bare:.2f} (goal >= 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--url", default=None, help="a running gateway; default: start a private stack")
    parser.add_argument("--key", default="dev-platform-key")
    parser.add_argument("--model", default=None, help="text model path for the private stack")
    parser.add_argument("--worker-concurrency", type=int, default=1)
    args = parser.parse_args()
    if args.url:
        run(args.url, args.key, args.n, args.concurrency)
        return
    model = args.model or os.environ.get("MOD_TEXT_MODEL_PATH") or str(ROOT / "var" / "models" / "text-default")
    if not Path(model).exists():
        sys.exit(f"model {model} missing: run `python -m scripts.prepare` or pass --model")
    env = {"MOD_TEXT_MODEL_PATH": model, "MOD_BOOTSTRAP_PLATFORM_KEY": args.key}
    with private_stack(env, [("text,webhooks", args.worker_concurrency)]) as (base, _):
        run(base, args.key, args.n, args.concurrency)


if __name__ == "__main__":
    main()
