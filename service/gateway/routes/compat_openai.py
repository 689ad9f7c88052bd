"""Owns the OpenAI-compatible moderation endpoint: `POST /compat/openai/v1/moderations` (docs/compat-openai.md).

`OpenAI(base_url=".../compat/openai/v1", api_key=<our key>).moderations.create(...)` works unchanged. Each
string (or each part of a multi-modal input) becomes one ordinary item, created through the same submission
flow as /v1 (service.gateway.submit: idempotency, back-pressure, enqueue), so it is stored, reviewed, audited and
rescanned like any other; the answer waits for every verdict, at most MOD_COMPAT_WAIT_S.

Every error under this prefix, including authentication, rate limits, unknown paths and failures of the store or
the broker, is answered in OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`) by OpenAIRoute;
/v1 keeps the service's own shape. The routes are left out of /openapi.json, whose every error is `ErrorBody`:
OpenAI's API reference is this endpoint's schema.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.core.compat_openai import (
    CompatError,
    CompatRequest,
    ImagePart,
    Limits,
    TextPart,
    error_type,
    models_used,
    moderation_result,
    openai_error,
    parse_request,
    request_id,
)
from service.core.domain import Item
from service.core.errors import ApiError, Conflict
from service.core.queue import MEDIA_TASK
from service.core.security import Principal
from service.gateway.deps import PlatformOrAdmin, Services, ServicesDep
from service.gateway.ratelimit import QueueFull, buckets_for, rate_headers
from service.gateway.submit import body_digest, create_items, wait_final
from service.store.blobs import BlobStore
from service.store.items import FINAL, NewItem, new_item_id
from service.store.ratelimit import RateLimitStore

log = logging.getLogger(__name__)

PREFIX = "/compat/openai/v1"
IDS_HEADER = "Moderation-Ids"
_STORE_DOWN_RETRY_S = 5
_HTTP_CODES = {404: "unknown_url", 405: "method_not_allowed", 413: "body_too_large"}
_INLINE_PARSE_BYTES = 64 * 1024


def _response(exc: CompatError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)


def _translate(request: Request, exc: Exception) -> JSONResponse:
    """Any failure of a route under this prefix, in OpenAI's error shape (stable codes as on /v1)."""
    if isinstance(exc, CompatError):
        return _response(exc)
    if isinstance(exc, QueueFull):
        request.app.state.metrics.queue_full.inc()
        return _response(CompatError(exc.message, exc.code, status=exc.status,
                                     headers={"Retry-After": str(exc.retry_after_s)}))
    if isinstance(exc, ApiError):  # auth (401/403), idempotency conflicts, queue_unavailable ...
        return _response(CompatError(exc.message, exc.code, status=exc.status, headers=exc.headers or {}))
    if isinstance(exc, RequestValidationError):  # only headers are validated by FastAPI here
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ())]
        return _response(CompatError(f"{'.'.join(loc) or 'request'}: {first.get('msg', 'invalid')}",
                                     "validation_error", param=loc[-1] if loc else None))
    if isinstance(exc, StarletteHTTPException):  # e.g. a streamed body crossing MOD_MAX_BODY_BYTES
        return _response(CompatError(str(exc.detail), _HTTP_CODES.get(exc.status_code, "http_error"),
                                     status=exc.status_code, headers=dict(exc.headers or {})))
    if isinstance(exc, OperationalError):
        log.warning("broker unavailable: %s", exc)
        return _response(CompatError("the task queue is unreachable; retry later", "queue_unavailable", status=503,
                                     headers={"Retry-After": str(_STORE_DOWN_RETRY_S)}))
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        log.warning("redis unavailable: %s", exc)
        return _response(CompatError("the verdict store (Redis) is unreachable; retry later", "store_unavailable",
                                     status=503, headers={"Retry-After": str(_STORE_DOWN_RETRY_S)}))
    log.exception("unexpected error on %s", request.url.path, exc_info=exc)
    return JSONResponse(openai_error("internal error", error_type(500), "internal_error"), status_code=500)


