"""Owns the media tasks: moderate an uploaded image/video, and hash a file into a tenant's hash list."""

from __future__ import annotations

import json
from typing import Any, cast

from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.core.queue import HASHFILE_TASK, MEDIA_TASK
from service.store import keys
from workers import lifecycle, runtime
from workers.app import app, settings
from workers.base import marks_failure, task_options
from workers.pipelines import media as media_pipeline


@app.task(name=MEDIA_TASK, **task_options(settings, long=True))
def classify_media(item_id: str) -> None:
    """Moderate one uploaded image or video; bad files end `rejected` with a stable code."""
    rt = runtime.get_runtime()
    with marks_failure(lambda code, msg: lifecycle.fail(rt, [item_id], code, msg),
                       settings.media_task_soft_time_limit_s, "media scoring"):
        media_pipeline.run(rt, item_id)


@app.task(name=HASHFILE_TASK, **task_options(settings, long=True))
def hash_file(job_id: str, tenant: str, name: str, blob_key: str) -> None:
    """SHA-256 + PDQ of an uploaded file, added to the tenant's list; the upload is deleted afterwards."""
    from models.vision.errors import MediaError
    from models.vision.pipeline import prepare_file
    from service.store import hashlists
    from service.store.blobs import BlobStore

    rt = runtime.get_runtime()
    blobs = BlobStore(settings.blob_dir)
    key = keys.hashjob(job_id)
    outcome: dict[str, str]
    try:
        prepared = prepare_file(blobs.path(blob_key), settings.media)
        added = hashlists.add_hashes(rt.redis, tenant, name, "sha256", [prepared.sha256])
        pdq = sorted(set(prepared.pdq_hex()))
        if pdq:
            added += hashlists.add_hashes(rt.redis, tenant, name, "pdq", pdq)
        result = {"sha256": prepared.sha256, "pdq": pdq, "added": added, "kind": prepared.kind}
        outcome = {"status": "done", "result": json.dumps(result)}
    except MediaError as exc:
        outcome = {"status": "rejected", "error_code": exc.code, "error_message": exc.message}
    except (RedisConnectionError, RedisTimeoutError):
        raise  # retried with the upload still on disk
    except (Exception, SoftTimeLimitExceeded) as exc:
        outcome = {"status": "failed", "error_code": "internal_error", "error_message": f"{type(exc).__name__}: {exc}"}
    # Terminal outcome: only now is the upload no longer needed.
    rt.redis.hset(key, mapping=cast(Any, outcome))  # redis-py's Mapping key type is invariant
    blobs.delete(blob_key)
    rt.redis.rpush(keys.notify(job_id), "1")
    rt.redis.expire(keys.notify(job_id), 60)
