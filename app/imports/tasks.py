"""The arq task that streams a stored CSV file into products, resumable at any batch.

Per batch of `BATCH_ROWS` records, one transaction writes the products (through
`write_rows`, the bulk endpoint's upsert), the rejected rows, and the job's progress with
the byte offset and row number after the batch. A worker that dies loses at most the
uncommitted batch; the next run reads the file from the committed offset, so rows are
neither lost nor counted twice.

Only one run per job at a time: a session-level advisory lock on a dedicated
connection is the lease. It disappears with the connection when a worker dies, so a
restarted worker (which re-queues every job left in `importing`) can take over at once.

Fairness: a run works for one slice (`SLICE_SECONDS`, or from `MIN_SLICE_SECONDS` on as soon
as another job waits for a worker slot), then queues the next slice at the back of the queue.
A tenant's imports take turns (a second advisory lock, per tenant): one tenant never holds
more than one worker slot with imports, and its next import in round robin gets the turn.
"""

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import ensure_category_paths, get_field_map, lock_schema
from app.changes.context import CONTEXT_KEY, import_context
from app.db import all_tenants, driver_connection, tenant_is
from app.imports.conventions import Conventions
from app.imports.plan import ImportPlan
from app.imports.rows import ConvertedRow, RowConverter, RowError, merge_items
from app.imports.service import MAX_JOB_ERRORS, TASK_NAME, arq_job_id
from app.imports.sources import transformed
from app.imports.storage import delete_chunks
from app.imports.xlsx import XlsxError
from app.jobs.collector import collector_paused
from app.jobs.context import WorkerContext, job_try
from app.jobs.enqueue import Job, send_now
from app.jobs.locks import Lease, LeaseBusy, Lock, LockKey, lease, xact_lock
from app.jobs.queue import Pending, jobs_waiting, revive
from app.jobs.transient import REDIS_DOWN, is_transient, retry_later
from app.products.tasks import note_writes
from app.products.upsert import UpsertRow, write_rows
from app.webhooks.service import record_import_finished

log = structlog.get_logger("pim.imports.task")

BATCH_ROWS = 5000
YIELD_EVERY = (
    25  # rows parsed between turns of the writing task: it resumes within ~1 ms of a reply
)
SLICE_SECONDS = (
    60  # then the tenant's next import (or this one again) is queued: far from arq's job_timeout
)
MIN_SLICE_SECONDS = (
    2.0  # after this long a slice also ends when another job waits for a worker slot
)
# a second run of a job waits this long for the lease (the first one may be just finishing), then
# steps aside: the run holding it goes on with the job
LOCK_WAIT_SECONDS = 5.0
MAX_TRIES = 5
UNCONFIRMED_DAYS = 7


def _leases(tenant_id: int, job_id: uuid.UUID) -> tuple[LockKey, LockKey]:
    """A run's lease on its job, and the tenant's turn (one running import per tenant)."""
    return LockKey(Lock.IMPORT, tenant_id, str(job_id)), LockKey(Lock.IMPORT_TURN, tenant_id)


@dataclass(slots=True)
class _Pending:
    """One SKU's rows in a batch, merged in file order, and the product they write.

    The product is built as the rows arrive, in the parsing's time: the batch's transaction
    then only waits on the database.
    """

    item: dict[str, Any]
    paths: tuple[str, ...] | None
    rows: list[int]
    cells: list[list[str]]
    product: UpsertRow  # its categories are set by the commit (new paths need the database)


@dataclass(slots=True)
class _Schema:
    """The schema rows are converted with: its version (`updated_at`), and the converter built
    from it, or why the confirmed mapping no longer fits it."""

    version: Any
    fields: dict
    converter: RowConverter | None
    unfit: str | None = None

    def convert(self, cells: list[str]) -> ConvertedRow:
        if self.converter is None:
            raise RowError(
                f"The schema changed during the import and no longer fits the mapping: {self.unfit}"
            )
        return self.converter.convert(cells)

    def sku_of(self, cells: list[str]) -> str | None:
        return self.converter.sku_of(cells) if self.converter is not None else None


