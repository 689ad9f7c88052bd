"""Owns the per-tenant human review queue: priority order, leases, decisions, appeals and queue statistics.

Keys: `mod:review:{t}` zset of pending ids (lower score = served first), `mod:leases:{t}` zset id -> lease
expiry, `mod:rstats:{t}:decisions` hash "moderator|day" -> count, `mod:rstats:{t}:ttd` list of
time-to-decision seconds. Claims, expiries and decisions are Lua scripts, so two moderators racing for one
item cannot both win and an item is never both queued and leased. The operator's queue repair lives in
service/store/review_repair.py.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any, cast

import redis

from service.core.domain import Item
from service.store import keys
from service.store.blocked import blocked_key
from service.store.client import as_map, as_scored, as_strs
from service.store.items import decode_item, now_s
from service.store.queue_rule import QUEUE_RULE

# Age is packed below the priority rank; both must stay under 2**53 to sort exactly (see priority_score).
_EPOCH = 1735689600.0  # 2025-01-01


def queue_key(tenant: str) -> str:
    return keys.review(tenant)


def lease_key(tenant: str) -> str:
    return keys.leases(tenant)


def priority_score(max_score: float, priority: float, created_at: float, boost: int = 0) -> float:
    """Serve highest (priority + boost, max category score) first, then oldest: one sortable float.

    rank < 9e6 and age in tens of seconds < 1e8 (30 years), so -rank * 1e8 + age stays exact in a double.
    """
    rank = int(min(priority + boost, 899)) * 10_000 + int(round(max(0.0, min(1.0, max_score)) * 9_999))
    return -rank * 1e8 + max(0.0, created_at - _EPOCH) / 10.0


def item_priority(item: Item, boost: int = 0) -> float:
    """Priority score of a raw or decoded item record."""
    scores = item.get("scores") or {}
    if isinstance(scores, str):
        scores = json.loads(scores) if scores else {}
    return priority_score(max(scores.values(), default=0.0), float(item.get("priority") or 0),
                          float(item.get("created_at") or time.time()), boost)


_SWEEP = """
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(expired) do
  local key = '@item@' .. id
  redis.call('ZREM', KEYS[2], id)
  if redis.call('HGET', key, 'review_status') == 'claimed' then
    local holder = redis.call('HGET', key, 'lease_holder') or ''
    -- The queue rule: the item goes back only if it still needs review (a rescan may have settled it meanwhile).
    local back = queue_wanted(key, 'claimed')
    redis.call('HSET', key, 'review_status', back and 'pending' or '', 'lease_holder', '', 'lease_expires_at', '')
    if back then redis.call('ZADD', KEYS[1], redis.call('HGET', key, 'review_score') or 0, id) end
    local st = redis.call('HGET', key, 'status')
    redis.call('XADD', '@audit@' .. id, 'MAXLEN', '~', 1000, '*', 'event', 'lease_expired', 'status', st,
               'from', st, 'at', ARGV[2], 'data', cjson.encode({moderator = holder, requeued = back}))
  end
end
return #expired
"""

_CLAIM = """
local r = cjson.decode(ARGV[1])
local key = '@item@' .. r.id
if redis.call('HGET', key, 'tenant') ~= r.tenant then return {-1, 'not_found'} end
local st = redis.call('HGET', key, 'review_status')
local status = redis.call('HGET', key, 'status')
if st == 'claimed' then
  local holder = redis.call('HGET', key, 'lease_holder')
  if holder ~= r.moderator then
    return {0, holder}
  end
  redis.call('HSET', key, 'lease_expires_at', r.expires)
  redis.call('ZADD', KEYS[2], r.expires, r.id)
  redis.call('XADD', '@audit@' .. r.id, 'MAXLEN', '~', 1000, '*', 'event', 'lease_renewed', 'status', status,
             'from', status, 'at', r.at, 'data', cjson.encode({moderator = r.moderator}))
  return {2, r.moderator}
