"""Loopback HTTP helpers for the client tests: the real gateway under uvicorn, and a fault-injecting proxy.

The client must be exercised over real HTTP (its retries react to dropped connections and status codes), so the
gateway runs in uvicorn on 127.0.0.1 and, where a test needs a failure, a small proxy sits in front of it and
answers scripted faults before forwarding the rest.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "accept-encoding"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Run an ASGI app under uvicorn on a free loopback port; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, name="client-test-gateway", daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > end:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Fault:
    """What the proxy does with one request instead of simply forwarding it."""

    # "forward_then_drop": the gateway handles the request, the answer is lost (connection closed, no response).
    # "drop": closed before forwarding. "answer": `status`/`headers`/`body` sent without forwarding.
    action: str
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


def error_fault(status: int, code: str, retry_after: str | None = None) -> Fault:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Fault("answer", status, headers, {"error": {"code": code, "message": f"injected {code}", "details": {}}})


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault | None] = field(default_factory=list)  # one per request, in order; then forward
    seen: list[Seen] = field(default_factory=list)
    url: str = ""


@contextmanager
def fault_proxy(upstream: str, faults: list[Fault | None]) -> Iterator[FaultProxy]:
    state = FaultProxy(upstream, list(faults))
    lock = threading.Lock()
    forward = httpx.Client(base_url=upstream, timeout=60)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                state.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                fault = state.faults.pop(0) if state.faults else None
            if fault is not None and fault.action == "drop":
                self.close_connection = True
                return
            if fault is not None and fault.action == "answer":
                self._reply(fault.status, fault.headers, json.dumps(fault.body).encode() if fault.body else b"")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            resp = forward.request(self.command, self.path, content=body, headers=headers)
            if fault is not None and fault.action == "forward_then_drop":
                self.close_connection = True
                return
            self._reply(resp.status_code, {k: v for k, v in resp.headers.items() if k.lower() not in _HOP_BY_HOP},
                        resp.content)

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-type", headers.get("content-type", "application/json"))
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _handle  # noqa: N815 - http.server's naming

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        forward.close()


class RecordingSleep:
    """An injectable `sleep` that records the requested delays instead of spending them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class AsyncRecordingSleep(RecordingSleep):
    async def __call__(self, seconds: float) -> None:  # type: ignore[override]
        self.delays.append(seconds)
