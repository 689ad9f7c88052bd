"""Owns the operations statistics API (`/v1/stats/...`) and the gateway hook that feeds its series.

Series come from service.store.stats (hour and day buckets in Redis, bounded retention): submissions and
flag/block rates by kind and category, human decisions per moderator with median time-to-decision, appeals
and their overturn rate, the review queue's depth, and the model and policy versions that produced verdicts.
The queue snapshot and worker health are read live. The console's dashboard draws these same functions.

`StatsHook` is ASGI middleware: after a successful human decision or appeal (the API's or the console's) has
been answered, it records it, off the response path, and never fails the request. Submissions are counted by
the create script itself (service.gateway.submit, stats.submission_counters): no extra round trip on the hot
path. Verdicts are recorded by the workers when they write them (workers.lifecycle.finish_all).
"""

from __future__ import annotations

import json
import logging
import re
import statistics
import time
from collections import Counter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.errors import AUTH_ERRORS, InvalidInput, NotFound, responses
from service.core.security import TENANT_PATTERN, Principal
from service.gateway.deps import ModeratorOrAdmin, Services, ServicesDep
from service.gateway.routes.health import worker_heartbeats
from service.store.stats import ALL, RESOLUTIONS, StatsStore, original_decision

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/stats", tags=["stats"], responses=responses(*AUTH_ERRORS))

KINDS = ("text", "image", "video")
DECISIONS = ("allow", "review", "block")
ACTIONS = ("approve", "remove", "escalate")
ResolutionQuery = Annotated[Literal["hour", "day"], Query(description="Bucket size: `hour` (kept 8 days) or "
                                                                      "`day` (kept 400 days).")]
BucketsQuery = Annotated[int, Query(ge=1, le=400, description="How many buckets, ending with the current one "
                                                              "(at most the resolution's retention).")]
TenantQuery = Annotated[str | None, Query(max_length=64, pattern=TENANT_PATTERN, description=(
    "Superadmins: a tenant, or none for every tenant summed. Others: only their own tenant (the default)."))]
_ERRORS = responses(404, 422, notes={404: "`tenant_not_found`: a tenant this key cannot see",
                                     422: "`validation_error`, `tenant_required`"})


def scope_for(principal: Principal, tenant: str | None, need_tenant: bool = False) -> str:
    """The tenant a stats request is about (`*` = every tenant, superadmins only)."""
    if tenant is not None and not principal.can_see(tenant):
        raise NotFound(f"no tenant {tenant!r}", code="tenant_not_found")
    if not principal.is_superadmin:
        return principal.tenant
    if not tenant and need_tenant:
        raise InvalidInput("superadmins must pass `tenant` for this series", code="tenant_required")
    return tenant or ALL


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _split(counts: dict[str, int], prefix: str) -> list[tuple[list[str], int]]:
    return [(name.split("|")[1:], n) for name, n in counts.items() if name.split("|", 1)[0] == prefix]


def volume(services: Services, scope: str, resolution: str, buckets: int) -> dict[str, Any]:
    """Submissions, verdicts by decision, flag rate (review or block) and block rate, flagged categories."""
    out = []
    for start, counts, _ in StatsStore(services.redis).series(scope, resolution, buckets):
        submitted = dict.fromkeys(KINDS, 0)
        verdicts = {k: dict.fromkeys(DECISIONS, 0) for k in KINDS}
        categories: dict[str, dict[str, int]] = {}
        for (kind, *_), n in _split(counts, "sub"):
            submitted[kind] = submitted.get(kind, 0) + n
        for (kind, decision), n in _split(counts, "v"):
            verdicts.setdefault(kind, dict.fromkeys(DECISIONS, 0))[decision] = n
        for (kind, category), n in _split(counts, "cat"):
            categories.setdefault(kind, {})[category] = n
        total = {k: sum(v.values()) for k, v in verdicts.items()}
        flags = {k: v.get("review", 0) + v.get("block", 0) for k, v in verdicts.items()}
        blocks = {k: v.get("block", 0) for k, v in verdicts.items()}
        out.append({
            "start": start, "submitted": submitted, "submitted_total": sum(submitted.values()),
            "verdicts": verdicts, "verdicts_total": sum(total.values()), "flagged_categories": categories,
            "flag_rate": {"all": _rate(sum(flags.values()), sum(total.values())),
                          **{k: _rate(flags[k], total[k]) for k in total}},
            "block_rate": {"all": _rate(sum(blocks.values()), sum(total.values())),
                           **{k: _rate(blocks[k], total[k]) for k in total}},
        })
    return {"tenant": scope, "resolution": resolution, "bucket_s": RESOLUTIONS[resolution].seconds, "buckets": out}


