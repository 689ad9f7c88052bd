"""Owns moderation items in Redis: creation, atomic status transitions, indexes and the audit stream.

Layout (all keys prefixed `mod:`):
  item:{id}                 hash of the item (JSON-encoded for structured fields)
  idx:tenant:{t} / idx:all  time-ordered zsets of ids;  idx:ext:{t}:{external_id}  zset of ids
  pending                   zset of ids still queued/processing (a starting worker re-enqueues stale ones)
  audit:{id}                stream: every state change of the item, in order
  idem:{t}:{key}            idempotency record of a submission
  ready:text                list of text item ids in arrival order; workers pop extra ids to batch them
  outbox                    zset of webhooks owed ("id|event" -> when); removed when the delivery task starts
  notify:{id}               list pushed when the item reaches a final state (long-poll waiters BLPOP it)
  metrics:verdicts          hash decision -> count
Every write that changes status goes through one Lua script, so an item is never half-written and two
workers finishing the same item cannot both win. `QUEUE_RULE` (service.store.queue_rule) is the one definition
of review-queue membership; every script that changes a decision or review state runs it in the same write.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
import redis.asyncio as aioredis

from service.core.domain import Delivery, Item, Verdict
from service.store import keys
from service.store.blocked import blocked_key
from service.store.client import as_map, as_strs
from service.store.queue_rule import QUEUE_RULE

FINAL = ("done", "failed", "rejected")
LIVE = ("queued", "processing")
JSON_FIELDS = ("metadata", "scores", "flagged", "models", "reasons", "explanation", "categories", "human",
               "appeal", "rescan_disagreement", "media", "deciders", "checked_with", "rescanned_with")
PENDING_KEY = keys.PENDING
METRICS_KEY = keys.METRICS_VERDICTS
READY_TEXT_KEY = keys.READY_TEXT
OUTBOX_KEY = keys.OUTBOX  # zset "item_id|event" -> time the webhook became owed

_CREATE = """
local req = cjson.decode(ARGV[1])
if req.idem_key ~= '' then
  local existing = redis.call('GET', req.idem_key)
  if existing then return {0, existing} end
end
-- Back-pressure in the same call: a retry already accepted got its record above; new work is refused here.
if req.max_pending > 0 then
  local depth = redis.call('ZCARD', '@pending@')
  if depth >= req.max_pending then return {-1, tostring(depth)} end
end
if req.idem_key ~= '' then
  redis.call('SET', req.idem_key, req.idem_value, 'EX', req.idem_ttl)
end
for _, it in ipairs(req.items) do
  local flat = {}
  for f, v in pairs(it.fields) do table.insert(flat, f); table.insert(flat, v) end
  redis.call('HSET', '@item@' .. it.id, unpack(flat))
  redis.call('ZADD', '@idx_tenant@' .. it.tenant, it.ts, it.id)
  redis.call('ZADD', '@idx_all@', it.ts, it.id)
  redis.call('ZADD', '@pending@', it.ts, it.id)
  if it.ext_key ~= '' then redis.call('ZADD', it.ext_key, it.ts, it.id) end
  if it.kind == 'text' then redis.call('RPUSH', '@ready_text@', it.id) end
  redis.call('XADD', '@audit@' .. it.id, 'MAXLEN', '~', 1000, '*',
             'event', 'created', 'status', 'queued', 'from', '', 'at', it.ts, 'data', it.audit)
end
-- Statistics buckets (stats.submission_counters): counted here, with the items, so only creations count.
for _, c in ipairs(req.counters) do
  for f, n in pairs(c.counts) do redis.call('HINCRBY', c.key, f, n) end
  redis.call('EXPIREAT', c.key, c.exp)
end
return {1, ''}
"""

_TRANSITION = """
local req = cjson.decode(ARGV[1])
local key = '@item@' .. req.id
local cur = redis.call('HGET', key, 'status')
if not cur then return {-1, ''} end
local ok = false
for _, s in ipairs(req.from) do if s == cur then ok = true end end
if not ok then return {0, cur} end
local flat = {'status', req.to, 'updated_at', req.at}
for f, v in pairs(req.fields) do table.insert(flat, f); table.insert(flat, v) end
redis.call('HSET', key, unpack(flat))
redis.call('XADD', '@audit@' .. req.id, 'MAXLEN', '~', 1000, '*',
           'event', req.event, 'status', req.to, 'from', cur, 'at', req.at, 'data', req.data)
