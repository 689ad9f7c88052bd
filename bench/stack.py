"""Owns starting a private stack for benchmarks: redis-server, Celery worker(s) and the gateway (uvicorn)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, deadline_s: float = 120.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


@contextmanager
def private_stack(env_extra: dict[str, str], workers: list[tuple[str, int]], gateway_workers: int = 1,
                  ) -> Iterator[tuple[str, str]]:
    """Yields (gateway base URL, redis URL); everything started here is stopped on exit."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    rport, gport = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    redis_url = f"redis://127.0.0.1:{rport}/0"
    env = {**os.environ, **env_extra, "MOD_REDIS_URL": redis_url, "HF_HUB_OFFLINE": "1", "MOD_ENV": "test"}
    try:
        procs.append(subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--dir", str(tmp),
                                       "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))
        time.sleep(0.3)
        for i, (queues, conc) in enumerate(workers):
            log = open(tmp / f"worker{i}.log", "wb")  # noqa: SIM115
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", queues, "-c", str(conc),
                 "-n", f"bench{i}@%h", "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        glog = open(tmp / "gateway.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "service.gateway.app:create_app", "--port", str(gport),
             "--log-level", "warning", "--workers", str(gateway_workers)],
            cwd=ROOT, env=env, stdout=glog, stderr=subprocess.STDOUT, start_new_session=True))
        base = f"http://127.0.0.1:{gport}"
        wait_http(base + "/healthz")
        end = time.monotonic() + 180
        while httpx.get(base + "/readyz").status_code != 200:
            if time.monotonic() > end:
                raise TimeoutError(f"stack not ready; logs in {tmp}")
            time.sleep(0.5)
        yield base, redis_url
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, 15) if p.pid and p.poll() is None and os.getpgid(p.pid) == p.pid else p.terminate()
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def stack_from(tree: Path) -> Callable[..., AbstractContextManager[tuple[str, str]]]:
    """`private_stack` of another checkout: its module-level ROOT (the processes' cwd) is that tree."""
    spec = importlib.util.spec_from_file_location("baseline_stack", tree / "bench" / "stack.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"{tree}/bench/stack.py not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.private_stack  # type: ignore[no-any-return]
