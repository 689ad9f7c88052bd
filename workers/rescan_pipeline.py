"""Owns rescans on the worker side: planning a job into chunks and re-evaluating a chunk exactly once."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import redis

from service.policy import Policy
from service.queue import RESCAN_TASK, WEBHOOK_TASK
from service.store.client import as_strs
from service.store.rescans import RescanStore
from service.store.reviews import item_priority, queue_key
from workers import runtime
from workers.text_pipeline import VERDICT_FIELDS, needs_review, verdicts_for

log = logging.getLogger(__name__)
SUB_BATCH = 16
LIVE_QUEUES = ("text", "media")


def _matches(item: dict[str, Any], f: dict[str, Any]) -> bool:
    if item.get("status") != "done":
        return True  # counted as skipped, with the reason, rather than silently left out
    if f.get("kind") and item["kind"] != f["kind"]:
        return False
    if f.get("decision") and item.get("decision") != f["decision"]:
        return False
    versions = {f"{m['name']}@{m['version']}" for m in item.get("models") or []} | {
        m["version"] for m in item.get("models") or []}
    if f.get("model_version_not") and f["model_version_not"] in versions:
        return False
    if f.get("policy_version_not") and item.get("policy_version") == f["policy_version_not"]:
        return False
    return not (f.get("scored_before") and float(item.get("completed_at") or 0) >= f["scored_before"])


def _pages(rt: runtime.Runtime, f: dict[str, Any], page: int = 1000) -> Iterator[list[dict[str, Any]]]:
    key = f"mod:idx:tenant:{f['tenant']}" if f.get("tenant") else "mod:idx:all"
    lo, hi = f.get("since") or "-inf", f.get("until") or "+inf"
    offset = 0
    while True:
        ids = as_strs(rt.redis.zrangebyscore(key, lo, hi, start=offset, num=page))
        if not ids:
            return
        offset += len(ids)
        yield [it for it in rt.items.get_many(ids) if it is not None]


def plan(job_id: str) -> None:
    """Collect target ids and fan out chunk tasks; safe to redeliver (targets are a set)."""
    rt = runtime.get_runtime()
    jobs = RescanStore(rt.redis)
    job = jobs.get(job_id)
    if job is None or job["status"] != "planning":
        return
    f = job["filter"]
    limit = f.get("limit")
    planned = 0
    for items in _pages(rt, f):
        ids = [it["id"] for it in items if _matches(it, f)]
        if limit is not None:
            ids = ids[: max(0, limit - planned)]
        jobs.add_targets(job_id, ids)
        for i in range(0, len(ids), rt.settings.rescan_chunk_size):
            rt.queue.send(RESCAN_TASK, [job_id, ids[i : i + rt.settings.rescan_chunk_size]])
        planned += len(ids)
        if jobs.status(job_id) == "cancelled" or (limit is not None and planned >= limit):
            break
    jobs.mark_planned(job_id)
    log.info("rescan %s planned %d items", job_id, planned)


def yield_to_live(rt: runtime.Runtime, broker: redis.Redis) -> None:
    """Live traffic first: wait (bounded) while the live queues have messages nobody took yet."""
    end = time.monotonic() + rt.settings.rescan_yield_max_s
    while time.monotonic() < end:
        try:
            backlog = sum(int(broker.llen(q)) for q in LIVE_QUEUES)
        except redis.RedisError:
            return
        if backlog == 0:
            return
        time.sleep(0.05)


def fail_planning(job_id: str, reason: str) -> None:
    """Planning could not finish: stop the job (chunks already sent still count) instead of hanging."""
    rt = runtime.get_runtime()
    rt.redis.hset(f"mod:rescan:{job_id}", mapping={"status": "failed", "error": reason, "finished_at": time.time()})


def fail_uncounted(job_id: str, ids: list[str], reason: str) -> None:
    """An unexpected error must not leave items uncounted (the job would never finish)."""
    rt = runtime.get_runtime()
    jobs = RescanStore(rt.redis)
    for item_id in ids:
        jobs.apply(job_id, item_id, "failed", audit_event="rescan_failed", audit={"job": job_id, "reason": reason})
    jobs.maybe_finish(job_id)


def run_chunk(job_id: str, ids: list[str]) -> None:
    rt = runtime.get_runtime()
    jobs = RescanStore(rt.redis)
    broker = redis.Redis.from_url(rt.settings.celery_broker_url, socket_timeout=2)
    try:
        for start in range(0, len(ids), SUB_BATCH):
            if jobs.status(job_id) not in ("running", "planning"):
                return  # cancelled (or unknown): stop without counting the rest
            yield_to_live(rt, broker)
            batch = [it for it in rt.items.get_many(ids[start : start + SUB_BATCH])
                     if it is not None and not jobs.is_counted(job_id, it["id"])]
            marker = rt.settings.fault_pause_marker
            if marker and any(marker in (it.get("text") or "") for it in batch):
                time.sleep(rt.settings.fault_pause_s)  # failure tests only: widen the kill window
            _rescore(rt, jobs, job_id, batch)
    finally:
        broker.close()
    jobs.maybe_finish(job_id)


def _rescore(rt: runtime.Runtime, jobs: RescanStore, job_id: str, batch: list[dict[str, Any]]) -> None:
    text: list[dict[str, Any]] = []
    for it in batch:
        if it["status"] != "done":
            jobs.apply(job_id, it["id"], "skipped", audit_event="rescan_skipped",
                       audit={"job": job_id, "reason": f"status {it['status']}"})
        elif it["kind"] == "text":
            text.append(it)
        else:
            from workers.media_rescan import rescore_media

            rescore_media(rt, jobs, job_id, it)
    if not text:
        return
    slot = runtime.text_model()
    if slot.obj is None:
        for it in text:
            jobs.apply(job_id, it["id"], "failed", audit_event="rescan_failed",
                       audit={"job": job_id, "reason": slot.error})
        return
    for it, verdict, key, policy in verdicts_for(slot.obj, text):
        record_outcome(rt, jobs, job_id, it, verdict, key, policy)


def record_outcome(rt: runtime.Runtime, jobs: RescanStore, job_id: str, it: dict[str, Any],
                   verdict: dict[str, Any], key: str, policy: Policy) -> None:
    """Compare with the current verdict; write a new version only when the outcome changed."""
    now = time.time()
    same = verdict["decision"] == it.get("decision") and sorted(verdict["flagged"]) == sorted(it.get("flagged") or [])
    stamp = {"rescanned_with": {"job": job_id, "at": now, "models": verdict["models"],
                                "policy_version": verdict["policy_version"]}}
    if it.get("source") == "human":
        # A human decision is never overwritten; a disagreeing rescan only flags the item.
        if verdict["decision"] != it.get("decision"):
            disagreement = {"job": job_id, "at": now, "model_decision": verdict["decision"],
                            "human_decision": it.get("decision"), "scores": verdict["scores"]}
            jobs.apply(job_id, it["id"], "unchanged", fields={"rescan_disagreement": disagreement, **stamp},
                       audit_event="rescan_disagrees", audit=disagreement, disagree=True)
        else:
            jobs.apply(job_id, it["id"], "unchanged", fields=stamp)
        return
    if same:
        jobs.apply(job_id, it["id"], "unchanged", fields=stamp)
        return
    old = {k: it.get(k) for k in ("decision", "scores", "flagged", "models", "policy_version", "verdict_version",
                                  "completed_at")}
    blocked = None
    ext = it.get("external_id")
    if ext and verdict["decision"] == "block":
        blocked = ("add", it["tenant"], ext)
    elif ext and it.get("decision") == "block":
        blocked = ("remove", it["tenant"], ext)
    review = None
    if needs_review(verdict["decision"], policy) and it.get("review_status") not in ("pending", "claimed"):
        review = (queue_key(it["tenant"]), item_priority({**it, "scores": verdict["scores"]}))
    fields = {k: verdict.get(k) for k in VERDICT_FIELDS}
    fields.update({"verdict_key": key, "completed_at": now, "source": "model", **stamp})
    version = "" if it.get("verdict_version") is None else str(it["verdict_version"])
    applied = jobs.apply(job_id, it["id"], "changed", fields=fields, old=old, blocked=blocked, review=review,
                         expect_version=version,
                         audit={"job": job_id, "from": it.get("decision"), "to": verdict["decision"],
                                "policy_version": verdict["policy_version"], "models": verdict["models"]})
    if applied and it.get("callback_url"):
        rt.queue.send(WEBHOOK_TASK, [it["id"], "moderation.rescan_changed"])
