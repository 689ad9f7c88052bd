"""Owns the submission flow shared by every moderation kind: idempotency, atomic create, enqueue, wait."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from kombu.exceptions import OperationalError
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from service.core.domain import Item
from service.core.errors import ApiError, Conflict, InvalidInput, ServiceUnavailable
from service.core.security import Principal
from service.core.urls import CallbackUrlError, check_callback
from service.gateway.deps import Services
from service.gateway.ratelimit import QueueFull
from service.gateway.schemas import ModerationRequest
from service.store import keys
from service.store.items import FINAL, LIVE, CreateResult, NewItem, idem_key
from service.store.stats import submission_counters

log = logging.getLogger(__name__)


def body_digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def accepted(item_id: str, status: str = "queued") -> dict[str, Any]:
    return {"id": item_id, "status": status, "status_url": f"/v1/moderations/{item_id}"}


async def create_items(
    services: Services,
    items: Sequence[NewItem],
    idempotency_key: str | None,
    request_digest: str,
    enqueue: Callable[[list[str]], None] | None = None,
    text_sizes: Sequence[int] | None = None,
) -> tuple[list[str], bool]:
    """Create + enqueue; returns (ids, created). A repeated Idempotency-Key returns the first ids.

    Pass either `enqueue` (publishes in the create's own thread hop) or, for texts, `text_sizes` (one per item):
    their tasks go through the gateway's TextPublisher, so concurrent submissions share broker round trips.
    """
    tenant = items[0].tenant
    ikey = idem_key(tenant, idempotency_key) if idempotency_key else ""
    ids = [it.id for it in items]

    settings = services.settings
    counters = submission_counters(tenant, [it.kind for it in items], time.time())
    idem_value = {"ids": ids, "digest": request_digest}

    def create_and_enqueue(send: Callable[[list[str]], None]) -> CreateResult:
        # The create script also applies back-pressure (503 queue_full past MOD_QUEUE_MAX_PENDING pending items)
        # and counts the submission statistics: one round trip.
        result = services.items.create(items, ikey, idem_value, max_pending=settings.queue_max_pending,
                                       counters=counters)
        if result.created:
            send(ids)
        _await_replicas(services, _written(result, ids))
        return result

    try:
        if enqueue is not None:
            result = await run_in_threadpool(create_and_enqueue, enqueue)
        else:
            # Texts: the create runs on the asyncio client and the publish is shared (TextPublisher), so a
            # submission costs no thread-pool hop of its own unless replica acks are required.
            result = await services.items.acreate(items, ikey, idem_value, max_pending=settings.queue_max_pending,
                                                  counters=counters)
            if result.created:
                await services.text_publisher.publish(ids, text_sizes or [0] * len(ids))
            written = _written(result, ids)
            if settings.redis_min_replicas_ack > 0 and written:
                await run_in_threadpool(_await_replicas, services, written)
    except (OperationalError, OSError) as exc:
        log.error("enqueue failed for %d items: %s", len(ids), exc)
        await _fail_unqueued(services, ids, ikey)
        raise ServiceUnavailable("the task queue is unreachable; nothing was queued, retry later",
                                 code="queue_unavailable") from exc
    if result.queue_depth is not None:
        raise QueueFull(result.queue_depth, settings.queue_max_pending, settings.queue_full_retry_after_s)
    if not result.created:
        existing = result.existing or {}
        if existing.get("digest") != request_digest:
            raise Conflict("Idempotency-Key was already used with a different request body",
                           code="idempotency_conflict", details={"ids": existing.get("ids", [])})
        return list(existing.get("ids", [])), False
    return ids, True


def _written(result: CreateResult, ids: list[str]) -> list[str]:
    """The ids a 2xx answer vouches for: the new items, or on a replay the record it found (which a failover must
    not be able to take back either); none when nothing was created (queue full)."""
    if result.created:
        return ids
    return list((result.existing or {}).get("ids") or [])


def _await_replicas(services: Services, ids: Sequence[str]) -> None:
    """With MOD_REDIS_MIN_REPLICAS_ACK, answer 2xx only once that many replicas hold the new items: replication is
    asynchronous, so an item a failover could still lose is answered 503 instead, and the client's retry with the
    same Idempotency-Key finds it or creates it again.

    WAIT only covers writes made on its own connection, and the create ran on another pooled one; so one
    connection writes a fence, WAITs for it, then checks the item is there. The replication stream is ordered
    and the create finished before the fence, so replicas that acked the fence hold the item -- and if a
    failover already lost the create, the check finds no item and the client is told to retry.
    """
    need = services.settings.redis_min_replicas_ack
    if need <= 0 or not ids:
        return
    pipe = services.items.r.pipeline(transaction=False)
    pipe.incr(keys.REPLICATION_FENCE)
    pipe.execute_command("WAIT", need, services.settings.redis_replica_ack_timeout_ms)
    pipe.exists(keys.item(ids[0]))
    _, acked, present = pipe.execute()
    if int(acked) < need or not int(present):
        raise ServiceUnavailable(f"the write reached {int(acked)} of {need} replicas in time (failover in "
                                 "progress?); retry with the same Idempotency-Key", code="store_unavailable",
                                 details={"replicas_acked": int(acked), "replicas_needed": need})


async def _fail_unqueued(services: Services, ids: Sequence[str], ikey: str) -> None:
    # Best effort: the items exist but no task was sent. Mark them failed so they do not look queued,
    # and free the idempotency key so the client's retry creates fresh items.
    def _mark() -> None:
        for item_id in ids:
            services.items.transition(item_id, "failed", LIVE, "enqueue_failed",
                                      fields={"error_code": "queue_unavailable",
                                              "error_message": "could not enqueue the task"})
        if ikey:
            services.items.forget_idempotency(ikey)
    try:
        await run_in_threadpool(_mark)
    except RedisError:
        log.warning("could not mark unqueued items failed; a starting worker will re-enqueue them")


async def wait_final(services: Services, item_id: str, timeout_s: float) -> Item | None:
    """Long-poll until the item is final or `timeout_s` passes; returns the item (any status) or None.

    Only called once the item exists, so a store error here must never become a 5xx: the caller would report a
    failure for an item that was accepted (and may well complete). A failing read or BLPOP (Redis restarting,
    a pooled connection cut by a restart) is retried until the deadline; then the last state seen is returned
    (None if none was), which callers answer with 202 and the status_url.
    """
    deadline = time.monotonic() + timeout_s
    last: Item | None = None
    while True:
        try:
            item = await run_in_threadpool(services.items.get, item_id)
            if item is None or item["status"] in FINAL:
                return item
            last = item
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return item
            # The worker pushes to notify:{id} when it finishes; cap each block at 1 s so concurrent waiters
            # on the same id (only one of which pops the notification) re-check the status soon.
            await services.aredis.blpop([keys.notify(item_id)], timeout=max(0.01, min(1.0, remaining)))
        except RedisError as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("store error while waiting on %s; answering 202: %s", item_id, exc)
                return last
            log.info("store error while waiting on %s, retrying: %s", item_id, exc)
            # A stale pooled connection fails at once and the next try reconnects; a Redis that is really down
            # fails fast too (short connect timeout), so pace the retries instead of spinning.
            await asyncio.sleep(min(0.2, remaining))


def check_text_limit(text: str, limit: int) -> None:
    if len(text) > limit:
        raise ApiError(f"text has {len(text)} characters; the limit is {limit}", code="text_too_long",
                       status=413, details={"length": len(text), "limit": limit})


def new_text_item(services: Services, principal: Principal, req: ModerationRequest) -> NewItem:
    """The item for one text (shared by the route and service.gateway.fastpath); checks the length and, when
    one is given, the callback URL (a DNS lookup: call it off the event loop then)."""
    settings = services.settings
    check_text_limit(req.text, settings.max_text_chars)
    if req.callback_url:
        try:
            check_callback(req.callback_url, settings)
        except CallbackUrlError as exc:
            raise InvalidInput(f"callback_url refused: {exc}", code="invalid_callback_url") from exc
    return NewItem(
        tenant=principal.tenant,
        kind="text",
        content_hash=hashlib.sha256(req.text.encode("utf-8")).hexdigest(),
        external_id=req.external_id,
        fields={"text": req.text, "metadata": req.metadata, "callback_url": req.callback_url,
                "priority": req.priority},
    )
