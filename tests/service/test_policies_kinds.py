"""Per-kind policies: the one merge order (unit), validation codes of the override API, and tenant overrides on
text, image and video through the gateway and real worker processes (the decision changes, the verdict's
`policy_version` names the override, and a kind's section never leaks into another kind)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image

from service.core.policy import (
    KIND_CATEGORIES,
    KINDS,
    MEDIA_CATEGORIES,
    TEXT_CATEGORIES,
    Layer,
    Policy,
    PolicyError,
    Thresholds,
    layer_errors,
    load_policy_file,
    merge_thresholds,
    parse_layer,
    parse_policy,
)
from service.store import keys
from tests.conftest import Stack, admin_headers, new_key, stack_values
from tests.models.vision.media import photo, write_video
from tests.support.workers import WorkerProcess, poll, settings_env

ROOT = Path(__file__).resolve().parents[2]
TEST_POLICY = ROOT / "tests" / "support" / "policy.yaml"
FINAL = ("done", "failed", "rejected")


def t(x: float) -> Thresholds:
    return Thresholds(x, x)


# ---- the merge order ------------------------------------------------------------------------------------------
# One category set at every layer to a distinct value, so the value read back names the layer that won.
FILE = Layer(categories={"sexual": t(0.2)}, kinds={"text": {"sexual": t(0.3)}, "image": {"sexual": t(0.3)}},
             languages={"zh": {"sexual": t(0.4)}})
TENANT = Layer(categories={"sexual": t(0.5)}, kinds={"image": {"sexual": t(0.6)}})


def test_merge_order_each_layer_wins_over_the_previous() -> None:
    empty = Layer()
    default = Policy(name="p", version=1, default=t(0.1))
    assert default.for_kind("text").thresholds("sexual") == t(0.1)  # 1. default_thresholds
    only_file_cats = Layer(categories=FILE.categories)
    assert merge_thresholds(only_file_cats, empty, "text", "zh")["sexual"] == t(0.2)  # 2. file categories
    no_lang = Layer(categories=FILE.categories, kinds=FILE.kinds)
    assert merge_thresholds(no_lang, empty, "text", "zh")["sexual"] == t(0.3)  # 3. file kinds.text
    assert merge_thresholds(FILE, empty, "text", "zh")["sexual"] == t(0.4)  # 4. file languages.zh
    assert merge_thresholds(FILE, Layer(categories=TENANT.categories), "text", "zh")["sexual"] == t(0.5)  # 5.
    assert merge_thresholds(FILE, TENANT, "image", None)["sexual"] == t(0.6)  # 6. tenant kinds.image
    # Tenant `categories` win over the file's kinds section (the image defect of issue 15).
    assert merge_thresholds(FILE, Layer(categories=TENANT.categories), "image", None)["sexual"] == t(0.5)


def test_sections_apply_to_their_kind_and_language_only() -> None:
    policy = Policy(name="p", version=1, default=t(0.1), base=FILE, override=Layer(kinds={"image": {"sexual": t(0.6)}}))
    assert policy.for_kind("image").thresholds("sexual") == t(0.6)
    assert policy.for_kind("video").thresholds("sexual") == t(0.2)  # no video section: file categories
    assert policy.for_kind("text").thresholds("sexual") == t(0.3)  # the image section does not leak into text
    assert policy.for_kind("text").for_language("zh").thresholds("sexual") == t(0.4)
    assert policy.for_language("zh").for_kind("text").thresholds("sexual") == t(0.4)  # call order does not matter
    assert policy.for_kind("image").for_language("zh").thresholds("sexual") == t(0.6)  # languages are text-only
    assert policy.thresholds("sexual") == t(0.2)  # kind-independent view: the two `categories` layers
    # The id is the same for every kind and language: it names the file and the override versions.
    tenant = Policy(name="p", version=1, default=t(0.1), base=FILE, override=TENANT, tenant="acme", tenant_version=3)
    assert {tenant.for_kind(k).for_language("zh").id for k in KINDS} == {"p@1+acme@3"}
    resolved = tenant.to_dict()["resolved"]
    assert resolved["image"]["categories"]["sexual"] == {"review": 0.6, "block": 0.6}
    assert resolved["video"]["categories"]["sexual"] == resolved["text"]["categories"]["sexual"] == {
        "review": 0.5, "block": 0.5}
    assert set(resolved["image"]["categories"]) == set(MEDIA_CATEGORIES)


def test_known_categories_match_the_models() -> None:
    from models.text.labels import ALL_CATEGORIES
    from models.vision.classifiers import CATEGORIES

    assert TEXT_CATEGORIES == ALL_CATEGORIES
    assert KIND_CATEGORIES["image"] == KIND_CATEGORIES["video"] == CATEGORIES


def test_shipped_and_test_policies_load() -> None:
    shipped = load_policy_file(ROOT / "policies" / "default.yaml")
    assert set(shipped.base.kinds) == {"image", "video"}
    # The shipped text thresholds are calibrated for text; images use their own section.
    assert shipped.for_kind("image").thresholds("sexual") == shipped.base.kinds["image"]["sexual"]
    assert shipped.for_kind("text").thresholds("sexual") == shipped.base.categories["sexual"]
    assert load_policy_file(TEST_POLICY).for_kind("video").thresholds("sexual") == Thresholds(0.6, 0.95)


@pytest.mark.parametrize(("section", "code", "field"), [
    ({"kinds": {"audio": {"categories": {}}}}, "unknown_kind", "kinds.audio"),
    ({"categories": {"sexx": {"review": 0.1, "block": 0.2}}}, "unknown_category", "categories.sexx"),
    ({"kinds": {"image": {"categories": {"hate": {"review": 0.1, "block": 0.2}}}}}, "unknown_category",
     "kinds.image.categories.hate"),
    ({"kinds": {"video": {"categories": {"violence": {"review": 0.5, "block": 0.4}}}}}, "invalid_policy",
     "kinds.video.categories.violence"),
    ({"categories": {"sexual": {"review": -0.1, "block": 0.4}}}, "invalid_policy", "categories.sexual"),
    ({"categories": {"sexual": {"review": 0.1, "block": 1.1}}}, "invalid_policy", "categories.sexual"),
    ({"categories": {"sexual": {"review": 0.1}}}, "invalid_policy", "categories.sexual"),
    ({"categories": {"sexual": {"review": 0.1, "block": 0.2, "allow": 0.0}}}, "invalid_policy", "categories.sexual"),
    ({"categories": {"sexual": {"review": "0.1", "block": 0.2}}}, "invalid_policy", "categories.sexual"),
    ({"kinds": {"image": {"thresholds": {}}}}, "invalid_policy", "kinds.image"),
    ({"languages": {"zh": {"categories": {}}}}, "invalid_policy", "languages"),  # the file only
])
def test_layer_validation_codes(section: dict[str, Any], code: str, field: str) -> None:
    [error] = layer_errors(section, "tenant x")
    assert (error.code, error.field) == (code, field), str(error)
    with pytest.raises(PolicyError):
        parse_layer(section, "tenant x")


def test_file_with_an_unknown_kind_or_category_is_refused() -> None:
    base = {"name": "p", "version": 1, "categories": {}}
    with pytest.raises(PolicyError, match="unknown kind 'audio'"):
        parse_policy({**base, "kinds": {"audio": {"categories": {}}}}, "f.yaml")
    with pytest.raises(PolicyError, match="unknown category 'hate' for image"):
        parse_policy({**base, "kinds": {"image": {"categories": {"hate": {"review": 0.1, "block": 0.2}}}}}, "f.yaml")


def test_a_stored_override_with_names_refused_today_still_reads() -> None:
    # Written before names were checked: unknown names never match a score, they must not break every read.
    layer = parse_layer({"categories": {"legacy": {"review": 0.1, "block": 0.2}}}, "tenant x", strict=False)
    assert layer.categories == {"legacy": Thresholds(0.1, 0.2)}


# ---- the API --------------------------------------------------------------------------------------------------
def put(api: TestClient, tenant: str, body: dict[str, Any]) -> Any:
    return api.put(f"/v1/policies/{tenant}", json=body, headers=admin_headers())


def test_api_refuses_unknown_kinds_and_categories_with_stable_codes(api: TestClient) -> None:
    _, tenant = new_key(api)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"kinds": {"audio": {"categories": {}}}}, "unknown_kind", "kinds.audio"),
        ({"kinds": {"image": {"categories": {"toxicity": {"review": 0.1, "block": 0.2}}}}}, "unknown_category",
         "kinds.image.categories.toxicity"),
        ({"categories": {"nudity": {"review": 0.1, "block": 0.2}}}, "unknown_category", "categories.nudity"),
        ({"kinds": {"text": {"categories": {"toxicity": {"review": 0.3, "block": 0.2}}}}}, "invalid_policy",
         "kinds.text.categories.toxicity"),
        ({"categories": {"toxicity": {"review": 0.1, "block": 2}}}, "invalid_policy", "categories.toxicity"),
    ]
    for body, code, field in cases:
        resp = put(api, tenant, body)
        assert resp.status_code == 422, (body, resp.text)
        error = resp.json()["error"]
        assert (error["code"], error["details"]) == (code, {"field": field}), error
    bad_shape = put(api, tenant, {"kinds": {"image": {"thresholds": {}}}})
    assert bad_shape.status_code == 422 and bad_shape.json()["error"]["code"] == "validation_error"
    # Nothing refused was stored: the tenant still has no override, and its first version is 1.
    assert api.get(f"/v1/policies/{tenant}", headers=admin_headers()).json()["override"] is None
    ok = put(api, tenant, {"kinds": {"image": {"categories": {"sexual": {"review": 0.2, "block": 0.3}}}}})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["id"] == f"default@1+{tenant}@1"
    assert body["override"] == {"version": 1, "categories": {},
                                "kinds": {"image": {"categories": {"sexual": {"review": 0.2, "block": 0.3}}}}}
    assert body["resolved"]["image"]["categories"]["sexual"] == {"review": 0.2, "block": 0.3}
    assert body["resolved"]["video"]["categories"]["sexual"] == {"review": 0.6, "block": 0.95}  # the file's video
    assert body["resolved"]["text"]["categories"]["sexual"] == {"review": 0.5, "block": 0.9}
    assert body["merge_order"][-1] == "tenant kinds.<kind>.categories"
    assert api.get(f"/v1/policies/{tenant}", headers=admin_headers()).json() == body


# ---- through the real stack -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def media_worker(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    from training.vision.fetch import MODEL_DIR, fetch_models

    fetch_models(MODEL_DIR)
    values = stack_values(Path(stack.settings.text_model_path))
    worker = WorkerProcess(stack.url, settings_env(values), queues="media",
                           log_path=tmp_path_factory.mktemp("policy-media") / "w.log").start()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def image_bytes() -> bytes:
    from training.vision.fetch import DATA_DIR, fetch_data

    fetch_data(DATA_DIR)
    buf = io.BytesIO()
    Image.fromarray(photo(DATA_DIR)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_video(tmp_path_factory.mktemp("policy-video") / "v.mp4", [(1.5, 0), (1.5, 2)]).read_bytes()


def wait_final(api: TestClient, headers: dict[str, str], item_id: str) -> dict[str, Any]:
    item: dict[str, Any] = poll(lambda: (lambda it: it if it["status"] in FINAL else None)(
        api.get(f"/v1/moderations/{item_id}", headers=headers).json()), 120, 0.1)
    assert item["status"] == "done", item
    return item


def moderate(api: TestClient, headers: dict[str, str], kind: str, data: bytes | str) -> dict[str, Any]:
    if kind == "text":
        resp = api.post("/v1/moderations", json={"text": data}, headers=headers)
    else:
        resp = api.post(f"/v1/moderations/{kind}", files={"file": (f"f.{'jpg' if kind == 'image' else 'mp4'}",
                                                                   data)}, headers=headers)
    assert resp.status_code == 202, resp.text
    return wait_final(api, headers, resp.json()["id"])


def base_decision(item: dict[str, Any]) -> str:
    """What the test policy file alone decides for this item's scores (its kind's thresholds)."""
    return load_policy_file(TEST_POLICY).for_kind(item["kind"]).decide(item["scores"])[0]


BLOCK_MEDIA = {c: {"review": 0.0, "block": 0.0} for c in MEDIA_CATEGORIES}  # any score blocks


def test_tenant_categories_apply_to_images_over_the_files_kind_section(
        api: TestClient, media_worker: WorkerProcess, image_bytes: bytes) -> None:
    """Issue 15's repro: sexual and violence at 0.0001 / 0.0002 for the tenant; the image used to stay `allow`."""
    headers, tenant = new_key(api)
    before = moderate(api, headers, "image", image_bytes)
    assert before["decision"] == base_decision(before) == "allow" and before["policy_version"] == "default@1"
    assert max(before["scores"].values()) >= 0.0002, before["scores"]  # else this override could not show
    tiny = {"review": 0.0001, "block": 0.0002}
    assert put(api, tenant, {"categories": {"sexual": tiny, "violence": tiny}}).status_code == 200
    after = moderate(api, headers, "image", image_bytes)
    assert after["decision"] == "block" and after["policy_version"] == f"default@1+{tenant}@1"
    assert after["scores"] == before["scores"]


