"""Engine, sessions and the one place where tenant scoping happens.

A request's session carries its tenant in `session.info["tenant_id"]`. Every ORM
statement (select/update/delete, including column-only selects of a mapped class)
gets `tenant_id = :tenant` added by the `do_orm_execute` hook below, and every new
object gets the tenant assigned at flush. Raw SQL (bulk upsert, lists, facets) reads the
tenant with `tenant_of(session)` and writes its predicate with `tenant_is(alias, param)`;
a raw statement that deliberately spans tenants says so with `all_tenants(sql)`.
tests/test_tenant_scoping.py fails on any SQL in app/ that touches a tenant table otherwise.
(Postgres row-level security would enforce this in the database, but it keeps the GIN and
trigram indexes from serving the list filters: see bench/rls.py for the figures.)
"""

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias, TypeVar

import asyncpg
from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    MetaData,
    Select,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.sql.elements import ColumnElement

from app.config import Settings
from app.errors import NotFound, PoolExhausted

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UpdatedAt:
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Timestamps(UpdatedAt):
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TenantScoped:
    """Mixin: rows of this table belong to one tenant (and go with it) and are filtered
    automatically."""

    tenant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tenants.id", ondelete="CASCADE"))


class IdentityKey:
    """Mixin: a bigint identity primary key `id`."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)


class TenantMissing(RuntimeError):
    pass


def server_settings(settings: Settings) -> dict[str, str]:
    """Session settings of every connection the service opens."""
    return {
        "statement_timeout": str(settings.statement_timeout_ms),
        "application_name": "pim",
        # JSONB predicates give the planner row guesses off by orders of magnitude; with JIT on,
        # those costs buy 50-500 ms of compilation for queries that run in a few milliseconds.
        "jit": "off",
    }


async def keep_session_state(_conn) -> None:
    """Lean reads change no session state, so a connection goes back to the pool without the
    default reset round trip (asyncpg still rolls back a transaction left open)."""


def pg_dsn(url: str) -> str:
    """The asyncpg DSN of a SQLAlchemy database URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ReadPool:
    """The raw asyncpg pool of lean reads. A checkout waits at most PIM_DB_POOL_TIMEOUT_SECONDS,
    then fails with PoolExhausted (503 with Retry-After), like the engine's pool: requests must not
    queue behind a starved pool until the client gives up."""

    def __init__(self, pool: asyncpg.Pool, timeout: float):
        self._pool = pool
        self._timeout = timeout

    def acquire(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return _Checkout(self._pool, self._timeout)

    def get_size(self) -> int:
        return self._pool.get_size()

    async def close(self) -> None:
        await self._pool.close()


class _Checkout:
    """`async with pool.acquire() as conn`: a class, not a generator-based context manager, as
    every lean read goes through it (several per request)."""

    __slots__ = ("_conn", "_pool", "_timeout")

    def __init__(self, pool: asyncpg.Pool, timeout: float):
        self._pool = pool
        self._timeout = timeout

    async def __aenter__(self) -> asyncpg.Connection:
        try:
            self._conn = await self._pool.acquire(timeout=self._timeout)
        except TimeoutError:
            raise PoolExhausted() from None
        return self._conn

    async def __aexit__(self, *_exc) -> None:
        await self._pool.release(self._conn)


async def create_read_pool(settings: Settings) -> ReadPool:
    """Raw asyncpg connections for single-statement reads on hot paths: no ORM session and no
    BEGIN/COMMIT; checkout and return cost far less than through SQLAlchemy's pool. Connects
    lazily (min_size=0), so the API starts, and /readyz reports, while Postgres is down."""
    pool = await asyncpg.create_pool(
        pg_dsn(settings.database_url),
        min_size=0,
        max_size=settings.db_pool_size,
        reset=keep_session_state,
        command_timeout=max(settings.statement_timeout_ms / 1000 * 2, 30),
        server_settings=server_settings(settings),
    )
    return ReadPool(pool, settings.db_pool_timeout_seconds)


@dataclass(frozen=True, slots=True)
class TenantReader:
    """The lean counterpart of a tenant-bound session: hot read routes get one instead of an
    `AsyncSession`, and run their single statements through `reading()` scoped by `tenant_id`."""

    tenant_id: int
    pool: ReadPool
    # a heavy read's budget (app/deps.py): its statements are cancelled after this long
    timeout_ms: int | None = None


def tenant_of(session: "AsyncSession | Session | TenantReader") -> int:
    if isinstance(session, TenantReader):
        return session.tenant_id
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        raise TenantMissing("session is not bound to a tenant")
    return tenant_id


_SQL_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
# a bound parameter: asyncpg's `$n`, SQLAlchemy's `:name`, or `{name}` of a template
_SQL_PARAM = re.compile(r"(\$[1-9][0-9]*|:[a-z_]+|\{[a-z_]+\})\Z")


def tenant_is(alias: str, param: str = "$1") -> str:
    """The tenant predicate of a raw statement on a tenant-owned table (one with `tenant_id`):
    `alias.tenant_id = param`, where `alias` names the table in the statement and `param` is
    the parameter bound to `tenant_of(session)`. The one place raw SQL spells it."""
    if not _SQL_NAME.match(alias) or not _SQL_PARAM.match(param):
        raise ValueError(f"not a table alias and parameter: {alias!r}, {param!r}")
    return f"{alias}.tenant_id = {param}"


def all_tenants(sql: str) -> str:
    """Marks a raw statement that deliberately spans tenants (returned unchanged): a key looked
    up by its hash before the tenant is known, the worker's maintenance, a task's reads and
    writes of its own job row by that row's id. The scoping test accepts no other exception."""
    return sql


@event.listens_for(Session, "do_orm_execute")
def _scope_to_tenant(state: ORMExecuteState) -> None:
    tenant_id = state.session.info.get("tenant_id")
    if tenant_id is None or not (state.is_select or state.is_update or state.is_delete):
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped, lambda cls: cls.tenant_id == tenant_id, include_aliases=True
        )
    )


