"""Owns console sign-in: exchanging an API key for a session cookie, CSRF checks, sign-out, idle timeout, headers.

The browser never keeps the API key: sign-in posts it once and gets back an HttpOnly, SameSite=Strict cookie
(path /console, Secure over HTTPS) naming a server-side session (service.store.sessions) plus a CSRF token that
the page holds in memory only. Every state-changing console request must send that token in `X-CSRF-Token`
and, when the browser sends one, an `Origin` equal to the console's own. The /v1 API never reads the cookie,
so it cannot be driven cross-site through a signed-in browser. Each request re-reads the key behind the
session: revoking the key signs its sessions out, and a session idle longer than the timeout is gone.

`ConsoleRoute` gives every console response (errors included) the strict CSP and the other security headers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from service.core.errors import ApiError, Forbidden, Unauthorized, error_body
from service.core.security import Principal, Role
from service.gateway.deps import JsonBody, Services, ServicesDep
from service.store.sessions import Session, SessionStore

COOKIE = "mod_console"
CSRF_HEADER = "x-csrf-token"
POLL_HEADER = "x-console-poll"
DEFAULT_IDLE_S = 15 * 60.0
DEFAULT_MAX_S = 10 * 3600.0  # a shift, then sign in again
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin", "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def add_security_headers(response: Response, cache: str = "no-store") -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", cache)
    return response


class ConsoleRoute(APIRoute):
    """Console routes answer API errors themselves, so that those answers carry the security headers too."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                response = await handler(request)
            except ApiError as exc:
                response = JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status,
                                        headers=exc.headers)
            except RequestValidationError as exc:
                errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg")} for e in exc.errors()]
                first = errors[0]["msg"] if errors else "invalid request"
                response = JSONResponse(error_body("validation_error", f"invalid request: {first}",
                                                   {"errors": errors}), 422)
            return add_security_headers(response)

        return run


def idle_timeout_s(services: Services) -> float:
    # Settings may grow console_session_idle_s / console_session_max_s; until then, the defaults.
    return float(getattr(services.settings, "console_session_idle_s", DEFAULT_IDLE_S))


def max_lifetime_s(services: Services) -> float:
    return float(getattr(services.settings, "console_session_max_s", DEFAULT_MAX_S))


def _check_origin(request: Request) -> None:
    """Refuse a request another site's page made: a foreign Origin, or Sec-Fetch-Site saying cross-site."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("request from another origin refused", code="bad_origin")
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise Forbidden("cross-site request refused", code="bad_origin")


def _principal_for(services: Services, key_id: str) -> Principal | None:
    info = services.keys.get(key_id)
    if info is None:
        return None
    return Principal(key_id=info["key_id"], tenant=info["tenant"], role=Role(info["role"]), name=info["name"])


def console_principal(request: Request, services: ServicesDep) -> Principal:
    """The signed-in moderator or admin; state changes also need the CSRF token and a same-origin request."""
    sid = request.cookies.get(COOKIE, "")
    # Background polls (live counts, lease checks) do not count as activity, or an open tab would never go idle.
    active = request.headers.get(POLL_HEADER) != "1"
    session = SessionStore(services.redis).touch(sid, active) if sid else None
    if session is None:
        raise Unauthorized("not signed in, or the session expired: sign in again",
                           code="session_expired" if sid else "not_signed_in")
    principal = _principal_for(services, session.key_id)
    if principal is None:
        SessionStore(services.redis).delete(sid)
        raise Unauthorized("the API key behind this session was revoked: sign in again", code="session_revoked")
    if request.method not in SAFE_METHODS:
        _check_origin(request)
        if not session.csrf_ok(request.headers.get(CSRF_HEADER)):
            raise Forbidden("missing or wrong CSRF token: reload the console", code="csrf_failed")
    request.state.console_session = session
    return principal


ConsolePrincipal = Annotated[Principal, Depends(console_principal)]


def require_admin(principal: Principal) -> Principal:
    if not principal.is_admin:
        raise Forbidden("only admins may use this page", code="forbidden_role")
    return principal


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=512)


class Prefs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    blur_media: bool


router = APIRouter(prefix="/console/api", route_class=ConsoleRoute, include_in_schema=False)


def _who(principal: Principal, session: Session, services: Services) -> dict[str, Any]:
    prefs = SessionStore(services.redis).prefs(principal.key_id)
    return {"user": {"key_id": principal.key_id, "name": principal.name or principal.key_id,
                     "role": principal.role.value, "tenant": principal.tenant, "superadmin": principal.is_superadmin,
                     "admin": principal.is_admin},
            "csrf_token": session.csrf, "idle_timeout_s": session.idle_s, "expires_at": session.expires_at,
            "prefs": {"blur_media": prefs.get("blur_media") == "1"}}


def _set_cookie(request: Request, response: Response, sid: str, max_age: float) -> None:
    response.set_cookie(COOKIE, sid, max_age=int(max_age), path="/console", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


@router.post("/session", dependencies=[JsonBody])
def sign_in(body: SignIn, request: Request, response: Response, services: ServicesDep) -> dict[str, Any]:
    """Exchange an API key (moderator or admin) for a session cookie and a CSRF token."""
    _check_origin(request)
    principal = services.keys.authenticate(body.key)
    if principal is None:
        raise Unauthorized("unknown or revoked API key", code="invalid_api_key")
    if principal.role not in (Role.moderator, Role.admin):
        raise Forbidden("the console is for moderator and admin keys", code="forbidden_role")
    store = SessionStore(services.redis)
    old = request.cookies.get(COOKIE)
    if old:
        store.delete(old)  # a new sign-in never keeps an older session id alive (session fixation)
    sid, session = store.create(principal.key_id, idle_timeout_s(services), max_lifetime_s(services))
    _set_cookie(request, response, sid, max_lifetime_s(services))
    return _who(principal, session, services)


@router.get("/session")
def session_info(request: Request, services: ServicesDep, principal: ConsolePrincipal) -> dict[str, Any]:
    """Who is signed in, and the session's CSRF token (a reloaded page lost the copy it held in memory)."""
    return _who(principal, request.state.console_session, services)


@router.post("/session/logout", status_code=204)
def sign_out(request: Request, services: ServicesDep, _: ConsolePrincipal) -> Response:
    """End the session now and clear the cookie."""
    SessionStore(services.redis).delete(request.cookies.get(COOKIE, ""))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict")
    return response


@router.put("/prefs", dependencies=[JsonBody])
def put_prefs(body: Prefs, services: ServicesDep, principal: ConsolePrincipal) -> dict[str, Any]:
    """Per-moderator preferences (kept server-side, with the key id): blur media by default."""
    prefs = SessionStore(services.redis).set_prefs(principal.key_id, {"blur_media": "1" if body.blur_media else "0"})
    return {"blur_media": prefs.get("blur_media") == "1"}
