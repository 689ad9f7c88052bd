"""Owns the admin rescan API: start a job over stored items, watch its progress, cancel it.

Scope follows the key: a superadmin rescans any tenant or all of them; a tenant admin only its own tenant (its
jobs are pinned to it), and sees or cancels only jobs pinned to it; any other job answers 404 like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from service.core.errors import AUTH_ERRORS, Conflict, NotFound, responses
from service.core.queue import RESCAN_PLAN_TASK
from service.core.rescan_request import RescanFilter
from service.core.security import Principal
from service.gateway.deps import AdminOnly, JsonBody, ServicesDep
from service.store.rescans import RescanStore

router = APIRouter(prefix="/v1/rescans", tags=["rescans"], responses=responses(*AUTH_ERRORS))

JobIdPath = Annotated[str, Path(max_length=64)]
_NOT_FOUND = responses(404, 422, notes={404: "`rescan_not_found`"})
# The request model lives in service.core.rescan_request: `python -m service.cli rescan start` validates with it.


def _jobs(services: ServicesDep) -> RescanStore:
    return RescanStore(services.redis)


def _visible(principal: Principal, job: dict[str, Any] | None) -> bool:
    # A job without a tenant filter spans every tenant: only a superadmin may see it.
    return job is not None and (principal.is_superadmin or (job.get("filter") or {}).get("tenant") == principal.tenant)


def _job(services: ServicesDep, principal: Principal, job_id: str) -> dict[str, Any]:
    job = _jobs(services).get(job_id)
    if job is None or not _visible(principal, job):
        raise NotFound(f"no rescan {job_id!r}", code="rescan_not_found")
    return job


@router.post("", status_code=202, dependencies=[JsonBody], responses=responses(400, 404, 413, 415, 422, notes={
    404: "`tenant_not_found`: a tenant admin named another tenant", 422: "`validation_error`, `invalid_text`"}))
def start(body: RescanFilter, services: ServicesDep, principal: AdminOnly) -> dict[str, Any]:
    """Start a rescan job; it runs on the `rescan` queue in chunks and never starves live traffic.

    A tenant admin's job always covers its own tenant only (`tenant` defaults to it; naming another is a 404).
    """
    filters = body.model_dump(exclude_none=True)
    if not principal.is_superadmin:
        if filters.setdefault("tenant", principal.tenant) != principal.tenant:
            raise NotFound(f"no tenant {filters['tenant']!r}", code="tenant_not_found")
    jobs = _jobs(services)
    job_id = jobs.create(filters, principal.key_id)
    services.queue.send(RESCAN_PLAN_TASK, [job_id])
    return jobs.get(job_id) or {"id": job_id}


@router.get("")
def list_jobs(services: ServicesDep, principal: AdminOnly) -> dict[str, Any]:
    """Recent rescan jobs the key may see, newest first."""
    return {"items": [job for job in _jobs(services).recent() if _visible(principal, job)]}


@router.get("/{job_id}", responses=_NOT_FOUND)
def get_job(job_id: JobIdPath, services: ServicesDep, principal: AdminOnly) -> dict[str, Any]:
    """Progress: total, done, changed, unchanged, failed, skipped, rate and ETA."""
    return _job(services, principal, job_id)


@router.post("/{job_id}/cancel", responses=responses(404, 409, 413, 422, notes={
    404: "`rescan_not_found`", 409: "`rescan_finished`"}))
def cancel(job_id: JobIdPath, services: ServicesDep, principal: AdminOnly) -> dict[str, Any]:
    """Stop a running job; items not yet processed stay as they are."""
    jobs = _jobs(services)
    _job(services, principal, job_id)
    if not jobs.cancel(job_id):
        raise Conflict("the rescan already finished", code="rescan_finished")
    return jobs.get(job_id) or {}
