"""Starts a 3-primary Redis Cluster on loopback (`redis-server --cluster-enabled yes` x3, then
`redis-cli --cluster create`), so store code can be run against real slot routing and cross-slot checks."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.redis_server import RedisServer


def cluster_port(rng: random.Random) -> int:
    """A free port whose cluster-bus port (port + 10000) is free and valid too (free_port() may pick > 55535)."""
    for _ in range(200):
        port = rng.randrange(20000, 45000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class RedisClusterNodes:
    workdir: Path
    size: int = 3
    nodes: list[RedisServer] = field(default_factory=list)

    def url(self) -> str:
        return self.nodes[0].url(0)

    def start(self, deadline_s: float = 60.0) -> RedisClusterNodes:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli not found; install it (apt-get install -y redis-tools)")
        rng = random.Random()  # unseeded on purpose: parallel test runs must not pick the same ports
        for i in range(self.size):
            node_dir = self.workdir / f"node{i}"
            self.nodes.append(RedisServer(workdir=node_dir, port=cluster_port(rng), extra_args=[
                "--cluster-enabled", "yes", "--cluster-config-file", str(node_dir / "nodes.conf"),
                "--cluster-node-timeout", "2000"]))
        for node in self.nodes:
            node.start()
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        end = time.monotonic() + deadline_s
        while True:  # every node must agree the cluster is up and all 16384 slots are served
            infos = [redis.Redis(port=n.port, decode_responses=True).cluster("info") for n in self.nodes]
            if all(i.get("cluster_state") == "ok" and int(i.get("cluster_slots_ok", 0)) == 16384 for i in infos):
                return self
            if time.monotonic() > end:
                raise RuntimeError(f"cluster did not come up: {infos}")
            time.sleep(0.1)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
