"""Owns group commit for text tasks: concurrent submissions share one broker publish.

Every accepted text needs its task published before the 202 (nothing is lost if the gateway dies after
answering). Publishing one task per request costs one broker round trip each, and under load those round trips
are most of a submission's cost. Here a request hands its ids to the publisher and waits: while one publish is
in flight, later requests queue up, and the next publish carries all of them (TaskQueue.enqueue_text still
splits by count and characters). An idle gateway publishes at once, so a lone request pays no extra latency.

A failed publish fails every request of that batch with the same exception; each request then handles it as
before (its items are marked failed and it answers 503 `queue_unavailable`).

With a `broker` client (MOD_GATEWAY_DIRECT_PUBLISH, the default) a publish is one LPUSH of every chunk's entry on
that asyncio client, as Celery's producer would have written them (service/core/wire.py): no thread-pool hop and
none of kombu's per-publish cost on the event loop's process. Without one, kombu's producer runs in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis
import redis.asyncio as aioredis
from kombu.exceptions import OperationalError
from starlette.concurrency import run_in_threadpool

from service.core.queue import TEXT_TASK, TaskQueue
from service.core.wire import TaskWire


class TextPublisher:
    def __init__(self, queue: TaskQueue, broker: aioredis.Redis | None = None) -> None:
        self.queue = queue
        self.broker = broker
        self.wire = TaskWire(queue.app, "text")
        self._waiting: list[tuple[list[str], list[int], asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def publish(self, ids: Sequence[str], sizes: Sequence[int]) -> None:
        """Return once a broker publish that includes these ids has succeeded; raise what it raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(ids), list(sizes), future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            ids = [i for b in batch for i in b[0]]
            sizes = [n for b in batch for n in b[1]]
            try:
                await self._send(ids, sizes)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request, which reports it
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for *_, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def _send(self, ids: list[str], sizes: list[int]) -> None:
        if self.broker is None:
            await run_in_threadpool(self.queue.enqueue_text, ids, sizes)
            return
        entries = [self.wire.entry(TEXT_TASK, [chunk]) for chunk in self.queue.text_chunks(ids, sizes)]
        try:
            await self.broker.lpush(self.wire.key, *entries)
        except redis.RedisError as exc:
            # The same exception kombu's producer raises for an unreachable broker: the caller answers 503.
            raise OperationalError(f"broker unreachable: {exc}") from exc
