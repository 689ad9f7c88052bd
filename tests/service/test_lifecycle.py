"""Verdict lifecycle: the review-queue rule across rescans, its repair command, converging rescan filters, the
operator CLI (same validation and codes as the API), appeals that exclude every earlier decider, and video
hash matches that name their frame. Real Redis, real worker processes, the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image

from models.text.labels import CATEGORIES
from service.store import keys
from service.store.items import LIVE, ItemStore, NewItem
from service.store.rescans import RescanStore
from tests.conftest import Stack, admin_headers, new_key, stack_values
from tests.models.vision.media import photo, scene_frame
from tests.service.test_media_flow import data_dir, jpeg_bytes, media_worker, upload, wait_final  # noqa: F401
from tests.support.workers import ROOT, WorkerProcess, poll, settings_env

REVIEW_ALL = {c: {"review": 0.0, "block": 1.0} for c in CATEGORIES}  # every score reviews, none blocks
ALLOW_ALL = {c: {"review": 1.0, "block": 1.0} for c in CATEGORIES}   # tiny-model scores never reach 1.0


@pytest.fixture(scope="module")
def rescan_worker(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    values = stack_values(Path(stack.settings.text_model_path))
    worker = WorkerProcess(stack.url, settings_env(values), queues="rescan",
                           log_path=tmp_path_factory.mktemp("lifecycle") / "rescan.log").start()
    yield worker
    worker.stop()


def set_policy(api: TestClient, tenant: str, categories: dict, terms: list[str] | None = None) -> str:
    resp = api.put(f"/v1/policies/{tenant}", json={"categories": categories, "blocklist_terms": terms or []},
                   headers=admin_headers())
    assert resp.status_code == 200, resp.text
    return str(resp.json()["id"])


def submit(api: TestClient, headers: dict[str, str], texts: list[str]) -> list[str]:
    ids = [x["id"] for x in api.post("/v1/moderations/batch", json={"items": [{"text": t} for t in texts]},
                                     headers=headers).json()["items"]]
    store = api.app.state.services.items
    poll(lambda: all(i and i["status"] == "done" for i in store.get_many(ids)), 60, 0.1)
    return ids


def rescan(api: TestClient, body: dict) -> dict:
    job_id = api.post("/v1/rescans", json=body, headers=admin_headers()).json()["id"]
    return poll(lambda: (lambda j: j if j["status"] in ("done", "cancelled", "failed") else None)(
        api.get(f"/v1/rescans/{job_id}", headers=admin_headers()).json()), 120, 0.1)


def queue_ids(api: TestClient, tenant: str) -> set[str]:
    page = api.get("/v1/reviews", params={"tenant": tenant, "limit": 200}, headers=admin_headers()).json()
    assert page["next_cursor"] is None
    return {i["id"] for i in page["items"]}


def decisions(api: TestClient, headers: dict[str, str], ids: list[str]) -> list[str]:
    return [api.get(f"/v1/moderations/{i}", headers=headers).json()["decision"] for i in ids]


# ---- the queue rule across rescans ----------------------------------------------------------------------------
def test_rescan_moves_items_out_of_and_into_the_review_queue(api: TestClient, rescan_worker: WorkerProcess) -> None:
    headers, tenant = new_key(api)
    set_policy(api, tenant, REVIEW_ALL)
    ids = submit(api, headers, ["you absolute muppet", "second comment", "third comment"])
    assert decisions(api, headers, ids) == ["review"] * 3 and queue_ids(api, tenant) == set(ids)
    mod, _ = new_key(api, "moderator", tenant)
    # review -> allow: every item leaves the queue in the write that changed its decision.
    set_policy(api, tenant, ALLOW_ALL)
    job = rescan(api, {"tenant": tenant, "kind": "text"})
    assert (job["changed"], job["unchanged"]) == (3, 0)
    assert decisions(api, headers, ids) == ["allow"] * 3
    assert queue_ids(api, tenant) == set()
    item = api.get(f"/v1/moderations/{ids[0]}", headers=headers).json()
    assert item["review_status"] is None
    events = [e["event"] for e in api.get(f"/v1/moderations/{ids[0]}/history", headers=headers).json()["events"]]
    assert events[-2:] == ["rescan_changed", "review_dequeued"]
    claim = api.post(f"/v1/reviews/{ids[0]}/claim", json={}, headers=mod)
    assert claim.status_code == 409 and claim.json()["error"]["code"] == "not_in_review"
    # allow -> review: every item enters the queue again.
    set_policy(api, tenant, REVIEW_ALL, terms=["zzqx-unused"])
    job = rescan(api, {"tenant": tenant})
    assert (job["changed"], job["unchanged"]) == (3, 0)
    assert decisions(api, headers, ids) == ["review"] * 3 and queue_ids(api, tenant) == set(ids)
    assert api.post(f"/v1/reviews/{ids[1]}/claim", json={}, headers=mod).status_code == 200


def test_second_identical_rescan_touches_nothing(api: TestClient, rescan_worker: WorkerProcess) -> None:
    headers, tenant = new_key(api)
    set_policy(api, tenant, REVIEW_ALL)
    ids = submit(api, headers, [f"comment {i}" for i in range(6)])
    model = api.get(f"/v1/moderations/{ids[0]}", headers=headers).json()["models"][0]
    # A policy bump that changes no decision: the first rescan re-scores all and changes none.
    version = set_policy(api, tenant, REVIEW_ALL, terms=["zzqx-unused"])
    body = {"tenant": tenant, "policy_version_not": version}
    first = rescan(api, body)
    assert (first["total"], first["unchanged"], first["changed"]) == (6, 6, 0)
    second = rescan(api, body)
    assert (second["total"], second["done"]) == (0, 0), second
    # The verdict itself still names the policy that made it; the check is recorded beside it.
    stored = api.app.state.services.items.get(ids[0])
    assert stored["policy_version"] != version and stored["checked_with"]["policy_version"] == version
    current = f"{model['name']}@{model['version']}"
    assert rescan(api, {"tenant": tenant, "model_version_not": current})["total"] == 0
    assert rescan(api, {"tenant": tenant, "model_version_not": "other-model@9"})["total"] == 6
    # The queue never saw the unchanged items move.
    assert queue_ids(api, tenant) == set(ids)


def test_filters_apply_to_unfinished_items(api: TestClient, rescan_worker: WorkerProcess) -> None:
    headers, tenant = new_key(api)
    ids = submit(api, headers, ["a comment", "another comment"])
    store = ItemStore(api.app.state.services.redis)
    image = NewItem(tenant, "image", "f" * 64, {"blob_key": "gone/file.png"})
    store.create([image])
    assert store.transition(image.id, "rejected", LIVE, "rejected", fields={"error_code": "corrupt_file"})[0]
    assert rescan(api, {"tenant": tenant, "kind": "text", "decision": "block"})["total"] == 0
    job = rescan(api, {"tenant": tenant, "kind": "text"})
    assert (job["total"], job["skipped"]) == (len(ids), 0)
    job = rescan(api, {"tenant": tenant})
    assert (job["total"], job["skipped"]) == (3, 1)  # without a kind filter it is counted, with its reason


# ---- appeals ---------------------------------------------------------------------------------------------------
def test_second_appeal_excludes_every_earlier_decider(api: TestClient) -> None:
    headers, tenant = new_key(api)
    set_policy(api, tenant, REVIEW_ALL)
    [item_id] = submit(api, headers, ["appeal me twice"])
    m1, m2, m3 = (new_key(api, "moderator", tenant)[0] for _ in range(3))

    def decide(mod: dict[str, str], action: str) -> None:
        assert api.post(f"/v1/reviews/{item_id}/claim", json={}, headers=mod).status_code == 200
        assert api.post(f"/v1/reviews/{item_id}/decision", json={"action": action}, headers=mod).status_code == 200

    decide(m1, "remove")
    late = api.post(f"/v1/reviews/{item_id}/decision", json={"action": "approve"}, headers=m2)
    assert late.status_code == 409 and late.json()["error"]["code"] == "not_in_review"
    appeal = api.post(f"/v1/moderations/{item_id}/appeal", json={"message": "a quote"}, headers=headers)
    assert appeal.status_code == 202
    assert item_id in queue_ids(api, tenant)
    decide(m2, "approve")
    assert item_id not in queue_ids(api, tenant)
    assert api.post(f"/v1/moderations/{item_id}/appeal", json={"message": "again"}, headers=headers).status_code == 202
    for earlier in (m1, m2):
        resp = api.post(f"/v1/reviews/{item_id}/claim", json={}, headers=earlier)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "appeal_needs_other_moderator"
    decide(m3, "remove")
    item = api.app.state.services.items.get(item_id)
    assert item["decision"] == "block" and len(item["deciders"]) == 3
    assert item_id not in queue_ids(api, tenant)


# ---- queue repair --------------------------------------------------------------------------------------------
def cli(stack: Stack, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MOD_REDIS_URL": url or stack.url, "MOD_ENV": "test", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_queue_repair_rebuilds_a_corrupted_queue(api: TestClient, stack: Stack) -> None:
    headers, tenant = new_key(api)
    set_policy(api, tenant, REVIEW_ALL)
    dropped, fine, decided = submit(api, headers, ["dropped from the queue", "fine", "decided by a human"])
    mod, _ = new_key(api, "moderator", tenant)
    api.post(f"/v1/reviews/{decided}/claim", json={}, headers=mod)
    assert api.post(f"/v1/reviews/{decided}/decision", json={"action": "approve"}, headers=mod).status_code == 200
    set_policy(api, tenant, ALLOW_ALL)
    [allowed] = submit(api, headers, ["allowed but queued"])
    r = redis.Redis.from_url(stack.url, decode_responses=True)
    queue = keys.review(tenant)
    # Corrupt it every way the old code (or a crash between writes) could: a missing entry, an allowed item and
    # a human-decided item queued, an entry without an item.
    r.zrem(queue, dropped)
    r.zadd(queue, {allowed: 1.0, decided: 2.0, "mod_ghost": 3.0})
    r.hset(keys.item(allowed), "review_status", "pending")
    expected = {(dropped, "enqueue"), (allowed, "dequeue"), (decided, "dequeue"), ("mod_ghost", "drop_orphan")}

    dry = cli(stack, "queue", "repair", "--dry-run", "--tenant", tenant)
    assert dry.returncode == 0, dry.stderr
    assert {(c["id"], c["action"]) for c in map(json.loads, dry.stdout.splitlines())} == expected
    assert "would change 4 queue entries" in dry.stderr
    assert set(r.zrange(queue, 0, -1)) == {fine, allowed, decided, "mod_ghost"}  # a dry run changes nothing

    done = cli(stack, "queue", "repair", "--tenant", tenant)
    assert done.returncode == 0, done.stderr
    assert {(c["id"], c["action"]) for c in map(json.loads, done.stdout.splitlines())} == expected
    assert set(r.zrange(queue, 0, -1)) == {fine, dropped} == queue_ids(api, tenant)
    assert api.get(f"/v1/moderations/{allowed}", headers=headers).json()["review_status"] is None
    again = cli(stack, "queue", "repair", "--dry-run")  # every tenant (other tests' data too): none of ours left
    assert again.returncode == 0, again.stderr
    assert not [c for c in map(json.loads, again.stdout.splitlines()) if c["tenant"] == tenant]


# ---- the operator CLI ----------------------------------------------------------------------------------------
def test_rescan_cli_shares_the_api_validation_and_codes(api: TestClient, stack: Stack,
                                                        rescan_worker: WorkerProcess) -> None:
    jobs = RescanStore(api.app.state.services.redis)
    before = len(jobs.recent(1000))
    for flag, value, body in (("--kind", "foo", {"kind": "foo"}), ("--decision", "maybe", {"decision": "maybe"}),
                              ("--limit", "0", {"limit": 0})):
        out = cli(stack, "rescan", "start", "--tenant", "demo", "--no-wait", flag, value)
        assert out.returncode == 2, (flag, out.stderr)
        assert "error: validation_error:" in out.stderr and "Traceback" not in out.stderr
        answer = api.post("/v1/rescans", json={"tenant": "demo", **body}, headers=admin_headers())
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "validation_error"
    assert len(jobs.recent(1000)) == before, "a refused request must not create a job"
    missing = cli(stack, "rescan", "cancel", "rs_missing")
    assert missing.stderr.splitlines()[0] == f"redis: {stack.url}"
    assert missing.returncode == 3 and "error: rescan_not_found:" in missing.stderr
    assert cli(stack, "rescan", "watch", "rs_missing").returncode == 3
    # A valid start is planned by the rescan worker and followed to the end (no items: done at once).
    started = cli(stack, "rescan", "start", "--tenant", "nobody-here")
    assert started.returncode == 0, started.stderr
    job_id, report = started.stdout.split("\n", 1)
    assert json.loads(report)["status"] == "done" and jobs.get(job_id) is not None
    finished = cli(stack, "rescan", "cancel", job_id)
    assert finished.returncode == 4 and "error: rescan_finished:" in finished.stderr
    unplanned = jobs.create({"tenant": "nobody"}, "test")  # never sent to a worker: stays running until cancelled
    cancelled = cli(stack, "rescan", "cancel", unplanned)
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["status"] == "cancelled"


def test_cli_names_its_redis_and_reports_it_down_in_one_line(stack: Stack) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"redis://:s3cret-pass@127.0.0.1:{port}/0"
    for args in (["rescan", "cancel", "rs_x"], ["queue", "repair", "--dry-run"], ["rescan", "start", "--no-wait"]):
        out = cli(stack, *args, url=url)
        assert out.returncode == 5, (args, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert lines[0] == f"redis: redis://:***@127.0.0.1:{port}/0"
        assert len(lines) == 2 and lines[1].startswith("error: store_unavailable:"), lines
        assert "s3cret" not in out.stderr and "Traceback" not in out.stderr


# ---- video hash matches name their frame ---------------------------------------------------------------------
def test_video_hash_match_names_frame_and_list(api: TestClient, media_worker: WorkerProcess,  # noqa: F811
                                               data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    headers, tenant = new_key(api)
    size = (160, 120)
    still = np.asarray(Image.fromarray(photo(data_dir)).resize(size))
    resp = api.post(f"/v1/hashlists/{tenant}/known-bad/file", files={"file": ("a.jpg", jpeg_bytes(still))},
                    headers=admin_headers())
    assert resp.status_code == 200 and resp.json()["status"] == "done", resp.text
    # 3 s of unrelated textured scenes, then 2 s of the listed picture (10 fps, sampled at 1 fps by the worker).
    path = tmp_path / "late-match.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    for n in range(30):
        writer.write(scene_frame((40 + 50 * (n // 10), 120, 200 - 50 * (n // 10)), size, n))
    for _ in range(20):
        writer.write(cv2.cvtColor(still, cv2.COLOR_RGB2BGR))
    writer.release()
    item = wait_final(api, headers, upload(api, headers, "video", "late.mp4", path.read_bytes()).json()["id"])
    assert item["status"] == "done" and item["decision"] == "block", item
    [reason] = item["reasons"]
    assert reason["type"] == "hash_match" and reason["list"] == "known-bad" and reason["hash_kind"] == "pdq"
    assert 2500 <= reason["frame_ts_ms"] <= 5000, reason
    assert reason["matched_frames_ms"] and all(2500 <= t <= 5000 for t in reason["matched_frames_ms"]), reason
    assert reason["frame_ts_ms"] in reason["matched_frames_ms"]
