"""Owns the submission fast path: `POST /v1/moderations` without FastAPI's per-request machinery.

Why: an upload hook calls this endpoint inline, so its cost is the platform's latency. A profile of the gateway
under load (docs/operations.md, "Performance figures") showed FastAPI's dependency resolution, route matching and
exception layers taking more of the gateway's CPU than the submission's two Redis round trips. For the common
request this middleware runs the same steps as `routes.moderations.submit` directly:

- the rate limiter has already authenticated the key for this request (one Lua call), and its role may submit;
- `Content-Type: application/json`, no query string (so no `?wait=`), an Idempotency-Key of ≤ 128 characters;
- the body parses with `json.loads` and validates with the route's own `ModerationRequest`;
- no `callback_url` (checking one needs DNS) and a text within MOD_MAX_TEXT_CHARS.

Every other request, every invalid one included, is handed to FastAPI unchanged (its body replayed), so error
answers and OpenAPI come from one place: the route. Errors raised after validation (queue full, idempotency
conflict, Redis or broker down) are rendered by the app's own exception handlers. The item, the digest, the
create and the answer are the route's own functions (service.gateway.submit), so both paths store the same
thing and answer the same bytes. `MOD_GATEWAY_FAST_PATH=false` turns it off.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.security import Principal, Role
from service.gateway.deps import PRINCIPAL_SCOPE_KEY, Services
from service.gateway.schemas import ModerationRequest
from service.gateway.submit import accepted, body_digest, create_items, new_text_item

PATH = "/v1/moderations"
_ROLES = (Role.platform, Role.admin)
_MAX_IDEMPOTENCY_KEY = 128  # the route's Header(max_length=128)


class SubmitFastPath:
    def __init__(self, app: ASGIApp, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled
        self._route: BaseRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = self._eligible(scope)
        if principal is None:
            await self.app(scope, receive, send)
            return
        body, replay = await _read_body(receive)
        req = _parse(body)
        fastapi_app: FastAPI = scope["app"]
        services: Services = fastapi_app.state.services
        idem = _header(scope, b"idempotency-key")
        if (req is None or req.callback_url or len(req.text) > services.settings.max_text_chars
                or (idem is not None and len(idem) > _MAX_IDEMPOTENCY_KEY)):
            await self.app(scope, replay, send)  # the route answers, errors included
            return
        # Metrics and logs label requests by route template: give them the route this request stands for.
        scope["route"] = self._route or self._find_route(fastapi_app)
        try:
            ids, _ = await create_items(services, [new_text_item(services, principal, req)], idem,
                                        body_digest(req.model_dump()), text_sizes=[len(req.text)])
        except Exception as exc:
            handler = _handler_for(fastapi_app, exc)
            if handler is None:
                raise
            response = handler(Request(scope, replay), exc)
            if inspect.isawaitable(response):  # Starlette accepts sync handlers too
                response = await response
            await response(scope, replay, send)
            return
        response = JSONResponse(accepted(ids[0]), status_code=202, headers={"Location": f"{PATH}/{ids[0]}"})
        await response(scope, replay, send)

    def _eligible(self, scope: Scope) -> Principal | None:
        if (not self.enabled or scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH
                or scope.get("query_string")):
            return None
        seen = scope.get(PRINCIPAL_SCOPE_KEY)
        if seen is None or seen[1].role not in _ROLES:
            return None
        ctype = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        return seen[1] if ctype == "application/json" else None  # type: ignore[no-any-return]

    def _find_route(self, app: FastAPI) -> BaseRoute | None:
        for route in _routes(app.router.routes):
            if getattr(route, "path", None) == PATH and "POST" in (getattr(route, "methods", None) or ()):
                self._route = route
                return route
        return None


def _routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    # FastAPI keeps included routers as wrappers around the original router (its `original_router`).
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


def _header(scope: Scope, name: bytes) -> str | None:
    # The first occurrence counts, as with Starlette's Headers.get (what the route reads).
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a receive() that replays every message read (a disconnect included) for whoever
    handles the request next. A body over the limit raises inside receive() (BodyLimitMiddleware answers 413)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return body, replay


def _parse(body: bytes) -> ModerationRequest | None:
    # The route's parse: FastAPI json.loads the body, then validates the object with the model.
    try:
        data: Any = json.loads(body)
        return ModerationRequest.model_validate(data) if isinstance(data, dict) else None
    except (ValueError, RecursionError, ValidationError):
        return None


def _handler_for(app: FastAPI, exc: Exception) -> Any:
    """The app's exception handler for `exc` (the closest class in its MRO), as Starlette would pick it."""
    for cls in type(exc).__mro__:
        handler = app.exception_handlers.get(cls)
        if handler is not None:
            return handler
    return None
