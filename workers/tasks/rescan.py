"""Owns the rescan tasks (plan a job, re-evaluate a chunk); they run on their own `rescan` queue."""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.queue import RESCAN_PLAN_TASK, RESCAN_TASK
from workers import rescan_pipeline
from workers.app import app, settings

# Chunks may hold videos and the planner pages the whole store: both get the media limits.
_RETRY = {"soft_time_limit": settings.media_task_soft_time_limit_s, "time_limit": settings.media_task_time_limit_s,
          "autoretry_for": (RedisConnectionError, RedisTimeoutError), "retry_backoff": True,
          "retry_backoff_max": 60, "retry_jitter": True, "max_retries": settings.task_max_retries}


@app.task(name=RESCAN_PLAN_TASK, acks_late=True, reject_on_worker_lost=True, **_RETRY)
def plan_rescan(job_id: str) -> None:
    """Select the job's items and fan out chunk tasks."""
    try:
        rescan_pipeline.plan(job_id)
    except SoftTimeLimitExceeded:
        rescan_pipeline.fail_planning(job_id, "planning exceeded the time limit")


@app.task(name=RESCAN_TASK, acks_late=True, reject_on_worker_lost=True, **_RETRY)
def rescan_chunk(job_id: str, item_ids: list[str]) -> None:
    """Re-evaluate up to MOD_RESCAN_CHUNK_SIZE items with the current model and policy."""
    try:
        rescan_pipeline.run_chunk(job_id, item_ids)
    except SoftTimeLimitExceeded:
        rescan_pipeline.fail_uncounted(job_id, item_ids, f"chunk exceeded {settings.task_soft_time_limit_s}s")
    except (RedisConnectionError, RedisTimeoutError):
        raise
    except Exception as exc:
        rescan_pipeline.fail_uncounted(job_id, item_ids, f"{type(exc).__name__}: {exc}")
        raise
