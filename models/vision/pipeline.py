"""Owns the media moderation flow the worker calls: decode/sample → hashes → scores → segments → result dict.

Steps so the worker can consult hash lists before decoding (exact) and before any model runs (PDQ):
    sha = sha256_file(path); matcher.match(tenant, sha)  # known file: block without even decoding it
    prepared = prepare_file(path, settings, sha)       # MediaError on bad input; has .hashes()
    match = matcher.match(tenant, None, prepared.pdq_hex())   # service.store.hashlists.HashMatcher
    result = score_prepared(prepared, settings) if match is None else ...
`moderate_file` / `moderate_image_file` / `moderate_video_file` do both steps in one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.media_settings import MediaSettings
from common.sniff import HEAD_BYTES, sniff
from models.vision.classifiers import CATEGORIES, combine, load_classifiers
from models.vision.decode import Frame, ImageLimits, decode_image
from models.vision.errors import MediaError
from models.vision.hashing import PdqHash, frame_hashes, sha256_file
from models.vision.segments import ScoredFrame, crosses, merge_segments
from models.vision.video import VideoLimits, sample_video

__all__ = ["MediaError", "Prepared", "detect_kind", "moderate_file", "moderate_image_file", "moderate_video_file",
           "prepare_file", "prepare_image", "prepare_video", "score_prepared", "sha256_file"]


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


def prepare_video(path: str | Path, settings: MediaSettings | None = None, sha256: str | None = None) -> Prepared:
    s = settings or MediaSettings()
    video = sample_video(Path(path), video_limits(s))
    return Prepared(
        kind="video", fmt=video.fmt, width=video.width, height=video.height, duration_ms=video.duration_ms,
        animated=False, sha256=sha256 or sha256_file(path), frames=video.frames,
        pdq=frame_hashes(video.frames, s.pdq_min_quality),
        sampling={
            "codec": video.codec, "fps": round(video.fps, 3), "decoded_frames": video.decoded_frames,
            "sampled_frames": len(video.frames), "cuts_ms": video.cuts_ms, "cuts_dropped": video.cuts_dropped,
        },
    )


def prepare_file(path: str | Path, settings: MediaSettings | None = None, sha256: str | None = None) -> Prepared:
    """Decode/sample and hash `path`; pass `sha256` when the worker already computed it for the exact check."""
    kind = detect_kind(path)
    if kind == "image":
        return prepare_image(path, settings, sha256)
    return prepare_video(path, settings, sha256)


def score_prepared(prepared: Prepared, settings: MediaSettings | None = None) -> dict[str, Any]:
    """Run the configured classifiers over the frames in batches; returns the JSON-ready result."""
    s = settings or MediaSettings()
    models = load_classifiers(s.models, s.model_dir, s.onnx_threads)
    frames_out: list[dict[str, Any]] = []
    scored: list[ScoredFrame] = []
    early: dict[str, Any] | None = None
    for start in range(0, len(prepared.frames), s.batch_size):
        batch = prepared.frames[start:start + s.batch_size]
        rgbs = [f.rgb for f in batch]
        per_model = {m.name: m.predict(rgbs, s.batch_size) for m in models}
        for i, frame in enumerate(batch):
            model_scores = {name: preds[i] for name, preds in per_model.items()}
            combined = combine(model_scores)
            frames_out.append({"ts_ms": frame.ts_ms, "index": frame.index, "reasons": list(frame.reasons),
                               "scores": combined, "model_scores": model_scores})
            scored.append(ScoredFrame(frame.ts_ms, combined))
            hit = crosses(combined, s.early_exit_thresholds) if s.early_exit_thresholds else None
            if hit and early is None:
                early = {"category": hit, "ts_ms": frame.ts_ms, "frames_scored": len(frames_out)}
        if early is not None:
            break  # the verdict is already a block; scoring the rest only costs time
    segments = merge_segments(scored, s.segment_thresholds, merge_gap_ms=s.segment_merge_gap_ms,
                              duration_ms=prepared.duration_ms or None)
    scores = {c: max((f["scores"][c] for f in frames_out), default=0.0) for c in CATEGORIES}
    model_max = {
        m.name: {c: max((f["model_scores"][m.name][c] for f in frames_out), default=0.0) for c in m.categories}
        for m in models
    }
    return {
        "kind": prepared.kind, "format": prepared.fmt, "width": prepared.width, "height": prepared.height,
        "duration_ms": prepared.duration_ms, "animated": prepared.animated,
        "hashes": prepared.hashes(),
        "models": [m.info() for m in models],
        "scores": scores, "model_scores": model_max,
        "frames": frames_out, "segments": [seg.as_dict() for seg in segments],
        "early_exit": early, "sampling": prepared.sampling, "notes": prepared.notes,
    }


def moderate_file(path: str | Path, settings: MediaSettings | None = None) -> dict[str, Any]:
    return score_prepared(prepare_file(path, settings), settings)


def moderate_image_file(path: str | Path, settings: MediaSettings | None = None) -> dict[str, Any]:
    return score_prepared(prepare_image(path, settings), settings)


def moderate_video_file(path: str | Path, settings: MediaSettings | None = None) -> dict[str, Any]:
    return score_prepared(prepare_video(path, settings), settings)
