"""Owns verifying the service's signed webhook deliveries on the receiving (platform) side.

The service POSTs JSON `{event, delivery_id, sent_at, moderation}` with
`X-Moderation-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=...]`. During a
secret rotation's grace period it sends one `v1=` per active secret (new first, then the previous one), so a
receiver holding either secret, or both while it switches over, accepts the delivery.

A delivery is accepted when its timestamp is within `tolerance_s` of the receiver's clock (a captured delivery
cannot be replayed later) and any `v1=` matches any configured secret. Always verify the raw bytes as received:
re-serialised JSON differs and will not match.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from moderation_client.errors import ModerationClientError
from moderation_client.types import WebhookEvent

SIGNATURE_HEADER = "X-Moderation-Signature"
EVENT_HEADER = "X-Moderation-Event"
DEFAULT_TOLERANCE_S = 300
# Bounds on what a receiver parses, so a hostile header cannot make it compute thousands of HMACs.
MAX_HEADER_CHARS = 4096
MAX_SIGNATURES = 8

Reason = Literal["missing_signature", "malformed_signature", "timestamp_outside_window", "signature_mismatch",
                 "malformed_body"]


class WebhookVerificationError(ModerationClientError):
    """The delivery is not authentic or not fresh; answer it 400/401 and do not act on it. `reason` is stable."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: Reason = reason


class WebhookVerifier:
    """Checks deliveries against one secret, or several while a rotation is in progress.

    ```python
    verifier = WebhookVerifier([new_secret, old_secret])   # both during the grace period
    event = verifier.parse(request_body, request.headers["X-Moderation-Signature"])
    ```
    """

    def __init__(self, secrets: str | Sequence[str], *, tolerance_s: int = DEFAULT_TOLERANCE_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.secrets = [secrets] if isinstance(secrets, str) else [s for s in secrets if s]
        if not self.secrets:
            raise ValueError("at least one webhook secret is required")
        if tolerance_s <= 0:
            raise ValueError("tolerance_s must be positive")
        self.tolerance_s = tolerance_s
        self._clock = clock

    def verify(self, body: bytes, signature_header: str | None) -> int:
        """Raise `WebhookVerificationError` unless the delivery is authentic and fresh; return its timestamp."""
        timestamp, signatures = _parse_header(signature_header)
        if abs(self._clock() - timestamp) > self.tolerance_s:
            raise WebhookVerificationError(
                "timestamp_outside_window", f"signed at {timestamp}, more than {self.tolerance_s}s from now")
        expected = [_mac(secret, timestamp, body) for secret in self.secrets]
        # Compare every pair, without stopping at the first match, so timing reveals nothing about which matched.
        matched = False
        for exp in expected:
            for given in signatures:
                matched |= hmac.compare_digest(exp, given)
        if not matched:
            raise WebhookVerificationError("signature_mismatch", "no v1 signature matches a configured secret")
        return timestamp

    def parse(self, body: bytes, signature_header: str | None) -> WebhookEvent:
        """`verify`, then decode the delivery into a typed `WebhookEvent`."""
        self.verify(body, signature_header)
        try:
            data = json.loads(body)
            return WebhookEvent.from_json(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookVerificationError("malformed_body", f"signed body is not a delivery: {exc}") from exc

    def parse_request(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """`parse` with the signature taken from a header mapping (any capitalisation)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        return self.parse(body, lowered.get(SIGNATURE_HEADER.lower()))


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _parse_header(header: str | None) -> tuple[int, list[str]]:
    if not header:
        raise WebhookVerificationError("missing_signature", f"no {SIGNATURE_HEADER} header")
    if len(header) > MAX_HEADER_CHARS:
        raise WebhookVerificationError("malformed_signature", "signature header too long")
    stamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookVerificationError("malformed_signature", f"part {part.strip()!r} is not key=value")
        if key == "t":
            stamps.append(value.strip())
        elif key == "v1":
            signatures.append(value.strip())
        # Other schemes (a future v2=) are ignored, so a receiver keeps working while the service adds one.
    if len(stamps) != 1 or not stamps[0].isdigit():
        raise WebhookVerificationError("malformed_signature", "expected exactly one integer t=")
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise WebhookVerificationError("malformed_signature", f"expected 1 to {MAX_SIGNATURES} v1= signatures")
    return int(stamps[0]), signatures
