"""Owns re-evaluating image/video items during a rescan (needs the kept blob; expired blobs are skipped)."""

from __future__ import annotations

import time

from service.core.domain import Item
from service.store.blobs import BlobStore
from service.store.rescans import RescanStore
from workers.pipelines.media import ModelUnavailable, evaluate
from workers.pipelines.rescan_outcome import record_outcome
from workers.runtime import Runtime


def rescore_media(rt: Runtime, jobs: RescanStore, job_id: str, item: Item) -> None:
    from models.vision.errors import MediaError

    blobs = BlobStore(rt.settings.blob_dir)
    age = time.time() - float(item.get("created_at") or 0)
    blob_key = item.get("blob_key")
    if not blob_key or age > rt.settings.blob_retention_s or not blobs.exists(blob_key):
        jobs.apply(job_id, item["id"], "skipped", audit_event="rescan_skipped",
                   audit={"job": job_id, "reason": "blob_expired"})
        return
    policy = rt.policies.effective(item["tenant"]).for_kind(item["kind"])
    try:
        verdict, key = evaluate(rt, item, blobs.path(blob_key), policy)
    except (MediaError, ModelUnavailable) as exc:
        jobs.apply(job_id, item["id"], "failed", audit_event="rescan_failed", audit={"job": job_id, "reason": str(exc)})
        return
    record_outcome(rt, jobs, job_id, item, verdict, key, policy)