end
if st ~= 'pending' then return {-2, st or 'none'} end
-- Everyone who decided this item before is excluded (a set, so a second appeal cannot reach the first remover);
-- `appeal_excluded` is the last decider, kept for items decided before `deciders` existed.
if redis.call('HGET', key, 'appeal_excluded') == r.moderator then return {-3, r.moderator} end
for _, who in ipairs(deciders_of(key)) do
  if who == r.moderator then return {-3, who} end
end
redis.call('ZREM', KEYS[1], r.id)
redis.call('ZADD', KEYS[2], r.expires, r.id)
redis.call('HSET', key, 'review_status', 'claimed', 'lease_holder', r.moderator, 'lease_expires_at', r.expires)
redis.call('XADD', '@audit@' .. r.id, 'MAXLEN', '~', 1000, '*', 'event', 'claimed', 'status', status,
           'from', status, 'at', r.at, 'data', cjson.encode({moderator = r.moderator, name = r.name}))
return {1, r.moderator}
"""

_DECIDE = """
local r = cjson.decode(ARGV[1])
local key = '@item@' .. r.id
if redis.call('HGET', key, 'tenant') ~= r.tenant then return {-1, 'not_found'} end
local rs = redis.call('HGET', key, 'review_status') or ''
if rs == 'pending' then return {-2, 'not_claimed'} end
if rs ~= 'claimed' then return {-4, rs == '' and 'none' or rs} end
if redis.call('HGET', key, 'lease_holder') ~= r.moderator then return {0, 'not_holder'} end
local status = redis.call('HGET', key, 'status')
redis.call('ZREM', KEYS[2], r.id)
if r.action == 'escalate' then
  redis.call('HSET', key, 'review_status', 'pending', 'lease_holder', '', 'lease_expires_at', '',
             'escalated', '1', 'review_score', r.escalated_score)
  redis.call('ZADD', KEYS[1], r.escalated_score, r.id)
  redis.call('XADD', '@audit@' .. r.id, 'MAXLEN', '~', 1000, '*', 'event', 'escalated', 'status', status,
             'from', status, 'at', r.at, 'data', r.human)
  return {1, 'escalated'}
end
local deciders = deciders_of(key)
local known = false
for _, who in ipairs(deciders) do if who == r.moderator then known = true end end
if not known then table.insert(deciders, r.moderator) end
redis.call('HSET', key, 'review_status', 'decided', 'lease_holder', '', 'lease_expires_at', '',
           'decision', r.decision, 'source', 'human', 'human', r.human, 'flagged', r.flagged,
           'appeal_excluded', r.moderator, 'deciders', cjson.encode(deciders), 'appeal_open', '0',
           'updated_at', r.at)
redis.call('XADD', '@audit@' .. r.id, 'MAXLEN', '~', 1000, '*', 'event', 'human_decision', 'status', status,
           'from', status, 'at', r.at, 'data', r.human)
redis.call('HINCRBY', '@metrics_verdicts@', 'human_' .. r.decision, 1)
redis.call('HINCRBY', KEYS[3], r.moderator .. '|' .. r.day, 1)
redis.call('LPUSH', KEYS[4], r.ttd)
redis.call('LTRIM', KEYS[4], 0, 9999)
local cb = redis.call('HGET', key, 'callback_url')
if cb and cb ~= '' then redis.call('ZADD', '@outbox@', r.at, r.id .. '|moderation.human_decision') end
local ext = redis.call('HGET', key, 'external_id')
if ext and ext ~= '' then
  if r.decision == 'block' then redis.call('SADD', r.blocked_key, ext) else redis.call('SREM', r.blocked_key, ext) end
