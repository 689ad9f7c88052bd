"""Tenant hash lists on a real (private) Redis: CRUD, SHA-256 before PDQ, distance threshold, isolation."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import redis
from PIL import Image

from models.vision.decode import decode_image
from models.vision.hashing import pdq, sha256_bytes
from service.store import hashlists
from service.store.hashlists import HashListError, HashMatcher


@pytest.fixture()
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


def _photo_hash(data_dir: Path, name: str) -> str:
    return pdq(np.asarray(Image.open(data_dir / "skimage" / name).convert("RGB")))[0]


def test_add_list_remove_delete(client: redis.Redis) -> None:
    sha = "ab" * 32
    assert hashlists.add_hashes(client, "t1", "csam-ref", "sha256", [sha.upper(), sha]) == 1
    assert hashlists.add_hashes(client, "t1", "csam-ref", "pdq", ["0f" * 32]) == 1
    assert hashlists.list_names(client, "t1") == ["csam-ref"]
    assert hashlists.list_hashes(client, "t1", "csam-ref") == {"sha256": [sha], "pdq": ["0f" * 32]}
    assert hashlists.remove_hashes(client, "t1", "csam-ref", "sha256", [sha]) == 1
    assert hashlists.list_hashes(client, "t1", "csam-ref")["sha256"] == []
    assert hashlists.delete_list(client, "t1", "csam-ref") is True
    assert hashlists.list_names(client, "t1") == []


@pytest.mark.parametrize(
    ("kind", "value", "code"),
    [("sha256", "xyz", "invalid_hash"), ("pdq", "ab" * 31, "invalid_hash"), ("md5", "ab" * 32, "invalid_hash_kind")],
)
def test_invalid_hashes_rejected(client: redis.Redis, kind: str, value: str, code: str) -> None:
    with pytest.raises(HashListError) as info:
        hashlists.add_hashes(client, "t1", "l", kind, [value])  # type: ignore[arg-type]
    assert info.value.code == code


def test_invalid_list_name(client: redis.Redis) -> None:
    with pytest.raises(HashListError) as info:
        hashlists.add_hashes(client, "t1", "bad name:*", "sha256", ["ab" * 32])
    assert info.value.code == "invalid_list_name"


def test_near_duplicate_matches_and_other_photo_does_not(client: redis.Redis, data_dir: Path) -> None:
    original = Image.open(data_dir / "skimage" / "chelsea.png").convert("RGB")
    hashlists.add_hashes(client, "t1", "known-bad", "pdq", [pdq(np.asarray(original))[0]])
    buf = io.BytesIO()
    original.resize((300, 200)).crop((2, 2, 298, 198)).save(buf, format="JPEG", quality=50)
    copy = decode_image(buf.getvalue()).frames[0].rgb
    matcher = HashMatcher(client)
    found = matcher.match("t1", sha256_bytes(buf.getvalue()), [pdq(copy)[0]])
    assert found is not None and found.kind == "pdq" and found.list_name == "known-bad"
    assert 0 < found.distance <= 31
    assert matcher.match("t1", None, [_photo_hash(data_dir, "coffee.png")]) is None


def test_sha256_checked_before_pdq_and_best_pdq_wins(client: redis.Redis, data_dir: Path) -> None:
    h = _photo_hash(data_dir, "astronaut.png")
    near = format(int(h, 16) ^ 0b111, "064x")  # 3 bits away
    hashlists.add_hashes(client, "t1", "a-pdq", "pdq", [format(int(h, 16) ^ 0xFFFF, "064x")])  # 16 bits away
    hashlists.add_hashes(client, "t1", "b-pdq", "pdq", [near])
    hashlists.add_hashes(client, "t1", "z-sha", "sha256", ["cd" * 32])
    matcher = HashMatcher(client)
    by_sha = matcher.match("t1", "CD" * 32, [h])
    assert by_sha is not None and (by_sha.kind, by_sha.list_name, by_sha.distance) == ("sha256", "z-sha", 0)
    by_pdq = matcher.match("t1", "ef" * 32, [_photo_hash(data_dir, "coffee.png"), h])
    assert by_pdq is not None and (by_pdq.list_name, by_pdq.distance, by_pdq.query_hash) == ("b-pdq", 3, h)


def test_threshold_boundary(client: redis.Redis) -> None:
    base = "00" * 32
    hashlists.add_hashes(client, "t1", "l", "pdq", [base])
    matcher = HashMatcher(client)
    at_31 = format((1 << 31) - 1, "064x")
    at_32 = format((1 << 32) - 1, "064x")
    found = matcher.match("t1", None, [at_31])
    assert found is not None and found.distance == 31
    assert matcher.match("t1", None, [at_32]) is None


def test_tenants_isolated_and_cache_follows_changes(client: redis.Redis) -> None:
    h = "a5" * 32
    matcher = HashMatcher(client)
    hashlists.add_hashes(client, "t1", "l", "pdq", [h])
    assert matcher.match("t2", None, [h]) is None
    assert matcher.match("t1", None, [h]) is not None
    hashlists.remove_hashes(client, "t1", "l", "pdq", [h])
    assert matcher.match("t1", None, [h]) is None  # cached matrix dropped after the version bump
    hashlists.add_hashes(client, "t1", "l", "pdq", [h])
    assert hashlists.match(client, "t1", None, [h]) is not None


def test_bytes_client_works_too(redis_url: str) -> None:
    raw = redis.Redis.from_url(redis_url)  # decode_responses=False, as some callers use
    hashlists.add_hashes(raw, "t1", "l", "sha256", ["ee" * 32])
    assert hashlists.list_names(raw, "t1") == ["l"]
    found = HashMatcher(raw).match("t1", "ee" * 32)
    assert found is not None and found.kind == "sha256"


def test_many_hashes_brute_force(client: redis.Redis) -> None:
    rng = np.random.default_rng(3)
    refs = [rng.bytes(32).hex() for _ in range(5000)]
    hashlists.add_hashes(client, "t1", "big", "pdq", refs)
    target = refs[4321]
    query = format(int(target, 16) ^ (1 << 200) ^ (1 << 5), "064x")
    found = HashMatcher(client).match("t1", None, [query])
    assert found is not None and found.list_hash == target and found.distance == 2
