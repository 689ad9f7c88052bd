"""Owns the admin rescan API: start a job over stored items, watch its progress, cancel it."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from service.core.errors import Conflict, NotFound
from service.core.queue import RESCAN_PLAN_TASK
from service.gateway.deps import AdminOnly, JsonBody, ServicesDep
from service.store.rescans import RescanStore

router = APIRouter(prefix="/v1/rescans", tags=["rescans"])


class RescanFilter(BaseModel):
    """Which stored items to re-evaluate with the current model and policy (all conditions must hold)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["text", "image", "video"] | None = None
    tenant: str | None = None
    since: float | None = Field(None, description="created_at >= since (unix seconds)")
    until: float | None = Field(None, description="created_at <= until (unix seconds)")
    decision: Literal["allow", "review", "block"] | None = None
    model_version_not: str | None = Field(None, description="Skip items already scored by this model version "
                                          "(`name@version` or `version`).")
    policy_version_not: str | None = Field(None, description="Skip items already decided under this policy id.")
    scored_before: float | None = Field(None, description="Only items whose verdict is older than this time.")
    limit: int | None = Field(None, ge=1)


def _jobs(services: ServicesDep) -> RescanStore:
    return RescanStore(services.redis)


@router.post("", status_code=202, dependencies=[JsonBody])
def start(body: RescanFilter, services: ServicesDep, principal: AdminOnly) -> dict[str, Any]:
    """Start a rescan job; it runs on the `rescan` queue in chunks and never starves live traffic."""
    jobs = _jobs(services)
    job_id = jobs.create(body.model_dump(exclude_none=True), principal.key_id)
    services.queue.send(RESCAN_PLAN_TASK, [job_id])
    return jobs.get(job_id) or {"id": job_id}


@router.get("")
def list_jobs(services: ServicesDep, _: AdminOnly) -> dict[str, Any]:
    """Recent rescan jobs, newest first."""
    return {"items": _jobs(services).recent()}


@router.get("/{job_id}")
def get_job(job_id: str, services: ServicesDep, _: AdminOnly) -> dict[str, Any]:
    """Progress: total, done, changed, unchanged, failed, skipped, rate and ETA."""
    job = _jobs(services).get(job_id)
    if job is None:
        raise NotFound(f"no rescan {job_id!r}", code="rescan_not_found")
    return job


@router.post("/{job_id}/cancel")
def cancel(job_id: str, services: ServicesDep, _: AdminOnly) -> dict[str, Any]:
    """Stop a running job; items not yet processed stay as they are."""
    jobs = _jobs(services)
    if jobs.get(job_id) is None:
        raise NotFound(f"no rescan {job_id!r}", code="rescan_not_found")
    if not jobs.cancel(job_id):
        raise Conflict("the rescan already finished", code="rescan_finished")
    return jobs.get(job_id) or {}
