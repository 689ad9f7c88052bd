"""Owns Redis client construction (sync for workers and gateway threads, async for long-poll waits)."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from service.config import Settings


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