@event.listens_for(Session, "before_flush")
def _assign_tenant(session: Session, _flush_context, _instances) -> None:
    tenant_id = session.info.get("tenant_id")
    for obj in session.new:
        if isinstance(obj, TenantScoped):
            if obj.tenant_id is None:
                if tenant_id is None:
                    raise TenantMissing(f"new {type(obj).__name__} without a tenant")
                obj.tenant_id = tenant_id
            elif tenant_id is not None and obj.tenant_id != tenant_id:
                raise TenantMissing("object belongs to another tenant")


async def read_connection(session: AsyncSession):
    """The session's asyncpg connection for single-statement reads on hot paths.

    No transaction is opened for them: SQLAlchemy begins one lazily, with its own first
    statement, so a raw statement before that runs on its own (autocommit)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


_Row = TypeVar("_Row")


async def one_or_not_found(
    session: AsyncSession, stmt: Select[_Row], message: str, *, for_update: bool = False
) -> _Row:
    """The one row `stmt` selects (locked with `for_update`), or NotFound(message)."""
    row = await session.scalar(stmt.with_for_update() if for_update else stmt)
    if row is None:
        raise NotFound(message)
    return row


async def written(session: AsyncSession, row: _Row) -> _Row:
    """`row` flushed and read back: with what the database filled in (its id, timestamps and
    version, `xmin`, which the answer's ETag is)."""
    await session.flush()
    await session.refresh(row)
    return row


_Keyed = TypeVar("_Keyed", bound=IdentityKey)


async def get_by_id(
    session: AsyncSession,
    model: type[_Keyed],
    object_id: int,
    what: str,
    *,
    for_update: bool = False,
) -> _Keyed:
    """The `model` row with this id (locked with `for_update`), or a 404 "<what> <id> not found"."""
    stmt = select(model).where(model.id == object_id)
    return await one_or_not_found(
        session, stmt, f"{what} {object_id} not found", for_update=for_update
    )


async def page_after_id(
    session: AsyncSession,
    model: type[_Keyed],
    *where: ColumnElement[bool],
    after: int | None,
    limit: int,
) -> list[_Keyed]:
    """Up to `limit` `model` rows (of those `where` keeps) after the id `after`, by id: a keyset
    page, which reads the primary key's index from where the previous page stopped."""
    stmt = select(model).where(*where).order_by(model.id).limit(limit)
    if after is not None:
        stmt = stmt.where(model.id > after)
    return list(await session.scalars(stmt))


# what a read runs on: a request's session, a lean reader, or a bare asyncpg connection (the
# benchmarks time the endpoints' code on one, without HTTP)
ReadSource: TypeAlias = "AsyncSession | TenantReader | asyncpg.Connection"


@asynccontextmanager
async def reading(source: ReadSource) -> AsyncIterator:
    """A connection for a single-statement read, from any ReadSource alike."""
    if isinstance(source, TenantReader):
        async with source.pool.acquire() as conn:
            if source.timeout_ms is None:
                yield conn
                return
            # SET LOCAL: the budget ends with the transaction, and the connection goes back to
            # the pool with the ordinary statement_timeout
            async with conn.transaction():
                await conn.execute(f"SET LOCAL statement_timeout = {int(source.timeout_ms)}")
                yield conn
    elif isinstance(source, AsyncSession):
        yield await read_connection(source)
    else:
        yield source


async def driver_connection(session: AsyncSession):
    """The session's asyncpg connection inside the session's transaction, for writes and
    multi-statement work: opens that transaction first when SQLAlchemy has not yet."""
    raw = await read_connection(session)
    if not raw.is_in_transaction():
        await session.execute(text("SELECT 1"))
    return raw


def create_engine(settings: Settings, **overrides) -> AsyncEngine:
    options = dict(
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=1800,
        connect_args={
            "server_settings": server_settings(settings),
            "command_timeout": max(settings.statement_timeout_ms / 1000 * 2, 30),
        },
    )
    options.update(overrides)
    engine = create_async_engine(settings.database_url, **options)
    event.listen(engine.sync_engine, "checkout", _discard_closed_connection)
    return engine


def _discard_closed_connection(dbapi_connection, _record, _proxy) -> None:
    """After a Postgres restart the pooled sockets are closed: asyncpg notices that locally,
    so replace such a connection at checkout instead of failing a request (no ping round trip)."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("pooled connection was closed by the server")


class PimSession(AsyncSession):
    """An AsyncSession whose `commit()` also runs what was registered with `after_commit`."""

    async def commit(self) -> None:
        await super().commit()
        await run_after_commit(self)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=PimSession, expire_on_commit=False, autoflush=False)


# --- after the commit ---------------------------------------------------------------------------

# What must happen only once the transaction's rows are visible to everyone (queue a job that reads
# them, drop a cache entry they replace) is registered with `after_commit`. The SQLAlchemy events
# below keep it only when the outermost transaction commits; `PimSession.commit` (the request's
# session) and `session_scope` (a worker's unit of work) run it after the commit.
AfterCommit = Callable[[], Awaitable[None]]
_PENDING = "pim.after_commit.pending"
_COMMITTED = "pim.after_commit.committed"


def after_commit(session: AsyncSession, action: AfterCommit) -> None:
    """Run `action` after the session's transaction commits; never if it rolls back."""
    session.info.setdefault(_PENDING, []).append(action)


@event.listens_for(Session, "after_commit")
def _keep_committed_actions(session: Session) -> None:
    if not session.in_nested_transaction():  # a RELEASE SAVEPOINT commits nothing yet
        session.info.setdefault(_COMMITTED, []).extend(session.info.pop(_PENDING, ()))


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back_actions(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)


async def run_after_commit(session: AsyncSession) -> None:
    """Run the actions of the transactions committed so far, in the order they were registered."""
    while actions := session.info.pop(_COMMITTED, None):
        for action in actions:
            await action()


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: int | None = None
) -> AsyncIterator[AsyncSession]:
    """Yield a session in a transaction: commit on success, roll back on error."""
    async with sessionmaker() as session:
        if tenant_id is not None:
            session.info["tenant_id"] = tenant_id
        async with session.begin():
            yield session
        await run_after_commit(session)
