"""Owns the operations time series in Redis: hour and day buckets of counters per tenant, with bounded retention.

Keys (spelled in keys.py): `mod:stats:{t}:{h|d}:{stamp}` hash of counters and `…:ttd` a capped list of
time-to-decision samples; `t` is a tenant, or `*` for the sum over every tenant (superadmins' view). Every
write re-arms the bucket's EXPIREAT (hour buckets live 8 days, day buckets 400 days), so nothing ever needs
cleaning up and memory stays bounded by tenants x buckets. Counter fields:

  sub|{kind}                       submissions accepted (gateway hook, by creation time)
  v|{kind}|{decision}              verdicts written (worker hook, service.store.stats.StatsStore.record_verdicts)
  cat|{kind}|{category}            verdicts that flagged the category
  rq|{kind}                        verdicts that sent the item to human review
  model|{name@version}, policy|{id}  what produced the verdicts
  hd|{moderator key id}|{action}   human decisions (approve, remove, escalate)
  ap|opened, ap|decided, ap|overturned  appeals and how many were overturned
  q|max                            the deepest the tenant's review queue was when an item entered or left it

The readers (`series`, `queue_snapshot`) only read; the gateway's stats routes shape them into the JSON API.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from service.core.domain import Item, Verdict
from service.store import keys
from service.store.client import as_map, as_scored, as_strs

log = logging.getLogger(__name__)

ALL = "*"  # not a valid tenant name (TENANT_PATTERN), so it can never collide with one
TTD_CAP = 2000  # samples kept per bucket for its median time-to-decision


@dataclass(frozen=True)
class Resolution:
    code: str
    seconds: int
    retention: int  # buckets kept
    fmt: str

    def start(self, at: float) -> int:
        return int(at // self.seconds * self.seconds)

    def stamp(self, at: float) -> str:
        return time.strftime(self.fmt, time.gmtime(at))

    def expire_at(self, at: float) -> int:
        return self.start(at) + (self.retention + 1) * self.seconds


RESOLUTIONS = {
    "hour": Resolution("h", 3600, 8 * 24, "%Y%m%d%H"),
    "day": Resolution("d", 86400, 400, "%Y%m%d"),
}

# Keep the deepest queue seen in each bucket: KEYS[1] the review queue, KEYS[2..] buckets, ARGV their expiry.
_QUEUE_MAX = """
local depth = redis.call('ZCARD', KEYS[1])
for i = 2, #KEYS do
  local cur = tonumber(redis.call('HGET', KEYS[i], 'q|max') or '-1')
  if depth > cur then redis.call('HSET', KEYS[i], 'q|max', depth) end
  redis.call('EXPIREAT', KEYS[i], ARGV[i - 1])
