"""Owns per-tenant policy overrides in Redis: versioned, merged over the base policy file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from service.core.policy import Policy, Thresholds, load_policy_file
from service.store import keys


def _override_key(tenant: str) -> str:
    return keys.policy(tenant)


class PolicyStore:
    """Per-tenant overrides of the base policy, versioned in Redis."""

    def __init__(self, client: redis.Redis, base_path: Path) -> None:
        self.r = client
        self.base_path = base_path

    def effective(self, tenant: str) -> Policy:
        base = load_policy_file(self.base_path)
        raw = self.r.get(_override_key(tenant))
        if not raw:
            return base
        override = json.loads(raw)
        cats = dict(base.categories)
        for c, t in (override.get("categories") or {}).items():
            cats[c] = Thresholds.parse(t, f"tenant {tenant}: {c}")
        return Policy(
            name=base.name, version=base.version, categories=cats, default=base.default,
            blocklist_terms=base.blocklist_terms + tuple(override.get("blocklist_terms") or ()),
            tenant=tenant, tenant_version=int(override["version"]),
            review_blocked=bool(override.get("review_blocked", base.review_blocked)), kinds=base.kinds,
            languages=base.without_language_overrides(set(override.get("categories") or {})),
        )

    def put_override(self, tenant: str, categories: dict[str, Any], blocklist_terms: list[str],
                     review_blocked: bool | None) -> Policy:
        for c, t in categories.items():
            Thresholds.parse(t, f"tenant {tenant}: {c}")  # validate before storing
        # A counter that survives deletes, so a re-created override never reuses a version (the verdict
        # cache is keyed by policy id).
        version = int(self.r.incr(keys.policy_version(tenant)))
        record: dict[str, Any] = {"version": version, "categories": categories,
                                  "blocklist_terms": blocklist_terms}
        if review_blocked is not None:
            record["review_blocked"] = review_blocked
        self.r.set(_override_key(tenant), json.dumps(record))
        return self.effective(tenant)

    def delete_override(self, tenant: str) -> bool:
        return bool(self.r.delete(_override_key(tenant)))
