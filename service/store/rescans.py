"""Owns rescan jobs in Redis: the job record, its target set, exactly-once result counting and progress.

Keys: `mod:rescan:{job}` hash (status, filter, counters), `mod:rescan:{job}:targets` set of item ids planned,
`mod:rescan:{job}:seen` set of item ids whose outcome was counted, `mod:rescans` zset of jobs by time,
`mod:versions:{item}` list of superseded verdicts. Counting and applying a changed verdict happen in one
Lua script guarded by the seen set, so a redelivered chunk (killed worker) never counts an item twice; the same
script records what the item was checked with (`checked_with`) and applies the review-queue rule.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any, cast

import redis

from service.core.domain import Item, Verdict
from service.store import keys
from service.store.blocked import blocked_key
from service.store.client import as_map, as_str, as_strs
from service.store.items import _encode, decode_item, now_s
from service.store.queue_rule import QUEUE_RULE

BUCKETS = ("changed", "unchanged", "failed", "skipped")

# One item's outcome; `_APPLY_MANY` runs it for every item of a batch in one script call (one round trip per
# batch, still one atomic seen-set check per item).
_APPLY_ONE = """
local function apply_one(r)
local job = '@rescan@' .. r.job
if redis.call('SISMEMBER', job .. ':seen', r.id) == 1 then return 0 end
local key = '@item@' .. r.id
local applied = 1
if r.bucket == 'changed' then
  -- The item may have changed while we scored it: a human decided or claimed it, or another rescan wrote
  -- a newer verdict. Then the rescan result is stale: count it unchanged and leave the item alone.
  local src = redis.call('HGET', key, 'source') or ''
  local rs = redis.call('HGET', key, 'review_status') or ''
  local ver = redis.call('HGET', key, 'verdict_version') or ''
  if src == 'human' or rs == 'claimed' or ver ~= r.expect_version then
    r.bucket = 'unchanged'
    r.fields = {}
    r.audit_event = 'rescan_conflict'
    applied = 2
  end
elseif r.check_version == 1 and (redis.call('HGET', key, 'verdict_version') or '') ~= r.expect_version then
  -- An unchanged outcome of a verdict that another rescan replaced meanwhile: nothing of it may be recorded
  -- (its `review_needed` or `checked_with` would describe the old verdict).
  r.fields = {}
end
if r.bucket == 'changed' then
  redis.call('RPUSH', '@versions@' .. r.id, r.old)
  local flat = {}
  for f, v in pairs(r.fields) do table.insert(flat, f); table.insert(flat, v) end
  redis.call('HSET', key, unpack(flat))
  redis.call('HINCRBY', key, 'verdict_version', 1)
  local cb = redis.call('HGET', key, 'callback_url')
  if cb and cb ~= '' then redis.call('ZADD', '@outbox@', r.at, r.id .. '|moderation.rescan_changed') end
  local st = redis.call('HGET', key, 'status')
  redis.call('XADD', '@audit@' .. r.id, 'MAXLEN', '~', 1000, '*', 'event', 'rescan_changed', 'status', st,
             'from', st, 'at', r.at, 'data', r.audit)
  if r.blocked_op ~= '' then
    if r.blocked_op == 'add' then redis.call('SADD', r.blocked_key, r.ext)
    else redis.call('SREM', r.blocked_key, r.ext) end
  end
else
  local flat = {}
  for f, v in pairs(r.fields) do table.insert(flat, f); table.insert(flat, v) end
  if #flat > 0 then redis.call('HSET', key, unpack(flat)) end
  if r.audit_event ~= '' then
    local st = redis.call('HGET', key, 'status')
    redis.call('XADD', '@audit@' .. r.id, 'MAXLEN', '~', 1000, '*', 'event', r.audit_event, 'status', st,
               'from', st, 'at', r.at, 'data', r.audit)
  end
