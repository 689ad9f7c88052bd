"""Owns the media moderation flow the worker calls: decode/sample → hashes → scores → segments → result dict.

The worker consults hash lists before decoding (exact) and before any model score is used (PDQ):
    sha = sha256_file(path); matcher.match(tenant, sha)        # known file: block without even decoding it
    with MediaJob(path, settings, sha) as job:                 # MediaError on bad input
        prepared = job.prepared()                              # decoded + hashed; scoring goes on meanwhile
        match = matcher.match(tenant, None, prepared.pdq_hex())   # service.store.hashlists.HashMatcher
        result = job.result() if match is None else ...        # leaving the block stops unneeded scoring
A video is decoded on one thread while another scores the frames already decoded, so decoding costs almost
no wall time on a 2-core worker; a PDQ match found after decoding still wins (the speculative scores are
dropped). `prepare_file` + `score_prepared` do the same one step after the other;
`moderate_file` / `moderate_image_file` / `moderate_video_file` do everything in one call.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from common.media_settings import MediaSettings
from common.sniff import HEAD_BYTES, sniff
from models.vision.classifiers import OnnxImageClassifier, load_classifiers
from models.vision.decode import Frame, ImageLimits, decode_image
from models.vision.errors import MediaError
from models.vision.hashing import PdqCollector, PdqHash, frame_hashes, sha256_file
from models.vision.reuse import ReusePolicy
from models.vision.scoring import Scorer, assemble
from models.vision.video import SampledVideo, VideoLimits, sample_video

__all__ = ["MediaError", "MediaJob", "Prepared", "detect_kind", "moderate_file", "moderate_image_file",
           "moderate_video_file", "prepare_file", "prepare_image", "prepare_video", "score_prepared", "sha256_file"]


@dataclass
class Prepared:
    """Decoded frames (≤ max_frames, shrunk to ≤512 px for video/animation) and hashes of one file."""

    kind: str
    fmt: str
    width: int
    height: int
    duration_ms: int
    animated: bool
    sha256: str
    frames: list[Frame]
    pdq: list[PdqHash]
    sampling: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def pdq_hex(self) -> list[str]:
        return [h.hex for h in self.pdq]

    def hashes(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "pdq": [{"hash": h.hex, "quality": h.quality, "ts_ms": h.ts_ms} for h in self.pdq],
        }


def image_limits(s: MediaSettings) -> ImageLimits:
    return ImageLimits(
        max_pixels=s.max_image_pixels, max_animation_pixels=s.max_animation_pixels,
        max_source_frames=s.max_source_frames, min_side=s.min_image_side, sample_fps=s.sample_fps,
        max_frames=s.max_frames, max_duration_ms=int(s.max_video_duration_s * 1000),
    )


def video_limits(s: MediaSettings) -> VideoLimits:
    return VideoLimits(
        sample_fps=s.sample_fps, max_frames=s.max_frames, max_duration_ms=int(s.max_video_duration_s * 1000),
        max_pixels=s.max_image_pixels, min_side=s.min_image_side, scene_cut_threshold=s.scene_cut_threshold,
        scene_check_fps=s.scene_check_fps, scene_cut_frame_share=s.scene_cut_frame_share,
    )


def detect_kind(path: str | Path) -> str:
    """'image' or 'video' from magic bytes; MediaError(empty_file / audio_only / unsupported_format)."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head:
        raise MediaError("empty_file", "the file is empty")
    mt = sniff(head)
    if not mt.accepted:
        code = "audio_only" if mt.is_audio else "unsupported_format"
        raise MediaError(code, f"{mt.fmt} is not an accepted image or video format")
    return mt.kind


def prepare_image(path: str | Path, settings: MediaSettings | None = None, sha256: str | None = None) -> Prepared:
    s = settings or MediaSettings()
    decoded = decode_image(Path(path), image_limits(s))
    return Prepared(
        kind="image", fmt=decoded.fmt.lower(), width=decoded.width, height=decoded.height,
        duration_ms=decoded.duration_ms, animated=decoded.animated, sha256=sha256 or sha256_file(path),
        frames=decoded.frames, pdq=frame_hashes(decoded.frames, s.pdq_min_quality),
        sampling={"source_frames": decoded.source_frames, "sampled_frames": len(decoded.frames)},
        notes=list(decoded.notes),
    )


def _video_prepared(video: SampledVideo, sha256: str, pdq: list[PdqHash]) -> Prepared:
    return Prepared(
        kind="video", fmt=video.fmt, width=video.width, height=video.height, duration_ms=video.duration_ms,
        animated=False, sha256=sha256, frames=video.frames, pdq=pdq,
        sampling={
            "codec": video.codec, "fps": round(video.fps, 3), "decoded_frames": video.decoded_frames,
            "sampled_frames": len(video.frames), "cuts_ms": video.cuts_ms, "cuts_dropped": video.cuts_dropped,
        },
    )


def prepare_video(path: str | Path, settings: MediaSettings | None = None, sha256: str | None = None) -> Prepared:
    s = settings or MediaSettings()
    video = sample_video(Path(path), video_limits(s))
    return _video_prepared(video, sha256 or sha256_file(path), frame_hashes(video.frames, s.pdq_min_quality))


def prepare_file(path: str | Path, settings: MediaSettings | None = None, sha256: str | None = None) -> Prepared:
    """Decode/sample and hash `path`; pass `sha256` when the worker already computed it for the exact check."""
    kind = detect_kind(path)
    if kind == "image":
        return prepare_image(path, settings, sha256)
    return prepare_video(path, settings, sha256)


