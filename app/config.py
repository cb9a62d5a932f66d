"""One Settings object, read from PIM_* environment variables and `.env`."""

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-insecure-jwt-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIM_", env_file=".env", extra="ignore")

    env: Literal["dev", "test", "production"] = "dev"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/pim"
    redis_url: str = "redis://127.0.0.1:6379/0"
    clickhouse_url: str = "clickhouse://default:@127.0.0.1:9000/pim"

    jwt_secret: str = DEV_JWT_SECRET
    jwt_public_key: str | None = None
    jwt_private_key: str | None = Field(
        default=None, description="only for `pim token` with RS256/ES256"
    )
    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # the longest a JWT may live (exp - iat); `pim token --ttl` is held to it too
    jwt_max_lifetime_seconds: int = Field(default=24 * 3600, ge=1)

    db_pool_size: int = 10
    db_max_overflow: int = 10
    # how long a request waits for a pooled connection before a 503 with Retry-After
    db_pool_timeout_seconds: float = Field(default=5, gt=0)
    statement_timeout_ms: int = 15_000
    # API-key principals are cached per process; revocation reaches every process by NOTIFY at once,
    # and the cache is bypassed while a process is not listening. 0 turns the cache off.
    api_key_cache_seconds: float = Field(default=60, ge=0)
    clickhouse_pool_size: int = 4
    # the worker's maintenance round (lost jobs queued again, orphaned ClickHouse rows deleted)
    worker_maintenance_seconds: float = Field(default=60, gt=0)
    # change log entries older than this are pruned by the worker's maintenance round
    change_retention_days: int = Field(default=90, gt=0)
    # a POST's Idempotency-Key and its stored answer are kept this long (app/idempotency.py)
    idempotency_key_hours: int = Field(default=24, gt=0)
    # a key still in flight this long is taken over: its request died with its process (no
    # request runs this long: statements stop after PIM_STATEMENT_TIMEOUT_MS, uploads are streamed)
    idempotency_in_flight_seconds: int = Field(default=3600, gt=0)
    # PATCH, PUT and DELETE of products, categories, views, segments and the schema need If-Match
    # (428 without): no write can overwrite a version its client has not read
    require_if_match: bool = False
    # /readyz: the worker check is "up" while a worker's heartbeat is younger than this (workers beat 6 times as often)
    worker_heartbeat_timeout_seconds: float = Field(default=30, gt=0)

    # The ClickHouse read model of products (app/mirror): counts, facets and id pages of tenants
    # with at least `mirror_min_products` products, when its watermark has reached the tenant's
    # last change (waiting up to `mirror_wait_ms`); else, and while ClickHouse fails (then left
    # alone for `mirror_retry_seconds`), Postgres answers.
    mirror_enabled: bool = True
    mirror_min_products: int = Field(default=100_000, ge=0)
    mirror_wait_ms: int = Field(default=200, ge=0, le=10_000)
    mirror_retry_seconds: float = Field(default=5, ge=0)
    # the worker: change-log entries per batch, and how often it checks every tenant (besides
    # the NOTIFY that wakes it after each write)
    mirror_batch: int = Field(default=50_000, ge=1)
    mirror_sweep_seconds: float = Field(default=5, gt=0)

    max_json_body_bytes: int = 32 * 1024 * 1024
    # origins allowed to call the API from a browser (CORS), comma-separated
    # (`https://a.example,https://b.example`, `*` for any): none by default
    cors_origins: str = ""
    # the API's public base URL (`https://pim.example.com`), listed in the OpenAPI document's
    # `servers` after the relative "/" (the host serving the document); unset: "/" alone
    public_url: str = ""
    max_upload_bytes: int = 1024 * 1024 * 1024
    # bytes of uploads a tenant may keep stored at once (jobs uploading, in mapping or importing)
    import_storage_quota_bytes: int = Field(default=5 * 1024**3, ge=0)
    # a product's `data` as JSON text (POST, PATCH, bulk, import)
    max_product_data_bytes: int = Field(default=1024 * 1024, ge=2)
    # request line plus headers; a longer head is answered 431 before it is parsed (app/server.py)
    max_request_head_bytes: int = Field(default=64 * 1024, ge=1024)

    # Token buckets in Redis (app/ratelimit.py): `*_per_second` refills, `*_burst` is the bucket size.
    # Every request of an API key (or JWT subject) takes a token from its bucket and its tenant's.
    rate_limit_enabled: bool = True
    rate_limit_key_per_second: float = Field(default=200, gt=0)
    rate_limit_key_burst: int = Field(default=2000, ge=1)
    rate_limit_tenant_per_second: float = Field(default=500, gt=0)
    rate_limit_tenant_burst: int = Field(default=5000, ge=1)
    # credentials that fail take a token from their client IP's bucket; an empty one means 429
    # before any further lookup from that IP
    auth_failures_per_ip_per_second: float = Field(default=2, gt=0)
    auth_failures_per_ip_burst: int = Field(default=200, ge=1)
    # requests of one tenant running at once per API process; more wait their turn
    tenant_requests_per_process: int = Field(default=8, ge=1)
    # heavy reads (app/deps.py: previews, searches, lists with many filters): at most this many of
    # a tenant at once per API process, and a bucket of their own per tenant; more answer 429
    heavy_reads_per_tenant: int = Field(default=2, ge=1)
    heavy_reads_per_second: float = Field(default=5, gt=0)
    heavy_reads_burst: int = Field(default=200, ge=1)
    # a heavy read takes one token per this many conditions of its predicate (at least one), and
    # its statement is cancelled after this long (a 503)
    heavy_read_conditions_per_token: int = Field(default=20, ge=1)
    heavy_read_timeout_ms: int = Field(default=2000, ge=1)
    # typed indexes (app/products/typed_indexes.py): tenants with at least this many products get
    # B-tree indexes on the typed value of up to this many number/date/datetime fields, while the
    # table has fewer than typed_indexes_max of them (each costs planning time on every statement)
    typed_index_min_products: int = Field(default=50_000, ge=0)
    typed_indexes_per_tenant: int = Field(default=8, ge=0)
    typed_indexes_max: int = Field(default=64, ge=0)
    # planner statistics (app/products/upkeep.py): the worker runs ANALYZE on products once the
    # rows written by bulk upserts and imports since its last one reach this many, or this
    # fraction of the table, whichever is fewer; writes within this many seconds make one job
    analyze_min_rows: int = Field(default=50_000, ge=1)
    analyze_fraction: float = Field(default=0.10, gt=0)
    upkeep_debounce_seconds: float = Field(default=5, ge=0)
    # read replicas for lean reads (app/replicas.py): comma-separated SQLAlchemy URLs
    database_replica_urls: str = ""
    # Webhooks (app/webhooks): receivers on loopback/private/link-local addresses (and plain http
    # outside dev) are refused unless this is true (dev and tests only)
    webhook_allow_private: bool = False
    # events per POST
    webhook_batch_size: int = Field(default=1000, ge=1, le=10_000)
    # retries after a failed delivery: exponential from base to max, with jitter; a subscription
    # failing for `webhook_disable_after_seconds` (3 days) is disabled
    webhook_retry_base_seconds: float = Field(default=5, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600, gt=0)
    webhook_disable_after_seconds: float = Field(default=3 * 86400, gt=0)
    # subscriptions a worker delivers to at once; the delivery loop's poll when no NOTIFY arrives
    webhook_concurrency: int = Field(default=8, ge=1)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    # delivery log and delivered outbox rows are kept this long
    webhook_log_retention_days: int = Field(default=30, gt=0)
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> "Settings":
        if self.env != "dev" and not self.jwt_public_key:
            if self.jwt_secret == DEV_JWT_SECRET:
                raise ValueError(
                    "PIM_JWT_SECRET (or PIM_JWT_PUBLIC_KEY) must be set outside dev mode"
                )
            if len(self.jwt_secret) < 32:
                raise ValueError("PIM_JWT_SECRET must be at least 32 characters outside dev mode")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
