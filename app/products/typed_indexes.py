"""Typed indexes: B-tree indexes on the typed value of a tenant's number, date and datetime fields.

A range filter (`price__gte=900`) or an ordering (`ordering=price`) on a data field compares
`pim_num(p.data -> 'price')` (`app.query.compiling.typed_value_sql`). Without an index on that
expression, Postgres computes it for every product of the tenant (753–838 ms for `price__gte` at
1M). With one, the matches are one index range and a page in that order is the first rows of it.

The layout, decided by the figures in bench/catalog.py and the README ("Typed indexes"):

- one index per (tenant, field), partial by tenant: `ON products (<typed value>, id) WHERE
  tenant_id = T`. It holds the tenant's rows only, so other tenants' writes pay nothing but the
  predicate check, and its key order is exactly the list's order (`NULLS LAST`, then `id`).
  The list's statements bind the tenant as `$1`; the planner proves `tenant_id = T` from it in the
  custom plans Postgres makes for them (their cost beats any generic plan without the index);
- bounded, because every index on `products` costs planning time on every statement on the
  table, any tenant's (bench/typed_indexes.py: a list statement plans in 0.13 ms with no typed
  index, 0.54 ms with 64, 2.0 ms with 256, 52 ms with 1024), while the other tenants' writes do
  not notice them (3,803 vs 3,792 rows/s with 256) and the tenant's own pay ~10 % for three
  (3,389 rows/s). So: only tenants with at least PIM_TYPED_INDEX_MIN_PRODUCTS products (50,000;
  below that a read of the tenant's rows through `(tenant_id, id)` is tens of milliseconds), at
  most PIM_TYPED_INDEXES_PER_TENANT fields each (8, the first of the schema), and at most
  PIM_TYPED_INDEXES_MAX on the table (64: under half a millisecond of planning); a tenant past
  the cap is logged (`over_cap`) and reads as before. Past that scale the counts belong to the
  read model, and per-tenant indexes to a products table partitioned by tenant (each partition's
  indexes planned only for its tenant).

The worker creates and drops them (`sync_typed_indexes`), never a request: CREATE INDEX
CONCURRENTLY runs outside any transaction, on the connection of the tenant's lease (so two runs
for one tenant take turns), one build or drop on the table at a time, any tenant's (INDEX_TURN:
two at once deadlocked), and is idempotent: an index of the right name that is valid is kept,
an invalid one (a build that was interrupted) is dropped and built again, one of a field the schema
no longer has as that type is dropped.
"""

import hashlib
from dataclasses import dataclass

import asyncpg
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from app.catalog.fields import FieldDef
from app.db import all_tenants, tenant_is
from app.jobs.locks import Lock, LockKey, lease, lease_connection
from app.query.compiling import LITERAL_KEY_KINDS, typed_value_sql
from app.query.models import Kind
from app.query.parsing import field_target

log = structlog.get_logger("pim.typed_indexes")

PREFIX = "ix_products_typed_"
# every build and drop of an index on `products` holds this for its statement (see Lock)
INDEX_TURN = LockKey(Lock.PRODUCTS_INDEXES, 0)


@dataclass(frozen=True, slots=True)
class TypedIndex:
    tenant_id: int
    kind: Kind
    field: str

    @property
    def name(self) -> str:
        """`ix_products_typed_<tenant>_<digest of kind and field>`: under Postgres' 63 bytes for
        any field name, and a retyped field gets another index."""
        digest = hashlib.sha1(f"{self.kind.value}:{self.field}".encode()).hexdigest()[:12]
        return f"{PREFIX}{self.tenant_id}_{digest}"

    @property
    def create_sql(self) -> str:
        expr = typed_value_sql(self.kind, self.field, "products")
        return (
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {self.name} ON products ({expr}, id) "
            f"WHERE tenant_id = {int(self.tenant_id)}"
        )


