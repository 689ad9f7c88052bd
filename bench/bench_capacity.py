"""Capacity planning: measured items/s of one worker process per kind, and the worker counts a daily volume needs.

    python -m bench.bench_capacity                        # text model: var/models/text-v2, else text-default
    python -m bench.bench_capacity --texts 3000 --images 150 --threads 1 --peak 3 --utilisation 0.7
    python -m bench.bench_capacity --texts 0 --long-texts 0 --images 60   # one kind only (0 skips a kind)
    python -m bench.bench_capacity --device cuda --texts 20000 --images 0  # text worker on a GPU

Each kind runs through the whole service on a private stack (gateway -> broker -> one Celery worker with one pool
child (`-c 1`) and `--threads` torch / ONNX Runtime threads -> verdict in Redis); the rate is items / (last
`completed_at` - first `created_at`), both server-side. Texts: short comments (~40 chars) and paragraphs (~600
chars). Images: 1280x960 JPEGs (decode, hashes, both image models). The worker count for a volume is
ceil(volume / 86400 x peak / (rate x utilisation)): `--peak` is the peak-hour to average ratio and
`--utilisation` the load a worker may run at. Prints markdown rows for docs/operations.md plus the load average:
on a shared machine the figures are provisional. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.bench_media_worker import images
from bench.stack import ROOT, private_stack

WORDS = ["the", "film", "was", "great", "awful", "music", "scene", "actor", "plot", "boring", "fun", "love", "hate",
         "song", "episode", "referee", "tonight", "band", "video", "subscribe", "really", "never", "again", "best"]
VOLUMES = [("texts", 1_000_000), ("texts", 10_000_000), ("texts", 100_000_000), ("images", 1_000_000)]


def texts(n: int, words: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return [f"{i} " + " ".join(rng.choices(WORDS, k=words)) for i in range(n)]


def text_model(arg: str | None) -> tuple[str, str]:
    """(path, label): the shipped model if built, else a tiny random checkpoint (labelled as not representative)."""
    import json

    def named(path: Path) -> str:
        meta = path / "moderation.json"  # name and version of a built checkpoint
        info = json.loads(meta.read_text()) if meta.exists() else {}
        return f"{path.name} ({info.get('name', '?')}@{info.get('version', '?')})"

    if arg:
        return arg, named(Path(arg))
    for name in ("text-v2", "text-default"):
        path = ROOT / "var" / "models" / name
        if path.exists():
            return str(path), named(path)
    from training.text.tiny import build_tiny_checkpoint

    path = Path(tempfile.mkdtemp(prefix="bench-tiny-")) / "tiny"
    build_tiny_checkpoint(path, seed=0)
    return str(path), "tiny random checkpoint (NOT representative: build var/models/text-v2)"


def wait_done(client: httpx.Client, ids: list[str], deadline_s: float = 1800.0) -> list[dict[str, object]]:
    end = time.monotonic() + deadline_s
    while True:
        # Check the last item first (cheap), then all of them.
        last = client.get(f"/v1/moderations/{ids[-1]}").json()
        if last["status"] in ("done", "failed", "rejected"):
            final = [client.get(f"/v1/moderations/{i}").json() for i in ids]
            if all(f["status"] in ("done", "failed", "rejected") for f in final):
                return final
        if time.monotonic() > end:
            raise TimeoutError("items not finished")
        time.sleep(1.0)


def rate(final: list[dict[str, object]]) -> tuple[float, int]:
    done = [f for f in final if f["status"] == "done"]
    if not done:
        return 0.0, len(final)
    span = max(float(f["completed_at"]) for f in done) - min(float(f["created_at"]) for f in final)  # type: ignore[arg-type]
    return len(done) / span, len(final) - len(done)


def bench_text(model: str, n: int, words: int, threads: int, device: str = "cpu") -> tuple[float, int, float]:
    env = {"MOD_TEXT_MODEL_PATH": model, "MOD_TORCH_THREADS": str(threads), "MOD_BOOTSTRAP_PLATFORM_KEY": "bench-key",
           "MOD_RATELIMIT_ENABLED": "false", "MOD_TEXT_DEVICE": device}
    if device != "cpu":
        env["MOD_TEXT_BATCH_SIZE"] = "256"  # bf16 on a GPU wants big batches (docs/models/text.md)
    items = texts(n, words, seed=words)
    with private_stack(env, [("text", 1)]) as (base, redis_url), \
            httpx.Client(base_url=base, headers={"Authorization": "Bearer bench-key"}, timeout=120) as client:
        pids = worker_pids(redis_url, "text")
        cpu0 = cpu_seconds(pids)
        ids: list[str] = []
        for i in range(0, n, 256):
            resp = client.post("/v1/moderations/batch", json={"items": [{"text": t} for t in items[i:i + 256]]})
            resp.raise_for_status()
            ids += [x["id"] for x in resp.json()["items"]]
        final = wait_done(client, ids)
        per_s, lost = rate(final)
        return per_s, lost, (len(final) - lost) / max(cpu_seconds(pids) - cpu0, 1e-9)


def bench_images(n: int, threads: int, model: str) -> tuple[float, int, float]:
    # The gateway is ready only with a text worker up (/readyz); it stays idle while images are measured.
    env = {"MOD_BOOTSTRAP_PLATFORM_KEY": "bench-key", "MOD_MEDIA__ONNX_THREADS": str(threads),
           "MOD_RATELIMIT_ENABLED": "false", "MOD_TEXT_MODEL_PATH": model, "MOD_TORCH_THREADS": "1"}
    files = images(n)
    with private_stack(env, [("media", 1), ("text", 1)]) as (base, redis_url), \
            httpx.Client(base_url=base, headers={"Authorization": "Bearer bench-key"}, timeout=120) as client:
        pids = worker_pids(redis_url, "media")
        cpu0 = cpu_seconds(pids)
        ids = []
        for i, data in enumerate(files):
            resp = client.post("/v1/moderations/image", files={"file": (f"{i}.jpg", data)})
            resp.raise_for_status()
            ids.append(resp.json()["id"])
        final = wait_done(client, ids)
        per_s, lost = rate(final)
        return per_s, lost, (len(final) - lost) / max(cpu_seconds(pids) - cpu0, 1e-9)


def worker_pids(redis_url: str, queue: str) -> list[int]:
    """Pool children consuming `queue` (from their heartbeats) and their Celery main processes."""
    import json

    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    pids: set[int] = set()
    end = time.monotonic() + 300
    while not pids:  # the gateway is ready once a text worker is; a media child may still be loading
        for key in client.scan_iter("*hb:*"):
            beat = json.loads(client.get(key) or "{}")
            if queue in beat.get("queues", []):
                pid = int(beat["pid"])
                pids.add(pid)
                pids.add(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]))  # ppid
        if not pids and time.monotonic() > end:
            raise TimeoutError(f"no {queue} worker heartbeat")
        time.sleep(0.5)
    client.close()
    return sorted(pids)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes (Linux /proc): what the work cost, whatever else the machine ran."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError as exc:  # a recycled pool child: its CPU time is gone, the figure would lie
            raise RuntimeError(f"worker process {pid} exited during the run; re-run") from exc
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def workers_needed(per_day: int, per_s: float, peak: float, utilisation: float) -> int:
    return max(1, math.ceil(per_day / 86400 * peak / (per_s * utilisation)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--long-texts", type=int, default=400)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1, help="torch / ONNX threads of the one pool child")
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="cpu", help="MOD_TEXT_DEVICE of the text worker (cpu, cuda); on a GPU "
                    "the per-CPU-second column is not the limit: use the wall column")
    ap.add_argument("--peak", type=float, default=3.0)
    ap.add_argument("--utilisation", type=float, default=0.7)
    args = ap.parse_args()
    model, label = text_model(args.model)
    load_before = os.getloadavg()
    runs: dict[str, tuple[float, int, float]] = {}  # kind -> (wall items/s, not finished, items per CPU second)
    if args.texts:
        runs["short texts"] = bench_text(model, args.texts, 6, args.threads, args.device)
    if args.long_texts:
        runs["paragraphs"] = bench_text(model, args.long_texts, 100, args.threads, args.device)
    if args.images:
        runs["images"] = bench_images(args.images, args.threads, model)
    load_after = os.getloadavg()
    print(f"text model: {label} on {args.device}; threads per worker process: {args.threads}; cpus: {os.cpu_count()}")
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (figures are provisional when busy)")
    print("not finished: " + ", ".join(f"{k} {v[1]}" for k, v in runs.items()))
    print()
    # Wall rate: what one worker process did on this machine now. CPU rate: items per CPU-second of the worker's
    # processes (Celery main + pool child), i.e. per fully used core; it is far less sensitive to other load.
    print("| worker kind (1 process, -c 1) | items/s (wall, this machine now) | items per CPU-second (≈ per core) |")
    print("|---|---|---|")
    for kind, (wall, _, cpu) in runs.items():
        print(f"| {kind} | {wall:.1f} | {cpu:.1f} |")
    print()
    print(f"| daily volume | average/s | peak/s (x{args.peak:g}) | cores (= 1-thread worker processes) at "
          f"{args.utilisation:.0%} |")
    print("|---|---|---|---|")
    for kind, volume in VOLUMES:
        names = ["short texts", "paragraphs"] if kind == "texts" else ["images"]
        counts = [f"{workers_needed(volume, runs[k][2], args.peak, args.utilisation)} ({k})"
                  for k in names if k in runs and runs[k][2] > 0]
        avg = volume / 86400
        print(f"| {volume:,} {kind}/day | {avg:,.1f} | {avg * args.peak:,.1f} | {', '.join(counts) or 'n/a'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
