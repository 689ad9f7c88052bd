"""Fixtures for the console's browser tests: the real stack (redis-server, Celery workers, the gateway served by
uvicorn on 127.0.0.1 in a thread) and Debian's headless Chromium driven by Playwright.

Chromium is the system one (/usr/bin/chromium, `apt-get install chromium`); Playwright never downloads a browser.
Its host resolver maps every name but 127.0.0.1 to nothing, so a page can reach no other host. Screenshots of
the main screens go to var/screenshots/.
"""

from __future__ import annotations

import io
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import ADMIN_KEY, Stack, stack_values
from tests.support.redis_server import free_port
from tests.support.workers import WorkerProcess, poll, settings_env

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--disable-sync",
                 "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
FINAL = ("done", "failed", "rejected")
# Thresholds of 0 send every item to review (and block at 1.0 never fires): the queue gets exactly what we submit.
REVIEW_EVERYTHING = {c: {"review": 0.0, "block": 1.0} for c in (
    "toxicity", "insult", "threat", "hate", "sexual", "self_harm", "violence", "profanity")}



@dataclass
class Console:
    """The live stack: `url` of the gateway, an HTTP client for setup through the API, Redis for test hooks."""

    url: str
    http: httpx.Client
    redis: redis.Redis
    media_worker: WorkerProcess
    tenants: list[str] = field(default_factory=list)

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    def key(self, role: str, tenant: str, name: str) -> str:
        resp = self.http.post("/v1/keys", json={"tenant": tenant, "role": role, "name": name}, headers=self.admin())
        assert resp.status_code == 201, resp.text
        return str(resp.json()["key"])

    def tenant(self, policy: dict[str, Any] | None = None, review_blocked: bool = False) -> str:
        name = f"c{uuid.uuid4().hex[:10]}"
        body = {"categories": policy if policy is not None else REVIEW_EVERYTHING, "review_blocked": review_blocked}
        assert self.http.put(f"/v1/policies/{name}", json=body, headers=self.admin()).status_code == 200
        return name

    def submit(self, key: str, text: str, **extra: Any) -> str:
        resp = self.http.post("/v1/moderations", json={"text": text, **extra},
                              headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    def upload(self, key: str, kind: str, name: str, data: bytes, **form: str) -> str:
        resp = self.http.post(f"/v1/moderations/{kind}", files={"file": (name, data)}, data=form,
                              headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    def item(self, key: str, item_id: str) -> dict[str, Any]:
        resp = self.http.get(f"/v1/moderations/{item_id}", headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def wait_done(self, key: str, *ids: str, deadline_s: float = 90) -> list[dict[str, Any]]:
        out = []
        for item_id in ids:
            item = poll(lambda i=item_id: (lambda it: it if it["status"] in FINAL else None)(self.item(key, i)),
                        deadline_s, 0.1)
            assert item["status"] == "done", item
            out.append(item)
        return out

    def expire_lease(self, tenant: str, item_id: str, at: float) -> None:
        """Move a lease's expiry (what time passing would do), in both places the review store keeps it."""
        from service.store import keys

        self.redis.hset(keys.item(item_id), "lease_expires_at", str(at))
        self.redis.zadd(keys.leases(tenant), {item_id: at})


def _serve(app: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="console-gateway", daemon=True)
    thread.start()
    poll(lambda: server.started, 30, 0.05)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def console(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    from service.gateway.app import create_app
    from training.vision.fetch import MODEL_DIR, fetch_models

    fetch_models(MODEL_DIR)
    # One more worker for media and rescans; every sampled frame "offends" on violence, so videos get a timeline.
    values = {**stack_values(Path(stack.settings.text_model_path)),
              "media": {"segment_thresholds": {"violence": 0.0}}}
    worker = WorkerProcess(stack.url, settings_env(values), queues="media,rescan",
                           log_path=tmp_path_factory.mktemp("console") / "media.log").start()
    settings = stack.settings.model_copy(update={"ratelimit_enabled": False})
    server, thread, url = _serve(create_app(settings))
    client = redis.Redis.from_url(stack.url, decode_responses=True)
    http = httpx.Client(base_url=url, timeout=30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield Console(url, http, client, worker)
    finally:
        http.close()
        server.should_exit = True
        thread.join(timeout=10)
        worker.stop()
        client.close()


def _missing(why: str) -> None:
    """Skip on a developer machine without the browser; under CI (which must install it) fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{why}: scripts/setup.sh must install it")
    pytest.skip(why)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _missing("Debian chromium is not installed (apt-get install -y chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed (pip install playwright; never `playwright install`)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def new_page(browser: Any, console: Console) -> Iterator[Any]:
    """Opens isolated browser contexts (own cookies) on demand; all closed after the test."""
    contexts = []

    def make() -> Any:
        ctx = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=console.url,
                                  reduced_motion="reduce")
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


def sign_in(page: Any, key: str) -> None:
    """Sign in with the keyboard alone: the key field has focus on load, Enter submits."""
    page.goto("/console")
    page.wait_for_selector("#signin-key:focus")
    page.keyboard.insert_text(key)
    page.keyboard.press("Enter")
    page.wait_for_selector("#top:not([hidden])")


CONTROLS = "main input, main select, main textarea, main button, header button, header input"
UNLABELLED = f"""[...document.querySelectorAll({CONTROLS!r})].filter(el => !(el.labels && el.labels.length)
 && !el.getAttribute('aria-label') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
 .map(el => el.outerHTML.slice(0, 120))"""


def assert_labelled(page: Any) -> None:
    """Every control on the screen has an accessible name (a label, aria-label or, for buttons, text)."""
    assert page.evaluate(UNLABELLED) == []


def shot(page: Any, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def jpeg(data_dir: Path, name: str = "astronaut.png") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(data_dir / "skimage" / name).convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def webm(path: Path) -> bytes:
    from tests.models.vision.media import write_video

    return write_video(path, [(1.5, 0), (1.5, 1)], fourcc="VP80", size=(160, 120)).read_bytes()


def long_text(marker: str = "") -> str:
    calm = "The band played a long set and the crowd sang along to every chorus of the night."
    rude = "You are a worthless idiot and everyone here hates you, so get lost right now."
    parts = [calm] * 18 + [rude, marker] + [calm] * 18
    return " ".join(p for p in parts if p)


def wait_until(fn: Any, deadline_s: float = 15) -> Any:
    return poll(fn, deadline_s, 0.1)


def stopped(worker: WorkerProcess) -> Any:
    """SIGSTOP/SIGCONT the worker's process group: a rescan then stays `planning` until we cancel it."""
    import signal
    from contextlib import contextmanager

    @contextmanager
    def pause() -> Iterator[None]:
        assert worker.proc is not None
        os.killpg(worker.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(worker.proc.pid, signal.SIGCONT)

    return pause()