def test_image_section_changes_images_only(api: TestClient, media_worker: WorkerProcess, image_bytes: bytes,
                                           video_bytes: bytes) -> None:
    headers, tenant = new_key(api)
    assert put(api, tenant, {"kinds": {"image": {"categories": BLOCK_MEDIA}}}).status_code == 200
    image = moderate(api, headers, "image", image_bytes)
    assert image["decision"] == "block" and image["policy_version"] == f"default@1+{tenant}@1"
    # The tiny text model scores sexual and violence too (about 0.12): the image section must not reach text.
    text = moderate(api, headers, "text", "hello there")
    assert text["scores"]["sexual"] > 0.0 and text["decision"] == base_decision(text) == "allow"
    video = moderate(api, headers, "video", video_bytes)
    assert video["scores"], video  # scored: under the image section's zeros it would be blocked
    assert video["decision"] == base_decision(video) != "block"
    # Documented: the id names the tenant's whole policy, also for kinds its override leaves unchanged.
    assert text["policy_version"] == video["policy_version"] == f"default@1+{tenant}@1"


def test_video_section_changes_videos_only(api: TestClient, media_worker: WorkerProcess, image_bytes: bytes,
                                           video_bytes: bytes) -> None:
    headers, tenant = new_key(api)
    before = moderate(api, headers, "video", video_bytes)
    assert before["scores"] and before["decision"] == base_decision(before) != "block"
    assert put(api, tenant, {"kinds": {"video": {"categories": BLOCK_MEDIA}}}).status_code == 200
    video = moderate(api, headers, "video", video_bytes)
    assert video["decision"] == "block" and video["policy_version"] == f"default@1+{tenant}@1"
    image = moderate(api, headers, "image", image_bytes)
    assert image["decision"] == base_decision(image) == "allow"


