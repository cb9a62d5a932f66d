"""Uploaded files as numbered chunks in Postgres (`import_chunks`), so a worker on any host can read them.

Raw asyncpg: an upload stores each chunk in its own short transaction (no connection is held
while the client sends the next bytes) and chunks are read one at a time, so memory stays at
about one chunk.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import driver_connection, session_scope, tenant_is
from app.errors import Conflict, PayloadTooLarge
from app.jobs.locks import Lock, xact_lock

CHUNK_BYTES = 4 << 20
# the jobs whose stored file counts against the tenant's quota: still uploading, or not finished
STORING_STATUSES = ("pending", "mapping", "importing")

_STORE_CHUNK = f"""
WITH job AS (
    UPDATE import_jobs SET size_bytes = size_bytes + octet_length($3::bytea)
    WHERE id = $1 AND {tenant_is("import_jobs", "$4")} AND status = 'pending' RETURNING id
)
INSERT INTO import_chunks (job_id, seq, data) SELECT job.id, $2, $3::bytea FROM job
"""


class ChunkWriter:
    """Buffers bytes and stores a row per `CHUNK_BYTES`; `close()` writes the rest.

    A chunk is stored while the next one is received (one insert in flight: memory stays at two
    chunks); its error is raised by the next `write` or by `close`. The chunks commit without
    waiting for the WAL flush: the upload's answer follows the job's own (synchronous) commit,
    which flushes the WAL of every chunk before it.

    The job (status `pending`) counts what it has stored in `size_bytes`; a chunk that would take
    the tenant's stored uploads (`STORING_STATUSES`) over `quota_bytes` is a 413."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        job_id: uuid.UUID,
        tenant_id: int,
        *,
        quota_bytes: int,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.job_id = job_id
        self.tenant_id = tenant_id
        self.quota_bytes = quota_bytes
        self.chunk_bytes = chunk_bytes
        self.seq = 0
        self.size = 0
        self._buffer = bytearray()
        self._storing: asyncio.Task[None] | None = None

    async def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= self.chunk_bytes:
            chunk = bytes(self._buffer[: self.chunk_bytes])
            del self._buffer[: self.chunk_bytes]
            await self._store(chunk)

    async def close(self) -> None:
        if self._buffer:
            await self._store(bytes(self._buffer))
            self._buffer = bytearray()
        await self._stored()

    async def discard(self) -> None:
        """Stop the insert in flight (the upload failed)."""
        if self._storing is not None:
            self._storing.cancel()
            with contextlib.suppress(BaseException):
                await self._storing
            self._storing = None

    async def _store(self, chunk: bytes) -> None:
        await self._stored()
        self._storing = asyncio.ensure_future(self._insert(chunk, self.seq))
        self.seq += 1

    async def _stored(self) -> None:
        if self._storing is not None:
            storing, self._storing = self._storing, None
            await storing

    async def _insert(self, data: bytes, seq: int) -> None:
        async with session_scope(self.sessionmaker, self.tenant_id) as session:
            conn = await driver_connection(session)
            await conn.execute("SET LOCAL synchronous_commit = off")
            # the tenant's uploads take turns between reading the total and adding to it
            await xact_lock(conn, Lock.IMPORT_STORAGE, self.tenant_id)
            stored = await conn.fetchval(
                f"SELECT coalesce(sum(size_bytes), 0) FROM import_jobs WHERE {tenant_is('import_jobs')}"
                " AND status = ANY($2::text[])",
                self.tenant_id,
                list(STORING_STATUSES),
            )
            if stored + len(data) > self.quota_bytes:
                raise PayloadTooLarge(
                    f"The tenant's stored uploads would exceed the quota of {self.quota_bytes} bytes "
                    f"({stored} bytes are stored by uploads not yet imported): import or delete "
                    "(DELETE /api/pim/import/{job_id}/) earlier uploads first"
                )
            stored_chunk = await conn.execute(_STORE_CHUNK, self.job_id, seq, data, self.tenant_id)
            if stored_chunk == "INSERT 0 0":
                raise Conflict("The upload was deleted while it was being sent")


async def read_chunks(conn, job_id: uuid.UUID, *, start_offset: int = 0) -> AsyncIterator[bytes]:
    """The stored file from `start_offset` on, one chunk at a time."""
    sizes = await conn.fetch(
        "SELECT seq, octet_length(data) AS size FROM import_chunks WHERE job_id = $1 ORDER BY seq",
        job_id,
    )
    position = 0
    for row in sizes:
        seq, size = row["seq"], row["size"]
        if position + size <= start_offset:
            position += size
            continue
        skip = max(0, start_offset - position)
        if skip:  # substring is 1-based; only the first chunk read is partial
            data = await conn.fetchval(
                "SELECT substring(data FROM $3) FROM import_chunks WHERE job_id = $1 AND seq = $2",
                job_id,
                seq,
                skip + 1,
            )
        else:
            data = await conn.fetchval(
                "SELECT data FROM import_chunks WHERE job_id = $1 AND seq = $2", job_id, seq
            )
        position += size
        yield data


async def read_range(
    conn, job_id: uuid.UUID, offset: int, length: int, *, chunk_bytes: int = CHUNK_BYTES
) -> bytes:
    """`length` bytes of the stored file from `offset` (fewer at its end); chunks have `chunk_bytes` each.

    Only the one or two chunks the range falls in are read, and only their part of it: the cost
    does not depend on the file's size.
    """
    out = bytearray()
    while len(out) < length:
        seq, skip = divmod(offset + len(out), chunk_bytes)
        part = await conn.fetchval(
            "SELECT substring(data FROM $3 FOR $4) FROM import_chunks WHERE job_id = $1 AND seq = $2",
            job_id,
            seq,
            skip + 1,
            length - len(out),
        )
        if not part:
            break
        out += part
    return bytes(out)


async def stored_size(conn, job_id: uuid.UUID) -> int:
    return await conn.fetchval(
        "SELECT coalesce(sum(octet_length(data)), 0) FROM import_chunks WHERE job_id = $1", job_id
    )


async def delete_chunks(conn, job_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM import_chunks WHERE job_id = $1", job_id)
