"""Shared fixtures: a private Redis server for the session, a clean DB per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.redis_server import RedisServer

# Tests must never fall back to a hub download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(workdir=Path(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A flushed DB (index 1) on the private server; modules under test get this URL."""
    url = redis_server.url(1)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


# ---- the moderation stack: tiny model, a real worker process, the gateway app -------------------------

import uuid  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from fastapi.testclient import TestClient  # noqa: E402

from service.core.config import Settings  # noqa: E402
from tests.support.workers import WorkerProcess, settings_env  # noqa: E402

ADMIN_KEY = "test-admin-key"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.text.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(Path(tmp_path_factory.mktemp("models")) / "tiny-text", seed=0)


def stack_values(tiny_model: Path, **overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "env": "test",
        "text_model_path": str(tiny_model),
        "callback_allow_hosts": ["127.0.0.1"],
        "worker_heartbeat_s": 1,
        "webhook_backoff_base_s": 0.2,
        "webhook_max_retries": 4,
        "bootstrap_admin_key": ADMIN_KEY,
        "bootstrap_platform_key": "test-platform-key",
        "bootstrap_moderator_key": "test-moderator-key",
        "torch_threads": 1,
        "policy_path": str(Path(__file__).parent / "support" / "policy.yaml"),
    }
    values.update(overrides)
    return values


@dataclass
class Stack:
    settings: Settings
    worker: WorkerProcess
    url: str


@pytest.fixture(scope="session")
def stack(redis_server: RedisServer, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One worker on DB 2 shared by the session; tests isolate themselves with fresh tenants."""
    url = redis_server.url(2)
    redis.Redis.from_url(url).flushdb()
    values = stack_values(tiny_model)
    log = Path(tmp_path_factory.mktemp("logs")) / "worker.log"
    worker = WorkerProcess(url, settings_env(values), log_path=log).start()
    settings = Settings(redis_url=url, **values)  # type: ignore[arg-type]
    yield Stack(settings, worker, url)
    worker.stop()


@pytest.fixture(scope="session")
def api(stack: Stack) -> Iterator[TestClient]:
    from service.gateway.app import create_app

    with TestClient(create_app(stack.settings)) as client:
        yield client


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


def new_key(client: TestClient, role: str = "platform", tenant: str | None = None) -> tuple[dict[str, str], str]:
    """A key for a fresh (or given) tenant: returns (headers, tenant)."""
    tenant = tenant or f"t{uuid.uuid4().hex[:10]}"
    resp = client.post("/v1/keys", json={"tenant": tenant, "role": role, "name": "test"}, headers=admin_headers())
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['key']}"}, tenant
