"""The arq task that computes a segment's membership into ClickHouse.

One run: `computing` with a new generation number → stream the matching ids from
Postgres (one query, a server-side cursor, bounded memory) → columnar inserts of
blocks into ClickHouse → switch `current_generation` in Postgres (the new members
become visible at once) → `ready` → delete the older generations.

Transient failures (ClickHouse or Postgres unreachable) are retried with a delay;
after the last try, or for a definition that no longer fits the schema, the segment
is `failed` with `last_error`. arq does not retry a job that hits its timeout, so the
task marks the segment itself when it is cancelled. A run holds a lease (an advisory
lock that dies with its worker's connection); a worker that starts releases the jobs of
runs whose worker was killed, which arq would otherwise hold for an hour, and queues again
the computes whose job Redis lost (`recover_segments`, at start and periodically).
"""

import asyncio
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

import structlog
from arq.typing import WorkerCoroutine
from arq.worker import func
from sqlalchemy import case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clickhouse import ClickHouse
from app.db import all_tenants, session_scope, tenant_of
from app.jobs.context import WorkerContext, job_try
from app.jobs.enqueue import Job
from app.jobs.locks import Lock, LockKey, lease
from app.jobs.queue import Pending, revive
from app.jobs.transient import is_transient, retry_later
from app.models import Product, Segment
from app.products.upsert import driver_connection
from app.segments import dsl, members
from app.segments.schemas import SegmentStatus
from app.segments.service import (
    COMPUTE_FUNCTION,
    compile_predicate,
    compute_job_id,
    matching_products,
)
from app.webhooks.service import record_segment_computed

log = structlog.get_logger("pim.segments")

FETCH_ROWS = 50_000  # rows per round trip from the Postgres cursor
BLOCK_ROWS = 250_000  # rows per ClickHouse insert (10k-1M is the sweet spot)
MAX_TRIES = 3
TIMEOUT_S = 1800


def _lease(tenant_id: int, segment_id: int) -> LockKey:
    """One run per segment at a time. A second run (a recovery racing a live run) waits for the
    lease as long as it takes, then computes afresh."""
    return LockKey(Lock.SEGMENT, tenant_id, str(segment_id))


async def _start_run(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: int, segment_id: int
) -> int | None:
    """`computing` with the next generation number; None when the segment is gone."""
    async with session_scope(sessionmaker, tenant_id) as session:
        return await session.scalar(
            update(Segment)
            .where(Segment.id == segment_id)
            .values(status=SegmentStatus.computing.value, generation_seq=Segment.generation_seq + 1)
            .returning(Segment.generation_seq)
            .execution_options(synchronize_session=False)
        )


async def _driver_cursor(session: AsyncSession, statement):
    """A server-side cursor on the raw asyncpg connection for a SQLAlchemy Core statement.

    The ORM's row handling costs about as much as Postgres's own work for 300k rows;
    here rows arrive as asyncpg records. Values stay bound parameters (after the same
    bind processing SQLAlchemy applies, e.g. JSON serialisation).
    """
    connection = await session.connection()
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect)
    params = compiled.construct_params()
    args = []
    for name in compiled.positiontup or ():
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        args.append(processor(params[name]) if processor else params[name])
    raw = await driver_connection(session)
    return await raw.cursor(str(compiled), *args)


async def _write_generation(
    session: AsyncSession, clickhouse: ClickHouse, *, segment_id: int, generation: int
) -> int | None:
    """Evaluate the definition and insert the members as `generation`; how many (None: segment gone).

    One query (one snapshot) read through a cursor in batches; while ClickHouse takes one
    block, the next one is read from Postgres. At most two blocks are in memory.
    """
    definition = await session.scalar(select(Segment.definition).where(Segment.id == segment_id))
    if definition is None:
        return None
    _node, predicate = await compile_predicate(session, definition)
    tenant_id = tenant_of(session)
    computed_at = datetime.now(UTC).replace(microsecond=0)
    # raw SQL: the tenant condition is ours to add
    cursor = await _driver_cursor(
        session, matching_products(predicate).where(Product.tenant_id == tenant_id)
    )
    ids: list[int] = []
    skus: list[str] = []
    total = 0
    pending: asyncio.Task | None = None

    # every block of the run is a part of the same generation; a block adds its place and rows
    insert_block = partial(
        members.insert_block,
        clickhouse,
        tenant_id=tenant_id,
        segment_id=segment_id,
        generation=generation,
        computed_at=computed_at,
    )

    def insert(first_position: int, block_ids: list[int], block_skus: list[str]) -> asyncio.Task:
        return asyncio.ensure_future(
            insert_block(first_position=first_position, product_ids=block_ids, skus=block_skus)
        )

    try:
        while rows := await cursor.fetch(FETCH_ROWS):
            for row in rows:
                ids.append(row[0])
                skus.append(row[1])
            if len(ids) >= BLOCK_ROWS:
                if pending is not None:
                    await pending
                pending = insert(total, ids, skus)
                total += len(ids)
                ids, skus = [], []
        if pending is not None:
            await pending
        if ids:
            await insert(total, ids, skus)
            total += len(ids)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
    return total


