"""The OpenAI-compatible endpoint's refusals and errors: what is refused before anything is created, the wire
format of every error under the prefix, the time bound (504, not retried into duplicates), rate limits, and the
parser's limits. The happy path and the category mapping: tests/service/test_openai_compat.py.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import redis

from service.core import compat_openai as compat
from service.core.compat_openai import CompatError, Limits, parse_request
from service.core.config import Settings
from tests.conftest import stack_values
from tests.support.openai_gateway import ALLOW_ALL, OPENAI_ERROR_KEYS, PREFIX, Gateway, serve
from tests.support.redis_server import RedisServer

# ---- refused through the official client -------------------------------------------------------------------

def test_http_image_urls_are_refused_without_creating_anything(gw: Gateway) -> None:
    key = gw.key(gw.tenant(ALLOW_ALL))
    client = gw.client(key)
    for url in ("https://example.com/cat.png", "http://127.0.0.1:9/x.png", "ftp://example.com/x.png",
                "//example.com/x.png", "file:///etc/passwd"):
        with pytest.raises(openai.BadRequestError) as err:
            client.moderations.create(input=[{"type": "text", "text": "look"},
                                             {"type": "image_url", "image_url": {"url": url}}])
        assert err.value.code == "image_url_not_allowed", url
        assert err.value.param == "input[1].image_url.url"
        assert err.value.type == "invalid_request_error"
    assert gw.listing(key) == []


def test_auth_failures_map_to_the_clients_exceptions(gw: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError) as err:
        gw.client("not-a-key").moderations.create(input="hello")
    assert err.value.status_code == 401 and err.value.code == "invalid_api_key"
    assert set(err.value.response.json()["error"]) == OPENAI_ERROR_KEYS
    moderator = gw.key(gw.tenant(ALLOW_ALL), "moderator")
    with pytest.raises(openai.PermissionDeniedError) as denied:
        gw.client(moderator).moderations.create(input="hello")
    assert denied.value.code == "forbidden_role"


# ---- the wire format of errors -----------------------------------------------------------------------------

def _data(payload: bytes, mime: str = "image/png") -> dict[str, Any]:
    url = f"data:{mime};base64,{base64.b64encode(payload).decode()}"
    return {"type": "image_url", "image_url": {"url": url}}


BAD_REQUESTS: list[tuple[Any, str, str | None]] = [
    ({}, "empty_input", "input"),
    ({"input": ""}, "empty_input", "input"),
    ({"input": []}, "empty_input", "input"),
    ({"input": ["fine", ""]}, "empty_input", "input[1]"),
    ({"input": [{"type": "text", "text": ""}]}, "empty_input", "input[0].text"),
    ({"input": ["x"] * 33}, "too_many_inputs", "input"),
    ({"input": "x" * 100_001}, "text_too_long", "input"),
    ({"input": 5}, "invalid_input_type", "input"),
    ({"input": ["a", {"type": "text", "text": "b"}]}, "invalid_input_type", "input"),
    ({"input": [{"type": "audio", "audio": "..."}]}, "unsupported_part_type", "input[0].type"),
    ({"input": [{"type": "image_url", "image_url": "data:image/png;base64,AA=="}]}, "invalid_input_type",
     "input[0].image_url.url"),
    ({"input": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@not-base64@@"}}]},
     "invalid_data_url", "input[0].image_url.url"),
    ({"input": [{"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]}, "invalid_data_url",
     "input[0].image_url.url"),
    ({"input": [_data(b"just some text, not an image at all")]}, "unsupported_image_format",
     "input[0].image_url.url"),
    ({"input": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
     "image_url_not_allowed", "input[0].image_url.url"),
    ({"input": "hi", "user": "u1"}, "unknown_parameter", "user"),
    ({"input": "hi", "model": 7}, "invalid_model", "model"),
    (["input", "hi"], "invalid_body", None),
]


@pytest.fixture(scope="module")
def bad_key(gw: Gateway) -> str:
    return gw.key(f"oa{uuid.uuid4().hex[:10]}")


@pytest.mark.parametrize(("payload", "code", "param"), BAD_REQUESTS, ids=[c for _, c, _ in BAD_REQUESTS])
def test_bad_requests_are_openai_shaped_400s(gw: Gateway, bad_key: str, payload: Any, code: str,
                                             param: str | None) -> None:
    key = bad_key
    resp = gw.http.post(f"{PREFIX}/moderations", json=payload, headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert set(resp.json()) == {"error"} and set(error) == OPENAI_ERROR_KEYS, error
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    assert error["message"]
    assert gw.listing(key) == []  # nothing half-created


def test_every_error_under_the_prefix_is_openai_shaped_and_v1_keeps_its_own(gw: Gateway) -> None:
    key = gw.key(gw.tenant(ALLOW_ALL))
    auth = {"Authorization": f"Bearer {key}"}
    cases = [
        (gw.http.post(f"{PREFIX}/moderations", content=b"{not json", headers=auth), 400, "invalid_json"),
        (gw.http.post(f"{PREFIX}/moderations", json={"input": "hi"}), 401, "missing_api_key"),
        (gw.http.get(f"{PREFIX}/moderations", headers=auth), 405, "method_not_allowed"),
        (gw.http.get(f"{PREFIX}/models", headers=auth), 404, "unknown_url"),
        (gw.http.post(f"{PREFIX}/moderations", json={"input": "hi"},
                      headers={**auth, "Idempotency-Key": "k" * 200}), 400, "validation_error"),
    ]
    for resp, status, code in cases:
        assert resp.status_code == status, (code, resp.text)
        assert set(resp.json()["error"]) == OPENAI_ERROR_KEYS and resp.json()["error"]["code"] == code
    assert cases[1][0].headers["www-authenticate"] == "Bearer"
    assert cases[2][0].headers["allow"] == "POST"
    ours = gw.http.post("/v1/moderations", json={"text": ""}, headers=auth)
    assert ours.status_code == 422 and set(ours.json()["error"]) == {"code", "message", "details"}


# ---- the time bound, retries, rate limits (a gateway on a DB no worker consumes) -------------------------

@pytest.fixture()
def idle_gw(redis_server: RedisServer, tiny_model: Path, tmp_path: Path) -> Iterator[tuple[Gateway, Settings]]:
    """A gateway whose broker no worker reads: every item stays queued, so the wait bound always runs out."""
    url = redis_server.url(11)
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings = Settings(redis_url=url, **{**stack_values(tiny_model), "data_dir": str(tmp_path),  # type: ignore[arg-type]
                                          "compat_wait_s": 0.3, "ratelimit_submit_key_burst": 5,
                                          "ratelimit_submit_key_per_s": 0.001})
    with serve(settings) as base:
        gateway = Gateway(base)
        yield gateway, settings
        gateway.http.close()
    client.flushdb()
    client.close()


def test_timeout_names_the_items_and_is_not_retried_into_duplicates(idle_gw: tuple[Gateway, Settings]) -> None:
    gw, _ = idle_gw
    key = gw.key(f"oa{uuid.uuid4().hex[:10]}")
    # Default retries: the answer says `x-should-retry: false`, so the client must not resubmit.
    with pytest.raises(openai.InternalServerError) as err:
        gw.client(key, max_retries=2).moderations.create(input=["slow one", "slow two"])
    assert err.value.status_code == 504 and err.value.code == "moderation_timeout"
    assert err.value.response.headers["x-should-retry"] == "false"
    body = err.value.body
    assert isinstance(body, dict) and set(body) == OPENAI_ERROR_KEYS | {"moderation_ids", "pending_ids"}
    assert body["moderation_ids"] == body["pending_ids"] and len(body["moderation_ids"]) == 2
    assert sorted(i["id"] for i in gw.listing(key)) == sorted(body["moderation_ids"])  # no duplicates
    for item_id in body["moderation_ids"]:  # accepted and kept: a worker would still decide them
        assert gw.item(key, item_id)["status"] == "queued"
    # With an Idempotency-Key a retry is safe: allowed, and it waits on the same items again.
    headers = {"Idempotency-Key": f"idem-{uuid.uuid4().hex}"}
    with pytest.raises(openai.InternalServerError) as again:
        gw.client(key, max_retries=1).moderations.create(input="slow three", extra_headers=headers)
    assert again.value.response.headers["x-should-retry"] == "true"
    assert len(gw.listing(key)) == 3


def test_rate_limit_is_an_openai_rate_limit_error(idle_gw: tuple[Gateway, Settings]) -> None:
    gw, _ = idle_gw
    key = gw.key(f"oa{uuid.uuid4().hex[:10]}")
    client = gw.client(key)
    for _ in range(5):  # the key's burst of 5 submit tokens (each answer is the 504 of an idle gateway)
        with pytest.raises(openai.InternalServerError):
            client.moderations.create(input="x")
    with pytest.raises(openai.RateLimitError) as err:
        client.moderations.create(input="x")
    assert err.value.code == "rate_limited" and int(err.value.response.headers["retry-after"]) >= 1
    # The bucket is the one /v1 submissions use: the compat prefix adds no quota.
    v1 = gw.http.post("/v1/moderations", json={"text": "x"}, headers={"Authorization": f"Bearer {key}"})
    assert v1.status_code == 429 and v1.json()["error"]["code"] == "rate_limited"
    assert len(gw.listing(key)) == 5



def test_parser_limits() -> None:
    limits = Limits(max_inputs=2, max_text_chars=5, max_image_bytes=100)
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 200).decode()
    for payload, code in [({"input": [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{big}"}}]},
                           "image_too_large"),
                          ({"input": ["a", "b", "c"]}, "too_many_inputs"),
                          ({"input": "123456"}, "text_too_long"),
                          ({"input": "\ud800"}, "invalid_text")]:
        with pytest.raises(CompatError) as err:
            parse_request(payload, limits)
        assert err.value.code == code and err.value.status == 400
    req = parse_request({"input": ["ab", "cd"]}, limits)
    assert [len(g) for g in req.groups] == [1, 1] and req.model == compat.DEFAULT_MODEL
