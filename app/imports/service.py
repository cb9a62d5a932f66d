"""CSV import jobs: upload with suggestion, confirmation, reading jobs and their rejected rows.

Service functions take the tenant-bound session first; the request commits. The
worker side (streaming the stored file into products) is in `tasks.py`.
"""

import asyncio
import codecs
import csv
import io
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import structlog
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.fields import FieldDef
from app.catalog.schemas import SchemaIn
from app.catalog.service import get_fields, put_schema
from app.config import Settings
from app.db import read_connection, session_scope, tenant_of
from app.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, Unavailable
from app.imports import inference
from app.imports.llm import ask_llm
from app.imports.rows import BUILTIN_TARGETS
from app.imports.schemas import ConfirmIn
from app.imports.storage import ChunkWriter
from app.models import HeaderMapping, ImportJob

log = structlog.get_logger("pim.imports")

SUGGESTION_BUDGET_S = 2.5  # the LLM gets what is left of this after the local engine
MAX_JOB_ERRORS = 100
TASK_NAME = "import_csv"


def arq_job_id(job_id: uuid.UUID | str) -> str:
    return f"import:{job_id}"


def job_out(job: ImportJob) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "status": job.status,
        "filename": job.filename,
        "size_bytes": job.size_bytes,
        "delimiter": job.delimiter,
        "encoding": job.encoding,
        "columns": job.columns,
        "suggested_schema": job.suggested_schema,
        "suggested_mapping": job.suggested_mapping,
        "mapping": job.mapping,
        "total_rows": job.total_rows,
        "processed_rows": job.processed_rows,
        "created": job.created,
        "updated": job.updated,
        "failed": job.failed,
        "errors": job.errors,
        "error": job.error,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def parse_job_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"Import job {raw[:64]!r} not found") from None


async def get_job(session: AsyncSession, job_id: str, *, for_update: bool = False) -> ImportJob:
    stmt = select(ImportJob).where(ImportJob.id == parse_job_id(job_id))
    if for_update:
        stmt = stmt.with_for_update()
    job = await session.scalar(stmt)
    if job is None:
        raise NotFound(f"Import job {job_id} not found")
    return job


# --- upload ----------------------------------------------------------------------------------


def _transcoder(head: bytes) -> tuple[str | None, Callable[[bytes, bool], bytes] | None]:
    """UTF-16 uploads are stored as UTF-8 so that the reader can split lines on bytes."""
    variant = inference.utf16_variant(head)
    if variant is None:
        return None, None
    decoder = codecs.getincrementaldecoder("utf-16" if variant == "utf-16" else variant)(errors="replace")

    def transcode(data: bytes, final: bool = False) -> bytes:
        return decoder.decode(data, final).encode("utf-8")

    return variant, transcode


async def _remembered(session: AsyncSession, headers: list[str]) -> dict[str, str | None]:
    keys = list({inference.header_key(h) for h in headers})
    rows = await session.execute(select(HeaderMapping.header_key, HeaderMapping.field).where(HeaderMapping.header_key.in_(keys)))
    return dict(rows.all())


async def create_import(
    session: AsyncSession,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    pieces: AsyncIterator[bytes],
    filename: Callable[[], str],
    settings: Settings,
) -> tuple[ImportJob, dict[str, float]]:
    """Store the uploaded file in chunks and suggest a mapping from its first `SAMPLE_BYTES`.

    The job is created, and each chunk stored, in short transactions of their own: no database
    connection waits on the client while it sends the file. `session` (the request's) is used
    once the whole file is stored. A failed upload (too large, over the quota, not a CSV, the
    client gone) takes its job and chunks away again.
    Returns the job (status `mapping`) and timings in ms (`upload`, `suggest`).
    """
    tenant_id = tenant_of(session)
    job_id = uuid.uuid4()
    async with session_scope(sessionmaker, tenant_id) as own:
        own.add(ImportJob(id=job_id, status="pending", filename=""))
    try:
        return await _store_and_suggest(
            session, job_id=job_id, pieces=pieces, filename=filename, settings=settings,
            writer=ChunkWriter(sessionmaker, job_id, tenant_id, quota_bytes=settings.import_storage_quota_bytes),
        )
    except BaseException:
        await asyncio.shield(_discard_upload(sessionmaker, job_id))
        raise


