"""Owns Redis client construction: the one factory behind the store, the gateway and the workers' Redis access
(sync for workers and gateway threads, async for long-poll waits), for a plain Redis URL, a Sentinel-managed
primary (MOD_REDIS_SENTINELS) or a Redis Cluster (MOD_REDIS_CLUSTER, keys tagged by MOD_REDIS_HASH_TAG). The
Celery broker derives its URL from the same settings (Settings.celery_broker_url and
service.core.queue.sentinel_transport_options; service.core cannot import this module)."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.asyncio.sentinel as aiosentinel
import redis.cluster
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

from service.core.config import Settings
from service.store import keys


def check_hash_tag(settings: Settings) -> None:
    """Key names were fixed at import from the environment (keys.py); a tag set only in .env would be ignored."""
    if settings.redis_hash_tag != keys.HASH_TAG:
        raise ValueError(f"MOD_REDIS_HASH_TAG is {settings.redis_hash_tag!r} in the settings but "
                         f"{keys.HASH_TAG!r} in the process environment; set it in the environment")


def _db(url: str) -> int:
    path = urlsplit(url).path.lstrip("/")
    return int(path) if path.isdigit() else 0


def sentinel_nodes(settings: Settings) -> list[tuple[str, int]]:
    """`host:port`, `[v6]:port` or a bare host (port 26379, Sentinel's default)."""
    nodes = []
    for node in settings.redis_sentinels:
        host, sep, port = node.rpartition(":")
        if not sep or host.endswith(":") or (node.startswith("[") and not host.endswith("]")):
            host, port = node, ""  # no port given (a bare IPv6 address has colons of its own)
        nodes.append((host.strip("[]"), int(port or 26379)))
    return nodes


def _sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    # Talking to the sentinels themselves: short timeouts so a dead sentinel is skipped quickly.
    out: dict[str, Any] = {"socket_timeout": min(2.0, settings.redis_socket_timeout_s),
                           "socket_connect_timeout": min(2.0, settings.redis_socket_timeout_s)}
    if settings.redis_sentinel_password is not None:
        out["password"] = settings.redis_sentinel_password.get_secret_value()
    return out


def _password(settings: Settings) -> str | None:
    return settings.redis_password.get_secret_value() if settings.redis_password is not None else None


def sync_client(settings: Settings, url: str | None = None) -> redis.Redis:
    """A client for the store (`url` defaults to redis_url; with Sentinel only its DB index is used)."""
    check_hash_tag(settings)
    if settings.redis_cluster:
        # RedisCluster offers the command API the stores use (one slot by the hash tag), not the Redis class.
        return cast(redis.Redis, cluster_client(settings, url))
    return _node_client(settings, url or settings.redis_url)


def _node_client(settings: Settings, url: str) -> redis.Redis:
    """A plain or Sentinel-managed client (never a cluster: the broker cannot live on one)."""
    # Short timeouts: a dead Redis must turn into a fast 503, not a hung request.
    opts: dict[str, Any] = dict(
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=min(2.0, settings.redis_socket_timeout_s),
        health_check_interval=30,
        decode_responses=True,
        max_connections=256,
    )
    if settings.redis_sentinels:
        # The pool asks the sentinels for the primary on every new connection and drops connections that find
        # a demoted primary (READONLY), so after a failover the next command reaches the new primary.
        sentinel = redis.sentinel.Sentinel(sentinel_nodes(settings), sentinel_kwargs=_sentinel_kwargs(settings))
        return sentinel.master_for(settings.redis_sentinel_master, redis_class=redis.Redis, db=_db(url),
                                   password=_password(settings), **opts)
    if settings.redis_password is not None:
        opts["password"] = _password(settings)
    return redis.Redis.from_url(url, **opts)


def broker_client(settings: Settings) -> redis.Redis:
    """A client on the Celery broker's DB (queue lengths for back-pressure decisions)."""
    return _node_client(settings, settings.broker_url or settings.redis_url)


class ClusterClient(redis.cluster.RedisCluster):
    """A Redis Cluster client for the store (keys must carry MOD_REDIS_HASH_TAG, see keys.py).

    Scripts are loaded on every primary when registered: a cluster pipeline sends EVALSHA without loading a
    missing script first (a plain redis.Redis pipeline does), and transitions always run in pipelines.
    """

    def register_script(self, script: Any) -> Any:
        registered = super().register_script(script)
        self.script_load(script)
        return registered

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        # redis-py refuses EVALSHA in cluster pipelines (keys could span nodes); ours are one slot by the tag.
        pipe = super().pipeline(transaction=transaction, shard_hint=shard_hint)
        pipe.__class__ = _ScriptPipeline
        return pipe


class _ScriptPipeline(redis.cluster.ClusterPipeline):
    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)


