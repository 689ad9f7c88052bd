"""The OpenAI-compatible endpoint, driven by the official `openai` client against the running stack.

The gateway runs as a real HTTP server (uvicorn on 127.0.0.1, a free port, in a thread) over the session's
Redis and worker processes; the client is `openai.OpenAI(base_url=<gateway>/compat/openai/v1, api_key=<our key>)`.
Everything it checks afterwards (items, review queue) is read back through the ordinary /v1 API.
"""

from __future__ import annotations

import base64
import io
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from PIL import Image

from service.core import compat_openai as compat
from service.core.compat_openai import OPENAI_CATEGORIES, CompatError, Limits, moderation_result, parse_request
from service.core.config import Settings
from service.core.domain import Item
from service.core.policy import KIND_CATEGORIES
from tests.conftest import Stack, admin_headers, stack_values
from tests.support.redis_server import RedisServer, free_port
from tests.support.workers import WorkerProcess, poll, settings_env

PREFIX = "/compat/openai/v1"
FINAL = ("done", "failed", "rejected")
# The tiny test checkpoint emits the v1 names (models/text/labels.py CATEGORIES).
TINY_TEXT = {"toxicity", "insult", "threat", "hate", "sexual", "self_harm", "violence", "profanity"}
ALLOW_ALL = {c: {"review": 1.0, "block": 1.0} for c in KIND_CATEGORIES["text"]}
REVIEW_ALL = {c: {"review": 0.0, "block": 1.0} for c in KIND_CATEGORIES["text"]}
OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


# ---- the live gateway --------------------------------------------------------------------------------------