async def _finish_run(
    sessionmaker,
    clickhouse: ClickHouse,
    tenant_id: int,
    segment_id: int,
    generation: int,
    count: int,
) -> bool:
    """Make `generation` the visible one; False when the segment is gone (or a newer one is visible).

    The webhook events of the compute (`segment.computed`, `segment.membership_changed` from the
    previous generation to this one) are recorded in the same transaction."""
    async with session_scope(sessionmaker, tenant_id) as session:
        previous = await session.scalar(
            select(Segment.current_generation).where(Segment.id == segment_id).with_for_update()
        )
        switched = await session.scalar(
            update(Segment)
            .where(
                Segment.id == segment_id,
                or_(Segment.current_generation.is_(None), Segment.current_generation < generation),
            )
            .values(
                current_generation=generation,
                computed_count=count,
                last_computed_at=datetime.now(UTC),
                last_error=None,
                # a run requested meanwhile keeps its own status
                status=case(
                    (Segment.generation_seq == generation, SegmentStatus.ready.value),
                    else_=Segment.status,
                ),
            )
            .returning(Segment.id)
            .execution_options(synchronize_session=False)
        )
        if switched is not None:
            await record_segment_computed(
                await driver_connection(session),
                clickhouse,
                tenant_id,
                segment_id=segment_id,
                previous=previous,
                generation=generation,
                count=count,
            )
    return switched is not None


async def _mark(
    sessionmaker,
    tenant_id: int,
    segment_id: int,
    generation: int,
    status: SegmentStatus,
    error: str,
) -> None:
    """Record a failure (or a pending retry) unless a newer run has started since."""
    try:
        async with session_scope(sessionmaker, tenant_id) as session:
            await session.execute(
                update(Segment)
                .where(Segment.id == segment_id, Segment.generation_seq == generation)
                .values(status=status.value, last_error=error[:2000])
                .execution_options(synchronize_session=False)
            )
    except Exception as exc:  # the database itself may be what failed
        log.warning(
            "segment_status_not_recorded",
            segment_id=segment_id,
            status=status.value,
            error=str(exc)[:300],
        )


async def _forget(clickhouse: ClickHouse, tenant_id: int, segment_id: int, generation: int) -> None:
    try:
        await members.drop_generations(
            clickhouse, tenant_id=tenant_id, segment_id=segment_id, only=generation
        )
    except Exception as exc:  # the next successful run deletes every older generation anyway
        log.warning(
            "segment_generation_not_deleted",
            segment_id=segment_id,
            generation=generation,
            error=str(exc)[:300],
        )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def compute_segment(ctx: WorkerContext, tenant_id: int, segment_id: int) -> dict[str, Any]:
    engine = ctx["sessionmaker"].kw["bind"]
    async with lease(engine, _lease(tenant_id, segment_id), wait_s=None):
        return await _compute(ctx, tenant_id, segment_id)


async def recover_segments(ctx: WorkerContext, *, idle_seconds: float = 0) -> int:
    """Give every segment left `queued` or `computing` a runnable compute (at worker start, then
    periodically for those unchanged for `idle_seconds`): Redis may have lost its job (the
    segment would stay `queued` forever: a new compute request only joins a live job), or
    the job of a killed worker is still marked in progress and arq would hold it for an hour.
    A live run holds the segment's lease (see `_lease`). How many were revived."""
    async with ctx["sessionmaker"]() as session:  # no tenant: every tenant's segments
        conn = await driver_connection(session)
        rows = await conn.fetch(
            all_tenants(
                """SELECT id, tenant_id FROM segments
                   WHERE status IN ('queued', 'computing') AND updated_at <= now() - make_interval(secs => $1)
                   ORDER BY id LIMIT 1000"""
            ),
            idle_seconds,
        )
    pending = [
        Pending(
            base=compute_job_id(r["id"]),
            job=Job(COMPUTE_FUNCTION, (r["tenant_id"], r["id"]), compute_job_id(r["id"])),
            leases=(_lease(r["tenant_id"], r["id"]),),
        )
        for r in rows
    ]
    if not pending:
        return 0
    counts = await revive(ctx["redis"], pending, engine=ctx["sessionmaker"].kw["bind"])
    revived = counts["released"] + counts["enqueued"]
    if revived:
        log.info("segments_recovered", released=counts["released"], enqueued=counts["enqueued"])
    return revived


_ORPHANS_PER_DELETE = 1000


