"""Owns liveness, readiness and Prometheus metrics endpoints, and who may see how much of them.

/healthz and /readyz serve probes without a key. /readyz tells anonymous callers only whether the service is
ready; worker names, pids, queues and model load errors are for admin keys, since they map the deployment for
anyone who can reach the port. /metrics is open unless `metrics_token` is set, then it needs that bearer token.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from service.core.errors import ErrorBody, Unauthorized, error_body, json_error_response
from service.gateway.deps import PresentedKey, Services, ServicesDep
from service.store import keys
from service.store.items import PENDING_KEY, ItemStore

router = APIRouter(tags=["health"])

HEARTBEAT_PATTERN = keys.HEARTBEAT_PATTERN


def worker_heartbeats(services: ServicesDep) -> list[dict[str, Any]]:
    keys = list(services.redis.scan_iter(HEARTBEAT_PATTERN, count=500))
    values = services.redis.mget(keys) if keys else []
    return [json.loads(v) for v in values if v]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """`status` for everyone; `redis` and `workers` only for admin keys."""

    status: Literal["ready"]
    redis: str | None = Field(None, description="Admins only: `ok`.")
    workers: list[dict[str, Any]] | None = Field(
        None, description="Admins only: live worker heartbeats (name, pid, queues, models and their load state).")


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, str]:
    """The gateway process is up (does not touch Redis)."""
    return {"status": "ok"}


def _is_admin(services: Services, key: str | None) -> bool:
    principal = services.keys.authenticate(key) if key else None
    # Worker hostnames, pids and model versions are operator detail: superadmins only, not tenant admins.
    return principal is not None and principal.is_superadmin


def _not_ready(message: str, details: dict[str, Any], detailed: bool) -> JSONResponse:
    return JSONResponse(error_body("not_ready", message, details if detailed else None), 503)


@router.get(
    "/readyz", response_model=Readiness, response_model_exclude_none=True,
    responses={503: {"model": ErrorBody, "description": "`not_ready`: Redis unreachable, no live worker, or no "
                     "text worker with its model loaded (`details` only for admin keys)"}},
    # The API key is optional here: without one (or with a non-admin one) the answer is just the status.
    openapi_extra={"security": [{}]},
)
def readyz(services: ServicesDep, key: PresentedKey) -> JSONResponse | dict[str, Any]:
    """Ready when Redis answers and at least one live worker consumes `text` with its model loaded.

    Anonymous callers get `{"status": "ready"}` or a 503 `not_ready`; admin keys also get the workers
    (names, pids, queues, models) and, on 503, the reason in `details`. An unknown key is treated as anonymous
    rather than refused, so a probe never fails on credentials.
    """
    try:
        services.redis.ping()
        workers = worker_heartbeats(services)
        detailed = _is_admin(services, key)
    except RedisError as exc:
        # Redis is down, so the key cannot be checked either: nobody gets the exception text.
        return _not_ready("Redis is unreachable", {"redis": str(exc)}, False)
    text_ok = [w for w in workers if "text" in w.get("queues", [])
               and (w.get("models", {}).get("text") or {}).get("ok")]
    details = {"redis": "ok", "workers": workers}
    if not workers:
        return _not_ready("no worker is consuming", details, detailed)
    if not text_ok:
        return _not_ready("no worker on the text queue has a loaded model", details, detailed)
    return {"status": "ready", **details} if detailed else {"status": "ready"}


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


# Its own scheme, not the API keys: Prometheus scrapes with one static token and must not hold an API key.
metrics_scheme = HTTPBearer(scheme_name="MetricsToken", auto_error=False,
                            description="The `metrics_token` setting (MOD_METRICS_TOKEN), when it is set.")


@router.get(
    "/metrics", response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "Prometheus text exposition format 0.0.4"},
               **json_error_response(401, "`invalid_metrics_token`: `metrics_token` is set and the request "
                                          "lacks it")},
    # Open unless `metrics_token` is configured.
    openapi_extra={"security": [{}]},
)
def metrics(request: Request, services: ServicesDep,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Security(metrics_scheme)]) -> PlainTextResponse:
    """Prometheus exposition: request counts/latency and verdicts by decision."""
    token = services.settings.metrics_token
    expected = token.get_secret_value() if token is not None else ""
    if expected:
        given = credentials.credentials if credentials is not None else ""
        # Constant-time: the token is a long-lived secret and /metrics is often reachable more widely.
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("/metrics needs `Authorization: Bearer <metrics token>`", code="invalid_metrics_token")
    registry = request.app.state.metrics.registry
    return PlainTextResponse(generate_latest(registry).decode(), media_type="text/plain; version=0.0.4")