def test_text_section_beats_the_files_language_section_and_stays_in_text(
        api: TestClient, stack: Stack, media_worker: WorkerProcess, image_bytes: bytes) -> None:
    headers, tenant = new_key(api)
    zh = "你好，今天天气很好，我们去公园散步吧。"
    # The test file sets zh toxicity to 0.01 / 0.02; the tiny model scores about 0.12: blocked under the file.
    before = moderate(api, headers, "text", zh)
    assert before["decision"] == "block" and "toxicity" in before["flagged"]
    high = {"review": 0.98, "block": 0.99}
    resp = put(api, tenant, {"kinds": {"text": {"categories": {c: high for c in TEXT_CATEGORIES}}}})
    assert resp.status_code == 200, resp.text
    after = moderate(api, headers, "text", zh)
    assert after["decision"] == "allow" and after["policy_version"] == f"default@1+{tenant}@1"
    assert max(after["scores"].values()) < 0.98
    # Media of the same tenant is judged as before (the text section has no image entries to apply).
    image = moderate(api, headers, "image", image_bytes)
    assert image["decision"] == base_decision(image) and image["policy_version"] == f"default@1+{tenant}@1"
    # A text section cannot name a category only images score, and an image section no text-only one.
    assert put(api, tenant, {"kinds": {"image": {"categories": {"toxicity": high}}}}).json()["error"][
        "code"] == "unknown_category"
    # The override is stored in the file's shape (what the workers read back).
    raw = redis.Redis.from_url(stack.url).get(keys.policy(tenant))
    assert raw is not None and b'"kinds": {"text": {"categories"' in raw
