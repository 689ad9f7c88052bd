"""Owns per-worker-process state: stores, models loaded once per process, and the heartbeat to Redis."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from service.core.config import Settings, get_settings
from service.core.queue import TaskQueue
from service.store import keys
from service.store.client import as_strs, sync_client
from service.store.items import ItemStore
from service.store.policies import PolicyStore

log = logging.getLogger("workers.runtime")


@dataclass
class ModelSlot:
    """A model loaded at most once per process; a load failure is remembered and reported, not retried."""

    obj: Any = None
    error: str | None = None
    model_id: str | None = None

    def status(self) -> dict[str, Any]:
        return {"ok": self.obj is not None, "model": self.model_id, "error": self.error}


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    items: ItemStore
    policies: PolicyStore
    queue: TaskQueue
    queues: list[str]
    models: dict[str, ModelSlot] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def heartbeat_key(self) -> str:
        return keys.heartbeat(os.environ.get('MOD_WORKER_HOSTNAME', socket.gethostname()), os.getpid())

    def beat(self) -> None:
        record = {"hostname": os.environ.get("MOD_WORKER_HOSTNAME", socket.gethostname()), "pid": os.getpid(),
                  "queues": self.queues, "at": time.time(),
                  "models": {name: slot.status() for name, slot in list(self.models.items())}}
        ttl = max(3, int(self.settings.worker_heartbeat_s * 3))
        self.redis.set(self.heartbeat_key(), json.dumps(record), ex=ttl)


_RUNTIME: Runtime | None = None


def get_runtime() -> Runtime:
    global _RUNTIME
    if _RUNTIME is None:
        settings = get_settings()
        client = sync_client(settings)
        queues = [q for q in os.environ.get("MOD_WORKER_QUEUES", "text").split(",") if q]
        _RUNTIME = Runtime(settings=settings, redis=client, items=ItemStore(client),
                           policies=PolicyStore(client, settings.policy_path), queue=TaskQueue(settings),
                           queues=queues)
    return _RUNTIME


def text_model(rt: Runtime) -> ModelSlot:
    """The text classifier of this process, loaded on first use (eagerly at start on text workers)."""
    slot = rt.models.get("text")
    if slot is None:
        slot = ModelSlot()
        try:
            _load_text(rt, slot)
        except BaseException:
            # Not a bad checkpoint (that is ModelLoadError, remembered in the slot) but e.g. a task time
            # limit firing mid-load: leave no half-made slot, so the next call loads again.
            log.exception("text model load interrupted")
            raise
        rt.models["text"] = slot
    return slot


def _load_text(rt: Runtime, slot: ModelSlot) -> None:
    # Imported here so webhook-only workers never pay for torch.
    import torch

    from models.text.classifier import ModelLoadError, TextClassifier

    s = rt.settings
    threads = s.torch_threads or max(1, (os.cpu_count() or 1))
    torch.set_num_threads(threads)
    try:
        model = TextClassifier(s.text_model_path, label_map=s.text_label_map, max_tokens=s.text_max_tokens,
                               batch_size=s.text_batch_size, device=s.text_device)
    except ModelLoadError as exc:
        slot.error = str(exc)
        log.error("TEXT MODEL FAILED TO LOAD: %s", exc)
        return
    slot.obj = model
    slot.model_id = model.model_id
    log.info("text model %s loaded from %s (%d torch threads)", model.model_id, s.text_model_path, threads)


def vision_models(rt: Runtime) -> ModelSlot:
    """The image classifiers of this process (ONNX Runtime), loaded once; a missing file is reported."""
    slot = rt.models.get("vision")
    if slot is None:
        slot = ModelSlot()
        from models.vision.classifiers import load_classifiers

        m = rt.settings.media
        try:
            models = load_classifiers(m.models, m.model_dir, m.onnx_threads)
        except Exception as exc:  # noqa: BLE001 - any load failure is reported the same way
            slot.error = f"cannot load image models from {m.model_dir}: {type(exc).__name__}: {exc}"
            log.error("IMAGE MODELS FAILED TO LOAD: %s", slot.error)
        else:
            slot.obj = models
            slot.model_id = "+".join(f"{i['name']}@{i['version']}" for i in (x.info() for x in models))
            log.info("image models %s loaded", slot.model_id)
        rt.models["vision"] = slot
    return slot


def sweep_outbox(rt: Runtime, limit: int = 200) -> int:
    """Re-send webhooks owed for longer than the grace period (their first send was lost)."""
    from service.core.queue import WEBHOOK_TASK
    from service.store.items import OUTBOX_KEY

    now = time.time()
    stale = as_strs(rt.redis.zrangebyscore(OUTBOX_KEY, "-inf", now - rt.settings.webhook_outbox_grace_s,
                                           start=0, num=limit))
    for member in stale:
        # Re-stamp first (XX: only if still owed), so concurrent sweepers rarely send the same one twice.
        if rt.redis.zadd(OUTBOX_KEY, {member: now}, xx=True, ch=True):
            item_id, event = member.split("|", 1)
            rt.queue.send(WEBHOOK_TASK, [item_id, event])
    if stale:
        log.warning("re-sent %d owed webhooks from the outbox", len(stale))
    return len(stale)


def reap_stale(rt: Runtime) -> int:
    """Every requeue_sweep_s, one worker (whoever takes the lock) re-sends items pending past requeue_after_s:
    a task message or a verdict lost in a Redis failover would otherwise leave its item queued until a restart."""
    period = rt.settings.requeue_sweep_s
    if period <= 0 or not rt.redis.set(keys.REAPER_LOCK, os.getpid(), nx=True, px=int(period * 1000)):
        return 0
    from workers.recovery import requeue_stale

    return requeue_stale(rt.settings, rt.redis)


def _heartbeat_loop(rt: Runtime) -> None:
    last_sweep = 0.0
    while not rt.stop.is_set():
        try:
            rt.beat()
            if "webhooks" in rt.queues and time.monotonic() - last_sweep >= rt.settings.webhook_outbox_sweep_s:
                last_sweep = time.monotonic()
                sweep_outbox(rt)
            reap_stale(rt)
        except Exception as exc:  # noqa: BLE001 - the heartbeat thread must outlive any one failure
            log.warning("heartbeat failed: %s", exc)
        rt.stop.wait(rt.settings.worker_heartbeat_s)


def start_process() -> None:
    rt = get_runtime()
    lower_priority(rt)
    if rt.settings.fault_model_load_delay_s:
        time.sleep(rt.settings.fault_model_load_delay_s)  # failure tests: a child slower to start than 4 s
    if "text" in rt.queues or "rescan" in rt.queues:
        text_model(rt)
    if "media" in rt.queues or "rescan" in rt.queues:
        vision_models(rt)
    threading.Thread(target=_heartbeat_loop, args=(rt,), name="heartbeat", daemon=True).start()


def lower_priority(rt: Runtime) -> None:
    """A pool child of a rescan-only worker runs niced (MOD_RESCAN_NICE): rescans are background work, so on a
    shared machine the live text worker, the gateway and Redis get the CPU first. (It does not remove the whole
    cost: live p50 during a rescan still measured about 1.12x alone, nice 19 no better; docs/operations.md.)
    Called before the model loads, so every thread it starts inherits it (Linux nice values are per thread).
    A worker that also serves live queues is never niced."""
    if set(rt.queues) == {"rescan"} and rt.settings.rescan_nice > 0:
        os.nice(rt.settings.rescan_nice)
        log.info("rescan pool child %d niced by %d", os.getpid(), rt.settings.rescan_nice)


def stop_process() -> None:
    rt = get_runtime()
    rt.stop.set()
    try:
        rt.redis.delete(rt.heartbeat_key())
    except redis.RedisError:
        pass
