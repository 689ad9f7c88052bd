"""Owns rescans on the worker side: planning a job into chunks and re-evaluating a chunk exactly once."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import redis

from common.language import detect_language
from service.core.domain import Item, Verdict
from service.core.policy import Policy
from service.core.queue import RESCAN_TASK, split_text_chunks
from service.store import keys
from service.store.client import as_strs, broker_client
from service.store.rescans import RescanStore
from workers import runtime
from workers.lifecycle import VERDICT_CACHE_TTL_S, Done
from workers.pipelines.media_rescan import rescore_media
from workers.pipelines.rescan_outcome import Outcome, apply_outcomes, outcome
from workers.pipelines.text import build_verdict, cached_verdicts, score_distinct
from workers.runtime import Runtime
from workers.verdicts import blocklist_reasons

log = logging.getLogger(__name__)
WRITE_BATCH = 500  # outcomes per script call when a whole chunk fails at once
LIVE_QUEUES = ("text", "media")


def checked_versions(item: Item) -> tuple[set[str], str | None]:
    """(model versions, policy version) the item was last checked with: a rescan's `checked_with` stamp (written
    whether or not the verdict changed), else its verdict's own. Models count as `name@version` and `version`."""
    checked = item.get("checked_with") or item.get("rescanned_with") or {}
    models = checked.get("models") if checked else item.get("models")
    policy = checked.get("policy_version") if checked else item.get("policy_version")
    names = {f"{m['name']}@{m['version']}" for m in models or []} | {m["version"] for m in models or []}
    return names, policy


def _matches(item: Item, f: dict[str, Any]) -> bool:
    """Every filter applies to every item, whatever its status (an unfinished item has no decision/versions)."""
    if f.get("kind") and item.get("kind") != f["kind"]:
        return False
    if f.get("decision") and item.get("decision") != f["decision"]:
        return False
    models, policy = checked_versions(item)
    if f.get("model_version_not") and f["model_version_not"] in models:
        return False
    if f.get("policy_version_not") and policy == f["policy_version_not"]:
        return False
    # Scored = last checked: an unchanged rescan re-scored the item too, so it no longer counts as "older".
    scored = (item.get("checked_with") or {}).get("at") or item.get("completed_at") or 0
    return not (f.get("scored_before") and float(scored) >= f["scored_before"])


def _pages(rt: Runtime, f: dict[str, Any], page: int = 1000) -> Iterator[list[Item]]:
    key = keys.index(f.get("tenant"))
    lo, hi = f.get("since") or "-inf", f.get("until") or "+inf"
    offset = 0
    while True:
        ids = as_strs(rt.redis.zrangebyscore(key, lo, hi, start=offset, num=page))
        if not ids:
            return
        offset += len(ids)
        yield [it for it in rt.items.get_many(ids) if it is not None]


def chunks(items: list[Item], text_size: int, media_size: int, text_chars: int) -> list[list[str]]:
    """Task-sized lists of ids: texts in large chunks (batched model calls) of at most `text_chars` characters
    (a chunk of long texts must stay inside its time limit too), media in small ones (each item is a model run of
    its own, and a chunk must stay inside the media time limit)."""
    texts = [it for it in items if it.get("kind") == "text"]
    media = [it["id"] for it in items if it.get("kind") != "text"]
    return (split_text_chunks([it["id"] for it in texts], [len(it.get("text") or "") for it in texts], text_size,
                              text_chars)
            + [media[i : i + media_size] for i in range(0, len(media), media_size)])


def plan(rt: Runtime, job_id: str) -> None:
    """Collect target ids and fan out chunk tasks; safe to redeliver (targets are a set)."""
    jobs = RescanStore(rt.redis)
    job = jobs.get(job_id)
    if job is None or job["status"] != "planning":
        return
    f = job["filter"]
    limit = f.get("limit")
    planned = 0
    for items in _pages(rt, f):
        chosen = [it for it in items if _matches(it, f)]
        if limit is not None:
            chosen = chosen[: max(0, limit - planned)]
        jobs.add_targets(job_id, [it["id"] for it in chosen])
        for chunk in chunks(chosen, rt.settings.rescan_chunk_size, rt.settings.rescan_media_chunk_size,
                            rt.settings.text_task_max_chars):
            rt.queue.send(RESCAN_TASK, [job_id, chunk])
        planned += len(chosen)
        if jobs.status(job_id) == "cancelled" or (limit is not None and planned >= limit):
            break
    jobs.mark_planned(job_id)
    log.info("rescan %s planned %d items", job_id, planned)


def yield_to_live(rt: Runtime, broker: redis.Redis) -> None:
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


def fail_planning(rt: Runtime, job_id: str, reason: str) -> None:
    """Planning could not finish: stop the job (chunks already sent still count) instead of hanging."""
    RescanStore(rt.redis).fail(job_id, reason)


def fail_uncounted(rt: Runtime, job_id: str, ids: list[str], reason: str) -> None:
    """An unexpected error must not leave items uncounted (the job would never finish)."""
    jobs = RescanStore(rt.redis)
    for start in range(0, len(ids), WRITE_BATCH):
        jobs.apply_many([jobs.request(job_id, item_id, "failed", audit_event="rescan_failed",
                                      audit={"job": job_id, "reason": reason})
                         for item_id in ids[start : start + WRITE_BATCH]])
    jobs.maybe_finish(job_id)


