"""Owns moderator-console sessions and per-moderator console preferences in Redis.

A session is what an API key is exchanged for at sign-in: a random 256-bit id (only ever in an HttpOnly cookie)
and a CSRF token (only ever in the page's memory). Redis never stores the session id: the record lives at
`mod:console:session:{sha256(id)}`, so a Redis dump yields no usable session. The record holds the key id it
was made from (re-checked on every request by the caller, so revoking the key ends its sessions), the CSRF
token (useless without the cookie; a reloaded page fetches it again), and when it was created and last used.
Redis's TTL is the idle timeout (re-armed on each use); the absolute lifetime is checked against `created_at`.
Preferences live in `mod:console:prefs:{key id}`, a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis

from service.store import keys
from service.store.client import as_map

PREF_DEFAULTS: dict[str, str] = {"blur_media": "1"}


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    key_id: str
    csrf: str
    created_at: float
    last_seen: float
    idle_s: float
    max_s: float

    @property
    def expires_at(self) -> float:
        """When the session ends if unused (idle timeout), never past its absolute lifetime."""
        return min(self.last_seen + self.idle_s, self.created_at + self.max_s)

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest((token or "").encode(), self.csrf.encode())


class SessionStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def create(self, key_id: str, idle_s: float, max_s: float) -> tuple[str, Session]:
        """A new session for `key_id`: returns (session id, record); the id is shown only here."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time()
        session = Session(key_id, csrf, now, now, idle_s, max_s)
        key = keys.console_session(_digest(sid))
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, mapping={"key_id": key_id, "csrf": csrf, "created_at": f"{now:.3f}",
                                "last_seen": f"{now:.3f}", "idle_s": f"{idle_s:g}", "max_s": f"{max_s:g}"})
        pipe.expire(key, max(1, int(idle_s)))
        pipe.execute()
        return sid, session

    def touch(self, sid: str, active: bool = True) -> Session | None:
        """The live session for this id; None when unknown, idle too long or too old. `active` (a person did
        something, not a background poll) marks it used now, which restarts the idle timeout."""
        if not sid or len(sid) > 128:
            return None
        key = keys.console_session(_digest(sid))
        raw = as_map(self.r.hgetall(key))
        if not raw:
            return None
        session = Session(raw["key_id"], raw["csrf"], float(raw["created_at"]), float(raw["last_seen"]),
                          float(raw["idle_s"]), float(raw["max_s"]))
        now = time.time()
        if now >= session.expires_at:
            self.r.delete(key)
            return None
        if not active:
            return session
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(key, "last_seen", f"{now:.3f}")
        pipe.expire(key, max(1, int(min(session.idle_s, session.created_at + session.max_s - now)) + 1))
        pipe.execute()
        return Session(session.key_id, session.csrf, session.created_at, now, session.idle_s, session.max_s)

    def delete(self, sid: str) -> None:
        if sid and len(sid) <= 128:
            self.r.delete(keys.console_session(_digest(sid)))

    def backdate(self, sid: str, seconds: float) -> None:
        """Pretend the session was last used `seconds` earlier (tests of the idle timeout, without waiting)."""
        key = keys.console_session(_digest(sid))
        last = self.r.hget(key, "last_seen")
        if last is not None:
            self.r.hset(key, "last_seen", f"{float(last) - seconds:.3f}")

    # ---- preferences ------------------------------------------------------------------------------------
    def prefs(self, key_id: str) -> dict[str, str]:
        return {**PREF_DEFAULTS, **as_map(self.r.hgetall(keys.console_prefs(key_id)))}

    def set_prefs(self, key_id: str, values: dict[str, str]) -> dict[str, str]:
        known: dict[Any, Any] = {k: v for k, v in values.items() if k in PREF_DEFAULTS}
        if known:
            self.r.hset(keys.console_prefs(key_id), mapping=known)
        return self.prefs(key_id)
