"""Owns the text moderation endpoints: submit, batch submit, read, look up, webhook deliveries."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from service.core.errors import AUTH_ERRORS, ApiError, InvalidInput, NotFound, responses
from service.core.security import TENANT_PATTERN
from service.core.views import public_item
from service.gateway.deps import AnyRole, JsonBody, PlatformOrAdmin, ServicesDep, visible_item
from service.gateway.schemas import (
    Accepted,
    BatchAccepted,
    BatchRequest,
    DeliveryList,
    Moderation,
    ModerationList,
    ModerationRequest,
)
from service.gateway.submit import (
    accepted,
    body_digest,
    create_items,
    new_text_item,
    wait_final,
)
from service.store.items import FINAL, NewItem

router = APIRouter(prefix="/v1/moderations", tags=["moderations"], responses=responses(*AUTH_ERRORS))

IdemHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]
WaitQuery = Annotated[float | None, Query(ge=0, le=10, allow_inf_nan=False,
                                          description="Seconds to wait for the verdict (≤ 10).")]
# Item ids are `mod_` + ~28 hex chars; the bound only keeps absurd paths out of Redis lookups.
ItemIdPath = Annotated[str, Path(min_length=1, max_length=128)]
# `next_cursor` is a creation time printed `%.6f`; up to 11 integer digits (year ~5138) always fits.
TIME_CURSOR = re.compile(r"^\d{1,11}(\.\d{1,9})?$")
_ITEM_404 = {404: "`moderation_not_found` (also another tenant's item: ids cannot be probed)"}
_SUBMIT_ERRORS = {
    409: "`idempotency_conflict`: the Idempotency-Key was used with a different body",
    413: "`text_too_long`, `batch_too_large`, `body_too_large`",
    422: "`validation_error`, `empty_text`, `invalid_text`, `invalid_callback_url`, `metadata_too_large`",
}


@router.post(
    "",
    status_code=202,
    response_model=None,
    dependencies=[JsonBody],
    responses={200: {"model": Moderation, "description": "Verdict ready within `wait`"},
               202: {"model": Accepted, "description": "Queued; poll `status_url`"},
               **responses(400, 409, 413, 415, 422,
                           notes={**_SUBMIT_ERRORS, 413: "`text_too_long`, `body_too_large`"})},
)
async def submit(
    body: ModerationRequest, services: ServicesDep, principal: PlatformOrAdmin, response: Response,
    wait: WaitQuery = None, idempotency_key: IdemHeader = None,
) -> dict[str, Any]:
    """Queue one text for moderation; optionally wait up to 10 s for the verdict."""
    # Only a callback URL needs DNS (blocking); without one, build the item on the event loop.
    item = (await run_in_threadpool(new_text_item, services, principal, body) if body.callback_url
            else new_text_item(services, principal, body))
    ids, _ = await create_items(services, [item], idempotency_key, body_digest(body.model_dump()),
                                text_sizes=[len(body.text)])
    response.headers["Location"] = f"/v1/moderations/{ids[0]}"
    if wait:
        done = await wait_final(services, ids[0], min(wait, services.settings.max_wait_s))
        if done is not None and done["status"] in FINAL:
            response.status_code = 200
            return public_item(done)
        if done is not None:
            return accepted(ids[0], str(done["status"]))
    return accepted(ids[0])


@router.post("/batch", status_code=202, response_model=BatchAccepted, dependencies=[JsonBody],
             responses=responses(400, 409, 413, 415, 422, notes=_SUBMIT_ERRORS))
async def submit_batch(
    body: BatchRequest, services: ServicesDep, principal: PlatformOrAdmin,
    idempotency_key: IdemHeader = None,
) -> dict[str, Any]:
    """Queue up to MOD_MAX_BATCH_ITEMS texts in one call; one moderation id each, in order."""
    limit = services.settings.max_batch_items
    if len(body.items) > limit:
        raise ApiError(f"batch has {len(body.items)} items; the limit is {limit}", code="batch_too_large",
                       status=413, details={"count": len(body.items), "limit": limit})

    def build() -> list[NewItem]:
        out = []
        for i, req in enumerate(body.items):
            try:
                out.append(new_text_item(services, principal, req))
            except ApiError as exc:
                exc.details = {**exc.details, "index": i}
                raise
        return out

    items = await run_in_threadpool(build)
    sizes = [len(req.text) for req in body.items]
    ids, _ = await create_items(services, items, idempotency_key, body_digest(body.model_dump()),
                                text_sizes=sizes)
    return {"items": [accepted(i) for i in ids]}


@router.get("/{item_id}", response_model=Moderation, response_model_exclude_none=False,
            responses=responses(404, 422, notes=_ITEM_404))
def get_moderation(item_id: ItemIdPath, services: ServicesDep, principal: AnyRole) -> dict[str, Any]:
    """Status and, when done, the verdict of one moderation."""
    return public_item(visible_item(services, principal, item_id))


def parse_time_cursor(cursor: str | None) -> float | None:
    """A listing cursor: the `next_cursor` of the previous page, i.e. a creation time (unix seconds, decimal).

    Anything else (nan, inf, exponents, underscores, garbage, more than 11 integer digits) is a 422
    `invalid_cursor`; unchecked, Redis would reject a nan score bound and the request would end in a 500.
    """
    if not cursor:
        return None
    if not TIME_CURSOR.fullmatch(cursor):
        raise InvalidInput("cursor is not valid: pass the `next_cursor` of the previous page", code="invalid_cursor")
    return float(cursor)


@router.get("", response_model=ModerationList, responses=responses(404, 422, notes={
    404: "`tenant_not_found`: `tenant` names a tenant this key cannot see",
    422: "`invalid_cursor`, `tenant_required` (superadmins with `external_id`), `validation_error`"}))
def list_moderations(
    services: ServicesDep, principal: AnyRole,
    external_id: Annotated[str | None, Query(max_length=256)] = None,
    tenant: Annotated[str | None, Query(max_length=64, pattern=TENANT_PATTERN,
                                        description="Superadmins: which tenant to list (default: all). "
                                        "Others may only name their own tenant.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64, description="`next_cursor` of the previous page.")] = None,
) -> dict[str, Any]:
    """Look up by `external_id`, or page through recent moderations (newest first).

    Errors: 422 `invalid_cursor` (a cursor not from a previous page), 422 `validation_error` (limit outside
    1..200, malformed tenant), 404 `tenant_not_found` (a tenant the caller cannot see).
    """
    if tenant is not None and not principal.can_see(tenant):
        raise NotFound(f"no tenant {tenant!r}", code="tenant_not_found")
    scope = tenant if principal.is_superadmin else principal.tenant
    if external_id is not None:
        if scope is None:
            raise InvalidInput("superadmins must pass `tenant` with `external_id`", code="tenant_required")
        ids = services.items.ids_by_external_id(scope, external_id, limit)
        next_cursor = None
    else:
        ids = services.items.page(scope, parse_time_cursor(cursor), limit)
    items = [i for i in services.items.get_many(ids) if i is not None and principal.can_see(i["tenant"])]
    if external_id is None:
        next_cursor = f"{items[-1]['created_at']:.6f}" if len(ids) == limit and items else None
    return {"items": [public_item(i) for i in items], "next_cursor": next_cursor}


@router.get("/{item_id}/webhooks", response_model=DeliveryList, responses=responses(404, 422, notes=_ITEM_404))
def list_deliveries(item_id: ItemIdPath, services: ServicesDep, principal: AnyRole) -> dict[str, Any]:
    """Every webhook delivery attempt for this moderation, oldest first."""
    visible_item(services, principal, item_id)
    return {"items": services.items.deliveries(item_id)}
