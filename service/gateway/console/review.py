"""Owns the console's review endpoints: queue and appeals with filters and live counts, claim-next, the item view,
lease state, claim and decision, and media blobs for authorised sessions of the item's tenant.

Claims and decisions go through the review API's own handlers (service.gateway.routes.reviews), so the console
can do nothing the API would refuse; this module only adds what a screen needs: counts, names, thresholds,
and clear messages when a lease expired or another moderator won the race.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from common.language import detect_language
from common.sniff import HEAD_BYTES, sniff
from service.core.domain import Item
from service.core.errors import ApiError, NotFound
from service.core.security import TENANT_PATTERN, Principal
from service.gateway.console.session import ConsolePrincipal, ConsoleRoute, add_security_headers
from service.gateway.deps import JsonBody, Services, ServicesDep, visible_item
from service.gateway.routes import reviews
from service.store.blobs import BlobStore
from service.store.stats import StatsStore

router = APIRouter(prefix="/console/api", route_class=ConsoleRoute, include_in_schema=False)

ItemId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
TenantQ = Annotated[str | None, Query(max_length=64, pattern=TENANT_PATTERN)]
AgeQ = Annotated[float | None, Query(ge=0, le=10 * 365 * 86400, allow_inf_nan=False)]
View = Literal["review", "appeals"]
REASON_TEMPLATES = [
    {"label": "Targeted insult or harassment", "action": "remove", "categories": ["insult", "toxicity"]},
    {"label": "Hate against a protected group", "action": "remove", "categories": ["hate"]},
    {"label": "Threat of violence", "action": "remove", "categories": ["threat", "violence"]},
    {"label": "Sexual content not allowed here", "action": "remove", "categories": ["sexual"]},
    {"label": "Self-harm encouragement", "action": "remove", "categories": ["self_harm"]},
    {"label": "Quote, news or counter-speech: allowed", "action": "approve", "categories": []},
    {"label": "Fiction, lyrics or artistic context: allowed", "action": "approve", "categories": []},
    {"label": "False positive: harmless", "action": "approve", "categories": []},
    {"label": "Needs a specialist (legal, child safety)", "action": "escalate", "categories": []},
]


def tenant_of(principal: Principal, tenant: str | None) -> str:
    return reviews._tenant(principal, tenant)


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    view: View = "review"
    kind: Literal["text", "image", "video"] | None = None
    category: str | None = Field(None, max_length=64)
    min_age_s: float | None = Field(None, ge=0, le=10 * 365 * 86400, allow_inf_nan=False)
    max_age_s: float | None = Field(None, ge=0, le=10 * 365 * 86400, allow_inf_nan=False)
    tenant: str | None = Field(None, max_length=64, pattern=TENANT_PATTERN)


def _matching(services: Services, principal: Principal, f: Filters) -> tuple[str, list[dict[str, Any]],
                                                                              dict[str, Any]]:
    t = tenant_of(principal, f.tenant)
    services.reviews.sweep(t)
    rows, claimed, truncated = StatsStore(services.redis).queue_snapshot(t)
    now = time.time()
    for r in rows:
        r["flagged"] = json.loads(r["flagged"]) if r["flagged"] else []
        r["age_s"] = max(0.0, now - r["created_at"])
    in_view = [r for r in rows if bool(r["appeal"]) == (f.view == "appeals")]
    keep = [r for r in in_view if (f.kind is None or r["kind"] == f.kind)
            and (f.category is None or f.category in r["flagged"])
            and (f.min_age_s is None or r["age_s"] >= f.min_age_s)
            and (f.max_age_s is None or r["age_s"] <= f.max_age_s)]
    by_kind: dict[str, int] = {}
    by_category: dict[str, int] = {}
    for r in in_view:
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
        for c in r["flagged"] or ["none"]:
            by_category[c] = by_category.get(c, 0) + 1
    counts = {"pending": len(rows), "review": sum(1 for r in rows if not r["appeal"]),
              "appeals": sum(1 for r in rows if r["appeal"]), "claimed": claimed, "matching": len(keep),
              "by_kind": by_kind, "by_category": by_category, "truncated": truncated,
              "oldest_age_s": max((r["age_s"] for r in in_view), default=None)}
    return t, keep, counts


def decided_by(item: Mapping[str, Any], key_id: str) -> bool:
    """Whether this moderator decided the item before: such a moderator may not decide its appeal (the store
    refuses the claim; the console says so up front)."""
    return key_id in (item.get("deciders") or []) or item.get("appeal_excluded") == key_id


def _card(item: Item, principal: Principal) -> dict[str, Any]:
    text = item.get("text") or ""
    scores = item.get("scores") or {}
    return {"id": item["id"], "kind": item["kind"], "created_at": item.get("created_at"),
            "decision": item.get("decision"), "flagged": item.get("flagged") or [],
            "max_score": max(scores.values(), default=None), "priority": item.get("priority"),
            "escalated": bool(item.get("escalated")), "appeal": item.get("appeal"),
            "excerpt": text[:240], "external_id": item.get("external_id"),
            "review_status": item.get("review_status"),
            "decided_by_me": decided_by(item, principal.key_id),
            "lease_mine": item.get("lease_holder") == principal.key_id}


@router.get("/queue")
def queue(services: ServicesDep, principal: ConsolePrincipal, view: View = "review",
          kind: Literal["text", "image", "video"] | None = None,
          category: Annotated[str | None, Query(max_length=64)] = None, min_age_s: AgeQ = None,
          max_age_s: AgeQ = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
          tenant: TenantQ = None) -> dict[str, Any]:
    """Pending items of one view (first reviews or appeals) in priority order, filtered, with live counts."""
    f = Filters(view=view, kind=kind, category=category, min_age_s=min_age_s, max_age_s=max_age_s, tenant=tenant)
    t, keep, counts = _matching(services, principal, f)
    items = [i for i in services.items.get_many([r["id"] for r in keep[:limit]]) if i is not None]
    mine = [i for i in services.items.get_many(services.reviews.claimed(t))
            if i is not None and i.get("lease_holder") == principal.key_id]
    return {"tenant": t, "view": view, "counts": counts, "items": [_card(i, principal) for i in items],
            "mine": [_card(i, principal) for i in mine], "server_now": time.time()}


@router.post("/queue/claim-next", dependencies=[JsonBody])
def claim_next(body: Filters, services: ServicesDep, principal: ConsolePrincipal) -> dict[str, Any]:
    """Claim the first item of the filtered queue that this moderator may take; skips items others just won."""
    _, keep, _ = _matching(services, principal, body)
    for row in keep[:50]:
        if decided_by(row, principal.key_id):
            continue
        try:
            return reviews.claim(row["id"], reviews.ClaimRequest(lease_s=None), services, principal)
        except ApiError as exc:
            if exc.code not in ("already_claimed", "not_in_review", "appeal_needs_other_moderator"):
                raise
    raise NotFound("nothing left to claim with these filters", code="queue_empty")


def _holder_name(services: Services, key_id: str | None) -> str | None:
    if not key_id:
        return None
    info = services.keys.get(key_id)
    return (info or {}).get("name") or key_id


def lease_state(services: Services, principal: Principal, item: Item) -> dict[str, Any]:
    holder = item.get("lease_holder") if item.get("review_status") == "claimed" else None
    return {"review_status": item.get("review_status"), "holder": holder, "mine": holder == principal.key_id,
            "holder_name": _holder_name(services, holder), "expires_at": item.get("lease_expires_at") if holder
            else None, "server_now": time.time()}


def _thresholds(services: Services, item: Item) -> dict[str, Any]:
    policy = services.policies.effective(item["tenant"]).for_kind(item["kind"])
    if item["kind"] == "text":
        policy = policy.for_language(detect_language(item.get("text") or ""))
    cats = set(item.get("scores") or {}) | set(policy.categories)
    return {"id": policy.id, "thresholds": {c: policy.thresholds(c).to_dict() for c in sorted(cats)}}


def _original(services: Services, item: Item) -> dict[str, Any] | None:
    """What an open appeal contests: the human decision (and who made it), or the automated one."""
    if not item.get("appeal"):
        return None
    human = item.get("human")
    if human and item.get("source") == "human":
        return {"source": "human", "decision": human.get("decision"), "moderator": human.get("moderator"),
                "name": human.get("name") or _holder_name(services, human.get("moderator")),
                "reason": human.get("reason"), "categories": human.get("categories"), "at": human.get("at")}
    return {"source": "model", "decision": item.get("decision"), "policy_version": item.get("policy_version"),
            "at": item.get("completed_at")}


@router.get("/items/{item_id}")
def item_view(item_id: ItemId, services: ServicesDep, principal: ConsolePrincipal) -> dict[str, Any]:
    """Everything a moderator needs to judge one item: content, scores vs thresholds, matches, history."""
    item = visible_item(services, principal, item_id)
    services.reviews.sweep(item["tenant"])
    item = visible_item(services, principal, item_id)
    reasons = item.get("reasons") or []
    appeal_open = bool(item.get("appeal")) and item.get("review_status") in ("pending", "claimed")
    return {
        "item": reviews._review_view(item), "lease": lease_state(services, principal, item),
        "policy": _thresholds(services, item),
        "hash_matches": [r for r in reasons if r.get("type") == "hash_match"],
        "blocklist": [r for r in reasons if r.get("type") == "blocklist"],
        "history": services.items.history(item_id), "webhooks": services.items.deliveries(item_id),
        "appeal": {"open": appeal_open, "request": item.get("appeal"), "original": _original(services, item),
                   "excluded_me": decided_by(item, principal.key_id)} if item.get("appeal") else None,
        "blob": f"/console/api/items/{item_id}/blob" if item.get("blob_key") else None,
        "reason_templates": REASON_TEMPLATES,
    }


@router.get("/items/{item_id}/lease")
def item_lease(item_id: ItemId, services: ServicesDep, principal: ConsolePrincipal) -> dict[str, Any]:
    """Who holds the lease now and until when (expired leases are returned to the queue first)."""
    item = visible_item(services, principal, item_id)
    services.reviews.sweep(item["tenant"])
    return lease_state(services, principal, visible_item(services, principal, item_id))


@router.post("/reviews/{item_id}/claim", dependencies=[JsonBody])
def claim(item_id: ItemId, services: ServicesDep, principal: ConsolePrincipal) -> dict[str, Any]:
    """Take (or renew) the lease; a lost race says who won."""
    try:
        reviews.claim(item_id, reviews.ClaimRequest(lease_s=None), services, principal)
    except ApiError as exc:
        if exc.code == "already_claimed":
            state = lease_state(services, principal, visible_item(services, principal, item_id))
            raise ApiError(f"{state['holder_name'] or 'another moderator'} is already reviewing this item",
                           code="already_claimed", status=exc.status, details={"holder_name": state["holder_name"]},
                           ) from exc
        raise
    return lease_state(services, principal, visible_item(services, principal, item_id))


@router.post("/reviews/{item_id}/decision", dependencies=[JsonBody])
def decide(item_id: ItemId, body: reviews.DecisionRequest, services: ServicesDep,
           principal: ConsolePrincipal) -> dict[str, Any]:
    """Approve, remove or escalate; refused cleanly when the lease expired or was taken over."""
    try:
        return reviews.decide(item_id, body, services, principal)
    except ApiError as exc:
        if exc.code != "lease_required":
            raise
        state = lease_state(services, principal, visible_item(services, principal, item_id))
        if state["holder"] and not state["mine"]:
            message = (f"your lease expired and {state['holder_name']} has claimed the item: your decision was "
                       "not saved")
        else:
            message = "your lease expired and the item went back to the queue: your decision was not saved"
        raise ApiError(message, code="lease_expired", status=409, details={"lease": state}) from exc


@router.get("/items/{item_id}/blob")
def blob(item_id: ItemId, services: ServicesDep, principal: ConsolePrincipal) -> Response:
    """The uploaded file, for sessions that may see the item: sniffed type, nosniff, attachment, sandboxed."""
    item = visible_item(services, principal, item_id)
    blob_key = item.get("blob_key")
    path = BlobStore(services.settings.blob_dir).path(blob_key) if blob_key else None
    if path is None or not path.is_file():
        raise NotFound("the uploaded file is no longer stored", code="blob_missing")
    with path.open("rb") as fh:
        media = sniff(fh.read(HEAD_BYTES))
    ok = media.kind in ("image", "video") and media.accepted
    response = FileResponse(path, media_type=media.mime if ok else "application/octet-stream",
                            filename=f"{item_id}.{media.fmt if ok else 'bin'}", content_disposition_type="attachment")
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return add_security_headers(response, cache="private, no-store")
