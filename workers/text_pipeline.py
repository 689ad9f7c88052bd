"""Owns the text moderation flow of one task: load items, score (or reuse cached verdicts), decide, store."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from service.policy import Policy
from service.queue import WEBHOOK_TASK
from service.store.items import LIVE, Transition, verdict_key
from service.store.reviews import item_priority, queue_key
from workers import runtime
from workers.verdicts import blocklist_reasons

log = logging.getLogger(__name__)

VERDICT_CACHE_TTL_S = 7 * 86400
VERDICT_FIELDS = ("decision", "scores", "flagged", "reasons", "explanation", "models", "policy_version", "media")
EMPTY_NOTE = {"type": "note", "code": "empty_text", "message": "text is whitespace only; nothing to classify"}


def mark_processing(item_ids: list[str]) -> list[dict[str, Any]]:
    """Items still live, now `processing`. A redelivered task sees `processing` and carries on."""
    rt = runtime.get_runtime()
    return mark_loaded([it for it in rt.items.get_many(item_ids) if it is not None and it["status"] in LIVE])


def mark_loaded(live: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rt = runtime.get_runtime()
    data = {"worker": os.environ.get("MOD_WORKER_HOSTNAME", ""), "pid": os.getpid()}
    moved = rt.items.transition_many([Transition(it["id"], "processing", LIVE, "processing", data=data)
                                      for it in live])
    return [it for it, (ok, _) in zip(live, moved, strict=True) if ok]


def _select(rt: runtime.Runtime, own: list[str], extra: list[str]) -> list[dict[str, Any]]:
    """The task's own live items, plus popped ones while they fit the character budget (one round trip).
    Popped items that do not fit keep waiting for their own task."""
    own_set = set(own)
    chosen: list[dict[str, Any]] = []
    chars = 0
    for it in rt.items.get_many(list(dict.fromkeys([*own, *extra]))):
        if it is None or it["status"] not in LIVE:
            continue
        size = len(it.get("text") or "")
        if it["id"] in own_set or chars + size <= rt.settings.text_task_max_chars:
            chosen.append(it)
            chars += size
    return chosen


def fail(item_ids: list[str], code: str, message: str, status: str = "failed") -> None:
    """End live items with an error: `failed` (our side) or `rejected` (bad input)."""
    rt = runtime.get_runtime()
    for item_id in item_ids:
        rt.items.transition(item_id, status, LIVE, status,
                            fields={"error_code": code, "error_message": message, "completed_at": time.time()},
                            data={"code": code, "message": message})


def _fault_pause(items: list[dict[str, Any]]) -> None:
    marker = runtime.get_runtime().settings.fault_pause_marker
    if marker and any(marker in (it.get("text") or "") for it in items):
        time.sleep(runtime.get_runtime().settings.fault_pause_s)


def run(item_ids: list[str]) -> None:
    rt = runtime.get_runtime()
    # Opportunistic batching: also take text items that are waiting behind this task. Their own messages
    # arrive later and find them final (a cheap no-op), so a burst of single submissions is scored in batches.
    extra = rt.items.pop_ready_text(rt.settings.text_batch_size)
    items = mark_loaded(_select(rt, item_ids, extra))
    if not items:
        return
    _fault_pause(items)
    slot = runtime.text_model()
    if slot.obj is None:
        fail([it["id"] for it in items], "model_unavailable", slot.error or "text model not loaded")
        return
    done = verdicts_for(slot.obj, items)
    finish_all(done)


def verdicts_for(model: Any, items: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any], str, Policy]]:
    """(item, verdict, cache key, policy) for text items: cached verdicts reused, each distinct text scored once."""
    rt = runtime.get_runtime()
    policies: dict[str, Policy] = {}
    for it in items:
        if it["tenant"] not in policies:
            policies[it["tenant"]] = rt.policies.effective(it["tenant"]).for_kind("text")
    keys = [verdict_key(it["content_hash"], model.model_id, policies[it["tenant"]].id) for it in items]
    cached = rt.items.cached_verdicts(keys)
    todo = {it["content_hash"]: it["text"] for it, hit in zip(items, cached, strict=True)
            if hit is None and (it.get("text") or "").strip()}
    hashes = list(todo)
    scored = dict(zip(hashes, model.score([todo[h] for h in hashes]), strict=True)) if hashes else {}
    out = []
    for it, key, hit in zip(items, keys, cached, strict=True):
        policy = policies[it["tenant"]]
        verdict = hit or rt.items.claim_verdict(
            key, build_verdict(it["text"] or "", scored.get(it["content_hash"]), policy, model), VERDICT_CACHE_TTL_S)
        out.append((it, verdict, key, policy))
    return out


def build_verdict(text: str, result: Any, policy: Policy, model: Any) -> dict[str, Any]:
    models = [{"name": model.name, "version": model.version}]
    if result is None:  # whitespace-only: allowed with a note, no model call
        scores = dict.fromkeys(model.output_categories, 0.0)
        return {"decision": "allow", "scores": scores, "flagged": [], "reasons": [EMPTY_NOTE],
                "explanation": None, "models": models, "policy_version": policy.id}
    reasons = blocklist_reasons(text, policy.blocklist_terms)
    scores = {c: round(float(v), 4) for c, v in result.scores.items()}
    decision, flagged = policy.decide(scores, force_review=bool(reasons))
    explanation = None
    if result.sentences:
        explanation = {"windows": result.windows, "top_sentences": [s.to_dict() for s in result.sentences]}
    return {"decision": decision, "scores": scores, "flagged": flagged, "reasons": reasons,
            "explanation": explanation, "models": models, "policy_version": policy.id}


def needs_review(decision: str, policy: Policy) -> bool:
    return decision == "review" or (decision == "block" and policy.review_blocked)


def finish_all(done: list[tuple[dict[str, Any], dict[str, Any], str, Policy]]) -> None:
    """Write verdicts (one round trip); only the transition that wins fires the webhook."""
    rt = runtime.get_runtime()
    transitions = []
    for item, verdict, key, policy in done:
        blocked = None
        if verdict["decision"] == "block" and item.get("external_id"):
            blocked = ("add", item["tenant"], item["external_id"])
        review = None
        if needs_review(verdict["decision"], policy):
            review = (queue_key(item["tenant"]), item_priority({**item, "scores": verdict["scores"]}))
        transitions.append(Transition(
            item["id"], "done", ("processing",), "verdict",
            fields={**{k: verdict.get(k) for k in VERDICT_FIELDS},
                    "verdict_key": key, "completed_at": time.time(), "source": "model"},
            data={"decision": verdict["decision"], "policy_version": verdict["policy_version"],
                  "models": verdict["models"], "flagged": verdict["flagged"]},
            decision=verdict["decision"], blocked=blocked, review=review,
            webhook="moderation.completed" if item.get("callback_url") else "",
        ))
    for (item, _, _, _), (moved, prev) in zip(done, rt.items.transition_many(transitions), strict=True):
        if not moved:
            log.info("item %s already %s; verdict not rewritten", item["id"], prev)
        elif item.get("callback_url"):
            rt.queue.send(WEBHOOK_TASK, [item["id"], "moderation.completed"])
