"""Image/video moderation through the gateway, the blob store and a real media worker process."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import Stack, admin_headers, new_key, stack_values
from tests.models.vision.media import photo, write_photo_clip, write_video
from tests.models.vision.test_bad_inputs import CASES
from tests.support.workers import WorkerProcess, poll, settings_env
from training.vision.fetch import DATA_DIR, MODEL_DIR, fetch_data, fetch_models

FINAL = ("done", "failed", "rejected")
UPLOAD_REFUSALS = {"empty_file", "unsupported_format", "audio_only"}


@pytest.fixture(scope="module")
def media_worker(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    fetch_models(MODEL_DIR)
    values = stack_values(Path(stack.settings.text_model_path))
    worker = WorkerProcess(stack.url, settings_env(values), queues="media",
                           log_path=tmp_path_factory.mktemp("media") / "w.log").start()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def data_dir() -> Path:
    fetch_data(DATA_DIR)
    return DATA_DIR


def jpeg_bytes(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def upload(api: TestClient, headers: dict[str, str], kind: str, name: str, data: bytes, **form: str):  # type: ignore[no-untyped-def]
    return api.post(f"/v1/moderations/{kind}", files={"file": (name, data)}, data=form, headers=headers)


def wait_final(api: TestClient, headers: dict[str, str], item_id: str) -> dict:
    return poll(lambda: (lambda it: it if it["status"] in FINAL else None)(
        api.get(f"/v1/moderations/{item_id}", headers=headers).json()), 120, 0.1)


def test_safe_photo_is_allowed_with_models_and_hashes(api: TestClient, media_worker: WorkerProcess,
                                                        data_dir: Path) -> None:
    headers, _ = new_key(api)
    resp = upload(api, headers, "image", "astronaut.jpg", jpeg_bytes(photo(data_dir)), external_id="img-1")
    assert resp.status_code == 202, resp.text
    item = wait_final(api, headers, resp.json()["id"])
    assert item["status"] == "done" and item["kind"] == "image", item
    assert item["decision"] == "allow"
    assert {m["name"] for m in item["models"]} == {"open_nsfw", "image_safety_s"}
    assert set(item["scores"]) == {"sexual", "violence"}
    assert item["media"]["hashes"]["sha256"] and item["media"]["format"] == "jpeg"
    assert item["policy_version"] == "default@1"


def test_video_with_frames_and_segments(api: TestClient, media_worker: WorkerProcess, tmp_path: Path) -> None:
    headers, _ = new_key(api)
    video = write_video(tmp_path / "cuts.mp4", [(2.0, 0), (3.0, 1)])
    resp = upload(api, headers, "video", "cuts.mp4", video.read_bytes())
    item = wait_final(api, headers, resp.json()["id"])
    assert item["status"] == "done", item
    frames = item["media"]["frames"]
    assert len(frames) >= 5 and frames == sorted(frames, key=lambda f: f["ts_ms"])
    assert item["media"]["duration_ms"] == pytest.approx(5000, abs=200)
    assert isinstance(item["media"]["segments"], list)


def test_static_video_reuses_scores_in_the_worker(api: TestClient, media_worker: WorkerProcess, data_dir: Path,
                                                  tmp_path: Path) -> None:
    headers, _ = new_key(api)
    video = write_photo_clip(tmp_path / "static.mp4", data_dir, [(3.0, "astronaut.png", False)])
    item = wait_final(api, headers, upload(api, headers, "video", "static.mp4", video.read_bytes()).json()["id"])
    assert item["status"] == "done", item
    frames = item["media"]["frames"]
    assert [f.get("reused_ms") for f in frames] == [None, 0, 0]  # the worker's default settings reuse
    assert frames[1]["model_scores"] == frames[0]["model_scores"]
    assert any(n.startswith("scores reused for 2 of 3 frames") for n in item["media"]["notes"])


def test_upload_validation(api: TestClient, media_worker: WorkerProcess, data_dir: Path, tmp_path: Path) -> None:
    headers, _ = new_key(api)
    video = write_video(tmp_path / "v.mp4", [(1.0, 0)]).read_bytes()
    resp = upload(api, headers, "image", "v.jpg", video)
    assert resp.status_code == 415 and resp.json()["error"]["code"] == "wrong_media_kind"
    resp = upload(api, headers, "video", "a.mp4", jpeg_bytes(photo(data_dir)))
    assert resp.status_code == 415 and resp.json()["error"]["code"] == "wrong_media_kind"
    limit = api.app.state.services.settings.media.max_image_bytes  # type: ignore[attr-defined]
    resp = upload(api, headers, "image", "huge.jpg", b"\xff\xd8\xff" + b"0" * (limit + 70_000))
    assert resp.status_code == 413 and resp.json()["error"]["code"] in ("body_too_large", "file_too_large")
    resp = api.post("/v1/moderations/image", headers=headers)
    assert resp.status_code == 422
    mod, _ = new_key(api, "moderator")
    assert upload(api, mod, "image", "x.jpg", jpeg_bytes(photo(data_dir))).status_code == 403


def test_bad_input_corpus_through_the_worker(api: TestClient, media_worker: WorkerProcess, data_dir: Path,
                                             tmp_path: Path) -> None:
    headers, _ = new_key(api)
    ran = 0
    for case_id, builder, expected, settings in CASES:
        if settings is not None:
            continue  # needs non-default limits; covered in tests/models/vision
        sub = tmp_path / case_id
        sub.mkdir()
        data = builder(data_dir, sub).read_bytes()
        kind = "video" if expected == "ok:video" or "mp4" in case_id or "avi" in case_id else "image"
        if expected in ("audio_only",):
            kind = "video"
        resp = upload(api, headers, kind, f"{case_id}.bin", data)
        ran += 1
        if resp.status_code in (400, 415) and resp.json()["error"]["code"] != "wrong_media_kind":
            # Refused at upload (magic bytes say so): must be one of the upload-time codes.
            assert expected in UPLOAD_REFUSALS and resp.json()["error"]["code"] == expected, (case_id, resp.text)
            continue
        if resp.status_code == 415 and resp.json()["error"]["code"] == "wrong_media_kind":
            kind = "image" if kind == "video" else "video"
            resp = upload(api, headers, kind, f"{case_id}.bin", data)
        assert resp.status_code == 202, (case_id, resp.text)
        item = wait_final(api, headers, resp.json()["id"])
        if expected.startswith("ok:"):
            assert item["status"] == "done", (case_id, item)
        else:
            assert item["status"] == "rejected", (case_id, item)
            assert item["error"]["code"] == expected, (case_id, item["error"])
        assert media_worker.proc is not None and media_worker.proc.poll() is None, f"worker died on {case_id}"
    assert ran >= 25
    good = upload(api, headers, "image", "after.jpg", jpeg_bytes(photo(data_dir, "coffee.png")))
    assert wait_final(api, headers, good.json()["id"])["status"] == "done"


def test_hash_list_match_blocks_before_models(api: TestClient, media_worker: WorkerProcess, data_dir: Path) -> None:
    headers, tenant = new_key(api)
    original = photo(data_dir)
    resp = api.post(f"/v1/hashlists/{tenant}/known-bad/file", files={"file": ("a.jpg", jpeg_bytes(original))},
                    headers=admin_headers())
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert job["status"] == "done" and job["result"]["pdq"], job
    assert api.get(f"/v1/hashlists/jobs/{job['id']}", headers=admin_headers()).json()["status"] == "done"
    listed = api.get(f"/v1/hashlists/{tenant}/known-bad", headers=admin_headers()).json()
    assert listed["sha256"] == [job["result"]["sha256"]]
    # Re-encoded and resized copy: PDQ matches within distance 31.
    small = np.asarray(Image.fromarray(original).resize((original.shape[1] // 2, original.shape[0] // 2)))
    item = wait_final(api, headers, upload(api, headers, "image", "copy.jpg", jpeg_bytes(small, 60)).json()["id"])
    assert item["decision"] == "block" and item["models"] == []
    [reason] = item["reasons"]
    assert reason["type"] == "hash_match" and reason["list"] == "known-bad" and reason["distance"] <= 31
    # Exact hash via the hex API, for another tenant's list: does not affect this tenant.
    other_headers, other = new_key(api)
    api.post(f"/v1/hashlists/{other}/x/hashes", json={"kind": "sha256", "values": [job["result"]["sha256"]]},
             headers=admin_headers())
    coffee = wait_final(api, other_headers, upload(api, other_headers, "image", "c.jpg",
                                                    jpeg_bytes(photo(data_dir, "coffee.png"))).json()["id"])
    assert coffee["decision"] != "block" or coffee["reasons"] == []
    bad = api.post(f"/v1/hashlists/{tenant}/x/hashes", json={"kind": "pdq", "values": ["zz"]}, headers=admin_headers())
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_hash"
    mod, _ = new_key(api, "moderator", tenant)
    assert api.post(f"/v1/hashlists/{tenant}/x/hashes", json={"kind": "sha256", "values": ["a" * 64]},
                    headers=mod).status_code == 403
