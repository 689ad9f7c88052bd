"""Owns per-tenant named hash lists in Redis (SHA-256 exact, PDQ perceptual) and matching against them.

Keys (all under mod:hl:{tenant}):
  :lists               SET of list names
  :l:{name}:sha256     SET of lowercase hex SHA-256
  :l:{name}:pdq        SET of lowercase hex PDQ (64 digits)
  :version             INCR on every change, so workers can reuse a decoded PDQ matrix until it changes
Matching is a brute-force XOR + popcount over the tenant's PDQ matrix (chunked, cached per list version):
fine for per-tenant lists up to ~10^5 entries; a multi-index hash would be the next step beyond that.
Torch/cv2-free: the gateway's admin API and the workers both use it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import redis

from service.store import keys

HashKind = Literal["sha256", "pdq"]
PDQ_MATCH_DISTANCE = 31  # ThreatExchange's confident-match threshold for PDQ
_HEX = {"sha256": re.compile(r"^[0-9a-f]{64}$"), "pdq": re.compile(r"^[0-9a-f]{64}$")}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class HashListError(ValueError):
    """Bad list name or hash; the API maps it to 422 with `code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Match:
    list_name: str
    kind: HashKind
    list_hash: str
    distance: int
    query_hash: str
    # PDQ matches: which query hashes matched (positions in the `pdq_hashes` passed to `match`; for a video, its
    # frames in order): the best one first, then every other within the distance, so a verdict can name frames.
    query_indexes: tuple[int, ...] = ()


def _base(tenant: str) -> str:
    return keys.hashlist(tenant)


def _set_key(tenant: str, name: str, kind: HashKind) -> str:
    return f"{_base(tenant)}:l:{name}:{kind}"


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def normalise(kind: HashKind, value: str) -> str:
    """Lowercase, validated hex; raises HashListError(invalid_hash)."""
    if kind not in _HEX:
        raise HashListError("invalid_hash_kind", f"hash kind must be sha256 or pdq, not {kind!r}")
    hex_value = value.strip().lower()
    if not _HEX[kind].match(hex_value):
        raise HashListError("invalid_hash", f"{kind} hash must be 64 hex digits")
    return hex_value


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise HashListError("invalid_list_name", "list names are 1-64 of [A-Za-z0-9_.-]")
    return name


def add_hashes(client: redis.Redis, tenant: str, name: str, kind: HashKind, values: Iterable[str]) -> int:
    """Add hashes to a list (created on first add); returns how many were new."""
    check_name(name)
    clean = sorted({normalise(kind, v) for v in values})
    if not clean:
        return 0
    pipe = client.pipeline(transaction=True)
    pipe.sadd(f"{_base(tenant)}:lists", name)
    pipe.sadd(_set_key(tenant, name, kind), *clean)
    pipe.incr(f"{_base(tenant)}:version")
    return int(pipe.execute()[1])


def remove_hashes(client: redis.Redis, tenant: str, name: str, kind: HashKind, values: Iterable[str]) -> int:
    check_name(name)
    clean = sorted({normalise(kind, v) for v in values})
    if not clean:
        return 0
    pipe = client.pipeline(transaction=True)
    pipe.srem(_set_key(tenant, name, kind), *clean)
    pipe.incr(f"{_base(tenant)}:version")
    return int(pipe.execute()[0])


def delete_list(client: redis.Redis, tenant: str, name: str) -> bool:
    check_name(name)
    pipe = client.pipeline(transaction=True)
    pipe.srem(f"{_base(tenant)}:lists", name)
    pipe.delete(_set_key(tenant, name, "sha256"), _set_key(tenant, name, "pdq"))
    pipe.incr(f"{_base(tenant)}:version")
    return bool(pipe.execute()[0])


def list_names(client: redis.Redis, tenant: str) -> list[str]:
    return sorted(_s(v) for v in client.smembers(f"{_base(tenant)}:lists"))


def list_hashes(client: redis.Redis, tenant: str, name: str) -> dict[str, list[str]]:
    check_name(name)
    return {
        kind: sorted(_s(v) for v in client.smembers(_set_key(tenant, name, kind)))
        for kind in ("sha256", "pdq")
    }


def hex_to_matrix(hashes: list[str]) -> np.ndarray:
    """N×32 uint8 rows of PDQ bits (N may be 0)."""
    if not hashes:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(hashes)), dtype=np.uint8).reshape(len(hashes), 32)


def hamming_matrix(queries: np.ndarray, refs: np.ndarray, chunk_bytes: int = 32 << 20) -> np.ndarray:
    """Q×N Hamming distances between rows of two N×32 uint8 bit matrices.

    Works on 4×uint64 words with numpy's popcount; queries go in chunks so the Q×N×4 intermediate stays
    around `chunk_bytes` (300 video-frame hashes against 10^5 list entries would otherwise need ~1 GB).
    """
    q64 = np.ascontiguousarray(queries).view(np.uint64)
    r64 = np.ascontiguousarray(refs).view(np.uint64)
    out = np.empty((len(q64), len(r64)), dtype=np.int32)
    step = max(1, chunk_bytes // max(1, r64.nbytes))
    for start in range(0, len(q64), step):
        xor = np.bitwise_xor(q64[start:start + step, None, :], r64[None, :, :])
        out[start:start + step] = np.bitwise_count(xor).sum(axis=2, dtype=np.int32)
    return out


@dataclass
class _PdqIndex:
    version: str
    names: list[str]
    hashes: list[str]
    matrix: np.ndarray


class HashMatcher:
    """Matches content against a tenant's lists; caches each tenant's PDQ matrix until its version changes."""

    def __init__(self, client: redis.Redis, max_distance: int = PDQ_MATCH_DISTANCE) -> None:
        self.client = client
        self.max_distance = max_distance
        self._cache: dict[str, _PdqIndex] = {}
        self._lock = threading.Lock()

    def _pdq_index(self, tenant: str, names: list[str]) -> _PdqIndex:
        version = _s(self.client.get(f"{_base(tenant)}:version") or "0")
        with self._lock:
            cached = self._cache.get(tenant)
            if cached is not None and cached.version == version:
                return cached
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.smembers(_set_key(tenant, name, "pdq"))
        owners: list[str] = []
        hashes: list[str] = []
        for name, members in zip(names, pipe.execute(), strict=True):
            for member in sorted(_s(m) for m in members):
                owners.append(name)
                hashes.append(member)
        index = _PdqIndex(version, owners, hashes, hex_to_matrix(hashes))
        with self._lock:
            self._cache[tenant] = index
        return index

    def match(self, tenant: str, sha256: str | None, pdq_hashes: Iterable[str] = ()) -> Match | None:
        """Exact SHA-256 first (cheap, certain), then the closest PDQ within max_distance; None if no hit."""
        names = list_names(self.client, tenant)
        if not names:
            return None
        if sha256:
            digest = normalise("sha256", sha256)
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.sismember(_set_key(tenant, name, "sha256"), digest)
            for name, hit in zip(names, pipe.execute(), strict=True):
                if hit:
                    return Match(name, "sha256", digest, 0, digest)
        queries = [normalise("pdq", h) for h in pdq_hashes]
        if not queries:
            return None
        index = self._pdq_index(tenant, names)
        if not index.hashes:
            return None
        dist = hamming_matrix(hex_to_matrix(queries), index.matrix)
        q, r = np.unravel_index(int(np.argmin(dist)), dist.shape)
        best = int(dist[q, r])
        if best > self.max_distance:
            return None
        within = [int(i) for i in np.flatnonzero(dist.min(axis=1) <= self.max_distance) if int(i) != int(q)]
        return Match(index.names[r], "pdq", index.hashes[r], best, queries[q], (int(q), *within))


def match(client: redis.Redis, tenant: str, sha256: str | None, pdq_hashes: Iterable[str] = (),
          max_distance: int = PDQ_MATCH_DISTANCE) -> Match | None:
    """One-off match without a cache; workers should keep one HashMatcher per process instead."""
    return HashMatcher(client, max_distance).match(tenant, sha256, pdq_hashes)