def moderator_names(services: Services, key_ids: set[str]) -> dict[str, str]:
    names = {}
    for key_id in sorted(key_ids):
        info = services.keys.get(key_id)
        names[key_id] = (info or {}).get("name") or key_id
    return names


def review(services: Services, scope: str, resolution: str, buckets: int) -> dict[str, Any]:
    """Human decisions per moderator, median time-to-decision, appeals and overturn rate, queue depth."""
    out = []
    per_mod: dict[str, Counter[str]] = {}
    appeals: Counter[str] = Counter()
    samples: list[float] = []
    for start, counts, ttd in StatsStore(services.redis).series(scope, resolution, buckets):
        decisions: dict[str, dict[str, int]] = {}
        for (moderator, action), n in _split(counts, "hd"):
            decisions.setdefault(moderator, dict.fromkeys(ACTIONS, 0))[action] = n
            per_mod.setdefault(moderator, Counter())[action] += n
        bucket_appeals = {k: counts.get(f"ap|{k}", 0) for k in ("opened", "decided", "overturned")}
        appeals.update(bucket_appeals)
        samples += ttd
        out.append({
            "start": start, "decisions": decisions,
            "decided": sum(n for (_, action), n in _split(counts, "hd") if action != "escalate"),
            "median_time_to_decision_s": round(statistics.median(ttd), 3) if ttd else None,
            "entered_review": sum(n for _, n in _split(counts, "rq")) + bucket_appeals["opened"],
            "queue_max_depth": counts.get("q|max"),
            "appeals": {**bucket_appeals, "overturn_rate": _rate(bucket_appeals["overturned"],
                                                                 bucket_appeals["decided"])},
        })
    totals = {m: {a: c[a] for a in ACTIONS} for m, c in sorted(per_mod.items())}
    return {"tenant": scope, "resolution": resolution, "bucket_s": RESOLUTIONS[resolution].seconds,
            "buckets": out, "moderators": moderator_names(services, set(per_mod)), "totals": {
                "decisions_per_moderator": totals,
                "median_time_to_decision_s": round(statistics.median(samples), 3) if samples else None,
                "appeals": {**dict(appeals), "overturn_rate": _rate(appeals["overturned"], appeals["decided"])}}}


def queue(services: Services, tenant: str) -> dict[str, Any]:
    """The review queue now: depth, claimed, by kind and category, appeals, escalations, age distribution."""
    services.reviews.sweep(tenant)  # expired leases back into the queue first, as every queue read does
    rows, claimed, truncated = StatsStore(services.redis).queue_snapshot(tenant)
    now = time.time()
    ages = sorted(max(0.0, now - r["created_at"]) for r in rows)
    by_kind: Counter[str] = Counter(r["kind"] or "unknown" for r in rows)
    by_category: Counter[str] = Counter()
    for r in rows:
        by_category.update(json.loads(r["flagged"]) if r["flagged"] else ["none"])
    return {
        "tenant": tenant, "at": now, "depth": len(rows), "truncated": truncated, "claimed": claimed,
        "by_kind": dict(by_kind), "by_category": dict(by_category),
        "appeals": sum(1 for r in rows if r["appeal"]), "escalated": sum(1 for r in rows if r["escalated"]),
        "age_s": {"oldest": round(ages[-1], 1) if ages else None,
                  "median": round(statistics.median(ages), 1) if ages else None,
                  "buckets": {"lt_1h": sum(a < 3600 for a in ages), "1h_24h": sum(3600 <= a < 86400 for a in ages),
                              "gt_24h": sum(a >= 86400 for a in ages)}},
    }


def versions(services: Services, scope: str, resolution: str, buckets: int) -> dict[str, Any]:
    """Which model and policy versions produced the verdicts of each bucket, and what is configured now."""
    out = []
    models: Counter[str] = Counter()
    policies: Counter[str] = Counter()
    for start, counts, _ in StatsStore(services.redis).series(scope, resolution, buckets):
        m = {name[0]: n for name, n in _split(counts, "model")}
        p = {name[0]: n for name, n in _split(counts, "policy")}
        models.update(m)
        policies.update(p)
        out.append({"start": start, "models": m, "policies": p})
    loaded = sorted({str(slot.get("model")) for w in worker_heartbeats(services)
                     for slot in (w.get("models") or {}).values() if slot.get("ok") and slot.get("model")})
    return {"tenant": scope, "resolution": resolution, "bucket_s": RESOLUTIONS[resolution].seconds, "buckets": out,
            "totals": {"models": dict(models), "policies": dict(policies)},
            "current": {"policy": services.policies.effective(scope).id if scope != ALL else None,
                        "worker_models": loaded}}


