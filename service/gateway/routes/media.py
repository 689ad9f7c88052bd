"""Owns image and video upload endpoints: streamed to the blob store, typed by magic bytes, then queued.

A `?wait=` answer is the same public document as `GET /v1/moderations/{id}` (service.core.views.public_item);
the stored item's internal fields (file name, size, blob key, review bookkeeping) never reach the client.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from common.sniff import HEAD_BYTES, refusal_code, sniff
from service.core.errors import AUTH_ERRORS, ApiError, InvalidInput, PayloadTooLarge, UnsupportedMediaType, responses
from service.core.queue import MEDIA_TASK
from service.core.security import Principal
from service.core.urls import CallbackUrlError, check_callback
from service.core.views import public_item
from service.gateway.deps import PlatformOrAdmin, Services, ServicesDep
from service.gateway.schemas import Accepted, Moderation
from service.gateway.submit import accepted, create_items, wait_final
from service.store.blobs import BlobStore, BlobTooLarge
from service.store.items import FINAL, NewItem, new_item_id

router = APIRouter(prefix="/v1/moderations", tags=["media"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Moderation, "description": "Verdict ready within `wait` (the same document as a GET)"},
    202: {"model": Accepted, "description": "Queued, or not final within `wait`; poll `status_url`"},
    **responses(400, 409, 413, 415, 422, *AUTH_ERRORS, notes={
        400: "`empty_file`, `bad_request` (malformed multipart body)",
        409: "`idempotency_conflict`: the Idempotency-Key was used with a different upload",
        413: "`file_too_large`, `body_too_large`",
        415: "`unsupported_format`, `audio_only`, `wrong_media_kind`",
        422: "`validation_error` (form fields, `metadata` not a JSON object ≤ 8 KiB), `invalid_callback_url`",
        503: "`store_unavailable`, `queue_unavailable`, `queue_full` (backlog over its limit): retry after "
             "`Retry-After` with the same Idempotency-Key",
    }),
}


def _metadata(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    # Size first: parsing an unbounded field costs memory, and deep nesting raises RecursionError (a 500).
    if len(raw.encode("utf-8", "surrogatepass")) > 8192:
        raise InvalidInput("metadata must be a JSON object of at most 8 KiB", code="validation_error")
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidInput("metadata must be a JSON object", code="validation_error") from exc
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be a JSON object of at most 8 KiB", code="validation_error")
    try:  # a JSON escape can smuggle in a lone surrogate, which no response could encode later
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("metadata contains invalid Unicode", code="invalid_text") from exc
    return value


def _store_upload(services: Services, principal: Principal, upload: UploadFile, kind: str, limit: int,
                  fields: dict[str, Any]) -> NewItem:
    """Sniff, then stream the upload into the blob store (runs in a worker thread)."""
    upload.file.seek(0)
    head = upload.file.read(HEAD_BYTES)
    if not head:
        raise ApiError("the uploaded file is empty", code="empty_file", status=400)
    media_type = sniff(head)
    code = refusal_code(media_type)
    if code:
        raise UnsupportedMediaType(f"{media_type.fmt} files are not accepted here ({media_type.mime})", code=code)
    if media_type.kind != kind:
        raise UnsupportedMediaType(f"this endpoint takes {kind}s; the file is a {media_type.kind} ({media_type.fmt})",
                                   code="wrong_media_kind")
    upload.file.seek(0)
    item_id = new_item_id()
    try:
        blob = BlobStore(services.settings.blob_dir).put(upload.file, f"{item_id}.{media_type.fmt}", limit)
    except BlobTooLarge as exc:
        raise PayloadTooLarge(f"the {kind} is larger than {limit} bytes", code="file_too_large",
                              details={"limit": limit}) from exc
    return NewItem(id=item_id, tenant=principal.tenant, kind=kind, content_hash=blob.sha256,
                   external_id=fields.get("external_id"),
                   fields={**fields, "blob_key": blob.key, "media_format": media_type.fmt, "size": blob.size,
                           "filename": upload.filename or ""})


async def _upload(kind: str, services: Services, principal: Principal, response: Response, file: UploadFile,
                  external_id: str | None, metadata: str | None, callback_url: str | None, priority: int,
                  wait: float | None, idempotency_key: str | None) -> dict[str, Any]:
    settings = services.settings
    if callback_url:
        try:  # resolves DNS: keep it off the event loop
            await run_in_threadpool(check_callback, callback_url, settings)
        except CallbackUrlError as exc:
            raise InvalidInput(f"callback_url refused: {exc}", code="invalid_callback_url") from exc
    fields = {"external_id": external_id, "metadata": _metadata(metadata), "callback_url": callback_url,
              "priority": priority}
    limit = settings.media.max_image_bytes if kind == "image" else settings.media.max_video_bytes
    item = await run_in_threadpool(_store_upload, services, principal, file, kind, limit, fields)
    digest = hashlib.sha256(json.dumps({**fields, "sha256": item.content_hash}, sort_keys=True).encode()).hexdigest()
    try:
        ids, created = await create_items(services, [item], idempotency_key, digest,
                                          lambda ids: services.queue.send(MEDIA_TASK, [ids[0]]))
    except Exception:
        BlobStore(settings.blob_dir).delete(item.fields["blob_key"])
        raise
    if not created:  # idempotent repeat: the first upload's blob is the one kept
        BlobStore(settings.blob_dir).delete(item.fields["blob_key"])
    response.headers["Location"] = f"/v1/moderations/{ids[0]}"
    if wait:
        # The item exists from here on: wait_final turns store faults into "not final yet", so this is a 200 or
        # a 202, never a 5xx for an upload that was accepted.
        done = await wait_final(services, ids[0], min(wait, settings.max_wait_s))
        if done is not None and done["status"] in FINAL:
            response.status_code = 200
            return public_item(done)
        if done is not None:
            return accepted(ids[0], done["status"])
    return accepted(ids[0])


IdemHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]
WaitQuery = Annotated[float | None, Query(ge=0, le=10, allow_inf_nan=False,
                                          description="Seconds to wait for the verdict (≤ 10).")]


@router.post("/image", status_code=202, response_model=None, responses=RESPONSES)
async def upload_image(
    services: ServicesDep, principal: PlatformOrAdmin, response: Response,
    file: Annotated[UploadFile, File(description="JPEG, PNG, WebP, GIF, BMP or TIFF; ≤ MOD_MEDIA__MAX_IMAGE_BYTES")],
    external_id: Annotated[str | None, Form(max_length=256)] = None,
    metadata: Annotated[str | None, Form(description="JSON object (≤ 8 KiB)")] = None,
    callback_url: Annotated[str | None, Form(max_length=2048)] = None,
    priority: Annotated[int, Form(ge=0, le=100)] = 0,
    wait: WaitQuery = None, idempotency_key: IdemHeader = None,
) -> dict[str, Any]:
    """Upload an image (animated GIF/WebP are sampled like video) for moderation."""
    return await _upload("image", services, principal, response, file, external_id, metadata, callback_url,
                         priority, wait, idempotency_key)


@router.post("/video", status_code=202, response_model=None, responses=RESPONSES)
async def upload_video(
    services: ServicesDep, principal: PlatformOrAdmin, response: Response,
    file: Annotated[UploadFile, File(description="MP4/MOV, WebM/MKV or AVI; ≤ MOD_MEDIA__MAX_VIDEO_BYTES")],
    external_id: Annotated[str | None, Form(max_length=256)] = None,
    metadata: Annotated[str | None, Form(description="JSON object (≤ 8 KiB)")] = None,
    callback_url: Annotated[str | None, Form(max_length=2048)] = None,
    priority: Annotated[int, Form(ge=0, le=100)] = 0,
    wait: WaitQuery = None, idempotency_key: IdemHeader = None,
) -> dict[str, Any]:
    """Upload a video; frames are sampled (1 fps + scene cuts) and offending segments reported."""
    return await _upload("video", services, principal, response, file, external_id, metadata, callback_url,
                         priority, wait, idempotency_key)
