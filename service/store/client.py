"""Owns Redis client construction (sync for workers and gateway threads, async for long-poll waits)."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis

from service.core.config import Settings


def sync_client(settings: Settings) -> redis.Redis:
    # Short timeouts: a dead Redis must turn into a fast 503, not a hung request.
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=min(2.0, settings.redis_socket_timeout_s),
        health_check_interval=30,
        decode_responses=True,
        max_connections=256,
    )


def async_client(settings: Settings) -> aioredis.Redis:
    # No socket_timeout here: BLPOP long-polls block up to max_wait_s by design.
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=min(2.0, settings.redis_socket_timeout_s),
        decode_responses=True,
        max_connections=512,
    )


# redis-py types replies as `bytes | str` even with decode_responses=True; these narrow them in one place.
def as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def as_strs(values: Any) -> list[str]:
    return [as_str(v) for v in values or []]


def as_map(mapping: Any) -> dict[str, str]:
    return {as_str(k): as_str(v) for k, v in (mapping or {}).items()}


def as_scored(rows: Any) -> list[tuple[str, float]]:
    return [(as_str(member), float(score)) for member, score in rows or []]
