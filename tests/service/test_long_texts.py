"""Long texts at the documented maximum never fail because they are long or because the machine is busy.

A text task's time limits grow with the characters it scores (workers/base.py text_time_limits) and a task that
still runs out of time is sent again with twice the time up to a cap, so valid input ends `done`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.core.queue import make_celery
from service.gateway.app import create_app
from service.store.items import ItemStore
from tests.conftest import Stack, new_key, stack_values
from tests.support.redis_server import RedisServer
from tests.support.workers import FAST_REDELIVERY, WorkerProcess, poll, settings_env
from workers.base import TimeLimits, broker_visibility_s, chars_within, text_time_limits

PLATFORM = {"Authorization": "Bearer test-platform-key"}
FINAL = ("done", "failed", "rejected")


def long_text(chars: int, seed: int, marker: str = "") -> str:
    """`chars` characters of varied English sentences (many model windows), exactly at the given length."""
    words = ["the", "film", "score", "was", "loud", "and", "the", "crowd", "cheered", "again", "tonight",
             "while", "critics", "wrote", "long", "reviews", "about", "every", "scene", "in", "it"]
    out, i = [marker] if marker else [], seed
    size = len(marker)
    while size < chars:
        sentence = " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(12)).capitalize() + ". "
        out.append(sentence)
        size += len(sentence)
        i += 1
    return "".join(out)[:chars]


@contextmanager
def cpu_hog(processes: int = 2) -> Iterator[None]:
    """Busy-loop processes on every core: the worker competes for CPU the whole time it scores."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def final(api: TestClient, headers: dict[str, str], item_id: str, deadline_s: float) -> dict:
    return poll(lambda: (lambda it: it if it["status"] in FINAL else None)(
        api.get(f"/v1/moderations/{item_id}", headers=headers).json()), deadline_s, 0.2)


def test_two_maximum_length_texts_complete_under_a_cpu_hog(api: TestClient, stack: Stack) -> None:
    """The reported case: a batch of two texts at MOD_MAX_TEXT_CHARS, scored while both cores are busy, with
    the shipped time limits, through the real worker. Both end `done`, explained window by window."""
    headers, _ = new_key(api)
    limit = stack.settings.max_text_chars
    texts = [long_text(limit, seed) for seed in (1, 2)]
    assert all(len(t) == limit for t in texts)
    with cpu_hog():
        resp = api.post("/v1/moderations/batch", json={"items": [{"text": t} for t in texts]}, headers=headers)
        assert resp.status_code == 202, resp.text
        items = [final(api, headers, it["id"], 600) for it in resp.json()["items"]]
    for item in items:
        assert item["status"] == "done", item
        assert item["explanation"]["windows"] > 1, item["explanation"]


@pytest.fixture(scope="module")
def slow_stack(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[tuple[TestClient, WorkerProcess, str]]:
    """A worker whose base soft limit (2 s) is shorter than a fault pause (3 s) every marked text takes: a
    stand-in for a machine too busy to finish within the short-text budget."""
    tmp_path = tmp_path_factory.mktemp("slow")
    server = RedisServer(workdir=tmp_path / "redis")
    server.start()
    url = server.url(0)
    values = stack_values(tiny_model, task_soft_time_limit_s=2, task_time_limit_s=4, text_task_s_per_kchar=0.1,
                          text_task_max_soft_time_limit_s=30, fault_pause_marker="@@busy@@", fault_pause_s=3)
    worker = WorkerProcess(url, settings_env(values), log_path=tmp_path / "w.log").start()
    try:
        with TestClient(create_app(Settings(redis_url=url, **values))) as client:  # type: ignore[arg-type]
            yield client, worker, url
    finally:
        worker.stop()
        server.stop()


def processing_count(url: str, item_id: str) -> int:
    history = ItemStore(redis.Redis.from_url(url, decode_responses=True)).history(item_id)
    return [e["event"] for e in history].count("processing")


def test_limits_grow_with_length_before_scoring(slow_stack: tuple[TestClient, WorkerProcess, str]) -> None:
    """100k chars at 0.1 s/kchar need a 10 s soft limit: the task is re-sent with it before anything is
    scored, so the one scoring run has the time (a 2 s limit would have failed it: see the next test)."""
    api, worker, url = slow_stack
    resp = api.post("/v1/moderations", json={"text": long_text(100_000, 3, marker="@@busy@@ ")}, headers=PLATFORM)
    assert resp.status_code == 202, resp.text
    item = final(api, PLATFORM, resp.json()["id"], 120)
    assert item["status"] == "done", item
    assert "too long for its limits: re-sent with soft/hard limits 10/12s" in worker.log_text()


def test_a_timed_out_task_is_resent_with_more_time(slow_stack: tuple[TestClient, WorkerProcess, str]) -> None:
    """A short text on a 'busy machine' (3 s pause > 2 s limit) times out, is re-sent with 4 s, and completes;
    it is never failed `timeout` while the cap allows more time."""
    api, worker, url = slow_stack
    resp = api.post("/v1/moderations", json={"text": "short but slow @@busy@@"}, headers=PLATFORM)
    item_id = resp.json()["id"]
    item = final(api, PLATFORM, item_id, 120)
    assert item["status"] == "done", item
    assert processing_count(url, item_id) >= 2  # at least one timed-out run before the one that finished
    assert "timed out: re-sent with soft/hard limits 4/6s" in worker.log_text()


def test_time_limits_formula() -> None:
    s = Settings(task_soft_time_limit_s=60, task_time_limit_s=90, text_task_s_per_kchar=2.0,
                 text_task_max_soft_time_limit_s=900, visibility_timeout_s=1200)
    assert text_time_limits(s, 0) == TimeLimits(60, 90)  # short work keeps the configured limits
    assert text_time_limits(s, 30_000) == TimeLimits(60, 90)
    assert text_time_limits(s, 100_000) == TimeLimits(200, 230)
    assert text_time_limits(s, 200_000) == TimeLimits(400, 430)
    assert text_time_limits(s, 10_000_000) == TimeLimits(900, 930)  # the cap
    assert text_time_limits(s, 0, at_least_soft=120) == TimeLimits(120, 150)
    assert chars_within(s, TimeLimits(200, 230)) == 100_000
    # The hard limit always stays 10 s under the broker's visibility timeout (else: delivered twice).
    tight = Settings(task_soft_time_limit_s=60, task_time_limit_s=90, visibility_timeout_s=300,
                     media_task_time_limit_s=200, text_task_max_soft_time_limit_s=900)
    assert text_time_limits(tight, 10_000_000).hard == broker_visibility_s(tight) - 10
    fast = Settings(**FAST_REDELIVERY)  # type: ignore[arg-type]
    assert text_time_limits(fast, 10_000_000) == TimeLimits(7, 8)  # never below the configured limits
    # base.broker_visibility_s must agree with what make_celery configures.
    for settings in (s, tight, fast):
        app = make_celery(settings)
        assert app.conf.broker_transport_options["visibility_timeout"] == broker_visibility_s(settings)
