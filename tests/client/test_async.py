"""The asyncio client against the running stack: the same wire format, retries and waiting as the sync one."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
import redis

from moderation_client import (
    Accepted,
    AsyncModerationClient,
    AuthenticationError,
    NotFoundError,
    RetryPolicy,
    UnsupportedMediaError,
    WaitTimeout,
)
from service.store.items import ItemStore
from tests.client.media import jpeg, sha256
from tests.client.support import AsyncRecordingSleep, Fault, error_fault, fault_proxy
from tests.conftest import Stack


def test_async_submit_wait_get_and_find(gateway_url: str, platform: tuple[str, str]) -> None:
    async def scenario() -> None:
        async with AsyncModerationClient(gateway_url, platform[0]) as client:
            subs = await asyncio.gather(*(client.submit_text(f"async text {i}", external_id=f"a-{i}")
                                          for i in range(3)))
            items = await asyncio.gather(*(client.wait(s.id, timeout=120) for s in subs))
            assert [i.id for i in items] == [s.id for s in subs]
            assert all(i.status == "done" and i.scores for i in items)
            assert [m.id for m in await client.find("a-1")] == [subs[1].id]
            assert await client.get(subs[0].id) == items[0]
            final = await client.moderate_text("and one more", timeout=120)
            assert final.is_final and final.status == "done"
            listed = [m.id async for m in client.iter_moderations(page_size=2)]
            # Newest first: the last submission leads; the three concurrent ones follow in their creation order.
            assert listed[0] == final.id and sorted(listed[1:]) == sorted(s.id for s in subs) and len(listed) == 4

    asyncio.run(scenario())


def test_async_errors_are_typed(gateway_url: str, platform: tuple[str, str]) -> None:
    async def scenario() -> None:
        async with AsyncModerationClient(gateway_url, "wrong") as anonymous:
            with pytest.raises(AuthenticationError) as auth:
                await anonymous.get("mod_x")
            assert auth.value.code == "invalid_api_key"
        async with AsyncModerationClient(gateway_url, platform[0]) as client:
            with pytest.raises(NotFoundError) as missing:
                await client.get("mod_nope")
            assert missing.value.code == "moderation_not_found"
            with pytest.raises(UnsupportedMediaError) as wrong:
                await client.submit_video(jpeg(5))
            assert wrong.value.code == "wrong_media_kind"

    asyncio.run(scenario())


def test_async_upload_from_async_stream_is_resent_after_a_lost_answer(gateway_url: str, platform: tuple[str, str],
                                                                      stack: Stack) -> None:
    data = jpeg(6, size=80)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 500):
            yield data[i:i + 500]

    async def scenario() -> tuple[Accepted, list[float]]:
        sleep = AsyncRecordingSleep()
        async with AsyncModerationClient(proxy.url, platform[0], sleep=sleep,
                                         retry=RetryPolicy(rng=random.Random(0))) as client:
            sub = await client.submit_image(chunks(), filename="a.jpg", external_id="async-stream")
        assert isinstance(sub, Accepted)
        return sub, sleep.delays

    with fault_proxy(gateway_url, [Fault("forward_then_drop")]) as proxy:
        sub, delays = asyncio.run(scenario())
    assert len(proxy.seen) == 2 and len(delays) == 1
    assert proxy.seen[0].headers["idempotency-key"] == proxy.seen[1].headers["idempotency-key"]
    item = ItemStore(redis.Redis.from_url(stack.url, decode_responses=True)).get(sub.id)
    assert item is not None and item["content_hash"] == sha256(data)

    async def lookup() -> list[str]:
        async with AsyncModerationClient(gateway_url, platform[0]) as client:
            return [m.id for m in await client.find("async-stream")]

    assert asyncio.run(lookup()) == [sub.id]  # the first attempt's item; the retry created nothing new


def test_async_retry_after_and_wait_deadline(gateway_url: str, platform: tuple[str, str]) -> None:
    now = [0.0]
    sleep = AsyncRecordingSleep()

    async def advancing_sleep(seconds: float) -> None:
        await sleep(seconds)
        now[0] += seconds

    async def scenario() -> None:
        async with AsyncModerationClient(proxy.url, platform[0], sleep=advancing_sleep,
                                         clock=lambda: now[0]) as client:
            sub = await client.submit_image(jpeg(7))  # no media worker here: it stays queued
            with pytest.raises(WaitTimeout) as exc:
                await client.wait(sub.id, timeout=1, poll_interval=0.4, max_poll_interval=2)
            assert exc.value.last_status == "queued"

    with fault_proxy(gateway_url, [error_fault(429, "rate_limited", "4")]) as proxy:
        asyncio.run(scenario())
    assert sleep.delays == pytest.approx([4.0, 0.4, 0.6])  # Retry-After, then polling cut to the 1 s deadline
