"""Owns the domain types that cross package boundaries: a stored item, a verdict, an audit event, a delivery.

They are TypedDicts, not classes, on purpose: an item is a Redis hash decoded once (`store.items.decode_item`),
read by the gateway, the workers and the webhook payload builder, and extended field by field as features
land. A TypedDict gives every reader the field names and types (mypy checks each access) while staying the
exact JSON shape the API and webhooks emit, with no conversion layer to keep in step.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Kind = Literal["text", "image", "video"]
Decision = Literal["allow", "review", "block"]
Status = Literal["queued", "processing", "done", "failed", "rejected"]


class Verdict(TypedDict, total=False):
    """What a model run (or a hash-list match) decided for one content hash under one policy."""

    decision: str
    scores: dict[str, float]
    flagged: list[str]
    reasons: list[dict[str, Any]]
    explanation: dict[str, Any] | None
    models: list[dict[str, Any]]
    policy_version: str
    media: dict[str, Any] | None


class Item(Verdict, total=False):
    """One submission as stored (`mod:item:<id>`): request fields, lifecycle state, verdict, review state."""

    id: str
    tenant: str
    kind: str
    status: str
    content_hash: str
    external_id: str | None
    text: str | None
    metadata: dict[str, Any] | None
    callback_url: str | None
    priority: float | None
    blob_key: str | None
    media_format: str | None
    size: str | None
    filename: str | None
    created_at: float | None
    updated_at: float | None
    completed_at: float | None
    error_code: str | None
    error_message: str | None
    verdict_key: str | None
    verdict_version: int | None
    source: str | None
    # Human review.
    review_status: str | None
    review_score: float | None
    lease_expires_at: float | None
    lease_holder: str | None
    human: dict[str, Any] | None
    categories: list[str] | None
    appeal: dict[str, Any] | None
    appeal_excluded: str | None  # the last decider (kept for older readers); `deciders` is the full set
    appeal_open: str | None  # "1" from an appeal until a moderator decides it
    deciders: list[str] | None  # every moderator who decided the item: none of them may decide its appeal
    review_needed: str | None  # "1" when the current verdict needs review (see store.queue_rule.QUEUE_RULE)
    # Rescans.
    rescan_disagreement: dict[str, Any] | None
    rescanned_with: dict[str, Any] | None  # older name of `checked_with`
    checked_with: dict[str, Any] | None  # job, at, models, policy_version of the last rescan that checked it


class Delivery(TypedDict, total=False):
    """One webhook delivery attempt."""

    attempt: int
    at: float
    url: str
    event: str
    ok: bool
    final: bool
    status_code: int
    error: str
    duration_ms: float
