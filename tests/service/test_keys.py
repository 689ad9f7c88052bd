"""API keys: bootstrap once per Redis, revocation for good, tenant admins scoped, superadmins global, audited."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.core.security import Principal, Role
from service.gateway.app import create_app
from service.store.apikeys import ApiKeyStore, AuditLog, KeyRevokedError

SUPER = "keys-test-super-key"
PLATFORM = "keys-test-platform-key"
MODERATOR = "keys-test-moderator-key"
POLICY = Path(__file__).resolve().parents[1] / "support" / "policy.yaml"


def settings_for(url: str, **overrides: Any) -> Settings:
    """A gateway on the test's flushed DB; no worker is needed: nothing here waits for a verdict."""
    values: dict[str, Any] = {
        "env": "test", "redis_url": url, "bootstrap_admin_key": SUPER, "bootstrap_platform_key": PLATFORM,
        "bootstrap_moderator_key": MODERATOR, "bootstrap_tenant": "demo", "policy_path": str(POLICY),
        "callback_allow_hosts": ["127.0.0.1"],
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def gateway(url: str, **overrides: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(url, **overrides))) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def code(resp: Any) -> str:
    return str(resp.json()["error"]["code"])


def make_key(api: TestClient, by: dict[str, str], tenant: str, role: str) -> tuple[dict[str, str], str]:
    resp = api.post("/v1/keys", json={"tenant": tenant, "role": role, "name": f"{role}-{tenant}"}, headers=by)
    assert resp.status_code == 201, resp.text
    return bearer(resp.json()["key"]), str(resp.json()["key_id"])


@pytest.fixture()
def api(redis_url: str) -> Iterator[TestClient]:
    with gateway(redis_url) as client:
        yield client


# ---- bootstrap ---------------------------------------------------------------------------------------------

def test_revoked_bootstrap_key_stays_revoked_across_restarts(redis_url: str) -> None:
    with gateway(redis_url) as first:
        assert first.post("/v1/moderations", json={"text": "x"}, headers=bearer(PLATFORM)).status_code == 202
        listed = first.get("/v1/keys", headers=bearer(SUPER)).json()
        platform_id = next(k["key_id"] for k in listed if k["role"] == "platform" and k["name"] == "bootstrap")
        assert first.delete(f"/v1/keys/{platform_id}", headers=bearer(SUPER)).status_code == 204
        assert first.post("/v1/moderations", json={"text": "x"}, headers=bearer(PLATFORM)).status_code == 401
    for _ in range(2):  # every later gateway start against this Redis
        with gateway(redis_url) as again:
            resp = again.post("/v1/moderations", json={"text": "x"}, headers=bearer(PLATFORM))
            assert resp.status_code == 401 and code(resp) == "invalid_api_key"
            assert again.get("/v1/keys", headers=bearer(SUPER)).status_code == 200  # the others still work
    # Bootstrap ran once: three keys installed, not three per start.
    audit = ApiKeyStore(redis.Redis.from_url(redis_url, decode_responses=True)).audit.read(100)
    assert [e["action"] for e in audit].count("key.bootstrapped") == 3


def test_changed_bootstrap_settings_do_not_install_keys_later(redis_url: str) -> None:
    with gateway(redis_url):
        pass
    with gateway(redis_url, bootstrap_admin_key="keys-test-other-super") as api:
        assert api.get("/v1/keys", headers=bearer("keys-test-other-super")).status_code == 401
        assert api.get("/v1/keys", headers=bearer(SUPER)).status_code == 200


def test_bootstrap_admin_is_a_superadmin(api: TestClient) -> None:
    listed = {k["role"]: k for k in api.get("/v1/keys", headers=bearer(SUPER)).json() if k["name"] == "bootstrap"}
    assert set(listed) == {"superadmin", "platform", "moderator"}
    assert listed["superadmin"]["tenant"] == "demo"


