"""Text tasks pushed without kombu's producer (service/core/wire.py): the same Redis entry Celery would write, and
the same 503 when the broker is down. The real text worker consuming these entries is every other text test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.core.queue import TEXT_TASK, TaskQueue
from service.core.wire import TaskWire
from service.gateway.app import create_app
from service.store import keys
from tests.conftest import stack_values
from tests.support.redis_server import RedisServer, free_port


def test_entry_is_what_celery_pushes(redis_server: RedisServer) -> None:
    url = redis_server.url(11)
    r = redis.Redis.from_url(url)
    r.flushdb()
    queue = TaskQueue(Settings(redis_url=url))
    try:
        args = [["id-1", "id-2"]]
        queue.app.send_task(TEXT_TASK, args=args, task_id="wire-task")
        assert r.llen("text") == 1, "priority 0 lands on the queue's own list"
        theirs = json.loads(r.rpop("text") or b"{}")
        ours = json.loads(TaskWire(queue.app, "text").entry(TEXT_TASK, args, task_id="wire-task"))
    finally:
        queue.close()
    # The delivery tag is a fresh uuid per message on both sides; everything else must match exactly.
    assert theirs["properties"].pop("delivery_tag") != ours["properties"].pop("delivery_tag")
    assert ours == theirs
    assert ours["headers"]["task"] == TEXT_TASK and ours["headers"]["id"] == "wire-task"


@pytest.mark.parametrize("direct", [True, False])
def test_broker_down_is_503_and_the_item_is_marked_failed(redis_server: RedisServer, tiny_model: Path,
                                                           direct: bool) -> None:
    """The store answers but the broker does not: nothing is queued, the item says so, the client gets 503
    `queue_unavailable` (with kombu's producer and with the direct push alike)."""
    url = redis_server.url(12)
    redis.Redis.from_url(url).flushdb()
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    values = stack_values(tiny_model, broker_url=dead, gateway_direct_publish=direct)
    settings = Settings(redis_url=url, **values)  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as client:
        resp = client.post("/v1/moderations", json={"text": "hello there"},
                           headers={"Authorization": "Bearer test-platform-key"})
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "queue_unavailable", resp.text
    r = redis.Redis.from_url(url, decode_responses=True)
    failed = [k for k in r.scan_iter(keys.item("*")) if r.type(k) == "hash"
              and r.hget(k, "error_code") == "queue_unavailable"]
    assert len(failed) == 1 and r.hget(failed[0], "status") == "failed"
