"""Owns recording one rescanned item's outcome: unchanged, changed (new verdict version) or disagreeing.

Every outcome records what the item was checked with (`checked_with`: models and policy version), so the
`model_version_not` / `policy_version_not` filters skip an item once a rescan has checked it, changed or not.
"""

from __future__ import annotations

import time
from typing import Any

from service.core.domain import Item, Verdict
from service.core.policy import Policy
from service.core.queue import WEBHOOK_TASK
from service.store.rescans import RescanStore
from service.store.reviews import item_priority
from workers.lifecycle import VERDICT_FIELDS, needs_review
from workers.runtime import Runtime


def record_outcome(rt: Runtime, jobs: RescanStore, job_id: str, it: Item,
                   verdict: Verdict, key: str, policy: Policy) -> None:
    """Compare with the current verdict; write a new version only when the outcome changed."""
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
            jobs.apply(job_id, it["id"], "unchanged", fields={"rescan_disagreement": disagreement, **stamp},
                       audit_event="rescan_disagrees", audit=disagreement, disagree=True)
        else:
            jobs.apply(job_id, it["id"], "unchanged", fields=stamp)
        return
    needed = "1" if needs_review(verdict["decision"], policy) else "0"
    if same:
        # The decision stands, but whether it needs review follows the current policy (`review_blocked`).
        jobs.apply(job_id, it["id"], "unchanged", fields={**stamp, "review_needed": needed}, review_score=score,
                   expect_version=version)
        return
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
    applied = jobs.apply(job_id, it["id"], "changed", fields=fields, old=old, blocked=blocked, review_score=score,
                         expect_version=version,
                         audit={"job": job_id, "from": it.get("decision"), "to": verdict["decision"],
                                "policy_version": verdict["policy_version"], "models": verdict["models"]})
    if applied and it.get("callback_url"):
        rt.queue.send(WEBHOOK_TASK, [it["id"], "moderation.rescan_changed"])