async def _discard_upload(sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> None:
    async with session_scope(sessionmaker) as own:
        await own.execute(text("DELETE FROM import_jobs WHERE id = :id AND status = 'pending'"), {"id": job_id})


async def _store_and_suggest(
    session: AsyncSession,
    *,
    job_id: uuid.UUID,
    pieces: AsyncIterator[bytes],
    filename: Callable[[], str],
    settings: Settings,
    writer: ChunkWriter,
) -> tuple[ImportJob, dict[str, float]]:
    started = time.perf_counter()
    limit = settings.max_upload_bytes
    sample = bytearray()
    head = bytearray()
    size = 0
    transcoded_from: str | None = None
    transcode = None
    decided = binary_checked = False

    async def store(data: bytes) -> None:
        nonlocal binary_checked
        if len(sample) < inference.SAMPLE_BYTES:
            sample.extend(data[: inference.SAMPLE_BYTES - len(sample)])
            if not binary_checked and len(sample) >= 65536:
                binary_checked = True  # refuse an archive or image before storing all of it
                reason = inference.binary_reason(bytes(sample))
                if reason:
                    raise BadRequest(reason)
        await writer.write(data)

    async for piece in pieces:
        size += len(piece)
        if size > limit:
            raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes")
        if not decided:
            head.extend(piece)
            if len(head) < 4096:
                continue
            piece, decided = bytes(head), True
            transcoded_from, transcode = _transcoder(piece)
        await store(transcode(piece) if transcode else piece)
    if not decided and head:
        transcoded_from, transcode = _transcoder(bytes(head))
        await store(transcode(bytes(head)) if transcode else bytes(head))
    if transcode:
        await store(transcode(b"", True))
    await writer.close()
    if size == 0:
        raise BadRequest("The file is empty")
    upload_done = time.perf_counter()

    complete = writer.size <= inference.SAMPLE_BYTES
    try:
        analysis = await asyncio.to_thread(inference.analyse_sample, bytes(sample), complete=complete)
    except inference.NotCsv as exc:
        raise BadRequest(str(exc)) from None
    fields = await get_fields(session)
    remembered = await _remembered(session, analysis.headers)
    suggestion = await asyncio.to_thread(inference.suggest, analysis, fields=fields, remembered=remembered)
    if settings.llm_base_url:
        left = SUGGESTION_BUDGET_S - (time.perf_counter() - upload_done)
        answer = await ask_llm(settings, suggestion, fields, timeout=left)
        if answer is not None:
            changed = inference.merge_llm_answer(suggestion, answer, fields=fields)
            log.info("llm_suggestion_merged", job_id=str(job_id), changed=changed)

    job = await get_job(session, str(job_id), for_update=True)  # NotFound: deleted meanwhile
    job.filename = filename() or "upload.csv"
    job.size_bytes = size
    job.status = "mapping"
    job.encoding = transcoded_from or analysis.encoding
    job.delimiter = analysis.dialect.delimiter
    job.quotechar = analysis.dialect.quotechar
    job.columns = [
        {
            "header": c.header,
            "samples": c.samples,
            "inferred_type": c.inferred_type,
            "suggested_field": c.suggested_field,
            "confidence": c.confidence,
        }
        for c in suggestion.columns
    ]
    job.suggested_mapping = suggestion.mapping()
    job.suggested_schema = suggestion.schema(fields)
    job.parse_options = {
        "headers": analysis.headers,
        "hints": suggestion.hints,
        "stored_encoding": "utf-8" if transcoded_from else analysis.encoding,
        "escapechar": analysis.dialect.escapechar,
        "header_row": analysis.header_row,
        "stored_bytes": writer.size,
        "sources": {c.header: c.source for c in suggestion.columns},
    }
    job.total_rows = inference.estimate_rows(analysis, writer.size)
    job.resume_offset = analysis.data_offset
    job.resume_row = analysis.header_row
    await session.flush()
    await session.refresh(job)
    finished = time.perf_counter()
    return job, {"upload": (upload_done - started) * 1000, "suggest": (finished - upload_done) * 1000}


# --- confirm ---------------------------------------------------------------------------------


def validate_mapping(headers: list[str], mapping: dict[str, str | None], fields: list[FieldDef]) -> dict[str, str | None]:
    """The full mapping (every header, unlisted ones skipped) or BadRequest."""
    unknown = [h for h in mapping if h not in headers]
    if unknown:
        raise BadRequest(f"Unknown CSV headers in mapping: {unknown[:10]}; the file's headers are {headers[:50]}")
    names = {f.name for f in fields}
    targets = [t for t in mapping.values() if t is not None]
    bad = sorted({t for t in targets if t not in BUILTIN_TARGETS and t not in names})
    if bad:
        raise BadRequest(
            f"Mapping targets must be one of {list(BUILTIN_TARGETS)} or a field of the confirmed schema; unknown: {bad[:10]}"
        )
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    if repeated:
        raise BadRequest(f"Each target may be used by one column only; used more than once: {repeated[:10]}")
    if "sku" not in targets:
        raise BadRequest("No column maps to sku; map the column with the product codes to `sku`")
    return {h: mapping.get(h) for h in headers}


async def remember_mapping(session: AsyncSession, mapping: dict[str, str | None]) -> None:
    choices: dict[str, str | None] = {}
    for header, target in mapping.items():
        choices.setdefault(inference.header_key(header), target)
    if not choices:
        return
    await session.execute(
        text(
            """
            INSERT INTO header_mappings (tenant_id, header_key, field)
            SELECT :tenant, k, f FROM unnest(CAST(:keys AS text[]), CAST(:fields AS text[])) AS t(k, f)
            ON CONFLICT (tenant_id, header_key) DO UPDATE SET field = EXCLUDED.field, updated_at = now()
            """
        ),
        {"tenant": tenant_of(session), "keys": list(choices), "fields": list(choices.values())},
    )


async def confirm_import(session: AsyncSession, *, arq: ArqRedis, job_id: str, body: ConfirmIn) -> ImportJob:
    """Validate the mapping, save schema and choices, and queue the import (all or nothing)."""
    job = await get_job(session, job_id, for_update=True)  # the worker waits on this lock until we commit
    if job.status != "mapping":
        raise BadRequest(f"The job is {job.status}; only a job in status mapping can be confirmed")
    fields = body.schema_fields if body.schema_fields is not None else await get_fields(session)
    mapping = validate_mapping(job.parse_options.get("headers", []), body.mapping, fields)
    if body.schema_fields is not None or body.default_currency or body.default_locale:
        # not validated again: ConfirmIn has checked what the client sent, and the current fields are
        # stored ones, which need not pass rules added since they were saved
        schema = SchemaIn.model_construct(
            fields=fields, default_currency=body.default_currency, default_locale=body.default_locale
        )
        await put_schema(session, schema)
    await remember_mapping(session, mapping)
    job.mapping = mapping
    job.status = "importing"
    await session.flush()
    # Enqueued before the commit: if Redis is down, the request fails and everything above rolls back.
    try:
        queued = await arq.enqueue_job(TASK_NAME, str(job.id), _job_id=arq_job_id(job.id))
        if queued is None:  # a leftover with the same id (e.g. an earlier attempt whose commit failed)
            await arq.enqueue_job(TASK_NAME, str(job.id), _job_id=f"{arq_job_id(job.id)}:{uuid.uuid4().hex[:8]}")
    except (RedisError, OSError) as exc:
        log.warning("import_enqueue_failed", job_id=str(job.id), error=str(exc)[:200])
        raise Unavailable("The job queue (Redis) is unavailable; the import was not started, try again") from None
    await session.refresh(job)
    return job


async def delete_job(session: AsyncSession, job_id: str) -> None:
    """Delete a job with its stored file and rejected rows; a job being imported is a Conflict."""
    job = await get_job(session, job_id, for_update=True)  # waits for a confirmation in progress
    if job.status == "importing":
        raise Conflict("The job is importing; it can be deleted once it is done or failed")
    await session.execute(text("DELETE FROM import_jobs WHERE id = :id"), {"id": job.id})


# --- rejected rows ---------------------------------------------------------------------------


ERROR_PAGE_ROWS = 2000


async def error_csv(
    sessionmaker: async_sessionmaker[AsyncSession], *, job_id: uuid.UUID, headers: list[str]
) -> AsyncIterator[bytes]:
    """Every rejected row as CSV: its cells, then `row` and `error`; read in keyset pages.

    Each page is read in a short session of its own and the connection is back in the pool
    before the page is sent: a client that reads slowly (or not at all) holds none."""

    async def fetch(sql: str, *args):
        async with sessionmaker() as session:
            conn = await read_connection(session)
            return await conn.fetch(sql, *args)

    widest = (await fetch("SELECT max(jsonb_array_length(cells)) FROM import_row_errors WHERE job_id = $1", job_id))[0][0]
    width = max(len(headers), widest or 0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*headers, *[""] * (width - len(headers)), "row", "error"])
    last = -1
    while True:
        rows = await fetch(
            "SELECT row, cells::text AS cells, detail FROM import_row_errors WHERE job_id = $1 AND row > $2 ORDER BY row LIMIT $3",
            job_id, last, ERROR_PAGE_ROWS,
        )
        for r in rows:
            cells = orjson.loads(r["cells"])
            writer.writerow([*cells, *[""] * (width - len(cells)), r["row"], r["detail"]])
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < ERROR_PAGE_ROWS:
            break
        last = rows[-1]["row"]
