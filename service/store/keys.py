"""Owns every Redis key name: the only module where a key is spelled (Python and Lua both read it from here).

All keys share the `mod:` prefix so one Redis can host other apps (Celery's broker uses another DB index).
Lua scripts use `@name@` placeholders that `lua()` fills from `LUA_PREFIXES` when the script is defined.

Redis Cluster (docs/operations.md "Redis Sentinel and Redis Cluster"): with MOD_REDIS_HASH_TAG set, the prefix
becomes `mod:{<tag>}:`, so every key of this deployment hashes to the tag's one slot and every multi-key Lua
script, MULTI and MGET stays inside it. The tag is read from the environment at import because key names are
module constants the scripts are compiled with; Settings.redis_hash_tag declares it and the connection factory
refuses to start when the two disagree. Empty (the default) keeps the plain `mod:` names.
"""

from __future__ import annotations

import os

HASH_TAG = os.environ.get("MOD_REDIS_HASH_TAG", "")
PREFIX = f"mod:{{{HASH_TAG}}}:" if HASH_TAG else "mod:"
# Never written: passed as KEYS[1] to scripts that compute their key names, so a cluster client routes them to
# the tag's slot (without a declared key redis-py's RedisCluster would pick a random node).
SLOT = PREFIX + "slot"

# Items and their side structures.
ITEM = PREFIX + "item:"                 # hash per item
AUDIT = PREFIX + "audit:"               # stream per item
NOTIFY = PREFIX + "notify:"             # short-lived list a ?wait request BLPOPs on (items and hash jobs)
WEBHOOKS = PREFIX + "webhooks:"         # list of delivery attempts per item
VERSIONS = PREFIX + "versions:"         # list of superseded verdicts per item
IDX_TENANT = PREFIX + "idx:tenant:"     # zset of a tenant's items by time
IDX_ALL = PREFIX + "idx:all"            # zset of every item by time
IDX_EXT = PREFIX + "idx:ext:"           # tenant + external id -> item id
IDEM = PREFIX + "idem:"                 # tenant + Idempotency-Key -> item id
VERDICT = PREFIX + "verdict:"           # verdict cache: content hash + model + policy
PENDING = PREFIX + "pending"            # zset of live items (queued/processing) by time
READY_TEXT = PREFIX + "ready:text"      # list of text items waiting, for opportunistic batching
OUTBOX = PREFIX + "outbox"              # zset "item_id|event" -> time the webhook became owed
METRICS_VERDICTS = PREFIX + "metrics:verdicts"
REPLICATION_FENCE = PREFIX + "fence"  # counter a gateway bumps and WAITs on (MOD_REDIS_MIN_REPLICAS_ACK)
REAPER_LOCK = PREFIX + "reaper"        # SET NX EX: one worker per period re-enqueues stale items

# Tenants, keys, policies, lists.
APIKEY = PREFIX + "apikey:"             # hash per API key digest
APIKEYS = PREFIX + "apikeys"            # key_id -> key digest
APIKEYS_REVOKED = PREFIX + "apikeys:revoked"  # key_id -> revoked-at: tombstones, so a revoked id is never re-put
BOOTSTRAPPED = PREFIX + "bootstrapped"  # set once, when a gateway first installed the bootstrap keys here
KEY_AUDIT = PREFIX + "keyaudit"         # stream: who created/revoked which key, rotated which webhook secret
WEBHOOK_PREVIOUS = PREFIX + "whprev:"   # string per tenant: the pre-rotation webhook secret, expires with its grace
TENANT = PREFIX + "tenant:"
POLICY = PREFIX + "policy:"             # per-tenant policy override
POLICY_VERSION = PREFIX + "policy_version:"
BLOCKED = PREFIX + "blocked:"           # set of removed external ids per tenant
HASHLIST = PREFIX + "hl:"               # hash-list keys per tenant (see store.hashlists)
HASHJOB = PREFIX + "hashjob:"           # hash-file job status

# Review queue.
REVIEW = PREFIX + "review:"             # zset of pending ids per tenant
LEASES = PREFIX + "leases:"             # zset id -> lease expiry per tenant
RSTATS = PREFIX + "rstats:"

# Rescans and workers.
RESCAN = PREFIX + "rescan:"
RESCANS = PREFIX + "rescans"
HEARTBEAT = PREFIX + "hb:"

# Companion recommendations (see store.recs): user state shared by every companion process.
RECS = PREFIX + "recs:"
RECS_USERS = RECS + "users"             # set of user ids with ratings
RECS_SEEDED = RECS + "seeded"           # "loading" / "done:<source>": the initial ratings import ran
RECS_ITEMS = RECS + "items"             # hash item id -> JSON of an item added/updated at runtime
RECS_ITEMS_VERSION = RECS + "items_version"  # counter, bumped on every item change
RECS_MODEL = RECS + "model"             # string: the model version every process should serve
RECS_REFIT_LOCK = RECS + "refit_lock"   # one refit at a time across processes (SET NX EX)
RECS_EVENT_USERS = RECS + "event_users"  # set of user ids with events

# Rate limits (see store.ratelimit).
RATELIMIT = PREFIX + "rl:"              # hash per token bucket {tokens, ts}; expires once it would be full

