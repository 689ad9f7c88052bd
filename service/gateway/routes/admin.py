"""Owns API-key administration (scoped by tenant and role), the credential audit log and webhook secrets."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from service.core.errors import AUTH_ERRORS, Forbidden, InvalidInput, NotFound, responses
from service.core.security import TENANT_PATTERN, Principal, Role
from service.gateway.deps import AdminOnly, JsonBody, PlatformOrAdmin, ServicesDep
from service.gateway.schemas import AuditPage, KeyCreate, KeyCreated, KeyInfo, WebhookSecret
from service.store.apikeys import DEFAULT_WEBHOOK_GRACE_S

router = APIRouter(prefix="/v1", tags=["admin"], responses=responses(*AUTH_ERRORS))

TenantPath = Annotated[str, Path(max_length=64, pattern=TENANT_PATTERN)]
KeyIdPath = Annotated[str, Path(max_length=64)]
MAX_WEBHOOK_GRACE_S = 30 * 86400
_TENANT_404 = {404: "`tenant_not_found`: a tenant this key cannot see"}
STREAM_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")


def _superadmin(principal: Principal) -> Principal:
    if not principal.is_superadmin:
        raise Forbidden("only a superadmin may do this", code="forbidden_role")
    return principal


@router.post("/keys", status_code=201, response_model=KeyCreated, dependencies=[JsonBody],
             responses=responses(400, 403, 413, 415, 422, notes={
                 403: "`forbidden_role` (not an admin), `forbidden_tenant` (a tenant admin naming another tenant), "
                      "`forbidden_key_role` (a tenant admin asking for an admin or superadmin key)"}))
def create_key(body: KeyCreate, services: ServicesDep, principal: AdminOnly) -> dict[str, Any]:
    """Create an API key for a tenant and role; the plaintext key is returned only here.

    A tenant admin creates `platform` and `moderator` keys for its own tenant only (403 `forbidden_tenant`,
    403 `forbidden_key_role`); a superadmin creates any role for any tenant. Every creation is audited.
    """
    role = Role(body.role)
    if not principal.can_see(body.tenant):
        raise Forbidden("a tenant admin creates keys for its own tenant only", code="forbidden_tenant",
                        details={"tenant": body.tenant})
    if not principal.can_grant(role):
        raise Forbidden(f"only a superadmin creates {role.value} keys", code="forbidden_key_role",
                        details={"role": role.value})
    key, created = services.keys.create(body.tenant, role, body.name, actor=principal)
    return {"key": key, "key_id": created.key_id, "tenant": created.tenant, "role": created.key_role.value,
            "name": created.name}


@router.get("/keys", response_model=list[KeyInfo])
def list_keys(services: ServicesDep, principal: AdminOnly) -> list[dict[str, Any]]:
    """List keys (ids, tenants, roles; never the secrets): a superadmin sees all, a tenant admin its tenant's."""
    return services.keys.list(None if principal.is_superadmin else principal.tenant)


@router.delete("/keys/{key_id}", status_code=204, responses=responses(403, 404, 422, notes={
    403: "`forbidden_role` (not an admin), `forbidden_key_role` (a tenant admin revoking an admin key)",
    404: "`key_not_found` (also another tenant's key)"}))
def revoke_key(key_id: KeyIdPath, services: ServicesDep, principal: AdminOnly) -> Response:
    """Revoke a key immediately and for good (its id is tombstoned; gateway restarts do not bring it back).

    A tenant admin revokes its own tenant's `platform`/`moderator` keys (403 `forbidden_key_role` for admin
    keys); another tenant's key is reported missing (404 `key_not_found`). Every revocation is audited.
    """
    info = services.keys.get(key_id)
    if info is None or not principal.can_see(info["tenant"]):
        raise NotFound(f"no key {key_id!r}", code="key_not_found")
    if not principal.can_grant(Role(info["role"])):
        raise Forbidden(f"only a superadmin revokes {info['role']} keys", code="forbidden_key_role",
                        details={"role": info["role"]})
    if not services.keys.revoke(key_id, actor=principal):
        raise NotFound(f"no key {key_id!r}", code="key_not_found")
    return Response(status_code=204)