end
-- The queue rule in the same write: a changed verdict (or a changed need for review) moves the item in or out.
queue_sync(r.id, r.at, r.review_score)
redis.call('SADD', job .. ':seen', r.id)
redis.call('HINCRBY', job, r.bucket, 1)
if r.disagree == 1 then redis.call('HINCRBY', job, 'human_disagreements', 1) end
redis.call('HSET', job, 'last_at', r.at)
return applied
end
"""
_APPLY_MANY = """
local out = {}
for i, r in ipairs(cjson.decode(ARGV[1])) do out[i] = apply_one(r) end
return out
"""


class RescanStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._apply = client.register_script(keys.lua(QUEUE_RULE + _APPLY_ONE + _APPLY_MANY))

    def create(self, filters: dict[str, Any], created_by: str) -> str:
        job_id = "rs_" + uuid.uuid4().hex[:16]
        now = time.time()
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.rescan(job_id), mapping={
            "id": job_id, "status": "planning", "filter": json.dumps(filters), "created_by": created_by,
            "created_at": now, "started_at": now, "planned": 0, **dict.fromkeys(BUCKETS, 0)})
        pipe.zadd(keys.RESCANS, {job_id: now})
        pipe.execute()
        return job_id

    def add_targets(self, job_id: str, ids: list[str]) -> None:
        if ids:
            self.r.sadd(keys.rescan_targets(job_id), *ids)

    def mark_planned(self, job_id: str) -> None:
        self.r.hset(keys.rescan(job_id), mapping={"planned": 1})
        self.r.eval("if redis.call('HGET', KEYS[1], 'status') == 'planning' then "
                    "redis.call('HSET', KEYS[1], 'status', 'running') end", 1, keys.rescan(job_id))
        self.maybe_finish(job_id)

    def status(self, job_id: str) -> str | None:
        value = self.r.hget(keys.rescan(job_id), "status")
        return None if value is None else as_str(value)

    def cancel(self, job_id: str) -> bool:
        return bool(self.r.eval(
            "local s = redis.call('HGET', KEYS[1], 'status') "
            "if s == 'planning' or s == 'running' then "
            "redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[1]) return 1 end return 0",
            1, keys.rescan(job_id), time.time()))

    def fail(self, job_id: str, reason: str) -> None:
        """Planning could not finish: stop the job (chunks already sent still count) instead of hanging."""
        self.r.hset(keys.rescan(job_id), mapping={"status": "failed", "error": reason, "finished_at": time.time()})

    def load_chunk(self, job_id: str, ids: Sequence[str]) -> tuple[str | None, list[Item]]:
        """(job status, the items of `ids` that exist and are not counted yet), in one round trip: what a chunk
        needs before each batch. The seen check here only saves work; `apply_many` checks again atomically."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(keys.rescan(job_id), "status")
        for i in ids:
            pipe.hgetall(keys.item(i))
        if ids:
            pipe.smismember(keys.rescan_seen(job_id), list(ids))
        out = pipe.execute()
        status = None if out[0] is None else as_str(out[0])
        seen = out[-1] if ids else []
        items = [decode_item(as_map(raw)) for raw, counted in zip(out[1:1 + len(ids)], seen, strict=True)
                 if raw and not int(counted)]
        return status, items

    def claim_verdicts(self, pairs: Sequence[tuple[str, Verdict]], ttl_s: int) -> list[Verdict]:
        """`ItemStore.claim_verdict` for many keys in one round trip: store each computed verdict unless one
        exists, and return whichever is stored (first writer wins, so equal texts share one verdict)."""
        if not pairs:
            return []
        pipe = self.r.pipeline(transaction=False)
        for key, verdict in pairs:
            pipe.set(key, json.dumps(verdict, ensure_ascii=False, separators=(",", ":")), nx=True, ex=ttl_s)
            pipe.get(key)
        out = pipe.execute()
        return [cast(Verdict, json.loads(stored)) if stored else verdict
                for (_, verdict), stored in zip(pairs, out[1::2], strict=True)]

    @staticmethod
    def request(job_id: str, item_id: str, bucket: str, *, fields: dict[str, Any] | None = None,
                old: dict[str, Any] | None = None, audit_event: str = "", audit: dict[str, Any] | None = None,
                blocked: tuple[str, str, str] | None = None, review_score: float | None = None,
                disagree: bool = False, expect_version: str | None = None) -> dict[str, Any]:
        """One item's outcome for `apply_many` (the arguments of `apply`)."""
        return {"job": job_id, "id": item_id, "bucket": bucket, "fields": _encode(fields or {}),
                "old": json.dumps(old or {}), "audit_event": audit_event, "audit": json.dumps(audit or {}),
                "at": now_s(), "blocked_op": blocked[0] if blocked else "",
                "blocked_key": blocked_key(blocked[1]) if blocked else "", "ext": blocked[2] if blocked else "",
                "review_score": "" if review_score is None else review_score,
                "disagree": 1 if disagree else 0, "expect_version": expect_version or "",
                "check_version": 0 if expect_version is None else 1}

    def apply(self, job_id: str, item_id: str, bucket: str, *, fields: dict[str, Any] | None = None,
              old: dict[str, Any] | None = None, audit_event: str = "", audit: dict[str, Any] | None = None,
              blocked: tuple[str, str, str] | None = None, review_score: float | None = None,
              disagree: bool = False, expect_version: str | None = None) -> bool:
        """Count one item's outcome (and apply a changed verdict) exactly once.

        True only when this call counted the item and, for `changed`, wrote the new verdict; a stale change
        (the item was decided, claimed or re-verdicted meanwhile) is counted `unchanged` and returns False.
        The same script applies the review-queue rule (`fields` carry `review_needed`; `review_score` is the
        queue priority should the item enter), so no rescan leaves a stale or missing queue entry.
        """
        req = self.request(job_id, item_id, bucket, fields=fields, old=old, audit_event=audit_event, audit=audit,
                           blocked=blocked, review_score=review_score, disagree=disagree,
                           expect_version=expect_version)
        return self.apply_many([req]) == [True]

    def apply_many(self, requests: Sequence[dict[str, Any]]) -> list[bool]:
        """`apply` for a batch of `request`s in one script call; one result per request, in order."""
        if not requests:
            return []
        out = self._apply(keys=[keys.SLOT], args=[json.dumps(list(requests))])  # SLOT: cluster routing
        return [int(v) == 1 for v in out]

    def maybe_finish(self, job_id: str) -> bool:
        key = keys.rescan(job_id)
        return bool(self.r.eval(
            "if redis.call('HGET', KEYS[1], 'planned') == '1' and redis.call('HGET', KEYS[1], 'status') == 'running' "
            "and redis.call('SCARD', KEYS[2]) <= redis.call('SCARD', KEYS[3]) then "
            "redis.call('HSET', KEYS[1], 'status', 'done', 'finished_at', ARGV[1]) return 1 end return 0",
            3, key, f"{key}:targets", f"{key}:seen", time.time()))

    def get(self, job_id: str) -> dict[str, Any] | None:
        raw = self.r.hgetall(keys.rescan(job_id))
        if not raw:
            return None
        total = int(self.r.scard(keys.rescan_targets(job_id)))
        counts = {b: int(raw.get(b, 0)) for b in BUCKETS}
        done = sum(counts.values())
        started = float(raw["started_at"])
        end = float(raw.get("finished_at") or time.time())
        rate = done / max(end - started, 1e-6)
        remaining = max(total - done, 0)
        eta = remaining / rate if rate > 0 and raw["status"] in ("running", "planning") else None
        return {"id": job_id, "status": raw["status"], "filter": json.loads(raw["filter"]),
                "created_by": raw.get("created_by"), "planned": raw.get("planned") == "1", "total": total,
                "done": done, **counts, "human_disagreements": int(raw.get("human_disagreements", 0)),
                "started_at": started, "finished_at": float(raw["finished_at"]) if raw.get("finished_at") else None,
                "rate_per_s": round(rate, 2), "eta_s": round(eta, 1) if eta is not None else None}

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        return [j for j in (self.get(i) for i in as_strs(self.r.zrevrange(keys.RESCANS, 0, limit - 1))) if j]

    def versions(self, item_id: str) -> list[dict[str, Any]]:
        return [json.loads(v) for v in self.r.lrange(keys.versions(item_id), 0, -1)]
