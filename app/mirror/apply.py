"""The worker's side of the read model: change-log entries applied in batches, and the rebuild.

A batch, in one REPEATABLE READ transaction holding the tenant's `pim.mirror` lock (one writer
per tenant): the tenant's `last_seq` in that snapshot; the products named by the entries after
the model's watermark (at most `batch` entries); their states in the same snapshot (a product
missing there was deleted); their current rows in the model. Products whose state changed get a
cancel row for the old state and a row for the new one, in one INSERT; then the state row moves
the watermark. Entries are in commit order (`app/changes`: a tenant's seqs are taken under its
counter row's lock), so every entry up to the snapshot's `last_seq` is visible in it, and the
states read are at least as new as those entries.

Idempotent rather than atomic: a batch that wrote its rows but not its watermark is applied
again, and then finds the model already equal to Postgres for those products (nothing written
twice). A model with no state, or whose watermark is older than the change log keeps
(retention), is rebuilt from Postgres.
"""

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from app.clickhouse import ClickHouse
from app.db import tenant_is
from app.jobs.locks import Lock
from app.mirror.model import (
    COLUMNS,
    ENTRY_TABLE,
    NUMBER_TABLE,
    ROW_SQL,
    STATE_COLUMNS,
    TABLE,
    State,
    mark_counted,
    read_state,
    state_of,
    write_state,
)

BATCH = 50_000  # change-log entries per batch
REBUILD_BLOCK = 50_000  # rows per INSERT of a rebuild
NEEDS_REBUILD = -1
BUSY = -2

_SEQS_SQL = (
    "SELECT last_seq, pruned_through FROM product_change_seqs "
    f"WHERE {tenant_is('product_change_seqs')}"
)
_CURRENT_SQL = f"""
SELECT id, version, {", ".join(f"anyIf({c}, sign = 1)" for c in STATE_COLUMNS)}
FROM {TABLE}
WHERE tenant_id = %(tenant_id)s AND generation = %(generation)s AND id IN %(ids)s
GROUP BY id, version HAVING sum(sign) > 0
"""


async def _try_lock(conn: asyncpg.Connection, tenant_id: int) -> bool:
    return await conn.fetchval(
        f"SELECT pg_try_advisory_xact_lock({Lock.MIRROR.key('$1')})", tenant_id
    )


async def _insert(clickhouse: ClickHouse, rows: list[tuple]) -> None:
    """Rows of COLUMNS in one columnar INSERT."""
    if rows:
        await clickhouse.insert_columns(TABLE, COLUMNS, [list(c) for c in zip(*rows, strict=True)])


# a statement per product batch whose plan the planner cannot cost (jsonb_each per row): JIT
# compiling it took longer than running it
_NO_JIT = "SET LOCAL jit = off"


async def _current_rows(
    clickhouse: ClickHouse, tenant_id: int, generation: int, ids: Sequence[int]
) -> dict[int, tuple[int, tuple]]:
    """The model's current state of these products (those it has), with its row's version. A
    cancel row carries the version of the row it cancels, so a state and its cancel row make one
    (id, version) group that sums to 0 and the state still in force is the group left."""
    current: dict[int, tuple[int, tuple]] = {}
    for start in range(0, len(ids), 10_000):
        chunk = list(ids[start : start + 10_000])
        rows = await clickhouse.fetch(
            _CURRENT_SQL, {"tenant_id": tenant_id, "generation": generation, "ids": tuple(chunk)}
        )
        for row in rows:
            current[int(row[0])] = (int(row[1]), _normalised(row[2:]))
    return current


def _normalised(state: Sequence[Any]) -> tuple:
    """A state as read back from ClickHouse, comparable with `state_of` (lists, not tuples)."""
    return tuple(list(v) if isinstance(v, (list, tuple)) else v for v in state)


