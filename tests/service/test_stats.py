"""Operations stats: hour/day buckets with bounded retention, the recording hooks (gateway and worker) and the
`/v1/stats` JSON API (volume, review, queue, versions, workers), tenant-scoped."""

from __future__ import annotations

import time

import redis
from fastapi.testclient import TestClient

from models.text.labels import CATEGORIES
from service.store import keys
from service.store.items import ItemStore, NewItem
from service.store.stats import ALL, RESOLUTIONS, StatsStore, original_decision
from tests.conftest import admin_headers, new_key
from tests.support.workers import poll

REVIEW_ALL = {c: {"review": 0.01, "block": 0.999} for c in CATEGORIES}


def _sum(buckets: list[dict], *path: str) -> float:
    total = 0.0
    for b in buckets:
        value = b
        for p in path:
            value = value.get(p) or {}
        total += value if isinstance(value, int | float) else 0
    return total


def test_buckets_expire_and_sum_every_tenant(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    items = ItemStore(client)
    made = [NewItem(tenant=t, kind="text", content_hash=str(i), fields={"text": "x"})
            for i, t in enumerate(["a", "a", "b"])]
    items.create(made)
    stats = StatsStore(client)
    since = time.time() - 60
    assert stats.record_submissions([m.id for m in made], since) == 3
    # A replay (an Idempotency-Key repeat answers the first ids) is not counted again.
    assert stats.record_submissions([m.id for m in made], time.time() + 1) == 0
    now = time.time()
    for res_name, res in RESOLUTIONS.items():
        key = keys.stats_bucket("a", res.code, res.stamp(now))
        assert client.hget(key, "sub|text") == "2"
        ttl = client.ttl(key)
        assert res.retention * res.seconds - res.seconds <= ttl <= (res.retention + 1) * res.seconds, res_name
    [(_, counts, _)] = stats.series(ALL, "hour", 1)
    assert counts["sub|text"] == 3
    assert len(stats.series("a", "hour", 1000)) == RESOLUTIONS["hour"].retention  # never past retention
    client.close()


def test_original_decision_is_the_one_before_the_latest_appeal() -> None:
    events = [{"event": "verdict", "data": {"decision": "review"}},
              {"event": "human_decision", "data": {"decision": "block"}},
              {"event": "appeal", "data": {}},
              {"event": "human_decision", "data": {"decision": "allow"}}]
    assert original_decision(events) == "block"
    assert original_decision(events[:1]) is None


def _done(api: TestClient, headers: dict[str, str], ids: list[str]) -> None:
    for i in ids:
        poll(lambda i=i: api.get(f"/v1/moderations/{i}", headers=headers).json()["status"] == "done", 60)


def test_stats_api_end_to_end(api: TestClient) -> None:
    headers, tenant = new_key(api)
    assert api.put(f"/v1/policies/{tenant}", json={"categories": REVIEW_ALL},
                   headers=admin_headers()).status_code == 200
    batch = api.post("/v1/moderations/batch", json={"items": [{"text": "one"}, {"text": "two"}]}, headers=headers)
    single = api.post("/v1/moderations", json={"text": "three"}, headers={**headers, "Idempotency-Key": "k1"})
    again = api.post("/v1/moderations", json={"text": "three"}, headers={**headers, "Idempotency-Key": "k1"})
    assert again.json()["id"] == single.json()["id"]
    ids = [x["id"] for x in batch.json()["items"]] + [single.json()["id"]]
    _done(api, headers, ids)
    mod1, _ = new_key(api, "moderator", tenant)
    mod2, _ = new_key(api, "moderator", tenant)

    vol = poll(lambda: (lambda v: v if _sum(v["buckets"], "verdicts_total") == 3 else None)(
        api.get("/v1/stats/volume", params={"buckets": 2}, headers=mod1).json()), 20)
    assert _sum(vol["buckets"], "submitted", "text") == 3  # the idempotent replay counted once
    last = [b for b in vol["buckets"] if b["verdicts_total"]][-1]
    assert last["flag_rate"]["all"] == 1.0 and last["block_rate"]["all"] == 0.0
    assert sum(last["verdicts"]["text"].values()) == last["verdicts_total"]

    queue = api.get("/v1/stats/queue", headers=mod1).json()
    assert queue["depth"] == 3 and queue["by_kind"] == {"text": 3} and queue["age_s"]["oldest"] >= 0

    api.post(f"/v1/reviews/{ids[0]}/claim", json={}, headers=mod1)
    assert api.post(f"/v1/reviews/{ids[0]}/decision", json={"action": "remove"}, headers=mod1).status_code == 200
    assert api.post(f"/v1/moderations/{ids[0]}/appeal", json={"message": "a quote"}, headers=headers).status_code == 202
    api.post(f"/v1/reviews/{ids[0]}/claim", json={}, headers=mod2)
    assert api.post(f"/v1/reviews/{ids[0]}/decision", json={"action": "approve"}, headers=mod2).status_code == 200

    review = api.get("/v1/stats/review", params={"resolution": "day", "buckets": 2}, headers=mod1).json()
    totals = review["totals"]
    assert sorted(sum(x.values()) for x in totals["decisions_per_moderator"].values()) == [1, 1]
    assert set(review["moderators"].values()) == {"test"}
    assert totals["appeals"]["opened"] == 1 and totals["appeals"]["decided"] == 1
    assert totals["appeals"]["overturned"] == 1 and totals["appeals"]["overturn_rate"] == 1.0
    assert totals["median_time_to_decision_s"] is not None
    assert max(b["queue_max_depth"] or 0 for b in review["buckets"]) == 3

    versions = api.get("/v1/stats/versions", headers=mod1).json()
    assert sum(versions["totals"]["policies"].values()) == 3
    assert versions["current"]["policy"].endswith(f"+{tenant}@1") and versions["totals"]["models"]


def test_stats_are_tenant_scoped(api: TestClient) -> None:
    mod, tenant = new_key(api, "moderator")
    _, other = new_key(api, "moderator")
    resp = api.get("/v1/stats/volume", params={"tenant": other}, headers=mod)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "tenant_not_found"
    assert api.get("/v1/stats/volume", params={"tenant": tenant}, headers=mod).json()["tenant"] == tenant
    assert api.get("/v1/stats/volume", headers=admin_headers()).json()["tenant"] == ALL
    resp = api.get("/v1/stats/queue", headers=admin_headers())
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "tenant_required"
    platform, _ = new_key(api, "platform", tenant)
    assert api.get("/v1/stats/volume", headers=platform).status_code == 403
    assert api.get("/v1/stats/volume", params={"resolution": "hour", "buckets": 0}, headers=mod).status_code == 422
    workers = api.get("/v1/stats/workers", headers=mod).json()
    assert workers["workers"] is None and workers["summary"]["live"] >= 1
    detailed = api.get("/v1/stats/workers", headers=admin_headers()).json()
    assert detailed["workers"] and all("queues" in w for w in detailed["workers"])
