"""Owns the property-based fuzzing of the whole gateway API (schemathesis) against its own OpenAPI document.

Every operation in /openapi.json gets generated requests, valid and invalid, sent in-process over ASGI to an app
backed by the private redis-server (no worker: submissions stay queued). The run fails on any 5xx, on a status
code the operation does not document, and on a body or content type that contradicts the document. It is bounded
and reproducible: at most MAX_EXAMPLES generated cases per operation plus the schema-derived boundary cases,
derandomized with a fixed seed, no example database, no shrinking.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.python import asgi

from service.core.config import Settings
from service.gateway.app import create_app
from service.store import keys
from tests.support.redis_server import RedisServer

ADMIN_KEY = "schemathesis-admin-key"
MAX_EXAMPLES = 25
SEED = 20_240_917
# Checks that hold for every request this service answers. Left out on purpose: `positive_data_acceptance`
# (a valid-looking request may still be refused on state: 404 for an unknown id, 409 for a finished rescan) and
# the stateful / authorization checks, which need links and several keys this run does not model.
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
          "response_headers_conformance", "negative_data_rejection"]
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(scope="module")
def no_dns(monkeypatch_module: pytest.MonkeyPatch) -> None:
    """callback_url validation resolves host names; fuzzed names must never leave the machine as DNS queries."""
    real = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"name resolution disabled in this test: {name!r}")
        return real(host, *args, **kwargs)

    monkeypatch_module.setattr(socket, "getaddrinfo", loopback_only)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test", "bootstrap_admin_key": ADMIN_KEY, "bootstrap_platform_key": None,
        "bootstrap_moderator_key": None, "policy_path": Path(__file__).parents[1] / "support" / "policy.yaml",
        "callback_allow_hosts": ["127.0.0.1"],
        # No worker runs here: `?wait=` must give up quickly instead of holding every submission for 10 s.
        "max_wait_s": 0.05,
        # The run sends hundreds of requests with one key; rate limiting would turn most of them into 429s.
        "ratelimit_enabled": False,
    }
    return Settings(**{**values, **overrides})


CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True,
                   # Credentials come from `auth` below; generated junk keys would only exercise the 401 path.
                   "with-security-parameters": False},
    "auth": {"openapi": {"BearerKey": {"bearer": ADMIN_KEY}}},
    "phases": {"stateful": {"enabled": False}},
    "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
})
# The document is the app's own, built without Redis (create_app connects only in its lifespan), so pytest
# collects one test per operation; requests go to the live app of the `live_app` fixture.
schema = schemathesis.openapi.from_dict(create_app(_settings()).openapi(), config=CONFIG)


@pytest.fixture(scope="module")
def live_app(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory, no_dns: None) -> Iterator[Any]:
    url = redis_server.url(8)
    client = redis.Redis.from_url(url)
    client.flushdb()
    # A ready text worker, as its heartbeat says: /readyz answers 200 (its 503 without one is covered in
    # test_failures), so every 5xx in this run is a real failure.
    client.set(keys.heartbeat("fuzz-worker", 1), json.dumps({
        "hostname": "fuzz-worker", "pid": 1, "queues": ["text"], "at": time.time(),
        "models": {"text": {"ok": True}}}))
    # Its lifespan (Redis clients, bootstrap keys) starts on the first request, on schemathesis' event-loop thread.
    yield create_app(_settings(redis_url=url, data_dir=tmp_path_factory.mktemp("fuzz-data")))
    asgi.shutdown_lifespans()  # close the app's Redis connections before the session's redis-server stops
    client.flushdb()
    client.close()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_api_conforms_to_its_openapi_document(case: Any, live_app: Any) -> None:
    if case.operation.path.endswith("/file"):
        # Hash-list uploads long-poll a media worker for up to `wait` s (default 20); none runs here.
        case.query = {**(case.query or {}), "wait": 0}
    case.call_and_validate(app=live_app)
