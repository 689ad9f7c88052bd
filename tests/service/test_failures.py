"""Failure behaviour: killed workers, unreachable or restarted Redis, a model that does not load."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.gateway.app import create_app
from service.store.items import ItemStore
from tests.conftest import stack_values
from tests.support.redis_server import RedisServer, free_port
from tests.support.workers import FAST_REDELIVERY, WorkerProcess, poll, settings_env

PLATFORM = {"Authorization": "Bearer test-platform-key"}
@contextmanager
def gateway(url: str, values: dict[str, object]) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(redis_url=url, **values))) as client:  # type: ignore[arg-type]
        yield client


def status_of(api: TestClient, item_id: str) -> str:
    return str(api.get(f"/v1/moderations/{item_id}", headers=PLATFORM).json()["status"])


def test_worker_sigkill_mid_task_loses_nothing(redis_server: RedisServer, tiny_model: Path, tmp_path: Path) -> None:
    url = redis_server.url(3)
    redis.Redis.from_url(url).flushdb()
    values = stack_values(tiny_model, fault_pause_marker="@@pause@@", fault_pause_s=5, **FAST_REDELIVERY)
    first = WorkerProcess(url, settings_env(values), log_path=tmp_path / "w1.log").start()
    second = None
    try:
        with gateway(url, values) as api:
            item_id = api.post("/v1/moderations", json={"text": "slow @@pause@@ item"}, headers=PLATFORM).json()["id"]
            poll(lambda: status_of(api, item_id) == "processing", 30)
            first.kill()
            assert status_of(api, item_id) == "processing"
            second = WorkerProcess(url, settings_env(values), log_path=tmp_path / "w2.log").start()
            poll(lambda: status_of(api, item_id) == "done", 60)
            history = ItemStore(redis.Redis.from_url(url, decode_responses=True)).history(item_id)
            events = [e["event"] for e in history]
            # Delivered twice (once per worker), verdict written exactly once.
            assert events.count("processing") == 2 and events.count("verdict") == 1, events
    finally:
        first.kill()
        if second:
            second.stop()


def test_redis_unreachable_gives_503(tiny_model: Path) -> None:
    values = stack_values(tiny_model, redis_socket_timeout_s=1.0)
    with gateway(f"redis://127.0.0.1:{free_port()}/0", values) as api:
        resp = api.post("/v1/moderations", json={"text": "hello"}, headers=PLATFORM)
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "store_unavailable"
        assert resp.headers["retry-after"] == "5"
        assert api.get("/v1/moderations/x", headers=PLATFORM).status_code == 503
        ready = api.get("/readyz")
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "not_ready"
        assert api.get("/healthz").status_code == 200


def test_redis_restart_keeps_items_and_service_recovers(tiny_model: Path, tmp_path: Path) -> None:
    server = RedisServer(workdir=tmp_path / "redis")
    server.start()
    url = server.url(0)
    values = stack_values(tiny_model)
    worker = WorkerProcess(url, settings_env(values), log_path=tmp_path / "w.log").start()
    try:
        with gateway(url, values) as api:
            before = api.post("/v1/moderations?wait=10", json={"text": "before restart"}, headers=PLATFORM).json()
            assert before["status"] == "done"
            server.restart()
            # Connections were cut; the next requests reconnect (AOF kept the data).
            after = poll(lambda: (lambda r: r if r.status_code == 200 else None)(
                api.post("/v1/moderations?wait=10", json={"text": "after restart"}, headers=PLATFORM)), 60).json()
            assert after["status"] == "done", after
            assert api.get(f"/v1/moderations/{before['id']}", headers=PLATFORM).json()["decision"] == before["decision"]
    finally:
        worker.stop()
        server.stop()


@pytest.mark.parametrize("broken", ["missing", "corrupt"])
def test_model_load_failure_fails_items_and_readyz(redis_server: RedisServer, tiny_model: Path, tmp_path: Path,
                                                   broken: str) -> None:
    url = redis_server.url(4)
    redis.Redis.from_url(url).flushdb()
    bad = tmp_path / "bad-model"
    if broken == "corrupt":
        bad.mkdir()
        (bad / "config.json").write_text("{ not json")
    values = stack_values(tiny_model, text_model_path=str(bad))
    worker = WorkerProcess(url, settings_env(values), log_path=tmp_path / "w.log").start()
    try:
        beat = worker.wait_heartbeat()
        assert not beat["models"]["text"]["ok"] and str(bad) in beat["models"]["text"]["error"]  # type: ignore[index]
        assert "TEXT MODEL FAILED TO LOAD" in worker.log_text() and str(bad) in worker.log_text()
        with gateway(url, values) as api:
            ready = api.get("/readyz")
            assert ready.status_code == 503 and "model" in ready.json()["error"]["message"]
            item = api.post("/v1/moderations?wait=10", json={"text": "x"}, headers=PLATFORM).json()
            assert item["status"] == "failed"
            assert item["error"]["code"] == "model_unavailable" and str(bad) in item["error"]["message"]
    finally:
        worker.stop()


@pytest.mark.parametrize("queues", ["text,webhooks", "media", "rescan"])
def test_pool_child_sigkill_heals_in_place(redis_server: RedisServer, tiny_model: Path, tmp_path: Path,
                                           queues: str) -> None:
    """What production loses: the prefork *child* (OOM kill), not the worker. The same worker must start a new
    child, even one slower to load its models than Celery's 4 s default, and (text) finish the queued work."""
    url = redis_server.url(6)
    redis.Redis.from_url(url).flushdb()
    values = stack_values(tiny_model, fault_pause_marker="@@pause@@", fault_pause_s=3, fault_model_load_delay_s=6,
                          **FAST_REDELIVERY)
    worker = WorkerProcess(url, settings_env(values), queues=queues, log_path=tmp_path / "w.log").start()
    try:
        child = int(worker.wait_heartbeat()["pid"])  # type: ignore[call-overload]
        with gateway(url, values) as api:
            ids = []
            if queues.startswith("text"):
                ids = [api.post("/v1/moderations", json={"text": f"item {i} @@pause@@"}, headers=PLATFORM).json()["id"]
                       for i in range(3)]
                poll(lambda: status_of(api, ids[0]) == "processing", 30)
            os.kill(child, signal.SIGKILL)
            # A new child of the same worker reports in with its models loaded; the old one stays gone.
            beat = poll(lambda: next((b for b in worker.heartbeats() if int(b["pid"]) != child  # type: ignore[call-overload]
                                      and all(m["ok"] for m in b["models"].values())), None), 90)  # type: ignore[union-attr]
            assert worker.proc is not None and worker.proc.poll() is None, "the worker itself must survive"
            for item_id in ids:
                poll(lambda item_id=item_id: status_of(api, item_id) == "done", 90)
            assert beat["models"], beat
    finally:
        worker.stop()