def run_chunk(rt: Runtime, job_id: str, ids: list[str]) -> None:
    """Re-evaluate a chunk: per batch one read (job status, items, seen set), one model call, one write."""
    jobs = RescanStore(rt.redis)
    broker = broker_client(rt.settings)  # Sentinel-aware, like every other Redis connection
    try:
        # Batches of MOD_RESCAN_BATCH_SIZE (one read, one model call, one write): on CPU a forward of 64 short
        # texts costs ~17% less per text than one of 16 (docs/operations.md). A live backlog still waits at most
        # one batch, and a dedicated rescan worker runs niced (runtime.start_process). Live p50 during a rescan
        # measured about 1.12x its value alone, as with batches of 16 (bench/bench_rescan.py).
        size = rt.settings.rescan_batch_size
        for start in range(0, len(ids), size):
            yield_to_live(rt, broker)
            status, batch = jobs.load_chunk(job_id, ids[start : start + size])
            if status not in ("running", "planning"):
                return  # cancelled (or unknown): stop without counting the rest
            marker = rt.settings.fault_pause_marker
            if marker and any(marker in (it.get("text") or "") for it in batch):
                time.sleep(rt.settings.fault_pause_s)  # failure tests only: widen the kill window
            _rescore(rt, jobs, job_id, batch)
    finally:
        broker.close()
    jobs.maybe_finish(job_id)


def _rescore(rt: Runtime, jobs: RescanStore, job_id: str, batch: list[Item]) -> None:
    outcomes: list[Outcome] = []
    text: list[Item] = []
    for it in batch:
        if it["status"] != "done":
            outcomes.append((jobs.request(job_id, it["id"], "skipped", audit_event="rescan_skipped",
                                          audit={"job": job_id, "reason": f"status {it['status']}"}), None))
        elif it["kind"] == "text":
            text.append(it)
        else:
            rescore_media(rt, jobs, job_id, it)  # item by item: each media item is a model run of its own
    if text:
        slot = runtime.text_model(rt)
        if slot.obj is None:
            outcomes += [(jobs.request(job_id, it["id"], "failed", audit_event="rescan_failed",
                                       audit={"job": job_id, "reason": slot.error}), None) for it in text]
        else:
            outcomes += [outcome(job_id, it, verdict, key, policy)
                         for it, verdict, key, policy in _text_verdicts(rt, jobs, slot.obj, text)]
    apply_outcomes(rt, jobs, outcomes)


def _text_verdicts(rt: Runtime, jobs: RescanStore, model: Any, items: list[Item]) -> list[Done]:
    """`text.verdicts_for` for a rescan batch: cached verdicts reused; an item whose stored scores came from this
    very model (same `name@version`, the identity the verdict cache already relies on) is re-decided from them
    under the current policy without a model run; every other distinct text is scored, all in one model call. The
    cache claims go in one round trip instead of one or two per item."""
    policies, vkeys, cached = cached_verdicts(rt, model, items)
    stored = [_own_scores(it, model) for it in items]
    scored = score_distinct(model, items, [hit is None and own is None for hit, own in zip(cached, stored,
                                                                                            strict=True)],
                            rt.settings.rescan_batch_size)
    langs = [base.for_language(detect_language(it.get("text") or "")) for it, base in zip(items, policies,
                                                                                           strict=True)]
    fresh = [(i, key, build_verdict(it["text"] or "", scored.get(it["content_hash"]), policy, model) if own is None
              else _redecide(it, own, policy, model))
             for i, (it, key, hit, own, policy) in enumerate(zip(items, vkeys, cached, stored, langs, strict=True))
             if hit is None]
    verdicts: list[Verdict | None] = list(cached)
    for (i, _, _), claimed in zip(fresh, jobs.claim_verdicts([(k, v) for _, k, v in fresh], VERDICT_CACHE_TTL_S),
                                  strict=True):
        verdicts[i] = claimed
    return [(it, v, key, policy) for it, v, key, policy in zip(items, verdicts, vkeys, langs, strict=True)
            if v is not None]


def _own_scores(it: Item, model: Any) -> dict[str, float] | None:
    """The item's stored scores when this model (same name and version) made them, else None (score again)."""
    scores = it.get("scores")
    if (it.get("models") != [{"name": model.name, "version": model.version}] or not isinstance(scores, dict)
            or set(scores) != set(model.output_categories) or not (it.get("text") or "").strip()):
        return None
    return {c: float(scores[c]) for c in model.output_categories}


def _redecide(it: Item, scores: dict[str, float], policy: Policy, model: Any) -> Verdict:
    """The verdict `build_verdict` makes, from scores this model already gave the item (model runs are
    deterministic per version): the current policy's decision and blocklist reasons, the stored explanation."""
    reasons = blocklist_reasons(it.get("text") or "", policy.blocklist_terms)
    decision, flagged = policy.decide(scores, force_review=bool(reasons))
    return {"decision": decision, "scores": scores, "flagged": flagged, "reasons": reasons,
            "explanation": it.get("explanation"), "models": [{"name": model.name, "version": model.version}],
            "policy_version": policy.id}