def wanted_indexes(tenant_id: int, fields: list[FieldDef], *, per_tenant: int) -> list[TypedIndex]:
    """The typed indexes a tenant's schema asks for: its first `per_tenant` number, date and
    datetime fields."""
    wanted = []
    for field_def in fields:
        kind = field_target(field_def).kind
        if kind in LITERAL_KEY_KINDS:
            wanted.append(TypedIndex(tenant_id, kind, field_def.name))
    return wanted[:per_tenant]


async def existing_indexes(conn: asyncpg.Connection, tenant_id: int) -> dict[str, bool]:
    """The tenant's typed indexes on `products`: name → valid (an interrupted build leaves an
    invalid one)."""
    rows = await conn.fetch(
        all_tenants(  # the catalog, not a tenant table
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'products'::regclass AND starts_with(c.relname, $1)"
        ),
        f"{PREFIX}{int(tenant_id)}_",
    )
    return {r["relname"]: r["indisvalid"] for r in rows}


async def typed_index_count(conn: asyncpg.Connection) -> int:
    """Typed indexes on `products`, every tenant's."""
    return await conn.fetchval(
        all_tenants(  # the catalog, not a tenant table
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'products'::regclass AND starts_with(c.relname, $1)"
        ),
        PREFIX,
    )


async def _tenant_size_at_least(conn: asyncpg.Connection, tenant_id: int, rows: int) -> bool:
    if rows <= 0:
        return True
    found = await conn.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM products p WHERE {tenant_is('p')} LIMIT $2) s",
        tenant_id,
        rows,
    )
    return found >= rows


async def sync_typed_indexes(
    engine: AsyncEngine,
    tenant_id: int,
    fields: list[FieldDef],
    *,
    min_products: int,
    per_tenant: int,
    total: int,
) -> dict[str, list[str]]:
    """Make the tenant's typed indexes those its schema and size ask for, while the table has
    fewer than `total` of them (every tenant's). Returns the names created, dropped, and wanted
    but refused by the cap."""
    done: dict[str, list[str]] = {"created": [], "dropped": [], "over_cap": []}
    async with lease(engine, LockKey(Lock.TYPED_INDEXES, tenant_id), wait_s=None) as held:
        conn = held.conn
        big_enough = await _tenant_size_at_least(conn, tenant_id, min_products)
        wanted = wanted_indexes(tenant_id, fields, per_tenant=per_tenant) if big_enough else []
        by_name = {index.name: index for index in wanted}
        existing = await existing_indexes(conn, tenant_id)
        await conn.execute("SET statement_timeout = 0")  # a build takes as long as it takes
        try:
            for name, valid in existing.items():
                if name not in by_name or not valid:
                    async with held.turn(INDEX_TURN):
                        await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                    done["dropped"].append(name)
            for name, index in by_name.items():
                if not existing.get(name, False):
                    # the cap is checked in the turn too: two tenants' builds never both pass it
                    async with held.turn(INDEX_TURN):
                        if await typed_index_count(conn) >= total:
                            done["over_cap"].append(name)
                            continue
                        await conn.execute(index.create_sql)
                    done["created"].append(name)
        finally:
            await conn.execute("RESET statement_timeout")
    if any(done.values()):
        log.info("typed_indexes_synced", tenant_id=tenant_id, **done)
    return done


async def drop_orphaned_typed_indexes(engine: AsyncEngine) -> list[str]:
    """Typed indexes of tenants that no longer exist (their rows went with them, the empty index
    stays and counts against PIM_TYPED_INDEXES_MAX): dropped. A step of the worker's maintenance."""
    async with lease_connection(engine) as held:
        conn = held.conn
        names = await conn.fetchval(
            all_tenants(  # which tenants exist: the point is to look across them
                "SELECT coalesce(array_agg(c.relname), '{}') FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'products'::regclass AND starts_with(c.relname, $1) "
                "AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id::text = "
                "split_part(substr(c.relname, length($1) + 1), '_', 1))"
            ),
            PREFIX,
        )
        await conn.execute("SET statement_timeout = 0")
        try:
            for name in names:
                async with held.turn(INDEX_TURN):
                    await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        finally:
            await conn.execute("RESET statement_timeout")
    if names:
        log.info("typed_indexes_orphaned_dropped", indexes=names)
    return list(names)