@dataclass(slots=True)
class _Batch:
    schema: _Schema
    start_row: int = 0  # the row before its first one
    records: int = 0
    processed: int = 0
    items: dict[str, _Pending] = field(default_factory=dict)
    rejected: list[tuple[int, str | None, list[str], str]] = field(default_factory=list)
    converted: list[tuple[int, list[str]]] = field(
        default_factory=list
    )  # the rows given to the converter
    end_row: int = 0
    end_offset: int = 0
    carry: dict[str, Any] | None = (
        None  # a row transform's state after the batch (Shopify's current handle)
    )
    locked: asyncio.Event = field(default_factory=asyncio.Event)  # it holds its write locks

    def add(self, row: int, cells: list[str]) -> None:
        """Convert a row with the batch's schema: accepted, or rejected with the reason."""
        self.converted.append((row, cells))
        try:
            self.accept(row, self.schema.convert(cells), cells)
        except RowError as exc:
            self.rejected.append((row, self.schema.sku_of(cells), cells, str(exc)))

    def under(self, schema: _Schema) -> "_Batch":
        """The same records converted again with another schema (one changed since they were parsed)."""
        again = _Batch(
            schema,
            self.start_row,
            self.records,
            self.processed,
            end_row=self.end_row,
            end_offset=self.end_offset,
        )
        rows = {row for row, _cells in self.converted}
        again.rejected = [
            r for r in self.rejected if r[0] not in rows
        ]  # unreadable records stay rejected
        for row, cells in self.converted:
            again.add(row, cells)
        again.rejected.sort(key=lambda r: r[0])
        return again

    def accept(self, row: int, converted: ConvertedRow, cells: list[str]) -> None:
        """Add a valid row; a SKU seen before in the batch is merged into its earlier rows."""
        sku = converted.item["sku"]
        pending = self.items.get(sku)
        if pending is None:
            product = UpsertRow.of_valid_item(row, converted.item)
            self.items[sku] = _Pending(
                converted.item, converted.category_paths, [row], [cells], product
            )
            return
        pending.item = merge_items(pending.item, converted.item)
        pending.product = UpsertRow.of_valid_item(pending.rows[0], pending.item)
        if converted.category_paths is not None:
            pending.paths = converted.category_paths
        pending.rows.append(row)
        pending.cells.append(cells)


@dataclass
class _Job:
    id: uuid.UUID
    tenant_id: int
    resume_offset: int
    resume_row: int
    error_count: int
    plan: ImportPlan  # a workbook's resume_offset is a sheet row
    transform_state: dict[str, Any] | None = None


# the task's own job row, by its id
PROGRESS_SQL = all_tenants("""
UPDATE import_jobs
SET processed_rows = processed_rows + $2,
    created = created + $3,
    updated = updated + $4,
    failed = failed + $5,
    errors = errors || $6::text::jsonb,
    resume_offset = $7,
    resume_row = $8,
    total_rows = CASE WHEN $9 THEN processed_rows + $2 ELSE greatest(total_rows, processed_rows + $2) END,
    status = CASE WHEN $9 THEN 'done' ELSE status END,
    finished_at = CASE WHEN $9 THEN now() ELSE finished_at END
WHERE id = $1 AND status = 'importing'
""")

ERRORS_SQL = """
INSERT INTO import_row_errors (job_id, row, sku, cells, detail)
SELECT $1, r, s, c::jsonb, d FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[]) AS t(r, s, c, d)
ON CONFLICT (job_id, row) DO NOTHING
"""


def _job_session(ctx: WorkerContext, job: _Job) -> AsyncSession:
    session = ctx["sessionmaker"]()
    session.info["tenant_id"] = job.tenant_id
    session.info[CONTEXT_KEY] = import_context(job.id)  # the change log's actor
    return session


