"""Owns the moderator review API (queue, claim, decide, stats) and platform appeals + item history."""

from __future__ import annotations

import math
import re
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from service.core.domain import Item
from service.core.errors import AUTH_ERRORS, ApiError, InvalidInput, NotFound, responses
from service.core.queue import WEBHOOK_TASK
from service.core.security import TENANT_PATTERN, Principal
from service.core.views import public_item
from service.gateway.deps import AnyRole, JsonBody, ModeratorOrAdmin, PlatformOrAdmin, ServicesDep, visible_item
from service.store.reviews import ReviewError

router = APIRouter(prefix="/v1/reviews", tags=["reviews"], responses=responses(*AUTH_ERRORS))
appeals = APIRouter(prefix="/v1/moderations", tags=["moderations"], responses=responses(*AUTH_ERRORS))

ItemIdPath = Annotated[str, Path(min_length=1, max_length=128)]
ITEM_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
# A float as `repr` prints one (the cursor's score); no nan/inf spellings, underscores or whitespace.
FLOAT = re.compile(r"^-?(\d{1,20}(\.\d{0,20})?|\.\d{1,20})([eE][-+]?\d{1,3})?$")
TenantQuery = Annotated[str | None, Query(max_length=64, pattern=TENANT_PATTERN,
                                          description="Superadmins: required. Others: only their own tenant.")]
_QUEUE_ERRORS = responses(404, 422, notes={
    404: "`tenant_not_found`: `tenant` names a tenant this key cannot see",
    422: "`tenant_required` (superadmins), `invalid_cursor`, `validation_error`"})
_BODY = (400, 413, 415)
# Finite and bounded: `inf` would pass `ge=0` and silently disable the filter.
AgeQuery = Annotated[float | None, Query(ge=0, le=10 * 365 * 86400, allow_inf_nan=False)]


class ClaimRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lease_s: float | None = Field(None, ge=10, description="Lease length; default MOD_REVIEW_LEASE_S (300).")


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["approve", "remove", "escalate"]
    categories: list[str] = Field(default_factory=list, max_length=32)
    reason: str = Field("", max_length=2000)


class AppealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=4000)


def _tenant(principal: Principal, tenant: str | None) -> str:
    """The tenant a queue request is about: superadmins must name one; others get theirs (and may name only it)."""
    if tenant is not None and not principal.can_see(tenant):
        raise NotFound(f"no tenant {tenant!r}", code="tenant_not_found")
    if principal.is_superadmin:
        if not tenant:
            raise InvalidInput("superadmins must pass `tenant`", code="tenant_required")
        return tenant
    return principal.tenant


def parse_queue_cursor(cursor: str | None) -> tuple[float, str] | None:
    """A review-queue cursor `<score>:<item id>` (the `next_cursor` of the previous page).

    The score must be a finite number and the id well-formed, else 422 `invalid_cursor`: a nan or inf score
    would reach Redis as a range bound and end in a 500.
    """
    if not cursor:
        return None
    score_text, sep, item_id = cursor.partition(":")
    score = float(score_text) if FLOAT.fullmatch(score_text) else math.nan
    if not (sep and math.isfinite(score) and ITEM_ID.fullmatch(item_id)):
        raise InvalidInput("cursor is not valid: pass the `next_cursor` of the previous page", code="invalid_cursor")
    return score, item_id


def _review_view(item: Item) -> dict[str, Any]:
    out = public_item(item)
    out["content"] = item.get("text")  # moderators must see what they judge
    for k in ("review_status", "review_score", "lease_holder", "lease_expires_at", "appeal", "escalated", "human"):
        out[k] = item.get(k)
    return out


def _raise(exc: ReviewError) -> ApiError:
    return ApiError(exc.message, code=exc.code, status=exc.status)


