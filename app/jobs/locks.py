"""Advisory locks: one 64-bit key scheme with namespaces, and the lease a task run holds.

Every advisory lock of the service is keyed by `pim_lock_key(namespace, tenant, id)` (a SQL
function, migration h2_jobs_1): `hashtextextended('<namespace>:<tenant>:<id>', 0)`, one bigint,
so no tenant or object id is ever cut to 32 bits and two namespaces never share a key. The
namespaces are listed once, in `Lock`; the facet-count trigger functions take `pim.facet_counts`
in SQL.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine


class Lock(StrEnum):
    """The namespaces of advisory locks; the SQL literal of each is its value."""

    SCHEMA = "pim.schema"  # a tenant's product schema: a PUT exclusive, an import batch shared
    CATEGORIES = "pim.categories"  # a tenant's category tree writes take turns
    CATEGORY_REFS = "pim.category_refs"  # assigning category ids shared, deleting one exclusive
    IMPORT_STORAGE = "pim.import_storage"  # a tenant's uploads check the quota in turn
    FACET_COUNTS = "pim.facet_counts"  # the facet-count triggers shared, a recount exclusive
    IMPORT = "pim.import"  # the lease of an import job's run (id: the job's uuid)
    IMPORT_TURN = "pim.import_turn"  # the tenant's one running import
    # an import batch's transaction, until it commits (id: the job's uuid and the batch's last row)
    IMPORT_BATCH = "pim.import_batch"
    SEGMENT = "pim.segment"  # the lease of a segment's compute (id: the segment id)
    TYPED_INDEXES = "pim.typed_indexes"  # the lease of a tenant's typed-index builds
    # index builds and drops on `products`, every tenant's, take turns (tenant 0): two CREATE or
    # DROP INDEX CONCURRENTLY on one table wait for each other's transactions, a deadlock
    PRODUCTS_INDEXES = "pim.products_indexes"
    MIRROR = "pim.mirror"  # a tenant's read model: one writer (apply or rebuild) at a time
    WEBHOOKS = "pim.webhooks"  # a tenant's webhook creations take turns (the count limit)
    WEBHOOK_DELIVERY = "pim.webhook_delivery"  # the lease of a webhook's delivery (id: its id)

    def key(self, tenant: str, id: str | None = None) -> str:
        """The SQL expression of a key in this namespace; `tenant` and `id` are SQL expressions,
        bound parameters such as `$1` (the namespace is one of ours, a literal)."""
        object_id = id if id is not None else "''"
        return f"pim_lock_key('{self.value}', {tenant}::bigint, {object_id}::text)"


async def xact_lock(
    conn: asyncpg.Connection,
    lock: Lock,
    tenant_id: int,
    id: object = None,
    *,
    shared: bool = False,
) -> None:
    """Hold `lock` for the tenant (and object `id`) until `conn`'s transaction ends."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    if id is None:
        await conn.execute(f"SELECT {function}({lock.key('$1')})", tenant_id)
    else:
        await conn.execute(f"SELECT {function}({lock.key('$1', '$2')})", tenant_id, str(id))


@dataclass(frozen=True, slots=True)
class LockKey:
    """One session-level lock: a namespace, a tenant and the object's id ('' for the tenant's)."""

    lock: Lock
    tenant_id: int
    id: str = ""

    @property
    def args(self) -> tuple[int, str]:
        return self.tenant_id, self.id


_KEEPALIVES = (
    "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3"
)
POLL_S = 0.25


class LeaseBusy(Exception):
    """Another run holds the lease, and went on holding it for as long as we would wait."""


