"""Uploaded files as numbered chunks in Postgres (`import_chunks`), so a worker on any host can read them.

Raw asyncpg on the caller's connection: chunks are written inside the upload's
transaction and read one at a time, so memory stays at about one chunk.
"""

import uuid
from collections.abc import AsyncIterator

CHUNK_BYTES = 4 << 20


class ChunkWriter:
    """Buffers bytes and inserts a row per `CHUNK_BYTES`; `close()` writes the rest."""

    def __init__(self, conn, job_id: uuid.UUID, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.conn = conn
        self.job_id = job_id
        self.chunk_bytes = chunk_bytes
        self.seq = 0
        self.size = 0
        self._buffer = bytearray()

    async def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= self.chunk_bytes:
            await self._insert(bytes(self._buffer[: self.chunk_bytes]))
            del self._buffer[: self.chunk_bytes]

    async def close(self) -> None:
        if self._buffer:
            await self._insert(bytes(self._buffer))
            self._buffer = bytearray()

    async def _insert(self, data: bytes) -> None:
        await self.conn.execute("INSERT INTO import_chunks (job_id, seq, data) VALUES ($1, $2, $3)", self.job_id, self.seq, data)
        self.seq += 1


async def read_chunks(conn, job_id: uuid.UUID, *, start_offset: int = 0) -> AsyncIterator[bytes]:
    """The stored file from `start_offset` on, one chunk at a time."""
    sizes = await conn.fetch(
        "SELECT seq, octet_length(data) AS size FROM import_chunks WHERE job_id = $1 ORDER BY seq", job_id
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
                "SELECT substring(data FROM $3) FROM import_chunks WHERE job_id = $1 AND seq = $2", job_id, seq, skip + 1
            )
        else:
            data = await conn.fetchval("SELECT data FROM import_chunks WHERE job_id = $1 AND seq = $2", job_id, seq)
        position += size
        yield data


async def read_range(conn, job_id: uuid.UUID, offset: int, length: int, *, chunk_bytes: int = CHUNK_BYTES) -> bytes:
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
    return await conn.fetchval("SELECT coalesce(sum(octet_length(data)), 0) FROM import_chunks WHERE job_id = $1", job_id)


async def delete_chunks(conn, job_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM import_chunks WHERE job_id = $1", job_id)
