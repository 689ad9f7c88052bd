"""Small deterministic upload payloads for the client tests."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image


def jpeg(seed: int = 0, size: int = 48) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class OneShotStream(io.RawIOBase):
    """A readable, non-seekable stream (like a socket or pipe): it can be read exactly once."""

    def __init__(self, data: bytes, chunk: int = 1000) -> None:
        super().__init__()
        self._data = data
        self._pos = 0
        self._chunk = chunk
        self.reads = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._chunk, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        self.reads += 1
        return n
