"""Owns API keys (stored hashed) and per-tenant secrets in Redis."""

from __future__ import annotations

import time
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
KEY_INDEX = keys.APIKEYS  # key_id -> key hash, for listing and revocation


def _tenant_key(tenant: str) -> str:
    return keys.tenant(tenant)


class ApiKeyStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def put(self, key: str, tenant: str, role: Role, name: str) -> Principal:
        """Store a key (idempotent for the same plaintext); returns its principal."""
        digest = hash_api_key(key)
        key_id = key_id_for(digest)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(KEY_PREFIX + digest, mapping={
            "key_id": key_id, "tenant": tenant, "role": role.value, "name": name,
            "created_at": f"{time.time():.3f}",
        })
        pipe.hset(KEY_INDEX, key_id, digest)
        pipe.execute()
        return Principal(key_id=key_id, tenant=tenant, role=role, name=name)

    def create(self, tenant: str, role: Role, name: str) -> tuple[str, Principal]:
        key = new_api_key()
        return key, self.put(key, tenant, role, name)

    def authenticate(self, key: str) -> Principal | None:
        data = as_map(self.r.hgetall(KEY_PREFIX + hash_api_key(key)))
        if not data:
            return None
        return Principal(key_id=data["key_id"], tenant=data["tenant"], role=Role(data["role"]),
                         name=data.get("name", ""))

    def list(self) -> list[dict[str, Any]]:
        out = []
        for key_id, digest in sorted(as_map(self.r.hgetall(KEY_INDEX)).items()):
            data = as_map(self.r.hgetall(KEY_PREFIX + digest))
            if data:
                out.append({"key_id": key_id, "tenant": data["tenant"], "role": data["role"],
                            "name": data.get("name", ""), "created_at": float(data["created_at"])})
        return out

    def revoke(self, key_id: str) -> bool:
        digest = self.r.hget(KEY_INDEX, key_id)
        if digest is None:
            return False
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(KEY_PREFIX + as_str(digest))
        pipe.hdel(KEY_INDEX, key_id)
        pipe.execute()
        return True


class TenantStore:
    """Per-tenant webhook signing secrets (created on first use)."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def webhook_secret(self, tenant: str) -> str:
        key = _tenant_key(tenant)
        self.r.hsetnx(key, "webhook_secret", new_webhook_secret())
        return str(self.r.hget(key, "webhook_secret"))

    def rotate_webhook_secret(self, tenant: str) -> str:
        secret = new_webhook_secret()
        self.r.hset(_tenant_key(tenant), "webhook_secret", secret)
        return secret
