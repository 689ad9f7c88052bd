"""Gateway CPU per text submission, with a setting off and on, interleaved in one run.

    python -m bench.bench_gateway_cpu --setting MOD_GATEWAY_DIRECT_PUBLISH --n 3000 --repeats 3

Throughput ratios on a 2-core machine swing with whatever else runs (the text worker, the load client); the CPU
the gateway process itself spends per accepted request does much less. Each round starts a private stack per
value (redis, one text worker, one uvicorn process), stops the text worker (SIGSTOP: it would compete for the
cores, and the gateway's work does not depend on it), warms up with 300 requests, then submits `--n` texts at
`--concurrency` and reads the uvicorn process's user+system CPU from /proc before and after. Prints each run and
the median and minimum per value.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path

from bench.bench_gateway import submit_all
from bench.stack import ROOT, private_stack


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def submit(base: str, n: int, concurrency: int, tag: str) -> None:
    """`n` texts through bench_gateway's own load client; every one must be accepted (the CPU is per request)."""
    texts = [f"cpu probe {tag} text number {i}" for i in range(n)]
    ids, _ = asyncio.run(submit_all(base, {"Authorization": "Bearer bench-key"}, texts, concurrency))
    if len(ids) != n:
        raise RuntimeError(f"{n - len(ids)} of {n} submissions refused")


def pids(pattern: str) -> list[int]:
    return [int(x) for x in subprocess.check_output(["pgrep", "-f", pattern]).split()]


def one_run(setting: str, value: str, n: int, concurrency: int, model: str) -> tuple[float, float]:
    """(gateway CPU ms per request, requests/s) for one stack with `setting=value`."""
    unlimited = "1000000"
    env = {"MOD_BOOTSTRAP_PLATFORM_KEY": "bench-key", "MOD_BOOTSTRAP_ADMIN_KEY": "bench-admin",
           "MOD_TEXT_MODEL_PATH": model, "MOD_TORCH_THREADS": "1", "MOD_QUEUE_MAX_PENDING": unlimited,
           "MOD_RATELIMIT_SUBMIT_KEY_PER_S": unlimited, "MOD_RATELIMIT_SUBMIT_KEY_BURST": unlimited,
           "MOD_RATELIMIT_SUBMIT_TENANT_PER_S": unlimited, "MOD_RATELIMIT_SUBMIT_TENANT_BURST": unlimited,
           setting: value}
    with private_stack(env, [("text", 1)]) as (base, _):
        port = base.rsplit(":", 1)[1]
        gateway = pids(f"uvicorn.*--port {port}")[0]
        worker = pids("bench0@")
        for pid in worker:
            os.kill(pid, signal.SIGSTOP)
        try:
            submit(base, 300, concurrency, "warm")
            cpu0, t0 = cpu_seconds(gateway), time.perf_counter()
            submit(base, n, concurrency, "run")
            cpu1, t1 = cpu_seconds(gateway), time.perf_counter()
        finally:
            for pid in worker:
                os.kill(pid, signal.SIGCONT)
    return (cpu1 - cpu0) / n * 1000, n / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", default="MOD_GATEWAY_DIRECT_PUBLISH")
    parser.add_argument("--values", default="false,true", help="comma-separated; the first is the baseline")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=str(ROOT / "var" / "models" / "text-default"))
    args = parser.parse_args()
    values = args.values.split(",")
    res: dict[str, list[float]] = {v: [] for v in values}
    for r in range(args.repeats):
        for value in values:
            ms, rate = one_run(args.setting, value, args.n, args.concurrency, args.model)
            res[value].append(ms)
            print(f"round {r + 1} {args.setting}={value}: gateway CPU {ms:.2f} ms/request, {rate:.0f} req/s, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    base = statistics.median(res[values[0]])
    for value, runs in res.items():
        print(f"{args.setting}={value}: median {statistics.median(runs):.2f} ms/request, min {min(runs):.2f}; "
              f"median vs {values[0]}: {statistics.median(runs) / base:.2f}x")


if __name__ == "__main__":
    main()
