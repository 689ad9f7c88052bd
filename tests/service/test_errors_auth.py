"""Bad input and bad keys get stable JSON error codes; tenants never see each other's items."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import admin_headers, new_key


def _code(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.json()["error"]["code"]


@pytest.mark.parametrize(
    ("content", "ctype", "status", "code"),
    [
        (b'{"text": ', "application/json", 400, "malformed_json"),
        (b'{"text": "caf\xc3"}', "application/json", 400, "invalid_encoding"),
        (b'{"text": "\\ud800 lone"}', "application/json", 422, "invalid_text"),
        (b'{"text": ""}', "application/json", 422, "empty_text"),
        (b'{"text": "hi", "bogus": 1}', "application/json", 422, "validation_error"),
        (b'{"txt": "hi"}', "application/json", 422, "validation_error"),
        (b'{"text": 5}', "application/json", 422, "validation_error"),
        (b'[1, 2]', "application/json", 422, "validation_error"),
        (b'{"text": "hi"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"text": "hi"}', "", 415, "unsupported_media_type"),
        (b'{"text": "hi", "callback_url": "ftp://example.com/x"}', "application/json", 422,
         "invalid_callback_url"),
        (b'{"text": "hi", "callback_url": "https://u:p@example.com/x"}', "application/json", 422,
         "invalid_callback_url"),
        (b'{"text": "hi", "callback_url": "http://10.1.2.3/hook"}', "application/json", 422,
         "invalid_callback_url"),
        (b'{"text": "hi", "callback_url": "http://192.168.1.10/hook"}', "application/json", 422,
         "invalid_callback_url"),
        (b'{"text": "hi", "callback_url": "http://100.100.100.200/latest/meta-data"}', "application/json", 422,
         "invalid_callback_url"),
        (b'{"text": "hi", "metadata": {"k": "' + b"v" * 9000 + b'"}}', "application/json", 422,
         "metadata_too_large"),
    ],
)
def test_bad_submissions(api: TestClient, content: bytes, ctype: str, status: int, code: str) -> None:
    headers, _ = new_key(api)
    if ctype:
        headers["Content-Type"] = ctype
    resp = api.post("/v1/moderations", content=content, headers=headers)
    assert resp.status_code == status, resp.text
    assert _code(resp) == code
    assert resp.json()["error"]["message"]


def test_limits(api: TestClient) -> None:
    headers, _ = new_key(api)
    limit = api.app.state.services.settings.max_text_chars
    resp = api.post("/v1/moderations", json={"text": "a" * (limit + 1)}, headers=headers)
    assert resp.status_code == 413 and _code(resp) == "text_too_long"
    assert resp.json()["error"]["details"] == {"length": limit + 1, "limit": limit}
    body_limit = api.app.state.services.settings.max_body_bytes
    resp = api.post("/v1/moderations", content=b'{"text": "' + b"a" * body_limit + b'"}',
                    headers={**headers, "Content-Type": "application/json"})
    assert resp.status_code == 413 and _code(resp) == "body_too_large"
    n = api.app.state.services.settings.max_batch_items + 1
    resp = api.post("/v1/moderations/batch", json={"items": [{"text": "x"}] * n}, headers=headers)
    assert resp.status_code == 413 and _code(resp) == "batch_too_large"
    resp = api.post("/v1/moderations/batch", json={"items": [{"text": "ok"}, {"text": ""}]}, headers=headers)
    assert resp.status_code == 422 and _code(resp) == "empty_text"
    resp = api.post("/v1/moderations?wait=11", json={"text": "x"}, headers=headers)
    assert resp.status_code == 422 and _code(resp) == "validation_error"


def test_worker_survives_bad_input_and_processes_next(api: TestClient) -> None:
    headers, _ = new_key(api)
    resp = api.post("/v1/moderations?wait=10", json={"text": "\u0000\u200b\ufeff\U0010ffff"}, headers=headers)
    assert resp.status_code == 200 and resp.json()["status"] == "done"
    resp = api.post("/v1/moderations?wait=10", json={"text": "next one"}, headers=headers)
    assert resp.status_code == 200 and resp.json()["status"] == "done"


def test_keys_and_roles(api: TestClient) -> None:
    resp = api.post("/v1/moderations", json={"text": "x"})
    assert resp.status_code == 401 and _code(resp) == "missing_api_key"
    resp = api.post("/v1/moderations", json={"text": "x"}, headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401 and _code(resp) == "invalid_api_key"
    resp = api.get("/v1/moderations/unknown", headers={"X-API-Key": "nope"})
    assert resp.status_code == 401
    platform, tenant = new_key(api)
    moderator, _ = new_key(api, "moderator", tenant)
    resp = api.post("/v1/moderations", json={"text": "x"}, headers=moderator)
    assert resp.status_code == 403 and _code(resp) == "forbidden_role"
    resp = api.post("/v1/keys", json={"tenant": tenant, "role": "admin"}, headers=platform)
    assert resp.status_code == 403
    resp = api.get("/v1/moderations/mod_doesnotexist", headers=platform)
    assert resp.status_code == 404 and _code(resp) == "moderation_not_found"


def test_key_revocation(api: TestClient) -> None:
    resp = api.post("/v1/keys", json={"tenant": "rev", "role": "platform"}, headers=admin_headers())
    key, key_id = resp.json()["key"], resp.json()["key_id"]
    listed = api.get("/v1/keys", headers=admin_headers()).json()
    assert any(k["key_id"] == key_id for k in listed) and all("key" not in k for k in listed)
    assert api.delete(f"/v1/keys/{key_id}", headers=admin_headers()).status_code == 204
    resp = api.post("/v1/moderations", json={"text": "x"}, headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 401


def test_tenant_isolation(api: TestClient) -> None:
    a, tenant_a = new_key(api)
    b, _ = new_key(api)
    item = api.post("/v1/moderations", json={"text": "tenant a only", "external_id": "shared-ext"},
                    headers=a).json()
    assert api.get(f"/v1/moderations/{item['id']}", headers=b).status_code == 404
    assert api.get(f"/v1/moderations/{item['id']}/webhooks", headers=b).status_code == 404
    assert api.get("/v1/moderations", params={"external_id": "shared-ext"}, headers=b).json()["items"] == []
    assert all(i["tenant"] != tenant_a for i in api.get("/v1/moderations", headers=b).json()["items"])
    assert [i["id"] for i in api.get("/v1/moderations", headers=a).json()["items"]] == [item["id"]]
    assert api.get(f"/v1/tenants/{tenant_a}/webhook-secret", headers=b).status_code == 404
    assert api.get(f"/v1/policies/{tenant_a}", headers=b).status_code == 404
    # Admin sees it.
    assert api.get(f"/v1/moderations/{item['id']}", headers=admin_headers()).status_code == 200


def test_streamed_body_over_limit_is_413(api: TestClient) -> None:
    headers, _ = new_key(api)
    limit = api.app.state.services.settings.max_body_bytes

    def chunks():  # no Content-Length: the limit must hold while streaming
        yield b'{"text": "'
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    resp = api.post("/v1/moderations", content=chunks(), headers={**headers, "Content-Type": "application/json"})
    assert resp.status_code == 413 and _code(resp) == "body_too_large"


def test_listing_pages_with_cursor(api: TestClient) -> None:
    headers, _ = new_key(api)
    ids = {api.post("/v1/moderations", json={"text": f"p{i}"}, headers=headers).json()["id"] for i in range(5)}
    batch = api.post("/v1/moderations/batch", json={"items": [{"text": f"b{i}"} for i in range(5)]}, headers=headers)
    ids |= {x["id"] for x in batch.json()["items"]}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/moderations", params=params, headers=headers).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert set(seen) == ids and len(seen) == 10


def test_health_and_metrics(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}  # anonymous: the status only
    ready = api.get("/readyz", headers=admin_headers())
    assert ready.status_code == 200, ready.text
    assert any("text" in w["queues"] for w in ready.json()["workers"])
    headers, _ = new_key(api)
    api.post("/v1/moderations?wait=10", json={"text": "metrics"}, headers=headers)
    text = api.get("/metrics").text
    assert 'moderation_http_requests_total{method="POST",route="/v1/moderations",status="200"}' in text
    assert "moderation_verdicts_total{decision=" in text
    assert "moderation_pending_items" in text


def test_openapi_documents_every_route(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            assert op.get("description") or op.get("summary"), f"{method} {path} undocumented"
    assert "/v1/moderations" in spec["paths"] and "/v1/moderations/batch" in spec["paths"]


@pytest.fixture(scope="module")
def one_tenant(api: TestClient) -> dict[str, dict[str, str]]:
    """Platform and moderator keys of one tenant, made once: the parametrized cases below would otherwise spend
    the admin key's rate-limit budget on key creation."""
    platform, tenant = new_key(api)
    moderator, _ = new_key(api, "moderator", tenant)
    return {"platform": platform, "moderator": moderator}


BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400", "garbage", "1e308", "-1",
               "9" * 400, "0x10", "1_000", " 5", "5\n", "1e5", "1.5.5", "+5"]


def _is_json_422(resp, codes: set[str]) -> bool:  # type: ignore[no-untyped-def]
    return (resp.status_code == 422 and resp.headers["content-type"].startswith("application/json")
            and _code(resp) in codes and bool(resp.json()["error"]["message"]))


@pytest.mark.parametrize("cursor", BAD_NUMBERS)
def test_bad_listing_cursor_is_422_not_500(api: TestClient, one_tenant: dict[str, dict[str, str]],
                                           cursor: str) -> None:
    headers = one_tenant["platform"]
    resp = api.get("/v1/moderations", params={"cursor": cursor}, headers=headers)
    assert _is_json_422(resp, {"invalid_cursor", "validation_error"}), resp.text
    resp = api.get("/v1/moderations", params={"cursor": cursor}, headers=admin_headers())
    assert _is_json_422(resp, {"invalid_cursor", "validation_error"}), resp.text


@pytest.mark.parametrize("cursor", [*BAD_NUMBERS, "nan:mod_x", "inf:mod_x", "-inf:mod_x", "1e400:mod_x",
                                    "0.5", "0.5:", "0.5:bad id", ":mod_x", "0.5:" + "x" * 150, "1_0:mod_x",
                                    " 1:mod_x", "1e999:mod_x", "1:mod_x\n"])
