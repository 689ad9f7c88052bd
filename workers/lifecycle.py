"""Owns the generic item lifecycle every pipeline shares: claim live items, fail them, write final verdicts.

Text, media and rescan pipelines all move items through the same states (queued → processing → done |
failed | rejected); keeping the moves here means no pipeline reaches into another to do it.
"""

from __future__ import annotations

import logging
import os
import time

from service.core.domain import Item, Verdict
from service.core.policy import Policy
from service.core.queue import WEBHOOK_TASK
from service.store.items import LIVE, Transition
from service.store.reviews import item_priority, queue_key
from service.store.stats import StatsStore
from workers.runtime import Runtime

log = logging.getLogger(__name__)

VERDICT_CACHE_TTL_S = 7 * 86400
VERDICT_FIELDS = ("decision", "scores", "flagged", "reasons", "explanation", "models", "policy_version", "media")

# (item, verdict, verdict cache key, policy that decided it)
Done = tuple[Item, Verdict, str, Policy]


def mark_processing(rt: Runtime, item_ids: list[str]) -> list[Item]:
    """Items still live, now `processing`. A redelivered task sees `processing` and carries on."""
    return mark_loaded(rt, [it for it in rt.items.get_many(item_ids) if it is not None and it["status"] in LIVE])


def mark_loaded(rt: Runtime, live: list[Item]) -> list[Item]:
    data = {"worker": os.environ.get("MOD_WORKER_HOSTNAME", ""), "pid": os.getpid()}
    moved = rt.items.transition_many([Transition(it["id"], "processing", LIVE, "processing", data=data)
                                      for it in live])
    return [it for it, (ok, _) in zip(live, moved, strict=True) if ok]


def fail(rt: Runtime, item_ids: list[str], code: str, message: str, status: str = "failed") -> None:
    """End live items with an error: `failed` (our side) or `rejected` (bad input)."""
    for item_id in item_ids:
        rt.items.transition(item_id, status, LIVE, status,
                            fields={"error_code": code, "error_message": message, "completed_at": time.time()},
                            data={"code": code, "message": message})


def needs_review(decision: str, policy: Policy) -> bool:
    return decision == "review" or (decision == "block" and policy.review_blocked)


def finish_all(rt: Runtime, done: list[Done]) -> None:
    """Write verdicts (one round trip); only the transition that wins fires the webhook."""
    transitions = []
    for item, verdict, key, policy in done:
        blocked = None
        ext = item.get("external_id")
        if verdict["decision"] == "block" and ext:
            blocked = ("add", item["tenant"], ext)
        review = None
        if needs_review(verdict["decision"], policy):
            review = (queue_key(item["tenant"]), item_priority({**item, "scores": verdict["scores"]}))
        transitions.append(Transition(
            item["id"], "done", ("processing",), "verdict",
            fields={**{k: verdict.get(k) for k in VERDICT_FIELDS},
                    "verdict_key": key, "completed_at": time.time(), "source": "model"},
            # `worker` names the Celery node that wrote the verdict (scale-out audits: who did the work).
            data={"decision": verdict["decision"], "policy_version": verdict["policy_version"],
                  "models": verdict["models"], "flagged": verdict["flagged"],
                  "worker": os.environ.get("MOD_WORKER_HOSTNAME", "")},
            decision=verdict["decision"], blocked=blocked, review=review,
            webhook="moderation.completed" if item.get("callback_url") else "",
        ))
    results = rt.items.transition_many(transitions)
    for (item, _, _, _), (moved, prev) in zip(done, results, strict=True):
        if not moved:
            log.info("item %s already %s; verdict not rewritten", item["id"], prev)
        elif item.get("callback_url"):
            rt.queue.send(WEBHOOK_TASK, [item["id"], "moderation.completed"])
    StatsStore(rt.redis).record_verdicts([(d[0], d[1], t.review is not None) for d, t, (moved, _)
                                          in zip(done, transitions, results, strict=True) if moved])
