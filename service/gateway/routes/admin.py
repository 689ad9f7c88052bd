"""Owns API-key administration and per-tenant webhook secrets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from service.core.errors import NotFound
from service.core.security import Principal, Role
from service.gateway.deps import AdminOnly, JsonBody, PlatformOrAdmin, ServicesDep
from service.gateway.schemas import KeyCreate, KeyCreated, KeyInfo, WebhookSecret

router = APIRouter(prefix="/v1", tags=["admin"])


@router.post("/keys", status_code=201, response_model=KeyCreated, dependencies=[JsonBody])
def create_key(body: KeyCreate, services: ServicesDep, _: AdminOnly) -> dict[str, Any]:
    """Create an API key for a tenant and role; the plaintext key is returned only here."""
    key, principal = services.keys.create(body.tenant, Role(body.role), body.name)
    return {"key": key, "key_id": principal.key_id, "tenant": principal.tenant, "role": principal.role.value,
            "name": principal.name}


@router.get("/keys", response_model=list[KeyInfo])
def list_keys(services: ServicesDep, _: AdminOnly) -> list[dict[str, Any]]:
    """List keys (ids, tenants, roles; never the secrets)."""
    return services.keys.list()


@router.delete("/keys/{key_id}", status_code=204)
def revoke_key(key_id: str, services: ServicesDep, _: AdminOnly) -> Response:
    """Revoke a key immediately."""
    if not services.keys.revoke(key_id):
        raise NotFound(f"no key {key_id!r}", code="key_not_found")
    return Response(status_code=204)


def _tenant_for(principal: Principal, tenant: str) -> str:
    if not principal.can_see(tenant):
        raise NotFound(f"no tenant {tenant!r}", code="tenant_not_found")
    return tenant


@router.get("/tenants/{tenant}/webhook-secret", response_model=WebhookSecret)
def get_webhook_secret(tenant: str, services: ServicesDep, principal: PlatformOrAdmin) -> dict[str, str]:
    """The tenant's webhook signing secret (created on first request)."""
    return {"tenant": tenant, "secret": services.tenants.webhook_secret(_tenant_for(principal, tenant))}


@router.post("/tenants/{tenant}/webhook-secret/rotate", response_model=WebhookSecret)
def rotate_webhook_secret(tenant: str, services: ServicesDep, principal: PlatformOrAdmin) -> dict[str, str]:
    """Replace the signing secret; deliveries from now on use the new one."""
    return {"tenant": tenant, "secret": services.tenants.rotate_webhook_secret(_tenant_for(principal, tenant))}
