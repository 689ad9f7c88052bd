"""Segment merging and early exit, on synthetic scores and end to end on a video with a red scene."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.media_settings import MediaSettings
from models.vision.pipeline import moderate_video_file
from models.vision.segments import ScoredFrame, crosses, merge_segments
from tests.models.vision.media import write_video


def _frames(scores: list[float], step: int = 1000, category: str = "sexual") -> list[ScoredFrame]:
    return [ScoredFrame(i * step, {category: s}) for i, s in enumerate(scores)]


def test_consecutive_offending_frames_merge() -> None:
    segs = merge_segments(_frames([0.1, 0.9, 0.95, 0.7, 0.1, 0.1]), {"sexual": 0.6}, merge_gap_ms=0)
    assert [(s.start_ms, s.end_ms, s.frames, s.max_score, s.max_score_ms) for s in segs] == [
        (1000, 4000, 3, 0.95, 2000)
    ]


def test_gap_splits_or_merges() -> None:
    frames = _frames([0.9, 0.1, 0.1, 0.9, 0.1])
    split = merge_segments(frames, {"sexual": 0.5}, merge_gap_ms=1000)
    assert [(s.start_ms, s.end_ms) for s in split] == [(0, 1000), (3000, 4000)]
    merged = merge_segments(frames, {"sexual": 0.5}, merge_gap_ms=2000)
    assert [(s.start_ms, s.end_ms, s.frames) for s in merged] == [(0, 4000, 2)]


def test_last_frame_extends_to_duration_and_categories_separate() -> None:
    frames = [ScoredFrame(0, {"sexual": 0.2, "violence": 0.9}), ScoredFrame(1000, {"sexual": 0.8, "violence": 0.9})]
    segs = merge_segments(frames, {"sexual": 0.5, "violence": 0.5}, duration_ms=1800)
    assert [(s.category, s.start_ms, s.end_ms) for s in segs] == [("violence", 0, 1800), ("sexual", 1000, 1800)]


def test_unordered_input_and_missing_categories() -> None:
    frames = list(reversed(_frames([0.9, 0.9])))
    assert [(s.start_ms, s.end_ms) for s in merge_segments(frames, {"sexual": 0.5, "violence": 0.5})] == [(0, 1000)]
    assert merge_segments([], {"sexual": 0.5}) == []


def test_threshold_is_inclusive_and_crosses() -> None:
    assert len(merge_segments(_frames([0.5]), {"sexual": 0.5})) == 1
    assert crosses({"sexual": 0.95, "violence": 0.2}, {"sexual": 0.9}) == "sexual"
    assert crosses({"sexual": 0.5}, {"sexual": 0.9, "violence": 0.9}) is None


def test_video_segments_end_to_end(tmp_path: Path, red_detector: str) -> None:
    # Red scene (colour 0 is BGR (40, 40, 200)) from 2.5 s to 6.7 s inside a 10 s blue/green video.
    path = write_video(tmp_path / "red.mp4", [(2.5, 1), (4.2, 0), (3.3, 2)])
    settings = MediaSettings(models=[red_detector], segment_thresholds={"sexual": 0.5}, segment_merge_gap_ms=1000,
                             scene_check_fps=0)
    result = moderate_video_file(path, settings)
    assert result["models"] == [{"name": "red_detector", "version": "test-1"}]
    assert result["sampling"]["cuts_ms"] == [2500, 6700]
    (segment,) = result["segments"]
    # The cut frame at 2500 ms opens the segment; it runs until the cut frame that shows the next scene.
    assert (segment["category"], segment["start_ms"], segment["end_ms"]) == ("sexual", 2500, 6700)
    assert segment["max_score"] == pytest.approx(1.0)
    assert result["early_exit"] is None
    assert len(result["frames"]) == result["sampling"]["sampled_frames"] == 12  # 10 interval + 2 cut frames


def test_early_exit_stops_scoring(tmp_path: Path, red_detector: str) -> None:
    path = write_video(tmp_path / "red_late.mp4", [(5.0, 1), (5.0, 0)])
    settings = MediaSettings(models=[red_detector], batch_size=2, early_exit_thresholds={"sexual": 0.9},
                             scene_cut_frame_share=0.0)
    result = moderate_video_file(path, settings)
    assert result["early_exit"] == {"category": "sexual", "ts_ms": 5000, "frames_scored": 6}
    assert [f["ts_ms"] for f in result["frames"]] == [0, 1000, 2000, 3000, 4000, 5000]
    assert result["sampling"]["sampled_frames"] == 10
