"""Owns the companion's recommendation state in Redis: ratings, events, "not interested", runtime items, model version.

Every companion process reads a user's state here per request (one pipelined round trip), so processes share it
and it survives restarts (Redis persistence). Values are plain strings/JSON: no model code here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from service.store import keys

EVENTS_KEPT = 1000  # raw events kept per user (aggregated weights are kept whole)


def rating_times_key(user_id: str) -> str:
    """Hash item id -> unix time of the user's rating (the "popular when you were active" reference times).
    Derived from the ratings key so it lives, and is named, next to it."""
    return keys.recs_ratings(user_id) + ":at"


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass
class UserState:
    ratings: dict[str, float] = field(default_factory=dict)
    events: dict[str, float] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    model_version: str | None = None
    items_version: int = 0
    rating_times: dict[str, float] = field(default_factory=dict)


class RecsStore:
    """Thin typed wrapper; callers map redis.RedisError to their own "store unavailable" error."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    # ---- per request -----------------------------------------------------------------------------------
    def user_state(self, user_id: str) -> UserState:
        p = self.r.pipeline(transaction=False)
        p.hgetall(keys.recs_ratings(user_id))
        p.hgetall(keys.recs_implicit(user_id))
        p.smembers(keys.recs_hidden(user_id))
        p.get(keys.RECS_MODEL)
        p.get(keys.RECS_ITEMS_VERSION)
        p.hgetall(rating_times_key(user_id))
        ratings, events, hidden, model, items_v, times = p.execute()
        return UserState({_s(k): float(v) for k, v in ratings.items()}, {_s(k): float(v) for k, v in events.items()},
                         {_s(x) for x in hidden}, _s(model) if model else None, int(items_v or 0),
                         {_s(k): float(v) for k, v in times.items()})

    def versions(self) -> tuple[str | None, int]:
        """(published model version, items version) in one round trip."""
        model, items_v = self.r.mget([keys.RECS_MODEL, keys.RECS_ITEMS_VERSION])
        return (_s(model) if model else None), int(items_v or 0)

    # ---- ratings -------------------------------------------------------------------------------------
    def set_ratings(self, user_id: str, ratings: dict[str, float], at: float | None = None) -> int:
        """Add/replace ratings, stamped `at` (default now); returns how many the user now has."""
        stamp = repr(float(time.time() if at is None else at))
        p = self.r.pipeline(transaction=True)
        p.hset(keys.recs_ratings(user_id), mapping={k: repr(float(v)) for k, v in ratings.items()})
        p.hset(rating_times_key(user_id), mapping=dict.fromkeys(ratings, stamp))
        p.sadd(keys.RECS_USERS, user_id)
        p.hlen(keys.recs_ratings(user_id))
        return int(p.execute()[-1])

    def delete_rating(self, user_id: str, item_id: str) -> bool:
        p = self.r.pipeline(transaction=True)
        p.hdel(keys.recs_ratings(user_id), item_id)
        p.hlen(keys.recs_ratings(user_id))
        p.hdel(rating_times_key(user_id), item_id)
        removed, left, _ = p.execute()
        if not left:
            self.r.srem(keys.RECS_USERS, user_id)
        return bool(removed)

    def all_ratings(self, batch: int = 500) -> list[tuple[str, str, float]]:
        """Every stored rating (for a refit), read in pipelined batches of users."""
        return [(u, i, r) for u, i, r, _ in self.all_ratings_timed(batch)]

    def all_ratings_timed(self, batch: int = 500) -> list[tuple[str, str, float, float]]:
        """Every stored rating with its time (NaN when none was stored), for a refit."""
        users = sorted(_s(u) for u in self.r.smembers(keys.RECS_USERS))
        out: list[tuple[str, str, float, float]] = []
        for a in range(0, len(users), batch):
            chunk = users[a:a + batch]
            p = self.r.pipeline(transaction=False)
            for u in chunk:
                p.hgetall(keys.recs_ratings(u))
                p.hgetall(rating_times_key(u))
            res = p.execute()
            for k, u in enumerate(chunk):
                times = {_s(i): float(t) for i, t in res[2 * k + 1].items()}
                out.extend((u, _s(i), float(v), times.get(_s(i), float("nan"))) for i, v in res[2 * k].items())
        return out

    def seed_ratings(self, triples: Iterable[tuple[str, str, float]], source: str, wait_s: float = 60.0,
                     times: Iterable[float] | None = None) -> bool:
        """Import the initial ratings (and their times, parallel to triples) once per Redis (first process wins;
        others wait for it). True if we did."""
        if not self.r.set(keys.RECS_SEEDED, "loading", nx=True, ex=600):
            end = time.monotonic() + wait_s
            while _s(self.r.get(keys.RECS_SEEDED) or b"loading") == "loading" and time.monotonic() < end:
                time.sleep(0.1)
            return False
        by_user: dict[str, dict[str, str]] = {}
        at_user: dict[str, dict[str, str]] = {}
        stamps = iter(times) if times is not None else None
        for u, i, r in triples:
            by_user.setdefault(u, {})[i] = repr(float(r))
            if stamps is not None:
                at_user.setdefault(u, {})[i] = repr(float(next(stamps)))
        users = list(by_user)
        for a in range(0, len(users), 500):
            p = self.r.pipeline(transaction=False)
            for u in users[a:a + 500]:
                p.hset(keys.recs_ratings(u), mapping=cast(Any, by_user[u]))
                if u in at_user:
                    p.hset(rating_times_key(u), mapping=cast(Any, at_user[u]))
            p.sadd(keys.RECS_USERS, *users[a:a + 500])
            p.execute()
        self.r.set(keys.RECS_SEEDED, f"done:{source}")
        return True

    # ---- events and "not interested" -------------------------------------------------------------------
    def add_events(self, user_id: str, events: list[dict[str, Any]], weights: dict[str, float]) -> None:
        """Append raw events (capped list) and add each event's weight to the user's item confidence."""
        p = self.r.pipeline(transaction=True)
        for e in events:
            p.lpush(keys.recs_events(user_id), json.dumps(e, sort_keys=True))
        p.ltrim(keys.recs_events(user_id), 0, EVENTS_KEPT - 1)
        for item_id, w in weights.items():
            p.hincrbyfloat(keys.recs_implicit(user_id), item_id, w)
        p.sadd(keys.RECS_EVENT_USERS, user_id)
        p.execute()

    def recent_events(self, user_id: str, n: int = 50) -> list[dict[str, Any]]:
        return [json.loads(_s(x)) for x in self.r.lrange(keys.recs_events(user_id), 0, n - 1)]

    def all_event_weights(self, batch: int = 500) -> list[tuple[str, str, float]]:
        users = sorted(_s(u) for u in self.r.smembers(keys.RECS_EVENT_USERS))
        out: list[tuple[str, str, float]] = []
        for a in range(0, len(users), batch):
            chunk = users[a:a + batch]
            p = self.r.pipeline(transaction=False)
            for u in chunk:
                p.hgetall(keys.recs_implicit(u))
            for u, h in zip(chunk, p.execute(), strict=True):
                out.extend((u, _s(i), float(v)) for i, v in h.items())
        return out

    def hide(self, user_id: str, item_id: str) -> None:
        self.r.sadd(keys.recs_hidden(user_id), item_id)

    def unhide(self, user_id: str, item_id: str) -> bool:
        return bool(self.r.srem(keys.recs_hidden(user_id), item_id))

    # ---- runtime catalogue ---------------------------------------------------------------------------
    def put_item(self, item_id: str, fields: dict[str, Any]) -> int:
        """Add or replace a runtime item; returns the new items version."""
        p = self.r.pipeline(transaction=True)
        p.hset(keys.RECS_ITEMS, item_id, json.dumps(fields, sort_keys=True))
        p.incr(keys.RECS_ITEMS_VERSION)
        return int(p.execute()[-1])

    def touch_items(self) -> int:
        """New items version without a catalogue change: ratings of a runtime item changed, so every process
        rebuilds its catalogue (and the item's folded-in factors) on its next request."""
        return int(self.r.incr(keys.RECS_ITEMS_VERSION))

    def items(self) -> dict[str, dict[str, Any]]:
        return {_s(k): json.loads(_s(v)) for k, v in self.r.hgetall(keys.RECS_ITEMS).items()}

    # ---- model version -----------------------------------------------------------------------------
    def publish_model(self, version: str) -> None:
        self.r.set(keys.RECS_MODEL, version)

    def refit_lock(self, ttl_s: int) -> bool:
        return bool(self.r.set(keys.RECS_REFIT_LOCK, str(time.time()), nx=True, ex=ttl_s))

    def refit_unlock(self) -> None:
        self.r.delete(keys.RECS_REFIT_LOCK)
