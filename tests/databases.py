"""The test session's own databases: created and migrated when it starts, dropped when it ends.

The URLs of `.env` / PIM_* name the databases `make run` uses. Tests never touch those: they use
the same servers with other databases, and every process they start (workers, live servers)
inherits the test URLs through the environment:

- Postgres: the database name with `_test` appended (PIM_TEST_DATABASE_URL overrides);
- ClickHouse: likewise (PIM_TEST_CLICKHOUSE_URL overrides);
- Redis: the database index + 8, modulo 16 (PIM_TEST_REDIS_URL overrides), so no `make run`
  worker can take a test job.

Each session starts from empty databases and drops them at its end (PIM_TEST_KEEP_DATABASES=1
keeps them for a look after a failure).
"""

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent


def _suffixed_url(url: str, suffix: str) -> str:
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "default"
    return urlunsplit(parts._replace(path="/" + (name if name.endswith(suffix) else name + suffix)))


def _redis_test_url(url: str) -> str:
    parts = urlsplit(url)
    index = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(index + 8) % 16}"))


def _on_postgres_server(url: str, *statements: str) -> None:
    """Run statements on the server of `url`, connected to its `postgres` database."""
    from app.db import pg_dsn

    server = make_url(url).set(database="postgres").render_as_string(hide_password=False)

    async def run() -> None:
        conn = await asyncpg.connect(pg_dsn(server))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _quoted_database(url: str) -> str:
    return '"{}"'.format(make_url(url).database.replace('"', '""'))


def _drop_clickhouse(url: str) -> None:
    from app.clickhouse import drop_database

    asyncio.run(drop_database(url))


def use_test_databases() -> None:
    """Point PIM_* at the test databases (idempotent: a process that already did keeps them)."""
    if os.environ.get("PIM_TEST_DATABASES_READY") == "1":
        return
    from app.config import Settings

    dev = Settings()
    os.environ["PIM_DATABASE_URL"] = os.environ.get("PIM_TEST_DATABASE_URL") or _suffixed_url(
        dev.database_url, "_test"
    )
    os.environ["PIM_CLICKHOUSE_URL"] = os.environ.get("PIM_TEST_CLICKHOUSE_URL") or _suffixed_url(
        dev.clickhouse_url, "_test"
    )
    os.environ["PIM_REDIS_URL"] = os.environ.get("PIM_TEST_REDIS_URL") or _redis_test_url(
        dev.redis_url
    )
    for name in ("database_url", "clickhouse_url", "redis_url"):
        if getattr(dev, name) == os.environ[f"PIM_{name.upper()}"]:
            raise RuntimeError(f"the test {name} is the one `make run` uses: {getattr(dev, name)}")
    # a tenant past the typed-index size threshold in a test's time (tests/catalog/test_typed_indexes.py)
    os.environ.setdefault("PIM_TYPED_INDEX_MIN_PRODUCTS", "10000")
    os.environ["PIM_TEST_DATABASES_READY"] = "1"


def create_test_databases() -> None:
    name = _quoted_database(os.environ["PIM_DATABASE_URL"])
    _on_postgres_server(
        os.environ["PIM_DATABASE_URL"],
        f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
        f"CREATE DATABASE {name}",
    )
    _drop_clickhouse(os.environ["PIM_CLICKHOUSE_URL"])
    redis.Redis.from_url(os.environ["PIM_REDIS_URL"]).flushdb()
    subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def drop_test_databases() -> None:
    if os.environ.get("PIM_TEST_KEEP_DATABASES") == "1":
        return
    redis.Redis.from_url(os.environ["PIM_REDIS_URL"]).flushdb()
    _drop_clickhouse(os.environ["PIM_CLICKHOUSE_URL"])
    name = _quoted_database(os.environ["PIM_DATABASE_URL"])
    _on_postgres_server(
        os.environ["PIM_DATABASE_URL"], f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )
