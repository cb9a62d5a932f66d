"""Lean reads on Postgres streaming replicas, with read-your-writes by WAL position.

`PIM_DATABASE_REPLICA_URLS` (comma-separated SQLAlchemy URLs) names hot standbys of the primary.
The tenant's lean reads (`TenantReader`: GET by id, lists, facets, searches, the change log and
history) run on one when it has replayed everything the primary had written when the read began;
otherwise, and when no replica answers, on the primary. Authentication, writes and everything
that runs in a request's session stay on the primary.

The rule, and why this one: at the read's start the router asks the primary for
`pg_current_wal_insert_lsn()` (one trivial statement on a pooled primary connection, ~0.1 ms),
and a replica serves the read only if its `pg_last_wal_replay_lsn()` is at least that. Every
write acknowledged before the read began, whoever made it (a request, an import batch committed
with `synchronous_commit = off`, a trigger, the worker), has its commit record below that
position, so the read sees it: no write path has to record anything, and a forgotten one cannot
break the rule. The alternatives cost as much per read and are weaker: a per-tenant last-commit
LSN in Redis is a Redis round trip per read plus a statement per write, on every write path; a
cookie or header only gives one client its own writes. The price of the global rule: under a
steady stream of writes (any tenant's) a replica is always a little behind the primary's
position, and such reads go to the primary until replay catches up.

A replica's replayed position is remembered between reads (it only grows), so a replica that is
ahead of the read's position costs no extra round trip; one that is behind is asked again once.
A replica that does not answer (refused, timed out) is left alone for RETRY_DOWN_S.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
import structlog

from app.config import Settings
from app.db import ReadPool, keep_session_state, pg_dsn, server_settings

log = structlog.get_logger("pim.replicas")

RETRY_DOWN_S = 5.0
CONNECT_TIMEOUT_S = 2.0
PRIMARY_LSN_SQL = "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"
REPLAYED_LSN_SQL = "SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn"


def replica_urls(settings: Settings) -> list[str]:
    return [url.strip() for url in settings.database_replica_urls.split(",") if url.strip()]


class Replica:
    def __init__(self, name: str, pool: asyncpg.Pool):
        self.name = name
        self.pool = pool
        self.replayed = -1  # the last replayed position seen (bytes); it only grows
        self.down_until = 0.0

    async def close(self) -> None:
        await self.pool.close()


class ReplicaRouter(ReadPool):
    """A ReadPool whose connections are a fresh-enough replica's when there is one (see the module)."""

    def __init__(self, primary: ReadPool, replicas: list[Replica]):
        super().__init__(primary._pool, primary._timeout)
        self.primary = primary
        self.replicas = replicas
        self._next = 0
        # which server each read ran on, for the tests and the logs: "primary" or a replica's name
        self.served: dict[str, int] = {"primary": 0, **{r.name: 0 for r in replicas}}

    async def _primary_position(self) -> int:
        async with self.primary.acquire() as conn:
            return int(await conn.fetchval(PRIMARY_LSN_SQL))

    async def _fresh_connection(
        self, replica: Replica, target: int
    ) -> asyncpg.pool.PoolConnectionProxy | None:
        """A connection of `replica` if it has replayed up to `target`; None otherwise."""
        if replica.down_until > time.monotonic():
            return None
        try:
            conn = await replica.pool.acquire(timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            replica.down_until = time.monotonic() + RETRY_DOWN_S
            log.warning("replica_down", replica=replica.name, error=str(exc)[:200])
            return None
        try:
            if replica.replayed < target:
                replayed = await conn.fetchval(REPLAYED_LSN_SQL)
                # NULL: not in recovery (promoted, or not a standby): never read there
                replica.replayed = -1 if replayed is None else int(replayed)
            if replica.replayed >= target:
                return conn
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            replica.down_until = time.monotonic() + RETRY_DOWN_S
            log.warning("replica_down", replica=replica.name, error=str(exc)[:200])
        await replica.pool.release(conn)
        return None

    def acquire(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        if not self.replicas:  # the usual case: the primary's checkout, no layer around it
            self.served["primary"] += 1
            return self.primary.acquire()
        return self._replica_or_primary()

    @asynccontextmanager
    async def _replica_or_primary(self) -> AsyncIterator[asyncpg.Connection]:
        target = await self._primary_position()
        start = self._next
        self._next = (self._next + 1) % len(self.replicas)
        for i in range(len(self.replicas)):
            replica = self.replicas[(start + i) % len(self.replicas)]
            conn = await self._fresh_connection(replica, target)
            if conn is not None:
                self.served[replica.name] += 1
                try:
                    yield conn
                finally:
                    await replica.pool.release(conn)
                return
        self.served["primary"] += 1
        async with self.primary.acquire() as conn:
            yield conn

    async def close(self) -> None:
        """Closes the replicas' pools (the primary's belongs to its owner)."""
        await asyncio.gather(*(r.close() for r in self.replicas), return_exceptions=True)


async def create_replica_router(settings: Settings, primary: ReadPool) -> ReplicaRouter:
    """The lean reads' pool: the primary's, and one lazily connecting pool per replica."""
    replicas = []
    for i, url in enumerate(replica_urls(settings)):
        pool = await asyncpg.create_pool(
            pg_dsn(url),
            min_size=0,
            max_size=settings.db_pool_size,
            timeout=CONNECT_TIMEOUT_S,
            reset=keep_session_state,
            command_timeout=max(settings.statement_timeout_ms / 1000 * 2, 30),
            server_settings=server_settings(settings),
        )
        replicas.append(Replica(f"replica{i}", pool))
    return ReplicaRouter(primary, replicas)
