"""Scale-out: two text workers and two media workers (separate processes and Celery node names) share one queue
per kind; every item gets exactly one verdict event and both workers of each kind do part of the work."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image

from service.core.config import Settings
from service.store import keys
from tests.conftest import admin_headers, stack_values
from tests.support.redis_server import RedisServer
from tests.support.workers import WorkerProcess, poll, settings_env
from training.vision.fetch import MODEL_DIR, fetch_models

TEXTS = 240
IMAGES = 48
BATCH = 8  # small batches: many tasks on the queue, so both workers of a kind get some


@pytest.fixture(scope="module")
def fleet(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, list[str]]]:
    """A private Redis, two `text` and two `media` worker processes, each with its own node name."""
    fetch_models(MODEL_DIR)
    root = tmp_path_factory.mktemp("scale")
    server = RedisServer(workdir=root / "redis")
    server.start()
    url = server.url(0)
    # text_batch_size = BATCH: a task also pops at most BATCH waiting items, so one fast worker cannot drain the
    # whole backlog through opportunistic batching before the other takes a task.
    values = stack_values(tiny_model, data_dir=str(root / "data"), text_batch_size=BATCH)
    workers = [WorkerProcess(url, settings_env(values), queues=queue, name=f"{queue}{n}",
                             log_path=root / f"{queue}{n}.log")
               for queue in ("text", "media") for n in (1, 2)]
    try:
        for w in workers:  # start all, then wait: model loads overlap
            w.start(wait_ready=False)
        for w in workers:
            w.wait_heartbeat(240)
        yield Settings(redis_url=url, **values), [w.name for w in workers]  # type: ignore[arg-type]
    finally:
        for w in workers:
            w.stop()
        server.stop()


def noise_jpeg(rng: np.random.Generator) -> bytes:
    """A distinct small image per item (distinct content hashes: no verdict-cache shortcut)."""
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def verdict_events(client: redis.Redis, item_id: str) -> list[dict[str, object]]:
    out = []
    for _, fields in client.xrange(keys.audit(item_id)):
        if fields.get("event") == "verdict":
            out.append(json.loads(fields.get("data") or "{}"))
    return out


def test_two_workers_per_kind_share_the_queue_without_double_work(fleet: tuple[Settings, list[str]]) -> None:
    from service.gateway.app import create_app

    settings, names = fleet
    rng = random.Random(16)
    nprng = np.random.default_rng(16)
    words = ["great", "movie", "awful", "song", "love", "hate", "music", "scene", "actor", "plot", "boring", "fun"]
    with TestClient(create_app(settings)) as api:
        resp = api.post("/v1/keys", json={"tenant": "scale", "role": "platform", "name": "scale"},
                        headers=admin_headers())
        assert resp.status_code == 201, resp.text
        headers = {"Authorization": f"Bearer {resp.json()['key']}"}
        ids: dict[str, str] = {}  # item id -> kind
        for start in range(0, TEXTS, BATCH):
            batch = [{"text": f"{i} " + " ".join(rng.choices(words, k=8))} for i in range(start, start + BATCH)]
            resp = api.post("/v1/moderations/batch", json={"items": batch}, headers=headers)
            assert resp.status_code == 202, resp.text
            ids.update({it["id"]: "text" for it in resp.json()["items"]})
        for i in range(IMAGES):
            resp = api.post("/v1/moderations/image", files={"file": (f"n{i}.jpg", noise_jpeg(nprng))},
                            headers=headers)
            assert resp.status_code == 202, resp.text
            ids[resp.json()["id"]] = "image"
        assert len(ids) == TEXTS + IMAGES

        direct = redis.Redis.from_url(settings.redis_url, decode_responses=True)

        def all_final() -> bool:
            pipe = direct.pipeline(transaction=False)
            for item_id in ids:
                pipe.hget(keys.item(item_id), "status")
            statuses = pipe.execute()
            return all(s in ("done", "failed", "rejected") for s in statuses)

        poll(all_final, 600, 0.5)

    by_kind: dict[str, Counter[str]] = {"text": Counter(), "image": Counter()}
    for item_id, kind in ids.items():
        assert direct.hget(keys.item(item_id), "status") == "done", direct.hgetall(keys.item(item_id))
        events = verdict_events(direct, item_id)
        assert len(events) == 1, (item_id, events)  # exactly one verdict event: processed once
        by_kind[kind][str(events[0].get("worker", "")).split("@")[0]] += 1
    text_nodes = {n for n in names if n.startswith("text")}
    media_nodes = {n for n in names if n.startswith("media")}
    # Every verdict was written by a worker of the right kind, and both workers of each kind did some work.
    assert set(by_kind["text"]) == text_nodes, by_kind
    assert set(by_kind["image"]) == media_nodes, by_kind
    assert sum(by_kind["text"].values()) == TEXTS and sum(by_kind["image"].values()) == IMAGES
    # The verdict counter (metrics) agrees: one count per item, none twice.
    assert sum(int(v) for v in direct.hgetall(keys.METRICS_VERDICTS).values()) == TEXTS + IMAGES
    direct.close()


def test_compose_scales_workers_by_replicas() -> None:
    """Scaled services need replicas and no fixed container name or hostname (replicas would collide)."""
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    for name in ("worker-text", "worker-media"):
        svc = compose["services"][name]
        assert "replicas" in svc.get("deploy", {}), name
        assert "container_name" not in svc and "hostname" not in svc, name
        node = svc["command"][svc["command"].index("-n") + 1]
        assert node.endswith("@%h"), f"{name}: node name must include the host so replicas differ"
