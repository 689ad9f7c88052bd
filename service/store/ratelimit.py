"""Owns the rate-limit token buckets in Redis (one atomic Lua script) and the queue-depth read for back-pressure.

A bucket is a hash `rl:{family}:{scope}:{ident}` = {tokens, ts}. The script refills every bucket it is given
by `rate x elapsed` (capped at the burst), and takes `cost` tokens from all of them only if every one has
enough: a request refused by the tenant's bucket does not drain the key's, and the reverse. Time is the Redis
server's clock (TIME), so any number of gateways share one consistent view. A bucket expires once it would
have refilled completely, so idle keys and tenants leave nothing behind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from service.store import keys
from service.store.client import as_str, as_strs

# take(keys, cost, params): refill every bucket, then take `cost` tokens from all of them or from none.
# params holds rate and burst for each bucket, in order. Returns {allowed (1|0), tokens of bucket 1, ...}
# (strings: Lua numbers would truncate).
_TAKE_FN = """
local function take(bucket_keys, cost, params)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local tokens = {}
  local allowed = 1
  for i, key in ipairs(bucket_keys) do
    local rate = tonumber(params[2 * i - 1])
    local burst = tonumber(params[2 * i])
    local h = redis.call('HMGET', key, 'tokens', 'ts')
    local tk = tonumber(h[1])
    local ts = tonumber(h[2])
    if tk == nil or ts == nil then
      tk = burst
    else
      tk = math.min(burst, tk + math.max(0, now - ts) * rate)
    end
    tokens[i] = tk
    if tk < cost then allowed = 0 end
  end
  local out = {allowed}
  for i, key in ipairs(bucket_keys) do
    local rate = tonumber(params[2 * i - 1])
    local burst = tonumber(params[2 * i])
    if allowed == 1 then tokens[i] = tokens[i] - cost end
    redis.call('HSET', key, 'tokens', tostring(tokens[i]), 'ts', tostring(now))
    redis.call('PEXPIRE', key, math.ceil((burst - tokens[i]) / rate * 1000) + 1000)
    table.insert(out, tostring(tokens[i]))
  end
  return out
end
"""

# KEYS: the buckets. ARGV: cost, then rate and burst for each bucket, in order.
_TAKE = _TAKE_FN + """
local params = {}
for i = 2, #ARGV do params[i - 1] = ARGV[i] end
return take(KEYS, tonumber(ARGV[1]), params)
"""

# The gateway's hot path in one round trip: look the API key up and, if it is live, take from its key and
# tenant buckets. KEYS[1]: the key's record. ARGV: cost, family, then rate and burst of the key bucket and of
# the tenant bucket (rate or burst 0: that bucket is off). Returns {} for an unknown key, else
# {flat key record, take()'s reply} (take's reply is {1} when both buckets are off).
_AUTH_TAKE = _TAKE_FN + """
local data = redis.call('HGETALL', KEYS[1])
if #data == 0 then return {} end
local rec = {}
for i = 1, #data, 2 do rec[data[i]] = data[i + 1] end
local bucket_keys, params = {}, {}
local idents = {{'key', rec['key_id']}, {'tenant', rec['tenant']}}
for i, pair in ipairs(idents) do
  local rate, burst = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  if rate > 0 and burst > 0 then
    table.insert(bucket_keys, '@ratelimit@' .. ARGV[2] .. ':' .. pair[1] .. ':' .. pair[2])
    table.insert(params, ARGV[2 * i + 1]); table.insert(params, ARGV[2 * i + 2])
  end
