"""SHA-256 and PDQ: near-duplicates stay within 31 bits, different photos are far apart."""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.vision.decode import Frame, decode_image
from models.vision.hashing import frame_hashes, hamming_hex, pdq, sha256_bytes, sha256_file

PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg", "camera.png", "horse.png")


def _reencode(img: Image.Image, fmt: str, **kw: object) -> np.ndarray:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return decode_image(buf.getvalue()).frames[0].rgb


def _crop(img: Image.Image, frac: float) -> Image.Image:
    w, h = img.size
    dx, dy = int(w * frac), int(h * frac)
    return img.crop((dx, dy, w - dx, h - dy))


VARIANTS: dict[str, Callable[[Image.Image], np.ndarray]] = {
    "jpeg_q30": lambda im: _reencode(im, "JPEG", quality=30),
    "webp_q50": lambda im: _reencode(im, "WEBP", quality=50),
    "half_size": lambda im: np.asarray(im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR)),
    "crop_1pct_each_side": lambda im: np.asarray(_crop(im, 0.01)),
    "resize_crop_reencode": lambda im: _reencode(_crop(im.resize((im.width * 3 // 4, im.height * 3 // 4)), 0.005),
                                                 "JPEG", quality=60),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_near_duplicates_within_threshold(data_dir: Path, variant: str) -> None:
    for name in PHOTOS:
        img = Image.open(data_dir / "skimage" / name).convert("RGB")
        original, quality = pdq(np.asarray(img))
        copy, _ = pdq(VARIANTS[variant](img))
        assert quality >= 50
        assert hamming_hex(original, copy) <= 31, (name, variant)


def test_different_photos_beyond_threshold(data_dir: Path) -> None:
    hashes = {n: pdq(np.asarray(Image.open(data_dir / "skimage" / n).convert("RGB")))[0] for n in PHOTOS}
    for a, b in itertools.combinations(PHOTOS, 2):
        assert hamming_hex(hashes[a], hashes[b]) > 31, (a, b)


def test_hex_format_and_distance_properties(data_dir: Path) -> None:
    h, _ = pdq(np.asarray(Image.open(data_dir / "skimage" / "coffee.png").convert("RGB")))
    assert len(h) == 64 and int(h, 16) >= 0 and h == h.lower()
    flipped = format(int(h, 16) ^ 0b1011, "064x")
    assert hamming_hex(h, h) == 0 and hamming_hex(h, flipped) == 3
    assert hamming_hex(h, format(int(h, 16) ^ (2**256 - 1), "064x")) == 256


def test_sha256(tmp_path: Path) -> None:
    data = b"frame bytes" * 100_000
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert sha256_file(path, chunk=4096) == hashlib.sha256(data).hexdigest() == sha256_bytes(data)


def test_frame_hashes_drop_flat_and_repeated_frames(data_dir: Path) -> None:
    photo = np.asarray(Image.open(data_dir / "skimage" / "astronaut.png").convert("RGB"))
    flat = np.full((64, 64, 3), 128, dtype=np.uint8)
    frames = [Frame(0, photo), Frame(1000, photo.copy()), Frame(2000, flat)]
    hashes = frame_hashes(frames, min_quality=50)
    assert [h.ts_ms for h in hashes] == [0]
    assert len(frame_hashes(frames, min_quality=0)) == 2
