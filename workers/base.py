"""Owns the options every moderation task shares and the one place that turns a task's crash into item state.

Tasks stay thin: they pick their runtime, call a pipeline, and wrap the call in `marks_failure`, so a timeout
or a bug ends the items `failed` with a stable code instead of leaving them `processing` forever, while Redis
outages are re-raised for Celery's capped, jittered retry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.core.config import Settings

# Only these are worth retrying: the store or broker was briefly away. Anything else is a bug or bad input.
TRANSIENT: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)


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


@contextmanager
def marks_failure(mark: Callable[[str, str], None], limit_s: float, what: str = "scoring") -> Iterator[None]:
    """Record a timeout or crash through `mark(code, message)`; transient store errors go to Celery's retry."""
    try:
        yield
    except SoftTimeLimitExceeded:
        mark("timeout", f"{what} exceeded {limit_s:g}s")
    except TRANSIENT:
        raise
    except Exception as exc:
        # A bug or bad input must not leave items `processing` forever: record it, then re-raise for logs.
        mark("internal_error", f"{type(exc).__name__}: {exc}")
        raise
