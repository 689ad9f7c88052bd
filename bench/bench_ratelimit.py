"""Rate limits under a flood: one key floods the submit route; the others keep their own quota.

    python -m bench.bench_ratelimit --rate 20 --burst 40 --n 1000 --concurrency 32

A private stack (redis, a text worker, the gateway) with the submit family limited to RATE per second and BURST
per key. One key sends N submissions as fast as CONCURRENCY connections allow; a second key of another tenant
sends a trickle meanwhile. Prints the status counts, the accepted rate against the configured one, whether
every 429 carried `Retry-After` and `RateLimit-*` headers, and whether the second key was ever refused (it must
not be: buckets are per key and per tenant).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter

import httpx

from bench.stack import ROOT, private_stack


async def flood(base: str, key: str, n: int, concurrency: int) -> tuple[Counter[int], int, float]:
    statuses: Counter[int] = Counter()
    missing_headers = 0
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(i: int) -> None:
            nonlocal missing_headers
            async with sem:
                resp = await client.post("/v1/moderations", json={"text": f"flood {i}: a comment"})
                statuses[resp.status_code] += 1
                if resp.status_code == 429 and not (resp.headers.get("retry-after")
                                                    and resp.headers.get("ratelimit-remaining") is not None):
                    missing_headers += 1
        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return statuses, missing_headers, time.perf_counter() - start


async def trickle(base: str, key: str, seconds: float) -> Counter[int]:
    out: Counter[int] = Counter()
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            out[(await client.post("/v1/moderations", json={"text": "an ordinary comment"})).status_code] += 1
            await asyncio.sleep(0.5)
    return out


async def run(base: str, args: argparse.Namespace) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": "Bearer bench-admin-key-0001"}) as admin:
        keys = []
        for tenant in ("flooder", "bystander"):
            resp = await admin.post("/v1/keys", json={"tenant": tenant, "role": "platform", "name": "bench"})
            resp.raise_for_status()
            keys.append(resp.json()["key"])
    (statuses, missing, elapsed), other = await asyncio.gather(
        flood(base, keys[0], args.n, args.concurrency), trickle(base, keys[1], 8.0))
    accepted = statuses[202] + statuses[200]
    print(f"flood: {args.n} submissions in {elapsed:.1f}s, statuses {dict(sorted(statuses.items()))}")
    print(f"accepted {accepted} = {accepted / elapsed:.1f}/s against a configured {args.rate}/s + burst {args.burst} "
          f"(expected at most {args.burst + args.rate * elapsed:.0f})")
    print(f"429s without Retry-After/RateLimit-* headers: {missing}")
    print(f"other tenant during the flood: statuses {dict(sorted(other.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    env = {"MOD_TEXT_MODEL_PATH": str(ROOT / "var" / "models" / "text-default"),
           "MOD_BOOTSTRAP_ADMIN_KEY": "bench-admin-key-0001",
           "MOD_RATELIMIT_SUBMIT_KEY_PER_S": str(args.rate), "MOD_RATELIMIT_SUBMIT_KEY_BURST": str(args.burst),
           "MOD_RATELIMIT_SUBMIT_TENANT_PER_S": str(args.rate), "MOD_RATELIMIT_SUBMIT_TENANT_BURST": str(args.burst)}
    with private_stack(env, [("text,webhooks", 1)]) as (base, _):
        asyncio.run(run(base, args))


if __name__ == "__main__":
    main()
