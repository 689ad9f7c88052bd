"""Owns reading the effective policy of a tenant and admin overrides of its thresholds.

Every route is tenant-scoped: a key reaches only the tenants it can see (`Principal.can_see`), and another
tenant answers 404 `tenant_not_found`, so a tenant admin can neither read nor change someone else's policy.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from service.core.errors import AUTH_ERRORS, InvalidInput, NotFound, responses
from service.core.policy import PolicyError
from service.core.security import TENANT_PATTERN, Principal
from service.gateway.deps import AdminOnly, AnyRole, JsonBody, ServicesDep

router = APIRouter(prefix="/v1/policies", tags=["policies"], responses=responses(*AUTH_ERRORS))

TenantPath = Annotated[str, Path(max_length=64, pattern=TENANT_PATTERN)]


class KindOverride(BaseModel):
    """Thresholds for one kind only; they win over the override's `categories` for that kind."""

    model_config = ConfigDict(extra="forbid", strict=True)
    categories: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="category -> `{review, block}`; categories that kind's models score.")


class PolicyOverride(BaseModel):
    """A tenant's override of the base policy: thresholds for every kind (`categories`) and per kind (`kinds`),
    extra blocklist terms. Merge order, later wins: file `default_thresholds` < file `categories` < file
    `kinds.<kind>` < file `languages.<lang>` (text) < override `categories` < override `kinds.<kind>`."""

    # strict: `"review_blocked": 0` or a threshold sent as a string is a client bug, refused rather than coerced.
    model_config = ConfigDict(extra="forbid", strict=True)
    categories: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="category -> `{review, block}` with 0 ≤ review ≤ block ≤ 1; every kind.")
    kinds: dict[str, KindOverride] = Field(
        default_factory=dict, description="`text`, `image` or `video` -> `{categories: ...}`: that kind only.")
    blocklist_terms: list[str] = Field(default_factory=list)
    review_blocked: bool | None = Field(None, description="Also send automated blocks to human review.")


_TENANT_404 = "`tenant_not_found`: a tenant this key cannot see"


def _tenant(principal: Principal, tenant: str) -> str:
    if not principal.can_see(tenant):
        raise NotFound(f"no tenant {tenant!r}", code="tenant_not_found")
    return tenant


@router.get("/{tenant}", responses=responses(404, 422, notes={404: _TENANT_404}))
def get_policy(tenant: TenantPath, services: ServicesDep, principal: AnyRole) -> dict[str, Any]:
    """Effective policy (base file + tenant override) and its version id."""
    return services.policies.effective(_tenant(principal, tenant)).to_dict()


@router.put("/{tenant}", dependencies=[JsonBody], responses=responses(400, 404, 413, 415, 422, notes={
    404: _TENANT_404,
    422: "`invalid_policy` (thresholds not 0 ≤ review ≤ block ≤ 1), `unknown_kind` (not text, image, video), "
         "`unknown_category` (not a category that kind's models score; `details.field` names the entry), "
         "`invalid_text`, `validation_error`"}))
def put_policy(tenant: TenantPath, body: PolicyOverride, services: ServicesDep,
               principal: AdminOnly) -> dict[str, Any]:
    """Replace the tenant's override (thresholds, per-kind thresholds, extra terms); bumps its version so new
    verdicts record it. The answer is the effective policy, with `resolved` thresholds per kind."""
    kind_cats = [c for spec in body.kinds.values() for c in spec.categories]
    for text in (*body.blocklist_terms, *body.categories, *body.kinds, *kind_cats):
        try:  # a stored lone surrogate would break every later read of this tenant's policy (a 500 each time)
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInput("policy text is not valid Unicode (lone surrogate)", code="invalid_text") from exc
    try:
        policy = services.policies.put_override(
            _tenant(principal, tenant), body.categories, body.blocklist_terms, body.review_blocked,
            kinds={k: v.model_dump() for k, v in body.kinds.items()})
    except PolicyError as exc:
        raise InvalidInput(str(exc), code=exc.code, details={"field": exc.field} if exc.field else None) from exc
    return policy.to_dict()


@router.delete("/{tenant}", status_code=204, responses=responses(404, 422, notes={
    404: f"`policy_not_found` (no override to drop), {_TENANT_404}"}))
def delete_policy(tenant: TenantPath, services: ServicesDep, principal: AdminOnly) -> Response:
    """Drop the override; the tenant falls back to the base policy."""
    if not services.policies.delete_override(_tenant(principal, tenant)):
        raise NotFound(f"tenant {tenant!r} has no override", code="policy_not_found")
    return Response(status_code=204)