def test_bad_review_cursor_is_422_not_500(api: TestClient, one_tenant: dict[str, dict[str, str]],
                                          cursor: str) -> None:
    moderator = one_tenant["moderator"]
    resp = api.get("/v1/reviews", params={"cursor": cursor}, headers=moderator)
    assert _is_json_422(resp, {"invalid_cursor", "validation_error"}), resp.text
    resp = api.get("/v1/reviews", params={"cursor": cursor, "status": "claimed"}, headers=moderator)
    assert _is_json_422(resp, {"invalid_cursor", "validation_error"}), resp.text


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/moderations", {"limit": v}) for v in ("0", "201", "nan", "inf", "1e400", "9" * 400, "-1", "x")
    ] + [
        ("/v1/moderations", {"tenant": v}) for v in ("", "a:b", "x" * 65, "sp ace")
    ] + [
        ("/v1/moderations", {"external_id": "e" * 257}),
        ("/v1/moderations", {"cursor": "1" * 65}),
        ("/v1/moderations/" + "m" * 129, {}),
        ("/v1/moderations/" + "m" * 129 + "/webhooks", {}),
        ("/v1/moderations/" + "m" * 129 + "/history", {}),
    ] + [
        ("/v1/reviews", {key: v}) for key in ("min_age_s", "max_age_s")
        for v in ("nan", "inf", "-inf", "1e400", "-1", "1e12", "x")
    ] + [
        ("/v1/reviews", {"limit": v}) for v in ("0", "201", "nan", "1e400", "9" * 400)
    ] + [
        ("/v1/reviews", {"kind": "audio"}), ("/v1/reviews", {"status": "done"}),
        ("/v1/reviews", {"category": "c" * 65}), ("/v1/reviews", {"tenant": "a:b"}),
        ("/v1/reviews/stats", {"tenant": "x" * 65}),
    ],
)
def test_bad_query_and_path_params_are_422(api: TestClient, one_tenant: dict[str, dict[str, str]], path: str,
                                           params: dict[str, str]) -> None:
    headers = one_tenant["moderator" if path.startswith("/v1/reviews") else "platform"]
    resp = api.get(path, params=params, headers=headers)
    assert _is_json_422(resp, {"validation_error", "invalid_cursor"}), resp.text


@pytest.mark.parametrize("wait", ["nan", "inf", "-inf", "1e400", "-1", "11", "x"])
def test_bad_wait_is_422(api: TestClient, one_tenant: dict[str, dict[str, str]], wait: str) -> None:
    headers = one_tenant["platform"]
    resp = api.post("/v1/moderations", params={"wait": wait}, json={"text": "x"}, headers=headers)
    assert _is_json_422(resp, {"validation_error"}), resp.text


def test_good_cursors_still_page(api: TestClient) -> None:
    headers, _ = new_key(api)
    ids = [api.post("/v1/moderations", json={"text": f"c{i}"}, headers=headers).json()["id"] for i in range(3)]
    first = api.get("/v1/moderations", params={"limit": 2}, headers=headers).json()
    assert first["next_cursor"] and len(first["items"]) == 2
    rest = api.get("/v1/moderations", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers).json()
    assert {i["id"] for i in first["items"] + rest["items"]} == set(ids)
    # Any finite non-negative number is a valid position (e.g. "now" as an integer).
    assert api.get("/v1/moderations", params={"cursor": "0"}, headers=headers).json()["items"] == []
    assert len(api.get("/v1/moderations", params={"cursor": "99999999999"}, headers=headers).json()["items"]) == 3


def test_tenant_param_of_another_tenant_is_404(api: TestClient) -> None:
    a, _ = new_key(api)
    _, tenant_b = new_key(api)
    moderator_a, tenant_a = new_key(api, "moderator")
    for path, headers in (("/v1/moderations", a), ("/v1/reviews", moderator_a), ("/v1/reviews/stats", moderator_a)):
        resp = api.get(path, params={"tenant": tenant_b}, headers=headers)
        assert resp.status_code == 404 and _code(resp) == "tenant_not_found", (path, resp.text)
    assert api.get("/v1/reviews", params={"tenant": tenant_a}, headers=moderator_a).status_code == 200
