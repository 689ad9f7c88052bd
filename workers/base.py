"""Owns the options every moderation task shares and the one place that turns a task's crash into item state.

Tasks stay thin: they pick their runtime, call a pipeline, and wrap the call in `marks_failure`, so a timeout
or a bug ends the items `failed` with a stable code instead of leaving them `processing` forever, while Redis
outages are re-raised for Celery's capped, jittered retry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError as RedisReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.core.config import Settings

# Only these are worth retrying: the store or broker was briefly away. Anything else is a bug or bad input.
# ReadOnlyError: a primary demoted by a Sentinel failover, until the pool re-resolves the new one.
TRANSIENT: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, RedisReadOnlyError)


def task_options(settings: Settings, *, long: bool = False) -> dict[str, Any]:
    """acks_late + reject_on_worker_lost: a task whose worker dies is redelivered, never dropped. `long` tasks
    (media, rescans) get the media time limits; the visibility timeout stays above both."""
    opts: dict[str, Any] = {
        "acks_late": True, "reject_on_worker_lost": True, "autoretry_for": TRANSIENT, "retry_backoff": True,
        "retry_backoff_max": 60, "retry_jitter": True, "max_retries": settings.task_max_retries,
    }
    if long:
        opts.update(soft_time_limit=settings.media_task_soft_time_limit_s,
                    time_limit=settings.media_task_time_limit_s)
    return opts


@dataclass(frozen=True)
class TimeLimits:
    """The soft and hard time limits one delivery of a task runs under (seconds)."""

    soft: float
    hard: float


def broker_visibility_s(settings: Settings) -> float:
    """The broker's visibility timeout, as service.core.queue.make_celery sets it (a test keeps them equal)."""
    return float(max(settings.visibility_timeout_s, settings.task_time_limit_s + 10,
                     settings.media_task_time_limit_s + 10))


def text_time_limits(settings: Settings, chars: int, at_least_soft: float = 0.0) -> TimeLimits:
    """Limits for a text task that scores `chars` characters: the configured limits for short work, growing with
    length (scoring time is linear in the number of windows, and so in characters) so that valid input is never
    failed for being long. Capped so the hard limit stays 10 s under the visibility timeout: a task still running
    past it would be delivered a second time."""
    grace = max(0, settings.task_time_limit_s - settings.task_soft_time_limit_s)
    cap = min(float(settings.text_task_max_soft_time_limit_s), broker_visibility_s(settings) - 10 - grace)
    soft = max(float(settings.task_soft_time_limit_s), chars / 1000 * settings.text_task_s_per_kchar, at_least_soft)
    soft = max(float(settings.task_soft_time_limit_s), min(soft, cap))
    return TimeLimits(soft, soft + grace)


def chars_within(settings: Settings, limits: TimeLimits) -> int:
    """How many characters a text task may score under `limits` (the inverse of text_time_limits)."""
    return int(limits.soft * 1000 / settings.text_task_s_per_kchar)


def request_limits(request: Any, settings: Settings) -> TimeLimits:
    """The limits this delivery really runs under: the message's own (`timelimit` header: hard, soft), else the
    configured defaults that Celery applied."""
    hard, soft = (getattr(request, "timelimit", None) or (None, None))[:2]
    return TimeLimits(float(soft or settings.task_soft_time_limit_s), float(hard or settings.task_time_limit_s))


@contextmanager
def marks_failure(mark: Callable[[str, str], None], limit_s: float, what: str = "scoring",
                  on_timeout: Callable[[], bool] | None = None) -> Iterator[None]:
    """Record a timeout or crash through `mark(code, message)`; transient store errors go to Celery's retry.

    `on_timeout` may hand a timed-out task on instead (e.g. send it again with more time): when it returns True
    the items are left live for that new delivery, not failed."""
    try:
        yield
    except SoftTimeLimitExceeded:
        if on_timeout is not None and on_timeout():
            return
        mark("timeout", f"{what} exceeded {limit_s:g}s")
    except TRANSIENT:
        raise
    except Exception as exc:
        # A bug or bad input must not leave items `processing` forever: record it, then re-raise for logs.
        mark("internal_error", f"{type(exc).__name__}: {exc}")
        raise