if req.final then
  redis.call('ZREM', '@pending@', req.id)
  redis.call('RPUSH', '@notify@' .. req.id, req.to)
  redis.call('EXPIRE', '@notify@' .. req.id, 60)
  if req.decision ~= '' then redis.call('HINCRBY', '@metrics_verdicts@', req.decision, 1) end
end
if req.blocked_key ~= '' then
  if req.blocked_op == 'add' then redis.call('SADD', req.blocked_key, req.ext)
  else redis.call('SREM', req.blocked_key, req.ext) end
end
if req.webhook ~= '' then
  -- Outbox: the webhook is owed from this very write; the task removes it, a sweeper re-sends leftovers.
  redis.call('ZADD', '@outbox@', req.at, req.id .. '|' .. req.webhook)
end
queue_sync(req.id, req.at, req.review_score)
return {1, cur}
"""


def new_item_id() -> str:
    # Time-prefixed so ids sort roughly by creation; uuid4 tail keeps them unguessable.
    return f"mod_{int(time.time() * 1000):x}{uuid.uuid4().hex[:16]}"


def now_s() -> str:
    return f"{time.time():.6f}"


def _encode(fields: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in fields.items():
        if v is None:
            out[k] = ""
        elif k in JSON_FIELDS or isinstance(v, dict | list):
            out[k] = json.dumps(v, ensure_ascii=False, separators=(",", ":"))
        else:
            out[k] = str(v)
    return out


def decode_item(raw: dict[str, str]) -> Item:
    item: dict[str, Any] = {}
    for k, v in raw.items():
        if k in JSON_FIELDS:
            item[k] = json.loads(v) if v else None
        elif k in ("created_at", "updated_at", "completed_at", "priority", "review_score", "lease_expires_at"):
            item[k] = float(v) if v else None
        elif k == "verdict_version":
            item[k] = int(v) if v else None
        else:
            item[k] = v if v != "" else None
    return cast(Item, item)


@dataclass
class NewItem:
    tenant: str
    kind: str
    content_hash: str
    fields: dict[str, Any]
    external_id: str | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = new_item_id()


@dataclass
class Transition:
    item_id: str
    to: str
    from_: tuple[str, ...]
    event: str
    fields: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    decision: str = ""
    blocked: tuple[str, str, str] | None = None
    # (review queue key, priority score) when the verdict needs review; the queue rule places the item (the key
    # is implied by the tenant and kept for callers' clarity).
    review: tuple[str, float] | None = None
    webhook: str = ""  # event owed to the item's callback_url (recorded in the outbox atomically)

    def _fields(self) -> dict[str, Any]:
        # A verdict records whether it needs review; the queue rule (QUEUE_RULE) reads it in the same script.
        if self.to != "done":
            return self.fields or {}
        return {**(self.fields or {}), "review_needed": "1" if self.review else "0"}

    def request(self) -> dict[str, Any]:
        b = self.blocked
        return {
            "id": self.item_id, "to": self.to, "from": list(self.from_), "event": self.event, "at": now_s(),
            "fields": _encode(self._fields()), "data": json.dumps(self.data or {}, ensure_ascii=False),
            "final": self.to in FINAL, "decision": self.decision,
            "blocked_key": blocked_key(b[1]) if b else "", "blocked_op": b[0] if b else "", "ext": b[2] if b else "",
            "review_score": self.review[1] if self.review else "", "webhook": self.webhook,
        }


class CreateResult:
    def __init__(self, created: bool, existing: dict[str, Any] | None = None, queue_depth: int | None = None,
                 ) -> None:
        # `existing` is the idempotency record ({digest, ids}) a repeated request found, not an item.
        self.created = created
        self.existing = existing
        # Set when nothing was created because `max_pending` items were pending (back-pressure).
        self.queue_depth = queue_depth


def _create_payload(items: Sequence[NewItem], idem_key: str, idem_value: dict[str, Any] | None, idem_ttl_s: int,
                    max_pending: int, counters: Sequence[dict[str, Any]]) -> str:
    # One distinct timestamp per item (1 µs apart): the newest-first cursor is a score, so ties would be
    # skipped. Built from integer microseconds: float addition could round two stamps to the same string.
    us = time.time_ns() // 1000
    stamps = [f"{(us + i) // 1_000_000}.{(us + i) % 1_000_000:06d}" for i in range(len(items))]
    return json.dumps({
        "idem_key": idem_key,
        "idem_value": json.dumps(idem_value or {}),
        "idem_ttl": idem_ttl_s,
        "max_pending": max_pending,
        "counters": list(counters),
        "items": [
            {
                "id": it.id,
                "tenant": it.tenant,
                "kind": it.kind,
                "ts": ts,
                "ext_key": ext_index_key(it.tenant, it.external_id) if it.external_id else "",
                "fields": _encode({
                    **it.fields, "id": it.id, "tenant": it.tenant, "kind": it.kind,
                    "content_hash": it.content_hash, "external_id": it.external_id,
                    "status": "queued", "created_at": ts, "updated_at": ts,
                }),
                "audit": json.dumps({"kind": it.kind, "content_hash": it.content_hash}),
            }
            for it, ts in zip(items, stamps, strict=True)
        ],
    })


def _create_result(reply: Any) -> CreateResult:
    created, existing = reply
    if int(created) == 1:
        return CreateResult(True)
    if int(created) == -1:
        return CreateResult(False, queue_depth=int(existing))
    return CreateResult(False, json.loads(existing))


class ItemStore:
    def __init__(self, client: redis.Redis, aclient: aioredis.Redis | None = None) -> None:
        self.r = client
        self._create = client.register_script(keys.lua(_CREATE))
        # The gateway creates on its asyncio client (acreate): no thread-pool hop per submission.
        self._acreate = aclient.register_script(keys.lua(_CREATE)) if aclient is not None else None
        self._transition = client.register_script(keys.lua(QUEUE_RULE + _TRANSITION))

    # ---- creation -------------------------------------------------------------------------
    def create(self, items: Sequence[NewItem], idem_key: str = "", idem_value: dict[str, Any] | None = None,
               idem_ttl_s: int = 86400, max_pending: int = 0,
               counters: Sequence[dict[str, Any]] = ()) -> CreateResult:
        """Create all items atomically; with an idempotency key, a repeat returns the first record.

        With `max_pending` > 0, nothing is created while that many items are pending (queued or processing);
        the result then has `queue_depth` set. A repeat of an accepted idempotent request still gets its record.
        The check and the create are one script, so the cap is exact (a batch may still end past it).
        `counters` ({key, exp, counts}) are hash increments applied only when the items are created.
        """
        payload = _create_payload(items, idem_key, idem_value, idem_ttl_s, max_pending, counters)
        return _create_result(self._create(keys=[keys.SLOT], args=[payload]))  # SLOT: cluster routing

    async def acreate(self, items: Sequence[NewItem], idem_key: str = "", idem_value: dict[str, Any] | None = None,
                      idem_ttl_s: int = 86400, max_pending: int = 0,
                      counters: Sequence[dict[str, Any]] = ()) -> CreateResult:
        """create() on the asyncio client given at construction."""
        if self._acreate is None:
            raise RuntimeError("ItemStore was built without an asyncio client")
        payload = _create_payload(items, idem_key, idem_value, idem_ttl_s, max_pending, counters)
        return _create_result(await self._acreate(keys=[keys.SLOT], args=[payload]))

    def pop_ready_text(self, count: int) -> list[str]:
        """Ids of text items waiting for a worker, for opportunistic batching (see workers.pipelines.text)."""
        if count <= 0:
            return []
        return as_strs(self.r.lpop(READY_TEXT_KEY, count))

    def forget_idempotency(self, idem_key: str) -> None:
        self.r.delete(idem_key)

    # ---- transitions ----------------------------------------------------------------------
    def transition(self, item_id: str, to: str, from_: Iterable[str], event: str,
                   fields: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                   decision: str = "", blocked: tuple[str, str, str] | None = None) -> tuple[bool, str | None]:
        """Atomically move an item to `to` if its status is in `from_`; returns (moved, previous status).

        `blocked` = (op 'add'|'remove', tenant, external_id) keeps the removed-content set in step.
        """
        return self.transition_many([Transition(item_id, to, tuple(from_), event, fields, data, decision,
                                                blocked)])[0]

    def transition_many(self, transitions: Sequence[Transition]) -> list[tuple[bool, str | None]]:
        """Several transitions in one round trip; each is still atomic on its own."""
        pipe = self.r.pipeline(transaction=False)
        for t in transitions:
            self._transition(keys=[keys.SLOT], args=[json.dumps(t.request())], client=pipe)
        return [(int(moved) == 1, prev or None) for moved, prev in pipe.execute()]

    # ---- reads ----------------------------------------------------------------------------
    def get(self, item_id: str) -> Item | None:
        raw = as_map(self.r.hgetall(keys.item(item_id)))
        return decode_item(raw) if raw else None

    def get_many(self, ids: Sequence[str]) -> list[Item | None]:
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(keys.item(i))
        return [decode_item(as_map(raw)) if raw else None for raw in pipe.execute()]

    def ids_by_external_id(self, tenant: str, external_id: str, limit: int = 100) -> list[str]:
        return as_strs(self.r.zrevrange(ext_index_key(tenant, external_id), 0, limit - 1))

    def page(self, tenant: str | None, before: float | None, limit: int) -> list[str]:
        """Newest first; `before` is the cursor (created_at of the last item of the previous page)."""
        key = keys.index(tenant)
        hi = f"({before}" if before is not None else "+inf"
        return as_strs(self.r.zrevrangebyscore(key, hi, "-inf", start=0, num=limit))

    def stale_pending(self, older_than_s: float, limit: int = 1000) -> list[str]:
        return as_strs(self.r.zrangebyscore(PENDING_KEY, "-inf", time.time() - older_than_s, start=0, num=limit))

    def history(self, item_id: str) -> list[dict[str, Any]]:
        out = []
        for entry_id, data in self.r.xrange(keys.audit(item_id)) or []:
            event: dict[str, Any] = dict(as_map(data))
            event["data"] = json.loads(event.get("data") or "{}")
            event["at"] = float(event["at"]) if event.get("at") else None
            event["event_id"] = entry_id
            out.append(event)
        return out

    def verdict_counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in as_map(self.r.hgetall(METRICS_KEY)).items()}

    # ---- verdict cache --------------------------------------------------------------------
    def claim_verdict(self, key: str, verdict: Verdict, ttl_s: int) -> Verdict:
        """Store a computed verdict unless one exists; return whichever is stored (first writer wins)."""
        payload = json.dumps(verdict, ensure_ascii=False, separators=(",", ":"))
        if self.r.set(key, payload, nx=True, ex=ttl_s):
            return verdict
        stored = self.r.get(key)
        return cast(Verdict, json.loads(stored)) if stored else verdict

    def cached_verdicts(self, keys: Sequence[str]) -> list[Verdict | None]:
        if not keys:
            return []
        return [json.loads(v) if v else None for v in self.r.mget(list(keys))]

    # ---- webhook deliveries ---------------------------------------------------------------
    def record_delivery(self, item_id: str, attempt: Delivery) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.rpush(keys.webhooks(item_id), json.dumps(attempt))
        pipe.xadd(keys.audit(item_id), {"event": "webhook_attempt", "status": "", "from": "",
                                           "at": now_s(), "data": json.dumps(attempt)},
                  maxlen=1000, approximate=True)
        pipe.execute()

    def deliveries(self, item_id: str) -> list[Delivery]:
        return [json.loads(x) for x in self.r.lrange(keys.webhooks(item_id), 0, -1)]


def ext_index_key(tenant: str, external_id: str) -> str:
    return keys.external(tenant, external_id)


def idem_key(tenant: str, key: str) -> str:
    return keys.idempotency(tenant, key)


def verdict_key(content_hash: str, model_id: str, policy_id: str) -> str:
    return keys.verdict(content_hash, model_id, policy_id)
