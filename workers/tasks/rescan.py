"""Owns the rescan tasks (plan a job, re-evaluate a chunk); they run on their own `rescan` queue."""

from __future__ import annotations

from service.core.queue import RESCAN_PLAN_TASK, RESCAN_TASK
from workers import runtime
from workers.app import app, settings
from workers.base import marks_failure, task_options
from workers.pipelines import rescan as rescan_pipeline

# Chunks may hold videos and the planner pages the whole store: both get the media limits.
_LIMIT_S = settings.media_task_soft_time_limit_s


@app.task(name=RESCAN_PLAN_TASK, **task_options(settings, long=True))
def plan_rescan(job_id: str) -> None:
    """Select the job's items and fan out chunk tasks."""
    rt = runtime.get_runtime()
    with marks_failure(lambda _code, msg: rescan_pipeline.fail_planning(rt, job_id, msg), _LIMIT_S, "planning"):
        rescan_pipeline.plan(rt, job_id)


@app.task(name=RESCAN_TASK, **task_options(settings, long=True))
def rescan_chunk(job_id: str, item_ids: list[str]) -> None:
    """Re-evaluate a chunk (up to MOD_RESCAN_CHUNK_SIZE texts or MOD_RESCAN_MEDIA_CHUNK_SIZE media items) with the
    current model and policy."""
    rt = runtime.get_runtime()
    with marks_failure(lambda _code, msg: rescan_pipeline.fail_uncounted(rt, job_id, item_ids, msg), _LIMIT_S,
                       "chunk"):
        rescan_pipeline.run_chunk(rt, job_id, item_ids)