end
return depth
"""

QUEUE_FIELDS = ("kind", "flagged", "created_at", "appeal", "escalated", "appeal_excluded", "deciders", "priority")


def original_decision(events: Iterable[dict[str, Any]]) -> str | None:
    """The decision an appeal contests: the last model or human decision before the latest `appeal` event."""
    last: str | None = None
    original: str | None = None
    for event in events:
        data = event.get("data") or {}
        if event.get("event") in ("verdict", "human_decision", "rescan_changed") and data.get("decision"):
            last = str(data["decision"])
        elif event.get("event") == "appeal":
            original = last
    return original


def submission_counters(tenant: str, kinds: Iterable[str], at: float) -> list[dict[str, Any]]:
    """The bucket increments that creating items of these kinds owes, for ItemStore.create to apply inside its
    own script: counting in the create call costs no extra round trip on the submission hot path, and an
    idempotent replay (which creates nothing) counts nothing."""
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[f"sub|{kind}"] = counts.get(f"sub|{kind}", 0) + 1
    hour = float(RESOLUTIONS["hour"].start(at))
    return [{"key": keys.stats_bucket(scope, res.code, res.stamp(hour)), "exp": res.expire_at(hour), "counts": counts}
            for scope in (tenant, ALL) for res in RESOLUTIONS.values()]


class StatsStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._queue_max = client.register_script(_QUEUE_MAX)

    # ---- writers --------------------------------------------------------------------------------------
    def _bump(self, pipe: Any, tenant: str, at: float, counts: dict[str, int]) -> None:
        for scope in (tenant, ALL):
            for res in RESOLUTIONS.values():
                key = keys.stats_bucket(scope, res.code, res.stamp(at))
                for name, n in counts.items():
                    if n:
                        pipe.hincrby(key, name, n)
                pipe.expireat(key, res.expire_at(at))

    def _queue_depth(self, tenant: str, at: float) -> None:
        buckets = [keys.stats_bucket(tenant, res.code, res.stamp(at)) for res in RESOLUTIONS.values()]
        expiry = [res.expire_at(at) for res in RESOLUTIONS.values()]
        self._queue_max(keys=[keys.review(tenant), *buckets], args=expiry)

    def record_submissions(self, item_ids: Sequence[str], since: float) -> int:
        """Count items created at or after `since` (an idempotent replay returns older ids: not counted again)."""
        if not item_ids:
            return 0
        pipe = self.r.pipeline(transaction=False)
        for item_id in item_ids:
            pipe.hmget(keys.item(item_id), ["tenant", "kind", "created_at"])
        per: dict[tuple[str, float], dict[str, int]] = {}
        for tenant, kind, created in pipe.execute():
            if tenant and kind and created and float(created) >= since - 0.001:
                hour = float(RESOLUTIONS["hour"].start(float(created)))
                counts = per.setdefault((tenant, hour), {})
                counts[f"sub|{kind}"] = counts.get(f"sub|{kind}", 0) + 1
        pipe = self.r.pipeline(transaction=False)
        for (tenant, hour), counts in per.items():
            self._bump(pipe, tenant, hour, counts)
        pipe.execute()
        return sum(sum(c.values()) for c in per.values())

    def record_verdicts(self, written: Sequence[tuple[Item, Verdict, bool]]) -> None:
        """Count verdicts just written: (item, verdict, sent to review). Pass only the transitions that won, so a
        redelivered task counts nothing twice. Best effort: a Redis error is logged, never raised, because the
        verdict is already stored and its webhook must still go out."""
        try:
            self._record_verdicts(written)
        except redis.RedisError as exc:
            log.warning("could not record verdict stats: %s", exc)

    def _record_verdicts(self, written: Sequence[tuple[Item, Verdict, bool]]) -> None:
        if not written:
            return
        now = time.time()
        per: dict[str, dict[str, int]] = {}
        queued: set[str] = set()
        for item, verdict, to_review in written:
            kind, decision = item["kind"], verdict["decision"]
            counts = per.setdefault(item["tenant"], {})
            fields = [f"v|{kind}|{decision}", *(f"cat|{kind}|{c}" for c in verdict.get("flagged") or []),
                      *(f"model|{m.get('name')}@{m.get('version')}" for m in verdict.get("models") or []),
                      f"policy|{verdict.get('policy_version') or 'unknown'}"]
            if to_review:
                fields.append(f"rq|{kind}")
                queued.add(item["tenant"])
            for name in fields:
                counts[name] = counts.get(name, 0) + 1
        pipe = self.r.pipeline(transaction=False)
        for tenant, counts in per.items():
            self._bump(pipe, tenant, now, counts)
        pipe.execute()
        for tenant in queued:
            self._queue_depth(tenant, now)

    def record_human(self, tenant: str, human: dict[str, Any], queued_at: float | None,
                     original: str | None) -> None:
        """One human decision; `original` is the contested decision when it decided an appeal."""
        at = float(human.get("at") or time.time())
        action = str(human.get("action") or "")
        counts = {f"hd|{human.get('moderator')}|{action}": 1}
        decided_appeal = bool(human.get("appeal")) and action in ("approve", "remove")
        if decided_appeal:
            counts["ap|decided"] = 1
            counts["ap|overturned"] = int(original is not None and original != human.get("decision"))
        pipe = self.r.pipeline(transaction=False)
        self._bump(pipe, tenant, at, counts)
        if queued_at is not None and action != "escalate":
            for scope in (tenant, ALL):
                for res in RESOLUTIONS.values():
                    key = keys.stats_ttd(scope, res.code, res.stamp(at))
                    pipe.lpush(key, f"{max(0.0, at - queued_at):.3f}")
                    pipe.ltrim(key, 0, TTD_CAP - 1)
                    pipe.expireat(key, res.expire_at(at))
        pipe.execute()
        self._queue_depth(tenant, at)

    def record_appeal(self, item_id: str) -> None:
        tenant = self.r.hget(keys.item(item_id), "tenant")
        if tenant:
            pipe = self.r.pipeline(transaction=False)
            self._bump(pipe, str(tenant), time.time(), {"ap|opened": 1})
            pipe.execute()
            self._queue_depth(str(tenant), time.time())

    # ---- readers --------------------------------------------------------------------------------------
    def series(self, tenant: str, resolution: str, buckets: int,
               now: float | None = None) -> list[tuple[int, dict[str, int], list[float]]]:
        """The last `buckets` buckets, oldest first: (bucket start, counters, time-to-decision samples)."""
        res = RESOLUTIONS[resolution]
        last = res.start(time.time() if now is None else now)
        starts = [last - i * res.seconds for i in range(min(buckets, res.retention) - 1, -1, -1)]
        pipe = self.r.pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(keys.stats_bucket(tenant, res.code, res.stamp(start)))
            pipe.lrange(keys.stats_ttd(tenant, res.code, res.stamp(start)), 0, -1)
        raw = pipe.execute()
        out = []
        for i, start in enumerate(starts):
            counts = {k: int(v) for k, v in as_map(raw[2 * i]).items()}
            out.append((start, counts, [float(x) for x in as_strs(raw[2 * i + 1])]))
        return out

    def queue_snapshot(self, tenant: str, limit: int = 20_000) -> tuple[list[dict[str, Any]], int, bool]:
        """(pending items in queue order with the few fields counts need, how many are claimed, truncated)."""
        rows = as_scored(self.r.zrange(keys.review(tenant), 0, limit, withscores=True))
        truncated = len(rows) > limit
        rows = rows[:limit]
        pipe = self.r.pipeline(transaction=False)
        for item_id, _ in rows:
            pipe.hmget(keys.item(item_id), list(QUEUE_FIELDS))
        pipe.zcard(keys.leases(tenant))
        *values, claimed = pipe.execute()
        out = []
        for (item_id, score), vals in zip(rows, values, strict=True):
            rec: dict[str, Any] = {"id": item_id, "score": score, **dict(zip(QUEUE_FIELDS, vals, strict=True))}
            rec["created_at"] = float(rec["created_at"] or 0)
            rec["deciders"] = json.loads(rec["deciders"]) if rec["deciders"] else []
            out.append(rec)
        return out, int(claimed), truncated
