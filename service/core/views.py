"""Owns the public JSON view of a stored item: the `Moderation` model and `public_item`, the one way to build it.

Every place that shows an item to a client goes through `public_item`: `GET /v1/moderations/{id}`, the
`?wait=` answers of the submit endpoints, listings and webhook payloads. A stored item carries internal fields
(content, blob keys, file names, review scores, lease and appeal bookkeeping) that must never leak; the model is
an allow-list, so a field added to the store stays private until it is added here on purpose.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from service.core.domain import Decision, Item, Status


class ErrorInfo(BaseModel):
    """Why an accepted item ended `failed` or `rejected`."""

    code: str
    message: str


class ModelRef(BaseModel):
    name: str
    version: str


class Moderation(BaseModel):
    """A moderation item and, once `status` is `done`, its verdict."""

    id: str
    tenant: str
    kind: str
    status: Status
    status_url: str
    decision: Decision | None = None
    scores: dict[str, float] | None = None
    flagged: list[str] | None = None
    reasons: list[dict[str, Any]] | None = Field(None, description="Why: blocklist matches, notes.")
    explanation: dict[str, Any] | None = Field(None, description="Top offending sentences of long texts.")
    models: list[ModelRef] | None = None
    policy_version: str | None = None
    external_id: str | None = None
    metadata: dict[str, Any] | None = None
    callback_url: str | None = None
    priority: float | None = None
    source: Literal["model", "human"] | None = Field(None, description="Who made the current decision.")
    human: dict[str, Any] | None = Field(None, description="The latest human decision (moderator, action, why).")
    review_status: str | None = Field(None, description="pending | claimed | decided when it went to review.")
    appeal: dict[str, Any] | None = None
    rescan_disagreement: dict[str, Any] | None = Field(
        None, description="A rescan disagreed with a human decision; the human decision stands.")
    verdict_version: int | None = Field(None, description="Bumped each time a rescan changes the verdict.")
    media: dict[str, Any] | None = Field(None, description="Image/video details: frames, segments, hashes.")
    created_at: float
    updated_at: float | None = None
    completed_at: float | None = None
    error: ErrorInfo | None = None


PUBLIC_FIELDS = frozenset(Moderation.model_fields)


def public_item(item: Item) -> dict[str, Any]:
    """Store record -> the public `Moderation` shape, as JSON-ready data (every field present, null when unset).

    Validating through the model (not just dropping known-internal keys) is what keeps the answers identical:
    a `?wait=` 200 and a later GET of the same item return the same document.
    """
    raw: dict[str, Any] = {k: v for k, v in item.items() if k in PUBLIC_FIELDS}
    raw["status_url"] = f"/v1/moderations/{item['id']}"
    raw["error"] = ({"code": item["error_code"], "message": item.get("error_message") or ""}
                    if item.get("error_code") else None)
    return Moderation.model_validate(raw).model_dump(mode="json")