class OpenAIRoute(APIRoute):
    """An APIRoute whose failures (dependencies included) are answered in OpenAI's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 - every failure becomes an OpenAI-shaped answer
                return _translate(request, exc)

        return run


router = APIRouter(prefix=PREFIX, tags=["openai-compat"], route_class=OpenAIRoute, include_in_schema=False)

IdemHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]


async def submit_quota(request: Request, response: Response, services: ServicesDep,
                       principal: PlatformOrAdmin) -> Principal:
    """The caller's /v1 submit buckets (same keys, so this prefix adds no quota), taken before the body is read.

    The ASGI rate limiter only knows /v1 paths; doing it here lets a refusal use OpenAI's shape.
    """
    settings = services.settings
    if not settings.ratelimit_enabled:
        return principal
    try:
        decision = await run_in_threadpool(RateLimitStore(services.redis).take,
                                           buckets_for(settings, "submit", principal))
    except RedisError as exc:
        raise CompatError("the verdict store (Redis) is unreachable; retry later", "store_unavailable", status=503,
                          headers={"Retry-After": str(_STORE_DOWN_RETRY_S)}) from exc
    headers = {name.decode(): value.decode() for name, value in rate_headers(decision)}
    refused = decision.refused_by
    if refused is not None:
        request.app.state.metrics.rate_limited.labels("submit", refused.bucket.scope).inc()
        raise CompatError(f"too many submit requests for this {refused.bucket.scope}; retry after "
                          f"{headers.get('retry-after', '1')} s", "rate_limited", status=429, headers=headers)
    response.headers.update(headers)
    return principal


SubmitQuota = Annotated[Principal, Depends(submit_quota)]


def _parse(body: bytes, limits: Limits) -> tuple[CompatRequest, str]:
    """The validated request and its digest (for Idempotency-Key replays)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CompatError("the request body is not valid JSON", "invalid_json") from exc
    return parse_request(payload, limits), body_digest(payload)


def _new_items(services: Services, principal: Principal, req: CompatRequest) -> list[NewItem]:
    """One item per part, ids first so the metadata names the request; images go to the blob store (blocking)."""
    parts = req.parts
    ids = [new_item_id() for _ in parts]
    rid = request_id(ids[0])
    blobs = BlobStore(services.settings.blob_dir)
    out: list[NewItem] = []
    try:
        for item_id, part in zip(ids, parts, strict=True):
            # Shown to moderators and in GET /v1/moderations/{id}: where the item came from and its siblings.
            fields: dict[str, Any] = {"metadata": {"source": "openai-compat", "request_id": rid,
                                                   "input": part.param},
                                      "callback_url": None, "priority": 0}
            if isinstance(part, TextPart):
                out.append(NewItem(id=item_id, tenant=principal.tenant, kind="text",
                                   content_hash=hashlib.sha256(part.text.encode("utf-8")).hexdigest(),
                                   fields={**fields, "text": part.text}))
                continue
            blob = blobs.put(io.BytesIO(part.data), f"{item_id}.{part.fmt}", services.settings.media.max_image_bytes)
            out.append(NewItem(id=item_id, tenant=principal.tenant, kind="image", content_hash=blob.sha256,
                               fields={**fields, "blob_key": blob.key, "media_format": part.fmt, "size": blob.size,
                                       "filename": ""}))
    except Exception:
        _drop_blobs(services, out)
        raise
    return out


def _drop_blobs(services: Services, items: list[NewItem]) -> None:
    blobs = BlobStore(services.settings.blob_dir)
    for item in items:
        if item.kind == "image":
            blobs.delete(item.fields["blob_key"])


def _enqueue(services: Services, parts: list[TextPart | ImagePart]) -> Callable[[list[str]], None]:
    def send(ids: list[str]) -> None:
        texts = [(i, len(p.text)) for i, p in zip(ids, parts, strict=True) if isinstance(p, TextPart)]
        if texts:
            services.queue.enqueue_text([i for i, _ in texts], [n for _, n in texts])
        for item_id, part in zip(ids, parts, strict=True):
            if isinstance(part, ImagePart):
                services.queue.send(MEDIA_TASK, [item_id])
    return send


async def _wait_all(services: Services, ids: list[str], budget_s: float) -> list[Item | None]:
    """Every item, final or as last seen, within one shared deadline.

    One item at a time on purpose: the workers process all of them meanwhile, so the total wait is the slowest
    item's, and the request holds one Redis connection instead of one per item.
    """
    deadline = time.monotonic() + budget_s
    return [await wait_final(services, item_id, max(0.0, deadline - time.monotonic())) for item_id in ids]


