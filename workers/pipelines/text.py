"""Owns the text moderation flow of one task: load items, score (or reuse cached verdicts), decide, store."""

from __future__ import annotations

import logging
import time
from typing import Any

from common.language import detect_language
from service.core.domain import Item, Verdict
from service.core.policy import Policy
from service.store.items import LIVE, verdict_key
from workers import runtime
from workers.base import TimeLimits, chars_within, text_time_limits
from workers.lifecycle import VERDICT_CACHE_TTL_S, Done, fail, finish_all, mark_loaded
from workers.runtime import Runtime
from workers.verdicts import blocklist_reasons

log = logging.getLogger(__name__)

EMPTY_NOTE = {"type": "note", "code": "empty_text", "message": "text is whitespace only; nothing to classify"}


def _live(rt: Runtime, ids: list[str]) -> list[Item]:
    return [it for it in rt.items.get_many(list(dict.fromkeys(ids))) if it is not None and it["status"] in LIVE]


def _chars(items: list[Item]) -> int:
    return sum(len(it.get("text") or "") for it in items)


def _select(rt: Runtime, own: list[Item], extra: list[str], budget: int) -> list[Item]:
    """The task's own live items, plus popped ones while they fit the character budget (one round trip).
    Popped items that do not fit keep waiting for their own task."""
    own_ids = {it["id"] for it in own}
    chosen = list(own)
    chars = _chars(own)
    for it in _live(rt, [i for i in extra if i not in own_ids]) if extra else []:
        size = len(it.get("text") or "")
        if chars + size <= budget:
            chosen.append(it)
            chars += size
    return chosen


def _fault_pause(rt: Runtime, items: list[Item]) -> None:
    marker = rt.settings.fault_pause_marker
    if marker and any(marker in (it.get("text") or "") for it in items):
        time.sleep(rt.settings.fault_pause_s)


def run(rt: Runtime, item_ids: list[str], limits: TimeLimits) -> TimeLimits | None:
    """Score the task's items under `limits`. Returns None when done, or, touching nothing, the longer limits
    its own items need (long texts): the task is then sent again with those, not failed later by a timeout."""
    own = _live(rt, item_ids)
    needed = text_time_limits(rt.settings, _chars(own))
    if needed.soft > limits.soft:
        return needed
    # Opportunistic batching: also take text items that are waiting behind this task, as far as the time
    # limit allows. Their own messages arrive later and find them final (a cheap no-op), so a burst of single
    # submissions is scored in batches.
    extra = rt.items.pop_ready_text(rt.settings.text_batch_size)
    budget = min(rt.settings.text_task_max_chars, chars_within(rt.settings, limits))
    items = mark_loaded(rt, _select(rt, own, extra, budget))
    if not items:
        return None
    _fault_pause(rt, items)
    slot = runtime.text_model(rt)
    if slot.obj is None:
        fail(rt, [it["id"] for it in items], "model_unavailable", slot.error or "text model not loaded")
        return None
    finish_all(rt, verdicts_for(rt, slot.obj, items))
    return None


def verdicts_for(rt: Runtime, model: Any, items: list[Item]) -> list[Done]:
    """(item, verdict, cache key, policy) for text items: cached verdicts reused, each distinct text scored once."""
    policies, keys, cached = cached_verdicts(rt, model, items)
    scored = score_distinct(model, items, [hit is None for hit in cached])
    out = []
    for it, key, hit, base in zip(items, keys, cached, policies, strict=True):
        policy = base.for_language(detect_language(it.get("text") or ""))
        verdict = hit or rt.items.claim_verdict(
            key, build_verdict(it["text"] or "", scored.get(it["content_hash"]), policy, model), VERDICT_CACHE_TTL_S)
        out.append((it, verdict, key, policy))
    return out


def cached_verdicts(rt: Runtime, model: Any, items: list[Item]) -> tuple[list[Policy], list[str],
                                                                         list[Verdict | None]]:
    """Per item: its tenant's text policy (looked up once per tenant), its verdict-cache key and the cached
    verdict (None when there is none); one cache read for all."""
    by_tenant: dict[str, Policy] = {}
    for it in items:
        if it["tenant"] not in by_tenant:
            by_tenant[it["tenant"]] = rt.policies.effective(it["tenant"]).for_kind("text")
    policies = [by_tenant[it["tenant"]] for it in items]
    keys = [verdict_key(it["content_hash"], model.model_id, policy.id) for it, policy in zip(items, policies,
                                                                                            strict=True)]
    return policies, keys, rt.items.cached_verdicts(keys)


def score_distinct(model: Any, items: list[Item], wanted: list[bool],
                   batch_size: int | None = None) -> dict[str, Any]:
    """content_hash -> model result for each distinct non-blank text among the wanted items, in one model call
    (`batch_size`: the forward batch, None = the model's own)."""
    todo = {it["content_hash"]: it["text"] for it, want in zip(items, wanted, strict=True)
            if want and (it.get("text") or "").strip()}
    hashes = list(todo)
    return dict(zip(hashes, model.score([todo[h] for h in hashes], batch_size=batch_size), strict=True)) \
        if hashes else {}


def build_verdict(text: str, result: Any, policy: Policy, model: Any) -> Verdict:
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
        explanation = {"windows": result.windows, "top_sentences": [s.to_dict() for s in result.sentences],
                       "top_windows": [w.to_dict() for w in result.top_windows]}
    return {"decision": decision, "scores": scores, "flagged": flagged, "reasons": reasons,
            "explanation": explanation, "models": models, "policy_version": policy.id}
