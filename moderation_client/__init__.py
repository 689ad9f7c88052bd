"""Python client for the moderation service: typed sync and async APIs, safe retries, webhook verification.

Depends only on httpx; imports nothing from the service itself (an import-linter contract checks this), so
platforms can vendor or install it on its own. Usage and retry semantics: docs/client.md.
"""

from moderation_client._base import MAX_SERVER_WAIT_S, TextInput, __version__, new_idempotency_key
from moderation_client.aio import AsyncModerationClient
from moderation_client.client import ModerationClient
from moderation_client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    IdempotencyConflictError,
    ModerationClientError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    TransportError,
    UnsupportedMediaError,
    ValidationError,
    WaitTimeout,
)
from moderation_client.retry import NO_RETRIES, RetryPolicy, parse_retry_after
from moderation_client.types import (
    FINAL_STATUSES,
    Accepted,
    Claim,
    ItemError,
    ModelRef,
    Moderation,
    Page,
    ReviewItem,
    Submission,
    WebhookEvent,
    WebhookSecret,
)
from moderation_client.uploads import Upload
from moderation_client.webhooks import SIGNATURE_HEADER, WebhookVerificationError, WebhookVerifier

__all__ = [
    "APIError", "Accepted", "AsyncModerationClient", "AuthenticationError", "BadRequestError", "Claim",
    "ConflictError", "FINAL_STATUSES", "IdempotencyConflictError", "ItemError", "MAX_SERVER_WAIT_S", "ModelRef",
    "Moderation", "ModerationClient", "ModerationClientError", "NO_RETRIES", "NotFoundError", "Page",
    "PayloadTooLargeError", "PermissionDeniedError", "RateLimitedError", "RetryPolicy", "ReviewItem",
    "SIGNATURE_HEADER", "ServerError", "ServiceUnavailableError", "Submission", "TextInput", "TransportError",
    "UnsupportedMediaError", "Upload", "ValidationError", "WaitTimeout", "WebhookEvent", "WebhookSecret",
    "WebhookVerificationError", "WebhookVerifier", "__version__", "new_idempotency_key", "parse_retry_after",
]