end
local taken = {1}
if #bucket_keys > 0 then taken = take(bucket_keys, tonumber(ARGV[1]), params) end
return {data, taken}
"""


@dataclass(frozen=True)
class Bucket:
    family: str
    scope: str  # "key" or "tenant"
    ident: str  # key id or tenant name
    rate: float  # tokens per second
    burst: int

    @property
    def key(self) -> str:
        return keys.ratelimit(self.family, self.scope, self.ident)


@dataclass(frozen=True)
class BucketState:
    bucket: Bucket
    tokens: float  # after this request (unchanged when it was refused)
    cost: int

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.tokens))

    @property
    def reset_s(self) -> float:
        """Seconds until the bucket is full again."""
        return max(0.0, (self.bucket.burst - self.tokens) / self.bucket.rate)

    @property
    def retry_after_s(self) -> float:
        """Seconds until this bucket alone would accept the same request (0 if it would now)."""
        return max(0.0, (self.cost - self.tokens) / self.bucket.rate)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    states: tuple[BucketState, ...]

    @property
    def refused_by(self) -> BucketState | None:
        """The bucket that keeps the request out longest (None when allowed)."""
        if self.allowed:
            return None
        short = [s for s in self.states if s.tokens < s.cost]
        return max(short, key=lambda s: s.retry_after_s) if short else None

    @property
    def tightest(self) -> BucketState | None:
        """The bucket to report in RateLimit-* headers: the refusing one, else the one closest to empty."""
        refused = self.refused_by
        if refused is not None:
            return refused
        return min(self.states, key=lambda s: (s.remaining, -s.reset_s)) if self.states else None


class RateLimitStore:
    def __init__(self, client: redis.Redis, aclient: aioredis.Redis | None = None) -> None:
        self.r = client
        self._take = client.register_script(keys.lua(_TAKE))
        self._auth_take = client.register_script(keys.lua(_AUTH_TAKE))
        # The gateway runs the same script on its asyncio client: no thread-pool hop on every request.
        self._aauth_take = aclient.register_script(keys.lua(_AUTH_TAKE)) if aclient is not None else None

    def take(self, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        """Atomically take `cost` tokens from every bucket, or from none of them."""
        live = [b for b in buckets if b.rate > 0 and b.burst > 0]
        if not live:
            return Decision(True, ())
        args: list[str | int | float] = [cost]
        for b in live:
            args += [b.rate, b.burst]
        reply = self._take(keys=[b.key for b in live], args=args)
        allowed = int(reply[0]) == 1
        return Decision(allowed, tuple(BucketState(b, float(as_str(tk)), cost)
                                       for b, tk in zip(live, reply[1:], strict=True)))


    def authenticate_and_take(self, key_record: str, family: str, rates: Sequence[tuple[float, int]],
                              cost: int = 1) -> tuple[dict[str, str], Decision] | None:
        """One round trip: the API key record at `key_record` and, when it exists, the token take from its key
        and tenant buckets of `family` (`rates`: (rate, burst) of the key bucket, then the tenant bucket).
        None for an unknown or revoked key (no bucket is touched)."""
        reply = self._auth_take(keys=[key_record], args=_auth_take_args(family, rates, cost))
        return _auth_take_result(reply, family, rates, cost)

    async def aauthenticate_and_take(self, key_record: str, family: str, rates: Sequence[tuple[float, int]],
                                     cost: int = 1) -> tuple[dict[str, str], Decision] | None:
        """authenticate_and_take on the asyncio client given at construction."""
        if self._aauth_take is None:
            raise RuntimeError("RateLimitStore was built without an asyncio client")
        reply = await self._aauth_take(keys=[key_record], args=_auth_take_args(family, rates, cost))
        return _auth_take_result(reply, family, rates, cost)


def _auth_take_args(family: str, rates: Sequence[tuple[float, int]], cost: int) -> list[str | int | float]:
    args: list[str | int | float] = [cost, family]
    for rate, burst in rates:
        args += [rate, burst]
    return args


def _auth_take_result(reply: Any, family: str, rates: Sequence[tuple[float, int]],
                      cost: int) -> tuple[dict[str, str], Decision] | None:
    if not reply:
        return None
    flat, taken = as_strs(reply[0]), reply[1]
    record = dict(zip(flat[0::2], flat[1::2], strict=True))
    idents = (("key", record["key_id"]), ("tenant", record["tenant"]))
    live = [Bucket(family, scope, ident, float(rate), int(burst))
            for (scope, ident), (rate, burst) in zip(idents, rates, strict=True) if rate > 0 and burst > 0]
    return record, Decision(int(taken[0]) == 1, tuple(BucketState(b, float(as_str(tk)), cost)
                                                      for b, tk in zip(live, taken[1:], strict=True)))


def pending_depth(client: redis.Redis) -> int:
    """Items queued or processing (the `pending` zset every create adds to and every final transition trims)."""
    return int(client.zcard(keys.PENDING))  # type: ignore[arg-type]