def workers(services: Services, principal: Principal) -> dict[str, Any]:
    """Live workers from their heartbeats; names, pids and model errors only for admins."""
    now = time.time()
    stale_after = 3 * services.settings.worker_heartbeat_s
    rows: list[dict[str, Any]] = []
    for w in sorted(worker_heartbeats(services), key=lambda w: (str(w.get("hostname")), int(w.get("pid") or 0))):
        age = max(0.0, now - float(w.get("at") or 0))
        models = w.get("models") or {}
        healthy = age <= stale_after and all(m.get("ok") for m in models.values())
        rows.append({"hostname": w.get("hostname"), "pid": w.get("pid"), "queues": w.get("queues") or [],
                     "heartbeat_age_s": round(age, 1), "healthy": healthy, "models": models})
    by_queue: Counter[str] = Counter(q for r in rows for q in r["queues"])
    summary = {"live": len(rows), "healthy": sum(r["healthy"] for r in rows), "by_queue": dict(by_queue)}
    return {"summary": summary, "workers": rows if principal.is_admin else None}


@router.get("/volume", responses=_ERRORS)
def get_volume(services: ServicesDep, principal: ModeratorOrAdmin, resolution: ResolutionQuery = "hour",
               buckets: BucketsQuery = 48, tenant: TenantQuery = None) -> dict[str, Any]:
    """Submissions and verdicts over time by kind, flag rate (review or block) and block rate, by category."""
    return volume(services, scope_for(principal, tenant), resolution, buckets)


@router.get("/review", responses=_ERRORS)
def get_review(services: ServicesDep, principal: ModeratorOrAdmin, resolution: ResolutionQuery = "day",
               buckets: BucketsQuery = 14, tenant: TenantQuery = None) -> dict[str, Any]:
    """Decisions per moderator, median time-to-decision, appeals and overturn rate, queue depth over time."""
    return review(services, scope_for(principal, tenant), resolution, buckets)


@router.get("/queue", responses=_ERRORS)
def get_queue(services: ServicesDep, principal: ModeratorOrAdmin, tenant: TenantQuery = None) -> dict[str, Any]:
    """The review queue now: depth, claimed, by kind and category, appeals, and how old the items are."""
    return queue(services, scope_for(principal, tenant, need_tenant=True))


@router.get("/versions", responses=_ERRORS)
def get_versions(services: ServicesDep, principal: ModeratorOrAdmin, resolution: ResolutionQuery = "day",
                 buckets: BucketsQuery = 14, tenant: TenantQuery = None) -> dict[str, Any]:
    """Model and policy versions in use: per bucket, as counted on verdicts, and as configured now."""
    return versions(services, scope_for(principal, tenant), resolution, buckets)


@router.get("/workers")
def get_workers(services: ServicesDep, principal: ModeratorOrAdmin) -> dict[str, Any]:
    """Worker health from heartbeats: a summary for everyone, each worker's details for admins."""
    return workers(services, principal)


# ---- the recording hook ------------------------------------------------------------------------------------
_DECIDE = re.compile(r"^/(?:v1|console/api)/reviews/[A-Za-z0-9_.-]{1,128}/decision$")
_APPEAL = re.compile(r"^/v1/moderations/([A-Za-z0-9_.-]{1,128})/appeal$")
_BODY_CAP = 1 << 20


def record(services: Services, path: str, body: bytes) -> None:
    """Record one answered request (see StatsHook); runs in a worker thread."""
    stats = StatsStore(services.redis)
    if (match := _APPEAL.match(path)) is not None:
        stats.record_appeal(match[1])
        return
    data = json.loads(body)
    human, item = data["human"], data["moderation"]
    appeal = item.get("appeal") if human.get("appeal") else None
    queued_at = float(appeal["at"]) if appeal else item.get("created_at")
    original = original_decision(services.items.history(item["id"])) if appeal else None
    stats.record_human(item["tenant"], human, queued_at, original)


class StatsHook:
    """Counts successful human decisions and appeals once they are answered (see the docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "POST" or not (_DECIDE.match(path) or _APPEAL.match(path)):
            await self.app(scope, receive, send)
            return
        status = 0
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and size <= _BODY_CAP:
                chunk = message.get("body", b"")
                chunks.append(chunk)
                size += len(chunk)
            await send(message)

        await self.app(scope, receive, capture)
        if status not in (200, 202) or size > _BODY_CAP:
            return
        try:
            await run_in_threadpool(record, scope["app"].state.services, path, b"".join(chunks))
        except Exception as exc:  # noqa: BLE001 - statistics must never fail or delay a request
            log.warning("could not record stats for %s: %s", path, exc)