@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The gateway app as a real HTTP server on a free loopback port; yields its base URL."""
    import uvicorn

    from service.gateway.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(),
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="compat-gateway", daemon=True)
    thread.start()
    try:
        poll(lambda: server.started, 30, 0.05)
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class Gateway:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=60)

    def client(self, key: str, **kw: Any) -> openai.OpenAI:
        kw.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=f"{self.url}{PREFIX}", api_key=key, timeout=180, **kw)

    def key(self, tenant: str, role: str = "platform") -> str:
        resp = self.http.post("/v1/keys", json={"tenant": tenant, "role": role, "name": "compat-test"},
                              headers=admin_headers())
        assert resp.status_code == 201, resp.text
        return str(resp.json()["key"])

    def tenant(self, categories: dict[str, Any]) -> str:
        name = f"oa{uuid.uuid4().hex[:10]}"
        resp = self.http.put(f"/v1/policies/{name}", json={"categories": categories}, headers=admin_headers())
        assert resp.status_code == 200, resp.text
        return name

    def item(self, key: str, item_id: str) -> dict[str, Any]:
        resp = self.http.get(f"/v1/moderations/{item_id}", headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def listing(self, key: str) -> list[dict[str, Any]]:
        resp = self.http.get("/v1/moderations", params={"limit": 200}, headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
        return list(resp.json()["items"])


@pytest.fixture(scope="module")
def gw(stack: Stack) -> Iterator[Gateway]:
    # A generous bound: on a loaded 2-core machine a first media verdict includes loading the ONNX models.
    with serve(stack.settings.model_copy(update={"compat_wait_s": 240.0})) as url:
        gateway = Gateway(url)
        yield gateway
        gateway.http.close()


@pytest.fixture(scope="module")
def media_worker(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    from training.vision.fetch import MODEL_DIR, fetch_models

    fetch_models(MODEL_DIR)
    values = stack_values(Path(stack.settings.text_model_path))
    worker = WorkerProcess(stack.url, settings_env(values), queues="media",
                           log_path=tmp_path_factory.mktemp("compat-media") / "w.log").start()
    yield worker
    worker.stop()


def png_data_url(side: int, seed: int = 0) -> str:
    img = Image.new("RGB", (side, side))
    img.putdata([((x * 7 + seed) % 256, (y * 5) % 256, (x * y + seed) % 256) for y in range(side) for x in range(side)])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def ids_of(raw: Any) -> list[str]:
    return str(raw.headers["moderation-ids"]).split(",")


def expected_text_scores(scores: dict[str, float]) -> dict[str, float]:
    """What the mapping table in docs/compat-openai.md promises for a v1 (tiny) text checkpoint."""
    out = dict.fromkeys(OPENAI_CATEGORIES, 0.0)
    out.update({"harassment": scores["insult"], "harassment/threatening": scores["threat"], "hate": scores["hate"],
                "self-harm": scores["self_harm"], "sexual": scores["sexual"], "violence": scores["violence"]})
    return out


# ---- through the official client ---------------------------------------------------------------------------

def test_string_input_matches_the_stored_item(gw: Gateway) -> None:
    key = gw.key(gw.tenant(ALLOW_ALL))
    raw = gw.client(key).moderations.with_raw_response.create(model="omni-moderation-latest",
                                                               input="what a lovely evening at the cinema")
    resp = raw.parse()
    assert isinstance(resp, openai.types.ModerationCreateResponse)
    [item_id] = ids_of(raw)
    item = gw.item(key, item_id)
    assert item["status"] == "done" and item["kind"] == "text" and item["decision"] == "allow", item
    assert set(item["scores"]) == TINY_TEXT
    assert item["metadata"] == {"source": "openai-compat", "request_id": resp.id, "input": "input"}
    assert resp.id.startswith("modr-")
    assert resp.model == "+".join(f"{m['name']}@{m['version']}" for m in item["models"])
    [result] = resp.results
    assert result.flagged is False
    body = raw.http_response.json()["results"][0]
    # OpenAI's exact keys, slash-named ones included, and nothing else.
    assert set(body) == {"flagged", "categories", "category_scores", "category_applied_input_types"}
    for section in ("categories", "category_scores", "category_applied_input_types"):
        assert list(body[section]) == list(OPENAI_CATEGORIES)
    assert body["categories"] == dict.fromkeys(OPENAI_CATEGORIES, False)
    assert body["category_scores"] == pytest.approx(expected_text_scores(item["scores"]))
    scored = {"harassment", "harassment/threatening", "hate", "self-harm", "sexual", "violence"}
    assert body["category_applied_input_types"] == {c: ["text"] if c in scored else [] for c in OPENAI_CATEGORIES}
    assert result.category_scores.illicit == 0.0 and result.categories.illicit is False
    assert result.category_scores.harassment == pytest.approx(item["scores"]["insult"])


def test_list_of_strings_one_result_each_in_order(gw: Gateway) -> None:
    key = gw.key(gw.tenant(ALLOW_ALL))
    texts = ["the soundtrack was wonderful", "I did not enjoy the ending", "popcorn prices are too high"]
    raw = gw.client(key).moderations.with_raw_response.create(input=texts)
    resp = raw.parse()
    ids = ids_of(raw)
    assert len(ids) == len(resp.results) == 3
    for i, (item_id, result) in enumerate(zip(ids, resp.results, strict=True)):
        item = gw.item(key, item_id)
        assert item["metadata"]["input"] == f"input[{i}]" and item["metadata"]["request_id"] == resp.id
        got = result.model_dump(by_alias=True)["category_scores"]
        assert got == pytest.approx(expected_text_scores(item["scores"]))
    assert {i["id"] for i in gw.listing(key)} == set(ids)


def test_flagged_follows_the_policy_and_the_item_waits_in_the_review_queue(gw: Gateway) -> None:
    tenant = gw.tenant(REVIEW_ALL)
    key = gw.key(tenant)
    raw = gw.client(key).moderations.with_raw_response.create(input="see you at the premiere")
    [result] = raw.parse().results
    [item_id] = ids_of(raw)
    item = gw.item(key, item_id)
    assert item["decision"] == "review" and item["review_status"] == "pending"
    assert result.flagged is True
    categories = result.model_dump(by_alias=True)["categories"]
    # Every mapped category the tiny model scored is at/above its review threshold (0); the rest stay false.
    mapped = {"harassment", "harassment/threatening", "hate", "self-harm", "sexual", "violence"}
    assert categories == {c: c in mapped for c in OPENAI_CATEGORIES}
    moderator = gw.key(tenant, "moderator")
    queue = gw.http.get("/v1/reviews", headers={"Authorization": f"Bearer {moderator}"})
    assert queue.status_code == 200 and item_id in [i["id"] for i in queue.json()["items"]], queue.text
    # Audited like any item: the stream records its creation and the verdict.
    history = gw.http.get(f"/v1/moderations/{item_id}/history", headers={"Authorization": f"Bearer {moderator}"})
    assert history.status_code == 200, history.text
    assert [e["event"] for e in history.json()["events"]][0] == "created"


def test_idempotency_key_replays_the_same_items(gw: Gateway) -> None:
    key = gw.key(gw.tenant(ALLOW_ALL))
    client = gw.client(key)
    headers = {"Idempotency-Key": f"idem-{uuid.uuid4().hex}"}
    first = client.moderations.with_raw_response.create(input=["one", "two"], extra_headers=headers)
    again = client.moderations.with_raw_response.create(input=["one", "two"], extra_headers=headers)
    assert ids_of(first) == ids_of(again) and first.parse().id == again.parse().id
    assert len(gw.listing(key)) == 2
    with pytest.raises(openai.ConflictError) as err:
        client.moderations.create(input=["one", "three"], extra_headers=headers)
    assert err.value.code == "idempotency_conflict"


def test_multimodal_text_and_data_image_give_one_result(gw: Gateway, media_worker: WorkerProcess) -> None:
    key = gw.key(gw.tenant(ALLOW_ALL))
    raw = gw.client(key).moderations.with_raw_response.create(
        model="omni-moderation-latest",
        input=[{"type": "text", "text": "a poster for the new film"},
               {"type": "image_url", "image_url": {"url": png_data_url(96)}}])
    resp = raw.parse()
    text_id, image_id = ids_of(raw)
    text, image = gw.item(key, text_id), gw.item(key, image_id)
    assert (text["kind"], image["kind"]) == ("text", "image")
    assert image["status"] == "done" and set(image["scores"]) == {"sexual", "violence"}, image
    assert image["metadata"]["input"] == "input[1].image_url.url" and image["media"]["format"] == "png"
    [result] = resp.results
    assert result.flagged is (text["decision"] != "allow" or image["decision"] != "allow")
    dumped = result.model_dump(by_alias=True)
    scores, applied = dumped["category_scores"], dumped["category_applied_input_types"]
    assert scores["sexual"] == pytest.approx(max(text["scores"]["sexual"], image["scores"]["sexual"]))
    assert scores["violence"] == pytest.approx(max(text["scores"]["violence"], image["scores"]["violence"]))
    assert scores["violence/graphic"] == pytest.approx(image["scores"]["violence"])
    assert scores["harassment"] == pytest.approx(text["scores"]["insult"])
    assert applied["sexual"] == applied["violence"] == ["text", "image"]
    assert applied["violence/graphic"] == ["image"] and applied["harassment"] == ["text"]
    assert applied["illicit"] == [] and scores["illicit"] == 0.0
    names = [f"{m['name']}@{m['version']}" for m in text["models"] + image["models"]]
    assert resp.model == "+".join(dict.fromkeys(names))


def test_an_undecodable_image_is_a_400_naming_the_item(gw: Gateway, media_worker: WorkerProcess) -> None:
    key = gw.key(gw.tenant(ALLOW_ALL))
    with pytest.raises(openai.BadRequestError) as err:
        gw.client(key).moderations.create(input=[{"type": "image_url", "image_url": {"url": png_data_url(8)}}])
    assert err.value.code == "input_rejected" and err.value.param == "input[0].image_url.url"
    body = err.value.body
    assert isinstance(body, dict)
    item = gw.item(key, body["moderation_id"])
    assert body["moderation_ids"] == [item["id"]]
    assert item["status"] == "rejected" and item["error"]["code"] == "image_too_small"


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


# ---- the mapping and the parser, without a server ----------------------------------------------------------

def test_the_mapping_covers_openais_fields_and_our_categories() -> None:
    from openai.types.moderation import Categories, CategoryAppliedInputTypes, CategoryScores

    for model in (Categories, CategoryScores, CategoryAppliedInputTypes):
        aliases = {f.alias or name for name, f in model.model_fields.items()}
        assert aliases == set(OPENAI_CATEGORIES), model
    assert set(compat.CATEGORY_MAP) == set(OPENAI_CATEGORIES)
    assert compat.UNSUPPORTED == ("illicit", "illicit/violent")
    for kind in compat.INPUT_TYPES:
        mapped = {n for m in compat.CATEGORY_MAP.values() for n in m.get(kind, ())}
        assert mapped <= set(KIND_CATEGORIES[kind]), kind
        assert mapped | set(compat.UNMAPPED_OURS[kind]) == set(KIND_CATEGORIES[kind])
    assert compat.UNMAPPED_OURS == {"text": ("toxicity", "profanity"), "image": ()}


def _item(kind: str, decision: str, scores: dict[str, float], flagged: list[str]) -> Item:
    return {"id": "mod_x", "kind": kind, "status": "done", "decision": decision, "scores": scores,
            "flagged": flagged, "models": []}


def test_result_rules() -> None:
    text = _item("text", "review", {"insult": 0.7, "threat": 0.2, "profanity": 0.9}, ["insult", "profanity"])
    image = _item("image", "allow", {"sexual": 0.3, "violence": 0.6}, [])
    result = moderation_result([text, image])
    assert result["flagged"] is True
    assert [c for c, v in result["categories"].items() if v] == ["harassment"]
    assert result["category_scores"]["harassment/threatening"] == 0.2
    assert result["category_scores"]["violence/graphic"] == 0.6
    # Flagged only by a category OpenAI has no name for, or a hash-list block (no scores at all).
    only_profanity = moderation_result([_item("text", "block", {"profanity": 0.99}, ["profanity"])])
    assert only_profanity["flagged"] is True and not any(only_profanity["categories"].values())
    hashed = moderation_result([_item("image", "block", {}, [])])
    assert hashed["flagged"] is True and all(v == [] for v in hashed["category_applied_input_types"].values())
    assert moderation_result([image])["flagged"] is False


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
