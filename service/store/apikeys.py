"""Owns API keys (stored hashed), their one-time bootstrap, per-tenant webhook secrets and the credential audit log."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import redis

from service.core.security import (
    Principal,
    Role,
    hash_api_key,
    key_id_for,
    new_api_key,
    new_webhook_secret,
)
from service.store import keys
from service.store.client import as_map, as_str

KEY_PREFIX = keys.APIKEY


def record_key(key: str) -> str:
    """The Redis key of an API key's record (found by the key's digest; the key itself is never stored)."""
    return KEY_PREFIX + hash_api_key(key)


def principal_from(record: dict[str, str]) -> Principal:
    """The caller a live key record describes (the rate limiter reads records in its own script)."""
    return Principal(key_id=record["key_id"], tenant=record["tenant"], role=Role(record["role"]),
                     name=record.get("name", ""))
KEY_INDEX = keys.APIKEYS  # key_id -> key hash, for listing and revocation
REVOKED = keys.APIKEYS_REVOKED
BOOTSTRAPPED = keys.BOOTSTRAPPED
AUDIT_KEY = keys.KEY_AUDIT

# The audit stream keeps this many newest entries. Credential changes are rare (a busy deployment makes a few
# hundred a day), so this is months of history in a few MiB; trimming is exact so the bound is a real bound.
AUDIT_MAXLEN = 100_000
DEFAULT_WEBHOOK_GRACE_S = 24 * 3600
_WATCH_RETRIES = 20

# One bootstrap entry: (plaintext key, tenant, role, name).
BootstrapEntry = tuple[str, str, Role, str]


class KeyRevokedError(ValueError):
    """The key's id is tombstoned: it was revoked and must not be installed again."""


def _tenant_key(tenant: str) -> str:
    return keys.tenant(tenant)


class AuditLog:
    """Append-only, bounded Redis stream of credential changes: who (actor key), when, what (action + target).

    Nothing in the service deletes or edits entries; the only removal is trimming the oldest past `maxlen`.
    """

    def __init__(self, client: redis.Redis, maxlen: int = AUDIT_MAXLEN) -> None:
        self.r = client
        self.maxlen = maxlen

    def add(self, pipe: Any, action: str, actor: Principal | None, **what: str) -> None:
        """Queue one entry on `pipe`, so it commits (or not) together with the change it records.

        `actor` None is the system itself (the bootstrap at first start).
        """
        entry = {
            "at": f"{time.time():.3f}", "action": action,
            "actor_key_id": actor.key_id if actor else "",
            "actor_tenant": actor.tenant if actor else "",
            "actor_role": actor.key_role.value if actor else "system",
            "actor_name": actor.name if actor else "bootstrap",
            **what,
        }
        pipe.xadd(AUDIT_KEY, entry, maxlen=self.maxlen, approximate=False)

    def read(self, limit: int, before: str | None = None) -> list[dict[str, Any]]:
        """Newest first; `before` is the `id` of the last entry of the previous page (exclusive)."""
        rows = self.r.xrevrange(AUDIT_KEY, max=f"({before}" if before else "+", min="-", count=limit)
        out = []
        for entry_id, data in rows or []:
            event: dict[str, Any] = dict(as_map(data))
            event["id"] = as_str(entry_id)
            event["at"] = float(event["at"])
            out.append(event)
        return out


