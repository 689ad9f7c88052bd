"""A `?wait=` long-poll never turns a store fault into a false error: once the item exists the answer is 200 or 202."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import redis
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.gateway.app import create_app
from tests.conftest import stack_values
from tests.support.redis_server import RedisServer
from tests.support.workers import WorkerProcess, poll, settings_env

PLATFORM = {"Authorization": "Bearer test-platform-key"}


@contextmanager
def gateway(url: str, values: dict[str, object]) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(redis_url=url, **values))) as client:  # type: ignore[arg-type]
        yield client


def _assert_not_a_false_error(api: TestClient, resp, text: str) -> str:  # type: ignore[no-untyped-def]
    """200 with the verdict, or 202 pointing at the item; the item was created and completes either way."""
    assert resp.status_code in (200, 202), f"{text!r}: {resp.status_code} {resp.text}"
    body = resp.json()
    item_id = body["id"]
    assert body["status_url"] == f"/v1/moderations/{item_id}" == resp.headers["location"]
    final = poll(lambda: (lambda r: r.json() if r.status_code == 200 and r.json()["status"] == "done" else None)(
        api.get(f"/v1/moderations/{item_id}", headers=PLATFORM)), 60)
    if resp.status_code == 200:
        assert body == final  # the ?wait body is the public GET shape, nothing more
    return str(item_id)


def test_wait_answers_200_or_202_across_a_redis_restart(tiny_model: Path, tmp_path: Path) -> None:
    server = RedisServer(workdir=tmp_path / "redis")
    server.start()
    url = server.url(0)
    values = stack_values(tiny_model, fault_pause_marker="@@pause@@", fault_pause_s=2)
    worker = WorkerProcess(url, settings_env(values), log_path=tmp_path / "w.log").start()
    direct = redis.Redis.from_url(url, decode_responses=True)
    try:
        with gateway(url, values) as api:
            # Warm both pools (sync for the create, async for the long-poll): the restart leaves them stale.
            warm = api.post("/v1/moderations?wait=10", json={"text": "warm up"}, headers=PLATFORM)
            assert warm.status_code == 200 and warm.json()["status"] == "done", warm.text

            # The reported case: the first ?wait= after Redis came back.
            server.restart()
            _assert_not_a_false_error(
                api, api.post("/v1/moderations?wait=10", json={"text": "after restart"}, headers=PLATFORM),
                "after restart")

            # Redis goes away while the request is already waiting on a created item.
            with ThreadPoolExecutor(1) as pool:
                pending = pool.submit(api.post, "/v1/moderations?wait=10",
                                      json={"text": "slow @@pause@@", "external_id": "mid-wait"}, headers=PLATFORM)
                item_id = poll(lambda: next(iter(direct.zrange("mod:idx:ext:demo:mid-wait", 0, 0)), None), 30)
                poll(lambda: direct.hget(f"mod:item:{item_id}", "status") == "processing", 30)
                started = time.monotonic()
                server.restart()
                direct = redis.Redis.from_url(url, decode_responses=True)
                resp = pending.result(timeout=60)
            assert time.monotonic() - started < 15, "the wait must stay bounded by ?wait"
            assert _assert_not_a_false_error(api, resp, "mid-wait") == item_id
    finally:
        worker.stop()
        server.stop()
