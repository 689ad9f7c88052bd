"""Owns the gateway's rate limits and back-pressure: route families, the ASGI limiter, the queue-depth check.

Rate limits run as ASGI middleware, before FastAPI reads the body, so a flood of uploads is refused without
spooling them to disk. The middleware authenticates the key itself and takes a token from the key's and the
tenant's bucket of the route family in the same atomic script (service.store.ratelimit, one round trip); unknown
keys pass through and the route answers 401. Every limited response carries the IETF `RateLimit-Limit`,
`RateLimit-Remaining` and `RateLimit-Reset` headers; a refusal is 429 `rate_limited` with `Retry-After`.

If Redis fails, reads fail open (the route then does its own Redis work and reports 503 if it must); other
families answer 503 `store_unavailable`: they would write to the same Redis anyway.

Queue back-pressure is checked by the submission flow (service.gateway.submit) inside the create script
(service.store.items, one round trip): past `MOD_QUEUE_MAX_PENDING` pending items new submissions get 503
`queue_full` with `Retry-After`; `check_queue_depth` is the same check as a separate read.

The middleware hands the principal it authenticated to the route (scope key PRINCIPAL_SCOPE_KEY, with the key
it was read from), so a limited request looks its key up once, not twice.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.config import Settings
from service.core.errors import ApiError, error_body
from service.core.security import Principal
from service.gateway.deps import PRINCIPAL_SCOPE_KEY, Services
from service.gateway.middleware import Metrics
from service.store.apikeys import principal_from, record_key
from service.store.ratelimit import Bucket, Decision, RateLimitStore, pending_depth

log = logging.getLogger(__name__)

FAMILIES = ("submit", "read", "review", "admin")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SUBMIT_LEAVES = frozenset({"batch", "image", "video"})
_ADMIN_RESOURCES = frozenset({"keys", "tenants", "hashlists", "rescans"})
# Same answer as the store-down handler in service.core.errors, so clients see one behaviour.
_STORE_DOWN_RETRY_S = 5


def route_family(method: str, path: str) -> str | None:
    """The rate-limit family of a request; None for paths that are never limited (health, metrics, docs)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2 or parts[0] != "v1":
        return None
    resource = parts[1]
    if resource == "moderations" and method == "POST" and (
            len(parts) == 2 or (len(parts) == 3 and parts[2] in _SUBMIT_LEAVES)):
        return "submit"
    if resource == "reviews" or (resource == "moderations" and len(parts) == 4 and parts[3] == "appeal"):
        return "review"
    if resource in _ADMIN_RESOURCES or (resource == "policies" and method not in READ_METHODS):
        return "admin"
    # Writes no family claims (an unknown path, a new route) count as admin: the strictest default.
    return "read" if method in READ_METHODS else "admin"


def family_rates(settings: Settings, family: str) -> list[tuple[float, int]]:
    """(rate per second, burst) of the key's and then the tenant's bucket of this family (0: that bucket is off)."""
    return [(float(getattr(settings, f"ratelimit_{family}_{scope}_per_s")),
             int(getattr(settings, f"ratelimit_{family}_{scope}_burst"))) for scope in ("key", "tenant")]


def buckets_for(settings: Settings, family: str, principal: Principal) -> list[Bucket]:
    """The key's and the tenant's bucket of this family (a bucket with rate or burst 0 is off)."""
    idents = (("key", principal.key_id), ("tenant", principal.tenant))
    return [Bucket(family, scope, ident, rate, burst)
            for (scope, ident), (rate, burst) in zip(idents, family_rates(settings, family), strict=True)]


