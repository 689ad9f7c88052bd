"""Owns the text classification task (thin: the flow lives in workers.text_pipeline)."""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.queue import TEXT_TASK
from workers import text_pipeline
from workers.app import app, settings


@app.task(
    name=TEXT_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(RedisConnectionError, RedisTimeoutError),
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=settings.task_max_retries,
)
def classify_text(item_ids: list[str]) -> None:
    """Moderate a chunk of text items; idempotent (final items are skipped, verdicts are cached)."""
    try:
        text_pipeline.run(item_ids)
    except SoftTimeLimitExceeded:
        text_pipeline.fail(item_ids, "timeout", f"scoring exceeded {settings.task_soft_time_limit_s}s")
    except (RedisConnectionError, RedisTimeoutError):
        raise
    except Exception as exc:
        # A bug or bad input must not leave items `processing` forever: record it, then re-raise for logs.
        text_pipeline.fail(item_ids, "internal_error", f"{type(exc).__name__}: {exc}")
        raise
