"""Task chunking against a real broker: by count and by characters, so long texts stay inside time limits."""

from __future__ import annotations

import base64
import json

import redis

from service.core.config import Settings
from service.core.queue import TEXT_TASK, TaskQueue
from tests.support.redis_server import RedisServer


def sent_chunks(client: redis.Redis) -> list[list[str]]:
    out = []
    for raw in client.lrange("text", 0, -1):
        msg = json.loads(raw)
        assert msg["headers"]["task"] == TEXT_TASK
        args = json.loads(base64.b64decode(msg["body"]))[0]
        out.append(args[0])
    return list(reversed(out))  # kombu LPUSHes; oldest first


def test_text_chunks_by_count_and_characters(redis_server: RedisServer) -> None:
    url = redis_server.url(6)
    client = redis.Redis.from_url(url)
    client.flushdb()
    queue = TaskQueue(Settings(redis_url=url, text_task_chunk=3, text_task_max_chars=200_000))
    try:
        queue.enqueue_text([f"s{i}" for i in range(7)], [10] * 7)
        assert sent_chunks(client) == [["s0", "s1", "s2"], ["s3", "s4", "s5"], ["s6"]]
        client.flushdb()
        queue.enqueue_text(["a", "b", "c", "d"], [90_000, 90_000, 90_000, 250_000])
        # a+b fit 200k; c starts a new task; d alone exceeds the budget but still gets its own task.
        assert sent_chunks(client) == [["a", "b"], ["c"], ["d"]]
    finally:
        queue.close()
        client.flushdb()
