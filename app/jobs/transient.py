"""Which failures mean "try again later": one list for every task and for the worker loop.

A transient failure rolled the work back whole (a unit of work commits all or nothing) and the
same work may well succeed on the next try: a connection lost or refused, a timeout, a lock wait
cancelled, a deadlock, a serialization failure, Postgres restarting, Redis or ClickHouse down.
Anything else is the work's own fault and retrying it only repeats it.
"""

import asyncio

import asyncpg
from arq import Retry
from asynch.errors import NetworkError, SocketTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from app.errors import Unavailable

# what a Redis outage raises (WatchError: a connection lost while a transaction watched a key)
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, WatchError, OSError, asyncio.TimeoutError)

TRANSIENT: tuple[type[BaseException], ...] = (
    *REDIS_DOWN,  # OSError and asyncio.TimeoutError (= TimeoutError) cover sockets of every client
    asyncpg.PostgresConnectionError,  # also ConnectionDoesNotExistError, CannotConnectNowError
    asyncpg.InterfaceError,
    asyncpg.QueryCanceledError,  # a statement or lock timeout
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.LockNotAvailableError,
    asyncpg.AdminShutdownError,
    OperationalError,  # SQLAlchemy's wrapping of the driver's connection errors
    InterfaceError,
    NetworkError,  # ClickHouse
    SocketTimeoutError,
    Unavailable,  # a backing service reported down by our own clients (ClickHouse, a pool)
)

RETRY_DELAY_S = 5  # the n-th retry waits n times this


def is_transient(exc: BaseException) -> bool:
    """Whether `exc`, or what it wraps (SQLAlchemy's DBAPIError wraps the driver's error, and a
    task may re-raise with `from`), is transient."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, TRANSIENT) or (
            isinstance(current, DBAPIError) and current.connection_invalidated
        ):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
        seen += 1
    return False


def retry_later(job_try: int, *, max_tries: int) -> Retry | None:
    """arq's `Retry` for the next try of a job on its `job_try`-th try (each retry waits
    `RETRY_DELAY_S` longer), or None when that was the last of `max_tries`."""
    return Retry(defer=RETRY_DELAY_S * job_try) if job_try < max_tries else None
