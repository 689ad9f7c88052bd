"""Signed webhooks: delivered on a final verdict, retried with backoff, every attempt readable via the API."""

from __future__ import annotations

import json
import time

from fastapi.testclient import TestClient

from service.core.security import sign_webhook, verify_webhook
from tests.conftest import new_key
from tests.support.receiver import webhook_receiver
from tests.support.workers import poll


def test_webhook_signed_and_retried(api: TestClient) -> None:
    headers, tenant = new_key(api)
    secret = api.get(f"/v1/tenants/{tenant}/webhook-secret", headers=headers).json()["secret"]
    with webhook_receiver([500, 503]) as rx:
        resp = api.post("/v1/moderations", json={"text": "notify me", "callback_url": rx.url()}, headers=headers)
        item_id = resp.json()["id"]
        deliveries = poll(lambda: (lambda d: d if d and d[-1]["ok"] else None)(
            api.get(f"/v1/moderations/{item_id}/webhooks", headers=headers).json()["items"]), 60)
        assert [d["status_code"] for d in deliveries] == [500, 503, 200]
        assert [d["attempt"] for d in deliveries] == [1, 2, 3]
        assert deliveries[-1]["final"] and not deliveries[0]["final"]
        assert len(rx.requests) == 3
        last = rx.requests[-1]
        assert verify_webhook(secret, last.headers["x-moderation-signature"], last.body, int(time.time()))
        assert not verify_webhook("whsec_wrong", last.headers["x-moderation-signature"], last.body, int(time.time()))
        payload = json.loads(last.body)
        assert payload["event"] == "moderation.completed"
        assert payload["moderation"]["id"] == item_id and payload["moderation"]["status"] == "done"
        assert "text" not in payload["moderation"]
    history = [e["event"] for e in api.app.state.services.items.history(item_id)]
    assert history.count("webhook_attempt") == 3


def test_webhook_gives_up_on_client_error(api: TestClient) -> None:
    headers, _ = new_key(api)
    with webhook_receiver([410]) as rx:
        item_id = api.post("/v1/moderations", json={"text": "gone", "callback_url": rx.url()},
                           headers=headers).json()["id"]
        deliveries = poll(lambda: api.get(f"/v1/moderations/{item_id}/webhooks", headers=headers).json()["items"], 60)
        assert deliveries[0]["status_code"] == 410 and deliveries[0]["final"] and not deliveries[0]["ok"]


def test_webhook_retries_are_capped(api: TestClient) -> None:
    headers, _ = new_key(api)
    max_retries = api.app.state.services.settings.webhook_max_retries
    with webhook_receiver([500] * 50) as rx:
        item_id = api.post("/v1/moderations", json={"text": "always failing", "callback_url": rx.url()},
                           headers=headers).json()["id"]
        deliveries = poll(lambda: (lambda d: d if d and d[-1]["final"] else None)(
            api.get(f"/v1/moderations/{item_id}/webhooks", headers=headers).json()["items"]), 90)
        assert len(deliveries) == max_retries + 1 and not deliveries[-1]["ok"]
        assert len(rx.requests) == max_retries + 1


def test_secret_rotation(api: TestClient) -> None:
    headers, tenant = new_key(api)
    old = api.get(f"/v1/tenants/{tenant}/webhook-secret", headers=headers).json()
    assert old["previous_expires_at"] is None
    before = time.time()
    rotated = api.post(f"/v1/tenants/{tenant}/webhook-secret/rotate", headers=headers).json()
    assert old["secret"] != rotated["secret"] and rotated["secret"].startswith("whsec_")
    # Default grace: 24 h.
    assert before + 86400 - 5 <= rotated["previous_expires_at"] <= time.time() + 86400 + 5
    current = api.get(f"/v1/tenants/{tenant}/webhook-secret", headers=headers).json()
    assert current["secret"] == rotated["secret"]
    assert abs(current["previous_expires_at"] - rotated["previous_expires_at"]) < 5
    assert api.app.state.services.tenants.webhook_secrets(tenant) == [rotated["secret"], old["secret"]]


def test_rotation_grace_expires(api: TestClient) -> None:
    headers, tenant = new_key(api)
    old = api.get(f"/v1/tenants/{tenant}/webhook-secret", headers=headers).json()["secret"]
    new = api.post(f"/v1/tenants/{tenant}/webhook-secret/rotate", params={"grace_s": 1}, headers=headers).json()
    tenants = api.app.state.services.tenants
    assert tenants.webhook_secrets(tenant) == [new["secret"], old]
    poll(lambda: tenants.webhook_secrets(tenant) == [new["secret"]], 10)
    assert api.get(f"/v1/tenants/{tenant}/webhook-secret", headers=headers).json()["previous_expires_at"] is None
    # grace_s=0 ends the old secret at once; a second rotation keeps only the latest previous secret.
    newer = api.post(f"/v1/tenants/{tenant}/webhook-secret/rotate", headers=headers).json()["secret"]
    newest = api.post(f"/v1/tenants/{tenant}/webhook-secret/rotate", headers=headers).json()["secret"]
    assert tenants.webhook_secrets(tenant) == [newest, newer]
    last = api.post(f"/v1/tenants/{tenant}/webhook-secret/rotate", params={"grace_s": 0}, headers=headers).json()
    assert last["previous_expires_at"] is None and tenants.webhook_secrets(tenant) == [last["secret"]]


