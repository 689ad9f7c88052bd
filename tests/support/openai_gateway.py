"""A live gateway for the OpenAI-compatible endpoint's tests (tests/service/test_openai_compat*.py).

The gateway runs as a real HTTP server (uvicorn on 127.0.0.1, a free port, in a thread) over the session's Redis;
`Gateway` hands out `openai.OpenAI` clients pointed at its compat prefix and reads items back through /v1.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai

from service.core.config import Settings
from service.core.policy import KIND_CATEGORIES
from tests.conftest import admin_headers
from tests.support.redis_server import free_port
from tests.support.workers import poll

PREFIX = "/compat/openai/v1"
ALLOW_ALL = {c: {"review": 1.0, "block": 1.0} for c in KIND_CATEGORIES["text"]}
OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The gateway app as a real HTTP server on a free loopback port; yields its base URL."""
    import uvicorn

    from service.gateway.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(),
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="compat-gateway", daemon=True)
    thread.start()
    try:
        poll(lambda: server.started, 30, 0.05)
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class Gateway:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=60)

    def client(self, key: str, **kw: Any) -> openai.OpenAI:
        kw.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=f"{self.url}{PREFIX}", api_key=key, timeout=180, **kw)

    def key(self, tenant: str, role: str = "platform") -> str:
        resp = self.http.post("/v1/keys", json={"tenant": tenant, "role": role, "name": "compat-test"},
                              headers=admin_headers())
        assert resp.status_code == 201, resp.text
        return str(resp.json()["key"])

    def tenant(self, categories: dict[str, Any]) -> str:
        name = f"oa{uuid.uuid4().hex[:10]}"
        resp = self.http.put(f"/v1/policies/{name}", json={"categories": categories}, headers=admin_headers())
        assert resp.status_code == 200, resp.text
        return name

    def item(self, key: str, item_id: str) -> dict[str, Any]:
        resp = self.http.get(f"/v1/moderations/{item_id}", headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def listing(self, key: str) -> list[dict[str, Any]]:
        resp = self.http.get("/v1/moderations", params={"limit": 200}, headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
        return list(resp.json()["items"])
