"""Redis Sentinel: the gateway, a worker and the Celery broker follow a primary failover in the middle of a
2,000-item run, and every accepted item ends with exactly one verdict -- none lost, none duplicated.

The client behaves as docs/api.md tells platforms to: every request carries an Idempotency-Key and is retried
with the same key on 5xx or a dropped connection until it is answered 2xx.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.store import keys
from service.store.client import sync_client
from service.store.items import ItemStore, NewItem
from tests.conftest import admin_headers, stack_values
from tests.support.sentinel import SentinelCluster
from tests.support.workers import FAST_REDELIVERY, WorkerProcess, poll, settings_env

ITEMS = 2000
BATCH = 20
FAIL_OVER_AFTER = 600  # accepted items before the failover starts (it overlaps the rest of the submissions)


@pytest.fixture(scope="module")
def ha(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SentinelCluster, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("sentinel")
    cluster = SentinelCluster(root).start()
    try:
        values = stack_values(
            tiny_model, data_dir=str(root / "data"), redis_sentinels=cluster.nodes, redis_sentinel_master="mymaster",
            redis_min_replicas_ack=1, redis_replica_ack_timeout_ms=500,
            # Recovery of what the failover loses: items pending 15 s are re-sent, swept every 2 s.
            requeue_after_s=15, requeue_sweep_s=2, ratelimit_enabled=False, **FAST_REDELIVERY)
        yield cluster, values
    finally:
        cluster.stop()


def verdict_events(client: redis.Redis, item_id: str) -> int:
    return sum(1 for _, f in client.xrange(keys.audit(item_id)) if f.get("event") == "verdict")


class RetryingClient:
    """Posts with an Idempotency-Key and retries the same request on 5xx / transport errors."""

    def __init__(self, api: TestClient, headers: dict[str, str]) -> None:
        self.api, self.headers = api, headers
        self.retries = Counter[str]()

    def post(self, path: str, body: dict[str, Any], idem: str, deadline_s: float = 120.0) -> dict[str, Any]:
        end = time.monotonic() + deadline_s
        while True:
            try:
                resp = self.api.post(path, json=body, headers={**self.headers, "Idempotency-Key": idem})
                if resp.status_code < 300:
                    return dict(resp.json())
                assert resp.status_code >= 500, resp.text  # 4xx would be a bug in the test or the service
                assert resp.status_code != 500, resp.text  # a dropped store must be a 503 with a code, not a crash
                self.retries[str(resp.json().get("error", {}).get("code", resp.status_code))] += 1
            except (redis.RedisError, OSError) as exc:  # the in-process transport surfaced a dropped store
                self.retries[type(exc).__name__] += 1
            if time.monotonic() > end:
                raise TimeoutError(f"{path} {idem} not accepted in {deadline_s}s ({dict(self.retries)})")
            time.sleep(0.2)


def test_failover_mid_run_loses_and_duplicates_nothing(
        ha: tuple[SentinelCluster, dict[str, Any]], tmp_path: Path) -> None:
    from service.gateway.app import create_app

    cluster, values = ha
    old_primary = cluster.master_port()
    # redis_url gives only the DB index under Sentinel; the worker harness also reads heartbeats through it.
    settings = Settings(redis_url=cluster.primary.url(0), **values)  # type: ignore[arg-type]
    worker = WorkerProcess(settings.redis_url, settings_env(values), queues="text",
                           log_path=tmp_path / "worker.log").start()
    try:
        with TestClient(create_app(settings)) as api:
            resp = api.post("/v1/keys", json={"tenant": "ha", "role": "platform", "name": "ha"},
                            headers=admin_headers())
            assert resp.status_code == 201, resp.text
            client = RetryingClient(api, {"Authorization": f"Bearer {resp.json()['key']}"})
            accepted: dict[str, str] = {}  # external id -> the item id the platform was given
            failover: dict[str, int] = {}
            switch = threading.Thread(target=lambda: failover.update(new=cluster.failover()))
            for start in range(0, ITEMS, BATCH):
                if start == FAIL_OVER_AFTER:
                    switch.start()  # runs while the next batches are submitted and the worker is busy
                batch = [{"text": f"item {i}: the film was {['fine', 'awful', 'lovely', 'dull'][i % 4]} #{i}",
                          "external_id": f"e{i}"} for i in range(start, start + BATCH)]
                body = client.post("/v1/moderations/batch", {"items": batch}, idem=f"batch-{start}")
                ids = [it["id"] for it in body["items"]]
                assert len(ids) == BATCH
                accepted.update({f"e{i}": item_id for i, item_id in zip(range(start, start + BATCH), ids,
                                                                          strict=True)})
            switch.join(90)
            assert failover.get("new") and failover["new"] != old_primary, failover
            assert cluster.master_port() == cluster.replica.port

        store = sync_client(settings)  # through Sentinel: reads the new primary
        # Items whose task message is lost (what a failover does to a publish it did not replicate): created
        # without a task and taken off the batching list, so only the reaper can bring them to a verdict.
        orphans = [NewItem("ha", "text", f"orphan{i}", {"text": f"orphan {i}", "priority": 0},
                           external_id=f"orphan{i}") for i in range(5)]
        assert ItemStore(store).create(orphans).created
        for orphan in orphans:
            store.lrem(keys.READY_TEXT, 0, orphan.id)
        accepted.update({f"orphan{i}": o.id for i, o in enumerate(orphans)})

        def unfinished() -> list[str]:
            pipe = store.pipeline(transaction=False)
            for item_id in accepted.values():
                pipe.hget(keys.item(item_id), "status")
            return [i for i, s in zip(accepted.values(), pipe.execute(), strict=True) if s != "done"]

        try:
            poll(lambda: not unfinished(), 600, 0.5)
        except TimeoutError:
            left = unfinished()
            raise AssertionError(f"{len(left)} accepted items not done, e.g. "
                                 f"{[store.hgetall(keys.item(i)) for i in left[:3]]}; {worker.log_text()}") from None

        # Nothing lost: every accepted id is done with exactly one verdict event. Nothing duplicated: each
        # external id has exactly one item carrying a verdict (a retry may have left an unqueued item `failed`).
        assert len(accepted) == ITEMS + len(orphans)
        for ext, item_id in accepted.items():
            assert verdict_events(store, item_id) == 1, (ext, item_id, store.xrange(keys.audit(item_id)))
            with_verdict = []
            for other in store.zrange(keys.external("ha", ext), 0, -1):
                if verdict_events(store, other):
                    with_verdict.append(other)
                else:
                    assert store.hget(keys.item(other), "status") == "failed", store.hgetall(keys.item(other))
            assert with_verdict == [item_id], (ext, with_verdict)
        counts = {k: int(v) for k, v in store.hgetall(keys.METRICS_VERDICTS).items()}
        assert sum(counts.values()) == ITEMS + len(orphans), counts
        assert "re-enqueued" in (tmp_path / "worker.log").read_text()  # the orphans came back through the reaper
        print("failover retries seen by the client:", json.dumps(dict(client.retries)),
              "| reaper sweeps that re-sent items:", (tmp_path / "worker.log").read_text().count("re-enqueued"))
        store.close()
    finally:
        worker.stop()


def test_broker_and_clients_follow_the_sentinel_settings() -> None:
    """The broker URL and transport options come from the same settings as the store's clients."""
    from service.core.queue import make_celery
    from service.store.client import sentinel_nodes

    settings = Settings(redis_url="redis://ignored:6379/3", redis_sentinels=["127.0.0.1:26379", "[::1]:26380"],
                        redis_sentinel_master="prod", redis_password="p w", redis_sentinel_password="s")
    assert settings.celery_broker_url == "sentinel://:p%20w@127.0.0.1:26379/3;sentinel://:p%20w@[::1]:26380/3"
    opts = make_celery(settings).conf.broker_transport_options
    assert opts["master_name"] == "prod" and opts["sentinel_kwargs"] == {"password": "s"}
    assert sentinel_nodes(settings) == [("127.0.0.1", 26379), ("::1", 26380)]
    client = sync_client(settings)
    pool = client.connection_pool
    assert pool.service_name == "prod" and pool.connection_kwargs["db"] == 3  # type: ignore[attr-defined]
    client.close()
    plain = Settings(redis_url="redis://127.0.0.1:6379/2")
    assert plain.celery_broker_url == "redis://127.0.0.1:6379/2" and "master_name" not in \
        make_celery(plain).conf.broker_transport_options


def test_a_hash_tag_only_in_the_settings_is_refused() -> None:
    """Key names come from the process environment; a tag that only the settings know would be silently ignored."""
    with pytest.raises(ValueError, match="MOD_REDIS_HASH_TAG"):
        sync_client(Settings(redis_url="redis://127.0.0.1:6379/0", redis_hash_tag="not-in-env"))