# Operations stats (see store.stats) and the moderator console (see store.sessions).
STATS = PREFIX + "stats:"               # hash per tenant ("*": every tenant), resolution and bucket; expires
CONSOLE_SESSION = PREFIX + "console:session:"  # hash per console session, by SHA-256 of its id; idle TTL
CONSOLE_PREFS = PREFIX + "console:prefs:"      # hash per moderator key id: console preferences


def item(item_id: str) -> str:
    return ITEM + item_id


def audit(item_id: str) -> str:
    return AUDIT + item_id


def notify(item_id: str) -> str:
    return NOTIFY + item_id


def webhooks(item_id: str) -> str:
    return WEBHOOKS + item_id


def versions(item_id: str) -> str:
    return VERSIONS + item_id


def index(tenant: str | None) -> str:
    """A tenant's item index, or every item's when tenant is empty."""
    return IDX_TENANT + tenant if tenant else IDX_ALL


def external(tenant: str, external_id: str) -> str:
    return f"{IDX_EXT}{tenant}:{external_id}"


def idempotency(tenant: str, key: str) -> str:
    return f"{IDEM}{tenant}:{key}"


def verdict(content_hash: str, model_id: str, policy_id: str) -> str:
    return f"{VERDICT}{content_hash}:{model_id}:{policy_id}"


def apikey(digest: str) -> str:
    return APIKEY + digest


def tenant(name: str) -> str:
    return TENANT + name


def webhook_previous(tenant_name: str) -> str:
    return WEBHOOK_PREVIOUS + tenant_name


def policy(tenant_name: str) -> str:
    return POLICY + tenant_name


def policy_version(tenant_name: str) -> str:
    return POLICY_VERSION + tenant_name


def blocked(tenant_name: str) -> str:
    return BLOCKED + tenant_name


def hashlist(tenant_name: str) -> str:
    return HASHLIST + tenant_name


def hashjob(job_id: str) -> str:
    return HASHJOB + job_id


def review(tenant_name: str) -> str:
    return REVIEW + tenant_name


def leases(tenant_name: str) -> str:
    return LEASES + tenant_name


def review_decisions(tenant_name: str) -> str:
    return f"{RSTATS}{tenant_name}:decisions"


def review_ttd(tenant_name: str) -> str:
    return f"{RSTATS}{tenant_name}:ttd"


def rescan(job_id: str) -> str:
    return RESCAN + job_id


def rescan_targets(job_id: str) -> str:
    return f"{RESCAN}{job_id}:targets"


def rescan_seen(job_id: str) -> str:
    return f"{RESCAN}{job_id}:seen"


def heartbeat(hostname: str, pid: int) -> str:
    return f"{HEARTBEAT}{hostname}:{pid}"


def ratelimit(family: str, scope: str, ident: str) -> str:
    """A token bucket: route family (submit, read, ...), scope (key or tenant) and the key id or tenant name."""
    return f"{RATELIMIT}{family}:{scope}:{ident}"


def stats_bucket(tenant_name: str, resolution: str, stamp: str) -> str:
    """Counters of one hour (`h`, stamp YYYYMMDDHH) or day (`d`, YYYYMMDD); tenant `*` sums every tenant."""
    return f"{STATS}{tenant_name}:{resolution}:{stamp}"


def stats_ttd(tenant_name: str, resolution: str, stamp: str) -> str:
    """Time-to-decision samples (seconds) of one bucket, newest first, capped."""
    return f"{STATS}{tenant_name}:{resolution}:{stamp}:ttd"


def console_session(digest: str) -> str:
    return CONSOLE_SESSION + digest


def console_prefs(key_id: str) -> str:
    return CONSOLE_PREFS + key_id


def recs_ratings(user_id: str) -> str:
    """Hash item id -> rating for one user."""
    return f"{RECS}ratings:{user_id}"


def recs_events(user_id: str) -> str:
    """Capped list of one user's raw events (JSON), newest first."""
    return f"{RECS}events:{user_id}"


def recs_implicit(user_id: str) -> str:
    """Hash item id -> summed event weight for one user (the implicit model's confidence)."""
    return f"{RECS}implicit:{user_id}"


def recs_hidden(user_id: str) -> str:
    """Set of item ids the user marked "not interested"."""
    return f"{RECS}hidden:{user_id}"


HEARTBEAT_PATTERN = HEARTBEAT + "*"

LUA_PREFIXES: dict[str, str] = {
    "item": ITEM, "audit": AUDIT, "notify": NOTIFY, "versions": VERSIONS, "idx_tenant": IDX_TENANT,
    "idx_all": IDX_ALL, "pending": PENDING, "ready_text": READY_TEXT, "outbox": OUTBOX,
    "metrics_verdicts": METRICS_VERDICTS, "rescan": RESCAN, "review": REVIEW, "leases": LEASES,
    "ratelimit": RATELIMIT,  # scripts spell a bucket as @ratelimit@<family>:<scope>:<ident>, as ratelimit() does
}


def lua(source: str) -> str:
    """Fill `@name@` key placeholders in a Lua script; an unknown placeholder is a bug, caught at import."""
    out = source
    for name, value in LUA_PREFIXES.items():
        out = out.replace(f"@{name}@", value)
    if "'@" in out or '"@' in out:
        raise ValueError("unfilled key placeholder in Lua script")
    return out
