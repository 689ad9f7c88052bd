"""Owns API-key hashing, roles, the authenticated principal and HMAC webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    platform = "platform"
    moderator = "moderator"
    admin = "admin"


@dataclass(frozen=True)
class Principal:
    key_id: str
    tenant: str
    role: Role
    name: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    def can_see(self, tenant: str) -> bool:
        """Admins see every tenant; everyone else only their own."""
        return self.is_admin or self.tenant == tenant


def new_api_key() -> str:
    return "mk_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # Keys are 256-bit random tokens, so a fast unsalted hash is enough (like GitHub tokens): a stolen
    # database yields no usable key, and lookup stays O(1).
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_for(key_hash: str) -> str:
    return "key_" + key_hash[:16]


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """Signature header value `t=<unix>,v1=<hex hmac-sha256 of "<t>.<body>">` (Stripe-style)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_webhook(secret: str, header: str, body: bytes, now: int, tolerance_s: int = 300) -> bool:
    """Receiver-side check, shipped so platforms (and our tests) verify exactly what we sign."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - ts) > tolerance_s:
        return False
    expected = sign_webhook(secret, ts, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
