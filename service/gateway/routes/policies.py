"""Owns reading the effective policy of a tenant and admin overrides of its thresholds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from service.core.errors import InvalidInput, NotFound
from service.core.policy import PolicyError
from service.gateway.deps import AdminOnly, AnyRole, JsonBody, ServicesDep
from service.gateway.schemas import PolicyOverride

router = APIRouter(prefix="/v1/policies", tags=["policies"])


@router.get("/{tenant}")
def get_policy(tenant: str, services: ServicesDep, principal: AnyRole) -> dict[str, Any]:
    """Effective policy (base file + tenant override) and its version id."""
    if not principal.can_see(tenant):
        raise NotFound(f"no tenant {tenant!r}", code="tenant_not_found")
    return services.policies.effective(tenant).to_dict()


@router.put("/{tenant}", dependencies=[JsonBody])
def put_policy(tenant: str, body: PolicyOverride, services: ServicesDep, _: AdminOnly) -> dict[str, Any]:
    """Replace the tenant's override; bumps its version so new verdicts record it."""
    try:
        policy = services.policies.put_override(tenant, body.categories, body.blocklist_terms,
                                                body.review_blocked)
    except PolicyError as exc:
        raise InvalidInput(str(exc), code="invalid_policy") from exc
    return policy.to_dict()


@router.delete("/{tenant}", status_code=204)
def delete_policy(tenant: str, services: ServicesDep, _: AdminOnly) -> Response:
    """Drop the override; the tenant falls back to the base policy."""
    if not services.policies.delete_override(tenant):
        raise NotFound(f"tenant {tenant!r} has no override", code="policy_not_found")
    return Response(status_code=204)
