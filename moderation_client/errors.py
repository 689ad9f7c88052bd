"""Owns the client's exception hierarchy and the one mapping from an HTTP error answer to a typed exception.

The service answers every 4xx/5xx with `{"error": {"code", "message", "details"}}`. `code` is stable, so each
exception carries it and callers branch on `exc.code` (or on the class, which follows the HTTP status);
`message` is for people and may change between releases.
"""

from __future__ import annotations

from typing import Any

import httpx

from moderation_client.retry import parse_retry_after


class ModerationClientError(Exception):
    """Base of everything this package raises."""


class APIError(ModerationClientError):
    """The service answered with an error body. `code` is the stable machine-readable code."""

    def __init__(self, status: int, code: str, message: str, *, details: dict[str, Any] | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}
        # Seconds the server asked us to wait (429/503), when it said; already honoured if retries were on.
        self.retry_after = retry_after


class BadRequestError(APIError):
    """400: malformed body, `empty_file`, ..."""


class AuthenticationError(APIError):
    """401: `missing_api_key`, `invalid_api_key`."""


class PermissionDeniedError(APIError):
    """403: `forbidden_role`, `lease_required`, ..."""


class NotFoundError(APIError):
    """404: `moderation_not_found` (also another tenant's item), `review_not_found`, ..."""


class ConflictError(APIError):
    """409: `already_claimed`, `not_in_review`, `appeal_pending`, ..."""


class IdempotencyConflictError(ConflictError):
    """409 `idempotency_conflict`: the Idempotency-Key was used before with a different body. Never retried."""


class PayloadTooLargeError(APIError):
    """413: `text_too_long`, `batch_too_large`, `file_too_large`, `body_too_large`."""


class UnsupportedMediaError(APIError):
    """415: `unsupported_format`, `audio_only`, `wrong_media_kind`, `unsupported_media_type`."""


class ValidationError(APIError):
    """422: `validation_error` (see `details["errors"]`), `empty_text`, `invalid_callback_url`, ..."""


class RateLimitedError(APIError):
    """429 `rate_limited`; `retry_after` says when to come back."""


class ServiceUnavailableError(APIError):
    """503: `store_unavailable`, `queue_unavailable`, `queue_full`; safe to retry with the same Idempotency-Key."""


class ServerError(APIError):
    """Any other 5xx."""


class TransportError(ModerationClientError):
    """No HTTP answer: connection refused, reset, timed out or dropped (after the retries allowed)."""

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class WaitTimeout(ModerationClientError):
    """`wait()` reached its deadline before the item became final; the item still exists and keeps going."""

    def __init__(self, item_id: str, last_status: str, timeout_s: float) -> None:
        super().__init__(f"moderation {item_id} still {last_status!r} after {timeout_s:g} s")
        self.item_id = item_id
        self.last_status = last_status
        self.timeout_s = timeout_s


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    409: ConflictError, 413: PayloadTooLargeError, 415: UnsupportedMediaError, 422: ValidationError,
    429: RateLimitedError, 503: ServiceUnavailableError,
}


def error_code(response: httpx.Response) -> str | None:
    """The stable `error.code` of an error answer, or None when the body is not the service's error shape."""
    try:
        body = response.json()
    except ValueError:
        return None
    err = body.get("error") if isinstance(body, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, str) else None


def error_from_response(response: httpx.Response) -> APIError:
    """Build the typed exception for an error answer (also for bodies a proxy wrote, which lack our shape)."""
    status = response.status_code
    code, message = f"http_{status}", response.reason_phrase or "error"
    details: dict[str, Any] = {}
    try:
        body = response.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and isinstance(err.get("code"), str):
        code = err["code"]
        message = str(err.get("message", message))
        raw_details = err.get("details")
        details = raw_details if isinstance(raw_details, dict) else {}
    elif response.text:
        message = response.text[:500]
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else APIError)
    if code == "idempotency_conflict":
        cls = IdempotencyConflictError
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    return cls(status, code, message, details=details, retry_after=retry_after)