def _stream_cursor(cursor: str | None) -> str | None:
    """A Redis stream id `<ms>-<seq>` to read before, or 422 `invalid_cursor`.

    Checked in full (both parts below 2**64, not 0-0) because Redis answers anything else with an error.
    """
    if not cursor:
        return None
    match = STREAM_ID.fullmatch(cursor)
    parts = (int(match[1]), int(match[2])) if match else (0, 0)
    if parts == (0, 0) or max(parts) >= 2**64:
        raise InvalidInput("cursor is not valid: pass the `next_cursor` of the previous page", code="invalid_cursor")
    return cursor


@router.get("/audit/keys", response_model=AuditPage, responses=responses(403, 422, notes={
    403: "`forbidden_role`: only superadmins read the audit log", 422: "`invalid_cursor`, `validation_error`"}))
def key_audit(
    services: ServicesDep, principal: AdminOnly,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=64, description="`next_cursor` of the previous page.")] = None,
) -> dict[str, Any]:
    """Superadmins only: the credential audit log, newest first.

    One entry per API-key creation (`key.created`, `key.bootstrapped`), revocation (`key.revoked`) and webhook
    secret rotation (`webhook_secret.rotated`): `at` (unix time), `actor_key_id`/`actor_tenant`/`actor_role`/
    `actor_name` (who; `actor_role` `system` is the first-start bootstrap), and the target `tenant`, `key_id`,
    `role`, `name` (what). The log is append-only (no API edits or deletes it) and bounded: Redis keeps the
    newest 100,000 entries. Page with `cursor` = the previous page's `next_cursor`. Others get 403
    `forbidden_role`; a malformed cursor 422 `invalid_cursor`.
    """
    _superadmin(principal)
    items = services.keys.audit.read(limit, _stream_cursor(cursor))
    return {"items": items, "next_cursor": items[-1]["id"] if len(items) == limit else None}


def _tenant_for(principal: Principal, tenant: str) -> str:
    if not principal.can_see(tenant):
        raise NotFound(f"no tenant {tenant!r}", code="tenant_not_found")
    return tenant


@router.get("/tenants/{tenant}/webhook-secret", response_model=WebhookSecret,
            responses=responses(404, 422, notes=_TENANT_404))
def get_webhook_secret(tenant: TenantPath, services: ServicesDep, principal: PlatformOrAdmin) -> dict[str, Any]:
    """The tenant's webhook signing secret (created on first request), and when a rotated-out one expires."""
    secret = services.tenants.webhook_secret(_tenant_for(principal, tenant))
    return {"tenant": tenant, "secret": secret, "previous_expires_at": services.tenants.previous_expires_at(tenant)}


@router.post("/tenants/{tenant}/webhook-secret/rotate", response_model=WebhookSecret,
             responses=responses(404, 413, 422, notes=_TENANT_404))
def rotate_webhook_secret(
    tenant: TenantPath, services: ServicesDep, principal: PlatformOrAdmin,
    grace_s: Annotated[int, Query(ge=0, le=MAX_WEBHOOK_GRACE_S, description=(
        "Seconds the previous secret stays valid (default 86400 = 24 h, at most 30 days; 0 ends it now)."
    ))] = DEFAULT_WEBHOOK_GRACE_S,
) -> dict[str, Any]:
    """Replace the signing secret, keeping the previous one valid for `grace_s` seconds (default 24 h).

    During the grace every delivery's `X-Moderation-Signature` is `t=<ts>,v1=<sig new>,v1=<sig old>`, so
    receivers can switch to the new secret at their own pace; `verify_webhook` accepts either. Only one
    previous secret is kept: rotating again during a grace ends the older secret's grace at once. Audited.
    """
    secret, expires = services.tenants.rotate_webhook_secret(_tenant_for(principal, tenant), grace_s, principal)
    return {"tenant": tenant, "secret": secret, "previous_expires_at": expires}
