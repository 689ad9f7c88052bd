"""Rate limits and queue back-pressure against a real redis-server (no worker: nothing here needs a verdict).

Rates are tiny (one token per ~17 minutes) wherever a test counts requests, so refill during a test can never
change an answer; the one refill test polls with a deadline instead of sleeping or timing anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.core.config import Settings
from service.core.security import Principal, Role
from service.gateway.middleware import Metrics
from service.gateway.ratelimit import RateLimitMiddleware, api_key_from_headers, buckets_for, route_family
from service.store.apikeys import ApiKeyStore
from service.store.items import LIVE, ItemStore
from service.store.ratelimit import Bucket, RateLimitStore
from tests.support.redis_server import free_port
from tests.support.workers import poll

ADMIN = {"Authorization": "Bearer rl-admin-key"}
PLATFORM = {"Authorization": "Bearer rl-platform-key"}
SLOW = 0.001  # tokens per second: effectively no refill within a test


def settings_for(redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test", "redis_url": redis_url, "bootstrap_admin_key": "rl-admin-key",
        "bootstrap_platform_key": "rl-platform-key", "bootstrap_moderator_key": "rl-moderator-key",
        "bootstrap_tenant": "rl-boot", "policy_path": Path(__file__).parents[1] / "support" / "policy.yaml",
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def gateway(redis_url: str, **overrides: Any) -> Iterator[TestClient]:
    from service.gateway.app import create_app

    with TestClient(create_app(settings_for(redis_url, **overrides))) as client:
        yield client


def key_for(api: TestClient, tenant: str, role: str = "platform") -> dict[str, str]:
    resp = api.post("/v1/keys", json={"tenant": tenant, "role": role, "name": "rl"}, headers=ADMIN)
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['key']}"}


def submit(api: TestClient, headers: dict[str, str], text: str = "hello", **extra: Any) -> Any:
    return api.post("/v1/moderations", json={"text": text}, headers={**headers, **extra})


def metric(api: TestClient, name: str, **labels: str) -> float:
    """The value of one sample on /metrics (0 when absent)."""
    text = api.get("/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))).strip(",") == want:
            return float(m.group(3))
    return 0.0


# ---- pure functions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "family"), [
    ("POST", "/v1/moderations", "submit"),
    ("POST", "/v1/moderations/batch", "submit"),
    ("POST", "/v1/moderations/image", "submit"),
    ("POST", "/v1/moderations/video", "submit"),
    ("GET", "/v1/moderations", "read"),
    ("GET", "/v1/moderations/mod_1", "read"),
    ("GET", "/v1/moderations/mod_1/history", "read"),
    ("HEAD", "/v1/moderations/mod_1/webhooks", "read"),
    ("GET", "/v1/policies/acme", "read"),
    ("POST", "/v1/moderations/mod_1/appeal", "review"),
    ("GET", "/v1/reviews", "review"),
    ("POST", "/v1/reviews/mod_1/claim", "review"),
    ("POST", "/v1/reviews/mod_1/decision", "review"),
    ("POST", "/v1/keys", "admin"),
    ("GET", "/v1/keys", "admin"),
    ("DELETE", "/v1/keys/key_1", "admin"),
    ("GET", "/v1/tenants/acme/webhook-secret", "admin"),
    ("PUT", "/v1/policies/acme", "admin"),
    ("POST", "/v1/hashlists/acme/list/hashes", "admin"),
    ("GET", "/v1/rescans/job", "admin"),
    ("POST", "/v1/something-new", "admin"),
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", "/metrics", None),
    ("GET", "/docs", None),
])
def test_route_family(method: str, path: str, family: str | None) -> None:
    assert route_family(method, path) == family


def test_api_key_is_read_like_the_auth_dependency() -> None:
    assert api_key_from_headers([(b"authorization", b"Bearer abc")]) == "abc"
    assert api_key_from_headers([(b"authorization", b"bearer  abc ")]) == "abc"
    assert api_key_from_headers([(b"authorization", b"Basic abc")]) is None
    assert api_key_from_headers([(b"x-api-key", b"k1"), (b"authorization", b"Bearer k2")]) == "k1"
    assert api_key_from_headers([]) is None
    assert api_key_from_headers([(b"x-api-key", b""), (b"authorization", b"Bearer k2")]) == "k2"
    # Repeated headers: the first one counts, as in Starlette's `headers.get` (which the route's auth uses).
    assert api_key_from_headers([(b"authorization", b"Bearer good"), (b"authorization", b"Bearer junk")]) == "good"
    assert api_key_from_headers([(b"x-api-key", b"good"), (b"x-api-key", b"junk")]) == "good"


def test_limiter_and_route_read_the_same_key_from_repeated_headers(redis_url: str) -> None:
    """A valid key followed by junk must be limited like the valid key alone (no bypass by header games)."""
    low = dict(ratelimit_read_key_per_s=SLOW, ratelimit_read_key_burst=1)
    with gateway(redis_url, **low) as api:
        twice = [("authorization", "Bearer rl-platform-key"), ("authorization", "Bearer junk")]
        assert api.get("/v1/moderations", headers=twice).status_code == 200
        assert api.get("/v1/moderations", headers=twice).status_code == 429


def test_buckets_come_from_the_family_settings() -> None:
    settings = Settings(env="test", ratelimit_review_key_per_s=2.5, ratelimit_review_tenant_burst=9)
    principal = Principal(key_id="key_1", tenant="acme", role=Role.moderator, name="m")
    key, tenant = buckets_for(settings, "review", principal)
    assert (key.scope, key.ident, key.rate) == ("key", "key_1", 2.5)
    assert (tenant.scope, tenant.ident, tenant.burst) == ("tenant", "acme", 9)


# ---- the store's Lua script ---------------------------------------------------------------------------------


def test_buckets_take_all_or_nothing(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RateLimitStore(r)
    key = Bucket("submit", "key", "k1", SLOW, 1)
    tenant = Bucket("submit", "tenant", "t1", SLOW, 10)
    first = store.take([key, tenant])
    assert first.allowed and [s.remaining for s in first.states] == [0, 9]
    refused = store.take([key, tenant])
    assert not refused.allowed and refused.refused_by is not None and refused.refused_by.bucket == key
    # The tenant's bucket was not charged for the refused request.
    assert [s.remaining for s in refused.states] == [0, 9]
    assert store.take([tenant]).states[0].remaining == 8
    # Buckets expire once they would be full again: idle keys leave nothing behind.
    assert 0 < r.pttl(key.key) and 0 < r.pttl(tenant.key)
    # A bucket with rate or burst 0 is off.
    assert store.take([Bucket("submit", "key", "k1", 0, 1), Bucket("read", "key", "k1", 1, 0)]).allowed


# ---- the gateway --------------------------------------------------------------------------------------------


def test_flood_on_one_key_then_the_tenant_bucket(redis_url: str) -> None:
    """Key A floods: 429 from its key bucket; key B of the same tenant still gets in until the tenant's runs out."""
    low = dict(ratelimit_submit_key_per_s=SLOW, ratelimit_submit_key_burst=3,
               ratelimit_submit_tenant_per_s=SLOW, ratelimit_submit_tenant_burst=5)
    with gateway(redis_url, **low) as api:
        key_a, key_b, other = key_for(api, "acme"), key_for(api, "acme"), key_for(api, "globex")
        first = submit(api, key_a)
        assert first.status_code == 202
        # The tightest bucket is reported: key A's (3 with 2 left), not the tenant's (5 with 4 left).
        assert first.headers["ratelimit-limit"] == "3" and first.headers["ratelimit-remaining"] == "2"
        assert int(first.headers["ratelimit-reset"]) > 0
        assert [submit(api, key_a).status_code for _ in range(2)] == [202, 202]

        limited = submit(api, key_a)
        assert limited.status_code == 429, limited.text
        error = limited.json()["error"]
        assert error["code"] == "rate_limited"
        assert error["details"]["family"] == "submit" and error["details"]["scope"] == "key"
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["ratelimit-limit"] == "3" and limited.headers["ratelimit-remaining"] == "0"
        assert "ratelimit-reset" in limited.headers

        # Key B: its own bucket is full, so only the tenant's (2 left of 5) stops it.
        ok_b = submit(api, key_b)
        assert ok_b.status_code == 202
        assert ok_b.headers["ratelimit-limit"] == "5" and ok_b.headers["ratelimit-remaining"] == "1"
        assert submit(api, key_b).status_code == 202
        tenant_limited = submit(api, key_b)
        assert tenant_limited.status_code == 429
        assert tenant_limited.json()["error"]["details"]["scope"] == "tenant"
        assert tenant_limited.headers["ratelimit-limit"] == "5" and int(tenant_limited.headers["retry-after"]) >= 1

        # Other tenants and other families are untouched; an unknown key still gets its 401.
        assert submit(api, other).status_code == 202
        read = api.get(f"/v1/moderations/{first.json()['id']}", headers=key_a)
        read_burst = api.app.state.services.settings.ratelimit_read_key_burst  # type: ignore[attr-defined]
        assert read.status_code == 200 and read.headers["ratelimit-limit"] == str(read_burst)
        bad = submit(api, {"Authorization": "Bearer not-a-key"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"
        assert "ratelimit-limit" not in api.get("/healthz").headers

        assert metric(api, "moderation_rate_limited_total", family="submit", scope="key") == 1
        assert metric(api, "moderation_rate_limited_total", family="submit", scope="tenant") == 1


def test_limited_key_gets_in_again_after_refill(redis_url: str) -> None:
    with gateway(redis_url, ratelimit_read_key_per_s=2, ratelimit_read_key_burst=1) as api:
        # Flood until refused (the bucket holds one request; refill is 2/s, far slower than this loop).
        refused = poll(lambda: (lambda r: r if r.status_code == 429 else None)(
            api.get("/v1/moderations", headers=PLATFORM)), 10, 0)
        assert refused.headers["retry-after"] == "1"  # < 1 token missing at 2 tokens/s: at most half a second
        poll(lambda: api.get("/v1/moderations", headers=PLATFORM).status_code == 200, 15)


def test_limits_can_be_switched_off(redis_url: str) -> None:
    tiny = dict(ratelimit_submit_key_per_s=SLOW, ratelimit_submit_key_burst=1,
                ratelimit_submit_tenant_per_s=SLOW, ratelimit_submit_tenant_burst=1)
    with gateway(redis_url, ratelimit_enabled=False, **tiny) as api:
        responses = [submit(api, PLATFORM, f"t{i}") for i in range(4)]
        assert [r.status_code for r in responses] == [202] * 4
        assert all("ratelimit-limit" not in r.headers for r in responses)
    # A single bucket off (burst 0): only the tenant's applies.
    with gateway(redis_url, **{**tiny, "ratelimit_submit_key_burst": 0, "ratelimit_submit_tenant_burst": 2}) as api:
        assert [submit(api, PLATFORM, f"u{i}").status_code for i in range(3)] == [202, 202, 429]


def test_queue_depth_refuses_then_accepts_once_pending_drops(redis_url: str) -> None:
    with gateway(redis_url, queue_max_pending=3, queue_full_retry_after_s=7) as api:
        ids = [submit(api, PLATFORM, f"q{i}", **{"Idempotency-Key": f"idem-{i}"}).json()["id"] for i in range(3)]
        full = submit(api, PLATFORM, "one too many")
        assert full.status_code == 503, full.text
        assert full.json()["error"]["code"] == "queue_full"
        assert full.json()["error"]["details"] == {"pending": 3, "limit": 3, "retry_after_s": 7}
        assert full.headers["retry-after"] == "7"
        batch = api.post("/v1/moderations/batch", json={"items": [{"text": "b"}]}, headers=PLATFORM)
        assert batch.status_code == 503 and batch.json()["error"]["code"] == "queue_full"
        # A retry of an accepted submission still gets its id back.
        again = submit(api, PLATFORM, "q0", **{"Idempotency-Key": "idem-0"})
        assert again.status_code == 202 and again.json()["id"] == ids[0]
        assert metric(api, "moderation_queue_full") == 1 and metric(api, "moderation_queue_full_refusals_total") == 2
        assert metric(api, "moderation_queue_depth_limit") == 3

        # A worker finishing an item takes it out of `pending` (same Lua transition the worker uses).
        store = ItemStore(redis.Redis.from_url(redis_url, decode_responses=True))
        moved, _ = store.transition(ids[0], "done", LIVE, "verdict")
        assert moved
        assert submit(api, PLATFORM, "room again").status_code == 202
        assert submit(api, PLATFORM, "full again").status_code == 503


def test_queue_full_refuses_uploads_and_keeps_no_blob(redis_url: str, tmp_path: Path) -> None:
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(png, format="PNG")
    with gateway(redis_url, queue_max_pending=1, data_dir=tmp_path) as api:
        assert submit(api, PLATFORM, "fills the queue").status_code == 202
        resp = api.post("/v1/moderations/image", files={"file": ("a.png", png.getvalue())}, headers=PLATFORM)
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "queue_full", resp.text
        blobs = tmp_path / "blobs"
        assert not blobs.exists() or not [p for p in blobs.rglob("*") if p.is_file()]


def test_redis_down_never_gives_500() -> None:
    """Reads fail open (the route then answers for itself); writes get the usual 503 store_unavailable."""
    with gateway(f"redis://127.0.0.1:{free_port()}/0", redis_socket_timeout_s=1.0) as api:
        read = api.get("/v1/moderations/mod_x", headers=PLATFORM)
        assert read.status_code == 503 and read.json()["error"]["code"] == "store_unavailable"
        write = submit(api, PLATFORM)
        assert write.status_code == 503 and write.json()["error"]["code"] == "store_unavailable"
        assert write.headers["retry-after"] == "5"
        assert metric(api, "moderation_ratelimit_errors_total", family="read", outcome="fail_open") == 1
        assert metric(api, "moderation_ratelimit_errors_total", family="submit", outcome="refused") == 1


def test_limiter_failure_lets_reads_through() -> None:
    """With the limiter's Redis gone, a read whose route does not need Redis is answered normally."""

    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/v1/moderations/{item_id}", ok), Route("/v1/moderations", ok, methods=["POST"])])
    dead_url = f"redis://127.0.0.1:{free_port()}/0"
    dead = redis.Redis.from_url(dead_url, socket_connect_timeout=1, socket_timeout=1)
    # The limiter runs its script on the asyncio client (aredis_timed), as the gateway builds it.
    adead = aioredis.Redis.from_url(dead_url, socket_connect_timeout=1, socket_timeout=1)
    app.state.services = SimpleNamespace(keys=ApiKeyStore(dead), redis=dead, aredis_timed=adead)
    app.add_middleware(RateLimitMiddleware, settings=Settings(env="test"), metrics=Metrics())
    with TestClient(app) as client:
        read = client.get("/v1/moderations/mod_x", headers=PLATFORM)
        assert read.status_code == 200 and read.json() == {"ok": True}
        write = client.post("/v1/moderations", headers=PLATFORM)
        assert write.status_code == 503 and write.json()["error"]["code"] == "store_unavailable"
