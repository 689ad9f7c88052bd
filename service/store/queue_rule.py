"""Owns THE review-queue rule: one Lua fragment prepended to every script that changes a decision or the
review state (first verdicts in store.items, rescans in store.rescans, claims/decisions/appeals/lease expiry in
store.reviews, repair in store.review_repair), so all of them keep queue membership by one definition."""

from __future__ import annotations

# The rule: an item is in its tenant's review queue (`pending`, or `claimed` under a lease) exactly when it is
# `done` and either an appeal is open (`appeal_open`), or its current decision needs review (`review_needed`,
# written with every verdict from the policy that made it) and no human decided it (`source` is not `human`).
# Items written before these fields existed fall back to their recorded review state (see docs/operations.md,
# `queue repair`). A claimed item is never pulled from under its moderator here; the lease sweep applies the
# rule when the lease ends.
QUEUE_RULE = """
local function queue_wanted(key, rs)
  local h = redis.call('HMGET', key, 'status', 'source', 'review_needed', 'appeal_open', 'decision', 'appeal')
  if h[1] ~= 'done' then return false end
  local queued = rs == 'pending' or rs == 'claimed'
  local appeal = h[4] == '1' or ((not h[4]) and h[6] and h[6] ~= '' and queued)
  local needed = h[3] == '1' or ((not h[3]) and (h[5] == 'review' or queued))
  return appeal or (needed and h[2] ~= 'human')
end
local function queue_sync(id, at, score)
  local key = '@item@' .. id
  local tenant = redis.call('HGET', key, 'tenant')
  if not tenant then return 0 end
  local rs = redis.call('HGET', key, 'review_status') or ''
  local want = queue_wanted(key, rs)
  local st = redis.call('HGET', key, 'status')
  if want and rs ~= 'pending' and rs ~= 'claimed' then
    if score == nil or score == '' then score = redis.call('HGET', key, 'review_score') or '0' end
    redis.call('ZADD', '@review@' .. tenant, score, id)
    redis.call('HSET', key, 'review_status', 'pending', 'review_score', score)
    redis.call('XADD', '@audit@' .. id, 'MAXLEN', '~', 1000, '*',
               'event', 'review_queued', 'status', st, 'from', st, 'at', at, 'data', '{}')
    return 1
  end
  if (not want) and rs == 'pending' then
    redis.call('ZREM', '@review@' .. tenant, id)
    redis.call('HSET', key, 'review_status', '')
    redis.call('XADD', '@audit@' .. id, 'MAXLEN', '~', 1000, '*',
               'event', 'review_dequeued', 'status', st, 'from', st, 'at', at,
               'data', cjson.encode({decision = redis.call('HGET', key, 'decision') or ''}))
    return -1
  end
  return 0
end
"""
