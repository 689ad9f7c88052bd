"""End to end through the gateway, the real broker and a real worker process with a tiny checkpoint."""

from __future__ import annotations

from fastapi.testclient import TestClient

from models.text.labels import CATEGORIES
from tests.conftest import Stack, admin_headers, new_key
from tests.support.workers import poll


def _get(api: TestClient, headers: dict[str, str], item_id: str) -> dict:
    resp = api.get(f"/v1/moderations/{item_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_done(api: TestClient, headers: dict[str, str], item_id: str, deadline_s: float = 60) -> dict:
    return poll(lambda: (lambda it: it if it["status"] in ("done", "failed", "rejected") else None)(
        _get(api, headers, item_id)), deadline_s)


def test_submit_and_wait_returns_verdict(api: TestClient, stack: Stack) -> None:
    headers, tenant = new_key(api)
    resp = api.post("/v1/moderations?wait=10", json={"text": "hello there", "external_id": "c-1",
                                                     "metadata": {"lang": "en"}}, headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "done" and body["tenant"] == tenant
    assert body["decision"] in ("allow", "review", "block")
    assert set(body["scores"]) == set(CATEGORIES)
    assert all(0.0 <= v <= 1.0 for v in body["scores"].values())
    assert body["models"] == [{"name": "tiny-random", "version": "seed0"}]
    assert body["policy_version"] == "default@1"
    assert body["metadata"] == {"lang": "en"} and body["external_id"] == "c-1"
    assert body["created_at"] <= body["completed_at"]
    assert "text" not in body


def test_submit_202_then_poll(api: TestClient) -> None:
    headers, _ = new_key(api)
    resp = api.post("/v1/moderations", json={"text": "a normal comment"}, headers=headers)
    assert resp.status_code == 202, resp.text
    acc = resp.json()
    assert acc["status"] == "queued" and acc["status_url"] == f"/v1/moderations/{acc['id']}"
    assert resp.headers["location"] == acc["status_url"]
    assert wait_done(api, headers, acc["id"])["status"] == "done"


def test_batch_and_external_id_lookup(api: TestClient) -> None:
    headers, _ = new_key(api)
    items = [{"text": f"comment number {i}", "external_id": f"b-{i % 3}"} for i in range(40)]
    resp = api.post("/v1/moderations/batch", json={"items": items}, headers=headers)
    assert resp.status_code == 202, resp.text
    ids = [x["id"] for x in resp.json()["items"]]
    assert len(ids) == 40 and len(set(ids)) == 40
    for item_id in ids:
        assert wait_done(api, headers, item_id)["status"] == "done"
    found = api.get("/v1/moderations", params={"external_id": "b-1"}, headers=headers).json()["items"]
    assert sorted(i["id"] for i in found) == sorted(ids[1::3])


def test_idempotency_key(api: TestClient) -> None:
    headers, _ = new_key(api)
    h = {**headers, "Idempotency-Key": "abc-1"}
    first = api.post("/v1/moderations", json={"text": "same request"}, headers=h)
    second = api.post("/v1/moderations", json={"text": "same request"}, headers=h)
    assert first.status_code == 202 and second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    other = api.post("/v1/moderations", json={"text": "different body"}, headers=h)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    # Same key, another tenant: independent.
    headers2, _ = new_key(api)
    third = api.post("/v1/moderations", json={"text": "same request"}, headers={**headers2, "Idempotency-Key": "abc-1"})
    assert third.json()["id"] != first.json()["id"]


def test_duplicate_content_reuses_verdict(api: TestClient, stack: Stack) -> None:
    headers, _ = new_key(api)
    a = api.post("/v1/moderations?wait=10", json={"text": "duplicate me please"}, headers=headers).json()
    b = api.post("/v1/moderations?wait=10", json={"text": "duplicate me please"}, headers=headers).json()
    assert a["id"] != b["id"] and a["scores"] == b["scores"] and a["decision"] == b["decision"]
    import redis

    r = redis.Redis.from_url(stack.url, decode_responses=True)
    keys = list(r.scan_iter("mod:verdict:*"))
    assert r.hget(f"mod:item:{a['id']}", "verdict_key") == r.hget(f"mod:item:{b['id']}", "verdict_key")
    assert r.hget(f"mod:item:{a['id']}", "verdict_key") in keys


def test_whitespace_text_is_allowed_with_note(api: TestClient) -> None:
    headers, _ = new_key(api)
    body = api.post("/v1/moderations?wait=10", json={"text": " \n\t "}, headers=headers).json()
    assert body["status"] == "done" and body["decision"] == "allow"
    assert body["reasons"][0]["code"] == "empty_text"


def test_unicode_variety(api: TestClient) -> None:
    headers, _ = new_key(api)
    for text in ("😀😀😀🔥", "我爱看电影，这部片子很好看。", "Mixed текст 混合 عربى", "x" * 5000 + ". end."):
        body = api.post("/v1/moderations?wait=10", json={"text": text}, headers=headers).json()
        assert body["status"] == "done", body


def test_long_text_is_explained_by_sentences(api: TestClient) -> None:
    headers, _ = new_key(api)
    text = " ".join(f"Sentence number {i} is here." for i in range(200))
    body = api.post("/v1/moderations?wait=10", json={"text": text}, headers=headers).json()
    assert body["status"] == "done"
    # ~1,400 tokens in windows of whole sentences (max_tokens 256 in tests): several windows, each quoted exactly.
    assert body["explanation"]["windows"] >= 5
    top = body["explanation"]["top_sentences"]
    assert 1 <= len(top) <= 3
    assert all(text[s["start"]:s["end"]] == s["text"] for s in top)
    windows = body["explanation"]["top_windows"]
    assert all(text[w["start"]:w["end"]] == w["text"] for w in windows)
    # The quoted sentences come from the worst window.
    assert all(windows[0]["start"] <= s["start"] and s["end"] <= windows[0]["end"] for s in top)


def test_policy_override_changes_decision_and_version(api: TestClient) -> None:
    headers, tenant = new_key(api)
    low = {c: {"review": 0.01, "block": 0.02} for c in CATEGORIES}
    resp = api.put(f"/v1/policies/{tenant}", json={"categories": low}, headers=admin_headers())
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == f"default@1+{tenant}@1"
    body = api.post("/v1/moderations?wait=10", json={"text": "anything", "external_id": "movie:7"},
                    headers=headers).json()
    assert body["decision"] == "block" and body["policy_version"] == f"default@1+{tenant}@1"
    assert sorted(body["flagged"]) == sorted(CATEGORIES)
    import redis

    from service.store.blocked import blocked_among

    assert blocked_among(redis.Redis.from_url(api.app.state.services.settings.redis_url), tenant,
                         ["movie:7", "movie:8"]) == {"movie:7"}
    # Moderators and platforms may read but not change policies.
    mod_headers, _ = new_key(api, "moderator", tenant)
    assert api.get(f"/v1/policies/{tenant}", headers=mod_headers).status_code == 200
    denied = api.put(f"/v1/policies/{tenant}", json={"categories": {}}, headers=mod_headers)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden_role"


def test_blocklist_term_forces_review(api: TestClient) -> None:
    headers, tenant = new_key(api)
    resp = api.put(f"/v1/policies/{tenant}", json={"blocklist_terms": ["spoilerword"]}, headers=admin_headers())
    assert resp.status_code == 200
    body = api.post("/v1/moderations?wait=10", json={"text": "this has SP0ILERWORD in it"}, headers=headers).json()
    assert body["decision"] in ("review", "block")
    match = [r for r in body["reasons"] if r["type"] == "blocklist"][0]
    assert match["term"] == "spoilerword" and "this has SP0ILERWORD in it"[match["start"]:match["end"]] == "SP0ILERWORD"


def test_history_records_every_state_change(api: TestClient, stack: Stack) -> None:
    headers, _ = new_key(api)
    body = api.post("/v1/moderations?wait=10", json={"text": "audit me"}, headers=headers).json()
    import redis

    from service.store.items import ItemStore

    events = ItemStore(redis.Redis.from_url(stack.url, decode_responses=True)).history(body["id"])
    assert [e["event"] for e in events] == ["created", "processing", "verdict"]
    assert [e["status"] for e in events] == ["queued", "processing", "done"]
