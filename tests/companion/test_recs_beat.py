"""The periodic refit as a Celery beat task: a real `celery -A companion.tasks worker -B` process (worker + embedded
beat, real broker) refits from Redis, saves a versioned artifact and publishes it; a running companion app swaps to
it and its answers report the new model version. The refit lock makes a second refit skip."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import redis
from fastapi.testclient import TestClient

from companion import tasks
from companion.app import create_app
from models.recsys import bundle as artifacts
from models.recsys.engine import RecEngine
from service.store import keys
from tests.companion.conftest import FAQ_SRC, make_settings
from tests.support.workers import ROOT, poll

URL = "/v1/recommendations"


def _beat_worker(redis_url: str, artifact_dir: Path, data_dir: Path, workdir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MOD_ENV": "test", "MOD_REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1",
           "HF_HUB_OFFLINE": "1", "MOD_COMPANION__RECS_ARTIFACT_DIR": str(artifact_dir),
           "MOD_COMPANION__RECS_DATA_DIR": str(data_dir), "MOD_COMPANION__FETCH_ON_START": "false",
           "MOD_COMPANION__RECS_REFIT_INTERVAL_S": "2", "MOD_COMPANION__RECS_REFIT_TUNE": "false"}
    log = (workdir / "worker.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "companion.tasks", "worker", "-B", "-Q", tasks.QUEUE, "-c", "1",
         "-s", str(workdir / "beat-schedule"), "--loglevel=INFO", "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_beat_refit_swaps_the_served_model(redis_url: str, engine: RecEngine, encoder: object, data_dir: Path,
                                           tmp_path: Path) -> None:
    art = tmp_path / "artifacts"
    artifacts.save(engine.bundle, art)
    settings = make_settings(redis_url, FAQ_SRC, recs_artifact_dir=art)
    with TestClient(create_app(settings, engine=engine, encoder=encoder)) as c:  # type: ignore[arg-type]
        v0 = c.get(f"{URL}/model").json()["model_version"]
        assert v0 == engine.version
        r = c.post(f"{URL}/users/beat-user/ratings",
                   json={"ratings": [{"item_id": "50", "rating": 5}, {"item_id": "181", "rating": 4}]})
        assert r.status_code == 200, r.text
        assert c.get(f"{URL}/users/beat-user").json()["model_version"] == v0

        proc = _beat_worker(redis_url, art, data_dir, tmp_path)
        try:
            def swapped() -> str | None:
                assert proc.poll() is None, (tmp_path / "worker.log").read_text(errors="replace")[-4000:]
                v = c.get(f"{URL}/model").json()["model_version"]
                return v if v != v0 else None

            poll(swapped, deadline_s=600, interval_s=1.0)
        finally:
            _stop(proc)  # warm shutdown: a refit in progress finishes first
        # The beat keeps scheduling: the version published last (after the stop) is the one served now.
        v1 = redis.Redis.from_url(redis_url, decode_responses=True).get(keys.RECS_MODEL)
        assert v1 and v1 != v0
        answer = c.get(f"{URL}/users/beat-user").json()
        assert answer["model_version"] == v1  # every answer names the model that produced it
        assert v1 in artifacts.versions(art) and artifacts.current(art) == v1 and len(artifacts.versions(art)) >= 2
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert tasks.REFIT_TASK in log and f"-> {v1}" in log  # ran as the beat-scheduled task in the worker
        # The refit read the ratings posted through the app (Redis), not only the data set.
        refitted = artifacts.load(art, v1)
        assert "beat-user" in refitted.data.user_index


def test_refit_is_skipped_while_another_process_holds_the_lock(redis_url: str, engine: RecEngine, encoder: object,
                                                                tmp_path: Path) -> None:
    art = tmp_path / "artifacts"
    artifacts.save(engine.bundle, art)
    settings = make_settings(redis_url, FAQ_SRC, recs_artifact_dir=art)
    client = redis.Redis.from_url(redis_url)
    client.set(keys.RECS_REFIT_LOCK, "held by another companion", ex=60)
    try:
        out = tasks.refit(settings)
    finally:
        client.delete(keys.RECS_REFIT_LOCK)
    assert out == {"refitted": False, "model_version": engine.version}
    assert artifacts.versions(art) == [engine.version]