@router.post("/moderations", response_model=None)
async def create_moderation(
    request: Request, response: Response, services: ServicesDep, principal: SubmitQuota,
    idempotency_key: IdemHeader = None,
) -> dict[str, Any]:
    """OpenAI's `POST /v1/moderations`: strings, string lists and multi-modal parts (images as data: URLs)."""
    settings = services.settings
    body = await request.body()
    limits = Limits(settings.compat_max_inputs, settings.max_text_chars, settings.media.max_image_bytes)
    # Parsing, base64-decoding and hashing megabytes of images would stall the event loop: big bodies go to a
    # thread; small ones (most texts) are cheaper parsed here than the thread hop.
    req, digest = (await run_in_threadpool(_parse, body, limits) if len(body) > _INLINE_PARSE_BYTES
                   else _parse(body, limits))
    items = await run_in_threadpool(_new_items, services, principal, req)
    try:
        ids, created = await create_items(services, items, idempotency_key, digest, _enqueue(services, req.parts))
    except (QueueFull, Conflict):
        # Only where nothing was created: after a store error the items may exist (a retry with the same
        # Idempotency-Key finds them), so their blobs stay; the retention purge removes real orphans.
        await run_in_threadpool(_drop_blobs, services, items)
        raise
    if not created:  # an idempotent replay: the first request's items (and blobs) are the ones kept
        await run_in_threadpool(_drop_blobs, services, items)
    id_header = {IDS_HEADER: ",".join(ids)}
    response.headers.update(id_header)
    done = await _wait_all(services, ids, settings.compat_wait_s)
    _check_final(ids, req, done, settings.compat_wait_s, idempotency_key, id_header)
    finished: list[Item] = [d for d in done if d is not None]
    results, start = [], 0
    for group in req.groups:
        results.append(moderation_result(finished[start:start + len(group)]))
        start += len(group)
    return {"id": request_id(ids[0]), "model": models_used(finished, req.model), "results": results}


def _check_final(ids: list[str], req: CompatRequest, done: list[Item | None], budget_s: float,
                 idempotency_key: str | None, headers: dict[str, str]) -> None:
    """Raise the OpenAI-shaped error for items not done in time, rejected (undecodable) or failed.

    Every such error names all the request's items (`moderation_ids`): they exist and, unless rejected or failed,
    are decided as usual, so the client can read them at GET /v1/moderations/{id} and nothing is lost.
    """
    extra: dict[str, Any] = {"moderation_ids": ids}
    pending = [i for i, d in zip(ids, done, strict=True) if d is None or d["status"] not in FINAL]
    if pending:
        # A retry without an Idempotency-Key would create the items again: tell OpenAI's client not to retry
        # (it obeys `x-should-retry`); with a key, a retry waits again on the same items.
        raise CompatError(
            f"{len(pending)} of {len(ids)} items had no verdict within {budget_s:g} s; they stay queued and are "
            "decided as usual: read them at GET /v1/moderations/{id} (ids in `moderation_ids`)",
            "moderation_timeout", status=504, extra={**extra, "pending_ids": pending},
            headers={**headers, "x-should-retry": "true" if idempotency_key else "false"})
    for item_id, item, part in zip(ids, done, req.parts, strict=True):
        if item is None:  # cannot happen: `pending` lists every None
            continue
        if item["status"] == "rejected":
            raise CompatError(f"`{part.param}` could not be moderated: {item.get('error_message') or 'rejected'}",
                              "input_rejected", param=part.param, extra={**extra, "moderation_id": item_id},
                              headers=headers)
        if item["status"] == "failed":
            raise CompatError(f"moderation of `{part.param}` failed ({item.get('error_code')}); see "
                              f"GET /v1/moderations/{item_id}", "moderation_failed", status=500,
                              param=part.param, extra={**extra, "moderation_id": item_id},
                              headers={**headers, "x-should-retry": "false"})


_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@router.api_route("/{path:path}", methods=_ALL_METHODS)
async def unknown(path: str, request: Request) -> Response:
    """Anything else under the prefix: OpenAI-shaped 404, or 405 for another method on /moderations."""
    if path == "moderations":
        raise CompatError(f"{request.method} is not allowed on {request.url.path}; use POST", "method_not_allowed",
                          status=405, headers={"Allow": "POST"})
    raise CompatError(f"unknown URL ({request.method} {request.url.path}); this prefix serves only "
                      f"POST {PREFIX}/moderations", "unknown_url", status=404)
