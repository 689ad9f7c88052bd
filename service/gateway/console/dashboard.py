"""Owns the console's dashboard endpoints: the `/v1/stats` series (service.gateway.routes.stats) for a session.

The same functions answer both, so the dashboard shows exactly what other dashboards read from the JSON API.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from service.core.security import TENANT_PATTERN
from service.gateway.console.session import ConsolePrincipal, ConsoleRoute
from service.gateway.deps import ServicesDep
from service.gateway.routes import stats

router = APIRouter(prefix="/console/api/stats", route_class=ConsoleRoute, include_in_schema=False)

Resolution = Literal["hour", "day"]
Buckets = Annotated[int, Query(ge=1, le=400)]
TenantQ = Annotated[str | None, Query(max_length=64, pattern=TENANT_PATTERN)]


@router.get("/overview")
def overview(services: ServicesDep, principal: ConsolePrincipal, resolution: Resolution = "hour",
             buckets: Buckets = 48, tenant: TenantQ = None) -> dict[str, Any]:
    """Every dashboard series in one answer (one poll per refresh)."""
    scope = stats.scope_for(principal, tenant)
    out: dict[str, Any] = {
        "tenant": scope, "resolution": resolution,
        "volume": stats.volume(services, scope, resolution, buckets),
        "review": stats.review(services, scope, resolution, buckets),
        "versions": stats.versions(services, scope, resolution, buckets),
        "workers": stats.workers(services, principal),
        "queue": stats.queue(services, scope) if scope != stats.ALL else None,
    }
    return out
