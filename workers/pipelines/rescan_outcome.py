"""Owns deciding one rescanned item's outcome: unchanged, changed (new verdict version) or disagreeing.

Every outcome records what the item was checked with (`checked_with`: models and policy version), so the
`model_version_not` / `policy_version_not` filters skip an item once a rescan has checked it, changed or not.
`outcome` only builds the store request, so a batch of them is applied in one script call (`apply_outcomes`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from service.core.domain import Item, Verdict
from service.core.policy import Policy
from service.core.queue import WEBHOOK_TASK
from service.store.rescans import RescanStore
from service.store.reviews import item_priority
from workers.lifecycle import VERDICT_FIELDS, needs_review
from workers.runtime import Runtime

# (store request for RescanStore.apply_many, item id to notify with `moderation.rescan_changed` if applied)
Outcome = tuple[dict[str, Any], str | None]


def outcome(job_id: str, it: Item, verdict: Verdict, key: str, policy: Policy) -> Outcome:
    """Compare with the current verdict; the request writes a new version only when the outcome changed."""
    request = RescanStore.request
    now = time.time()
    same = verdict["decision"] == it.get("decision") and sorted(verdict["flagged"]) == sorted(it.get("flagged") or [])
    stamp: dict[str, Any] = {"checked_with": {"job": job_id, "at": now, "models": verdict["models"],
                                              "policy_version": verdict["policy_version"]}}
    version = "" if it.get("verdict_version") is None else str(it["verdict_version"])
    score = item_priority({**it, "scores": verdict["scores"]})
    if it.get("source") == "human":
        # A human decision is never overwritten; a disagreeing rescan only flags the item.
        if verdict["decision"] != it.get("decision"):
            disagreement = {"job": job_id, "at": now, "model_decision": verdict["decision"],
                            "human_decision": it.get("decision"), "scores": verdict["scores"]}
            return request(job_id, it["id"], "unchanged", fields={"rescan_disagreement": disagreement, **stamp},
                           audit_event="rescan_disagrees", audit=disagreement, disagree=True), None
        return request(job_id, it["id"], "unchanged", fields=stamp), None
    needed = "1" if needs_review(verdict["decision"], policy) else "0"
    if same:
        # The decision stands, but whether it needs review follows the current policy (`review_blocked`).
        return request(job_id, it["id"], "unchanged", fields={**stamp, "review_needed": needed},
                       review_score=score, expect_version=version), None
    old = {k: it.get(k) for k in ("decision", "scores", "flagged", "models", "policy_version", "verdict_version",
                                  "completed_at")}
    blocked = None
    ext = it.get("external_id")
    if ext and verdict["decision"] == "block":
        blocked = ("add", it["tenant"], ext)
    elif ext and it.get("decision") == "block":
        blocked = ("remove", it["tenant"], ext)
    fields = {k: verdict.get(k) for k in VERDICT_FIELDS}
    fields.update({"verdict_key": key, "completed_at": now, "source": "model", "review_needed": needed, **stamp})
    req = request(job_id, it["id"], "changed", fields=fields, old=old, blocked=blocked, review_score=score,
                  expect_version=version,
                  audit={"job": job_id, "from": it.get("decision"), "to": verdict["decision"],
                         "policy_version": verdict["policy_version"], "models": verdict["models"]})
    return req, it["id"] if it.get("callback_url") else None


def apply_outcomes(rt: Runtime, jobs: RescanStore, outcomes: Sequence[Outcome]) -> None:
    """Count and apply a batch exactly once (one script call); notify only the changes that were written."""
    applied = jobs.apply_many([req for req, _ in outcomes])
    for (_, notify), ok in zip(outcomes, applied, strict=True):
        if ok and notify:
            rt.queue.send(WEBHOOK_TASK, [notify, "moderation.rescan_changed"])


def record_outcome(rt: Runtime, jobs: RescanStore, job_id: str, it: Item,
                   verdict: Verdict, key: str, policy: Policy) -> None:
    """One item's outcome, applied at once (media rescans, item by item)."""
    apply_outcomes(rt, jobs, [outcome(job_id, it, verdict, key, policy)])