def api_key_from_headers(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The API key exactly as service.gateway.deps reads it: X-API-Key, else a Bearer token.

    Any difference would let a client send a key the route accepts but this limiter does not see. Like
    Starlette's `headers.get`, the FIRST occurrence of a repeated header counts.
    """
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in (b"x-api-key", b"authorization") and lower not in found:
            found[lower] = value
    if found.get(b"x-api-key"):
        return found[b"x-api-key"].decode("latin-1")
    scheme, _, token = found.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def rate_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    """IETF RateLimit-* headers for the tightest bucket (+ Retry-After when refused); none if no bucket is on."""
    state = decision.tightest
    if state is None:
        return []
    # Reset is when the bucket is full again (token bucket: the quota refills continuously, not in windows).
    out = [(b"ratelimit-limit", str(state.bucket.burst).encode()),
           (b"ratelimit-remaining", str(state.remaining).encode()),
           (b"ratelimit-reset", str(math.ceil(state.reset_s)).encode())]
    if not decision.allowed:
        out.append((b"retry-after", str(max(1, math.ceil(state.retry_after_s))).encode()))
    return out


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": raw})


class RateLimitMiddleware:
    """Per-key and per-tenant token buckets per route family; see the module docstring."""

    def __init__(self, app: ASGIApp, settings: Settings, metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self._store: tuple[Any, RateLimitStore] | None = None

    def _store_for(self, services: Services) -> RateLimitStore:
        # Built on first use: the Redis clients only exist once the lifespan has run.
        if self._store is None or self._store[0] is not services.redis:
            self._store = (services.redis, RateLimitStore(services.redis, services.aredis_timed))
        return self._store[1]

    async def _decide(self, services: Services, key: str, family: str) -> tuple[Principal | None, Decision | None]:
        # One round trip for both, on the asyncio client: every submission pays for this, so the key lookup and
        # the take are one script, and no thread-pool hop.
        found = await self._store_for(services).aauthenticate_and_take(record_key(key), family,
                                                                       family_rates(self.settings, family))
        if found is None:
            return None, None
        record, decision = found
        return principal_from(record), decision

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.settings.ratelimit_enabled:
            await self.app(scope, receive, send)
            return
        family = route_family(scope["method"], scope["path"])
        app = scope.get("app")
        services = getattr(getattr(app, "state", None), "services", None)
        key = api_key_from_headers(scope.get("headers") or [])
        if family is None or services is None or not key:
            await self.app(scope, receive, send)
            return
        try:
            principal, decision = await self._decide(services, key, family)
        except RedisError as exc:
            if family == "read":
                self.metrics.ratelimit_errors.labels(family, "fail_open").inc()
                log.warning("rate limiter unavailable, letting a read through: %s", exc)
                await self.app(scope, receive, send)
                return
            self.metrics.ratelimit_errors.labels(family, "refused").inc()
            log.warning("rate limiter unavailable, refusing a %s request: %s", family, exc)
            await _send_json(send, 503, error_body(
                "store_unavailable", "the verdict store (Redis) is unreachable; retry later"),
                [(b"retry-after", str(_STORE_DOWN_RETRY_S).encode())])
            return
        if principal is None or decision is None:  # unknown or revoked key: the route answers 401 as usual
            await self.app(scope, receive, send)
            return
        scope[PRINCIPAL_SCOPE_KEY] = (key, principal)
        headers = rate_headers(decision)
        refused = decision.refused_by
        if refused is not None:
            self.metrics.rate_limited.labels(family, refused.bucket.scope).inc()
            retry = max(1, math.ceil(refused.retry_after_s))
            await _send_json(send, 429, error_body(
                "rate_limited",
                f"too many {family} requests for this {refused.bucket.scope}; retry after {retry} s",
                {"family": family, "scope": refused.bucket.scope, "limit": refused.bucket.burst,
                 "rate_per_s": refused.bucket.rate, "retry_after_s": retry}), headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in headers if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ---- queue-depth back-pressure -----------------------------------------------------------------------------


class QueueFull(ApiError):
    """503, not 429: the backlog is the service's condition, not this client's quota (see docs/operations.md)."""

    status, code = 503, "queue_full"

    def __init__(self, pending: int, limit: int, retry_after_s: int) -> None:
        super().__init__(f"the moderation queue is full ({pending} items pending, limit {limit}); "
                         f"retry after {retry_after_s} s", details={"pending": pending, "limit": limit,
                                                                   "retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


def check_queue_depth(services: Services, idem_key: str = "") -> None:
    """Raise QueueFull when MOD_QUEUE_MAX_PENDING items are pending (blocking: call from a worker thread).

    A separate read, for callers outside the submission flow: submissions get the same check inside the create
    script (ItemStore.create's `max_pending`), one round trip and an exact cap (a batch may still end past it).
    """
    limit = services.settings.queue_max_pending
    if limit <= 0:
        return
    try:
        depth = pending_depth(services.redis)
        # A retry of a submission already accepted returns its ids (idempotency) instead of a 503.
        if depth < limit or (idem_key and services.redis.exists(idem_key)):
            return
    except RedisError:
        return  # the create that follows reports the store as unavailable
    raise QueueFull(depth, limit, services.settings.queue_full_retry_after_s)


async def queue_full_handler(request: Request, exc: Exception) -> JSONResponse:
    """The JSON error for QueueFull plus Retry-After (the generic ApiError handler sets no headers)."""
    if not isinstance(exc, QueueFull):  # registered for QueueFull only
        raise exc
    request.app.state.metrics.queue_full.inc()
    return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status,
                        headers={"Retry-After": str(exc.retry_after_s)})


class BackPressureCollector(Collector):
    """The depth check's gauges, read at scrape time (the depth itself is moderation_pending_items)."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        limit = self.settings.queue_max_pending
        yield GaugeMetricFamily("moderation_queue_depth_limit",
                                "Pending items past which new submissions get 503 queue_full (0: no limit)",
                                value=limit)
        services = getattr(self.app.state, "services", None)
        if services is None or limit <= 0:
            return
        try:
            depth = pending_depth(services.redis)
        except RedisError:
            return
        yield GaugeMetricFamily("moderation_queue_full", "1 while new submissions are refused as queue_full",
                                value=int(depth >= limit))
