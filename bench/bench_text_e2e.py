"""Text throughput end to end (gateway → broker → worker → Redis) vs the bare batched forward, same run.

    python -m bench.bench_text_e2e --n 2000            # default model var/models/text-default
Goal (issue 3): end-to-end ≥ 80% of bare forward; ≥ 150 short texts/s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import httpx

from bench.stack import ROOT, private_stack

SHORT = ["what a great episode", "this song is trash lol", "you are an idiot", "see you at the show tonight",
         "worst referee ever", "I love this band so much", "get out of here", "subscribe for more videos"]


def texts(n: int) -> list[str]:
    return [f"{SHORT[i % len(SHORT)]} #{i}" for i in range(n)]


def bare_forward(model: str, items: list[str], threads: int) -> float:
    import torch

    from models.text.classifier import TextClassifier

    torch.set_num_threads(threads)
    clf = TextClassifier(model, batch_size=32)
    clf.score(items[:64])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(items), 256):
        clf.score(items[i : i + 256])
    return len(items) / (time.perf_counter() - start)


def pending_items(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("moderation_pending_items "):
            return float(line.split()[1])
    return 0.0


def end_to_end(base: str, key: str, items: list[str]) -> tuple[float, int]:
    """Throughput = n / (last completed_at - first created_at), both server-side timestamps."""
    headers = {"Authorization": f"Bearer {key}"}
    ids: list[str] = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for i in range(0, len(items), 256):
            resp = client.post("/v1/moderations/batch", json={"items": [{"text": t} for t in items[i : i + 256]]})
            ids += [x["id"] for x in resp.json()["items"]]
        # Poll one cheap gauge, not every item: polling must not steal the worker's CPU.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and pending_items(client) > 0:
            time.sleep(0.5)
        final = [client.get(f"/v1/moderations/{i}").json() for i in ids]
    done = [i for i in final if i["status"] == "done"]
    span = max(i["completed_at"] for i in done) - min(i["created_at"] for i in final)
    return len(done) / span, len(ids) - len(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--model", default=str(ROOT / "var" / "models" / "text-default"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    if not Path(args.model).exists():
        sys.exit(f"model {args.model} missing: run `python -m scripts.prepare`")
    items = texts(args.n)
    bare = bare_forward(args.model, items, args.threads)
    env = {"MOD_TEXT_MODEL_PATH": args.model, "MOD_TORCH_THREADS": str(args.threads),
           "MOD_BOOTSTRAP_PLATFORM_KEY": "bench-key"}
    with private_stack(env, [("text", 1)]) as (base, _):
        e2e, lost = end_to_end(base, "bench-key", items)
    print(f"texts={args.n} threads={args.threads}")
    print(f"bare batched forward: {bare:.0f} texts/s")
    print(f"end to end (batch endpoint → worker → Redis): {e2e:.0f} texts/s, not finished: {lost}")
    print(f"ratio end-to-end / bare = {e2e / bare:.2f} (goal >= 0.8)")


if __name__ == "__main__":
    main()
