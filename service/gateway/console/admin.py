"""Owns the console's admin endpoints: the policy editor (validation and diff before saving), hash lists,
rescans (start, progress, cancel) and API keys. Admin role only.

Every write goes through the matching API handler (routes/policies, hashlists, rescans, admin), so the console
enforces exactly the API's rules; it adds tenant scoping the API lacks for rescans (a tenant admin starts and
sees only its own tenant's jobs) and a dry-run of a policy change that lists what would change.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Path, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from service.core.errors import NotFound
from service.core.policy import KINDS, Policy, layer_errors, load_policy_file, parse_layer
from service.core.security import TENANT_PATTERN, Principal
from service.gateway.console.session import ConsolePrincipal, ConsoleRoute, require_admin
from service.gateway.deps import JsonBody, ServicesDep
from service.gateway.routes import admin, hashlists, policies, rescans
from service.gateway.routes.policies import KindOverride, PolicyOverride
from service.gateway.schemas import KeyCreate

router = APIRouter(prefix="/console/api/admin", route_class=ConsoleRoute, include_in_schema=False)

TenantQ = Annotated[str | None, Query(max_length=64, pattern=TENANT_PATTERN)]
ListName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


def _scope(principal: Principal, tenant: str | None) -> str:
    require_admin(principal)
    if tenant is not None and not principal.can_see(tenant):
        raise NotFound(f"no tenant {tenant!r}", code="tenant_not_found")
    return tenant or principal.tenant


# ---- policy ---------------------------------------------------------------------------------------------------
_NO_KIND = KindOverride()


def _diff(before: Policy, base_terms: set[str], after: PolicyOverride) -> list[dict[str, Any]]:
    """What saving `after` as the tenant's override would change in its effective policy."""
    changes: list[dict[str, Any]] = []
    for cat in sorted(after.categories):
        old = before.thresholds(cat).to_dict()
        for level in ("review", "block"):
            new = after.categories[cat].get(level)
            if old.get(level) != new:
                changes.append({"field": f"categories.{cat}.{level}", "before": old.get(level), "after": new})
    # Per-kind entries, added or dropped: what that kind is judged with now and after (the one merge order).
    proposed = replace(before, override=parse_layer(after.model_dump(include={"categories", "kinds"}), "proposed"))
    for kind in KINDS:
        now, then = before.for_kind(kind), proposed.for_kind(kind)
        for cat in sorted(set(before.override.kinds.get(kind, {})) | set(after.kinds.get(kind, _NO_KIND).categories)):
            was, will = now.thresholds(cat).to_dict(), then.thresholds(cat).to_dict()
            changes += [{"field": f"kinds.{kind}.categories.{cat}.{level}", "before": was[level], "after": will[level]}
                        for level in ("review", "block") if was[level] != will[level]]
    old_terms, new_terms = set(before.blocklist_terms), base_terms | set(after.blocklist_terms)
    changes += [{"field": "blocklist_terms", "before": None, "after": t} for t in sorted(new_terms - old_terms)]
    changes += [{"field": "blocklist_terms", "before": t, "after": None} for t in sorted(old_terms - new_terms)]
    if after.review_blocked is not None and after.review_blocked != before.review_blocked:
        changes.append({"field": "review_blocked", "before": before.review_blocked, "after": after.review_blocked})
    return changes


@router.get("/policy")
def get_policy(services: ServicesDep, principal: ConsolePrincipal, tenant: TenantQ = None) -> dict[str, Any]:
    """The tenant's effective policy (what the editor starts from) and the base policy's id and terms."""
    t = _scope(principal, tenant)
    effective = services.policies.effective(t)
    base = load_policy_file(services.policies.base_path)
    return {"tenant": t, "effective": effective.to_dict(), "base_id": base.id,
            "base_categories": base.to_dict()["categories"], "base_blocklist_terms": list(base.blocklist_terms),
            "base_resolved": base.resolved(), "override_kinds": effective.override.to_dict()["kinds"],
            "override_blocklist_terms": [x for x in effective.blocklist_terms if x not in base.blocklist_terms]}


@router.post("/policy/preview", dependencies=[JsonBody])
def preview_policy(body: PolicyOverride, services: ServicesDep, principal: ConsolePrincipal,
                   tenant: TenantQ = None) -> dict[str, Any]:
    """Validate a proposed override without saving it, and list what it would change."""
    t = _scope(principal, tenant)
    errors = [str(e) for e in layer_errors(body.model_dump(include={"categories", "kinds"}), "policy")]
    if errors:
        return {"valid": False, "errors": errors, "changes": []}
    base = load_policy_file(services.policies.base_path)
    return {"valid": True, "errors": [], "changes": _diff(services.policies.effective(t),
                                                          set(base.blocklist_terms), body)}


@router.put("/policy", dependencies=[JsonBody])
def put_policy(body: PolicyOverride, services: ServicesDep, principal: ConsolePrincipal,
               tenant: TenantQ = None) -> dict[str, Any]:
    """Save the override (the API validates again and refuses an invalid one with `invalid_policy`)."""
    return policies.put_policy(_scope(principal, tenant), body, services, principal)


@router.delete("/policy", status_code=204)
def reset_policy(services: ServicesDep, principal: ConsolePrincipal, tenant: TenantQ = None) -> Response:
    """Drop the override: the tenant falls back to the base policy."""
    return policies.delete_policy(_scope(principal, tenant), services, principal)


