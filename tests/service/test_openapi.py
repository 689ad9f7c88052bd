"""Owns the tests of the API's self-description and its public surface: offline docs, security schemes, the
error model in every response list, one public item shape for `?wait=` and GET, /readyz and /metrics exposure."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image

from service.core.config import Settings
from service.core.views import PUBLIC_FIELDS, Moderation, public_item
from service.gateway.app import create_app
from service.store import keys
from service.store.items import LIVE, ItemStore
from tests.support.redis_server import RedisServer

ADMIN = {"Authorization": "Bearer openapi-admin-key"}
PLATFORM = {"Authorization": "Bearer openapi-platform-key"}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "testserver"}
ERROR_REF = "#/components/schemas/ErrorBody"


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test", "bootstrap_admin_key": ADMIN["Authorization"][7:],
        "bootstrap_platform_key": PLATFORM["Authorization"][7:], "bootstrap_moderator_key": None,
        "policy_path": Path(__file__).parents[1] / "support" / "policy.yaml", "ratelimit_enabled": False,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    # No lifespan, no Redis: the document is built from the routes alone.
    return TestClient(create_app(_settings())).get("/openapi.json").json()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield method.upper(), path, op


# ---- interactive docs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(page: str) -> None:
    client = TestClient(create_app(_settings()))
    resp = client.get(page)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    html = resp.text
    refs = re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: ?["']([^"']+)["']""", html)
    urls = [a or b for a, b in refs]
    assert len(urls) >= 3, urls  # script, favicon, and the OpenAPI document at least
    for url in urls:
        parts = urlsplit(url)
        assert parts.scheme in ("", "http", "https"), url
        assert not parts.netloc or parts.hostname in LOCAL_HOSTS, f"{page} loads {url} from off the machine"
    # Nothing else in the page may point off the machine either (fonts, validator badge, CDN fallbacks).
    for absolute in re.findall(r"https?://[^\s\"'<>)]+", html):
        assert urlsplit(absolute).hostname in LOCAL_HOSTS, f"{page} references {absolute}"
    assets = [u for u in urls if u.endswith((".js", ".css", ".png"))]
    assert any(u.endswith(".js") for u in assets), assets
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
        kind = {"js": "javascript", "css": "text/css", "png": "image/png"}[url.rsplit(".", 1)[1]]
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
    assert client.get("/openapi.json").status_code == 200
    if page == "/docs":
        assert any(u.endswith(".css") for u in assets), assets
        # Swagger UI would otherwise post the spec URL to validator.swagger.io.
        assert '"validatorUrl": null' in html


# ---- the document ----------------------------------------------------------------------------------------

