"""Owns the operator CLI: rescans (same request model and error codes as the API) and review-queue repair.

    python -m service.cli rescan start --tenant demo --kind text     # validate, create, follow with a progress bar
    python -m service.cli rescan watch rs_0123abcd
    python -m service.cli rescan cancel rs_0123abcd
    python -m service.cli queue repair --dry-run [--tenant demo]     # rebuild review-queue membership from items

Every command first prints which Redis it uses (password masked) to stderr. Errors are one line on stderr,
`error: <code>: <message>`, with the API's stable code, and a non-zero exit status (see EXIT_CODES).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import redis
from kombu.exceptions import OperationalError
from pydantic import ValidationError

from service.core.config import Settings, get_settings
from service.core.errors import validation_error
from service.core.queue import RESCAN_PLAN_TASK, TaskQueue
from service.core.rescan_request import RescanFilter
from service.store.client import sync_client
from service.store.rescans import RescanStore
from service.store.review_repair import ReviewRepair

# Exit status per error code; anything unexpected still exits 1 (with Python's traceback: a bug, not an input).
EXIT_CODES = {"validation_error": 2, "invalid_text": 2, "rescan_not_found": 3, "rescan_finished": 4,
              "store_unavailable": 5, "queue_unavailable": 5}


class CliError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def masked_url(url: str) -> str:
    """The URL with its password replaced by `***` (user names stay: they help tell two setups apart)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, parts.fragment))


def describe_redis(settings: Settings) -> str:
    if settings.redis_sentinels:
        db = (urlsplit(settings.redis_url).path or "/0").lstrip("/") or "0"
        return (f"redis: sentinels {','.join(settings.redis_sentinels)} master {settings.redis_sentinel_master} "
                f"db {db}")
    broker = settings.broker_url
    return f"redis: {masked_url(settings.redis_url)}" + (f" (broker {masked_url(broker)})" if broker else "")


def fail(code: str, message: str) -> NoReturn:
    print(f"error: {code}: {message}", file=sys.stderr)
    raise SystemExit(EXIT_CODES.get(code, 1))


# ---- rescans -------------------------------------------------------------------------------------------------
def parse_filter(args: argparse.Namespace) -> dict[str, Any]:
    """The API's RescanFilter, so `--kind foo` fails here with `validation_error` before any job exists."""
    raw = {k: getattr(args, k) for k in RescanFilter.model_fields if getattr(args, k, None) is not None}
    try:
        return RescanFilter.model_validate(raw).model_dump(exclude_none=True)
    except ValidationError as exc:
        _, code, message, details = validation_error(exc.errors())
        fields = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in details["errors"])
        raise CliError(code, f"{message} ({fields})") from exc


def watch(jobs: RescanStore, job_id: str, poll_s: float = 0.5) -> dict[str, Any]:
    from tqdm import tqdm

    job = jobs.get(job_id)
    if job is None:
        raise CliError("rescan_not_found", f"no rescan {job_id!r}")
    bar = tqdm(total=job["total"], desc=job_id, unit="item", file=sys.stderr)
    while True:
        job = jobs.get(job_id) or job
        bar.total = job["total"]
        bar.n = job["done"]
        bar.set_postfix(changed=job["changed"], failed=job["failed"], skipped=job["skipped"], status=job["status"])
        bar.refresh()
        if job["status"] in ("done", "cancelled", "failed"):
            bar.close()
            return job
        time.sleep(poll_s)


def rescan_start(settings: Settings, args: argparse.Namespace) -> None:
    filters = parse_filter(args)
    jobs = RescanStore(sync_client(settings))
    job_id = jobs.create(filters, "cli")
    queue = TaskQueue(settings)
    try:
        queue.send(RESCAN_PLAN_TASK, [job_id])
    except OperationalError as exc:
        jobs.fail(job_id, "queue_unavailable")  # a job nobody will plan must not stay `planning`
        raise CliError("queue_unavailable", f"the task queue is unreachable ({exc}); job {job_id} marked failed"
                       ) from exc
    finally:
        queue.close()
    print(job_id)
    if not args.no_wait:
        print(json.dumps(watch(jobs, job_id), indent=2))


def rescan_watch(settings: Settings, args: argparse.Namespace) -> None:
    print(json.dumps(watch(RescanStore(sync_client(settings)), args.job_id), indent=2))


def rescan_cancel(settings: Settings, args: argparse.Namespace) -> None:
    jobs = RescanStore(sync_client(settings))
    job = jobs.get(args.job_id)
    if job is None:
        raise CliError("rescan_not_found", f"no rescan {args.job_id!r}")
    if not jobs.cancel(args.job_id):
        raise CliError("rescan_finished", f"the rescan already finished (status: {job['status']})")
    print(json.dumps(jobs.get(args.job_id), indent=2))


# ---- review queue ------------------------------------------------------------------------------------------
def queue_repair(settings: Settings, args: argparse.Namespace) -> None:
    """Rebuild queue membership from the items (the rule in service.store.queue_rule.QUEUE_RULE)."""
    changes = ReviewRepair(sync_client(settings)).repair(args.tenant, dry_run=args.dry_run)
    verb = "would change" if args.dry_run else "changed"
    for change in changes:
        print(json.dumps(change, sort_keys=True))
    print(f"{verb} {len(changes)} queue entr{'y' if len(changes) == 1 else 'ies'}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = parser.add_subparsers(dest="group", required=True)
    rescan = groups.add_parser("rescan", help="rescan stored items with the current model and policy")
    add_rescan_commands(rescan)
    queue = groups.add_parser("queue", help="review-queue maintenance")
    qsub = queue.add_subparsers(dest="cmd", required=True)
    repair = qsub.add_parser("repair", help="rebuild review-queue membership from the items")
    repair.add_argument("--tenant", help="only this tenant (default: every tenant)")
    repair.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    repair.set_defaults(func=queue_repair)
    return parser


def add_rescan_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cmd", required=True)
    start = sub.add_parser("start", help="start a job and follow it")
    # Plain strings: RescanFilter decides what is valid, so the CLI and the API accept and refuse the same things.
    for name in ("kind", "tenant", "decision", "model_version_not", "policy_version_not"):
        start.add_argument(f"--{name.replace('_', '-')}", dest=name)
    for name in ("since", "until", "scored_before"):
        start.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float)
    start.add_argument("--limit", type=int)
    start.add_argument("--no-wait", action="store_true", help="print the job id and return")
    start.set_defaults(func=rescan_start)
    for name, func in (("watch", rescan_watch), ("cancel", rescan_cancel)):
        cmd = sub.add_parser(name)
        cmd.add_argument("job_id")
        cmd.set_defaults(func=func)


def run(args: argparse.Namespace) -> None:
    settings = get_settings()
    print(describe_redis(settings), file=sys.stderr)
    func: Callable[[Settings, argparse.Namespace], None] = args.func
    try:
        func(settings, args)
    except CliError as exc:
        fail(exc.code, exc.message)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        fail("store_unavailable", f"the verdict store (Redis) is unreachable: {exc}")
    except OperationalError as exc:
        fail("queue_unavailable", f"the task queue is unreachable: {exc}")


def main(argv: list[str] | None = None) -> None:
    run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
