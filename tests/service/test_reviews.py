"""Human review: priority queue, leases (racing claims, expiry), decisions, appeals, history and stats."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis
from fastapi.testclient import TestClient

from models.text.labels import CATEGORIES
from service.store.reviews import ReviewError, ReviewStore
from tests.conftest import Stack, admin_headers, new_key
from tests.support.receiver import webhook_receiver
from tests.support.workers import poll

REVIEW_ALL = {c: {"review": 0.01, "block": 0.999} for c in CATEGORIES}


def review_tenant(api: TestClient) -> tuple[dict[str, str], str]:
    headers, tenant = new_key(api)
    resp = api.put(f"/v1/policies/{tenant}", json={"categories": REVIEW_ALL}, headers=admin_headers())
    assert resp.status_code == 200
    return headers, tenant


def submit_all(api: TestClient, headers: dict[str, str], items: list[dict]) -> list[str]:
    ids = [x["id"] for x in api.post("/v1/moderations/batch", json={"items": items}, headers=headers).json()["items"]]
    for i in ids:
        poll(lambda i=i: api.get(f"/v1/moderations/{i}", headers=headers).json()["status"] == "done", 60)
    return ids


def test_queue_order_claim_decide_history(api: TestClient) -> None:
    headers, tenant = review_tenant(api)
    ids = submit_all(api, headers, [{"text": "first"}, {"text": "urgent", "priority": 50}, {"text": "third"}])
    mod, _ = new_key(api, "moderator", tenant)
    other, _ = new_key(api, "moderator", tenant)
    queue = api.get("/v1/reviews", headers=mod).json()["items"]
    assert [q["id"] for q in queue][0] == ids[1]  # raised priority first
    assert {q["id"] for q in queue} == set(ids) and all(q["content"] for q in queue)
    resp = api.post(f"/v1/reviews/{ids[0]}/claim", json={}, headers=mod)
    assert resp.status_code == 200, resp.text
    race = api.post(f"/v1/reviews/{ids[0]}/claim", json={}, headers=other)
    assert race.status_code == 409 and race.json()["error"]["code"] == "already_claimed"
    denied = api.post(f"/v1/reviews/{ids[0]}/decision", json={"action": "remove"}, headers=other)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "lease_required"
    assert api.post(f"/v1/reviews/{ids[0]}/claim", json={}, headers=mod).status_code == 200  # renewal
    resp = api.post(f"/v1/reviews/{ids[0]}/decision",
                    json={"action": "remove", "categories": ["insult"], "reason": "targeted insult"}, headers=mod)
    assert resp.status_code == 200, resp.text
    item = api.get(f"/v1/moderations/{ids[0]}", headers=headers).json()
    assert item["decision"] == "block" and item["source"] == "human" and item["flagged"] == ["insult"]
    assert ids[0] not in [q["id"] for q in api.get("/v1/reviews", headers=mod).json()["items"]]
    events = [e["event"] for e in api.get(f"/v1/moderations/{ids[0]}/history", headers=headers).json()["events"]]
    assert events == ["created", "processing", "verdict", "review_queued", "claimed", "lease_renewed",
                      "human_decision"]
    stats = api.get("/v1/reviews/stats", headers=mod).json()
    assert stats["pending"] == 2 and stats["decided"] == 1 and stats["median_time_to_decision_s"] > 0
    assert sum(stats["pending_by_age"].values()) == 2
    assert list(stats["decisions_per_moderator_per_day"].values())[0] == {time.strftime("%Y-%m-%d", time.gmtime()): 1}


def test_escalate_returns_item_with_higher_priority(api: TestClient) -> None:
    headers, tenant = review_tenant(api)
    ids = submit_all(api, headers, [{"text": "a", "priority": 10}, {"text": "b"}])
    mod, _ = new_key(api, "moderator", tenant)
    assert api.post(f"/v1/reviews/{ids[1]}/claim", json={}, headers=mod).status_code == 200
    assert api.post(f"/v1/reviews/{ids[1]}/decision", json={"action": "escalate"}, headers=mod).status_code == 200
    queue = api.get("/v1/reviews", headers=mod).json()["items"]
    assert queue[0]["id"] == ids[1] and queue[0]["escalated"] == "1"


def test_human_decision_fires_webhook_and_appeal_needs_other_moderator(api: TestClient) -> None:
    headers, tenant = review_tenant(api)
    mod1, _ = new_key(api, "moderator", tenant)
    mod2, _ = new_key(api, "moderator", tenant)
    with webhook_receiver() as rx:
        [item_id] = submit_all(api, headers, [{"text": "appeal me", "callback_url": rx.url(), "external_id": "v-9"}])
        api.post(f"/v1/reviews/{item_id}/claim", json={}, headers=mod1)
        api.post(f"/v1/reviews/{item_id}/decision", json={"action": "remove"}, headers=mod1)
        poll(lambda: len(rx.requests) >= 2, 30)
        human = json.loads(rx.requests[-1].body)
        assert human["event"] == "moderation.human_decision" and human["moderation"]["source"] == "human"
        assert human["moderation"]["decision"] == "block"
    r = redis.Redis.from_url(api.app.state.services.settings.redis_url, decode_responses=True)
    assert r.sismember(f"mod:blocked:{tenant}", "v-9")
    resp = api.post(f"/v1/moderations/{item_id}/appeal", json={"message": "it was a quote"}, headers=headers)
    assert resp.status_code == 202, resp.text
    again = api.post(f"/v1/moderations/{item_id}/appeal", json={"message": "again"}, headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "appeal_pending"
    same = api.post(f"/v1/reviews/{item_id}/claim", json={}, headers=mod1)
    assert same.status_code == 403 and same.json()["error"]["code"] == "appeal_needs_other_moderator"
    assert api.post(f"/v1/reviews/{item_id}/claim", json={}, headers=mod2).status_code == 200
    assert api.post(f"/v1/reviews/{item_id}/decision", json={"action": "approve"}, headers=mod2).status_code == 200
    item = api.get(f"/v1/moderations/{item_id}", headers=headers).json()
    assert item["decision"] == "allow" and item["human"]["appeal"] is True
    assert not r.sismember(f"mod:blocked:{tenant}", "v-9")
    events = [e["event"] for e in api.get(f"/v1/moderations/{item_id}/history", headers=headers).json()["events"]]
    assert events.count("human_decision") == 2 and "appeal" in events and "webhook_attempt" in events


def test_roles_on_review_api(api: TestClient) -> None:
    platform, tenant = new_key(api)
    assert api.get("/v1/reviews", headers=platform).status_code == 403
    assert api.get("/v1/reviews/stats", headers=platform).status_code == 403
    mod, _ = new_key(api, "moderator", tenant)
    assert api.post("/v1/moderations/x/appeal", json={"message": "m"}, headers=mod).status_code == 403
    other_mod, _ = new_key(api, "moderator")
    headers, t2 = review_tenant(api)
    [item_id] = submit_all(api, headers, [{"text": "isolated"}])
    assert api.post(f"/v1/reviews/{item_id}/claim", json={}, headers=other_mod).status_code == 404
    assert item_id not in [q["id"] for q in api.get("/v1/reviews", headers=other_mod).json()["items"]]


def test_twenty_moderators_claim_each_item_exactly_once(stack: Stack) -> None:
    r = redis.Redis.from_url(stack.url, decode_responses=True)
    store = ReviewStore(r)
    tenant = f"race{time.time_ns()}"
    for i in range(100):
        r.hset(f"mod:item:race{i}", mapping={"tenant": tenant, "status": "done", "review_status": "pending",
                                               "review_score": i, "created_at": time.time()})
        r.zadd(f"mod:review:{tenant}", {f"race{i}": i})
    wins: list[tuple[str, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def moderator(n: int) -> None:
        barrier.wait()
        while True:
            page = store.page(tenant, None, 100)
            if not page:
                return
            for item_id, _ in page:
                try:
                    store.claim(tenant, item_id, f"m{n}", f"m{n}", 300)
                except ReviewError:
                    continue
                with lock:
                    wins.append((item_id, f"m{n}"))

    threads = [threading.Thread(target=moderator, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    claimed = [w[0] for w in wins]
    assert len(claimed) == 100 and len(set(claimed)) == 100
    assert len({w[1] for w in wins}) > 1  # really concurrent


def test_expired_lease_returns_item_to_queue(stack: Stack) -> None:
    r = redis.Redis.from_url(stack.url, decode_responses=True)
    store = ReviewStore(r)
    tenant = f"lease{time.time_ns()}"
    r.hset("mod:item:lease1", mapping={"tenant": tenant, "status": "done", "review_status": "pending",
                                       "review_score": 1, "created_at": time.time()})
    r.zadd(f"mod:review:{tenant}", {"lease1": 1})
    store.claim(tenant, "lease1", "m1", "m1", 0.3)
    assert store.page(tenant, None, 10) == []
    poll(lambda: store.page(tenant, None, 10) == [("lease1", 1.0)], 10)
    store.claim(tenant, "lease1", "m2", "m2", 300)
    events = [e["event"] for e in r.xrange("mod:audit:lease1") for e in [e[1]]]
    assert events == ["claimed", "lease_expired", "claimed"]


def test_expired_lease_requeues_only_items_that_still_need_review(stack: Stack) -> None:
    """The lease sweep applies the queue rule: a claimed item whose verdict stopped needing review while it was
    leased (a policy with `review_blocked` turned off, say) does not come back when the lease ends."""
    r = redis.Redis.from_url(stack.url, decode_responses=True)
    store = ReviewStore(r)
    tenant = f"rule{time.time_ns()}"
    for item_id, needed in (("rule-keep", "1"), ("rule-drop", "0")):
        r.hset(f"mod:item:{item_id}", mapping={"tenant": tenant, "status": "done", "review_status": "pending",
                                               "review_score": 1, "created_at": time.time(), "decision": "block",
                                               "source": "model", "review_needed": "1"})
        r.zadd(f"mod:review:{tenant}", {item_id: 1})
        store.claim(tenant, item_id, "m1", "m1", 0.3)
        r.hset(f"mod:item:{item_id}", "review_needed", needed)
    poll(lambda: store.page(tenant, None, 10) == [("rule-keep", 1.0)] and not store.claimed(tenant), 10)
    assert r.hget("mod:item:rule-drop", "review_status") == ""
    with pytest.raises(ReviewError) as err:
        store.claim(tenant, "rule-drop", "m2", "m2", 300)
    assert err.value.code == "not_in_review"


def test_review_listing_filters_and_cursor(api: TestClient) -> None:
    headers, tenant = review_tenant(api)
    ids = submit_all(api, headers, [{"text": f"item {i}"} for i in range(7)])
    mod, _ = new_key(api, "moderator", tenant)
    seen: list[str] = []
    cursor = None
    while True:
        page = api.get("/v1/reviews", params={"limit": 3, **({"cursor": cursor} if cursor else {})}, headers=mod).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 7
    assert api.get("/v1/reviews", params={"kind": "image"}, headers=mod).json()["items"] == []
    assert len(api.get("/v1/reviews", params={"category": "insult"}, headers=mod).json()["items"]) == 7
    assert api.get("/v1/reviews", params={"min_age_s": 3600}, headers=mod).json()["items"] == []
    api.post(f"/v1/reviews/{ids[0]}/claim", json={}, headers=mod)
    claimed = api.get("/v1/reviews", params={"status": "claimed"}, headers=mod).json()["items"]
    assert [c["id"] for c in claimed] == [ids[0]] and claimed[0]["lease_holder"]
