"""Owns content hashes of media: SHA-256 of the bytes and PDQ perceptual hashes (with quality) of frames.

PDQ hex is the 256 hash bits, most significant first, as 64 lowercase hex digits; distance is the Hamming
distance of the bits. Matching against lists lives in service.store.hashlists (numpy only, no pdqhash).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pdqhash

from models.vision.decode import Frame

PDQ_BITS = 256
PDQ_HEX_LEN = 64


@dataclass(frozen=True)
class PdqHash:
    hex: str
    quality: int
    ts_ms: int = 0


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bits_to_hex(bits: np.ndarray) -> str:
    packed = np.packbits(np.asarray(bits, dtype=np.uint8).reshape(-1)[:PDQ_BITS])
    return packed.tobytes().hex()


def pdq(rgb: np.ndarray) -> tuple[str, int]:
    """PDQ hash (hex) and quality (0..100; below ~50 the image is too flat for the hash to mean much)."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb, dtype=np.uint8))
    return bits_to_hex(bits), int(quality)


def hamming_hex(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


class PdqCollector:
    """PDQ hashes of frames fed one at a time (while a video decodes), skipping flat frames and exact repeats."""

    def __init__(self, min_quality: int = 0) -> None:
        self.min_quality = min_quality
        self.hashes: list[PdqHash] = []
        self._seen: set[str] = set()

    def add(self, frame: Frame) -> None:
        hex_hash, quality = pdq(frame.rgb)
        if quality < self.min_quality or hex_hash in self._seen:
            return
        self._seen.add(hex_hash)
        self.hashes.append(PdqHash(hex_hash, quality, frame.ts_ms))


def frame_hashes(frames: Iterable[Frame], min_quality: int = 0) -> list[PdqHash]:
    """PDQ hashes of sampled frames, skipping low-quality ones and exact repeats (static shots)."""
    collector = PdqCollector(min_quality)
    for frame in frames:
        collector.add(frame)
    return collector.hashes
