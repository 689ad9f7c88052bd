"""Owns the container healthcheck of a worker: is a pool child of this host beating with its models loaded?

`python -m workers.healthcheck` exits 0 when Redis holds a fresh heartbeat of a worker process on this host
(the key expires after 3 heartbeat intervals) whose models all loaded, 1 otherwise. docker-compose uses it
so a worker whose children cannot come back is restarted instead of sitting idle.
"""

from __future__ import annotations

import json
import socket
import sys

import redis

from service.core.config import get_settings
from service.store import keys
from service.store.client import sync_client


def healthy(client: redis.Redis, host: str) -> bool:
    for key in client.scan_iter(f"{keys.HEARTBEAT}*@{host}:*", count=100):
        raw = client.get(key)
        if raw and all(m.get("ok") for m in json.loads(raw).get("models", {}).values()):
            return True
    return False


def main() -> int:
    settings = get_settings()
    client = sync_client(settings)  # Sentinel-aware, like every other Redis connection
    try:
        return 0 if healthy(client, socket.gethostname()) else 1
    except redis.RedisError as exc:
        print(f"redis unreachable: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
