"""Owns the operator's review-queue repair (`python -m service.cli queue repair`): rebuilds each tenant's queue and
lease sets from the items, by the same QUEUE_RULE every state change applies, and drops orphaned entries.

Split from service/store/reviews.py (the moderators' claim/decide/appeal workflow): repair only reads the queue
layout and priority order from there and runs rarely, by hand, after a bug or a restore left the sets out of step.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from service.core.domain import Item
from service.store import keys
from service.store.client import as_map, as_str, as_strs
from service.store.items import decode_item, now_s
from service.store.queue_rule import QUEUE_RULE
from service.store.reviews import item_priority, lease_key, queue_key

# Rebuilds one item's queue membership from the item (QUEUE_RULE); `dry` reports without writing. With
# `orphans_only`, only a queue entry whose item is gone or belongs to another tenant is handled.
_REPAIR = """
local r = cjson.decode(ARGV[1])
local key = '@item@' .. r.id
local tenant = redis.call('HGET', key, 'tenant')
local t = r.tenant
if t == '' then t = tenant end
if not t then return '' end
local qkey, lkey = '@review@' .. t, '@leases@' .. t
local inq = redis.call('ZSCORE', qkey, r.id)
local leased = redis.call('ZSCORE', lkey, r.id)
if tenant ~= t then
  if not (inq or leased) then return '' end
  if r.dry == 0 then redis.call('ZREM', qkey, r.id); redis.call('ZREM', lkey, r.id) end
  return 'drop_orphan'
end
if r.orphans_only == 1 then return '' end
local rs = redis.call('HGET', key, 'review_status') or ''
local action = ''
if queue_wanted(key, rs) then
  if rs == 'claimed' and leased then
    if inq then action = 'unqueue_leased' end
  elseif not (rs == 'pending' and inq and not leased) then
    action = 'enqueue'
  end
elseif inq or leased or rs == 'pending' or rs == 'claimed' then
  action = 'dequeue'
end
if action == '' or r.dry == 1 then return action end
local st = redis.call('HGET', key, 'status') or ''
if action == 'unqueue_leased' then
  redis.call('ZREM', qkey, r.id)
elseif action == 'enqueue' then
  local score = redis.call('HGET', key, 'review_score')
  if not score or score == '' then score = r.score end
  redis.call('ZREM', lkey, r.id)
  redis.call('ZADD', qkey, score, r.id)
  redis.call('HSET', key, 'review_status', 'pending', 'review_score', score, 'lease_holder', '',
             'lease_expires_at', '')
else
  redis.call('ZREM', qkey, r.id)
  redis.call('ZREM', lkey, r.id)
  if rs == 'pending' or rs == 'claimed' then
    redis.call('HSET', key, 'review_status', '', 'lease_holder', '', 'lease_expires_at', '')
  end
end
redis.call('XADD', '@audit@' .. r.id, 'MAXLEN', '~', 1000, '*', 'event', 'review_repaired', 'status', st,
           'from', st, 'at', r.at, 'data', cjson.encode({action = action, review_status = rs}))
return action
"""


class ReviewRepair:
    """Queue repair over one Redis (or cluster) client; each item is fixed by one script call, pipelined."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._repair = client.register_script(keys.lua(QUEUE_RULE + _REPAIR))

    def repair(self, tenant: str | None, dry_run: bool = False, page: int = 500) -> list[dict[str, Any]]:
        """Rebuild review-queue membership from the items (every tenant's, or one's); returns what (would have)
        changed: `enqueue`, `dequeue`, `unqueue_leased` (queued and leased at once) or `drop_orphan` (a queue
        entry whose item is gone or belongs to another tenant)."""
        changes: list[dict[str, Any]] = []
        index = keys.index(tenant)
        offset = 0
        while True:
            ids = as_strs(self.r.zrange(index, offset, offset + page - 1))
            if not ids:
                break
            offset += len(ids)
            items = [decode_item(as_map(raw)) if raw else None for raw in self._raw(ids)]
            changes += self._repair_many([(i, "", it) for i, it in zip(ids, items, strict=True)], dry_run, False)
        prefix = keys.review("")
        lease_prefix = keys.leases("")
        if tenant:
            tenants = [tenant]
        else:
            found = {as_str(k)[len(prefix):] for k in self.r.scan_iter(match=prefix + "*", count=1000)}
            found |= {as_str(k)[len(lease_prefix):] for k in self.r.scan_iter(match=lease_prefix + "*", count=1000)}
            tenants = sorted(found)
        for t in tenants:
            members = {*as_strs(self.r.zrange(queue_key(t), 0, -1)), *as_strs(self.r.zrange(lease_key(t), 0, -1))}
            changes += self._repair_many([(i, t, None) for i in sorted(members)], dry_run, True)
        return changes

    def _raw(self, ids: list[str]) -> list[Any]:
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(keys.item(i))
        return list(pipe.execute())

    def _repair_many(self, rows: list[tuple[str, str, Item | None]], dry_run: bool,
                     orphans_only: bool) -> list[dict[str, Any]]:
        pipe = self.r.pipeline(transaction=False)
        for item_id, t, item in rows:
            req = {"id": item_id, "tenant": t, "at": now_s(), "dry": 1 if dry_run else 0,
                   "orphans_only": 1 if orphans_only else 0, "score": item_priority(item) if item else 0}
            self._repair(keys=[keys.SLOT], args=[json.dumps(req)], client=pipe)  # SLOT: cluster routing
        out = []
        for (item_id, t, item), action in zip(rows, pipe.execute(), strict=True):
            if action:
                out.append({"id": item_id, "tenant": t or (item or {}).get("tenant"), "action": as_str(action),
                            "decision": (item or {}).get("decision"),
                            "review_status": (item or {}).get("review_status"), "dry_run": dry_run})
        return out