def test_auth_is_declared_as_security_schemes_not_header_parameters(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["BearerKey"] == {**schemes["BearerKey"], "type": "http", "scheme": "bearer"}
    assert schemes["ApiKeyHeader"] == {**schemes["ApiKeyHeader"], "type": "apiKey", "in": "header",
                                       "name": "X-API-Key"}
    for method, path, op in _operations(spec):
        headers = {p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"}
        assert not headers & {"authorization", "x-api-key"}, f"{method} {path} lists credentials as parameters"
        if path == "/healthz":
            assert "security" not in op
        elif path == "/metrics":
            assert op["security"] == [{"MetricsToken": []}, {}]
        elif path == "/readyz":  # the key is optional: it only widens the answer
            assert {} in op["security"] and {"BearerKey": []} in op["security"]
        else:  # either scheme alone is enough (OpenAPI ORs the list)
            assert op["security"] == [{"BearerKey": []}, {"ApiKeyHeader": []}], f"{method} {path}"


def test_every_error_response_is_the_error_body(spec: dict[str, Any]) -> None:
    components = spec["components"]["schemas"]
    assert "HTTPValidationError" not in components and "ValidationError" not in components
    body = components["ErrorBody"]
    assert body["required"] == ["error"]
    error = components[body["properties"]["error"]["$ref"].rsplit("/", 1)[1]]
    assert set(error["properties"]) == {"code", "message", "details"}
    for method, path, op in _operations(spec):
        for status, resp in op["responses"].items():
            if status.startswith(("4", "5")):
                schema = resp.get("content", {}).get("application/json", {}).get("schema", {})
                assert schema.get("$ref") == ERROR_REF, f"{method} {path} {status}: {schema}"


def _documented(op: dict[str, Any]) -> set[int]:
    return {int(s) for s in op["responses"] if s.isdigit()}


def test_authenticated_routes_document_the_auth_failures(spec: dict[str, Any]) -> None:
    """401 (no/unknown key), 403 (role), 429 (rate limit per key), 503 (Redis down while checking the key)."""
    missing = {f"{method} {path}": sorted({401, 403, 429, 503} - _documented(op))
               for method, path, op in _operations(spec)
               if op.get("security") == [{"BearerKey": []}, {"ApiKeyHeader": []}]}
    assert not {k: v for k, v in missing.items() if v}, "use responses(*AUTH_ERRORS) from service.core.errors"


def test_body_routes_document_the_body_failures(spec: dict[str, Any]) -> None:
    """Any POST/PUT can hit the body-size limit (413); JSON bodies can be malformed (400), not JSON (415) or
    invalid (422); multipart bodies can be malformed (400) or miss fields (422)."""
    missing: dict[str, list[int]] = {}
    for method, path, op in _operations(spec):
        if method not in ("POST", "PUT"):
            continue
        need = {413}
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            need |= {400, 415, 422}
        if "multipart/form-data" in content:
            need |= {400, 422}
        if need - _documented(op):
            missing[f"{method} {path}"] = sorted(need - _documented(op))
    assert not missing


# ---- live app: readyz, metrics, the public item ------------------------------------------------------------

@pytest.fixture()
def live(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[TestClient, redis.Redis]]:
    url = redis_server.url(9)
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    with TestClient(create_app(_settings(redis_url=url, data_dir=tmp_path, max_wait_s=10))) as api:
        yield api, client
    client.flushdb()
    client.close()


def _beat(r: redis.Redis, ok: bool) -> None:
    r.set(keys.heartbeat("probe-worker", 4242), json.dumps({
        "hostname": "probe-worker", "pid": 4242, "queues": ["text"], "at": time.time(),
        "models": {"text": {"ok": ok, "error": None if ok else "/models/secret-path: missing"}}}))


def test_readyz_is_minimal_unless_the_caller_is_an_admin(live: tuple[TestClient, redis.Redis]) -> None:
    api, r = live
    anonymous = api.get("/readyz")
    assert anonymous.status_code == 503 and anonymous.json() == {"error": {
        "code": "not_ready", "message": "no worker is consuming", "details": {}}}
    _beat(r, ok=False)
    for headers in ({}, PLATFORM, {"Authorization": "Bearer not-a-key"}, {"X-API-Key": "nope"}):
        resp = api.get("/readyz", headers=headers)
        assert resp.status_code == 503 and resp.json()["error"]["details"] == {}, (headers, resp.text)
        assert "probe-worker" not in resp.text and "secret-path" not in resp.text
    detailed = api.get("/readyz", headers=ADMIN)
    assert detailed.status_code == 503 and detailed.json()["error"]["details"]["workers"][0]["pid"] == 4242
    _beat(r, ok=True)
    for headers in ({}, PLATFORM, {"X-API-Key": "nope"}):
        assert api.get("/readyz", headers=headers).json() == {"status": "ready"}
    admin = api.get("/readyz", headers={"X-API-Key": ADMIN["Authorization"][7:]}).json()
    assert admin["status"] == "ready" and admin["redis"] == "ok"
    assert [(w["hostname"], w["pid"]) for w in admin["workers"]] == [("probe-worker", 4242)]


def test_metrics_token(redis_server: RedisServer, tmp_path: Path) -> None:
    url = redis_server.url(9)
    with TestClient(create_app(_settings(redis_url=url, data_dir=tmp_path))) as open_api:
        assert open_api.get("/metrics").status_code == 200  # unset: open, as before
    with TestClient(create_app(_settings(redis_url=url, data_dir=tmp_path, metrics_token="scrape-secret"))) as api:
        for headers in ({}, {"Authorization": "Bearer wrong"}, ADMIN, {"Authorization": "Basic scrape-secret"}):
            resp = api.get("/metrics", headers=headers)
            assert resp.status_code == 401, headers
            assert resp.json()["error"]["code"] == "invalid_metrics_token"
            assert resp.headers["www-authenticate"] == "Bearer"
        ok = api.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert ok.status_code == 200 and "moderation_http_requests_total" in ok.text


def test_missing_key_answers_401_with_a_challenge(live: tuple[TestClient, redis.Redis]) -> None:
    api, _ = live
    for headers, code in (({}, "missing_api_key"), ({"Authorization": "Bearer nope"}, "invalid_api_key"),
                          ({"Authorization": "Basic abc"}, "missing_api_key"),
                          ({"X-API-Key": "nope"}, "invalid_api_key")):
        resp = api.get("/v1/rescans", headers=headers)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == code, (headers, resp.text)
        assert resp.headers["www-authenticate"] == "Bearer"
    assert api.get("/v1/rescans", headers={"X-API-Key": ADMIN["Authorization"][7:]}).status_code == 200


INTERNAL = {"text": "secret content", "content_hash": "h" * 64, "blob_key": "ab/cd.png", "filename": "me.png",
            "size": "1234", "media_format": "png", "review_score": 0.7, "appeal_excluded": "key_x",
            "lease_holder": "key_m", "lease_expires_at": 1.0, "categories": ["insult"], "verdict_key": "v:1",
            "rescanned_with": {"m": 1}, "error_message": "boom", "note": "internal"}


def test_public_item_is_exactly_the_public_model() -> None:
    item: Any = {"id": "mod_1", "tenant": "t", "kind": "image", "status": "failed", "created_at": 1.0,
                 "error_code": "model_unavailable", **INTERNAL}
    out = public_item(item)
    assert set(out) == PUBLIC_FIELDS == set(Moderation.model_fields)
    assert out["status_url"] == "/v1/moderations/mod_1"
    assert out["error"] == {"code": "model_unavailable", "message": "boom"}
    assert not set(INTERNAL) & set(out) - {"error"}
    assert json.loads(json.dumps(out)) == out  # JSON-ready as it is (webhook payloads dump it directly)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_media_wait_answer_is_the_get_document(live: tuple[TestClient, redis.Redis]) -> None:
    """`?wait=` on an upload answers with the same document as the GET: none of the stored internals."""
    api, r = live
    store = ItemStore(r)

    def finish_like_a_worker() -> None:  # no media worker here: finish the item as one would, internals included
        ids = poll_ids()
        store.transition(ids[0], "done", LIVE, "verdict", fields={
            "decision": "allow", "scores": {"sexual": 0.01}, "flagged": [], "reasons": [], "source": "model",
            "models": [{"name": "vision", "version": "1"}], "policy_version": "default@1",
            "completed_at": time.time(), "review_score": 0.2, "appeal_excluded": "key_abc"})

    def poll_ids() -> list[str]:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            ids = [i.decode() if isinstance(i, bytes) else i for i in r.zrange(keys.index("demo"), 0, -1)]
            if ids:
                return ids
            time.sleep(0.02)
        raise TimeoutError("the upload never created an item")

    worker = threading.Thread(target=finish_like_a_worker)
    worker.start()
    resp = api.post("/v1/moderations/image?wait=5", files={"file": ("holiday.png", _png(), "image/png")},
                    data={"external_id": "pic-1"}, headers=PLATFORM)
    worker.join()
    assert resp.status_code == 200, resp.text
    body = resp.json()
    stored = store.get(body["id"])
    assert stored is not None and stored["filename"] == "holiday.png" and stored.get("review_score") == 0.2
    assert body == api.get(f"/v1/moderations/{body['id']}", headers=PLATFORM).json()
    assert set(body) == PUBLIC_FIELDS
    assert body["decision"] == "allow" and body["external_id"] == "pic-1"
    for leaked in ("filename", "size", "review_score", "appeal_excluded", "blob_key", "media_format"):
        assert leaked not in body


def test_media_wait_that_times_out_is_a_202_with_the_status_url(live: tuple[TestClient, redis.Redis]) -> None:
    api, _ = live
    resp = api.post("/v1/moderations/image?wait=0.3", files={"file": ("a.png", _png(), "image/png")},
                    headers=PLATFORM)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body == {"id": body["id"], "status": "queued", "status_url": f"/v1/moderations/{body['id']}"}
    assert resp.headers["location"] == body["status_url"]


def test_tenant_admins_stay_in_their_tenant(live: tuple[TestClient, redis.Redis]) -> None:
    """Hash lists, policies and rescans: a tenant admin reaches its own tenant only; others look missing."""
    api, _ = live
    created = api.post("/v1/keys", json={"tenant": "ta", "role": "admin", "name": "tenant admin"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    tenant_admin = {"Authorization": f"Bearer {created.json()['key']}"}
    policy = {"categories": {"toxicity": {"review": 0.4, "block": 0.8}}}
    hashes = {"kind": "sha256", "values": ["a" * 64]}
    for method, path, body in (("PUT", "/v1/policies/{t}", policy), ("GET", "/v1/policies/{t}", None),
                               ("DELETE", "/v1/policies/{t}", None), ("GET", "/v1/hashlists/{t}", None),
                               ("POST", "/v1/hashlists/{t}/l1/hashes", hashes), ("GET", "/v1/hashlists/{t}/l1", None)):
        other = api.request(method, path.format(t="tb"), json=body, headers=tenant_admin)
        assert other.status_code == 404 and other.json()["error"]["code"] == "tenant_not_found", (method, path)
        if method != "DELETE":
            assert api.request(method, path.format(t="ta"), json=body, headers=tenant_admin).status_code == 200
    own = api.post("/v1/rescans", json={}, headers=tenant_admin)
    assert own.status_code == 202 and own.json()["filter"] == {"tenant": "ta"}
    assert api.post("/v1/rescans", json={"tenant": "tb"}, headers=tenant_admin).status_code == 404
    everyone = api.post("/v1/rescans", json={"kind": "text"}, headers=ADMIN).json()
    assert everyone["filter"] == {"kind": "text"}  # a superadmin's job spans all tenants
    for path in (f"/v1/rescans/{everyone['id']}", f"/v1/rescans/{everyone['id']}/cancel"):
        resp = api.request("POST" if path.endswith("cancel") else "GET", path, headers=tenant_admin)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "rescan_not_found"
    assert [j["id"] for j in api.get("/v1/rescans", headers=tenant_admin).json()["items"]] == [own.json()["id"]]
    assert {j["id"] for j in api.get("/v1/rescans", headers=ADMIN).json()["items"]} == {own.json()["id"],
                                                                                       everyone["id"]}
    assert api.get(f"/v1/rescans/{own.json()['id']}", headers=tenant_admin).status_code == 200