# ---- hash lists -----------------------------------------------------------------------------------------------
class Hashes(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["sha256", "pdq"]
    values: list[str] = Field(min_length=1, max_length=10_000)


@router.get("/hashlists")
def list_hashlists(services: ServicesDep, principal: ConsolePrincipal, tenant: TenantQ = None) -> dict[str, Any]:
    t = _scope(principal, tenant)
    return hashlists.list_lists(t, services, principal)


@router.get("/hashlists/jobs/{job_id}")
def hash_job(job_id: JobId, services: ServicesDep, principal: ConsolePrincipal) -> dict[str, Any]:
    require_admin(principal)
    return hashlists.hash_job(job_id, services, principal)


@router.get("/hashlists/{name}")
def get_hashlist(name: ListName, services: ServicesDep, principal: ConsolePrincipal,
                 tenant: TenantQ = None) -> dict[str, Any]:
    return hashlists.get_list(_scope(principal, tenant), name, services, principal)


@router.post("/hashlists/{name}/hashes", dependencies=[JsonBody])
def add_hashes(name: ListName, body: Hashes, services: ServicesDep, principal: ConsolePrincipal,
               tenant: TenantQ = None) -> dict[str, Any]:
    return hashlists.add(_scope(principal, tenant), name, hashlists.HashValues(kind=body.kind, values=body.values),
                         services, principal)


@router.post("/hashlists/{name}/hashes/remove", dependencies=[JsonBody])
def remove_hashes(name: ListName, body: Hashes, services: ServicesDep, principal: ConsolePrincipal,
                  tenant: TenantQ = None) -> dict[str, Any]:
    return hashlists.remove(_scope(principal, tenant), name,
                            hashlists.HashValues(kind=body.kind, values=body.values), services, principal)


@router.delete("/hashlists/{name}", status_code=204)
def delete_hashlist(name: ListName, services: ServicesDep, principal: ConsolePrincipal,
                    tenant: TenantQ = None) -> Response:
    return hashlists.delete(_scope(principal, tenant), name, services, principal)


@router.post("/hashlists/{name}/file")
async def upload_hashlist_file(name: ListName, services: ServicesDep, principal: ConsolePrincipal,
                               response: Response, file: Annotated[UploadFile, File()],
                               tenant: TenantQ = None) -> dict[str, Any]:
    """Hash an image or video on a media worker and add its hashes (waits up to 20 s, else poll the job)."""
    return await hashlists.add_file(_scope(principal, tenant), name, services, principal, response, file, 20)


# ---- rescans --------------------------------------------------------------------------------------------------
class RescanStart(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["text", "image", "video"] | None = None
    decision: Literal["allow", "review", "block"] | None = None
    since: float | None = Field(None, allow_inf_nan=False)
    until: float | None = Field(None, allow_inf_nan=False)
    model_version_not: str | None = Field(None, max_length=128)
    policy_version_not: str | None = Field(None, max_length=256)
    limit: int | None = Field(None, ge=1)


def _job_visible(principal: Principal, job: dict[str, Any] | None) -> dict[str, Any]:
    tenant = (job or {}).get("filter", {}).get("tenant")
    if job is None or (not principal.is_superadmin and tenant != principal.tenant):
        raise NotFound("no such rescan", code="rescan_not_found")
    return job


@router.get("/rescans")
def list_rescans(services: ServicesDep, principal: ConsolePrincipal, tenant: TenantQ = None) -> dict[str, Any]:
    """Recent rescans of the tenant (superadmins: every job, or one tenant's)."""
    t = _scope(principal, tenant)
    jobs = rescans.list_jobs(services, principal)["items"]
    if not (principal.is_superadmin and tenant is None):
        jobs = [j for j in jobs if j.get("filter", {}).get("tenant") == t]
    return {"items": jobs}


@router.post("/rescans", dependencies=[JsonBody])
def start_rescan(body: RescanStart, services: ServicesDep, principal: ConsolePrincipal,
                 tenant: TenantQ = None) -> dict[str, Any]:
    """Start a rescan of this tenant's items that match the filters."""
    t = _scope(principal, tenant)
    return rescans.start(rescans.RescanFilter(tenant=t, **body.model_dump(exclude_none=True)), services, principal)


@router.get("/rescans/{job_id}")
def get_rescan(job_id: JobId, services: ServicesDep, principal: ConsolePrincipal) -> dict[str, Any]:
    require_admin(principal)
    return _job_visible(principal, rescans._jobs(services).get(job_id))


@router.post("/rescans/{job_id}/cancel", dependencies=[JsonBody])
def cancel_rescan(job_id: JobId, services: ServicesDep, principal: ConsolePrincipal) -> dict[str, Any]:
    require_admin(principal)
    _job_visible(principal, rescans._jobs(services).get(job_id))
    return rescans.cancel(job_id, services, principal)


# ---- keys -----------------------------------------------------------------------------------------------------
class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["platform", "moderator", "admin", "superadmin"]
    name: str = Field("", max_length=128)


@router.get("/keys")
def list_keys(services: ServicesDep, principal: ConsolePrincipal, tenant: TenantQ = None) -> dict[str, Any]:
    t = _scope(principal, tenant)
    keys = admin.list_keys(services, principal)
    return {"items": [k for k in keys if k["tenant"] == t or (principal.is_superadmin and tenant is None)]}


@router.post("/keys", dependencies=[JsonBody])
def create_key(body: NewKey, services: ServicesDep, principal: ConsolePrincipal,
               tenant: TenantQ = None) -> dict[str, Any]:
    """Create a key; the plaintext is in this answer only (the console shows it once)."""
    t = _scope(principal, tenant)
    return admin.create_key(KeyCreate(tenant=t, role=body.role, name=body.name), services, principal)


@router.delete("/keys/{key_id}", status_code=204)
def revoke_key(key_id: JobId, services: ServicesDep, principal: ConsolePrincipal) -> Response:
    require_admin(principal)
    return admin.revoke_key(key_id, services, principal)