@router.get("", responses=_QUEUE_ERRORS)
def list_reviews(
    services: ServicesDep, principal: ModeratorOrAdmin,
    tenant: TenantQuery = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    kind: Literal["text", "image", "video"] | None = None,
    status: Literal["pending", "claimed"] = "pending",
    min_age_s: AgeQuery = None,
    max_age_s: AgeQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> dict[str, Any]:
    """The tenant's review queue in priority order (highest score, then oldest), with filters and a cursor.

    Errors: 422 `invalid_cursor` (a cursor not from a previous page), 422 `validation_error` (limit outside
    1..200, ages negative, non-finite or over 10 years, unknown kind/status), 404 `tenant_not_found`.
    """
    t = _tenant(principal, tenant)
    now = time.time()

    def keep(it: Item | None) -> bool:
        if it is None:
            return False
        age = now - float(it.get("created_at") or now)
        return ((category is None or category in (it.get("flagged") or [])) and (kind is None or it["kind"] == kind)
                and (min_age_s is None or age >= min_age_s) and (max_age_s is None or age <= max_age_s))

    after = parse_queue_cursor(cursor)
    if status == "claimed":
        items = [i for i in services.items.get_many(services.reviews.claimed(t)) if keep(i)]
        return {"items": [_review_view(i) for i in items[:limit] if i is not None], "next_cursor": None}
    out: list[dict[str, Any]] = []
    next_cursor = None
    while len(out) < limit:
        page = services.reviews.page(t, after, 200)
        if not page:
            next_cursor = None
            break
        for (item_id, score), item in zip(page, services.items.get_many([p[0] for p in page]), strict=True):
            after = (score, item_id)
            if keep(item):
                out.append(_review_view(item))  # type: ignore[arg-type]
                if len(out) == limit:
                    next_cursor = f"{score!r}:{item_id}"
                    break
    return {"items": out, "next_cursor": next_cursor}


@router.get("/stats", responses=_QUEUE_ERRORS)
def review_stats(services: ServicesDep, principal: ModeratorOrAdmin, tenant: TenantQuery = None) -> dict[str, Any]:
    """Pending by category and age bucket, decisions per moderator per day, median time-to-decision."""
    t = _tenant(principal, tenant)
    ids = [i for i, _ in services.reviews.page(t, None, 100_000)]
    items = [i for i in services.items.get_many(ids) if i is not None]
    return services.reviews.stats(t, items)


@router.post("/{item_id}/claim", dependencies=[JsonBody], responses=responses(*_BODY, 404, 409, 422, notes={
    404: "`review_not_found`", 409: "`already_claimed`, `not_in_review`, `appeal_needs_other_moderator`"}))
def claim(item_id: ItemIdPath, body: ClaimRequest, services: ServicesDep,
          principal: ModeratorOrAdmin) -> dict[str, Any]:
    """Take (or renew) the lease on an item; exactly one moderator can hold it."""
    item = visible_item(services, principal, item_id, "review_not_found")
    lease = min(body.lease_s or services.settings.review_lease_s, services.settings.review_lease_max_s)
    try:
        expires = services.reviews.claim(item["tenant"], item_id, principal.key_id, principal.name, lease)
    except ReviewError as exc:
        raise _raise(exc) from exc
    return {"id": item_id, "lease_holder": principal.key_id, "lease_expires_at": expires}


@router.post("/{item_id}/decision", dependencies=[JsonBody], responses=responses(*_BODY, 403, 404, 409, 422, notes={
    403: "`forbidden_role`; `lease_required`: another moderator holds the lease", 404: "`review_not_found`",
    409: "`lease_required`: claim the item first; `not_in_review`: nothing to decide (already decided, or a "
         "rescan settled it)"}))
def decide(item_id: ItemIdPath, body: DecisionRequest, services: ServicesDep,
           principal: ModeratorOrAdmin) -> dict[str, Any]:
    """Approve, remove or escalate; only the lease holder. Overrides the automated verdict."""
    item = visible_item(services, principal, item_id, "review_not_found")
    try:
        human = services.reviews.decide(item["tenant"], item_id, principal.key_id, principal.name, body.action,
                                        body.categories, body.reason)
    except ReviewError as exc:
        raise _raise(exc) from exc
    if body.action != "escalate" and item.get("callback_url"):
        services.queue.send(WEBHOOK_TASK, [item_id, "moderation.human_decision"])
    updated = services.items.get(item_id) or item
    return {"human": human, "moderation": _review_view(updated)}


@appeals.post("/{item_id}/appeal", status_code=202, dependencies=[JsonBody],
             responses=responses(*_BODY, 404, 409, 422, notes={
                 404: "`moderation_not_found`", 409: "`not_appealable`, `appeal_pending`"}))
def appeal(item_id: ItemIdPath, body: AppealRequest, services: ServicesDep,
           principal: PlatformOrAdmin) -> dict[str, Any]:
    """Send a finished item back to human review as an appeal (decided by a moderator who never decided it)."""
    item = visible_item(services, principal, item_id)
    try:
        services.reviews.appeal(item["tenant"], item_id, body.message, principal.key_id)
    except ReviewError as exc:
        raise _raise(exc) from exc
    return {"id": item_id, "review_status": "pending", "appeal": True}


@appeals.get("/{item_id}/history", responses=responses(404, 422, notes={404: "`moderation_not_found`"}))
def history(item_id: ItemIdPath, services: ServicesDep, principal: AnyRole) -> dict[str, Any]:
    """Every state change of the item, oldest first (from its Redis audit stream)."""
    visible_item(services, principal, item_id)
    return {"id": item_id, "events": services.items.history(item_id)}
