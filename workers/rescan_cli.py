"""Owns the operator CLI for rescans: start a job (same filters as the API) and follow it with a progress bar.

    python -m workers.rescan_cli start --tenant demo --kind text
    python -m workers.rescan_cli watch rs_0123abcd
    python -m workers.rescan_cli cancel rs_0123abcd
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from tqdm import tqdm

from service.core.config import get_settings
from service.core.queue import RESCAN_PLAN_TASK, TaskQueue
from service.store.client import sync_client
from service.store.rescans import RescanStore


def watch(jobs: RescanStore, job_id: str, poll_s: float = 0.5) -> dict:
    job = jobs.get(job_id)
    if job is None:
        sys.exit(f"no rescan {job_id}")
    bar = tqdm(total=job["total"], desc=job_id, unit="item")
    while True:
        job = jobs.get(job_id) or job
        bar.total = job["total"]
        bar.n = job["done"]
        bar.set_postfix(changed=job["changed"], failed=job["failed"], skipped=job["skipped"],
                        status=job["status"])
        bar.refresh()
        if job["status"] in ("done", "cancelled", "failed"):
            bar.close()
            return job
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rescan stored items with the current model and policy.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    start = sub.add_parser("start", help="start a job and follow it")
    for name in ("kind", "tenant", "decision", "model_version_not", "policy_version_not"):
        start.add_argument(f"--{name.replace('_', '-')}", dest=name)
    for name in ("since", "until", "scored_before"):
        start.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float)
    start.add_argument("--limit", type=int)
    start.add_argument("--no-wait", action="store_true")
    for name in ("watch", "cancel"):
        sub.add_parser(name).add_argument("job_id")
    args = parser.parse_args(argv)
    settings = get_settings()
    jobs = RescanStore(sync_client(settings))
    if args.cmd == "start":
        filters = {k: v for k, v in vars(args).items()
                   if k not in ("cmd", "no_wait") and v is not None}
        job_id = jobs.create(filters, "cli")
        TaskQueue(settings).send(RESCAN_PLAN_TASK, [job_id])
        print(job_id)
        if not args.no_wait:
            print(json.dumps(watch(jobs, job_id), indent=2))
    elif args.cmd == "watch":
        print(json.dumps(watch(jobs, args.job_id), indent=2))
    else:
        print("cancelled" if jobs.cancel(args.job_id) else "already finished")


if __name__ == "__main__":
    main()