def test_bootstrap_is_atomic_across_concurrent_gateways(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    entries = [(SUPER, "demo", Role.superadmin, "bootstrap"), (PLATFORM, "demo", Role.platform, "bootstrap")]
    results: list[object] = []
    barrier = threading.Barrier(8)

    def run() -> None:
        store = ApiKeyStore(redis.Redis.from_url(redis_url, decode_responses=True))
        barrier.wait(timeout=10)
        results.append(store.bootstrap(entries))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    installed = [r for r in results if r is not None]
    assert len(results) == 8 and len(installed) == 1
    assert [e["action"] for e in ApiKeyStore(client).audit.read(100)].count("key.bootstrapped") == 2


def test_revoked_id_is_never_put_again(redis_url: str) -> None:
    store = ApiKeyStore(redis.Redis.from_url(redis_url, decode_responses=True))
    principal = store.put("some-plaintext-key", "t1", Role.platform, "k")
    assert store.revoke(principal.key_id)
    with pytest.raises(KeyRevokedError):
        store.put("some-plaintext-key", "t1", Role.platform, "k")
    assert store.authenticate("some-plaintext-key") is None
    # Even a bootstrap on a Redis that lost its marker skips the revoked id.
    installed = store.bootstrap([("some-plaintext-key", "t1", Role.platform, "bootstrap"),
                                 ("fresh-plaintext-key", "t1", Role.platform, "bootstrap")])
    assert installed is not None and [p.key_id for p in installed] != [principal.key_id] and len(installed) == 1
    assert store.authenticate("some-plaintext-key") is None and store.authenticate("fresh-plaintext-key")


def test_principal_roles() -> None:
    superadmin = Principal("k1", "demo", Role.superadmin, "s")
    assert superadmin.role is Role.admin and superadmin.is_superadmin and superadmin.key_role is Role.superadmin
    assert superadmin.can_see("other") and superadmin.can_grant(Role.superadmin)
    admin = Principal("k2", "a", Role.admin, "a")
    assert admin.is_admin and not admin.is_superadmin and admin.can_see("a") and not admin.can_see("b")
    assert admin.can_grant(Role.platform) and admin.can_grant(Role.moderator)
    assert not admin.can_grant(Role.admin) and not admin.can_grant(Role.superadmin)
    platform = Principal("k3", "a", Role.platform, "p")
    assert not platform.can_grant(Role.platform) and not platform.can_see("b")
    with pytest.raises(ValueError):
        Principal("k4", "a", Role.platform, "p", superadmin=True)


# ---- tenant admins vs superadmins ----------------------------------------------------------------------------

def tenants() -> tuple[str, str]:
    return f"ta{uuid.uuid4().hex[:8]}", f"tb{uuid.uuid4().hex[:8]}"


def test_tenant_admin_creates_only_own_tenant_non_admin_keys(api: TestClient) -> None:
    a, b = tenants()
    admin_a, _ = make_key(api, bearer(SUPER), a, "admin")
    admin_b, _ = make_key(api, bearer(SUPER), b, "admin")
    # Another tenant: refused, whatever the role.
    for role in ("platform", "moderator", "admin", "superadmin"):
        resp = api.post("/v1/keys", json={"tenant": a, "role": role}, headers=admin_b)
        assert resp.status_code == 403 and code(resp) == "forbidden_tenant", (role, resp.text)
    # Own tenant: no admin or superadmin keys.
    for role in ("admin", "superadmin"):
        resp = api.post("/v1/keys", json={"tenant": a, "role": role}, headers=admin_a)
        assert resp.status_code == 403 and code(resp) == "forbidden_key_role", (role, resp.text)
    platform_a, _ = make_key(api, admin_a, a, "platform")
    make_key(api, admin_a, a, "moderator")
    assert api.post("/v1/moderations", json={"text": "own"}, headers=platform_a).status_code == 202
    # Listing: a tenant admin sees its tenant's keys only.
    listed = api.get("/v1/keys", headers=admin_a).json()
    assert {k["tenant"] for k in listed} == {a} and {k["role"] for k in listed} == {"admin", "platform", "moderator"}
    assert {k["tenant"] for k in api.get("/v1/keys", headers=bearer(SUPER)).json()} >= {a, b, "demo"}


def test_only_superadmins_create_admin_keys_anywhere(api: TestClient) -> None:
    a, b = tenants()
    make_key(api, bearer(SUPER), a, "admin")
    new_super, _ = make_key(api, bearer(SUPER), b, "superadmin")
    # A created superadmin is global too, whatever its tenant.
    make_key(api, new_super, a, "admin")
    make_key(api, new_super, "demo", "superadmin")
    for role in ("platform", "moderator"):
        headers, _ = make_key(api, bearer(SUPER), a, role)
        resp = api.post("/v1/keys", json={"tenant": a, "role": "platform"}, headers=headers)
        assert resp.status_code == 403 and code(resp) == "forbidden_role"


def test_tenant_admin_revokes_only_own_tenant_non_admin_keys(api: TestClient) -> None:
    a, b = tenants()
    admin_a, admin_a_id = make_key(api, bearer(SUPER), a, "admin")
    _, other_admin_a_id = make_key(api, bearer(SUPER), a, "admin")
    platform_a, platform_a_id = make_key(api, bearer(SUPER), a, "platform")
    platform_b, platform_b_id = make_key(api, bearer(SUPER), b, "platform")
    super_id = next(k["key_id"] for k in api.get("/v1/keys", headers=bearer(SUPER)).json()
                    if k["role"] == "superadmin")
    # Other tenants' keys (the superadmin's included) are reported missing, like an unknown id.
    for key_id in (platform_b_id, super_id, "key_doesnotexist"):
        resp = api.delete(f"/v1/keys/{key_id}", headers=admin_a)
        assert resp.status_code == 404 and code(resp) == "key_not_found", key_id
    assert api.post("/v1/moderations", json={"text": "b"}, headers=platform_b).status_code == 202
    for key_id in (other_admin_a_id, admin_a_id):
        resp = api.delete(f"/v1/keys/{key_id}", headers=admin_a)
        assert resp.status_code == 403 and code(resp) == "forbidden_key_role"
    assert api.delete(f"/v1/keys/{platform_a_id}", headers=admin_a).status_code == 204
    assert api.post("/v1/moderations", json={"text": "a"}, headers=platform_a).status_code == 401
    assert api.delete(f"/v1/keys/{other_admin_a_id}", headers=bearer(SUPER)).status_code == 204


def test_tenant_admin_cannot_read_other_tenants(api: TestClient) -> None:
    a, b = tenants()
    admin_a, _ = make_key(api, bearer(SUPER), a, "admin")
    platform_a, _ = make_key(api, bearer(SUPER), a, "platform")
    platform_b, _ = make_key(api, bearer(SUPER), b, "platform")
    item_a = api.post("/v1/moderations", json={"text": "a", "external_id": "e"}, headers=platform_a).json()["id"]
    item_b = api.post("/v1/moderations", json={"text": "b", "external_id": "e"}, headers=platform_b).json()["id"]
    assert api.get(f"/v1/moderations/{item_a}", headers=admin_a).status_code == 200
    for path in (f"/v1/moderations/{item_b}", f"/v1/moderations/{item_b}/webhooks",
                 f"/v1/moderations/{item_b}/history"):
        resp = api.get(path, headers=admin_a)
        assert resp.status_code == 404 and code(resp) == "moderation_not_found", path
    resp = api.post(f"/v1/moderations/{item_b}/appeal", json={"message": "m"}, headers=admin_a)
    assert resp.status_code == 404
    resp = api.post(f"/v1/reviews/{item_b}/claim", json={}, headers=admin_a)
    assert resp.status_code == 404 and code(resp) == "review_not_found"
    # Listings: its own tenant by default; naming another tenant is a 404, not a silent switch.
    assert [i["id"] for i in api.get("/v1/moderations", headers=admin_a).json()["items"]] == [item_a]
    assert [i["id"] for i in api.get("/v1/moderations", params={"external_id": "e"},
                                     headers=admin_a).json()["items"]] == [item_a]
    for path, params in (("/v1/moderations", {"tenant": b}), ("/v1/moderations", {"tenant": b, "external_id": "e"}),
                         ("/v1/reviews", {"tenant": b}), ("/v1/reviews/stats", {"tenant": b})):
        resp = api.get(path, params=params, headers=admin_a)
        assert resp.status_code == 404 and code(resp) == "tenant_not_found", (path, params)
    assert api.get("/v1/reviews", headers=admin_a).status_code == 200
    assert api.get("/v1/reviews", params={"tenant": a}, headers=admin_a).status_code == 200
    for method, path in (("GET", f"/v1/tenants/{b}/webhook-secret"), ("POST", f"/v1/tenants/{b}/webhook-secret/rotate"),
                         ("GET", f"/v1/policies/{b}")):
        resp = api.request(method, path, headers=admin_a)
        assert resp.status_code == 404 and code(resp) == "tenant_not_found", path
    assert api.get(f"/v1/tenants/{a}/webhook-secret", headers=admin_a).status_code == 200
    # The superadmin sees both tenants, and must name one for queue views.
    assert {i["id"] for i in api.get("/v1/moderations", headers=bearer(SUPER)).json()["items"]} >= {item_a, item_b}
    assert api.get(f"/v1/moderations/{item_b}", headers=bearer(SUPER)).status_code == 200
    resp = api.get("/v1/reviews", headers=bearer(SUPER))
    assert resp.status_code == 422 and code(resp) == "tenant_required"
    assert api.get("/v1/reviews", params={"tenant": b}, headers=bearer(SUPER)).status_code == 200


# ---- the credential audit log ----------------------------------------------------------------------------------

def test_key_changes_are_audited_and_readable_by_superadmins_only(api: TestClient) -> None:
    a, _ = tenants()
    admin_a, admin_a_id = make_key(api, bearer(SUPER), a, "admin")
    platform_a, platform_a_id = make_key(api, admin_a, a, "platform")
    assert api.delete(f"/v1/keys/{platform_a_id}", headers=admin_a).status_code == 204
    api.post(f"/v1/tenants/{a}/webhook-secret/rotate", params={"grace_s": 60}, headers=admin_a)
    super_id = next(k["key_id"] for k in api.get("/v1/keys", headers=bearer(SUPER)).json()
                    if k["role"] == "superadmin")

    for headers in (admin_a, bearer(PLATFORM), bearer(MODERATOR)):
        resp = api.get("/v1/audit/keys", headers=headers)
        assert resp.status_code == 403 and code(resp) == "forbidden_role"
    resp = api.get("/v1/audit/keys", headers=bearer(SUPER))
    assert resp.status_code == 200, resp.text
    entries = resp.json()["items"]
    mine = [(e["action"], e.get("key_id"), e["actor_key_id"], e["actor_role"]) for e in entries if e["tenant"] == a]
    assert mine == [  # newest first
        ("webhook_secret.rotated", None, admin_a_id, "admin"),
        ("key.revoked", platform_a_id, admin_a_id, "admin"),
        ("key.created", platform_a_id, admin_a_id, "admin"),
        ("key.created", admin_a_id, super_id, "superadmin"),
    ]
    created = next(e for e in entries if e.get("key_id") == admin_a_id)
    assert created["role"] == "admin" and created["actor_tenant"] == "demo" and created["at"] > 0
    assert all("key" not in e and "secret" not in e for e in entries)  # never a plaintext credential
    bootstrapped = [e for e in entries if e["action"] == "key.bootstrapped"]
    assert len(bootstrapped) == 3 and {e["actor_role"] for e in bootstrapped} == {"system"}


def test_audit_pages_and_rejects_bad_cursors(api: TestClient) -> None:
    for _ in range(4):
        make_key(api, bearer(SUPER), tenants()[0], "platform")
    seen: list[str] = []
    cursor = None
    while True:
        page = api.get("/v1/audit/keys", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                       headers=bearer(SUPER)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7  # 3 bootstrapped + 4 created
    for bad in ("nan", "inf", "1-x", "abc", "9" * 30 + "-0", "-1-0", "0-0", "18446744073709551616-0",
                "1-18446744073709551616", "1-2-3", "1-0\n", "x" * 65):
        resp = api.get("/v1/audit/keys", params={"cursor": bad}, headers=bearer(SUPER))
        assert resp.status_code == 422 and code(resp) in {"invalid_cursor", "validation_error"}, bad
    for bad_limit in ("0", "1001", "nan", "1e400", "9" * 40):
        resp = api.get("/v1/audit/keys", params={"limit": bad_limit}, headers=bearer(SUPER))
        assert resp.status_code == 422 and code(resp) == "validation_error", bad_limit


def test_audit_stream_is_bounded(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    log = AuditLog(client, maxlen=5)
    for i in range(12):
        log.add(client, "key.created", None, key_id=f"k{i}", tenant="t")
    entries = log.read(100)
    assert [e["key_id"] for e in entries] == [f"k{i}" for i in range(11, 6, -1)]
