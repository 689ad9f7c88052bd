"""Retries: one Idempotency-Key per logical call, `Retry-After` honoured, only idempotent-safe repeats.

Faults come from a loopback proxy in front of the real gateway; waits are observed through an injected sleep
(the requested delays are recorded, never spent or timed).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from moderation_client import (
    Accepted,
    ModerationClient,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    ServiceUnavailableError,
    TransportError,
    parse_retry_after,
)
from tests.client.support import Fault, RecordingSleep, error_fault, fault_proxy, free_port, serve_app
from tests.conftest import Stack, new_key


def submit_via(proxy_url: str, key: str, sleep: RecordingSleep) -> ModerationClient:
    """A client with the default policy and a seeded jitter source."""
    return ModerationClient(proxy_url, key, sleep=sleep, retry=RetryPolicy(rng=random.Random(0)))


def test_lost_answer_is_retried_with_the_same_key_and_creates_one_item(
        gateway_url: str, platform: tuple[str, str]) -> None:
    # The gateway handles the first request (the item is created) but its answer is lost on the way back.
    sleep = RecordingSleep()
    with fault_proxy(gateway_url, [Fault("forward_then_drop")]) as proxy, \
            submit_via(proxy.url, platform[0], sleep) as client:
        sub = client.submit_text("lost answer", external_id="lost-1")
    posts = [s for s in proxy.seen if s.method == "POST"]
    assert len(posts) == 2 and posts[0].body == posts[1].body
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert len(sleep.delays) == 1 and 0.25 <= sleep.delays[0] <= 0.5  # first backoff: half to all of 0.5 s
    with ModerationClient(gateway_url, platform[0]) as direct:
        assert [m.id for m in direct.find("lost-1")] == [sub.id]  # one item, not two


def test_each_logical_call_gets_its_own_key(gateway_url: str, platform: tuple[str, str]) -> None:
    sleep = RecordingSleep()
    with fault_proxy(gateway_url, []) as proxy, submit_via(proxy.url, platform[0], sleep) as client:
        a = client.submit_text("same text")
        b = client.submit_text("same text")
    assert a.id != b.id  # two calls are two items, even with identical bodies
    assert len({s.headers["idempotency-key"] for s in proxy.seen}) == 2


@pytest.mark.parametrize("code", ["queue_unavailable", "store_unavailable", "queue_full"])
def test_503_with_retry_after_is_waited_then_retried(code: str, gateway_url: str, platform: tuple[str, str]) -> None:
    sleep = RecordingSleep()
    with fault_proxy(gateway_url, [error_fault(503, code, "2")]) as proxy, \
            submit_via(proxy.url, platform[0], sleep) as client:
        sub = client.submit_text("after a 503", external_id=f"r503-{code}")
    assert sleep.delays == [2.0]
    assert len({s.headers["idempotency-key"] for s in proxy.seen}) == 1 and len(proxy.seen) == 2
    with ModerationClient(gateway_url, platform[0]) as direct:
        assert [m.id for m in direct.find(f"r503-{code}")] == [sub.id]


def test_429_retry_after_is_honoured(gateway_url: str, platform: tuple[str, str]) -> None:
    sleep = RecordingSleep()
    with fault_proxy(gateway_url, [error_fault(429, "rate_limited", "7")]) as proxy, \
            submit_via(proxy.url, platform[0], sleep) as client:
        sub = client.submit_text("after a 429")
    assert sleep.delays == [7.0]  # exactly what the server asked for, no backoff or jitter on top
    assert isinstance(sub, Accepted) and len(proxy.seen) == 2
    assert proxy.seen[0].headers["idempotency-key"] == proxy.seen[1].headers["idempotency-key"]


def test_retry_after_longer_than_allowed_is_raised_not_slept(gateway_url: str, platform: tuple[str, str]) -> None:
    sleep = RecordingSleep()
    with fault_proxy(gateway_url, [error_fault(429, "rate_limited", "3600")]) as proxy, \
            submit_via(proxy.url, platform[0], sleep) as client, pytest.raises(RateLimitedError) as exc:
        client.submit_text("too long to wait")
    assert exc.value.retry_after == 3600.0 and exc.value.code == "rate_limited"
    assert sleep.delays == [] and len(proxy.seen) == 1


def test_gives_up_after_max_attempts_with_capped_jittered_backoff(gateway_url: str,
                                                                  platform: tuple[str, str]) -> None:
    sleep = RecordingSleep()
    faults = [error_fault(503, "queue_full") for _ in range(4)]
    policy = RetryPolicy(max_attempts=4, backoff_base_s=1.0, backoff_max_s=3.0, rng=random.Random(1))
    with fault_proxy(gateway_url, list(faults)) as proxy, \
            ModerationClient(proxy.url, platform[0], sleep=sleep, retry=policy) as client, \
            pytest.raises(ServiceUnavailableError) as exc:
        client.submit_text("never accepted")
    assert exc.value.code == "queue_full" and len(proxy.seen) == 4
    assert len({s.headers["idempotency-key"] for s in proxy.seen}) == 1
    ceilings = [1.0, 2.0, 3.0]  # 1, 2, then 4 capped at 3
    assert len(sleep.delays) == 3
    assert all(c / 2 <= d <= c for d, c in zip(sleep.delays, ceilings, strict=True)), sleep.delays


def test_non_idempotent_call_is_not_repeated_after_a_lost_answer(gateway_url: str,
                                                                 platform: tuple[str, str]) -> None:
    # A review decision is not deduplicated by the server: after a dropped connection the client cannot know
    # whether it was applied, so it reports the failure instead of deciding twice.
    sleep = RecordingSleep()
    with fault_proxy(gateway_url, [Fault("drop")]) as proxy, submit_via(proxy.url, platform[0], sleep) as client, \
            pytest.raises(TransportError) as exc:
        client.decide("mod_whatever", "approve")
    assert exc.value.attempts == 1 and len(proxy.seen) == 1 and sleep.delays == []
    assert proxy.seen[0].headers["idempotency-key"].startswith("mc-")  # still carried


def test_reads_are_repeated_after_a_lost_answer(gateway_url: str, platform: tuple[str, str]) -> None:
    sleep = RecordingSleep()
    with fault_proxy(gateway_url, [Fault("drop")]) as proxy, submit_via(proxy.url, platform[0], sleep) as client, \
            pytest.raises(NotFoundError):
        client.get("mod_missing")
    assert len(proxy.seen) == 2 and len(sleep.delays) == 1


def test_server_errors_are_not_retried(gateway_url: str, platform: tuple[str, str]) -> None:
    sleep = RecordingSleep()
    with fault_proxy(gateway_url, [error_fault(500, "internal_error")]) as proxy, \
            submit_via(proxy.url, platform[0], sleep) as client, pytest.raises(ServerError) as exc:
        client.submit_text("boom")
    assert exc.value.code == "internal_error" and len(proxy.seen) == 1 and sleep.delays == []


def test_connection_refused_is_retried_even_for_non_idempotent_calls() -> None:
    sleep = RecordingSleep()
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: the request never left the client
    with ModerationClient(closed, "k", sleep=sleep, retry=RetryPolicy(rng=random.Random(2))) as client, \
            pytest.raises(TransportError) as exc:
        client.decide("mod_x", "approve")
    assert exc.value.attempts == 4 and len(sleep.delays) == 3
    assert isinstance(exc.value.__cause__, httpx.ConnectError)


@pytest.fixture()
def strict_gateway(stack: Stack) -> Iterator[str]:
    """A second gateway on the same store whose submit bucket holds 1 request and refills every 100 s."""
    from service.gateway.app import create_app

    settings = stack.settings.model_copy(update={"ratelimit_submit_key_per_s": 0.01, "ratelimit_submit_key_burst": 1})
    with serve_app(create_app(settings)) as url:
        yield url


def test_real_rate_limit_answer_maps_to_rate_limited(strict_gateway: str, api: TestClient) -> None:
    headers, _ = new_key(api)
    sleep = RecordingSleep()
    with ModerationClient(strict_gateway, headers["Authorization"].split()[1], sleep=sleep) as client:
        client.submit_text("first fits the bucket")
        with pytest.raises(RateLimitedError) as exc:
            client.submit_text("second does not")
    # The gateway asks for ~100 s, more than the default 60 s the client will block for: raised, not slept.
    assert exc.value.status == 429 and exc.value.code == "rate_limited"
    assert exc.value.retry_after is not None and exc.value.retry_after > 60 and sleep.delays == []


def test_policy_decisions() -> None:
    policy = RetryPolicy(max_attempts=3, rng=random.Random(0))
    refused = httpx.ConnectError("refused")
    lost = httpx.ReadTimeout("lost")
    assert policy.delay_after_error(1, refused, idempotent=False) is not None
    assert policy.delay_after_error(1, lost, idempotent=False) is None
    assert policy.delay_after_error(1, lost, idempotent=True) is not None
    assert policy.delay_after_error(3, refused, idempotent=True) is None  # attempts used up
    assert policy.delay_after_status(1, 429, "rate_limited", 3.0, idempotent=False) == 3.0
    assert policy.delay_after_status(1, 503, "queue_full", None, idempotent=False) is not None
    assert policy.delay_after_status(1, 503, "store_unavailable", 5.0, idempotent=False) is None
    assert policy.delay_after_status(1, 503, "store_unavailable", 5.0, idempotent=True) == 5.0
    assert policy.delay_after_status(1, 502, None, None, idempotent=True) is not None
    for status, code in [(500, "internal_error"), (400, "malformed_json"), (409, "idempotency_conflict"),
                         (422, "validation_error")]:
        assert policy.delay_after_status(1, status, code, None, idempotent=True) is None


def test_retry_after_parsing() -> None:
    assert parse_retry_after("7") == 7.0 and parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("nan") is None
    # HTTP-date form, relative to an injected "now" (RFC 9110's example date).
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == 10.0
