"""Owns the service's exception hierarchy, its single mapping to JSON error responses, and their OpenAPI model.

Every error body is `{"error": {"code": <stable code>, "message": <human text>, "details": {...}}}`; clients
branch on `code`, never on the message. `ErrorBody` documents that shape and `responses(...)` lists it for a
route's status codes, so the OpenAPI document says exactly what the handlers below send.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from pydantic import BaseModel, Field
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

# Custom pydantic error types we raise in schemas; they surface as the response code instead of the
# generic `validation_error`.
SCHEMA_ERROR_CODES = {"empty_text", "invalid_text", "invalid_callback_url", "metadata_too_large"}


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details or {}
        self.headers = headers


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        # RFC 9110: a 401 names the scheme the client should use.
        super().__init__(message, code=code, details=details, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class InvalidInput(ApiError):
    status, code = 422, "validation_error"


class ServiceUnavailable(ApiError):
    status, code = 503, "service_unavailable"


class ErrorObject(BaseModel):
    code: str = Field(description="Stable machine-readable code; branch on this, never on `message`.",
                      examples=["invalid_api_key"])
    message: str = Field(description="Human-readable explanation; may change between releases.")
    details: dict[str, Any] = Field(default_factory=dict,
                                    description="Structured context (limits, offending fields, ids).")


class ErrorBody(BaseModel):
    """The body of every error response (4xx and 5xx)."""

    error: ErrorObject


# What each status means here and the codes it carries (docs/api.md has the same table); a route narrows a
# status with `notes` when only some of the codes apply to it.
ERROR_STATUSES: dict[int, str] = {
    400: "Malformed request: `malformed_json`, `invalid_encoding` (body not UTF-8), `malformed_body`, `empty_file`",
    401: "No or unknown API key: `missing_api_key`, `invalid_api_key`",
    403: "The key's role may not do this: `forbidden_role`",
    404: "Not found, or owned by another tenant (ids cannot be probed)",
    409: "Conflicts with the current state (e.g. `idempotency_conflict`)",
    413: "Too large: `body_too_large` (any request body over its limit), `text_too_long`, `batch_too_large`, "
         "`file_too_large`",
    415: "Wrong content type: `unsupported_media_type` (body not `application/json`)",
    422: "Failed validation: `validation_error` (`details.errors` lists each field) or a specific code",
    429: "Too many requests: `rate_limited`; retry after `Retry-After` seconds",
    503: "A dependency is down or the queue is full: `store_unavailable` (Redis), `queue_unavailable` (broker), "
         "`queue_full` (back-pressure); retry after "
         "`Retry-After` seconds",
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "The scheme to authenticate with (`Bearer`).",
                                          "schema": {"type": "string"}}}


def responses(*statuses: int, notes: Mapping[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting `ErrorBody` for each status a route can return.

    `notes` replaces the generic description of a status with the route's own codes, e.g.
    `responses(401, 403, 404, 503, notes={404: "`rescan_not_found`"})`.
    """
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        if status not in ERROR_STATUSES:
            raise ValueError(f"no documented error status {status}; add it to ERROR_STATUSES")
        entry: dict[str, Any] = {"model": ErrorBody, "description": (notes or {}).get(status, ERROR_STATUSES[status])}
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        elif status == 401:
            entry["headers"] = _WWW_AUTHENTICATE
        out[status] = entry
    return out


def json_error_response(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    """Like `responses`, for a route whose own media type is not JSON (e.g. `response_class=PlainTextResponse`):
    FastAPI would file a `model` under the route's media type, but errors are always JSON."""
    entry = responses(status, notes={status: description})[status]
    del entry["model"]
    entry["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {status: entry}


# Every route behind an API key: no/unknown key, wrong role, rate limited (limits are per key and tenant),
# Redis down while checking the key.
AUTH_ERRORS = (401, 403, 429, 503)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def validation_error(raw: Sequence[Mapping[str, Any]]) -> tuple[int, str, str, dict[str, Any]]:
    """(status, code, message, details) for pydantic errors; the API handler and the operator CLI share it."""
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "type": e.get("type"), "msg": e.get("msg")} for e in raw]
    types = {e["type"] for e in errors}
    if "json_invalid" in types:
        return 400, "malformed_json", "request body is not valid JSON", {"errors": errors}
    custom = [t for t in types if t in SCHEMA_ERROR_CODES]
    if custom:
        msg = next(e["msg"] for e in errors if e["type"] == custom[0])
        return 422, str(custom[0]), str(msg), {"errors": errors}
    return 422, "validation_error", "request failed validation", {"errors": errors}


def _json(status: int, code: str, message: str, details: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 413: "payload_too_large",
    415: "unsupported_media_type", 429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the JSON error shape, once, for the whole app."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, exc.code, exc.message, exc.details, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _json(*validation_error(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's message for any body it could not parse; the cause says which client mistake it was.
            cause = exc.__cause__
            if isinstance(cause, UnicodeDecodeError):
                return _json(400, "invalid_encoding", "request body is not valid UTF-8 JSON")
            if isinstance(cause, RecursionError):
                return _json(400, "malformed_json", "request body is JSON nested too deeply")
            return _json(400, "malformed_body", "request body could not be parsed")
        if exc.status_code == 413:  # a streamed body crossed the limit (see service.gateway.middleware)
            return _json(413, "body_too_large", str(exc.detail))
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return _json(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    async def _broker_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("broker unavailable: %s", exc)
        return _json(503, "queue_unavailable", "the task queue is unreachable; retry later",
                     headers={"Retry-After": "5"})

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    # A primary demoted by a failover answers READONLY until clients re-resolve it: retryable, like a drop.
    @app.exception_handler(redis.exceptions.ReadOnlyError)
    async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("redis unavailable: %s", exc)
        return _json(503, "store_unavailable", "the verdict store (Redis) is unreachable; retry later",
                     headers={"Retry-After": "5"})


def valid_unicode(value: str) -> str:
    """A pydantic field validator body: refuse strings with lone surrogates (JSON `\\ud800` escapes allow them).

    They cannot be encoded as UTF-8, so echoing them in a response would fail with a 500; they surface as 422
    `invalid_text` instead (see SCHEMA_ERROR_CODES). One copy for the gateway's schemas and the rescan request
    the CLI shares.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PydanticCustomError("invalid_text", "text is not valid Unicode (lone surrogate at position {pos})",
                                  {"pos": exc.start}) from exc
    return value
