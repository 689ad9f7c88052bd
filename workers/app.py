"""Owns the Celery worker application: configuration, task modules and process lifecycle hooks."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import celeryd_after_setup, worker_process_init, worker_process_shutdown, worker_ready

from service.core.config import get_settings
from service.core.queue import make_celery

log = logging.getLogger("workers")

settings = get_settings()
app = make_celery(settings, name="workers")
app.conf.include = ["workers.tasks.text", "workers.tasks.webhooks", "workers.tasks.rescan", "workers.tasks.media"]
app.conf.update(worker_max_memory_per_child=1_500_000)  # KiB; recycles a child that leaks (e.g. decoders)


@celeryd_after_setup.connect
def _remember_queues(sender: str, instance: Any, **_: Any) -> None:
    # Forked pool children inherit the environment: they learn which queues (and so which models) to load.
    queues = sorted(instance.app.amqp.queues.consume_from or ["text"])
    os.environ["MOD_WORKER_QUEUES"] = ",".join(queues)
    os.environ["MOD_WORKER_HOSTNAME"] = sender


@worker_process_init.connect
def _init_process(**_: Any) -> None:
    from workers import runtime

    runtime.start_process()


@worker_process_shutdown.connect
def _stop_process(**_: Any) -> None:
    from workers import runtime

    runtime.stop_process()


@worker_ready.connect
def _requeue_stale(sender: Any, **_: Any) -> None:
    from workers.recovery import purge_blobs, requeue_stale

    requeue_stale(settings)
    if "media" in os.environ.get("MOD_WORKER_QUEUES", ""):
        purge_blobs(settings)