async def _load_schema(session: AsyncSession, job: _Job, version: Any) -> _Schema:
    fields = await get_field_map(session)
    try:
        converter = job.plan.converter(fields)
    except ValueError as exc:  # the schema lost a mapped field
        return _Schema(version, fields, None, str(exc))
    return _Schema(version, fields, converter)


class _Importer:
    def __init__(self, ctx: WorkerContext, job: _Job, lock_conn, schema: _Schema) -> None:
        self.ctx = ctx
        self.job = job
        self.lock_conn = lock_conn  # also reads the chunks: it is otherwise idle
        self.schema = schema

    @classmethod
    async def open(cls, ctx: WorkerContext, job: _Job, lock_conn) -> "_Importer":
        """The job's importer under the schema in force now; ValueError when the confirmed
        mapping no longer fits it."""
        async with _job_session(ctx, job) as session, session.begin():
            schema = await _load_schema(session, job, await lock_schema(session))
        if schema.converter is None:
            raise ValueError(schema.unfit)
        return cls(ctx, job, lock_conn, schema)

    @property
    def upsert_fields(self) -> dict:
        # Values leave the converter coerced with the whole schema (per row, while the previous
        # batch is being written); write_rows still needs the fields whose rules span rows
        # or depend on the product existing: `required` (new products) and `unique`.
        return {name: f for name, f in self.schema.fields.items() if f.required or f.unique}

    async def _slice_over(self, started: float, deadline: float) -> bool:
        """At the deadline, or after `MIN_SLICE_SECONDS` when a job waits for a worker slot: the
        slot goes to it, and this import queues its next slice at the back (fairness)."""
        now = time.monotonic()
        if now > deadline:
            return True
        if now - started < MIN_SLICE_SECONDS:
            return False
        try:  # briefly: a Redis outage must not hold up the import
            return await asyncio.wait_for(
                jobs_waiting(self.ctx["redis"], besides=arq_job_id(self.job.id)), 1.0
            )
        except REDIS_DOWN:
            return False

    async def run(self, deadline: float) -> str:
        """Import until the end of the file ('done') or the end of the slice ('continue').

        Two batches are written at once, on two connections, while the next one is parsed:
        Postgres inserts batch N+1's rows while it runs batch N's triggers and commit. Batches
        still commit one after the other, in file order (see `commit`). A batch sharing a SKU
        with the one before it starts once that one has committed: the later row wins.
        """
        job = self.job
        started = time.monotonic()
        variants = job.plan.transform(job.transform_state)
        row = job.resume_row
        batch = _Batch(self.schema, row, end_row=row, end_offset=job.resume_offset)
        writing: list[_Writing] = []  # the batches being written, in file order (at most two)

        async def write(full: _Batch, *, final: bool) -> asyncio.Task[None]:
            """Start committing `full` once the batch before it holds its locks; the commit's task."""
            previous = writing[-1] if writing else None
            if previous is not None:
                if len(writing) > 1:
                    await writing.pop(0).task  # the third batch waits for the first to commit
                if not previous.skus.isdisjoint(full.items):
                    await previous.task
                else:
                    await previous.holding_locks()
            task = asyncio.ensure_future(
                self.commit(
                    full, final=final, after=previous.task if previous is not None else None
                )
            )
            writing.append(_Writing(task, set(full.items), full.locked))
            return task

        async def take(records) -> bool:
            """Add records to batches, writing full ones; False when the time slice is over."""
            nonlocal row, batch
            for record in records:
                row += 1
                batch.records += 1
                cells = record.cells
                if record.error:
                    batch.processed += 1
                    batch.rejected.append((row, record.sku, cells, record.error))
                elif "".join(cells).strip():  # blank lines are skipped, not counted
                    batch.processed += 1
                    batch.add(row, cells)
                batch.end_row, batch.end_offset = row, record.end_offset
                if batch.records >= BATCH_ROWS:
                    batch.carry = (
                        variants.state() if variants else None
                    )  # None: a stateless transform
                    committing = await write(batch, final=False)
                    batch = _Batch(
                        self.schema, row, end_row=row, end_offset=record.end_offset
                    )  # the latest schema
                    if await self._slice_over(started, deadline):
                        await committing  # it waits for the batch before it
                        return False
                elif not batch.records % YIELD_EVERY:
                    await asyncio.sleep(0)  # let the writing tasks send their next statement
            return True

        try:
            async for records in job.plan.records(
                self.lock_conn, job.id, start_offset=job.resume_offset, transform=variants
            ):
                if not await take(transformed(records, variants) if variants else records):
                    return "continue"
            await (await write(batch, final=True))
        finally:
            for pending in writing:
                if not pending.task.done():
                    pending.task.cancel()  # an error while parsing: the open batches roll back
                with contextlib.suppress(BaseException):
                    await pending.task
        return "done"

    async def commit(
        self, batch: _Batch, *, final: bool, after: "asyncio.Task[None] | None"
    ) -> None:
        """Write and commit `batch`; `after`, the commit of the batch before it, still running.

        The batch holds `Lock.IMPORT_BATCH` until it commits. `write_rows` sets `batch.locked`
        once it holds its write locks: only then does the next batch start (`run`), so that
        this one never waits for a lock the next one holds. The next batch's product triggers
        wait for this batch's commit (GATED_INSERT_SQL), and its progress is written after it.
        """
        job = self.job
        async with _job_session(self.ctx, job) as session, session.begin():
            # Products and progress commit together, so a Postgres crash losing the last commits
            # only means redoing those batches: no need to wait for the WAL flush. (Sent through
            # SQLAlchemy: its first statement is what opens the transaction on the connection.)
            await session.execute(text("SET LOCAL synchronous_commit = off"))
            conn = await driver_connection(session)
            await xact_lock(conn, Lock.IMPORT_BATCH, job.tenant_id, f"{job.id}:{batch.end_row}")
            # the schema in force at commit (a PUT waits for this lock): rows parsed under an older
            # one are converted again, and the batches still to come use this one
            version = await lock_schema(session)
            if version != self.schema.version:
                self.schema = await _load_schema(session, job, version)
                log.info("import_schema_changed", job_id=str(job.id), row=batch.end_row)
            if batch.schema is not self.schema:
                locked = batch.locked
                batch = batch.under(self.schema)
                batch.locked = locked
            # resolved for every batch, not remembered: a category may have been deleted since
            paths = sorted({p for pending in batch.items.values() for p in pending.paths or ()})
            categories = await ensure_category_paths(session, paths) if paths else {}
            # the converter has checked and coerced every row: nothing is parsed again
            rows = {}
            for sku, pending in batch.items.items():
                if pending.paths is not None:
                    pending.product.categories = [categories[p] for p in pending.paths]
                rows[sku] = pending.product
            result = (
                await write_rows(
                    session,
                    rows,
                    fields=self.upsert_fields,
                    coerced=True,
                    max_data_bytes=self.ctx["settings"].max_product_data_bytes,
                    gate=f"{job.id}:{batch.start_row}" if after is not None else None,
                    locked=batch.locked,
                )
                if rows
                else None
            )
            batch.locked.set()  # no rows to write: no locks
            if after is not None:  # progress in file order: the batch before commits first
                await after
            rejected = list(batch.rejected)
            updated = created = 0
            if result is not None:
                failed_skus = set()
                for err in result.errors:
                    assert err.sku is not None  # write_rows names a failed row by its key in rows
                    failed_skus.add(err.sku)
                    pending = batch.items[err.sku]
                    rejected.extend(
                        (r, err.sku, c, err.detail) for r, c in zip(pending.rows, pending.cells)
                    )
                created = result.created
                # a SKU repeated within the batch: its later rows updated what the first one wrote
                updated = result.updated + sum(
                    len(p.rows) - 1 for s, p in batch.items.items() if s not in failed_skus
                )
            rejected.sort(key=lambda r: r[0])
            if rejected:
                await conn.execute(
                    ERRORS_SQL,
                    job.id,
                    [r[0] for r in rejected],
                    [r[1] for r in rejected],
                    [orjson.dumps(r[2]).decode() for r in rejected],
                    [r[3] for r in rejected],
                )
            room = max(0, MAX_JOB_ERRORS - job.error_count)
            first = [{"row": r[0], "sku": r[1], "detail": r[3]} for r in rejected[:room]]
            status = await conn.execute(
                PROGRESS_SQL,
                job.id,
                batch.processed,
                created,
                updated,
                len(rejected),
                orjson.dumps(first).decode(),
                batch.end_offset,
                batch.end_row,
                final,
            )
            if status.endswith(" 0"):
                raise _JobGone()
            if batch.carry is not None:
                await conn.execute(
                    all_tenants(
                        "UPDATE import_jobs SET parse_options = jsonb_set(parse_options, '{transform_state}', $2::text::jsonb) WHERE id = $1"
                    ),
                    job.id,
                    orjson.dumps(batch.carry).decode(),
                )
            if final:
                await delete_chunks(conn, job.id)
                await record_import_finished(conn, job.id)
        job.error_count += len(first)
        job.resume_offset, job.resume_row = batch.end_offset, batch.end_row