def reuse_policy(s: MediaSettings) -> ReusePolicy | None:
    if not s.reuse_scores:
        return None
    return ReusePolicy(s.reuse_max_mean_diff, s.reuse_max_cell_diff, int(s.reuse_max_age_s * 1000))


def classifiers(s: MediaSettings) -> list[OnnxImageClassifier]:
    return load_classifiers(s.models, s.model_dir, s.onnx_threads)


def score_prepared(prepared: Prepared, settings: MediaSettings | None = None,
                   gated: dict[str, float] | None = None) -> dict[str, Any]:
    """Run the configured classifiers over the frames in batches; returns the JSON-ready result.

    `gated` ({model: gate}, off by default) runs those models only on suspicious frames: see models.vision.scoring
    for why that is not validated.
    """
    s = settings or MediaSettings()
    with Scorer(classifiers(s), s.batch_size, s.early_exit_thresholds, gated, reuse_policy(s)) as scorer:
        for start in range(0, len(prepared.frames), s.batch_size):
            scorer.add(prepared.frames[start:start + s.batch_size])
            if scorer.done():
                break  # the verdict is already a block; scoring the rest only costs time
    return assemble(prepared, scorer, s.segment_thresholds, s.segment_merge_gap_ms)


class _Cancelled(Exception):
    pass


class MediaJob:
    """One file being moderated; for a video, decoding (with PDQ) and scoring run on two threads, overlapped.

    `prepared()` returns as soon as decoding is done, while scoring goes on; `result()` waits for the scores.
    Use it as a context manager: leaving the block stops decoding and scoring that are no longer needed.
    `score=False` only decodes and hashes (a cached verdict or unavailable models make scores moot).
    """

    def __init__(self, path: str | Path, settings: MediaSettings | None = None, sha256: str | None = None, *,
                 score: bool = True, kind: str | None = None, gated: dict[str, float] | None = None) -> None:
        self.path = Path(path)
        self.settings = settings or MediaSettings()
        self.sha256 = sha256
        self.score = score
        self.gated = gated or {}
        self.kind = kind or detect_kind(self.path)
        self._prepared: Prepared | None = None
        self._error: BaseException | None = None
        self._score_error: BaseException | None = None
        self._scorer: Scorer | None = None
        self._decoded = threading.Event()
        self._cancel = threading.Event()
        self._frames: queue.SimpleQueue[Frame | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        if self.kind == "video":
            self._threads.append(threading.Thread(target=self._decode, name="media-decode", daemon=True))
            if score:
                self._threads.append(threading.Thread(target=self._score, name="media-score", daemon=True))
            for thread in self._threads:
                thread.start()

    def __enter__(self) -> MediaJob:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._cancel.set()
        for thread in self._threads:
            thread.join()

    def _decode(self) -> None:
        s = self.settings
        # One FFmpeg thread: the scoring thread and its pool already keep the cores busy.
        limits = dataclasses.replace(video_limits(s), decode_threads=1)
        pdq = PdqCollector(s.pdq_min_quality)

        def on_frame(frame: Frame) -> None:
            if self._cancel.is_set():
                raise _Cancelled
            if self.score:
                self._frames.put(frame)
            pdq.add(frame)

        try:
            video = sample_video(self.path, limits, on_frame)
            self._prepared = _video_prepared(video, self.sha256 or sha256_file(self.path), pdq.hashes)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by prepared()/result()
            self._error = exc
        finally:
            self._frames.put(None)
            self._decoded.set()

    def _next_batch(self) -> list[Frame]:
        """At least one decoded frame (waiting for it), plus whatever else is ready, up to batch_size."""
        first = self._frames.get()
        if first is None:
            return []
        batch = [first]
        while len(batch) < self.settings.batch_size:
            try:
                frame = self._frames.get_nowait()
            except queue.Empty:
                break
            if frame is None:
                self._frames.put(None)  # keep the end marker for the next call
                break
            batch.append(frame)
        return batch

    def _score(self) -> None:
        s = self.settings
        try:
            with Scorer(classifiers(s), s.batch_size, s.early_exit_thresholds, self.gated,
                        reuse_policy(s)) as scorer:
                self._scorer = scorer
                while not scorer.done() and not self._cancel.is_set():
                    batch = self._next_batch()
                    if not batch:
                        break
                    scorer.add(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self._score_error = exc

    def prepared(self) -> Prepared:
        """The decoded, hashed file; raises MediaError for bad input."""
        if self.kind != "video":
            if self._prepared is None:
                self._prepared = prepare_image(self.path, self.settings, self.sha256)
            return self._prepared
        self._decoded.wait()
        if self._error is not None:
            raise self._error
        assert self._prepared is not None
        return self._prepared

    def result(self) -> dict[str, Any]:
        """The JSON-ready result (as score_prepared returns it)."""
        if not self.score:
            raise RuntimeError("this job was started without scoring")
        prepared = self.prepared()
        if self.kind != "video":
            return score_prepared(prepared, self.settings, self.gated)
        for thread in self._threads:
            thread.join()
        if self._score_error is not None:
            raise self._score_error
        assert self._scorer is not None
        s = self.settings
        return assemble(prepared, self._scorer, s.segment_thresholds, s.segment_merge_gap_ms)


def moderate_file(path: str | Path, settings: MediaSettings | None = None) -> dict[str, Any]:
    with MediaJob(path, settings) as job:
        return job.result()


def moderate_image_file(path: str | Path, settings: MediaSettings | None = None) -> dict[str, Any]:
    return score_prepared(prepare_image(path, settings), settings)


def moderate_video_file(path: str | Path, settings: MediaSettings | None = None) -> dict[str, Any]:
    with MediaJob(path, settings, kind="video") as job:
        return job.result()
