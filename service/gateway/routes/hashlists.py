"""Owns the admin API for per-tenant hash lists (SHA-256 exact, PDQ perceptual) used before any model runs.

An admin key reaches only the tenants it can see (`Principal.can_see`); another tenant's lists answer 404
`tenant_not_found`, like every other tenant-scoped route.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Path, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from service.core.errors import AUTH_ERRORS, ApiError, NotFound, responses
from service.core.queue import HASHFILE_TASK
from service.core.security import TENANT_PATTERN, Principal
from service.gateway.deps import AdminOnly, JsonBody, ServicesDep
from service.store import hashlists, keys
from service.store.blobs import BlobStore, BlobTooLarge
from service.store.client import as_map

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/hashlists", tags=["hashlists"], responses=responses(*AUTH_ERRORS))

TenantPath = Annotated[str, Path(max_length=64, pattern=TENANT_PATTERN)]
NamePath = Annotated[str, Path(max_length=64, description="List name: 1-64 of `[A-Za-z0-9_.-]`.")]
_NAME_422 = {422: "`invalid_list_name`, `validation_error`"}
_TENANT_404 = {404: "`tenant_not_found`: a tenant this key cannot see"}


class HashValues(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["sha256", "pdq"]
    values: list[str] = Field(min_length=1, max_length=10_000, description="Hex hashes (64 hex chars each).")


def _call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except hashlists.HashListError as exc:
        raise ApiError(str(exc), code=exc.code, status=422) from exc


def _tenant(principal: Principal, tenant: str) -> str:
    if not principal.can_see(tenant):
        raise NotFound(f"no tenant {tenant!r}", code="tenant_not_found")
    return tenant


@router.get("/jobs/{job_id}", tags=["hashlists"],
            responses=responses(404, 422, notes={404: "`hash_job_not_found` (or another tenant's job)"}))
def hash_job(job_id: Annotated[str, Path(max_length=64)], services: ServicesDep,
             principal: AdminOnly) -> dict[str, Any]:
    """Result of a file-hashing job: added hashes, or the decode error."""
    raw = as_map(services.redis.hgetall(keys.hashjob(job_id)))
    if not raw or not principal.can_see(raw.get("tenant", "")):
        raise NotFound(f"no hash job {job_id!r}", code="hash_job_not_found")
    return {**raw, "result": json.loads(raw["result"]) if raw.get("result") else None}


@router.get("/{tenant}", responses=responses(404, 422, notes=_TENANT_404))
def list_lists(tenant: TenantPath, services: ServicesDep, principal: AdminOnly) -> dict[str, Any]:
    """Names of the tenant's hash lists."""
    return {"tenant": tenant, "lists": hashlists.list_names(services.redis, _tenant(principal, tenant))}


@router.get("/{tenant}/{name}", responses=responses(404, 422, notes={**_TENANT_404, **_NAME_422}))
def get_list(tenant: TenantPath, name: NamePath, services: ServicesDep, principal: AdminOnly) -> dict[str, Any]:
    """Every hash in one list, by kind."""
    return {"tenant": tenant, "name": name,
            **_call(hashlists.list_hashes, services.redis, _tenant(principal, tenant), name)}


_WRITE_ERRORS = responses(400, 404, 413, 415, 422, notes={
    **_TENANT_404, 422: "`invalid_list_name`, `invalid_hash`, `validation_error`"})


@router.post("/{tenant}/{name}/hashes", dependencies=[JsonBody], responses=_WRITE_ERRORS)
def add(tenant: TenantPath, name: NamePath, body: HashValues, services: ServicesDep,
        principal: AdminOnly) -> dict[str, Any]:
    """Add hex hashes to a list (created on first add)."""
    added = _call(hashlists.add_hashes, services.redis, _tenant(principal, tenant), name, body.kind, body.values)
    return {"tenant": tenant, "name": name, "kind": body.kind, "added": added}


@router.post("/{tenant}/{name}/hashes/remove", dependencies=[JsonBody], responses=_WRITE_ERRORS)
def remove(tenant: TenantPath, name: NamePath, body: HashValues, services: ServicesDep,
           principal: AdminOnly) -> dict[str, Any]:
    """Remove hex hashes from a list."""
    removed = _call(hashlists.remove_hashes, services.redis, _tenant(principal, tenant), name, body.kind,
                    body.values)
    return {"tenant": tenant, "name": name, "kind": body.kind, "removed": removed}


@router.delete("/{tenant}/{name}", status_code=204, responses=responses(404, 422, notes={
    404: "`hashlist_not_found`, `tenant_not_found`", **_NAME_422}))
def delete(tenant: TenantPath, name: NamePath, services: ServicesDep, principal: AdminOnly) -> Response:
    """Delete a whole list."""
    if not _call(hashlists.delete_list, services.redis, _tenant(principal, tenant), name):
        raise NotFound(f"no hash list {name!r}", code="hashlist_not_found")
    return Response(status_code=204)


@router.post("/{tenant}/{name}/file", responses={
    202: {"description": "Still hashing (or the store hiccuped while waiting); poll `GET /v1/hashlists/jobs/{id}`"},
    **responses(400, 404, 413, 422, notes={**_TENANT_404, 400: "`bad_request`: malformed multipart body",
                                           413: "`file_too_large`, `body_too_large`",
                                      422: "`invalid_list_name`, `validation_error`"})})
async def add_file(tenant: TenantPath, name: NamePath, services: ServicesDep, principal: AdminOnly,
                   response: Response,
                   file: Annotated[UploadFile, File(description="An image or video to add to the list")],
                   wait: Annotated[float, Query(ge=0, le=30, allow_inf_nan=False)] = 20) -> dict[str, Any]:
    """Hash an uploaded image/video on a media worker (SHA-256 + PDQ of sampled frames) and add the hashes."""
    _tenant(principal, tenant)
    _call(hashlists.check_name, name)
    job_id = "hj_" + uuid.uuid4().hex[:16]
    limit = services.settings.media.max_video_bytes
    try:
        blob = await run_in_threadpool(BlobStore(services.settings.blob_dir).put, file.file, f"{job_id}.upload", limit)
    except BlobTooLarge as exc:
        raise ApiError("file too large", code="file_too_large", status=413) from exc
    def enqueue() -> None:
        services.redis.hset(keys.hashjob(job_id), mapping={"id": job_id, "status": "queued", "tenant": tenant,
                                                               "name": name, "created_at": time.time()})
        services.queue.send(HASHFILE_TASK, [job_id, tenant, name, blob.key])

    await run_in_threadpool(enqueue)
    try:
        if wait:
            await services.aredis.blpop([keys.notify(job_id)], timeout=wait)
        job = await run_in_threadpool(hash_job, job_id, services, principal)
    except RedisError as exc:
        # The job is queued: a store fault while waiting means "not done yet" (202), never a 5xx for accepted work.
        log.warning("store error while waiting on hash job %s; answering 202: %s", job_id, exc)
        job = {"id": job_id, "status": "queued", "tenant": tenant, "name": name, "result": None}
    if job["status"] == "queued":
        response.status_code = 202
    return job
