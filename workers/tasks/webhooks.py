"""Owns signed webhook delivery with capped exponential backoff; every attempt is recorded.

During a webhook secret rotation's grace period each delivery is signed with both the new and the old secret.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from celery import Task

from service.core.domain import Delivery
from service.core.queue import WEBHOOK_TASK
from service.core.security import sign_webhook
from service.core.urls import CallbackUrlError, check_callback
from service.core.views import public_item
from service.store.apikeys import TenantStore
from service.store.items import OUTBOX_KEY
from workers import runtime
from workers.app import app, settings

RETRY_STATUS = {408, 425, 429}


def pin(url: str, ip: str | None, headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Connect to the validated IP while keeping the Host header and TLS SNI/certificate name of the URL."""
    parts = urlsplit(url)
    if ip is None or parts.hostname is None or parts.hostname == ip:
        return url, {}
    headers["host"] = parts.netloc
    host = f"[{ip}]" if ":" in ip else ip
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc)), {"sni_hostname": parts.hostname}


def backoff_s(retries: int) -> float:
    base = settings.webhook_backoff_base_s * (2 ** retries)
    # Full jitter keeps a burst of failing deliveries from retrying in lockstep.
    return min(float(settings.webhook_backoff_max_s), base) * random.uniform(0.5, 1.0)


@app.task(name=WEBHOOK_TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
          max_retries=settings.webhook_max_retries)
def deliver(self: Task, item_id: str, event: str) -> None:
    """POST the item's current state to its callback_url, signed with the tenant's secret."""
    rt = runtime.get_runtime()
    rt.redis.zrem(OUTBOX_KEY, f"{item_id}|{event}")  # from here on, Celery (acks_late, retries) owns it
    item = rt.items.get(item_id)
    url = item.get("callback_url") if item is not None else None
    if item is None or not url:
        return
    attempt: Delivery = {"attempt": self.request.retries + 1, "at": time.time(), "url": url,
                               "event": event, "ok": False, "final": False}
    try:
        pinned_ip = check_callback(url, settings)
    except CallbackUrlError as exc:
        rt.items.record_delivery(item_id, {**attempt, "error": f"refused: {exc}", "final": True})  # type: ignore[typeddict-item]
        return
    body = json.dumps({"event": event, "delivery_id": uuid.uuid4().hex, "sent_at": int(time.time()),
                       "moderation": public_item(item)}, ensure_ascii=False, separators=(",", ":")).encode()
    ts = int(time.time())
    # Current secret first, then the previous one while a rotation's grace lasts: one `v1=` each, so the
    # receiver verifies with whichever secret it holds.
    secrets = TenantStore(rt.redis).webhook_secrets(item["tenant"])
    headers = {"content-type": "application/json", "user-agent": "moderation-service-webhooks/1",
               "x-moderation-event": event, "x-moderation-signature": sign_webhook(secrets, ts, body)}
    start = time.perf_counter()
    retry = False
    try:
        target, extensions = pin(url, pinned_ip, headers)
        with httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False) as client:
            resp = client.request("POST", target, content=body, headers=headers, extensions=extensions)
        attempt["status_code"] = resp.status_code
        attempt["ok"] = 200 <= resp.status_code < 300
        retry = resp.status_code >= 500 or resp.status_code in RETRY_STATUS
        if not attempt["ok"]:
            attempt["error"] = f"HTTP {resp.status_code}"
    except httpx.HTTPError as exc:
        attempt["error"] = f"{type(exc).__name__}: {exc}"
        retry = True
    attempt["duration_ms"] = round((time.perf_counter() - start) * 1000, 1)
    gave_up = retry and self.request.retries >= self.max_retries
    attempt["final"] = attempt["ok"] or not retry or gave_up
    rt.items.record_delivery(item_id, attempt)
    if retry and not gave_up:
        raise self.retry(countdown=backoff_s(self.request.retries))
