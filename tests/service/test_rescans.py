"""Batch rescans: correct counts over >=1,000 items, exactly-once under SIGKILL, human decisions stand."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from models.text.labels import CATEGORIES
from service.core.config import Settings
from service.gateway.app import create_app
from service.store import keys
from service.store.rescans import RescanStore
from tests.conftest import Stack, admin_headers, new_key, stack_values
from tests.support.receiver import webhook_receiver
from tests.support.redis_server import RedisServer
from tests.support.workers import FAST_REDELIVERY, WorkerProcess, poll, settings_env

BLOCK_ALL = {c: {"review": 0.01, "block": 0.02} for c in CATEGORIES}


@pytest.fixture(scope="module")
def rescan_worker(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    values = stack_values(Path(stack.settings.text_model_path))
    worker = WorkerProcess(stack.url, settings_env(values), queues="rescan",
                           log_path=tmp_path_factory.mktemp("rescan") / "w.log").start()
    yield worker
    worker.stop()


def submit_many(api: TestClient, headers: dict[str, str], n: int, prefix: str = "item") -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 250):
        items = [{"text": f"{prefix} {i} is a perfectly ordinary sentence"} for i in range(start, min(n, start + 250))]
        resp = api.post("/v1/moderations/batch", json={"items": items}, headers=headers)
        ids += [x["id"] for x in resp.json()["items"]]
    store = api.app.state.services.items
    poll(lambda: all(i and i["status"] == "done" for i in store.get_many(ids)), 180, 0.5)
    return ids


def wait_job(api: TestClient, job_id: str, deadline_s: float = 180) -> dict:
    return poll(lambda: (lambda j: j if j["status"] in ("done", "cancelled") else None)(
        api.get(f"/v1/rescans/{job_id}", headers=admin_headers()).json()), deadline_s, 0.2)


def test_rescan_thousand_items_counts(api: TestClient, rescan_worker: WorkerProcess) -> None:
    headers, tenant = new_key(api)
    ids = submit_many(api, headers, 1000)
    # Nothing changed yet: a rescan finds every verdict the same.
    job = wait_job(api, api.post("/v1/rescans", json={"tenant": tenant}, headers=admin_headers()).json()["id"])
    assert (job["total"], job["done"], job["unchanged"], job["changed"], job["failed"]) == (1000, 1000, 1000, 0, 0)
    assert job["status"] == "done" and job["rate_per_s"] > 0 and job["eta_s"] is None
    api.put(f"/v1/policies/{tenant}", json={"categories": BLOCK_ALL}, headers=admin_headers())
    job = wait_job(api, api.post("/v1/rescans", json={"tenant": tenant, "kind": "text"},
                                 headers=admin_headers()).json()["id"])
    assert (job["total"], job["changed"], job["unchanged"], job["failed"], job["skipped"]) == (1000, 1000, 0, 0, 0)
    item = api.get(f"/v1/moderations/{ids[0]}", headers=headers).json()
    assert item["decision"] == "block" and item["verdict_version"] == 1
    assert item["policy_version"] == f"default@1+{tenant}@1"
    events = [e["event"] for e in api.get(f"/v1/moderations/{ids[0]}/history", headers=headers).json()["events"]]
    assert events[-1] == "rescan_changed"
    versions = RescanStore(api.app.state.services.redis).versions(ids[0])
    assert len(versions) == 1 and versions[0]["decision"] == "allow"
    # Filter on policy version: everything is already on the new policy.
    job = wait_job(api, api.post("/v1/rescans", json={"tenant": tenant,
                                                      "policy_version_not": f"default@1+{tenant}@1"},
                                 headers=admin_headers()).json()["id"])
    assert job["total"] == 0 and job["status"] == "done"


def test_rescan_respects_humans_and_fires_webhooks_only_on_change(api: TestClient,
                                                                     rescan_worker: WorkerProcess) -> None:
    headers, tenant = new_key(api)
    api.put(f"/v1/policies/{tenant}", json={"categories": {c: {"review": 0.01, "block": 0.999} for c in CATEGORIES}},
            headers=admin_headers())
    mod, _ = new_key(api, "moderator", tenant)
    with webhook_receiver() as rx:
        human_id = api.post("/v1/moderations?wait=10", json={"text": "human says ok"}, headers=headers).json()["id"]
        api.post("/v1/moderations?wait=10", json={"text": "will change", "callback_url": rx.url()},
                            headers=headers).json()["id"]
        api.post(f"/v1/reviews/{human_id}/claim", json={}, headers=mod)
        api.post(f"/v1/reviews/{human_id}/decision", json={"action": "approve"}, headers=mod)
        poll(lambda: len(rx.requests) == 1, 30)
        api.put(f"/v1/policies/{tenant}", json={"categories": BLOCK_ALL}, headers=admin_headers())
        job = wait_job(api, api.post("/v1/rescans", json={"tenant": tenant}, headers=admin_headers()).json()["id"])
        assert (job["total"], job["changed"], job["unchanged"], job["human_disagreements"]) == (2, 1, 1, 1)
        poll(lambda: len(rx.requests) == 2, 30)
        assert json.loads(rx.requests[-1].body)["event"] == "moderation.rescan_changed"
        # An unchanged rescan sends nothing more.
        job = wait_job(api, api.post("/v1/rescans", json={"tenant": tenant}, headers=admin_headers()).json()["id"])
        assert job["changed"] == 0
    human = api.get(f"/v1/moderations/{human_id}", headers=headers).json()
    assert human["decision"] == "allow" and human["source"] == "human"
    assert human["rescan_disagreement"]["model_decision"] == "block"
    assert len(rx.requests) == 2


def test_rescan_reuses_scores_of_the_same_model_only(api: TestClient, stack: Stack,
                                                      rescan_worker: WorkerProcess) -> None:
    """A policy-only rescan re-decides from the scores this model stored; a verdict of another model is scored."""
    headers, tenant = new_key(api)
    same, older = submit_many(api, headers, 2, prefix="reuse")
    item = api.get(f"/v1/moderations/{same}", headers=headers).json()
    zeros = json.dumps(dict.fromkeys(item["scores"], 0.0))
    r = redis.Redis.from_url(stack.url)
    r.hset(keys.item(same), "scores", zeros)  # as if this model had scored it 0: a reused score shows
    r.hset(keys.item(older), mapping={"scores": zeros, "models": json.dumps([{"name": "old", "version": "0"}])})
    api.put(f"/v1/policies/{tenant}", json={"categories": BLOCK_ALL}, headers=admin_headers())
    job = wait_job(api, api.post("/v1/rescans", json={"tenant": tenant}, headers=admin_headers()).json()["id"])
    assert (job["total"], job["changed"], job["unchanged"]) == (2, 1, 1)
    kept = api.get(f"/v1/moderations/{same}", headers=headers).json()
    assert kept["decision"] == item["decision"] == "allow"
    assert json.loads(r.hget(keys.item(same), "checked_with") or "{}")["models"] == item["models"]
    scored = api.get(f"/v1/moderations/{older}", headers=headers).json()
    assert scored["decision"] == "block" and scored["models"] == item["models"] and any(scored["scores"].values())


def test_rescan_worker_children_run_niced_live_workers_do_not(stack: Stack, rescan_worker: WorkerProcess) -> None:
    """Rescans are background work: a rescan-only worker's pool child runs at MOD_RESCAN_NICE above its parent, so
    the live text worker, the gateway and Redis get the CPU first; the live worker's child keeps its priority."""
    assert rescan_worker.proc is not None and stack.worker.proc is not None
    rescan_child = int(str(rescan_worker.wait_heartbeat()["pid"]))
    live_child = int(str(stack.worker.wait_heartbeat()["pid"]))
    parent = os.getpriority(os.PRIO_PROCESS, rescan_worker.proc.pid)
    assert os.getpriority(os.PRIO_PROCESS, rescan_child) == min(19, parent + Settings().rescan_nice)
    assert os.getpriority(os.PRIO_PROCESS, live_child) == os.getpriority(os.PRIO_PROCESS, stack.worker.proc.pid)


