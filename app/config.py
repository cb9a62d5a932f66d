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
    jwt_private_key: str | None = Field(default=None, description="only for `pim token` with RS256/ES256")
    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    db_pool_size: int = 10
    db_max_overflow: int = 10
    statement_timeout_ms: int = 15_000
    # API-key principals are cached per process; revocation reaches every process by NOTIFY at once,
    # and the cache is bypassed while a process is not listening. 0 turns the cache off.
    api_key_cache_seconds: float = Field(default=60, ge=0)
    clickhouse_pool_size: int = 4

    max_json_body_bytes: int = 32 * 1024 * 1024
    max_upload_bytes: int = 1024 * 1024 * 1024
    # bytes of uploads a tenant may keep stored at once (jobs uploading, in mapping or importing)
    import_storage_quota_bytes: int = Field(default=5 * 1024**3, ge=0)
    # a product's `data` as JSON text (POST, PATCH, bulk, import)
    max_product_data_bytes: int = Field(default=1024 * 1024, ge=2)
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> "Settings":
        if self.env != "dev" and not self.jwt_public_key:
            if self.jwt_secret == DEV_JWT_SECRET:
                raise ValueError("PIM_JWT_SECRET (or PIM_JWT_PUBLIC_KEY) must be set outside dev mode")
            if len(self.jwt_secret) < 32:
                raise ValueError("PIM_JWT_SECRET must be at least 32 characters outside dev mode")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