def cluster_client(settings: Settings, url: str | None = None) -> ClusterClient:
    """The store on a Redis Cluster (any node's URL seeds the slot map). The Celery broker cannot live on a
    cluster (kombu has no cluster transport): point MOD_BROKER_URL or Sentinel at a separate Redis."""
    if not keys.HASH_TAG:
        raise ValueError("a Redis Cluster needs MOD_REDIS_HASH_TAG: without it multi-key scripts span slots")
    return ClusterClient.from_url(  # type: ignore[return-value]  # from_url is typed as the base class
        url or settings.redis_url,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=min(2.0, settings.redis_socket_timeout_s),
        decode_responses=True,
        password=_password(settings),
    )


def async_client(settings: Settings, timed: bool = False, url: str | None = None) -> aioredis.Redis:
    """An asyncio client. `timed=False` (no socket timeout) is for BLPOP long-polls, which block up to
    max_wait_s by design; `timed=True` is for request-path commands, where a hung Redis must become a fast
    503 like on the sync client. `url` (the broker's) gives a plain or Sentinel-managed client, never a cluster
    one (the broker cannot live on a cluster); with Sentinel only its DB index is used."""
    opts: dict[str, Any] = dict(
        socket_connect_timeout=min(2.0, settings.redis_socket_timeout_s),
        decode_responses=True,
        max_connections=512,
    )
    if timed:
        opts["socket_timeout"] = settings.redis_socket_timeout_s
        # A pooled connection that a Redis restart or failover closed fails on first use ("Connection closed by
        # server"); the sync client's pool notices that before sending, the asyncio one only after. One retry on
        # a fresh connection, for connection errors only: a timeout may mean the script ran, so it is not retried.
        opts["retry"] = AsyncRetry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))
    if settings.redis_cluster and url is None:
        return cast(aioredis.Redis, aiocluster.RedisCluster.from_url(
            settings.redis_url, password=_password(settings),
            # The cluster client retries connection errors itself (cluster_error_retry_attempts).
            **{k: v for k, v in opts.items() if k not in ("max_connections", "retry")}))
    if settings.redis_sentinels:
        sentinel = aiosentinel.Sentinel(sentinel_nodes(settings), sentinel_kwargs=_sentinel_kwargs(settings))
        return sentinel.master_for(settings.redis_sentinel_master, redis_class=aioredis.Redis,
                                   db=_db(url or settings.redis_url), password=_password(settings), **opts)
    if settings.redis_password is not None:
        opts["password"] = _password(settings)
    return aioredis.Redis.from_url(url or settings.redis_url, **opts)


def async_broker_client(settings: Settings) -> aioredis.Redis:
    """An asyncio client on the Celery broker's DB with request-path timeouts (the gateway's direct text
    publish, service/core/wire.py); the asyncio twin of `broker_client`."""
    return async_client(settings, timed=True, url=settings.broker_url or settings.redis_url)


# redis-py types replies as `bytes | str` even with decode_responses=True; these narrow them in one place.
def as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def as_strs(values: Any) -> list[str]:
    return [as_str(v) for v in values or []]


def as_map(mapping: Any) -> dict[str, str]:
    return {as_str(k): as_str(v) for k, v in (mapping or {}).items()}


def as_scored(rows: Any) -> list[tuple[str, float]]:
    return [(as_str(member), float(score)) for member, score in rows or []]
