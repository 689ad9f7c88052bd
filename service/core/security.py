"""Owns API-key hashing, roles and their tenant scope, the authenticated principal and HMAC webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

# Tenant names as keys, paths and queries accept them. No `:` on purpose: tenants are spliced into Redis key
# names, and a colon could make one tenant's key spell another structure's.
TENANT_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class Role(StrEnum):
    platform = "platform"
    moderator = "moderator"
    admin = "admin"  # manages its own tenant only
    superadmin = "superadmin"  # global: every tenant, admin keys, the credential audit log


# What a tenant admin may hand out: never admin or superadmin, so it can neither mint peers nor escalate.
TENANT_ADMIN_GRANTS = frozenset({Role.platform, Role.moderator})


@dataclass(frozen=True)
class Principal:
    """Who is calling. A superadmin key is held as `role=admin, superadmin=True`.

    Why not `role=superadmin`: route guards (`service.gateway.deps.require`) admit by role, and a superadmin
    must pass every guard an admin passes; the flag then widens its tenant scope. `key_role` gives the role the
    key was created with.
    """

    key_id: str
    tenant: str
    role: Role
    name: str
    superadmin: bool = False

    def __post_init__(self) -> None:
        if self.role is Role.superadmin:
            object.__setattr__(self, "role", Role.admin)
            object.__setattr__(self, "superadmin", True)
        elif self.superadmin and self.role is not Role.admin:
            raise ValueError(f"a {self.role.value} key cannot be a superadmin")

    @property
    def key_role(self) -> Role:
        return Role.superadmin if self.superadmin else self.role

    @property
    def is_admin(self) -> bool:
        """Admin rights (tenant admin or superadmin); the scope is `can_see`'s business."""
        return self.role is Role.admin

    @property
    def is_superadmin(self) -> bool:
        return self.superadmin

    def can_see(self, tenant: str) -> bool:
        """Superadmins see every tenant; everyone else, tenant admins included, only their own."""
        return self.superadmin or self.tenant == tenant

    def can_grant(self, role: Role) -> bool:
        """Whether this principal may create (or revoke) a key with `role` in a tenant it can see."""
        if self.superadmin:
            return True
        return self.role is Role.admin and role in TENANT_ADMIN_GRANTS


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


def _secret_list(secret: str | Sequence[str]) -> list[str]:
    return [secret] if isinstance(secret, str) else list(secret)


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_webhook(secret: str | Sequence[str], timestamp: int, body: bytes) -> str:
    """Signature header value `t=<unix>,v1=<hex hmac-sha256 of "<t>.<body>">` (Stripe-style).

    Given several secrets (current first, then the previous one during a rotation's grace period) the header
    carries one `v1=` per secret, in that order, so receivers holding either secret verify the delivery.
    """
    sigs = [f"v1={_mac(s, timestamp, body)}" for s in _secret_list(secret)]
    if not sigs:
        raise ValueError("no webhook secret to sign with")
    return ",".join([f"t={timestamp}", *sigs])


def verify_webhook(secret: str | Sequence[str], header: str, body: bytes, now: int, tolerance_s: int = 300) -> bool:
    """Receiver-side check, shipped so platforms (and our tests) verify exactly what we sign.

    True when the timestamp is within `tolerance_s` of `now` and any `v1=` signature in the header matches any
    of the given secrets: during a rotation a receiver may hold the old secret, the new one, or both.
    """
    try:
        pairs = [p.split("=", 1) for p in header.split(",")]
        stamps = [v for k, v in pairs if k.strip() == "t"]
        if len(stamps) != 1:
            return False
        ts = int(stamps[0])
    except ValueError:  # a part without "=" unpacks wrong; a non-integer timestamp
        return False
    if abs(now - ts) > tolerance_s:
        return False
    given = [v.strip() for k, v in pairs if k.strip() == "v1"]
    expected = [_mac(s, ts, body) for s in _secret_list(secret)]
    # Compare every pair (no early exit) so timing does not reveal which signature or secret matched.
    matches = [hmac.compare_digest(e, g) for e in expected for g in given]
    return any(matches)
