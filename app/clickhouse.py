"""ClickHouse through asynch: a small pool, typed helpers, and idempotent DDL.

The SQL here must run on ClickHouse 18.16 (tests) and current releases: plain
MergeTree, `ALTER TABLE ... DELETE`, nothing newer.
"""

import asyncio
from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from asynch import Connection, Pool
from asynch.errors import AsynchPoolError, NetworkError, SocketTimeoutError

from app.config import Settings
from app.errors import Unavailable

# a `ka` entry's prefix in mirror_entries (below), where a `kv` entry is as it is
ELEMENT_PREFIX = "["

MIGRATIONS: list[str] = [
    # Segment members, one generation per compute. `position` is the member's rank by product_id
    # within its generation (0, 1, 2, ...), so the key orders rows exactly as product_id does and a
    # members page at any offset is a primary-key range read (18.16 cannot read in key order for
    # ORDER BY product_id LIMIT offset, n: that sorted the whole generation, 20 ms at 280k members).
    """
    CREATE TABLE IF NOT EXISTS product_memberships (
        tenant_id UInt64,
        segment_id UInt64,
        generation UInt64,
        position UInt64,
        product_id UInt64,
        sku String,
        computed_at DateTime
    ) ENGINE = MergeTree()
    ORDER BY (tenant_id, segment_id, generation, position)
    """,
    # The products read model (app/mirror): one row per product state, collapsed by `sign`: a
    # change writes a cancel row (-1, a copy of the state it replaces) and the new state (+1), so
    # `sum(sign)` over any filter is the exact count without FINAL. `generation` is the tenant's
    # current build (a rebuild writes the next one and switches `mirror_state` to it).
    """
    CREATE TABLE IF NOT EXISTS products_mirror (
        tenant_id UInt64,
        generation UInt64,
        id UInt64,
        version UInt64,
        sign Int8,
        sku String,
        name String,
        status String,
        variation_of Nullable(String),
        categories Array(UInt64),
        present Array(String),
        filled Array(String),
        kv Array(String),
        long_keys Array(String),
        ka Array(String),
        nk Array(String),
        nv Array(Float64)
    ) ENGINE = CollapsingMergeTree(sign)
    ORDER BY (tenant_id, generation, id)
    """,
    # The read model's counts (app/mirror/model.py): how many of a generation's products hold
    # each `kv` entry, each `ka` entry (as ELEMENT_PREFIX + entry: no field name starts with it,
    # so a string value and an array element never share a count) and each number under each
    # key, kept by materialized views from every block written to products_mirror (a cancel row
    # counts -1) and summed on merge. A one-test filter's count is then a primary-key range of
    # these instead of a scan of every product. The entry '' (key '' in mirror_numbers) is the
    # mark a rebuild writes: only a generation built with the views in place has all its counts.
    """
    CREATE TABLE IF NOT EXISTS mirror_entries (
        tenant_id UInt64,
        generation UInt64,
        entry String,
        n Int64
    ) ENGINE = SummingMergeTree(n)
    ORDER BY (tenant_id, generation, entry)
    """,
    f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS mirror_entries_feed TO mirror_entries AS
    SELECT tenant_id, generation, entry, sum(sign) AS n
    FROM products_mirror ARRAY JOIN arrayConcat(kv, arrayMap(e -> concat('{ELEMENT_PREFIX}', e), ka)) AS entry
    GROUP BY tenant_id, generation, entry
    """,
    """
    CREATE TABLE IF NOT EXISTS mirror_numbers (
        tenant_id UInt64,
        generation UInt64,
        key String,
        value Float64,
        n Int64
    ) ENGINE = SummingMergeTree(n)
    ORDER BY (tenant_id, generation, key, value)
    """,
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS mirror_numbers_feed TO mirror_numbers AS
    SELECT tenant_id, generation, key, value, sum(sign) AS n
    FROM products_mirror ARRAY JOIN nk AS key, nv AS value
    GROUP BY tenant_id, generation, key, value
    """,
    # Per tenant: the generation readers use, the last change-log seq applied to it (-1: being
    # rebuilt), the tenant's product count there, and `version` (the newest row wins).
    """
    CREATE TABLE IF NOT EXISTS mirror_state (
        tenant_id UInt64,
        generation UInt64,
        seq Int64,
        products Int64,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY tenant_id
    """,
]


def _split_database(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    database = parts.path.lstrip("/") or "default"
    return urlunsplit(parts._replace(path="/default")), database


class ClickHouse:
    def __init__(self, settings: Settings):
        self.url = settings.clickhouse_url
        self._pool = Pool(
            minsize=0,
            maxsize=settings.clickhouse_pool_size,
            idle_timeout=60,
            dsn=self.url,
            connect_timeout=3,
            send_receive_timeout=60,
        )
        self._started = False
        self._lock = asyncio.Lock()

    async def _ensure_started(self) -> None:
        if not self._started:
            async with self._lock:
                if not self._started:
                    await self._pool.startup()
                    self._started = True

    @asynccontextmanager
    async def connection(self):
        try:
            await self._ensure_started()
            async with self._pool.connection() as conn:
                yield conn
        except (TimeoutError, OSError, NetworkError, SocketTimeoutError, AsynchPoolError) as exc:
            raise Unavailable("ClickHouse is unavailable") from exc

    async def fetch(self, query: str, params: dict[str, Any] | None = None) -> list[tuple]:
        async with self.connection() as conn, conn.cursor() as cursor:
            await cursor.execute(query, params)
            return await cursor.fetchall()

    async def execute(self, query: str, params: dict[str, Any] | None = None) -> None:
        async with self.connection() as conn, conn.cursor() as cursor:
            await cursor.execute(query, params)

    async def insert(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert a block of rows (row-oriented tuples) in one request."""
        if not rows:
            return
        async with self.connection() as conn, conn.cursor() as cursor:
            await cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES", list(rows))

    async def insert_columns(
        self, table: str, columns: Sequence[str], values: Sequence[Sequence[Any]]
    ) -> None:
        """Insert a block given column by column (`values[i]` is column i's list): several times
        faster than rows for large blocks. Columnar inserts need asynch's protocol-level connection."""
        if not values or not values[0]:
            return
        async with self.connection() as conn:
            await conn._connection.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES", list(values), columnar=True
            )

    async def ping(self) -> bool:
        await self.fetch("SELECT 1")
        return True

    async def close(self) -> None:
        if self._started:
            await self._pool.shutdown()
            self._started = False


async def drop_database(url: str) -> None:
    """Drop the database a ClickHouse URL names (the test session's own, at its end)."""
    server_url, database = _split_database(url)
    async with Connection(dsn=server_url, connect_timeout=5) as conn, conn.cursor() as cursor:
        await cursor.execute(f"DROP DATABASE IF EXISTS `{database.replace('`', '')}`")


async def migrate_clickhouse(settings: Settings) -> list[str]:
    server_url, database = _split_database(settings.clickhouse_url)
    async with Connection(dsn=server_url, connect_timeout=5) as conn, conn.cursor() as cursor:
        await cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    applied = []
    async with Connection(dsn=settings.clickhouse_url, connect_timeout=5) as conn:
        async with conn.cursor() as cursor:
            for ddl in MIGRATIONS:
                await cursor.execute(ddl)
                applied.append(" ".join(ddl.split())[:60])
    return applied
