"""Owns the typed views of the service's JSON answers (moderations, pages, review items, webhook events).

Plain frozen dataclasses built from the wire format in docs/api.md. Each keeps the full JSON in `raw`, so a
field the service adds later is reachable before this package learns its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast

Status = Literal["queued", "processing", "done", "failed", "rejected"]
Decision = Literal["allow", "review", "block"]
Kind = Literal["text", "image", "video"]
ReviewAction = Literal["approve", "remove", "escalate"]
FINAL_STATUSES: frozenset[str] = frozenset({"done", "failed", "rejected"})

T = TypeVar("T")


def _opt_float(value: Any) -> float | None:
    return float(value) if value is not None else None


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str


@dataclass(frozen=True)
class ItemError:
    """Why an accepted item ended `failed` or `rejected` (e.g. `model_unavailable`, `truncated_image`)."""

    code: str
    message: str


@dataclass(frozen=True)
class Moderation:
    """A moderation item (`GET /v1/moderations/{id}`) and, once `status` is `done`, its verdict."""

    id: str
    tenant: str
    kind: str
    status: Status
    status_url: str
    created_at: float
    decision: Decision | None = None
    scores: dict[str, float] | None = None
    flagged: list[str] | None = None
    reasons: list[dict[str, Any]] | None = None
    explanation: dict[str, Any] | None = None
    models: list[ModelRef] | None = None
    policy_version: str | None = None
    external_id: str | None = None
    metadata: dict[str, Any] | None = None
    callback_url: str | None = None
    priority: float | None = None
    source: Literal["model", "human"] | None = None
    human: dict[str, Any] | None = None
    review_status: str | None = None
    appeal: dict[str, Any] | None = None
    rescan_disagreement: dict[str, Any] | None = None
    verdict_version: int | None = None
    media: dict[str, Any] | None = None
    updated_at: float | None = None
    completed_at: float | None = None
    error: ItemError | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        """True for `done`, `failed` and `rejected`: nothing more happens unless a human or a rescan acts."""
        return self.status in FINAL_STATUSES

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Moderation:
        err = data.get("error")
        models = data.get("models")
        return cls(
            id=str(data["id"]), tenant=str(data.get("tenant", "")), kind=str(data.get("kind", "")),
            status=cast(Status, data["status"]),
            status_url=str(data.get("status_url") or f"/v1/moderations/{data['id']}"),
            created_at=float(data.get("created_at") or 0.0),
            decision=data.get("decision"), scores=data.get("scores"), flagged=data.get("flagged"),
            reasons=data.get("reasons"), explanation=data.get("explanation"),
            models=[ModelRef(str(m["name"]), str(m["version"])) for m in models] if models else None,
            policy_version=data.get("policy_version"), external_id=data.get("external_id"),
            metadata=data.get("metadata"), callback_url=data.get("callback_url"),
            priority=_opt_float(data.get("priority")), source=data.get("source"), human=data.get("human"),
            review_status=data.get("review_status"), appeal=data.get("appeal"),
            rescan_disagreement=data.get("rescan_disagreement"),
            verdict_version=data.get("verdict_version"), media=data.get("media"),
            updated_at=_opt_float(data.get("updated_at")), completed_at=_opt_float(data.get("completed_at")),
            error=ItemError(str(err.get("code", "")), str(err.get("message", ""))) if isinstance(err, dict) else None,
            raw=data,
        )


@dataclass(frozen=True)
class Accepted:
    """A 202 answer: the item exists and is queued or processing. Poll it (`wait`), never submit it again."""

    id: str
    status: Status
    status_url: str

    @property
    def is_final(self) -> bool:
        return False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Accepted:
        return cls(id=str(data["id"]), status=cast(Status, data["status"]), status_url=str(data["status_url"]))


# What a submission answers: the verdict when it was final within `?wait=`, else the acceptance.
Submission = Moderation | Accepted


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; pass `next_cursor` back for the next one (None: this was the last)."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class ReviewItem:
    """An item in the review queue: the public moderation plus what a moderator needs to judge it."""

    moderation: Moderation
    content: str | None
    review_status: str | None
    lease_holder: str | None
    lease_expires_at: float | None
    escalated: bool
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReviewItem:
        return cls(moderation=Moderation.from_json(data), content=data.get("content"),
                   review_status=data.get("review_status"), lease_holder=data.get("lease_holder"),
                   lease_expires_at=_opt_float(data.get("lease_expires_at")), escalated=bool(data.get("escalated")),
                   raw=data)


@dataclass(frozen=True)
class Claim:
    """A review lease: only `lease_holder` may decide the item until `lease_expires_at` (unix time)."""

    id: str
    lease_holder: str
    lease_expires_at: float


@dataclass(frozen=True)
class WebhookSecret:
    """The tenant's signing secret; while `previous_expires_at` is set, deliveries also carry the old one's `v1=`."""

    tenant: str
    secret: str
    previous_expires_at: float | None


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook delivery: `moderation.completed`, `moderation.human_decision`, ..."""

    event: str
    delivery_id: str
    sent_at: int
    moderation: Moderation
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookEvent:
        return cls(event=str(data["event"]), delivery_id=str(data["delivery_id"]), sent_at=int(data["sent_at"]),
                   moderation=Moderation.from_json(data["moderation"]), raw=data)
