"""Owns the gateway's FastAPI dependencies: settings, stores, the queue and the authenticated principal.

API keys travel as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Both are declared as OpenAPI security
schemes (not as header parameters), so /docs offers an Authorize button and clients and fuzzers see them as
credentials, alternatives to each other, rather than as optional inputs to fill in.

Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in the thread pool, one
hop per dependency per request. The principal is taken from the rate limiter when it already looked the same
key up for this request (scope key PRINCIPAL_SCOPE_KEY), else read from Redis in one thread hop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import redis
import redis.asyncio as aioredis
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from service.core.config import Settings
from service.core.domain import Item
from service.core.errors import Forbidden, NotFound, Unauthorized, UnsupportedMediaType
from service.core.queue import TaskQueue
from service.core.security import Principal, Role
from service.gateway.publisher import TextPublisher
from service.store.apikeys import ApiKeyStore, TenantStore
from service.store.items import ItemStore
from service.store.policies import PolicyStore
from service.store.reviews import ReviewStore


@dataclass
class Services:
    """Everything a request handler needs, built once in the lifespan."""

    settings: Settings
    redis: redis.Redis
    aredis: aioredis.Redis  # no socket timeout: long-polls (BLPOP)
    aredis_timed: aioredis.Redis  # socket timeouts: the submission hot path (key + token take, create)
    items: ItemStore
    keys: ApiKeyStore
    tenants: TenantStore
    policies: PolicyStore
    queue: TaskQueue
    reviews: ReviewStore
    text_publisher: TextPublisher


# Set by service.gateway.ratelimit.RateLimitMiddleware to (api key, principal) once it authenticated the key.
PRINCIPAL_SCOPE_KEY = "mod.principal"


async def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


# auto_error=False: a missing credential is ours to report, as `missing_api_key` in the JSON error shape.
bearer_scheme = HTTPBearer(scheme_name="BearerKey", auto_error=False,
                           description="An API key as a bearer token: `Authorization: Bearer <key>`.")
api_key_scheme = APIKeyHeader(name="X-API-Key", scheme_name="ApiKeyHeader", auto_error=False,
                              description="The same API key in the `X-API-Key` header.")


async def presented_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    x_api_key: Annotated[str | None, Security(api_key_scheme)],
) -> str | None:
    """The API key the caller sent, if any; `X-API-Key` wins when both are sent."""
    return key_of(bearer, x_api_key)


def key_of(bearer: HTTPAuthorizationCredentials | None, x_api_key: str | None) -> str | None:
    return x_api_key or (bearer.credentials if bearer is not None else None) or None


PresentedKey = Annotated[str | None, Depends(presented_key)]


async def principal_for(request: Request, key: str | None) -> Principal:
    """The principal of the presented key: from the rate limiter's lookup for this request when it made one,
    else read from Redis in one thread hop."""
    if not key:
        raise Unauthorized("missing API key: send `Authorization: Bearer <key>` or `X-API-Key`",
                           code="missing_api_key")
    seen = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if seen is not None and seen[0] == key:
        return seen[1]  # type: ignore[no-any-return]
    services: Services = request.app.state.services
    principal = await run_in_threadpool(services.keys.authenticate, key)
    if principal is None:
        raise Unauthorized("unknown or revoked API key", code="invalid_api_key")
    return principal


async def get_principal(request: Request, key: PresentedKey) -> Principal:
    return await principal_for(request, key)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def visible_item(services: Services, principal: Principal, item_id: str,
                 code: str = "moderation_not_found") -> Item:
    """The item if the caller may see it. Another tenant's item is reported missing, not forbidden, so ids
    cannot be probed."""
    item = services.items.get(item_id)
    if item is None or not principal.can_see(item["tenant"]):
        raise NotFound(f"no moderation with id {item_id!r}", code=code)
    return item


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    # One dependency that reads the credentials itself (rather than depending on get_principal, which depends on
    # presented_key): FastAPI resolves every dependency node on every request, and on the submission path the
    # nested chain cost more CPU than the Redis round trips. The two Security parameters keep the OpenAPI schemes.
    async def check(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
        x_api_key: Annotated[str | None, Security(api_key_scheme)],
    ) -> Principal:
        principal = await principal_for(request, key_of(bearer, x_api_key))
        if principal.role not in roles:
            raise Forbidden(f"role {principal.role.value!r} may not do this; needs one of "
                            f"{', '.join(r.value for r in roles)}", code="forbidden_role")
        return principal
    return check


PlatformOrAdmin = Annotated[Principal, Depends(require(Role.platform, Role.admin))]
AnyRole = Annotated[Principal, Depends(require(Role.platform, Role.moderator, Role.admin))]
AdminOnly = Annotated[Principal, Depends(require(Role.admin))]
ModeratorOrAdmin = Annotated[Principal, Depends(require(Role.moderator, Role.admin))]


async def require_json(request: Request) -> None:
    """JSON endpoints refuse other content types up front (FastAPI would report a confusing 422)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {ctype or 'none'!r}")


JsonBody = Depends(require_json)

