"""Builders for the media files the vision tests need (real encoders: Pillow, cv2.VideoWriter, wave)."""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

# Distinct, textured scenes (BGR base colours) so histogram cuts are unambiguous but frames are not flat.
SCENE_COLOURS = ((40, 40, 200), (200, 60, 30), (30, 190, 40), (200, 200, 200), (20, 20, 20))


def photo(data_dir: Path, name: str = "astronaut.png") -> np.ndarray:
    return np.asarray(Image.open(data_dir / "skimage" / name).convert("RGB"))


def encode(rgb: np.ndarray | Image.Image, fmt: str, **kw: object) -> bytes:
    img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def scene_frame(colour: Sequence[int], size: tuple[int, int], seed: int) -> np.ndarray:
    w, h = size
    rng = np.random.default_rng(seed)
    base = np.empty((h, w, 3), dtype=np.int16)
    base[:] = colour
    noise = rng.integers(-12, 13, size=(h, w, 1), dtype=np.int16)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def write_video(path: Path, scenes: Sequence[tuple[float, int]], *, fps: float = 10.0,
                size: tuple[int, int] = (160, 120), fourcc: str = "mp4v",
                frame_fn: object = None) -> Path:
    """Scenes are (duration_s, colour index); every frame gets fresh noise, so only cuts change histograms."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"cannot write {fourcc} to {path}"
    n = 0
    for duration, colour in scenes:
        for _ in range(round(duration * fps)):
            writer.write(scene_frame(SCENE_COLOURS[colour], size, n))
            n += 1
    writer.release()
    return path


def write_wav(path: Path, seconds: float = 1.0, rate: int = 8000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * 440 * t) * 12000).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width×height with one tiny IDAT: what a decompression bomb looks like."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def animated(frames: Sequence[np.ndarray], durations: Sequence[int], fmt: str = "GIF") -> bytes:
    imgs = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    imgs[0].save(buf, format=fmt, save_all=True, append_images=imgs[1:], duration=list(durations), loop=0)
    return buf.getvalue()


def write_photo_clip(path: Path, data_dir: Path, shots: Sequence[tuple[float, str, bool]], *, fps: float = 10.0,
                     size: tuple[int, int] = (320, 180)) -> Path:
    """Static shots of real photos, (duration_s, photo, patch): `patch` pastes a 40×40 block into a corner (a
    changed frame that is not a scene cut). Every frame gets fresh seeded sensor noise (σ = 2)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    assert writer.isOpened(), f"cannot write mp4v to {path}"
    rng = np.random.default_rng(7)
    for duration, name, patch in shots:
        base = cv2.resize(cv2.cvtColor(photo(data_dir, name), cv2.COLOR_RGB2BGR), size, interpolation=cv2.INTER_AREA)
        if patch:
            base = base.copy()
            base[10:50, 10:50] = (30, 200, 30)
        for _ in range(round(duration * fps)):
            noise = rng.normal(0, 2, base.shape)
            writer.write(np.clip(base + noise, 0, 255).astype(np.uint8))
    writer.release()
    return path
