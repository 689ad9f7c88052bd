"""Owns uploaded media on disk: streamed, size-limited writes, per-item paths, retention purge.

Layout: `<blob_dir>/<YYYY-MM-DD>/<item id>.<format>`; day folders make retention a cheap directory delete.
Gateway and workers share the directory (a volume in docker-compose).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


class BlobTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"file exceeds {limit} bytes")
        self.limit = limit


@dataclass
class StoredBlob:
    key: str
    sha256: str
    size: int


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"blob key {key!r} escapes the blob directory")
        return path

    def put(self, source: BinaryIO, name: str, limit: int, chunk: int = 1 << 20) -> StoredBlob:
        """Copy `source` into the store while hashing; nothing is left behind if it is too large."""
        day = time.strftime("%Y-%m-%d", time.gmtime())
        key = f"{day}/{name}"
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            with tmp.open("wb") as out:
                while block := source.read(chunk):
                    size += len(block)
                    if size > limit:
                        raise BlobTooLarge(limit)
                    digest.update(block)
                    out.write(block)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return StoredBlob(key=key, sha256=digest.hexdigest(), size=size)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def purge_older_than(self, age_s: float) -> int:
        """Delete whole day folders older than the retention period; returns how many were removed."""
        if not self.root.exists():
            return 0
        cutoff = time.strftime("%Y-%m-%d", time.gmtime(time.time() - age_s))
        removed = 0
        for day in self.root.iterdir():
            if day.is_dir() and len(day.name) == 10 and day.name < cutoff:
                shutil.rmtree(day, ignore_errors=True)
                removed += 1
        return removed