def test_rotation_grace_is_validated(api: TestClient) -> None:
    headers, tenant = new_key(api)
    for grace in ("-1", "nan", "inf", "-inf", "1e400", "2592001", "9" * 400, "1.5", "x"):
        resp = api.post(f"/v1/tenants/{tenant}/webhook-secret/rotate", params={"grace_s": grace}, headers=headers)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_error", grace
    for bad_tenant in ("a:b", "x" * 65):
        resp = api.get(f"/v1/tenants/{bad_tenant}/webhook-secret", headers=headers)
        assert resp.status_code == 422, bad_tenant


def _v1_count(header: str) -> int:
    return sum(1 for part in header.split(",") if part.startswith("v1="))


def test_rotation_signs_with_both_secrets_during_grace(api: TestClient) -> None:
    """Through the real worker: during the grace a delivery verifies with the old or the new secret."""
    headers, tenant = new_key(api)
    old = api.get(f"/v1/tenants/{tenant}/webhook-secret", headers=headers).json()["secret"]
    new = api.post(f"/v1/tenants/{tenant}/webhook-secret/rotate", headers=headers).json()["secret"]
    with webhook_receiver() as rx:
        api.post("/v1/moderations", json={"text": "rotating", "callback_url": rx.url()}, headers=headers)
        poll(lambda: len(rx.requests) >= 1, 60)
        delivery = rx.requests[0]
        signature = delivery.headers["x-moderation-signature"]
        assert signature.startswith("t=") and _v1_count(signature) == 2
        now = int(time.time())
        assert verify_webhook(new, signature, delivery.body, now)
        assert verify_webhook(old, signature, delivery.body, now)
        assert verify_webhook([old, new], signature, delivery.body, now)
        assert not verify_webhook("whsec_wrong", signature, delivery.body, now)
        assert not verify_webhook(new, signature, delivery.body + b" ", now)
        # Signature order: the new secret's first.
        ts = int(signature.split(",")[0][2:])
        assert signature == sign_webhook([new, old], ts, delivery.body)

        # Ending the grace: the next delivery carries only the newest secret's signature.
        newest = api.post(f"/v1/tenants/{tenant}/webhook-secret/rotate", params={"grace_s": 0},
                          headers=headers).json()["secret"]
        api.post("/v1/moderations", json={"text": "rotated", "callback_url": rx.url()}, headers=headers)
        poll(lambda: len(rx.requests) >= 2, 60)
        delivery = rx.requests[1]
        signature = delivery.headers["x-moderation-signature"]
        assert _v1_count(signature) == 1
        assert verify_webhook(newest, signature, delivery.body, int(time.time()))
        assert not verify_webhook(new, signature, delivery.body, int(time.time()))
        assert not verify_webhook(old, signature, delivery.body, int(time.time()))


def test_verify_webhook_parsing() -> None:
    body = b'{"x":1}'
    header = sign_webhook(["whsec_a", "whsec_b"], 1000, body)
    assert verify_webhook("whsec_a", header, body, 1000) and verify_webhook("whsec_b", header, body, 1000)
    assert verify_webhook("whsec_a", sign_webhook("whsec_a", 1000, body), body, 1000)
    assert not verify_webhook("whsec_a", header, body, 1000 + 301)  # outside the tolerance
    assert not verify_webhook([], header, body, 1000)
    v1_a = header.split(",")[1]
    for bad in ("", "garbage", "t=1000", f"t=abc,{v1_a}", f"{v1_a}", f"t=1000,t=1000,{v1_a}",
                f"t=1000,{v1_a},junk", "v1=,t=1000", f"t=999,{v1_a}"):
        assert not verify_webhook("whsec_a", bad, body, 1000), bad
    assert verify_webhook("whsec_a", f"t=1000, {v1_a}", body, 1000)  # whitespace after commas is tolerated


def test_outbox_resends_a_lost_webhook(redis_server, tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A verdict written but whose webhook task was never sent (broker blip) is delivered by the sweeper."""
    import redis

    from service.store.items import OUTBOX_KEY, ItemStore, NewItem, Transition
    from tests.conftest import stack_values
    from tests.support.workers import WorkerProcess, settings_env

    url = redis_server.url(7)
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    values = stack_values(tiny_model, webhook_outbox_sweep_s=1, webhook_outbox_grace_s=1)
    worker = WorkerProcess(url, settings_env(values), queues="webhooks", log_path=tmp_path / "w.log").start()
    try:
        with webhook_receiver() as rx:
            store = ItemStore(client)
            item = NewItem(tenant="t", kind="text", content_hash="h", fields={"text": "x", "callback_url": rx.url()})
            store.create([item])
            store.transition_many([Transition(item.id, "processing", ("queued",), "processing")])
            # The verdict is written with its webhook owed, but no task is sent: as if the broker failed then.
            moved, _ = store.transition_many([Transition(item.id, "done", ("processing",), "verdict",
                                                         fields={"decision": "allow"}, decision="allow",
                                                         webhook="moderation.completed")])[0]
            assert moved and client.zscore(OUTBOX_KEY, f"{item.id}|moderation.completed") is not None
            poll(lambda: len(rx.requests) >= 1, 30)
            assert json.loads(rx.requests[0].body)["moderation"]["id"] == item.id
            poll(lambda: client.zcard(OUTBOX_KEY) == 0, 10)
    finally:
        worker.stop()
