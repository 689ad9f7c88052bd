"""The OpenAI-compatible endpoint, driven by the official `openai` client against the running stack.

The gateway runs as a real HTTP server (tests/support/openai_gateway.py) over the session's Redis and worker
processes; the client is `openai.OpenAI(base_url=<gateway>/compat/openai/v1, api_key=<our key>)`. Everything it
checks afterwards (items, review queue) is read back through the ordinary /v1 API. Refusals, error shapes, the
time bound and rate limits: tests/service/test_openai_compat_errors.py.
"""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from PIL import Image

from service.core import compat_openai as compat
from service.core.compat_openai import OPENAI_CATEGORIES, moderation_result
from service.core.domain import Item
from service.core.policy import KIND_CATEGORIES
from tests.conftest import Stack, stack_values
from tests.support.openai_gateway import ALLOW_ALL, Gateway
from tests.support.workers import WorkerProcess, settings_env

# The tiny test checkpoint emits the v1 names (models/text/labels.py CATEGORIES).
TINY_TEXT = {"toxicity", "insult", "threat", "hate", "sexual", "self_harm", "violence", "profanity"}
REVIEW_ALL = {c: {"review": 0.0, "block": 1.0} for c in KIND_CATEGORIES["text"]}


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


# ---- the mapping, without a server -------------------------------------------------------------------------

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
