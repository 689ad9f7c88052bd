"""Owns the per-tenant set of external ids whose current decision removes them (block / human remove).

Other modules (the companion's recommendations) read it to never surface removed content. The verdict store
and the review API keep it up to date; nothing else writes it.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from service.store import keys


def blocked_key(tenant: str) -> str:
    return keys.blocked(tenant)


def mark_blocked(client: redis.Redis, tenant: str, external_id: str) -> None:
    client.sadd(blocked_key(tenant), external_id)


def blocked_among(client: redis.Redis, tenant: str, external_ids: Iterable[str]) -> set[str]:
    """Which of `external_ids` are blocked (one round trip)."""
    ids = list(external_ids)
    if not ids:
        return set()
    flags = client.smismember(blocked_key(tenant), ids)
    return {i for i, f in zip(ids, flags, strict=True) if f}