async def cleanup_orphaned_members(ctx: WorkerContext) -> int:
    """Delete the ClickHouse rows of segments that are gone from Postgres; how many segments.

    A segment deleted while ClickHouse was down kept its rows (the delete is best effort).
    ClickHouse is read first: a segment's row is in Postgres before any of its members reach
    ClickHouse, so an id seen there and missing here afterwards belongs to a deleted segment.
    (Rows a compute writes after its segment was deleted are dropped by that compute.)
    """
    clickhouse: ClickHouse = ctx["clickhouse"]
    in_clickhouse = await members.segment_ids(clickhouse)
    if not in_clickhouse:
        return 0
    async with ctx["sessionmaker"]() as session:  # no tenant: every tenant's segments
        conn = await driver_connection(session)
        existing = await conn.fetch(
            all_tenants("SELECT id FROM segments WHERE id = ANY($1::bigint[])"),
            sorted(in_clickhouse),
        )
    orphans = sorted(in_clickhouse - {r["id"] for r in existing})
    for start in range(0, len(orphans), _ORPHANS_PER_DELETE):
        await members.drop_segments(clickhouse, orphans[start : start + _ORPHANS_PER_DELETE])
    if orphans:
        log.info("orphaned_memberships_deleted", segments=len(orphans))
    return len(orphans)


async def _compute(ctx: WorkerContext, tenant_id: int, segment_id: int) -> dict[str, Any]:
    sessionmaker = ctx["sessionmaker"]
    clickhouse = ctx["clickhouse"]
    tries = job_try(ctx)
    started = time.monotonic()

    generation = await _start_run(sessionmaker, tenant_id, segment_id)
    if generation is None:
        return {"segment_id": segment_id, "status": "gone"}
    try:
        async with session_scope(sessionmaker, tenant_id) as session:
            count = await _write_generation(
                session, clickhouse, segment_id=segment_id, generation=generation
            )
        if count is None or not await _finish_run(
            sessionmaker, clickhouse, tenant_id, segment_id, generation, count
        ):
            await _forget(clickhouse, tenant_id, segment_id, generation)
            return {"segment_id": segment_id, "status": "gone"}
    except dsl.DefinitionError as exc:
        await _mark(sessionmaker, tenant_id, segment_id, generation, SegmentStatus.failed, str(exc))
        return {"segment_id": segment_id, "status": "failed"}
    except asyncio.CancelledError:
        # arq runs a job again when a worker shutdown cancelled it, but not when it hit its timeout
        if time.monotonic() - started >= TIMEOUT_S - 1:
            status, error = SegmentStatus.failed, f"timed out after {TIMEOUT_S} s"
        else:
            status, error = SegmentStatus.queued, "interrupted by a worker shutdown; it runs again"
        await _mark(sessionmaker, tenant_id, segment_id, generation, status, error)
        await _forget(clickhouse, tenant_id, segment_id, generation)
        raise
    except Exception as exc:
        await _forget(clickhouse, tenant_id, segment_id, generation)
        if not is_transient(exc):
            await _mark(
                sessionmaker,
                tenant_id,
                segment_id,
                generation,
                SegmentStatus.failed,
                _describe(exc),
            )
            raise
        retry = retry_later(tries, max_tries=MAX_TRIES)
        if retry is not None:
            status, error = (
                SegmentStatus.queued,
                f"try {tries} of {MAX_TRIES} failed, retrying: {_describe(exc)}",
            )
        else:
            status, error = (
                SegmentStatus.failed,
                f"failed after {MAX_TRIES} tries: {_describe(exc)}",
            )
        await _mark(sessionmaker, tenant_id, segment_id, generation, status, error)
        if retry is not None:
            raise retry from exc
        return {"segment_id": segment_id, "status": "failed"}

    try:
        await members.drop_generations(
            clickhouse, tenant_id=tenant_id, segment_id=segment_id, below=generation
        )
    except Exception as exc:  # invisible rows; the next run tries again
        log.warning(
            "segment_old_generations_not_deleted", segment_id=segment_id, error=str(exc)[:300]
        )
    seconds = round(time.monotonic() - started, 3)
    log.info(
        "segment_computed",
        segment_id=segment_id,
        generation=generation,
        count=count,
        seconds=seconds,
    )
    return {
        "segment_id": segment_id,
        "status": "ready",
        "count": count,
        "generation": generation,
        "seconds": seconds,
    }


# arq settings: keep no result (a kept result would block the next enqueue with the same id),
# and allow more tries than MAX_TRIES so that the task, not arq, decides when to give up.
compute_segment_task = func(
    cast(WorkerCoroutine, compute_segment),  # arq types ctx as a plain dict
    name=COMPUTE_FUNCTION,
    timeout=TIMEOUT_S,
    keep_result=0,
    max_tries=MAX_TRIES + 2,
)