end
queue_sync(r.id, r.at, '')
return {1, r.decision}
"""

_APPEAL = """
local r = cjson.decode(ARGV[1])
local key = '@item@' .. r.id
if redis.call('HGET', key, 'tenant') ~= r.tenant then return {-1, 'not_found'} end
local status = redis.call('HGET', key, 'status')
if status ~= 'done' then return {-2, status} end
local st = redis.call('HGET', key, 'review_status')
if st == 'pending' or st == 'claimed' then return {0, st} end
redis.call('HSET', key, 'appeal', r.appeal, 'appeal_open', '1')
redis.call('XADD', '@audit@' .. r.id, 'MAXLEN', '~', 1000, '*', 'event', 'appeal', 'status', status,
           'from', status, 'at', r.at, 'data', r.appeal)
queue_sync(r.id, r.at, r.score)
return {1, 'pending'}
"""


# Moderators who decided an item (JSON list in the item hash): appeals exclude all of them.
_DECIDERS = """
local function deciders_of(key)
  local raw = redis.call('HGET', key, 'deciders')
  if not raw or raw == '' then return {} end
  return cjson.decode(raw)
end
"""

class ReviewError(Exception):
    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class ReviewStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._sweep = client.register_script(keys.lua(QUEUE_RULE + _SWEEP))
        self._claim = client.register_script(keys.lua(_DECIDERS + _CLAIM))
        self._decide = client.register_script(keys.lua(QUEUE_RULE + _DECIDERS + _DECIDE))
        self._appeal = client.register_script(keys.lua(QUEUE_RULE + _APPEAL))

    def sweep(self, tenant: str) -> int:
        """Return items with expired leases to the queue (called on every read/claim)."""
        return int(self._sweep(keys=[queue_key(tenant), lease_key(tenant)], args=[time.time(), now_s()]))

    def claim(self, tenant: str, item_id: str, moderator: str, name: str, lease_s: float) -> float:
        self.sweep(tenant)
        expires = time.time() + lease_s
        req = {"id": item_id, "tenant": tenant, "moderator": moderator, "name": name, "expires": expires,
               "at": now_s()}
        code, who = self._claim(keys=[queue_key(tenant), lease_key(tenant)], args=[json.dumps(req)])
        code = int(code)
        if code == -1:
            raise ReviewError("review_not_found", f"no review item {item_id!r}", 404)
        if code == 0:
            raise ReviewError("already_claimed", "another moderator holds the lease on this item")
        if code == -2:
            raise ReviewError("not_in_review", f"item is not waiting for review (review status: {who})")
        if code == -3:
            raise ReviewError("appeal_needs_other_moderator",
                              "an appeal must be decided by a different moderator than the original decision", 403)
        return expires

    def decide(self, tenant: str, item_id: str, moderator: str, name: str, action: str,
               categories: list[str], reason: str) -> dict[str, Any]:
        self.sweep(tenant)
        item = decode_item(as_map(self.r.hgetall(keys.item(item_id))))
        now = time.time()
        decision = {"approve": "allow", "remove": "block", "escalate": ""}[action]
        appeal = item.get("appeal")  # decode_item already parsed the JSON field
        human = {"moderator": moderator, "name": name, "action": action, "decision": decision or None,
                 "categories": sorted(categories), "reason": reason, "at": now, "appeal": bool(appeal)}
        created = float(item.get("created_at") or now)
        queued_at = float(appeal["at"]) if appeal else created
        req = {
            "id": item_id, "tenant": tenant, "moderator": moderator, "action": action, "decision": decision,
            "human": json.dumps(human), "flagged": json.dumps(sorted(categories)), "at": now_s(),
            "day": time.strftime("%Y-%m-%d", time.gmtime(now)), "ttd": f"{now - queued_at:.3f}",
            "blocked_key": blocked_key(tenant),
            "escalated_score": item_priority(item, boost=300),
        }
        touched = [queue_key(tenant), lease_key(tenant), keys.review_decisions(tenant), keys.review_ttd(tenant)]
        code, detail = self._decide(keys=touched, args=[json.dumps(req)])
        code = int(code)
        if code == -1:
            raise ReviewError("review_not_found", f"no review item {item_id!r}", 404)
        if code == -2:
            raise ReviewError("lease_required", "claim the item before deciding it")
        if code == -4:
            raise ReviewError("not_in_review", f"item is not waiting for review (review status: {detail})")
        if code == 0:
            raise ReviewError("lease_required", "only the moderator holding the lease may decide this item", 403)
        return human

    def appeal(self, tenant: str, item_id: str, message: str, by: str) -> None:
        now = time.time()
        appeal = {"message": message, "by": by, "at": now}
        item = decode_item(as_map(self.r.hgetall(keys.item(item_id))))
        # Appeals jump ahead of first reviews: a user is waiting on them.
        req = {"id": item_id, "tenant": tenant, "appeal": json.dumps(appeal), "at": now_s(),
               "score": item_priority(item, boost=100)}
        code, detail = self._appeal(keys=[queue_key(tenant)], args=[json.dumps(req)])
        code = int(code)
        if code == -1:
            raise ReviewError("moderation_not_found", f"no moderation with id {item_id!r}", 404)
        if code == -2:
            raise ReviewError("not_appealable", f"only finished moderations can be appealed (status: {detail})")
        if code == 0:
            raise ReviewError("appeal_pending", "this item is already waiting for review")

    def page(self, tenant: str, after: tuple[float, str] | None, limit: int) -> list[tuple[str, float]]:
        """Queue order; `after` = (score, id) of the last item seen. Ties on score are ordered by id, as in
        Redis, so the cursor never skips or repeats an item."""
        self.sweep(tenant)
        key = queue_key(tenant)
        if after is None:
            return as_scored(self.r.zrange(key, 0, limit - 1, withscores=True))
        rank = cast(int | None, self.r.zrank(key, after[1]))
        if rank is not None and float(self.r.zscore(key, after[1]) or 0) == after[0]:
            return as_scored(self.r.zrange(key, int(rank) + 1, int(rank) + limit, withscores=True))
        # The cursor item left the queue (claimed/decided): continue from its score, skipping ties by id.
        out: list[tuple[str, float]] = []
        offset = 0
        while len(out) < limit:
            rows = as_scored(self.r.zrangebyscore(key, repr(after[0]), "+inf", start=offset, num=limit + 256,
                                                  withscores=True))
            if not rows:
                break
            offset += len(rows)
            out += [(i, s) for i, s in rows if (s, i) > (after[0], after[1])]
        return out[:limit]

    def claimed(self, tenant: str) -> list[str]:
        self.sweep(tenant)
        return as_strs(self.r.zrange(lease_key(tenant), 0, -1))

    def stats(self, tenant: str, items: list[Item]) -> dict[str, Any]:
        """`items` = the pending items (the caller loads them); adds decision counts and time-to-decision."""
        now = time.time()
        by_category: dict[str, int] = {}
        buckets = {"lt_1h": 0, "1h_24h": 0, "gt_24h": 0}
        for it in items:
            for c in it.get("flagged") or ["none"]:
                by_category[c] = by_category.get(c, 0) + 1
            age = now - float(it.get("created_at") or now)
            buckets["lt_1h" if age < 3600 else "1h_24h" if age < 86400 else "gt_24h"] += 1
        per_mod: dict[str, dict[str, int]] = {}
        for field, count in as_map(self.r.hgetall(keys.review_decisions(tenant))).items():
            mod, day = field.rsplit("|", 1)
            per_mod.setdefault(mod, {})[day] = int(count)
        ttd = [float(x) for x in as_strs(self.r.lrange(keys.review_ttd(tenant), 0, -1))]
        return {"pending": len(items), "pending_by_category": by_category, "pending_by_age": buckets,
                "claimed": self.r.zcard(lease_key(tenant)), "decisions_per_moderator_per_day": per_mod,
                "median_time_to_decision_s": statistics.median(ttd) if ttd else None, "decided": len(ttd)}
