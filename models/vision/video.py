"""Owns video frame sampling with OpenCV: fixed-rate samples plus extra frames at scene cuts, with limits.

Cost model: every frame must be decoded (inter-coded streams), but `grab()` only decodes while `retrieve()`
also converts to BGR. We retrieve only frames we keep, plus a few per second for cut detection on a sparse
thumbnail, so sampling costs little more than the decode itself (bench/bench_media.py measures the ratio).
Kept frames can be handed to a callback as they are found, so a consumer (models.vision.pipeline) scores them
while the rest of the file is still decoding.
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from common.sniff import HEAD_BYTES, VIDEO_FORMATS, sniff
from models.vision.decode import Frame
from models.vision.errors import VideoError

log = logging.getLogger(__name__)

# Codecs OpenCV's bundled FFmpeg decodes; anything else in an MP4/MOV sample table is refused by name.
DECODABLE_4CC = frozenset({
    "avc1", "avc3", "h264", "hvc1", "hev1", "mp4v", "vp08", "vp09", "av01", "jpeg", "mjpa", "mjpb",
    "s263", "h263", "apcn", "apch", "apcs", "apco", "ap4h", "mpg1", "mpg2", "xvid", "dx50", "divx",
})
AUDIO_4CC = frozenset({"mp4a", "ac-3", "ec-3", "opus", "alac", "flac", ".mp3", "samr", "sawb", "lpcm",
                       "sowt", "twos", "ulaw", "alaw", "fl32", "fl64", "in24", "in32", "ima4"})
THUMB_SIZE = (64, 36)


@dataclass(frozen=True)
class VideoLimits:
    sample_fps: float = 1.0
    max_frames: int = 300
    max_duration_ms: int = 15 * 60 * 1000
    max_pixels: int = 50_000_000
    min_side: int = 16
    scene_cut_threshold: float = 0.45
    scene_check_fps: float = 5.0
    scene_cut_frame_share: float = 0.25
    # Kept frames are shrunk to this longest side: models look at 224 px and PDQ at 64, while 300 full-HD
    # frames held for hash-first matching would take ~1.8 GB.
    frame_max_side: int = 512
    # FFmpeg decoding threads (0 = FFmpeg's choice, one per core). The media worker decodes with 1 beside two
    # scoring threads: frame threading costs ~25 % more CPU per frame, and the cores are busy scoring anyway.
    decode_threads: int = 0


@dataclass
class SampledVideo:
    fmt: str
    codec: str
    width: int
    height: int
    fps: float
    duration_ms: int
    decoded_frames: int
    frames: list[Frame]
    cuts_ms: list[int] = field(default_factory=list)
    cuts_dropped: int = 0


def stsd_codecs(path: str | Path) -> list[str]:
    """Sample-entry fourccs of every track in an ISO-BMFF (MP4/MOV) file, read without decoding anything."""
    codecs: list[str] = []
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return codecs
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = mm.find(b"stsd")
            while pos != -1 and pos + 20 <= size:
                codecs.append(mm[pos + 16:pos + 20].decode("latin-1").lower())
                pos = mm.find(b"stsd", pos + 4)
    return codecs


def top_level_atoms(path: str | Path, limit: int = 64) -> list[tuple[str, int]]:
    """(type, size) of the top-level ISO-BMFF boxes, to tell 'no frames written' from 'cut short'."""
    atoms: list[tuple[str, int]] = []
    with open(path, "rb") as fh:
        end = os.fstat(fh.fileno()).st_size
        pos = 0
        while pos + 8 <= end and len(atoms) < limit:
            fh.seek(pos)
            header = fh.read(16)
            size = int.from_bytes(header[0:4], "big")
            kind = header[4:8].decode("latin-1")
            if size == 1 and len(header) == 16:
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:
                size = end - pos
            if size < 8:
                break
            atoms.append((kind, size))
            pos += size
    return atoms


def shrink(img: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale so the longer side is at most max_side.

    INTER_AREA is only fast for exact integer factors (8 ms vs 0.2 ms for 720p here), so halve with it while
    the frame is at least twice too big, then finish with a bilinear step of less than 2× (little aliasing).
    """
    while max(img.shape[:2]) >= 2 * max_side:
        h, w = img.shape[:2]
        img = cv2.resize(img[: h - h % 2, : w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return img
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)


def hist_signature(bgr: np.ndarray) -> np.ndarray:
    """Normalised H-S histogram of a point-sampled thumbnail; cheap and robust to noise and small motion."""
    h, w = bgr.shape[:2]
    # Strided sampling (a view) instead of a resize: a histogram needs a pixel sample, not a smooth image.
    thumb = np.ascontiguousarray(bgr[:: max(1, h // THUMB_SIZE[1]), :: max(1, w // THUMB_SIZE[0])])
    hsv = cv2.cvtColor(thumb, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
    return cv2.normalize(hist, hist).flatten()


def hist_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def _diagnose_unopenable(path: Path, fmt: str) -> VideoError:
    if fmt in ("mp4", "mov", "m4v", "3gp"):
        codecs = stsd_codecs(path)
        if codecs and all(c in AUDIO_4CC for c in codecs):
            return VideoError("audio_only", f"only audio tracks ({', '.join(codecs)})")
        unknown = [c for c in codecs if c not in DECODABLE_4CC and c not in AUDIO_4CC]
        if unknown:
            return VideoError("unsupported_codec", f"video codec {unknown[0]!r} is not supported")
        if not codecs:
            atoms = dict(top_level_atoms(path))
            # A complete index (moov) without any track: the file was finalised with nothing in it.
            if "moov" in atoms and atoms.get("mdat", 0) <= 16:
                return VideoError("no_frames", "the container holds no tracks or samples")
            return VideoError("corrupt_video", "no sample table (truncated or incomplete file)")
    return VideoError("corrupt_video", f"{fmt} container could not be opened")


def _open(path: Path, decode_threads: int = 0) -> tuple[cv2.VideoCapture, str]:
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head:
        raise VideoError("empty_file", "the file is empty")
    mt = sniff(head)
    if mt.fmt not in VIDEO_FORMATS:
        code = "audio_only" if mt.is_audio else "unsupported_format"
        raise VideoError(code, f"not an accepted video format (detected {mt.fmt})")
    params = [cv2.CAP_PROP_N_THREADS, decode_threads] if decode_threads > 0 else []
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        raise _diagnose_unopenable(path, mt.fmt)
    return cap, mt.fmt


def _fourcc(cap: cv2.VideoCapture) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00").lower()


class _Plan:
    """Which decoded frames to keep: one per sample interval, plus cut frames within their budget."""

    def __init__(self, fps: float, frame_count: int, limits: VideoLimits) -> None:
        duration_s = frame_count / fps if frame_count > 0 else 0.0
        cut_budget = int(limits.max_frames * limits.scene_cut_frame_share) if limits.scene_cut_threshold else 0
        interval_budget = max(1, limits.max_frames - cut_budget)
        interval_s = 1.0 / limits.sample_fps
        if duration_s and duration_s / interval_s > interval_budget:
            interval_s = duration_s / interval_budget  # spread evenly instead of truncating the end
        self.step = max(1.0, interval_s * fps)
        self.check_step = max(1, round(fps / limits.scene_check_fps)) if limits.scene_check_fps else 1
        self.cut_budget = cut_budget
        self.interval_budget = interval_budget
        self.next_sample = 0.0

    def is_sample(self, index: int) -> bool:
        if index + 1e-6 >= self.next_sample:
            self.next_sample += self.step
            return True
        return False


def _ts_ms(cap: cv2.VideoCapture, index: int, fps: float) -> int:
    # Container timestamps handle variable frame rate; fall back to index/fps when the backend has none.
    pos = cap.get(cv2.CAP_PROP_POS_MSEC)
    return int(round(pos)) if pos > 0 or index == 0 else int(round(index * 1000.0 / fps))


def sample_video(path: str | Path, limits: VideoLimits | None = None,
                 on_frame: Callable[[Frame], None] | None = None) -> SampledVideo:
    """Sample RGB frames from a video file, or raise VideoError with a stable code.

    `on_frame` sees each kept frame as soon as it is decoded (in order); an exception it raises stops decoding.
    """
    limits = limits or VideoLimits()
    path = Path(path)
    cap, fmt = _open(path, limits.decode_threads)
    try:
        return _sample(cap, path, fmt, limits, on_frame)
    finally:
        cap.release()


def _sample(cap: cv2.VideoCapture, path: Path, fmt: str, limits: VideoLimits,
            on_frame: Callable[[Frame], None] | None) -> SampledVideo:
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if 0 < fps < 1000 else 25.0
    frame_count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    codec = _fourcc(cap)
    if width * height > limits.max_pixels:
        raise VideoError("decompression_bomb", f"{width}x{height} frames exceed {limits.max_pixels} px")
    if min(width, height) < limits.min_side:
        raise VideoError("image_too_small", f"{width}x{height} frames are below {limits.min_side} px")
    if frame_count and frame_count * 1000.0 / fps > limits.max_duration_ms:
        raise VideoError("video_too_long", f"{frame_count / fps:.1f} s exceeds {limits.max_duration_ms} ms")
    plan = _Plan(fps, frame_count, limits)
    frames: list[Frame] = []
    cuts_ms: list[int] = []
    dropped = n_interval = n_cut = 0
    prev_sig: np.ndarray | None = None
    index = -1
    while True:
        if not cap.grab():
            break
        index += 1
        ts = _ts_ms(cap, index, fps)
        if ts > limits.max_duration_ms:
            raise VideoError("video_too_long", f"stream passes {limits.max_duration_ms} ms")
        sample = plan.is_sample(index) and n_interval < plan.interval_budget
        check = plan.cut_budget > 0 and index % plan.check_step == 0
        if not (sample or check):
            continue
        ok, bgr = cap.retrieve()
        if not ok or bgr is None:
            continue
        reasons: list[str] = ["interval"] if sample else []
        if check:
            sig = hist_signature(bgr)
            if prev_sig is not None and hist_distance(prev_sig, sig) >= limits.scene_cut_threshold:
                cuts_ms.append(ts)
                if sample or n_cut < plan.cut_budget:
                    reasons.append("cut")
                    n_cut += 0 if sample else 1
                else:
                    dropped += 1
            prev_sig = sig
        if reasons:
            rgb = cv2.cvtColor(shrink(bgr, limits.frame_max_side), cv2.COLOR_BGR2RGB)
            frames.append(Frame(ts, rgb, index, tuple(reasons)))
            n_interval += 1 if sample else 0
            if on_frame is not None:
                on_frame(frames[-1])
    decoded = index + 1
    if decoded == 0:
        if frame_count > 0:
            raise VideoError("unsupported_codec", f"stream ({codec or 'unknown codec'}) could not be decoded")
        raise VideoError("no_frames", "the video has no decodable frames")
    if not frames:
        raise VideoError("no_frames", "no frame could be converted")
    duration = max(int(round(decoded * 1000.0 / fps)), frames[-1].ts_ms)
    return SampledVideo(fmt, codec, width, height, fps, duration, decoded, frames, cuts_ms, dropped)
