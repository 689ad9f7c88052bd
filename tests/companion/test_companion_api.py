"""The companion HTTP API: recommendations, the moderation block link (real Redis), FAQ answer and reload."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from companion.app import create_app
from models.recsys.engine import RecEngine
from service.store.blocked import mark_blocked
from tests.companion.conftest import make_settings
from tests.support.redis_server import free_port

ADMIN = {"X-API-Key": "dev-admin-key"}


def _rated(engine: RecEngine, user: str) -> set[str]:
    d = engine.bundle.data
    return {d.item_ids[i] for i in d.items[d.users == d.user_index[user]]}


@pytest.mark.parametrize("strategy", ["svd", "knn", "content", "implicit", "hybrid"])
def test_user_recommendations_exclude_rated(client: TestClient, engine: RecEngine, strategy: str) -> None:
    r = client.get("/v1/recommendations/users/1", params={"k": 10, "strategy": strategy})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["fallback"] is False and body["strategy"] == strategy
    assert body["model_version"] == engine.version and body["history_bucket"] == "20+"
    assert {it["source"] for it in body["items"]} <= {"svd", "knn", "content", "implicit", "popularity"}
    ids = [it["item_id"] for it in body["items"]]
    assert len(ids) == 10 == len(set(ids))
    assert not set(ids) & _rated(engine, "1")
    assert all(it["reason"] and it["external_id"] == f"movie:{it['item_id']}" for it in body["items"])
    scores = [it["score"] for it in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_cold_start_is_popular_and_flagged(client: TestClient) -> None:
    body = client.get("/v1/recommendations/users/never-seen", params={"k": 5}).json()
    assert body["fallback"] is True and body["fallback_reason"] == "cold_start"
    assert [it["item_id"] for it in body["items"]][:1] == ["50"]  # Star Wars: most ratings >= 4
    assert all(it["reason"].startswith("popular:") and it["source"] == "popularity" for it in body["items"])


def test_similar_items(client: TestClient) -> None:
    body = client.get("/v1/recommendations/items/50/similar", params={"k": 5}).json()
    ids = [it["item_id"] for it in body["items"]]
    assert "50" not in ids and {"172", "181"} <= set(ids)
    assert "Star Wars" in body["items"][0]["reason"]


@pytest.mark.parametrize(("url", "status", "code"), [
    ("/v1/recommendations/items/99999/similar", 404, "unknown_item"),
    ("/v1/recommendations/users/1?k=0", 422, "validation_error"),
    ("/v1/recommendations/users/1?k=101", 422, "validation_error"),
    ("/v1/recommendations/users/1?strategy=magic", 422, "validation_error"),
    ("/v1/recommendations/users/1/items/99999", 404, "unknown_item"),
    ("/v1/nothing-here", 404, "not_found"),
])
def test_error_codes(client: TestClient, url: str, status: int, code: str) -> None:
    r = client.get(url)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code


def test_prediction_and_fallback(client: TestClient) -> None:
    known = client.get("/v1/recommendations/users/1/items/50").json()
    assert known["fallback"] is False and 1 <= known["estimate"] <= 5
    cold = client.get("/v1/recommendations/users/nobody-here/items/50").json()
    assert cold["fallback"] is True


def test_ratings_fold_in_new_user(client: TestClient) -> None:
    user = "api-new-user"
    ratings = [{"item_id": "50", "rating": 5}, {"item_id": "172", "rating": 5}, {"item_id": "181", "rating": 4.5},
               {"item_id": "313", "rating": 1}]
    r = client.post(f"/v1/recommendations/users/{user}/ratings", json={"ratings": ratings})
    assert r.status_code == 200 and r.json()["n_ratings"] == 4
    for strategy in ("svd", "knn", "content", "implicit", "hybrid"):
        body = client.get(f"/v1/recommendations/users/{user}", params={"k": 10, "strategy": strategy}).json()
        assert body["fallback"] is False, strategy
        assert not {it["item_id"] for it in body["items"]} & {"50", "172", "181", "313"}
    svd = client.get(f"/v1/recommendations/users/{user}", params={"k": 10, "strategy": "svd"}).json()
    assert any(t in svd["items"][0]["reason"] for t in ("Star Wars", "Empire Strikes Back", "Return of the Jedi"))
    # Re-rating replaces, not duplicates.
    again = client.post(f"/v1/recommendations/users/{user}/ratings", json={"ratings": [ratings[0]]})
    assert again.json()["n_ratings"] == 4


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"ratings": [{"item_id": "99999", "rating": 4}]}, 404, "unknown_item"),
    ({"ratings": [{"item_id": "50", "rating": 6}]}, 422, "validation_error"),
    ({"ratings": []}, 422, "validation_error"),
])
def test_bad_ratings(client: TestClient, payload: dict, status: int, code: str) -> None:
    r = client.post("/v1/recommendations/users/bad-rater/ratings", json=payload)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)


def test_blocked_items_are_never_recommended(fresh_client: TestClient, redis_url: str) -> None:
    def ids(url: str, **params: object) -> list[str]:
        return [it["item_id"] for it in fresh_client.get(url, params=params).json()["items"]]

    first = ids("/v1/recommendations/users/1", k=5, strategy="svd")
    similar = ids("/v1/recommendations/items/50/similar", k=3)
    popular = ids("/v1/recommendations/users/cold-user", k=3)
    blocked = {first[0], first[3], similar[0], popular[0]}
    client = redis.Redis.from_url(redis_url)
    for item in blocked:
        mark_blocked(client, "demo", f"movie:{item}")  # what the moderation side does on block/remove
    for strategy in ("svd", "knn", "content", "hybrid"):
        body = fresh_client.get("/v1/recommendations/users/1", params={"k": 50, "strategy": strategy}).json()
        assert not {it["item_id"] for it in body["items"]} & blocked, strategy
        assert len(body["items"]) == 50
    after = fresh_client.get("/v1/recommendations/users/1", params={"k": 5, "strategy": "svd"}).json()
    assert after["excluded_blocked"] == 2
    assert [i for i in first if i not in blocked] == [it["item_id"] for it in after["items"]][:3]
    assert similar[0] not in ids("/v1/recommendations/items/50/similar", k=3)
    assert popular[0] not in ids("/v1/recommendations/users/cold-user", k=3)
    # Another tenant's block list does not leak into ours.
    mark_blocked(client, "other-tenant", f"movie:{first[1]}")
    assert first[1] in ids("/v1/recommendations/users/1", k=5, strategy="svd")


def test_recommendations_fail_closed_without_redis(engine: RecEngine, encoder: object, faq_dir: Path) -> None:
    settings = make_settings(f"redis://127.0.0.1:{free_port()}/0", faq_dir)
    with TestClient(create_app(settings, engine=engine, encoder=encoder)) as c:  # type: ignore[arg-type]
        r = c.get("/v1/recommendations/users/1")
    # Ratings and the block list share the Redis: the user-state read fails first, closed.
    assert r.status_code == 503 and r.json()["error"]["code"] == "recs_store_unavailable"


def test_faq_answer_in_scope(client: TestClient) -> None:
    r = client.post("/v1/faq/answer", json={"question": "I'd like to appeal the removal of my post"})
    body = r.json()
    assert r.status_code == 200 and body["answered"] is True, body
    assert body["answer"]["id"] == "appeal-how" and body["answer"]["language"] == "en"
    assert body["question_language"] == "en" and set(body["thresholds"]) == {"min_score", "min_gap", "min_margin"}
    assert len(body["alternatives"]) == 2


def test_faq_chinese_question_gets_chinese_answer(client: TestClient) -> None:
    body = client.post("/v1/faq/answer", json={"question": "我忘了登录密码，该怎么办？"}).json()
    assert body["answered"] is True and body["question_language"] == "zh", body
    assert body["answer"]["id"] == "password-reset" and body["answer"]["language"] == "zh"
    assert "忘记密码" in body["answer"]["answer"] and all(a["language"] == "zh" for a in body["alternatives"])
    # The same question, answer asked for in English: same entry, English text.
    en = client.post("/v1/faq/answer", json={"question": "我忘了登录密码，该怎么办？", "language": "en"}).json()
    assert en["answer"]["id"] == "password-reset" and en["answer"]["language"] == "en"
    assert "Forgot password" in en["answer"]["answer"]


@pytest.mark.parametrize("question", [
    "I need to renew my passport before my holiday",
    "Is it OK to stream through a VPN while I'm abroad?",
    "how do I change the admin password of my home router",
    "我的护照快过期了，怎么续签？",
    "用VPN能看国外的节目吗",
])
def test_faq_refuses_near_misses(client: TestClient, question: str) -> None:
    body = client.post("/v1/faq/answer", json={"question": question}).json()
    assert body["answered"] is False and body["answer"] is None, body
    assert body["message"].startswith("no confident match") and body["alternatives"]


def test_faq_out_of_scope_says_no_confident_match(client: TestClient) -> None:
    body = client.post("/v1/faq/answer", json={"question": "what is the boiling point of water", "k": 4}).json()
    assert body["answered"] is False and body["answer"] is None
    assert body["message"].startswith("no confident match")
    assert len(body["alternatives"]) == 4


def test_faq_collections_list_languages(client: TestClient) -> None:
    cols = client.get("/v1/faq/collections").json()["collections"]
    assert {"tenant": "demo", "collection": "platform", "entries": 50, "languages": ["en", "zh"]} in cols


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"question": ""}, 422, "validation_error"),
    ({"question": "   "}, 422, "validation_error"),
    ({"question": "hi", "k": 0}, 422, "validation_error"),
    ({"question": "hi", "k": 11}, 422, "validation_error"),
    ({"question": "hi", "collection": "nope"}, 404, "unknown_collection"),
    ({"question": "hi", "language": "fr"}, 422, "validation_error"),
])
def test_faq_errors(client: TestClient, payload: dict, status: int, code: str) -> None:
    r = client.post("/v1/faq/answer", json=payload)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)


def test_faq_reload_requires_admin_key(fresh_client: TestClient) -> None:
    assert fresh_client.post("/v1/admin/faq/reload").json()["error"]["code"] == "unauthorized"
    r = fresh_client.post("/v1/admin/faq/reload", headers={"X-API-Key": "wrong"})
    assert r.status_code == 401


def test_faq_reload_picks_up_edits_and_new_tenants(fresh_client: TestClient, faq_dir: Path) -> None:
    f = faq_dir / "demo" / "platform.yaml"
    f.write_text(f.read_text().replace("Appeals are usually decided within 3 working days.",
                                       "Appeals are now decided within 1 working day."))
    (faq_dir / "acme").mkdir()
    (faq_dir / "acme" / "games.yaml").write_text(
        "entries:\n  - id: refund-game\n    questions: [\"Can I return a game I bought?\"]\n"
        "    answer: Games can be refunded within 14 days if played under 2 hours.\n")
    r = fresh_client.post("/v1/admin/faq/reload", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert {(x["tenant"], x["collection"]) for x in r.json()["reloaded"]} == {("demo", "platform"), ("acme", "games")}
    body = fresh_client.post("/v1/faq/answer", json={"question": "how long does an appeal take?"}).json()
    assert "1 working day" in body["answer"]["answer"]
    game = fresh_client.post("/v1/faq/answer", json={"question": "I want my money back for a game",
                                                     "tenant": "acme", "collection": "games", "k": 1}).json()
    assert game["alternatives"] == [] and (game["answer"] or {}).get("id", "refund-game") == "refund-game"


def test_faq_reload_refuses_bad_file_and_keeps_serving(fresh_client: TestClient, faq_dir: Path) -> None:
    f = faq_dir / "demo" / "platform.yaml"
    lines = f.read_text().splitlines()
    dup_line = next(n for n, ln in enumerate(lines, 1) if ln.strip() == "- id: upload-size-limit")
    lines[dup_line - 1] = lines[dup_line - 1].replace("upload-size-limit", "upload-formats")
    f.write_text("\n".join(lines) + "\n")
    r = fresh_client.post("/v1/admin/faq/reload", headers=ADMIN, json={"tenant": "demo"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "faq_load_error" and err["details"]["line"] == dup_line
    still = fresh_client.post("/v1/faq/answer", json={"question": "how big can an upload be?"}).json()
    assert still["answered"] is True and still["answer"]["id"] == "upload-size-limit"


def test_healthz(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["items"] == 1682 and "demo/platform" in body["faq_collections"]
