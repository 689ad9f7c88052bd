"""Owns when and how long to wait before a retry: which failures are safe to repeat, backoff, `Retry-After`.

Pure logic (no I/O), shared by the sync and the async client so both retry exactly alike.

What is safe to repeat (docs/client.md):
- a request that never reached the server (connect refused/timed out, no pooled connection): always;
- 429 `rate_limited` and 503 `queue_full`: always, the server says nothing was done;
- a lost answer (read timeout, connection dropped mid-response) and 502/503/504: only for *idempotent* calls,
  i.e. reads and submissions, which carry an `Idempotency-Key` the server deduplicates on;
- anything else (500, other 4xx): never; the same request would get the same answer or do work twice.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

# Failures where the request provably did not reach the application: repeating it cannot duplicate work.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Retried only on idempotent calls: the server may have acted before the answer was lost.
MAYBE_PROCESSED = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError,
                   httpx.RemoteProtocolError)
# Codes with which the service promises nothing was created, so even a non-idempotent call may repeat.
NOTHING_DONE_CODES = frozenset({"rate_limited", "queue_full"})


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP-date (RFC 9110 10.2.3); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - now())
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a call gets and how long to wait between them.

    `max_attempts` counts the first try (1 = no retries). Without `Retry-After` the n-th retry waits
    `min(backoff_max_s, backoff_base_s * 2**(n-1))` with "equal jitter" (between half and all of it), so a burst of
    clients that failed together does not come back together. A `Retry-After` is honoured as sent; when it is
    longer than `max_retry_after_s` the call fails at once with the error (its `retry_after` set) instead of
    blocking the caller for that long.
    """

    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, retry_number: int) -> float:
        """The jittered delay before retry number `retry_number` (1 = the first retry)."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (retry_number - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def delay_after_error(self, attempt: int, exc: httpx.TransportError, *, idempotent: bool) -> float | None:
        """Seconds to wait before repeating after a transport failure on attempt `attempt`, or None: give up."""
        if attempt >= self.max_attempts:
            return None
        if isinstance(exc, NOT_SENT) or (idempotent and isinstance(exc, MAYBE_PROCESSED)):
            return self.backoff(attempt)
        return None

    def delay_after_status(self, attempt: int, status: int, code: str | None, retry_after: float | None, *,
                           idempotent: bool) -> float | None:
        """Seconds to wait before repeating after an error answer on attempt `attempt`, or None: give up."""
        if attempt >= self.max_attempts:
            return None
        safe = status == 429 or (status == 503 and code in NOTHING_DONE_CODES)
        if not (safe or (idempotent and status in (502, 503, 504))):
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after_s else None
        return self.backoff(attempt)


NO_RETRIES = RetryPolicy(max_attempts=1)
