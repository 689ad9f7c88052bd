"""Owns the public request/response models of the gateway API."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from service.core.domain import Status
from service.core.errors import valid_unicode

# The public item model lives in service.core.views (webhook payloads share it); re-exported for the routes.
from service.core.views import ErrorInfo, ModelRef, Moderation  # noqa: F401


class ModerationRequest(BaseModel):
    """One text to moderate."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The text to moderate (UTF-8; at most MOD_MAX_TEXT_CHARS characters).")
    external_id: str | None = Field(None, max_length=256, description="Your id for the content; searchable.")
    metadata: dict[str, Any] | None = Field(None, description="Opaque JSON echoed back (≤ 8 KiB).")
    callback_url: str | None = Field(None, max_length=2048, description="Webhook target for the verdict.")
    priority: int = Field(0, ge=0, le=100, description="Raises review-queue priority (0–100).")

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if value == "":
            raise PydanticCustomError("empty_text", "text is empty")
        return valid_unicode(value)

    @field_validator("external_id", "callback_url")
    @classmethod
    def _strings(cls, value: str | None) -> str | None:
        return valid_unicode(value) if value is not None else None

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise PydanticCustomError("invalid_text", "metadata contains invalid Unicode") from exc
        if size > 8192:
            raise PydanticCustomError("metadata_too_large", "metadata is {size} bytes; limit 8192",
                                      {"size": size})
        return value


class BatchRequest(BaseModel):
    """Up to MOD_MAX_BATCH_ITEMS texts; each gets its own moderation id."""

    model_config = ConfigDict(extra="forbid")

    items: list[ModerationRequest] = Field(min_length=1)


class SentenceScoreOut(BaseModel):
    text: str
    start: int
    end: int
    scores: dict[str, float]


class Accepted(BaseModel):
    id: str
    status: Status
    status_url: str


class BatchAccepted(BaseModel):
    items: list[Accepted]


class ModerationList(BaseModel):
    items: list[Moderation]
    next_cursor: str | None = None


class Delivery(BaseModel):
    attempt: int
    at: float
    url: str
    status_code: int | None = None
    ok: bool
    error: str | None = None
    duration_ms: float | None = None
    final: bool = False


class DeliveryList(BaseModel):
    items: list[Delivery]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    role: Literal["platform", "moderator", "admin", "superadmin"] = Field(
        description="`admin` manages its own tenant; `admin` and `superadmin` keys only a superadmin creates.")
    name: str = Field("", max_length=128)


class KeyCreated(BaseModel):
    key: str = Field(description="Shown once; only its hash is stored.")
    key_id: str
    tenant: str
    role: str
    name: str


class KeyInfo(BaseModel):
    key_id: str
    tenant: str
    role: str
    name: str
    created_at: float


class WebhookSecret(BaseModel):
    tenant: str
    secret: str = Field(description="The current secret: every delivery carries a `v1=` signature made with it.")
    previous_expires_at: float | None = Field(
        None, description="While set (unix time), deliveries also carry a `v1=` made with the previous secret.")


class AuditEntry(BaseModel):
    """One credential change; `actor_*` is the key that made it (`actor_role` `system`: the bootstrap)."""

    model_config = ConfigDict(extra="allow")  # action-specific fields (e.g. `grace_s`) pass through

    id: str = Field(description="Stream entry id; pass as `cursor` to read older entries.")
    at: float
    action: Literal["key.created", "key.bootstrapped", "key.revoked", "webhook_secret.rotated"]
    actor_key_id: str
    actor_tenant: str
    actor_role: str
    actor_name: str
    tenant: str
    key_id: str | None = None
    role: str | None = None
    name: str | None = None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = None
