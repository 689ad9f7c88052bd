"""The submission fast path (service/gateway/fastpath.py) answers exactly as the FastAPI route does.

Every case is sent to two apps on the same Redis and worker: the default one (fast path on) and one with
MOD_GATEWAY_FAST_PATH=false, and the answers are compared: status, error code, body keys, headers, and for
accepted texts the stored item. A further test removes the route from an app to prove which requests the fast
path itself answers and which it hands on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from service.core.errors import ApiError
from service.gateway.app import create_app
from service.gateway.deps import get_services
from service.store.items import ItemStore
from tests.conftest import Stack, new_key
from tests.service.test_text_flow import wait_done

# The fields of the stored item that the submission decides (ids, times and the verdict differ by design).
STORED = ("tenant", "kind", "text", "external_id", "metadata", "priority", "callback_url", "content_hash")


@pytest.fixture(scope="module")
def route_api(stack: Stack) -> Iterator[TestClient]:
    with TestClient(create_app(stack.settings.model_copy(update={"gateway_fast_path": False}))) as client:
        yield client


def _shape(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    shape: dict[str, Any] = {"status": resp.status_code, "keys": sorted(body),
                             "headers": sorted(h for h in resp.headers if h.startswith(("ratelimit", "location",
                                                                                         "retry-after")))}
    if "error" in body:
        shape["code"] = body["error"]["code"]
    else:
        shape["status_field"] = body["status"]
        shape["location_matches"] = resp.headers.get("location") == f"/v1/moderations/{body['id']}"
    return shape


CASES: list[tuple[str, bytes, str, dict[str, str]]] = [
    ("plain", b'{"text": "a fine film"}', "application/json", {}),
    ("charset", b'{"text": "a fine film"}', "application/json; charset=utf-8", {}),
    ("all fields", '{"text": "ok \u597d", "external_id": "e-1", "metadata": {"a": [1, 2]}, "priority": 7}'.encode(),
     "application/json", {}),
    ("priority as string", b'{"text": "x", "priority": "5"}', "application/json", {}),
    ("malformed", b'{"text": ', "application/json", {}),
    ("bad utf-8", b'{"text": "caf\xc3"}', "application/json", {}),
    ("lone surrogate", b'{"text": "\\ud800 lone"}', "application/json", {}),
    ("empty", b'{"text": ""}', "application/json", {}),
    ("extra field", b'{"text": "hi", "bogus": 1}', "application/json", {}),
    ("list body", b"[1, 2]", "application/json", {}),
    ("priority too high", b'{"text": "x", "priority": 101}', "application/json", {}),
    ("wrong type", b'{"text": "hi"}', "text/plain", {}),
    ("bad callback", b'{"text": "hi", "callback_url": "http://10.1.2.3/hook"}', "application/json", {}),
    ("too long", b'{"text": "' + b"x" * 200_001 + b'"}', "application/json", {}),
    ("long idempotency key", b'{"text": "x"}', "application/json", {"Idempotency-Key": "k" * 129}),
]


@pytest.mark.parametrize(("name", "body", "ctype", "extra"), CASES, ids=[c[0] for c in CASES])
def test_fast_path_answers_like_the_route(api: TestClient, route_api: TestClient, stack: Stack, name: str,
                                          body: bytes, ctype: str, extra: dict[str, str]) -> None:
    headers, _ = new_key(api)
    answers = []
    for client in (api, route_api):
        resp = client.post("/v1/moderations", content=body, headers={**headers, **extra, "Content-Type": ctype})
        answers.append(resp)
    assert _shape(answers[0]) == _shape(answers[1]), name
    if answers[0].status_code == 202:
        store = ItemStore(redis.Redis.from_url(stack.url, decode_responses=True))
        stored = [store.get(r.json()["id"]) for r in answers]
        first, second = ({k: s.get(k) for k in STORED} for s in stored if s is not None)
        assert first == second
        assert first["text"] and first["content_hash"] and first["kind"] == "text"


def test_roles_and_keys_answer_like_the_route(api: TestClient, route_api: TestClient) -> None:
    moderator, _ = new_key(api, role="moderator")
    for headers in (moderator, {"Authorization": "Bearer nope"}, {}):
        shapes = [_shape(c.post("/v1/moderations", json={"text": "x"}, headers=headers)) for c in (api, route_api)]
        assert shapes[0] == shapes[1]
        assert shapes[0]["status"] in (401, 403)


def test_idempotency_is_shared_by_both_paths(api: TestClient, route_api: TestClient) -> None:
    headers, _ = new_key(api)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = api.post("/v1/moderations", json={"text": "same"}, headers={**headers, **key})
    again = route_api.post("/v1/moderations", json={"text": "same"}, headers={**headers, **key})
    replay = api.post("/v1/moderations", json={"text": "same"}, headers={**headers, **key})
    assert first.status_code == again.status_code == replay.status_code == 202
    assert first.json()["id"] == again.json()["id"] == replay.json()["id"]
    # A different body under the same key: 409 from the app's own handler, on both paths.
    for client in (api, route_api):
        conflict = client.post("/v1/moderations", json={"text": "other"}, headers={**headers, **key})
        assert conflict.status_code == 409
        assert conflict.json()["error"]["code"] == "idempotency_conflict"
        assert conflict.json()["error"]["details"]["ids"] == [first.json()["id"]]


def test_fast_path_answers_valid_requests_itself(stack: Stack) -> None:
    """With the route's dependencies overridden to fail, valid submissions are still accepted (the fast path
    answered them, resolving no dependency) and reach a verdict; what the fast path hands on reaches the route."""
    app = create_app(stack.settings)

    async def route_was_used() -> None:
        raise ApiError("the route answered", code="route_used", status=418)

    with TestClient(app) as client:
        headers, _ = new_key(client)
        app.dependency_overrides[get_services] = route_was_used
        ok = client.post("/v1/moderations", json={"text": "hello there"}, headers=headers)
        assert ok.status_code == 202, ok.text
        for handed_on in (client.post("/v1/moderations?wait=1", json={"text": "x"}, headers=headers),
                          client.post("/v1/moderations", json={"text": "x", "callback_url": "http://127.0.0.1:9/"},
                                      headers=headers)):
            assert handed_on.status_code == 418, handed_on.text
        app.dependency_overrides.clear()
        metrics = client.get("/metrics").text
        done = wait_done(client, headers, ok.json()["id"])
        assert done["status"] == "done"
    assert 'route="/v1/moderations",status="202"' in metrics
