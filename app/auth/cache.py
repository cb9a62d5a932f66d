"""A per-process cache of API-key principals, invalidated by Postgres NOTIFY.

Looking a key up costs a pool checkout and a round trip on every request; with the cache a
hot read route needs neither for auth. Revocation must still act at once, so:

- `revoke_api_key` sends `NOTIFY pim_api_key_revoked` in its own transaction (delivered on
  commit, before the 204 leaves) and drops the key from its own process's cache directly;
- every process LISTENs on one connection of its own and drops the key it is told about;
- the cache is used only while that listener is connected: when it is lost, the cache is
  emptied and bypassed until a new listener is up (a missed notification can't leave a
  revoked key usable);
- a lookup that raced a notification is not stored (a generation counter), and entries
  expire after `PIM_API_KEY_CACHE_SECONDS` in any case.
"""

import asyncio
import time

import asyncpg
import structlog

from app.auth.service import (
    REVOKED_CHANNEL,
    Principal,
    principal_from_api_key,
)
from app.db import ReadPool, pg_dsn
from app.errors import Unauthorized

MAX_ENTRIES = 10_000
# keys known to be wrong: a wrong key never becomes valid (keys are random, revocation is final)
MAX_REJECTED = 10_000
RECONNECT_SECONDS = 2.0

log = structlog.get_logger("pim.auth")


class PrincipalCache:
    def __init__(self, ttl_seconds: float):
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._rejected: dict[str, None] = {}  # insertion-ordered: the oldest is dropped first
        self._generation = 0
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task | None = None
        self._closed = False

    @property
    def active(self) -> bool:
        return self.ttl > 0 and self._listener is not None and not self._listener.is_closed()

    def get(self, key_hash: str) -> Principal | None:
        if not self.active:
            return None
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        principal, expires = entry
        if expires < time.monotonic():
            self._entries.pop(key_hash, None)
            return None
        return principal

    def generation(self) -> int:
        return self._generation

    def put(self, key_hash: str, principal: Principal, generation: int) -> None:
        """Store a principal read from the database, unless a revocation arrived since the read began."""
        if not self.active or generation != self._generation:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key_hash] = (principal, time.monotonic() + self.ttl)

    def rejected(self, key_hash: str) -> bool:
        return key_hash in self._rejected

    def reject(self, key_hash: str) -> None:
        """Remember a key the database does not know (or knows revoked), so that sending it again
        costs no lookup. Kept whether or not the listener is up: nothing makes such a key valid."""
        if len(self._rejected) >= MAX_REJECTED:
            del self._rejected[next(iter(self._rejected))]
        self._rejected[key_hash] = None

    def forget(self, key_hash: str | None = None) -> None:
        self._generation += 1
        if key_hash is None:
            self._entries.clear()
        else:
            self._entries.pop(key_hash, None)

    # --- the listener -------------------------------------------------------------------

    async def start(self, database_url: str) -> None:
        if self.ttl > 0:
            self._task = asyncio.create_task(self._keep_listening(pg_dsn(database_url)))

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._drop_listener()

    async def _keep_listening(self, dsn: str) -> None:
        while not self._closed:
            if self._listener is None or self._listener.is_closed():
                await self._drop_listener()
                try:
                    conn = await asyncpg.connect(
                        dsn, timeout=5, server_settings={"application_name": "pim-auth-listener"}
                    )
                    conn.add_termination_listener(lambda _conn: self.forget())
                    await conn.add_listener(REVOKED_CHANNEL, self._on_revoked)
                except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                    log.warning("api key cache listener unavailable", error=str(exc))
                else:
                    self.forget()  # whatever was revoked while nobody listened
                    self._listener = conn
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _drop_listener(self) -> None:
        conn, self._listener = self._listener, None
        self.forget()
        if conn is not None and not conn.is_closed():
            conn.terminate()

    def _on_revoked(self, _conn, _pid, _channel, key_hash: str) -> None:
        self.forget(key_hash or None)


async def look_up_api_key(
    cache: PrincipalCache, pool: ReadPool, api_key: str, key_hash: str
) -> Principal:
    """A key that is not in the cache, from the database (Unauthorized, and remembered as wrong, when it is unknown)."""
    generation = cache.generation()
    async with pool.acquire() as conn:
        try:
            principal = await principal_from_api_key(conn, api_key)
        except Unauthorized:
            cache.reject(key_hash)
            raise
    cache.put(key_hash, principal, generation)
    return principal
