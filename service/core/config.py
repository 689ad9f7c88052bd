"""One Settings object for gateway, workers and companion: read once from env (prefix MOD_) and `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.media_settings import MediaSettings
from service.core.config_companion import CompanionSettings

ROOT = Path(__file__).resolve().parents[2]
# Placeholder secrets are fine on a laptop and refused anywhere else (see _refuse_placeholders).
PLACEHOLDER_SECRETS = {"dev-admin-key", "dev-platform-key", "dev-moderator-key", "changeme"}


class Settings(BaseSettings):
    """Every tunable of the service. Nested sections use `__`, e.g. MOD_MEDIA__MAX_IMAGE_BYTES."""

    model_config = SettingsConfigDict(
        env_prefix="MOD_", env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    env: Literal["dev", "test", "prod"] = "dev"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Broker defaults to the same Redis; a separate DB index keeps Celery's keys out of the verdict store.
    broker_url: str | None = None
    redis_socket_timeout_s: float = 5.0
    # ---- High availability (docs/operations.md "Redis Sentinel and Redis Cluster") ----
    # With `redis_sentinels` ("host:port" list) set, every connection (store, gateway, Celery broker and the
    # verdict paths) asks the sentinels for the current primary of `redis_sentinel_master`; `redis_url` and
    # `broker_url` then only give the DB index. `redis_password` is the data nodes' password (AUTH),
    # `redis_sentinel_password` the sentinels' own (`requirepass` in sentinel.conf), when they have one.
    redis_sentinels: list[str] = Field(default_factory=list)
    redis_sentinel_master: str = "mymaster"
    redis_password: SecretStr | None = None
    redis_sentinel_password: SecretStr | None = None
    # A submission is answered 2xx only once this many replicas hold it (Redis WAIT, up to the timeout), so an
    # acknowledged item survives a failover; a shortfall answers 503 `store_not_durable` and the client retries
    # with its Idempotency-Key. 0 (the default, and right for a Redis without replicas) skips the wait.
    redis_min_replicas_ack: int = Field(default=0, ge=0)
    redis_replica_ack_timeout_ms: int = Field(default=500, ge=1)
    # The key hash tag (service/store/keys.py) is read from the environment when keys.py is imported; it is
    # declared here so it is documented and validated: set MOD_REDIS_HASH_TAG in the environment, not in .env.
    redis_hash_tag: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    # The store is a Redis Cluster (`redis_url`: any node); needs redis_hash_tag and a broker_url (or sentinels)
    # outside the cluster, since Celery cannot use one.
    redis_cluster: bool = False
    data_dir: Path = ROOT / "var"

    # API keys created at gateway start so a fresh install is usable; placeholders only allowed in dev/test.
    bootstrap_admin_key: SecretStr = SecretStr("dev-admin-key")
    bootstrap_platform_key: SecretStr | None = SecretStr("dev-platform-key")
    bootstrap_moderator_key: SecretStr | None = SecretStr("dev-moderator-key")
    bootstrap_tenant: str = "demo"

    # Request limits.
    max_text_chars: int = 100_000
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch_items: int = 256
    max_wait_s: float = 10.0
    max_metadata_bytes: int = 8 * 1024
    # OpenAI-compatible endpoint (docs/compat-openai.md): it answers synchronously, waiting at most `compat_wait_s`
    # for every verdict of a request (then 504 `moderation_timeout` naming the item ids), for at most
    # `compat_max_inputs` strings or parts per request.
    compat_wait_s: float = Field(default=10.0, gt=0, le=300)
    compat_max_inputs: int = Field(default=32, ge=1, le=256)

    # Text model.
    text_model_path: str = str(ROOT / "var" / "models" / "text-default")
    text_label_map: Path | None = None
    text_batch_size: int = 32
    text_max_tokens: int = 256
    # `cpu` (default), `cuda`, `cuda:N` or `auto`. On CUDA the model runs in bf16; raise text_batch_size
    # (e.g. 256) there. CI and the default install never need a GPU.
    text_device: str = "cpu"
    torch_threads: int | None = None
    policy_path: Path = ROOT / "policies" / "default.yaml"

    # Celery: visibility timeout must exceed the hard time limit of the longest task, or a slow task is
    # redelivered while still running.
    task_soft_time_limit_s: int = 60
    task_time_limit_s: int = 90
    visibility_timeout_s: int = 1200
    # How often a worker sweeps for unacked messages of dead workers (kombu's defaults: 10 s x every 10th).
    unacked_restore_interval_s: int = 10
    unacked_restore_throttle: int = 10
    task_max_retries: int = 5
    # Media tasks decode whole videos: their own, longer limits (visibility timeout must stay above them).
    media_task_soft_time_limit_s: int = 900
    media_task_time_limit_s: int = 960
    # Uploaded media is kept this long for rescans and appeals, then purged (items count as `skipped`).
    blob_retention_s: float = 30 * 86400
    text_task_chunk: int = 64
    # Characters of text per task (long texts are scored sentence by sentence): keeps a chunk of 100k-char
    # texts inside the task time limit.
    text_task_max_chars: int = 200_000
    # Long texts (workers/base.py text_time_limits): a text task's soft limit is
    # max(task_soft_time_limit_s, characters/1000 x this), so a 100k-char text is never judged by the budget of a
    # tweet; a task that still runs out (a busy machine) is sent again with twice the time, up to the cap below,
    # and only then fails `timeout`. The cap (plus the soft-to-hard grace) stays under the visibility timeout.
    text_task_s_per_kchar: float = Field(default=2.0, gt=0)
    text_task_max_soft_time_limit_s: int = Field(default=900, ge=1)
    worker_heartbeat_s: float = 5.0
    # A replacement pool child loads torch and the model before it reports ready (4-13 s on 2 cores); Celery's
    # default 4 s would kill it and start another forever. Past this a child that never comes up is killed.
    worker_proc_alive_timeout_s: float = 180.0
    # Items still queued/processing after this long are re-enqueued by a starting worker (idempotent).
    requeue_after_s: float = 600.0
    # ... and, every this many seconds, by one live worker (a Redis lock elects it): recovers items whose task
    # message or verdict a Redis failover lost (docs/operations.md). 0 = only at worker start.
    requeue_sweep_s: float = Field(default=60.0, ge=0)

    # Human review.
    review_lease_s: float = 300.0
    review_lease_max_s: float = 3600.0

    # Rescans: text items per task, texts per batch (one read, one model call, one write), media items per task
    # (each is a model run of its own, so few per task keep a chunk inside the media time limit), and how long a
    # rescan chunk yields to a live backlog before each batch.
    rescan_chunk_size: int = Field(default=128, ge=1)
    rescan_batch_size: int = Field(default=64, ge=1)
    rescan_media_chunk_size: int = Field(default=4, ge=1)
    rescan_yield_max_s: float = 5.0
    # A worker that consumes only the `rescan` queue runs its pool children at this nice value (0-19, 0 = as
    # the parent): background work then takes only the CPU that live traffic leaves (docs/operations.md).
    rescan_nice: int = Field(default=10, ge=0, le=19)

    # Webhooks.
    webhook_timeout_s: float = 5.0
    webhook_max_retries: int = 8
    webhook_backoff_base_s: float = 2.0
    webhook_backoff_max_s: int = 600
    # Webhooks owed but never started (e.g. the broker failed right after the verdict) are re-sent by
    # webhook workers: every `sweep` seconds, those older than `grace` seconds.
    webhook_outbox_sweep_s: float = 30.0
    webhook_outbox_grace_s: float = 300.0
    callback_allow_hosts: list[str] = Field(default_factory=list)
    callback_allow_http: bool = True

    # ---- Hardening: callback deny-list, rate limits, queue back-pressure (docs/operations.md) ----
    # Callback hosts, `.domain` suffixes and CIDRs always refused, even when allow-listed or public.
    callback_deny_hosts: list[str] = Field(default_factory=list)
    # Token buckets per route family (submit, read, review, admin), one per API key and one per tenant:
    # `*_per_s` is the refill rate, `*_burst` the bucket size; 0 in either switches that bucket off. Defaults
    # sit far above what one well-behaved client (or the test-suite, which mints keys with one admin key) sends:
    # they stop runaway clients; the queue-depth limit below is what protects the workers. Tune per deployment.
    ratelimit_enabled: bool = True
    # POST /v1/moderations without FastAPI's per-request machinery for valid, authenticated requests
    # (service/gateway/fastpath.py); it needs the rate limiter's key lookup, so it is off when that is off.
    gateway_fast_path: bool = True
    # Text tasks are pushed by the gateway's asyncio client as the entry Celery's producer would write
    # (service/core/wire.py) instead of through kombu's producer in a thread; false = kombu's producer.
    gateway_direct_publish: bool = True
    ratelimit_submit_key_per_s: float = Field(default=200.0, ge=0)
    ratelimit_submit_key_burst: int = Field(default=1000, ge=0)
    ratelimit_submit_tenant_per_s: float = Field(default=1000.0, ge=0)
    ratelimit_submit_tenant_burst: int = Field(default=5000, ge=0)
    ratelimit_read_key_per_s: float = Field(default=500.0, ge=0)
    ratelimit_read_key_burst: int = Field(default=2000, ge=0)
    ratelimit_read_tenant_per_s: float = Field(default=2000.0, ge=0)
    ratelimit_read_tenant_burst: int = Field(default=10000, ge=0)
    ratelimit_review_key_per_s: float = Field(default=100.0, ge=0)
    ratelimit_review_key_burst: int = Field(default=500, ge=0)
    ratelimit_review_tenant_per_s: float = Field(default=500.0, ge=0)
    ratelimit_review_tenant_burst: int = Field(default=2000, ge=0)
    ratelimit_admin_key_per_s: float = Field(default=100.0, ge=0)
    ratelimit_admin_key_burst: int = Field(default=1000, ge=0)
    ratelimit_admin_tenant_per_s: float = Field(default=200.0, ge=0)
    ratelimit_admin_tenant_burst: int = Field(default=2000, ge=0)
    # New submissions get 503 `queue_full` while this many items are queued/processing (0: no limit), so a
    # stalled or slow worker fleet cannot grow the backlog without bound; clients retry after the given time.
    queue_max_pending: int = Field(default=100_000, ge=0)
    queue_full_retry_after_s: int = Field(default=10, ge=1)

    # Fault injection for failure tests only: a text containing this marker makes the text task pause
    # after it marked the item `processing`, so a test can kill the worker mid-task. Unset in production.
    fault_pause_marker: str | None = None
    fault_pause_s: float = 30.0
    # Failure tests only: every model load in a worker process sleeps this long first (a slow disk / big model).
    fault_model_load_delay_s: float = 0.0

    companion: CompanionSettings = Field(default_factory=CompanionSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)

    # ---- Gateway observability endpoints (owned with service/gateway/routes/health.py) ----
    # When set, GET /metrics requires `Authorization: Bearer <metrics_token>` (Prometheus: `authorization:
    # {credentials: ...}`); unset keeps it open for scrapers on a private network.
    metrics_token: SecretStr | None = None

    @property
    def celery_broker_url(self) -> str:
        url = self.broker_url or self.redis_url
        if not self.redis_sentinels:
            return url
        # kombu's sentinel transport: one `sentinel://` URL per sentinel, `;`-separated; the DB index and the data
        # nodes' password ride on each (kombu reads them from the first); master_name is a transport option.
        from urllib.parse import quote, urlsplit

        db = (urlsplit(url).path or "/0").lstrip("/") or "0"
        auth = f":{quote(self.redis_password.get_secret_value(), safe='')}@" if self.redis_password else ""
        return ";".join(f"sentinel://{auth}{node}/{db}" for node in self.redis_sentinels)

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.env == "prod":
            admin = self.bootstrap_admin_key.get_secret_value()
            if admin in PLACEHOLDER_SECRETS or len(admin) < 16:
                raise ValueError("MOD_BOOTSTRAP_ADMIN_KEY is a placeholder or shorter than 16 characters")
            # The platform/moderator bootstrap keys are optional: empty means "install none".
            for name in ("bootstrap_platform_key", "bootstrap_moderator_key"):
                value = getattr(self, name)
                if value is not None and value.get_secret_value() in PLACEHOLDER_SECRETS:
                    raise ValueError(f"MOD_{name.upper()} is a dev placeholder; set a real secret or leave it empty")
        if (self.fault_pause_marker or self.fault_model_load_delay_s) and self.env == "prod":
            raise ValueError("MOD_FAULT_PAUSE_MARKER and MOD_FAULT_MODEL_LOAD_DELAY_S are for tests only")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