@dataclass
class Lease:
    """A run's session-level advisory locks, on a connection of their own (`conn`, otherwise idle:
    the run may read with it). They die with the connection, so a worker that dies loses its
    lease at once, which is how the recovery tells a dead run from a live one."""

    conn: asyncpg.Connection
    held: list[LockKey] = field(default_factory=list)

    async def try_lock(self, key: LockKey) -> bool:
        """Take another lock once, without waiting; it is held until the lease ends."""
        sql = f"SELECT pg_try_advisory_lock({key.lock.key('$1', '$2')})"
        if await self.conn.fetchval(sql, *key.args):
            self.held.append(key)
            return True
        return False

    async def wait_lock(self, key: LockKey, wait_s: float | None = None) -> None:
        """Take another lock, polling for it for up to `wait_s` seconds (None: until it is free),
        then raise `LeaseBusy`; it is held until `unlock` or the lease's end."""
        deadline = None if wait_s is None else time.monotonic() + wait_s
        # polling Postgres, not an in-process condition: no Event can replace it
        while not await self.try_lock(key):
            if deadline is not None and time.monotonic() >= deadline:
                raise LeaseBusy(f"{key.lock.value}:{key.tenant_id}:{key.id}")
            await asyncio.sleep(POLL_S)

    @asynccontextmanager
    async def turn(self, key: LockKey) -> AsyncIterator[None]:
        """Hold `key` for the block only (waiting for it), on this lease's connection."""
        await self.wait_lock(key)
        try:
            yield
        finally:
            await self.unlock(key)

    async def unlock(self, key: LockKey) -> None:
        """Give one lock back before the lease ends."""
        await self.conn.fetchval(
            f"SELECT pg_advisory_unlock({key.lock.key('$1', '$2')})", *key.args
        )
        self.held.remove(key)

    async def _release(self) -> None:
        while self.held:
            key = self.held[-1]
            await self.conn.fetchval(
                f"SELECT pg_advisory_unlock({key.lock.key('$1', '$2')})", *key.args
            )
            self.held.pop()


@asynccontextmanager
async def lease(engine: AsyncEngine, key: LockKey, *, wait_s: float | None) -> AsyncIterator[Lease]:
    """Hold `key` for the block, on a connection of its own; poll for it for up to `wait_s`
    seconds (None: until it is free), then raise `LeaseBusy`.

    Polled, not waited for in Postgres: a blocked `pg_advisory_lock` could not be given up after a
    timeout without cancelling the statement, and its connection would sit in a lock wait."""
    async with lease_connection(engine) as held:
        await held.wait_lock(key, wait_s)
        yield held


@asynccontextmanager
async def lease_connection(engine: AsyncEngine) -> AsyncIterator[Lease]:
    """A lease holding nothing yet, on a connection of its own: a long-running loop that takes
    and gives back many locks (`try_lock`, `unlock`); whatever it still holds goes at the end."""
    async with engine.connect() as connection:
        raw: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
        # a vanished worker host (no FIN) must not keep the lease for hours: let Postgres probe it
        await raw.execute(_KEEPALIVES)
        held = Lease(raw)
        try:
            yield held
        finally:
            try:
                await held._release()
            except BaseException as exc:  # never hand a connection holding a lease back to the pool
                await connection.invalidate()  # closed, it holds nothing any more
                if not isinstance(exc, Exception):  # cancelled: that goes on
                    raise


async def any_held(conn: asyncpg.Connection, keys: Iterable[LockKey]) -> bool:
    """Whether anyone holds one of these session-level locks (`pg_locks`: a bigint key shows its
    high half as `classid`, its low half as `objid`, with `objsubid` 1).

    Read from pg_locks rather than by taking the locks: a run starting at that moment must never
    find its lease held by this check."""
    for key in keys:
        held = await conn.fetchval(
            f"""SELECT EXISTS (
                    SELECT 1 FROM pg_locks l, (SELECT {key.lock.key("$1", "$2")}) AS k(v)
                    WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
                      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND l.classid = ((k.v >> 32) & 4294967295)::oid
                      AND l.objid = (k.v & 4294967295)::oid)""",
            *key.args,
        )
        if held:
            return True
    return False