async def apply_batch(
    conn: asyncpg.Connection, clickhouse: ClickHouse, tenant_id: int, *, batch: int = BATCH
) -> int:
    """Apply up to `batch` entries; the number applied (0: caught up), NEEDS_REBUILD or BUSY."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if not await _try_lock(conn, tenant_id):
            return BUSY
        await conn.execute(_NO_JIT)
        seqs = await conn.fetchrow(_SEQS_SQL, tenant_id)
        last, pruned = (seqs["last_seq"], seqs["pruned_through"]) if seqs else (0, 0)
        state = await read_state(clickhouse, tenant_id)
        if state is None or state.seq < 0 or (state.seq < pruned and state.seq < last):
            return NEEDS_REBUILD
        if state.seq >= last:
            return 0
        upto = min(last, state.seq + batch)
        ids = [
            r[0]
            for r in await conn.fetch(
                "SELECT DISTINCT product_id FROM product_changes "
                f"WHERE {tenant_is('product_changes')} AND seq > $2 AND seq <= $3 ORDER BY 1",
                tenant_id,
                state.seq,
                upto,
            )
        ]
        new = {
            r["id"]: state_of(r)
            for r in await conn.fetch(f"{ROW_SQL} AND p.id = ANY($2::bigint[])", tenant_id, ids)
        }
        old = await _current_rows(clickhouse, tenant_id, state.generation, ids)
        rows: list[tuple] = []
        delta = 0
        for product_id in ids:
            found, after = old.get(product_id), new.get(product_id)
            before = found[1] if found is not None else None
            if before == after:
                continue
            if found is not None:
                # the cancel row takes the version of the row it cancels (see _current_rows)
                version, cancelled = found
                rows.append((tenant_id, state.generation, product_id, version, -1, *cancelled))
                delta -= 1
            if after is not None:
                rows.append((tenant_id, state.generation, product_id, last, 1, *after))
                delta += 1
        await _insert(clickhouse, rows)
        await write_state(
            clickhouse, tenant_id, State(state.generation, upto, state.products + delta)
        )
        return upto - state.seq


async def catch_up(
    conn: asyncpg.Connection, clickhouse: ClickHouse, tenant_id: int, *, batch: int = BATCH
) -> int:
    """Apply batches until the model holds every committed entry; NEEDS_REBUILD or BUSY as
    `apply_batch` says, else the entries applied."""
    applied = 0
    while True:
        n = await apply_batch(conn, clickhouse, tenant_id, batch=batch)
        if n < 0:
            return n
        if n == 0:
            return applied
        applied += n


async def rebuild(conn: asyncpg.Connection, clickhouse: ClickHouse, tenant_id: int) -> State:
    """Write the tenant's products as a new generation from one Postgres snapshot (the views add
    up its counts; then it is marked counted), switch the state to it, and delete the older
    generations' rows and counts (asynchronously, mutations)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(f"SELECT pg_advisory_xact_lock({Lock.MIRROR.key('$1')})", tenant_id)
        await conn.execute(_NO_JIT)
        seqs = await conn.fetchrow(_SEQS_SQL, tenant_id)
        last = seqs["last_seq"] if seqs else 0
        previous = await read_state(clickhouse, tenant_id)
        # past any generation a rebuild that did not finish may have left rows in
        generation = max(previous.generation + 1 if previous else 1, time.time_ns() // 1000)
        count = 0
        block: list[tuple] = []
        async for row in conn.cursor(f"{ROW_SQL} ORDER BY p.id", tenant_id, prefetch=5_000):
            block.append((tenant_id, generation, row[0], last, 1, *state_of(row)))
            if len(block) >= REBUILD_BLOCK:
                await _insert(clickhouse, block)
                count += len(block)
                block = []
        await _insert(clickhouse, block)
        count += len(block)
        await mark_counted(clickhouse, tenant_id, generation)
        state = State(generation, last, count)
        await write_state(clickhouse, tenant_id, state)
    for table in (TABLE, ENTRY_TABLE, NUMBER_TABLE):
        await clickhouse.execute(
            f"ALTER TABLE {table} DELETE WHERE tenant_id = %(tenant_id)s AND generation != %(generation)s",
            {"tenant_id": tenant_id, "generation": generation},
        )
    return state