@dataclass(slots=True)
class _Writing:
    """A batch being written: its commit's task, its SKUs, and whether it holds its locks."""

    task: "asyncio.Task[None]"
    skus: set[str]
    locked: asyncio.Event

    async def holding_locks(self) -> None:
        """Until the batch holds its write locks, or its commit ended (an error is raised)."""
        waiting = asyncio.ensure_future(self.locked.wait())
        try:
            await asyncio.wait({self.task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if self.task.done():
            await self.task


class _JobGone(Exception):
    """The job left `importing` under us (deleted, or failed by another run)."""


def _json(value: Any) -> Any:
    """jsonb from the session's connection arrives decoded (SQLAlchemy's codec) or as text (plain asyncpg)."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


async def _load_job(ctx: WorkerContext, job_id: uuid.UUID) -> _Job | None:
    """The job if it is importing; waits for a confirming request's row lock to go first."""
    async with ctx["sessionmaker"]() as session, session.begin():
        conn = await driver_connection(session)
        row = await conn.fetchrow(
            all_tenants(  # the job names its tenant
                """SELECT id, tenant_id, status, resume_offset, resume_row, jsonb_array_length(errors) AS error_count,
                          mapping, parse_options, delimiter, quotechar
                   FROM import_jobs WHERE id = $1 FOR UPDATE"""
            ),
            job_id,
        )
        if row is None or row["status"] != "importing":
            return None
        await conn.execute(
            all_tenants(
                "UPDATE import_jobs SET started_at = coalesce(started_at, now()) WHERE id = $1"
            ),
            job_id,
        )
    options = _json(row["parse_options"])
    return _Job(
        id=row["id"],
        tenant_id=row["tenant_id"],
        resume_offset=row["resume_offset"],
        resume_row=row["resume_row"],
        error_count=row["error_count"],
        plan=ImportPlan.of_job(
            row["delimiter"],
            row["quotechar"],
            options,
            headers=options["headers"],
            mapping=_json(row["mapping"]),
            conventions=Conventions.from_json(options.get("conventions")),
            value_mapping=options.get("value_mapping") or {},
        ),
        transform_state=options.get("transform_state"),
    )


async def _fail(ctx: WorkerContext, job_id: uuid.UUID, message: str) -> None:
    async with ctx["sessionmaker"]() as session, session.begin():
        conn = await driver_connection(session)
        await conn.execute(
            all_tenants(
                "UPDATE import_jobs SET status = 'failed', error = $2, finished_at = now() WHERE id = $1 AND status = 'importing'"
            ),
            job_id,
            message[:2000],
        )
        await delete_chunks(conn, job_id)
        await record_import_finished(conn, job_id)


async def import_csv(ctx: WorkerContext, job_id: str) -> dict[str, Any]:
    """arq task: import (or continue importing) one confirmed job."""
    try:
        job_uuid = uuid.UUID(job_id)
    except ValueError:
        return {"job_id": job_id, "status": "invalid"}
    async with ctx["sessionmaker"]() as session:
        conn = await driver_connection(session)
        tenant_id = await conn.fetchval(
            all_tenants(  # the job names its tenant
                "SELECT tenant_id FROM import_jobs WHERE id = $1 AND status = 'importing'"
            ),
            job_uuid,
        )
    if tenant_id is None:
        return {"job_id": job_id, "status": "skipped"}
    job_lease, turn = _leases(tenant_id, job_uuid)
    try:
        async with lease(ctx["engine"], job_lease, wait_s=LOCK_WAIT_SECONDS) as held:
            outcome = await _take_turn(ctx, held, turn, job_uuid)
    except LeaseBusy:
        log.info("import_busy", job_id=job_id)
        return {"job_id": job_id, "status": "busy"}
    if outcome == "done":  # planner statistics and typed indexes after the load (products.tasks)
        await _note_import_writes(ctx, tenant_id, job_uuid)
    if outcome in ("continue", "done", "failed", "gone"):
        following = await _next_turn(ctx, tenant_id, job_uuid)
        if following is not None:
            next_job = Job(
                TASK_NAME, (str(following),), f"{arq_job_id(following)}:{uuid.uuid4().hex[:12]}"
            )
            try:
                await send_now(ctx["redis"], next_job)
            except REDIS_DOWN as exc:  # the periodic recovery queues it
                log.warning(
                    "import_turn_not_queued",
                    job_id=str(following),
                    error=f"{type(exc).__name__}: {exc}"[:300],
                )
    return {"job_id": job_id, "status": outcome}


async def _note_import_writes(ctx: WorkerContext, tenant_id: int, job_id: uuid.UUID) -> None:
    async with ctx["sessionmaker"]() as session:
        conn = await driver_connection(session)
        written = await conn.fetchval(
            all_tenants("SELECT created + updated FROM import_jobs WHERE id = $1"), job_id
        )
    await note_writes(ctx["redis"], ctx["settings"], tenant_id, written or 0)


async def _take_turn(ctx: WorkerContext, held: Lease, turn: LockKey, job_id: uuid.UUID) -> str:
    """Run the job if it is still importing and its tenant's turn is free."""
    if not await held.conn.fetchval(
        all_tenants(
            "SELECT EXISTS (SELECT FROM import_jobs WHERE id = $1 AND status = 'importing')"
        ),
        job_id,
    ):
        return "skipped"  # finished by the run that held the lease
    if not await held.try_lock(turn):
        # another import of the tenant runs: it hands the turn over when its slice ends
        return "waiting"
    return await _run(ctx, held.conn, job_id)


async def _next_turn(ctx: WorkerContext, tenant_id: int, job_id: uuid.UUID) -> uuid.UUID | None:
    """The tenant's import that runs next: the one confirmed after `job_id`, round robin (this
    one again when it is the only one left). A tenant's imports take turns one slice at a time,
    so one tenant never holds more than one worker slot with imports."""
    async with ctx["sessionmaker"]() as session:
        conn = await driver_connection(session)
        return await conn.fetchval(
            f"""SELECT id FROM import_jobs
               WHERE {tenant_is("import_jobs")} AND status = 'importing'
               ORDER BY (created_at, id) <= (SELECT created_at, id FROM import_jobs WHERE id = $2), created_at, id
               LIMIT 1""",
            tenant_id,
            job_id,
        )


async def _run(ctx: WorkerContext, raw, job_id: uuid.UUID) -> str:
    job = await _load_job(ctx, job_id)
    if job is None:
        return "skipped"
    try:
        importer = await _Importer.open(ctx, job, raw)
    except ValueError as exc:  # the schema lost a mapped field after the confirmation
        await _fail(ctx, job_id, f"The mapping no longer fits the schema: {exc}")
        return "failed"
    started = time.monotonic()
    try:
        with collector_paused():  # the batches' rows are freed as each commits (app.jobs.collector)
            outcome = await importer.run(deadline=started + SLICE_SECONDS)
    except _JobGone:
        return "gone"
    except XlsxError as exc:  # a workbook damaged past the rows the upload read
        await _fail(ctx, job_id, str(exc))
        return "failed"
    except Exception as exc:
        if is_transient(exc):
            retry = retry_later(job_try(ctx), max_tries=MAX_TRIES)
            if retry is not None:  # arq runs the job again; it resumes at the last batch
                log.warning(
                    "import_retry", job_id=str(job_id), error=f"{type(exc).__name__}: {exc}"[:300]
                )
                raise retry from exc
            message = f"The database failed repeatedly while importing ({type(exc).__name__}); committed rows are kept"
        elif isinstance(exc, DBAPIError):
            message = f"Database error while importing: {str(exc.orig or exc)[:300]}"
        else:
            message = (
                f"Internal error while importing ({type(exc).__name__}); committed rows are kept"
            )
        log.exception("import_failed", job_id=str(job_id))
        await _fail(ctx, job_id, message)
        return "failed"
    log.info(
        "import_slice",
        job_id=str(job_id),
        outcome=outcome,
        row=job.resume_row,
        seconds=round(time.monotonic() - started, 1),
    )
    return outcome


async def recover_imports(
    ctx: WorkerContext, *, progress_seen: dict[uuid.UUID, int] | None = None
) -> int:
    """At worker start and periodically: give every job left in `importing` a runnable job.

    Its worker may have died (arq keeps that job marked in progress for an hour) or Redis lost
    it. A job waiting for its tenant's turn has no job of its own and needs none while another
    import of the tenant runs: that run hands the turn over. The periodic rounds pass
    `progress_seen` (each job's row at the last round, updated here) and only look at jobs that
    made no progress since: one worked on between two rounds is alive, whichever queue runs it.
    Uploads never confirmed within `UNCONFIRMED_DAYS` give their stored file back. How many
    jobs were revived.
    """
    async with ctx["sessionmaker"]() as session, session.begin():
        conn = await driver_connection(session)
        expired = await conn.fetch(
            all_tenants(  # maintenance: every tenant's stale uploads
                """UPDATE import_jobs SET status = 'failed', finished_at = now(),
                      error = CASE WHEN status = 'pending' THEN 'The upload did not finish'
                                   ELSE 'The upload was not confirmed within ' || $1::int || ' days' END
               WHERE (status = 'mapping' AND created_at < now() - make_interval(days => $1::int))
                  OR (status = 'pending' AND created_at < now() - interval '1 day')  -- its API process died
               RETURNING id"""
            ),
            UNCONFIRMED_DAYS,
        )
        if expired:
            await conn.execute(
                "DELETE FROM import_chunks WHERE job_id = ANY($1::uuid[])",
                [r["id"] for r in expired],
            )
        rows = await conn.fetch(
            all_tenants(  # maintenance: every tenant's imports
                "SELECT id, tenant_id, resume_row FROM import_jobs WHERE status = 'importing' ORDER BY created_at LIMIT 1000"
            )
        )
    if progress_seen is not None:
        idle = [r for r in rows if progress_seen.get(r["id"]) == r["resume_row"]]
        progress_seen.clear()
        progress_seen.update((r["id"], r["resume_row"]) for r in rows)
        rows = idle
    pending = [
        Pending(
            base=arq_job_id(r["id"]),
            job=Job(
                TASK_NAME,
                (str(r["id"]),),
                f"{arq_job_id(r['id'])}:recover:{uuid.uuid4().hex[:12]}",
            ),
            leases=_leases(r["tenant_id"], r["id"]),  # a run of the job or the tenant's turn
        )
        for r in rows
    ]
    if not pending:
        return 0
    counts = await revive(ctx["redis"], pending, engine=ctx["engine"])
    revived = counts["released"] + counts["enqueued"]
    if revived:
        log.info("imports_recovered", released=counts["released"], enqueued=counts["enqueued"])
    return revived


IMPORT_FUNCTIONS = [import_csv]
