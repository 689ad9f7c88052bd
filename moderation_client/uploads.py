"""Owns turning what a caller has (a path, bytes, an open file, a stream of chunks) into a replayable upload.

A retry must send the same bytes again, so every source is made re-readable once: paths are reopened, seekable
files are rewound to where they started, and one-shot streams (a socket, a pipe, a generator of chunks) are
spooled once to memory and, past `SPOOL_MEMORY_BYTES`, to a temporary file. Caller-owned files are never closed.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import AsyncIterable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Union, cast

SPOOL_MEMORY_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024

# Anything `Upload` accepts from sync code (the async client also takes an `AsyncIterable[bytes]`).
UploadSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Iterable[bytes], "Upload"]


class Upload:
    """A file to upload, readable from the start as many times as the retries need."""

    def __init__(self, source: UploadSource | AsyncIterable[bytes], *, filename: str | None = None,
                 content_type: str = "application/octet-stream") -> None:
        if isinstance(source, Upload):
            raise TypeError("source is already an Upload")
        self.content_type = content_type
        self._path: Path | None = None
        self._data: bytes | None = None
        self._file: IO[bytes] | None = None
        self._start = 0
        self._chunks: Iterable[bytes] | None = None
        self._achunks: AsyncIterable[bytes] | None = None
        self._spool: IO[bytes] | None = None
        if isinstance(source, str | os.PathLike):
            self._path = Path(source)
            default_name = self._path.name
        elif isinstance(source, bytes | bytearray | memoryview):
            self._data = bytes(source)
            default_name = "upload"
        elif hasattr(source, "read"):
            self._file = source  # type: ignore[assignment]
            default_name = os.path.basename(str(getattr(source, "name", "") or "")) or "upload"
            if _seekable(self._file):
                self._start = self._file.tell()  # type: ignore[union-attr]
        elif isinstance(source, AsyncIterable):
            self._achunks = source
            default_name = "upload"
        elif isinstance(source, Iterable):
            self._chunks = source
            default_name = "upload"
        else:
            raise TypeError(f"cannot upload a {type(source).__name__}: pass a path, bytes, a binary file or chunks")
        self.filename = filename or default_name

    @classmethod
    def of(cls, source: UploadSource | AsyncIterable[bytes], filename: str | None = None) -> Upload:
        """`source` itself when it is already an Upload, else a new one."""
        if isinstance(source, Upload):
            return source
        return cls(source, filename=filename)

    @property
    def needs_async_spool(self) -> bool:
        return self._achunks is not None and self._spool is None

    async def aspool(self) -> None:
        """Read an async stream of chunks into the spool (the async client calls this before the first attempt)."""
        if self._achunks is None or self._spool is not None:
            return
        spool = _new_spool()
        async for chunk in self._achunks:
            spool.write(chunk)
        self._spool = spool

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """A binary file positioned at the start of the content; closed afterwards only if this class opened it."""
        if self._path is not None:
            with self._path.open("rb") as fh:
                yield fh
            return
        if self._data is not None:
            yield io.BytesIO(self._data)
            return
        if self._file is not None and _seekable(self._file):
            self._file.seek(self._start)
            yield cast(IO[bytes], _FromOffset(self._file, self._start))
            return
        if self._spool is None:
            if self._achunks is not None:
                raise RuntimeError("an async stream must be spooled with `await upload.aspool()` first")
            self._spool = _new_spool()
            if self._file is not None:  # one-shot file: read it once, to the end
                while chunk := self._file.read(_CHUNK):
                    self._spool.write(chunk)
            else:
                for chunk in self._chunks or ():
                    self._spool.write(chunk)
        self._spool.seek(0)
        yield cast(IO[bytes], _FromOffset(self._spool, 0))

    def close(self) -> None:
        """Drop the spool (if any); the caller's own file stays open."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def multipart(self, fh: IO[bytes]) -> dict[str, Any]:
        return {"file": (self.filename, fh, self.content_type)}


class _FromOffset(io.RawIOBase):
    """A view of a file from `start` on: httpx rewinds uploads to 0 and sizes them from `fileno()`, which would
    send a caller's file from its very beginning, and roll an in-memory spool over to disk."""

    def __init__(self, fh: IO[bytes], start: int) -> None:
        super().__init__()
        self._fh = fh
        self._start = start

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._fh.read(-1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        data = self._fh.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            offset += self._start
        return self._fh.seek(offset, whence) - self._start

    def tell(self) -> int:
        return self._fh.tell() - self._start

    def close(self) -> None:
        # The underlying file belongs to the caller (or to the Upload's spool): closing the view leaves it open.
        super().close()


def _new_spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, mode="w+b")  # noqa: SIM115 - closed by Upload


def _seekable(fh: Any) -> bool:
    try:
        return bool(fh.seekable())
    except (AttributeError, OSError, ValueError):
        return False
