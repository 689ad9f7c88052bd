"""Owns per-tenant policy overrides in Redis: versioned, merged over the base policy file.

An override has the file's thresholds shape (`categories`, `kinds.<kind>.categories`) plus extra blocklist
terms and `review_blocked`; `service.core.policy.merge_thresholds` decides how it combines with the file.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis

from service.core.policy import Policy, load_policy_file, parse_layer
from service.store import keys


def _override_key(tenant: str) -> str:
    return keys.policy(tenant)


class PolicyStore:
    """Per-tenant overrides of the base policy, versioned in Redis."""

    def __init__(self, client: redis.Redis, base_path: Path) -> None:
        self.r = client
        self.base_path = base_path

    def effective(self, tenant: str) -> Policy:
        """The tenant's policy, kind-independent; `for_kind` / `for_language` resolve it for one item."""
        base = load_policy_file(self.base_path)
        raw = self.r.get(_override_key(tenant))
        if not raw:
            return base
        record = json.loads(raw)
        return replace(
            base, tenant=tenant, tenant_version=int(record["version"]),
            # Not strict: a name refused by a later release must not make this tenant's every read fail.
            override=parse_layer(record, f"tenant {tenant}", strict=False),
            blocklist_terms=base.blocklist_terms + tuple(record.get("blocklist_terms") or ()),
            review_blocked=bool(record.get("review_blocked", base.review_blocked)),
        )

    def put_override(self, tenant: str, categories: dict[str, Any], blocklist_terms: list[str],
                     review_blocked: bool | None, kinds: dict[str, Any] | None = None) -> Policy:
        """Replace the override (raises PolicyError, with its API code, before storing anything)."""
        thresholds = {"categories": categories, "kinds": kinds or {}}
        parse_layer(thresholds, f"tenant {tenant}")
        # A counter that survives deletes, so a re-created override never reuses a version (the verdict
        # cache is keyed by policy id).
        version = int(self.r.incr(keys.policy_version(tenant)))
        record: dict[str, Any] = {"version": version, **thresholds, "blocklist_terms": blocklist_terms}
        if review_blocked is not None:
            record["review_blocked"] = review_blocked
        self.r.set(_override_key(tenant), json.dumps(record))
        return self.effective(tenant)

    def delete_override(self, tenant: str) -> bool:
        return bool(self.r.delete(_override_key(tenant)))
