"""Starts private redis-server instances (AOF on) on free ports, so tests never touch a shared Redis."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_exe() -> str:
    """The redis-server binary (plain and sentinel mode), or a clear error naming the package to install."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server not found; install it (apt-get install -y redis-server)")
    return exe


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s; shared by RedisServer and the sentinels."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class RedisServer:
    """One redis-server process; restart() keeps the port and the AOF so data survives like production."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra_args: list[str] = field(default_factory=list)  # e.g. ["--replicaof", host, port] (tests/support/sentinel.py)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, deadline_s: float = 20.0) -> None:
        exe = redis_server_exe()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no",
             "--databases", "16", *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        end = time.monotonic() + deadline_s
        while True:
            try:
                if client.ping():
                    # AOF rewrite/loading can still be going on; wait until the server accepts writes.
                    if client.info("persistence").get("loading", 0) == 0:
                        return
            except redis.exceptions.RedisError:
                pass
            if time.monotonic() > end:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
