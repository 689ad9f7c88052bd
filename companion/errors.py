"""Owns the companion's error hierarchy and its single mapping to JSON bodies {"error": {code, message, details}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.core.errors import error_body


class CompanionError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message, self.details = message, details or {}


class UnknownItemError(CompanionError):
    status, code = 404, "unknown_item"


class UnknownCollectionError(CompanionError):
    status, code = 404, "unknown_collection"


class ValidationFailed(CompanionError):
    status, code = 422, "validation_error"


class FaqLoadFailed(CompanionError):
    status, code = 422, "faq_load_error"


class Unauthorized(CompanionError):
    status, code = 401, "unauthorized"


class StoreUnavailable(CompanionError):
    # Fail closed: without the block list we cannot promise moderated items stay hidden.
    status, code = 503, "moderation_store_unavailable"


class RecsStoreUnavailable(CompanionError):
    # Ratings, events and "not interested" live in Redis: without it a list would ignore what the user told us.
    status, code = 503, "recs_store_unavailable"


class UnknownRatingError(CompanionError):
    status, code = 404, "unknown_rating"


class NotReady(CompanionError):
    status, code = 503, "not_ready"


def install(app: FastAPI) -> None:
    @app.exception_handler(CompanionError)
    async def _companion(_: Request, exc: CompanionError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse(error_body("validation_error", "request is invalid", {"errors": errors}), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)
