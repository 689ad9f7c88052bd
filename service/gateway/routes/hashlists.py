"""Owns the admin API for per-tenant hash lists (SHA-256 exact, PDQ perceptual) used before any model runs."""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from service.core.errors import ApiError, NotFound
from service.core.queue import HASHFILE_TASK
from service.gateway.deps import AdminOnly, JsonBody, ServicesDep
from service.store import hashlists, keys
from service.store.blobs import BlobStore, BlobTooLarge
from service.store.client import as_map

router = APIRouter(prefix="/v1/hashlists", tags=["hashlists"])


class HashValues(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["sha256", "pdq"]
    values: list[str] = Field(min_length=1, max_length=10_000, description="Hex hashes (64 hex chars each).")


def _call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except hashlists.HashListError as exc:
        raise ApiError(str(exc), code=exc.code, status=422) from exc


@router.get("/jobs/{job_id}", tags=["hashlists"])
def hash_job(job_id: str, services: ServicesDep, _: AdminOnly) -> dict[str, Any]:
    """Result of a file-hashing job: added hashes, or the decode error."""
    raw = as_map(services.redis.hgetall(keys.hashjob(job_id)))
    if not raw:
        raise NotFound(f"no hash job {job_id!r}", code="hash_job_not_found")
    return {**raw, "result": json.loads(raw["result"]) if raw.get("result") else None}


@router.get("/{tenant}")
def list_lists(tenant: str, services: ServicesDep, _: AdminOnly) -> dict[str, Any]:
    """Names of the tenant's hash lists."""
    return {"tenant": tenant, "lists": hashlists.list_names(services.redis, tenant)}


@router.get("/{tenant}/{name}")
def get_list(tenant: str, name: str, services: ServicesDep, _: AdminOnly) -> dict[str, Any]:
    """Every hash in one list, by kind."""
    return {"tenant": tenant, "name": name, **_call(hashlists.list_hashes, services.redis, tenant, name)}


@router.post("/{tenant}/{name}/hashes", dependencies=[JsonBody])
def add(tenant: str, name: str, body: HashValues, services: ServicesDep, _: AdminOnly) -> dict[str, Any]:
    """Add hex hashes to a list (created on first add)."""
    added = _call(hashlists.add_hashes, services.redis, tenant, name, body.kind, body.values)
    return {"tenant": tenant, "name": name, "kind": body.kind, "added": added}


@router.post("/{tenant}/{name}/hashes/remove", dependencies=[JsonBody])
def remove(tenant: str, name: str, body: HashValues, services: ServicesDep, _: AdminOnly) -> dict[str, Any]:
    """Remove hex hashes from a list."""
    removed = _call(hashlists.remove_hashes, services.redis, tenant, name, body.kind, body.values)
    return {"tenant": tenant, "name": name, "kind": body.kind, "removed": removed}


@router.delete("/{tenant}/{name}", status_code=204)
def delete(tenant: str, name: str, services: ServicesDep, _: AdminOnly) -> Response:
    """Delete a whole list."""
    if not _call(hashlists.delete_list, services.redis, tenant, name):
        raise NotFound(f"no hash list {name!r}", code="hashlist_not_found")
    return Response(status_code=204)


@router.post("/{tenant}/{name}/file", responses={202: {"description": "Still hashing; poll the job"}})
async def add_file(tenant: str, name: str, services: ServicesDep, _: AdminOnly, response: Response,
                   file: Annotated[UploadFile, File(description="An image or video to add to the list")],
                   wait: Annotated[float, Query(ge=0, le=30)] = 20) -> dict[str, Any]:
    """Hash an uploaded image/video on a media worker (SHA-256 + PDQ of sampled frames) and add the hashes."""
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
    if wait:
        await services.aredis.blpop([keys.notify(job_id)], timeout=wait)
    job = await run_in_threadpool(hash_job, job_id, services, _)
    if job["status"] == "queued":
        response.status_code = 202
    return job
