"""Starts real Celery worker processes (prefork) against a test Redis and waits for their heartbeat."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
# Short limits so an orphaned message is redelivered within seconds; visibility stays above every hard limit.
FAST_REDELIVERY: dict[str, object] = dict(
    task_soft_time_limit_s=7, task_time_limit_s=8, media_task_soft_time_limit_s=7, media_task_time_limit_s=8,
    visibility_timeout_s=10, unacked_restore_interval_s=1, unacked_restore_throttle=1)



def settings_env(values: Mapping[str, object]) -> dict[str, str]:
    """Settings field -> MOD_ env var (lists/dicts as JSON, which pydantic-settings parses)."""
    env = {}
    for key, value in values.items():
        env[f"MOD_{key.upper()}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return env


@dataclass
class WorkerProcess:
    redis_url: str
    env: dict[str, str]
    queues: str = "text,webhooks"
    log_path: Path | None = None
    name: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True, deadline_s: float = 120.0) -> WorkerProcess:
        env = {**os.environ, **self.env, "MOD_REDIS_URL": self.redis_url, "PYTHONUNBUFFERED": "1",
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", self.queues, "-c", "1",
             "-P", "prefork", "-n", f"{self.name}@%h", "--loglevel=INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        if wait_ready:
            self.wait_heartbeat(deadline_s)
        return self

    def heartbeats(self) -> list[dict[str, object]]:
        client = redis.Redis.from_url(self.redis_url, decode_responses=True)
        try:
            keys = list(client.scan_iter(f"mod:hb:{self.name}@*"))
            return [json.loads(v) for v in client.mget(keys) if v] if keys else []
        finally:
            client.close()

    def wait_heartbeat(self, deadline_s: float = 120.0) -> dict[str, object]:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            beats = self.heartbeats()
            if beats:
                return beats[0]
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}; log: {self.log_text()}")
            time.sleep(0.1)
        raise TimeoutError(f"worker {self.name} sent no heartbeat in {deadline_s}s; log: {self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path and self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and pool children), like an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def poll(fn, deadline_s: float = 30.0, interval_s: float = 0.05):  # type: ignore[no-untyped-def]
    """Call fn until it returns a truthy value or the deadline passes (then raise with the last value)."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(interval_s)
    raise TimeoutError(f"condition not met within {deadline_s}s; last value: {last!r}")
