"""Webhook verification: the client's verifier against the project's own signing, and real deliveries.

Signatures come from `service.core.security.sign_webhook` (what the webhook worker calls) or from the running
worker itself; the verifier shares no code with it, so these tests catch any drift in the wire format.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from moderation_client import SIGNATURE_HEADER, ModerationClient, WebhookVerificationError, WebhookVerifier
from service.core.security import sign_webhook, verify_webhook
from tests.support.receiver import webhook_receiver
from tests.support.workers import poll

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000
OLD, NEW = "whsec_old_secret_value", "whsec_new_secret_value"
BODY = json.dumps({"event": "moderation.completed", "delivery_id": "d1", "sent_at": NOW,
                   "moderation": {"id": "mod_1", "tenant": "t", "kind": "text", "status": "done",
                                  "status_url": "/v1/moderations/mod_1", "decision": "allow",
                                  "created_at": NOW - 1}}, separators=(",", ":")).encode()


def verifier(secrets: str | list[str], now: float = NOW, tolerance_s: int = 300) -> WebhookVerifier:
    return WebhookVerifier(secrets, tolerance_s=tolerance_s, clock=lambda: now)


def reason(v: WebhookVerifier, header: str | None, body: bytes = BODY) -> str:
    with pytest.raises(WebhookVerificationError) as exc:
        v.verify(body, header)
    return exc.value.reason


def test_single_secret_round_trip() -> None:
    header = sign_webhook(NEW, NOW, BODY)
    assert verifier(NEW).verify(BODY, header) == NOW
    event = verifier(NEW).parse(BODY, header)
    assert event.event == "moderation.completed" and event.moderation.id == "mod_1"
    assert event.moderation.decision == "allow"
    assert reason(verifier(OLD), header) == "signature_mismatch"
    assert reason(verifier(NEW), header, BODY + b" ") == "signature_mismatch"  # any change to the raw body


def test_rotation_both_signatures_verify_with_either_secret() -> None:
    header = sign_webhook([NEW, OLD], NOW, BODY)  # what the worker sends during a grace period
    assert header.count("v1=") == 2
    assert verifier(OLD).verify(BODY, header) == NOW  # a receiver that has not switched yet
    assert verifier(NEW).verify(BODY, header) == NOW  # one that already has
    assert verifier([NEW, OLD]).verify(BODY, header) == NOW  # one holding both while it switches
    assert reason(verifier("whsec_unrelated"), header) == "signature_mismatch"
    # After the grace the worker signs with the new secret only: a receiver still on the old one must notice.
    assert reason(verifier(OLD), sign_webhook([NEW], NOW, BODY)) == "signature_mismatch"
    assert verifier([NEW, OLD]).verify(BODY, sign_webhook([NEW], NOW, BODY)) == NOW


@pytest.mark.parametrize("skew", [301, -301, 10_000])
def test_timestamp_outside_the_window_is_refused(skew: int) -> None:
    header = sign_webhook(NEW, NOW, BODY)
    assert reason(verifier(NEW, now=NOW + skew), header) == "timestamp_outside_window"
    assert verifier(NEW, now=NOW + 300).verify(BODY, header) == NOW  # the window is inclusive
    assert verifier(NEW, now=NOW + skew, tolerance_s=abs(skew)).verify(BODY, header) == NOW


def test_replayed_signature_with_a_new_timestamp_is_refused() -> None:
    # An attacker re-stamps a captured delivery to pass the window: the signature covers the timestamp.
    sig = sign_webhook(NEW, NOW - 3600, BODY).split(",", 1)[1]
    assert reason(verifier(NEW), f"t={NOW},{sig}") == "signature_mismatch"


@pytest.mark.parametrize("header,expected", [
    (None, "missing_signature"), ("", "missing_signature"), ("v1=abc", "malformed_signature"),
    (f"t={NOW}", "malformed_signature"), (f"t=soon,v1={'0' * 64}", "malformed_signature"),
    (f"t={NOW},t={NOW},v1={'0' * 64}", "malformed_signature"), (f"t={NOW},garbage", "malformed_signature"),
    (f"t={NOW}," + ",".join(["v1=" + "0" * 64] * 9), "malformed_signature"),
    ("t=1," + "x" * 5000, "malformed_signature"),
])
def test_malformed_headers_are_refused(header: str | None, expected: str) -> None:
    assert reason(verifier(NEW), header) == expected


def test_unknown_schemes_are_ignored_for_forward_compatibility() -> None:
    header = sign_webhook(NEW, NOW, BODY) + ",v2=somethingnew"
    assert verifier(NEW).verify(BODY, header) == NOW


@pytest.mark.parametrize("secrets,skew", [(NEW, 0), (OLD, 0), ([OLD, NEW], 0), (NEW, 299), (NEW, 301), ("x", 0)])
def test_agrees_with_the_service_reference_verifier(secrets: str | list[str], skew: int) -> None:
    header = sign_webhook([NEW, OLD], NOW, BODY)
    try:
        verifier(secrets, now=NOW + skew).verify(BODY, header)
        ours = True
    except WebhookVerificationError:
        ours = False
    assert ours == verify_webhook(secrets, header, BODY, NOW + skew)


def test_body_that_is_not_a_delivery_is_refused_after_verification() -> None:
    body = b'{"not": "a delivery"}'
    with pytest.raises(WebhookVerificationError) as exc:
        verifier(NEW).parse(body, sign_webhook(NEW, NOW, body))
    assert exc.value.reason == "malformed_body"


def test_real_delivery_during_a_rotation(gateway_url: str, platform: tuple[str, str]) -> None:
    """Through the running worker: rotate, submit with a callback, verify the captured delivery every way."""
    key, tenant = platform
    with ModerationClient(gateway_url, key) as client, webhook_receiver() as rx:
        old = client.webhook_secret(tenant).secret
        rotated = client.rotate_webhook_secret(tenant, grace_s=3600)
        assert rotated.secret != old and rotated.previous_expires_at is not None
        item = client.moderate_text("deliver me", callback_url=rx.url(), timeout=120)
        delivery = poll(lambda: rx.requests[0] if rx.requests else None, 60)
    header = delivery.headers["x-moderation-signature"]
    assert header.count("v1=") == 2
    received_at = time.time()
    for secrets in (old, rotated.secret, [rotated.secret, old]):
        event = WebhookVerifier(secrets, clock=lambda: received_at).parse_request(delivery.body, delivery.headers)
        assert event.moderation.id == item.id and event.event == "moderation.completed"
        assert event.moderation.decision == item.decision
    with pytest.raises(WebhookVerificationError):
        WebhookVerifier("whsec_someone_else").parse_request(delivery.body, delivery.headers)
    with pytest.raises(WebhookVerificationError) as stale:  # the same delivery replayed an hour later
        WebhookVerifier(old, clock=lambda: received_at + 3600).parse_request(delivery.body, delivery.headers)
    assert stale.value.reason == "timestamp_outside_window"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_receiver_example", ROOT / "examples" / "webhook_receiver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_receiver_accepts_real_deliveries_and_refuses_forgeries(gateway_url: str,
                                                                        platform: tuple[str, str]) -> None:
    import threading

    example = load_example()
    events: list = []
    key, tenant = platform
    with ModerationClient(gateway_url, key) as client:
        old = client.webhook_secret(tenant).secret
        client.rotate_webhook_secret(tenant, grace_s=3600)
        # The platform has not deployed the new secret yet: its receiver only knows the old one.
        server = example.make_server(WebhookVerifier([old]), events.append, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/hooks/moderation"
            item = client.moderate_text("hello receiver", callback_url=url, timeout=120)
            poll(lambda: events, 60)
            now = int(time.time())
            forged = httpx.post(url, content=BODY, headers={SIGNATURE_HEADER: sign_webhook("nope", now, BODY)})
            stale = httpx.post(url, content=BODY, headers={SIGNATURE_HEADER: sign_webhook(old, now - 3600, BODY)})
            unsigned = httpx.post(url, content=BODY)
        finally:
            server.shutdown()
            server.server_close()
    assert [e.moderation.id for e in events] == [item.id]
    assert forged.status_code == 400 and forged.json() == {"error": "signature_mismatch"}
    assert stale.status_code == 400 and stale.json() == {"error": "timestamp_outside_window"}
    assert unsigned.status_code == 400 and unsigned.json() == {"error": "missing_signature"}
    deliveries = [d for d in httpx.get(f"{gateway_url}/v1/moderations/{item.id}/webhooks",
                                       headers={"Authorization": f"Bearer {key}"}).json()["items"]]
    assert deliveries and deliveries[-1]["ok"] and deliveries[-1]["status_code"] == 200