def test_rescan_roles_and_cancel(api: TestClient) -> None:
    platform, tenant = new_key(api)
    moderator, _ = new_key(api, "moderator", tenant)
    for h in (platform, moderator):
        assert api.post("/v1/rescans", json={}, headers=h).status_code == 403
        assert api.get("/v1/rescans", headers=h).status_code == 403
    jobs = RescanStore(api.app.state.services.redis)
    job_id = jobs.create({"tenant": "nobody"}, "test")  # planned by nobody: stays running until cancelled
    resp = api.post(f"/v1/rescans/{job_id}/cancel", headers=admin_headers())
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    again = api.post(f"/v1/rescans/{job_id}/cancel", headers=admin_headers())
    assert again.status_code == 409 and again.json()["error"]["code"] == "rescan_finished"
    assert api.get("/v1/rescans/rs_missing", headers=admin_headers()).status_code == 404
    bad = api.post("/v1/rescans", json={"kind": "audio"}, headers=admin_headers())
    assert bad.status_code == 422


def test_rescan_survives_sigkill_exactly_once(redis_server: RedisServer, tiny_model: Path, tmp_path: Path) -> None:
    url = redis_server.url(5)
    redis.Redis.from_url(url).flushdb()
    live = stack_values(tiny_model)
    fast = FAST_REDELIVERY
    slow = stack_values(tiny_model, fault_pause_marker="slowrescan", fault_pause_s=0.4, rescan_chunk_size=50, **fast)
    text_worker = WorkerProcess(url, settings_env(live), log_path=tmp_path / "text.log").start()
    w1 = WorkerProcess(url, settings_env(slow), queues="rescan", log_path=tmp_path / "r1.log").start()
    w2 = None
    try:
        with TestClient(create_app(Settings(redis_url=url, **live))) as api:  # type: ignore[arg-type]
            headers = {"Authorization": "Bearer test-platform-key"}
            submit_many(api, headers, 1000, prefix="slowrescan")
            tenant = "demo"
            api.put(f"/v1/policies/{tenant}", json={"categories": BLOCK_ALL}, headers=admin_headers())
            job_id = api.post("/v1/rescans", json={"tenant": tenant}, headers=admin_headers()).json()["id"]
            poll(lambda: api.get(f"/v1/rescans/{job_id}", headers=admin_headers()).json()["done"] >= 100, 120, 0.1)
            w1.kill()
            partial = api.get(f"/v1/rescans/{job_id}", headers=admin_headers()).json()
            assert partial["done"] < 1000, "the kill must land mid-rescan"
            w2 = WorkerProcess(url, settings_env({**live, **fast}), queues="rescan",
                               log_path=tmp_path / "r2.log").start()
            job = wait_job(api, job_id, 240)
            assert (job["total"], job["done"], job["changed"], job["unchanged"], job["failed"]) == (1000, 1000, 1000,
                                                                                                 0, 0)
            r = redis.Redis.from_url(url, decode_responses=True)
            ids = list(r.smembers(f"mod:rescan:{job_id}:targets"))
            versions = [int(v or 0) for v in (r.hget(f"mod:item:{i}", "verdict_version") for i in ids)]
            assert versions == [1] * 1000  # each changed verdict written exactly once
    finally:
        w1.kill()
        if w2:
            w2.stop()
        text_worker.stop()
