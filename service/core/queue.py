"""Owns Celery configuration, task names and routing; the gateway enqueues by name and never imports workers/."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery

from service.core.config import Settings

TEXT_TASK = "mod.text.classify"
MEDIA_TASK = "mod.media.classify"
HASHFILE_TASK = "mod.media.hashfile"
WEBHOOK_TASK = "mod.webhook.deliver"
RESCAN_TASK = "mod.rescan.chunk"
RESCAN_PLAN_TASK = "mod.rescan.plan"

QUEUES = ("text", "media", "webhooks", "rescan")
ROUTES = {
    "mod.text.*": {"queue": "text"},
    "mod.media.*": {"queue": "media"},
    "mod.webhook.*": {"queue": "webhooks"},
    "mod.rescan.*": {"queue": "rescan"},
}

# Publishing must fail fast when Redis is down: the gateway answers 503 instead of hanging a request.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def sentinel_transport_options(settings: Settings) -> dict[str, Any]:
    """kombu's Sentinel options (the URL itself is Settings.celery_broker_url); empty without Sentinel."""
    if not settings.redis_sentinels:
        return {}
    opts: dict[str, Any] = {"master_name": settings.redis_sentinel_master}
    if settings.redis_sentinel_password is not None:
        opts["sentinel_kwargs"] = {"password": settings.redis_sentinel_password.get_secret_value()}
    return opts


def make_celery(settings: Settings, name: str = "moderation") -> Celery:
    app = Celery(name, broker=settings.celery_broker_url)
    app.conf.update(
        task_routes=ROUTES,
        task_default_queue="text",
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        # Reliability: ack after the task ran, requeue when the worker process dies, one message at a time.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # Must exceed the hard time limit of the longest task, or a slow task is delivered twice.
            "visibility_timeout": max(settings.visibility_timeout_s, settings.task_time_limit_s + 10,
                                      settings.media_task_time_limit_s + 10),
            "unacked_restore_interval": settings.unacked_restore_interval_s,
            "unacked_restore_throttle": settings.unacked_restore_throttle,
            "socket_timeout": settings.redis_socket_timeout_s,
            "socket_connect_timeout": 2.0,
            "queue_order_strategy": "priority",
            **sentinel_transport_options(settings),
        },
        worker_proc_alive_timeout=settings.worker_proc_alive_timeout_s,
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
    )
    return app


def split_text_chunks(item_ids: Sequence[str], sizes: Sequence[int], max_count: int,
                      max_chars: int) -> list[list[str]]:
    """Consecutive ids grouped into chunks of at most `max_count` ids and `max_chars` characters (`sizes`: each
    text's length); a text longer than `max_chars` goes alone. Live text tasks and rescan chunks both use it."""
    chunks: list[list[str]] = []
    chunk: list[str] = []
    chars = 0
    for item_id, size in zip(item_ids, sizes, strict=True):
        if chunk and (len(chunk) >= max_count or chars + size > max_chars):
            chunks.append(chunk)
            chunk, chars = [], 0
        chunk.append(item_id)
        chars += size
    return [*chunks, chunk] if chunk else chunks


class TaskQueue:
    """The gateway's view of the queue: send tasks by name."""

    def __init__(self, settings: Settings) -> None:
        self.app = make_celery(settings, name="gateway")
        self.chunk = settings.text_task_chunk
        self.max_chars = settings.text_task_max_chars

    def send(self, name: str, args: Sequence[Any]) -> None:
        self.app.send_task(name, args=list(args), retry=True, retry_policy=PUBLISH_RETRY)

    def text_chunks(self, item_ids: Sequence[str], sizes: Sequence[int] | None = None) -> list[list[str]]:
        """One text task's ids each: chunked by count and by characters, so one task stays inside its time limit
        and several workers can share a large batch."""
        return split_text_chunks(item_ids, sizes or [0] * len(item_ids), self.chunk, self.max_chars)

    def enqueue_text(self, item_ids: Sequence[str], sizes: Sequence[int] | None = None) -> None:
        for chunk in self.text_chunks(item_ids, sizes):
            self.send(TEXT_TASK, [chunk])

    def close(self) -> None:
        self.app.close()
