"""Owns re-enqueueing items left queued/processing (e.g. the gateway died between create and enqueue)."""

from __future__ import annotations

import logging
import time

import redis
from redis.exceptions import RedisError

from service.core.config import Settings
from service.core.queue import MEDIA_TASK, TaskQueue
from service.store import keys
from service.store.client import sync_client
from service.store.items import ItemStore

log = logging.getLogger(__name__)


def purge_blobs(settings: Settings) -> int:
    """Drop uploads past the retention period (rescans then count those items as skipped)."""
    from service.store.blobs import BlobStore

    removed = BlobStore(settings.blob_dir).purge_older_than(settings.blob_retention_s)
    if removed:
        log.info("purged %d expired blob day folders", removed)
    return removed


def requeue_stale(settings: Settings, client: redis.Redis | None = None) -> int:
    """Tasks are idempotent, so re-sending an item whose message still exists costs one cheap no-op.
    `client`: the caller's store connection (the periodic reaper), else a new one."""
    try:
        client = client or sync_client(settings)
        items = ItemStore(client)
        stale = items.stale_pending(settings.requeue_after_s)
        # Re-stamp first (XX: only items still pending), so each stale item is re-sent once per period, not on
        # every sweep, and one that just finished is not sent at all.
        stamp = time.time()
        pipe = client.pipeline(transaction=False)
        for item_id in stale:
            pipe.zadd(keys.PENDING, {item_id: stamp}, xx=True, ch=True)
        stale = [item_id for item_id, changed in zip(stale, pipe.execute(), strict=True) if changed]
        if not stale:
            return 0
        queue = TaskQueue(settings)
        text_ids: list[str] = []
        sizes: list[int] = []
        media_ids: list[str] = []
        for item in items.get_many(stale):
            if item is None:
                continue
            if item["kind"] == "text":
                text_ids.append(item["id"])
                sizes.append(len(item.get("text") or ""))
            else:
                media_ids.append(item["id"])
        if text_ids:
            queue.enqueue_text(text_ids, sizes)
        for item_id in media_ids:
            queue.send(MEDIA_TASK, [item_id])
        log.warning("re-enqueued %d stale items", len(text_ids) + len(media_ids))
        queue.close()
        return len(text_ids) + len(media_ids)
    except RedisError as exc:
        log.warning("stale-item recovery skipped: %s", exc)
        return 0
