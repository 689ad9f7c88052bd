"""Graceful shutdown: a SIGTERMed worker finishes (or hands back) its in-flight task and leaves the rest queued; a
SIGTERMed gateway stops taking connections but lets the requests in flight complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.gateway.app import create_app
from service.store.items import ItemStore
from tests.conftest import stack_values
from tests.support.redis_server import RedisServer, free_port
from tests.support.workers import ROOT, WorkerProcess, poll, settings_env

PLATFORM = {"Authorization": "Bearer test-platform-key"}
MARKER = "@@inflight@@"


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[RedisServer]:
    srv = RedisServer(workdir=tmp_path / "redis")
    srv.start()
    yield srv
    srv.stop()


def events(url: str, item_id: str) -> list[dict]:
    return ItemStore(redis.Redis.from_url(url, decode_responses=True)).history(item_id)


def status_of(api: TestClient, item_id: str) -> str:
    return str(api.get(f"/v1/moderations/{item_id}", headers=PLATFORM).json()["status"])


def exited(worker: WorkerProcess) -> int | None:
    assert worker.proc is not None
    return worker.proc.poll()


@pytest.mark.parametrize("target", ["main", "group"])
def test_sigterm_worker_mid_task_every_item_completes_once(server: RedisServer, tiny_model: Path, tmp_path: Path,
                                                           target: str) -> None:
    """`main`: SIGTERM to the worker's main process (docker stop, Kubernetes): it stops consuming, finishes the
    task in flight and exits 0. `group`: SIGTERM to every process of the worker (systemd's control-group kill):
    the pool child ends at once and the task is handed back to the queue. Either way a new worker finishes the
    rest, and every item gets exactly one verdict."""
    url = server.url(0)
    values = stack_values(tiny_model, fault_pause_marker=MARKER, fault_pause_s=4)
    first = WorkerProcess(url, settings_env(values), log_path=tmp_path / "w1.log").start()
    second = None
    try:
        with TestClient(create_app(Settings(redis_url=url, **values))) as api:  # type: ignore[arg-type]
            slow = api.post("/v1/moderations", json={"text": f"in flight {MARKER}"}, headers=PLATFORM).json()["id"]
            poll(lambda: status_of(api, slow) == "processing", 60)
            queued = [api.post("/v1/moderations", json={"text": f"queued {i}"}, headers=PLATFORM).json()["id"]
                      for i in range(5)]
            assert first.proc is not None
            if target == "main":
                os.kill(first.proc.pid, signal.SIGTERM)
            else:
                os.killpg(first.proc.pid, signal.SIGTERM)
            code = poll(lambda: exited(first) is not None, 60) and exited(first)
            assert code == 0, first.log_text()
            if target == "main":  # the in-flight task was finished before the worker left
                assert status_of(api, slow) == "done", first.log_text()
            # Nothing was lost, started twice, or failed by the shutdown itself.
            for item_id in [slow, *queued]:
                assert status_of(api, item_id) in ("done", "queued", "processing")
            second = WorkerProcess(url, settings_env(values), log_path=tmp_path / "w2.log").start()
            for item_id in [slow, *queued]:
                poll(lambda item_id=item_id: status_of(api, item_id) == "done", 90)
            for item_id in [slow, *queued]:
                names = [e["event"] for e in events(url, item_id)]
                assert names.count("verdict") == 1, (item_id, names)
            # The queued items were left for the new worker, not taken by the leaving one.
            for item_id in queued:
                workers = {e["data"].get("worker") for e in events(url, item_id) if e["event"] == "processing"}
                assert workers and all(w and w.startswith(second.name) for w in workers), workers
    finally:
        first.kill()
        if second:
            second.stop()


def test_sigterm_gateway_drains_requests_in_flight(server: RedisServer, tiny_model: Path, tmp_path: Path) -> None:
    """uvicorn on SIGTERM: the listening socket closes (new connections are refused) while a `?wait=` request
    already in flight still gets its verdict; then the app shuts down cleanly."""
    url = server.url(0)
    values = stack_values(tiny_model, fault_pause_marker=MARKER, fault_pause_s=3)
    env = {**os.environ, **settings_env(values), "MOD_REDIS_URL": url}
    worker = WorkerProcess(url, settings_env(values), log_path=tmp_path / "w.log").start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "gateway.log", "wb")  # noqa: SIM115
    gateway = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "service.gateway.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--timeout-graceful-shutdown", "30"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        poll(lambda: _up(base), 60, 0.2)
        direct = redis.Redis.from_url(url, decode_responses=True)
        with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=base, timeout=60) as client:
            pending = pool.submit(client.post, "/v1/moderations?wait=10", headers=PLATFORM,
                                  json={"text": f"drain me {MARKER}", "external_id": "drain"})
            item_id = poll(lambda: next(iter(direct.zrange("mod:idx:ext:demo:drain", 0, 0)), None), 30)
            poll(lambda: direct.hget(f"mod:item:{item_id}", "status") == "processing", 30)
            gateway.send_signal(signal.SIGTERM)
            poll(lambda: not _up(base), 30, 0.05)  # refused: the server no longer accepts connections
            resp = pending.result(timeout=60)
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == item_id and resp.json()["status"] == "done"
        # uvicorn ends a clean SIGTERM shutdown by re-raising the signal (exit status -15), as a process should.
        assert gateway.wait(timeout=60) in (0, -signal.SIGTERM), (tmp_path / "gateway.log").read_text()
        assert "Application shutdown complete" in (tmp_path / "gateway.log").read_text()
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait()
        log.close()
        worker.stop()


def _up(base: str) -> bool:
    """True while the gateway accepts a new connection (a fresh client: no pooled keep-alive connection)."""
    try:
        return httpx.get(base + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