class ApiKeyStore:
    def __init__(self, client: redis.Redis, audit_maxlen: int = AUDIT_MAXLEN) -> None:
        self.r = client
        self.audit = AuditLog(client, audit_maxlen)

    @staticmethod
    def _write(pipe: Any, digest: str, key_id: str, tenant: str, role: Role, name: str) -> None:
        pipe.hset(KEY_PREFIX + digest, mapping={
            "key_id": key_id, "tenant": tenant, "role": role.value, "name": name,
            "created_at": f"{time.time():.3f}",
        })
        pipe.hset(KEY_INDEX, key_id, digest)

    def put(self, key: str, tenant: str, role: Role, name: str, actor: Principal | None = None) -> Principal:
        """Store a key (idempotent for the same plaintext) and audit it; returns its principal.

        Raises KeyRevokedError for a key whose id was revoked: a revoked plaintext stays dead.
        """
        digest = hash_api_key(key)
        key_id = key_id_for(digest)
        with self.r.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_RETRIES):
                try:
                    pipe.watch(REVOKED)  # a revocation racing this put must win
                    if pipe.hexists(REVOKED, key_id):
                        raise KeyRevokedError(f"key {key_id} was revoked")
                    pipe.multi()
                    self._write(pipe, digest, key_id, tenant, role, name)
                    self.audit.add(pipe, "key.created", actor, key_id=key_id, tenant=tenant, role=role.value,
                                   name=name)
                    pipe.execute()
                    return Principal(key_id=key_id, tenant=tenant, role=role, name=name)
                except redis.WatchError:
                    continue
        raise redis.WatchError(f"could not store key {key_id}: revocations kept racing")

    def create(self, tenant: str, role: Role, name: str, actor: Principal | None = None) -> tuple[str, Principal]:
        key = new_api_key()
        return key, self.put(key, tenant, role, name, actor)

    def bootstrap(self, entries: Sequence[BootstrapEntry]) -> list[Principal] | None:
        """Install a deployment's bootstrap keys once per Redis; None when this Redis was bootstrapped before.

        The keys and the `bootstrapped` marker commit in one transaction, so a crash cannot leave a marker
        without keys, and two gateways starting together install them once. Revoked ids are skipped even on
        a first bootstrap (defence in depth: a lost marker must not resurrect a revoked key).
        """
        with self.r.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_RETRIES):
                try:
                    pipe.watch(BOOTSTRAPPED, REVOKED)
                    if pipe.exists(BOOTSTRAPPED):
                        return None
                    digests = [hash_api_key(key) for key, *_ in entries]
                    revoked = {d for d in digests if pipe.hexists(REVOKED, key_id_for(d))}
                    installed: list[Principal] = []
                    pipe.multi()
                    for digest, (_key, tenant, role, name) in zip(digests, entries, strict=True):
                        key_id = key_id_for(digest)
                        if digest in revoked:
                            continue
                        self._write(pipe, digest, key_id, tenant, role, name)
                        self.audit.add(pipe, "key.bootstrapped", None, key_id=key_id, tenant=tenant,
                                       role=role.value, name=name)
                        installed.append(Principal(key_id=key_id, tenant=tenant, role=role, name=name))
                    pipe.set(BOOTSTRAPPED, json.dumps({"at": time.time(), "key_ids": [p.key_id for p in installed]}))
                    pipe.execute()
                    return installed
                except redis.WatchError:
                    continue  # another gateway (or a revocation) moved first: look again
        raise redis.WatchError("bootstrap kept racing other writers")

    def authenticate(self, key: str) -> Principal | None:
        data = as_map(self.r.hgetall(record_key(key)))
        return principal_from(data) if data else None

    @staticmethod
    def _info(data: dict[str, str]) -> dict[str, Any]:
        return {"key_id": data["key_id"], "tenant": data["tenant"], "role": data["role"],
                "name": data.get("name", ""), "created_at": float(data["created_at"])}

    def get(self, key_id: str) -> dict[str, Any] | None:
        """A live key's info (never its secret), or None."""
        digest = self.r.hget(KEY_INDEX, key_id)
        if digest is None:
            return None
        data = as_map(self.r.hgetall(KEY_PREFIX + as_str(digest)))
        return self._info(data) if data else None

    def list(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Live keys, every tenant's or one tenant's."""
        out = []
        for _key_id, digest in sorted(as_map(self.r.hgetall(KEY_INDEX)).items()):
            data = as_map(self.r.hgetall(KEY_PREFIX + digest))
            if data and (tenant is None or data["tenant"] == tenant):
                out.append(self._info(data))
        return out

    def revoke(self, key_id: str, actor: Principal | None = None) -> bool:
        """Delete the key, tombstone its id and audit it; False when no live key has this id."""
        digest = self.r.hget(KEY_INDEX, key_id)
        if digest is None:
            return False
        record = KEY_PREFIX + as_str(digest)
        with self.r.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_RETRIES):
                try:
                    pipe.watch(record)  # two concurrent revocations: one deletes and audits, the other sees none
                    data = as_map(pipe.hgetall(record))
                    if not data:
                        return False
                    pipe.multi()
                    pipe.delete(record)
                    pipe.hdel(KEY_INDEX, key_id)
                    pipe.hset(REVOKED, key_id, f"{time.time():.3f}")
                    self.audit.add(pipe, "key.revoked", actor, key_id=key_id, tenant=data["tenant"],
                                   role=data["role"], name=data.get("name", ""))
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue
        raise redis.WatchError(f"could not revoke {key_id}: kept racing")


class TenantStore:
    """Per-tenant webhook signing secrets (created on first use) and their rotation with a grace period.

    The pre-rotation secret lives in its own key with a Redis TTL equal to the grace, so it expires on
    Redis's clock, identically for every gateway and worker.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self.audit = AuditLog(client)

    def webhook_secret(self, tenant: str) -> str:
        key = _tenant_key(tenant)
        self.r.hsetnx(key, "webhook_secret", new_webhook_secret())
        return as_str(self.r.hget(key, "webhook_secret"))

    def webhook_secrets(self, tenant: str) -> list[str]:
        """Secrets to sign with: the current one first, then the previous one while its grace lasts."""
        current = self.webhook_secret(tenant)
        previous = self.r.get(keys.webhook_previous(tenant))
        return [current] if previous is None else [current, as_str(previous)]

    def previous_expires_at(self, tenant: str) -> float | None:
        """When the previous secret stops being signed with (unix time), or None when there is none."""
        ttl_ms = int(self.r.pttl(keys.webhook_previous(tenant)))  # type: ignore[arg-type]
        return time.time() + ttl_ms / 1000 if ttl_ms > 0 else None

    def rotate_webhook_secret(self, tenant: str, grace_s: float = DEFAULT_WEBHOOK_GRACE_S,
                              actor: Principal | None = None) -> tuple[str, float | None]:
        """Make a new current secret; the old one stays valid (signed alongside) for `grace_s` seconds.

        Returns (new secret, when the old one expires or None when grace_s is 0 or there was none). Only one
        previous secret is kept: rotating again during a grace ends the older secret's grace at once.
        """
        key = _tenant_key(tenant)
        previous_key = keys.webhook_previous(tenant)
        secret = new_webhook_secret()
        grace_ms = int(grace_s * 1000)
        with self.r.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_RETRIES):
                try:
                    pipe.watch(key)  # a concurrent rotation must not hand out a secret that is then lost
                    current = pipe.hget(key, "webhook_secret")
                    pipe.multi()
                    pipe.hset(key, "webhook_secret", secret)
                    if current is not None and grace_ms > 0:
                        pipe.set(previous_key, as_str(current), px=grace_ms)
                    else:
                        pipe.delete(previous_key)
                    self.audit.add(pipe, "webhook_secret.rotated", actor, tenant=tenant, grace_s=f"{grace_s:g}")
                    pipe.execute()
                    expires = time.time() + grace_s if current is not None and grace_ms > 0 else None
                    return secret, expires
                except redis.WatchError:
                    continue
        raise redis.WatchError(f"could not rotate the webhook secret of {tenant!r}: kept racing")
