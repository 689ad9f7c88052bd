"""Owns the companion's periodic jobs: a Celery app of its own (queue `companion`) whose beat schedule refits the
recommenders every `recs_refit_interval_s`.

    celery -A companion.tasks worker -Q companion -B -c 1          # one process: worker + embedded beat
    celery -A companion.tasks beat  +  celery -A companion.tasks worker -Q companion   # or apart

Kept apart from the moderation workers (workers/) on purpose: only this worker imports and fits the recommenders
and reads the data set. A refit fits from every rating/event/item in Redis, saves a new versioned artifact, and
publishes its version in Redis under the refit lock (one refit at a time across workers and companion processes,
a second one is skipped); each companion process swaps to the published version on its next request and every
answer reports `model_version`.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Celery

from service.core.config import Settings
from service.core.queue import make_celery

REFIT_TASK = "mod.companion.recs_refit"
QUEUE = "companion"

log = logging.getLogger(__name__)


def make_app(settings: Settings) -> Celery:
    app = make_celery(settings, name="companion")
    interval = settings.companion.recs_refit_interval_s
    app.conf.update(
        task_default_queue=QUEUE,
        task_routes={"mod.companion.*": {"queue": QUEUE}},
        # A refit must not be cut by the moderation tasks' short limits, and must end before redelivery.
        task_soft_time_limit=None,
        task_time_limit=None,
        beat_schedule=({"recs-refit": {"task": REFIT_TASK, "schedule": float(interval),
                                       "options": {"queue": QUEUE, "expires": float(interval)}}}
                       if interval > 0 else {}),
    )
    visibility = int(app.conf.broker_transport_options.get("visibility_timeout", 3600))

    @app.task(name=REFIT_TASK, acks_late=True, time_limit=max(60, visibility - 10), ignore_result=True)
    def recs_refit(tune: bool | None = None) -> dict[str, Any]:
        return refit(settings, tune)

    return app


def refit(settings: Settings, tune: bool | None = None) -> dict[str, Any]:
    """One refit from Redis (what the beat task runs): loads the published model as the base (its catalogue and
    metadata), fits, saves and publishes. Skipped, not queued, when another process holds the refit lock."""
    from companion.recs_runtime import RecsRuntime  # heavy (numpy/scipy/implicit): only in the worker process

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=settings.redis_socket_timeout_s)
    try:
        rt = RecsRuntime.start(settings, client)
        before = rt.engine.version
        version = rt.refit(only_if_free=True)
    finally:
        client.close()
    if version is None:
        log.info("recommender refit skipped: another process holds the refit lock")
        return {"refitted": False, "model_version": before}
    log.info("recommender refit: %s -> %s", before, version)
    return {"refitted": True, "model_version": version, "previous": before}


app = make_app(Settings())
