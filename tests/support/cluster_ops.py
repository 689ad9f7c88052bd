"""Runs the store's operations against a Redis Cluster: `python -m tests.support.cluster_ops SEED_URL [--no-tag]`.

A separate process because key names are fixed when service.store.keys is imported (MOD_REDIS_HASH_TAG must be
in the environment before that). Prints one JSON line of what ran; exits non-zero on the first failure. With
--no-tag it builds a cluster client without the tag and reports whether the first multi-key script was refused
(it must be: that is the failure the tag prevents).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[2]


def untagged(seed: str) -> dict[str, Any]:
    from service.store.client import ClusterClient
    from service.store.items import ItemStore, NewItem

    client = ClusterClient.from_url(seed, decode_responses=True)
    items = ItemStore(client)  # type: ignore[arg-type]
    try:
        items.create([NewItem("t1", "text", "h", {"text": "x"}) for _ in range(3)], idem_key="mod:idem:t1:k")
    except redis.RedisError as exc:
        return {"refused": True, "error": str(exc)[:200]}
    return {"refused": False}


def scenario(seed: str) -> dict[str, Any]:  # noqa: PLR0915 - one linear walk through every store
    from service.core.config import Settings
    from service.core.security import Principal, Role
    from service.store import keys
    from service.store.apikeys import ApiKeyStore
    from service.store.client import cluster_client
    from service.store.items import ItemStore, NewItem, Transition, idem_key, verdict_key
    from service.store.policies import PolicyStore
    from service.store.ratelimit import Bucket, RateLimitStore, pending_depth
    from service.store.rescans import RescanStore
    from service.store.reviews import ReviewStore, item_priority, queue_key
    from service.store.stats import StatsStore

    ran: list[str] = []
    client = cluster_client(Settings(redis_url=seed, env="test"))
    slot = client.keyslot(keys.SLOT)
    tenant = "acme"
    probes = [keys.item("x"), keys.audit("x"), keys.index(tenant), keys.index(None), keys.PENDING, keys.OUTBOX,
              keys.review(tenant), keys.leases(tenant), keys.idempotency(tenant, "k"), keys.blocked(tenant),
              keys.rescan("j"), keys.rescan_seen("j"), keys.stats_bucket(tenant, "h", "2026010100"),
              keys.ratelimit("submit", "key", "k1"), keys.verdict("h", "m", "p"), keys.apikey("d")]
    assert {client.keyslot(k) for k in probes} == {slot}, "a key escaped the hash tag's slot"
    ran.append("one_slot")

    items = ItemStore(client)  # type: ignore[arg-type]
    new = [NewItem(tenant, "text", f"h{i}", {"text": f"text {i}", "callback_url": "http://127.0.0.1:9/hook"},
                   external_id=f"ext{i}") for i in range(4)]
    ikey = idem_key(tenant, "req-1")
    assert items.create(new, ikey, {"ids": [n.id for n in new], "digest": "d1"}).created
    again = items.create([NewItem(tenant, "text", "h9", {"text": "other"})], ikey, {"ids": ["x"], "digest": "d1"})
    assert not again.created and again.existing == {"ids": [n.id for n in new], "digest": "d1"}
    assert items.create([NewItem(tenant, "text", "h8", {})], max_pending=4).queue_depth == 4  # back-pressure
    assert pending_depth(client) == 4  # type: ignore[arg-type]
    assert items.pop_ready_text(2) == [new[0].id, new[1].id]
    ran += ["create", "idempotency", "back_pressure", "ready_text"]

    # Complete: processing -> done; one to review with a block on its external id, all owing a webhook.
    moved = items.transition_many([Transition(n.id, "processing", ("queued",), "processing") for n in new])
    assert all(ok for ok, _ in moved)
    done = []
    for i, n in enumerate(new):
        item = items.get(n.id)
        assert item is not None
        review = (queue_key(tenant), item_priority({**item, "scores": {"hate": 0.9}})) if i == 0 else None
        done.append(Transition(n.id, "done", ("processing",), "verdict",
                               fields={"decision": "block" if i == 0 else "allow", "scores": {"hate": 0.9},
                                       "flagged": ["hate"] if i == 0 else [], "source": "model",
                                       "completed_at": time.time()},
                               data={"decision": "block" if i == 0 else "allow"}, decision="block" if i == 0
                               else "allow", blocked=("add", tenant, n.external_id or "") if i == 0 else None,
                               review=review, webhook="moderation.completed"))
    assert all(ok for ok, _ in items.transition_many(done))
    assert not items.transition(new[1].id, "done", ("processing",), "verdict")[0]  # second finisher loses
    assert pending_depth(client) == 0  # type: ignore[arg-type]
    assert client.sismember(keys.blocked(tenant), "ext0")
    assert client.zcard(keys.OUTBOX) == 4
    assert client.lrange(keys.notify(new[0].id), 0, -1) == ["done"]
    assert sum(int(v) for v in items.verdict_counts().values()) == 4
    assert [e["event"] for e in items.history(new[1].id)] == ["created", "processing", "verdict"]
    assert items.ids_by_external_id(tenant, "ext2") == [new[2].id]
    assert len(items.page(tenant, None, 10)) == 4
    ran += ["complete", "blocked", "outbox", "notify", "metrics", "audit", "indexes"]

    # Verdict cache (SET NX + MGET) and webhook deliveries (MULTI).
    vk = verdict_key("h0", "m@1", "p@1")
    first = items.claim_verdict(vk, {"decision": "allow"}, 60)  # type: ignore[typeddict-item]
    assert items.claim_verdict(vk, {"decision": "block"}, 60) == first  # type: ignore[typeddict-item]
    assert items.cached_verdicts([vk, verdict_key("h1", "m@1", "p@1")]) == [first, None]
    items.record_delivery(new[0].id, {"attempt": 1, "status": 200})  # type: ignore[typeddict-item]
    assert len(items.deliveries(new[0].id)) == 1
    ran += ["verdict_cache", "deliveries"]

    # Review queue: claim, decide, appeal, claim by a second moderator, decide.
    reviews = ReviewStore(client)  # type: ignore[arg-type]
    assert [i for i, _ in reviews.page(tenant, None, 10)] == [new[0].id]
    reviews.claim(tenant, new[0].id, "mod-a", "A", 60)
    assert reviews.claimed(tenant) == [new[0].id]
    reviews.decide(tenant, new[0].id, "mod-a", "A", "approve", [], "fine on a second look")
    assert not client.sismember(keys.blocked(tenant), "ext0")
    reviews.appeal(tenant, new[0].id, "please look again", "user-1")
    reviews.claim(tenant, new[0].id, "mod-b", "B", 60)
    reviews.decide(tenant, new[0].id, "mod-b", "B", "remove", ["hate"], "confirmed")
    assert client.sismember(keys.blocked(tenant), "ext0")
    assert reviews.stats(tenant, [])["decided"] == 2
    assert reviews.sweep(tenant) == 0
    ran += ["review_claim", "review_decide", "appeal"]

    # Rescans: plan, apply a changed verdict once (a repeat is not counted), finish.
    rescans = RescanStore(client)  # type: ignore[arg-type]
    job = rescans.create({"tenant": tenant}, "admin")
    rescans.add_targets(job, [new[1].id, new[2].id])
    rescans.mark_planned(job)
    assert rescans.apply(job, new[1].id, "changed", fields={"decision": "review"}, old={"decision": "allow"},
                         audit={"decision": "review"}, expect_version="")
    assert not rescans.apply(job, new[1].id, "changed", fields={"decision": "review"}, expect_version="")
    rescans.apply(job, new[2].id, "unchanged")
    assert rescans.maybe_finish(job) or rescans.status(job) == "done"
    record = rescans.get(job)
    assert record is not None and record["status"] == "done" and record["changed"] == 1, record
    assert len(rescans.versions(new[1].id)) == 1
    assert rescans.recent(5)[0]["id"] == job
    ran += ["rescan_plan", "rescan_apply", "rescan_finish"]

    # Stats: submissions, verdicts (queue-depth script), human decisions, series read.
    stats = StatsStore(client)  # type: ignore[arg-type]
    assert stats.record_submissions([n.id for n in new], since=0) == 4
    got = [items.get(n.id) for n in new]
    stats.record_verdicts([(it, {"decision": "allow", "flagged": [], "models": [], "policy_version": "p@1"},  # type: ignore[misc]
                            True) for it in got if it])
    stats.record_human(tenant, {"moderator": "mod-a", "action": "approve", "at": time.time()}, time.time() - 5,
                       None)
    series = stats.series(tenant, "hour", 2)
    assert series[-1][1].get("sub|text") == 4 and series[-1][1].get("v|text|allow") == 4, series[-1]
    assert stats.queue_snapshot(tenant)[1] == 0
    ran += ["stats"]

    # Rate limits: a key bucket and a tenant bucket taken atomically by one script.
    limits = RateLimitStore(client)  # type: ignore[arg-type]
    buckets = [Bucket("submit", "key", "k1", 1.0, 2), Bucket("submit", "tenant", tenant, 1.0, 5)]
    assert limits.take(buckets).allowed and limits.take(buckets).allowed
    refused = limits.take(buckets)
    assert not refused.allowed and refused.refused_by is not None and refused.refused_by.bucket.scope == "key"
    ran += ["ratelimit"]

    # API keys (WATCH/MULTI) and policy overrides.
    keystore = ApiKeyStore(client)  # type: ignore[arg-type]
    secret, principal = keystore.create(tenant, Role.platform, "cluster", actor=None)
    assert keystore.authenticate(secret) == principal
    assert keystore.revoke(principal.key_id, actor=Principal(key_id="x", tenant=tenant, role=Role.admin, name="admin"))
    assert keystore.authenticate(secret) is None
    policies = PolicyStore(client, ROOT / "policies" / "default.yaml")  # type: ignore[arg-type]
    policies.put_override(tenant, {}, ["badword"], None)
    assert "badword" in policies.effective(tenant).blocklist_terms
    ran += ["apikeys", "policies"]

    owner = client.get_node_from_key(keys.SLOT)
    return {"ran": ran, "slot": slot, "node": f"{owner.host}:{owner.port}" if owner else None}


def stack(seed: str, broker: str, model: str, workdir: str) -> dict[str, Any]:
    """The gateway (in this process) and a text worker process with the store on the cluster, broker apart."""
    from fastapi.testclient import TestClient

    from service.core.config import Settings
    from service.gateway.app import create_app
    from service.store import keys
    from service.store.client import sync_client
    from tests.conftest import admin_headers, stack_values
    from tests.support.workers import WorkerProcess, poll, settings_env

    values = stack_values(Path(model), redis_cluster=True, redis_hash_tag=keys.HASH_TAG, broker_url=broker,
                          data_dir=workdir)
    settings = Settings(redis_url=seed, **values)  # type: ignore[arg-type]
    store = sync_client(settings)
    worker = WorkerProcess(seed, settings_env(values), queues="text,webhooks", log_path=Path(workdir) / "w.log")
    worker.start(wait_ready=False)
    try:
        # The harness's own heartbeat wait reads untagged keys on one node; read through the cluster instead.
        poll(lambda: list(store.scan_iter(keys.HEARTBEAT_PATTERN)), 240, 0.2)
        with TestClient(create_app(settings)) as api:
            assert api.get("/readyz").status_code == 200, api.get("/readyz").text
            resp = api.post("/v1/keys", json={"tenant": "cl", "role": "platform", "name": "c"}, headers=admin_headers())
            assert resp.status_code == 201, resp.text
            headers = {"Authorization": f"Bearer {resp.json()['key']}"}
            batch = [{"text": f"cluster text {i}", "external_id": f"c{i}"} for i in range(30)]
            resp = api.post("/v1/moderations/batch", json={"items": batch},
                            headers={**headers, "Idempotency-Key": "cl-1"})
            assert resp.status_code == 202, resp.text
            ids = [it["id"] for it in resp.json()["items"]]
            replay = api.post("/v1/moderations/batch", json={"items": batch},
                              headers={**headers, "Idempotency-Key": "cl-1"})
            assert [it["id"] for it in replay.json()["items"]] == ids
            waited = api.post("/v1/moderations?wait=10", json={"text": "one more"}, headers=headers)  # async BLPOP
            assert waited.status_code in (200, 202), waited.text
            ids.append(waited.json()["id"])
            poll(lambda: all(api.get(f"/v1/moderations/{i}", headers=headers).json()["status"] == "done"
                             for i in ids), 300, 0.5)
            events = [sum(1 for _, f in store.xrange(keys.audit(i)) if f.get("event") == "verdict") for i in ids]
            assert events == [1] * len(ids), events
            listed = api.get("/v1/moderations?limit=100", headers=headers).json()
            assert len(listed["items"]) == len(ids), listed
            assert api.get("/metrics").status_code == 200
        return {"ran": ["worker", "readyz", "batch", "idempotent_replay", "wait", "verdicts", "list", "metrics"],
                "waited": waited.status_code}
    finally:
        worker.stop()


def main() -> int:
    seed = sys.argv[1]
    if "--stack" in sys.argv:
        broker, model, workdir = sys.argv[sys.argv.index("--stack") + 1:][:3]
        print(json.dumps(stack(seed, broker, model, workdir)))
        return 0
    out = untagged(seed) if "--no-tag" in sys.argv else scenario(seed)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
