"""Starts a Sentinel-managed Redis on loopback: a primary, a replica and three sentinels (`redis-server --sentinel`),
and fails the primary over on request, so tests exercise the service against the real failover machinery."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.redis_server import RedisServer, free_port, redis_server_exe, stop_process

MASTER = "mymaster"


def _poll(fn, deadline_s: float, what: str):  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except redis.RedisError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{what} within {deadline_s}s; last: {last!r}")


@dataclass
class SentinelProcess:
    workdir: Path
    master_port: int
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = redis_server_exe()
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "sentinel.conf"  # sentinels rewrite their config: each needs its own file
        # Short detection and failover timeouts keep the test quick; quorum 2 of 3, as in production.
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.workdir}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 10000\n"
            f"sentinel parallel-syncs {MASTER} 1\n")
        self.proc = subprocess.Popen([exe, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        _poll(lambda: self.client().ping(), 20, f"sentinel on {self.port} did not start")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


@dataclass
class SentinelCluster:
    """Primary + replica + three sentinels; `nodes` is what MOD_REDIS_SENTINELS takes."""

    workdir: Path
    primary: RedisServer = field(init=False)
    replica: RedisServer = field(init=False)
    sentinels: list[SentinelProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.primary = RedisServer(workdir=self.workdir / "primary")
        self.replica = RedisServer(workdir=self.workdir / "replica",
                                   extra_args=["--replicaof", "127.0.0.1", str(self.primary.port)])

    @property
    def nodes(self) -> list[str]:
        return [f"127.0.0.1:{s.port}" for s in self.sentinels]

    def start(self) -> SentinelCluster:
        self.primary.start()
        self.replica.start()
        _poll(lambda: redis.Redis(port=self.replica.port).info("replication").get("master_link_status") == "up",
              30, "replica did not sync")
        self.sentinels = [SentinelProcess(self.workdir / f"sentinel{i}", self.primary.port) for i in range(3)]
        for s in self.sentinels:
            s.start()
        self.wait_healthy()
        return self

    def master_port(self) -> int:
        host, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def wait_healthy(self, deadline_s: float = 60.0) -> None:
        """Every sentinel knows the other two and one healthy replica: a failover can be agreed and run."""
        def ready() -> bool:
            for s in self.sentinels:
                c = s.client()
                master = c.sentinel_master(MASTER)
                replicas = c.sentinel_slaves(MASTER)
                if int(master.get("num-other-sentinels", 0)) < 2 or "s_down" in str(master.get("flags")):
                    return False
                if not any(r.get("master-link-status") == "ok" and "s_down" not in str(r.get("flags"))
                           and "disconnected" not in str(r.get("flags")) for r in replicas):
                    return False
            return True

        _poll(ready, deadline_s, "sentinels did not see a healthy primary, replica and each other")

    def failover(self, deadline_s: float = 60.0) -> int:
        """SENTINEL FAILOVER (what an operator or a maintenance window does); returns the new primary's port."""
        old = self.master_port()
        self.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", MASTER)
        new = _poll(lambda: (lambda p: p if p != old else None)(self.master_port()), deadline_s,
                    "sentinel did not promote the replica")
        # The promoted node accepts writes once it left the replica role.
        _poll(lambda: redis.Redis(port=new).info("replication").get("role") == "master", deadline_s,
              "new primary did not take the master role")
        return int(new)

    def stop(self) -> None:
        for s in self.sentinels:
            s.stop()
        self.replica.stop()
        self.primary.stop()
