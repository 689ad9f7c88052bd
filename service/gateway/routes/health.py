"""Owns liveness, readiness and Prometheus metrics endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from service.core.errors import error_body
from service.gateway.deps import ServicesDep
from service.store import keys
from service.store.items import PENDING_KEY, ItemStore

router = APIRouter(tags=["health"])

HEARTBEAT_PATTERN = keys.HEARTBEAT_PATTERN


def worker_heartbeats(services: ServicesDep) -> list[dict[str, Any]]:
    keys = list(services.redis.scan_iter(HEARTBEAT_PATTERN, count=500))
    values = services.redis.mget(keys) if keys else []
    return [json.loads(v) for v in values if v]


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The gateway process is up (does not touch Redis)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready; `details` says why"}})
def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when Redis answers and at least one live worker consumes `text` with its model loaded."""
    try:
        services.redis.ping()
        workers = worker_heartbeats(services)
    except RedisError as exc:
        return JSONResponse(error_body("not_ready", "Redis is unreachable", {"redis": str(exc)}), 503)
    text_ok = [w for w in workers if "text" in w.get("queues", [])
               and (w.get("models", {}).get("text") or {}).get("ok")]
    details = {"redis": "ok", "workers": workers}
    if not workers:
        return JSONResponse(error_body("not_ready", "no worker is consuming", details), 503)
    if not text_ok:
        return JSONResponse(error_body("not_ready", "no worker on the text queue has a loaded model",
                                       details), 503)
    return JSONResponse({"status": "ready", **details})


class StoreCollector(Collector):
    """Verdict counters and queue depth live in Redis (workers write them), read at scrape time.

    Registered once in create_app; the store is looked up per scrape because it is built in the lifespan.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        services = getattr(self.app.state, "services", None)
        if services is None:
            return
        items: ItemStore = services.items
        verdicts = CounterMetricFamily("moderation_verdicts", "Final verdicts by decision", labels=["decision"])
        pending = GaugeMetricFamily("moderation_pending_items", "Items queued or processing")
        try:
            for decision, count in sorted(items.verdict_counts().items()):
                verdicts.add_metric([decision], count)
            pending.add_metric([], items.r.zcard(PENDING_KEY))
        except RedisError:
            return
        yield verdicts
        yield pending


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus exposition: request counts/latency and verdicts by decision."""
    registry = request.app.state.metrics.registry
    return PlainTextResponse(generate_latest(registry).decode(), media_type="text/plain; version=0.0.4")
