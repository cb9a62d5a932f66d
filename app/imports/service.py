"""CSV import jobs: upload with suggestion, confirmation, reading jobs and their rejected rows.

Service functions take the tenant-bound session first; the request commits. The
worker side (streaming the stored file into products) is in `tasks.py`.
"""

import asyncio
import codecs
import io
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

import orjson
import structlog
from arq.connections import ArqRedis
from sqlalchemy import literal, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.fields import FieldDef
from app.catalog.schemas import SchemaIn
from app.catalog.service import get_fields, get_schema_row, put_schema, schema_out
from app.catalog.values import coerce_value
from app.config import Settings
from app.csv_output import csv_writer
from app.db import (
    driver_connection,
    one_or_not_found,
    read_connection,
    session_scope,
    tenant_is,
    tenant_of,
    written,
)
from app.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from app.imports import inference, sniffing
from app.imports.conventions import (
    DELIMITERS,
    ENCODINGS,
    Conventions,
    detect_conventions,
)
from app.imports.dry_run import dry_run
from app.imports.headers import header_key
from app.imports.llm import ask_llm, merge_llm_answer
from app.imports.plan import ImportPlan
from app.imports.rows import BUILTIN_TARGETS, VALUE_MAPPED_TYPES, read_status
from app.imports.schemas import ConfirmIn
from app.imports.sources import SPOOL_BYTES, XlsxSource, analyse_xlsx
from app.imports.storage import ChunkWriter, read_chunks, read_range
from app.imports.transforms import RowTransform, apply_leniently, transform_for
from app.imports.xlsx import CFB_MAGIC, XLSX_MAGIC, TypedCell, XlsxError, cfb_reason
from app.jobs.enqueue import Job, enqueue_after_commit
from app.models import HeaderMapping, ImportJob
from app.pagination import BAD_CURSOR, decode_cursor, encode_cursor

log = structlog.get_logger("pim.imports")

SUGGESTION_BUDGET_S = 2.5  # the LLM gets what is left of this after the local engine
WINDOW_BYTES = 128 * 1024  # read at each of WINDOW_POSITIONS of a file larger than the sample
WINDOW_POSITIONS = (0.25, 0.5, 0.75, 1.0)  # shares of the rest of the file; 1.0: its last bytes
MAX_JOB_ERRORS = 100
CFB_HEAD_BYTES = 1 << 20
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
        "format": job.parse_options.get("format"),
        "conventions": job.parse_options.get("conventions"),
        "columns": job.columns,
        "suggested_schema": job.suggested_schema,
        "suggested_mapping": job.suggested_mapping,
        "suggested_value_mapping": job.parse_options.get("suggested_value_mapping") or {},
        "mapping": job.mapping,
        "total_rows": job.total_rows,
        "processed_rows": job.processed_rows,
        "created": job.created,
        "updated": job.updated,
        "failed": job.failed,
        "errors": job.errors,
        "error": job.error,
        "dry_run": job.parse_options.get("dry_run"),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def parse_job_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"Import job {raw[:64]!r} not found") from None


JOB_LIST = "import-jobs"
# what a list item reads: not the suggestion, columns or rejected rows (JSONB that can be large)
_SUMMARY_COLUMNS = (
    ImportJob.id,
    ImportJob.status,
    ImportJob.filename,
    ImportJob.size_bytes,
    ImportJob.parse_options["format"].astext.label("format"),
    ImportJob.total_rows,
    ImportJob.processed_rows,
    ImportJob.created,
    ImportJob.updated,
    ImportJob.failed,
    ImportJob.error,
    ImportJob.created_at,
    ImportJob.started_at,
    ImportJob.finished_at,
)


def _job_cursor_key(cursor: str) -> tuple[datetime, uuid.UUID]:
    payload = decode_cursor(JOB_LIST, cursor)
    try:
        created_at = datetime.fromisoformat(payload["at"])
        if created_at.tzinfo is None:
            raise ValueError
        return created_at, uuid.UUID(payload["id"])
    except (KeyError, TypeError, ValueError):
        raise BadRequest(BAD_CURSOR) from None


async def list_jobs(session: AsyncSession, *, cursor: str | None, limit: int) -> dict[str, Any]:
    """The tenant's jobs, newest first, a page at a time (keyset on (created_at, id), answered by
    the (tenant_id, created_at) index): `{"results", "next_cursor"}`."""
    stmt = (
        select(*_SUMMARY_COLUMNS)
        .order_by(ImportJob.created_at.desc(), ImportJob.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        created_at, job_id = _job_cursor_key(cursor)
        stmt = stmt.where(
            tuple_(ImportJob.created_at, ImportJob.id)
            < tuple_(literal(created_at), literal(job_id))
        )
    rows = (await session.execute(stmt)).all()
    results = [
        {"job_id": r.id, **{k: v for k, v in r._mapping.items() if k != "id"}} for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(
            JOB_LIST, {"at": last.created_at.isoformat(), "id": str(last.id)}
        )
    return {"results": results, "next_cursor": next_cursor}


async def get_job(session: AsyncSession, job_id: str, *, for_update: bool = False) -> ImportJob:
    return await one_or_not_found(
        session,
        select(ImportJob).where(ImportJob.id == parse_job_id(job_id)),
        f"Import job {job_id} not found",
        for_update=for_update,
    )


# --- upload ----------------------------------------------------------------------------------


class _Transcode(Protocol):
    def __call__(self, data: bytes, final: bool = False) -> bytes: ...


def _transcoder(head: bytes) -> tuple[str | None, _Transcode | None]:
    """UTF-16 uploads are stored as UTF-8 so that the reader can split lines on bytes."""
    variant = sniffing.utf16_variant(head)
    if variant is None:
        return None, None
    decoder = codecs.getincrementaldecoder("utf-16" if variant == "utf-16" else variant)(
        errors="replace"
    )

    def transcode(data: bytes, final: bool = False) -> bytes:
        return decoder.decode(data, final).encode("utf-8")

    return variant, transcode


def _workbook_spool(head: bytes, filename: str):
    """A file to keep an .xlsx upload in (None for CSV text); refuses .xls and encrypted workbooks."""
    if head.startswith(CFB_MAGIC):
        raise BadRequest(cfb_reason(head), status_code=415)
    if head.startswith(XLSX_MAGIC):
        return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise BadRequest(
            "The file is named like an .xlsx workbook but is not one (an .xlsx file is a ZIP archive)"
        )
    return None


async def _remembered(session: AsyncSession, headers: list[str]) -> dict[str, str | None]:
    keys = list({header_key(h) for h in headers})
    rows = await session.execute(
        select(HeaderMapping.header_key, HeaderMapping.field).where(
            HeaderMapping.header_key.in_(keys)
        )
    )
    return dict(rows.all())


async def _windows(
    session: AsyncSession,
    job_id: uuid.UUID,
    analysis: sniffing.SampleAnalysis,
    *,
    stored_bytes: int,
) -> list[tuple[bytes, bool]]:
    """Windows of bytes in the middle and at the end of a file the sample does not cover, each with
    whether it reaches the file's end.

    A few bounded reads of the stored chunks: the suggestion sees the whole file's spread of
    values (an enum needs it) at a cost that does not grow with the file.
    """
    rest = stored_bytes - analysis.sample_end_offset
    if rest <= 0:
        return []
    conn = await driver_connection(session)
    if (
        rest <= len(WINDOW_POSITIONS) * WINDOW_BYTES
    ):  # a little more than the sample: read all of it
        return [(await read_range(conn, job_id, analysis.sample_end_offset, rest), True)]
    windows = []
    for position in WINDOW_POSITIONS:
        start = max(
            analysis.sample_end_offset,
            analysis.sample_end_offset + int(rest * position) - WINDOW_BYTES,
        )
        windows.append(
            (
                await read_range(conn, job_id, start, WINDOW_BYTES),
                start + WINDOW_BYTES >= stored_bytes,
            )
        )
    return windows


def _suggest_from(
    analysis: sniffing.SampleAnalysis,
    windows: list[tuple[bytes, bool]],
    *,
    variants: RowTransform | None,
    encoding: str,
    **kwargs: Any,
) -> inference.Suggestion:
    """The windows' rows, the file's conventions and the suggestion: one piece of CPU work (one thread).

    A workbook's typed cells (numbers, dates) say nothing of the file's text conventions."""
    width = len(analysis.headers) - (variants.added if variants else 0)  # the file's own columns
    rows = []
    for data, at_end in windows:
        window = sniffing.rows_in_window(
            data, encoding=analysis.encoding, dialect=analysis.dialect, width=width, at_end=at_end
        )
        if variants is not None:  # a window starts mid-file: its first handle inherits from nothing
            window = [row for row in (apply_leniently(variants, r) for r in window) if row]
        rows.extend(window)
    text_rows = [
        [("" if type(cell) is TypedCell else cell) for cell in row] for row in analysis.rows + rows
    ]
    conventions = detect_conventions(
        text_rows, encoding=encoding, delimiter=analysis.dialect.delimiter
    )
    return inference.suggest(analysis, conventions=conventions, windows=rows, **kwargs)


async def create_import(
    session: AsyncSession,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    pieces: AsyncIterator[bytes],
    filename: Callable[[], str],
    settings: Settings,
    sheet: str | None = None,
) -> tuple[ImportJob, dict[str, float]]:
    """Store the uploaded file in chunks and suggest a mapping from its first `SAMPLE_BYTES`
    (of a CSV file) or first rows (of an .xlsx workbook's first sheet, or `sheet`).

    The job is created, and each chunk stored, in short transactions of their own: no database
    connection waits on the client while it sends the file. `session` (the request's) is used
    once the whole file is stored. A failed upload (too large, over the quota, not a CSV, the
    client gone) takes its job and chunks away again.
    Returns the job (status `mapping`) and timings in ms (`upload`, `suggest`).
    """
    async with _pending_upload(sessionmaker, tenant_of(session), settings) as writer:
        started = time.perf_counter()
        limit = settings.max_upload_bytes
        sample = bytearray()
        head = bytearray()
        size = 0
        transcoded_from: str | None = None
        transcode: _Transcode | None = None
        decided = binary_checked = False
        workbook = None  # an .xlsx upload, also kept here: a ZIP archive is read from its end

        async def store(data: bytes) -> None:
            nonlocal binary_checked
            if workbook is not None:
                workbook.write(data)
            elif len(sample) < sniffing.SAMPLE_BYTES:
                sample.extend(data[: sniffing.SAMPLE_BYTES - len(sample)])
                if not binary_checked and len(sample) >= 65536:
                    binary_checked = True  # refuse an archive or image before storing all of it
                    reason = sniffing.binary_reason(bytes(sample))
                    if reason:
                        raise BadRequest(reason)
            await writer.write(data)

        async for piece in pieces:
            size += len(piece)
            if size > limit:
                raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes")
            if not decided:
                head.extend(piece)
                if len(head) < (
                    CFB_HEAD_BYTES if head.startswith(CFB_MAGIC) else 4096
                ):  # an OLE2 file: read its directory
                    continue
                piece, decided = bytes(head), True
                workbook = _workbook_spool(piece, filename())
                transcoded_from, transcode = (None, None) if workbook else _transcoder(piece)
            await store(transcode(piece) if transcode else piece)
        if not decided and head:
            workbook = _workbook_spool(bytes(head), filename())
            transcoded_from, transcode = (None, None) if workbook else _transcoder(bytes(head))
            await store(transcode(bytes(head)) if transcode else bytes(head))
        if transcode:
            await store(transcode(b"", True))
        await writer.close()
        if size == 0:
            raise BadRequest("The file is empty")
        upload_done = time.perf_counter()

        if workbook is not None:
            try:
                with workbook:
                    analysis, source, estimated_rows = await asyncio.to_thread(
                        analyse_xlsx, workbook, sheet=sheet
                    )
            except XlsxError as exc:
                raise BadRequest(str(exc), status_code=exc.status) from None
            job = await _suggest_into(
                session,
                writer.job_id,
                b"",
                stored_bytes=writer.size,
                complete=True,
                transcoded_from=None,
                settings=settings,
                budget_start=upload_done,
                workbook=(analysis, source, estimated_rows),
            )
        else:
            job = await _suggest_into(
                session,
                writer.job_id,
                bytes(sample),
                stored_bytes=writer.size,
                complete=writer.size <= sniffing.SAMPLE_BYTES,
                transcoded_from=transcoded_from,
                settings=settings,
                budget_start=upload_done,
            )
        job.filename = filename() or ("upload.xlsx" if workbook is not None else "upload.csv")
        job.size_bytes = size
        await session.flush()
        await session.refresh(job)
        finished = time.perf_counter()
        return job, {
            "upload": (upload_done - started) * 1000,
            "suggest": (finished - upload_done) * 1000,
        }


@asynccontextmanager
async def _pending_upload(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: int, settings: Settings
) -> AsyncIterator[ChunkWriter]:
    """A new job (status `pending`, in a transaction of its own) and the writer of its chunks;
    an upload that fails takes both away again."""
    job_id = uuid.uuid4()
    async with session_scope(sessionmaker, tenant_id) as own:
        own.add(ImportJob(id=job_id, status="pending", filename=""))
    writer = ChunkWriter(
        sessionmaker, job_id, tenant_id, quota_bytes=settings.import_storage_quota_bytes
    )
    try:
        yield writer
    except BaseException:
        await asyncio.shield(writer.discard())
        await asyncio.shield(_discard_upload(sessionmaker, tenant_id, job_id))
        raise


async def _discard_upload(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: int, job_id: uuid.UUID
) -> None:
    async with session_scope(sessionmaker, tenant_id) as own:
        await own.execute(
            text(
                f"DELETE FROM import_jobs WHERE id = :id AND {tenant_is('import_jobs', ':tenant')}"
                " AND status = 'pending'"
            ),
            {"id": job_id, "tenant": tenant_id},
        )


async def _suggest_into(
    session: AsyncSession,
    job_id: uuid.UUID,
    sample: bytes,
    *,
    stored_bytes: int,
    complete: bool,
    transcoded_from: str | None,
    settings: Settings | None,
    budget_start: float,
    encoding: str | None = None,
    delimiter: str | None = None,
    workbook: tuple[sniffing.SampleAnalysis, XlsxSource, int] | None = None,
) -> ImportJob:
    """Read the sample (with the client's encoding or delimiter, if given) and windows in the middle
    and end of the stored file, detect the file's conventions and suggest a mapping; the job gets
    all of it and goes to status `mapping`. `settings` None: no LLM opinion. The job's row is
    locked only once the slow part is done (a failed upload deletes its job from another session
    meanwhile). A `workbook` comes analysed (its first rows, its sheet, its estimated rows): no
    windows, since a ZIP archive cannot be read from the middle."""
    source: XlsxSource | None = None
    if workbook is not None:
        analysis, source, estimated_rows = workbook
        windows = []
    else:
        try:
            analysis = await asyncio.to_thread(
                sniffing.analyse_sample,
                sample,
                complete=complete,
                encoding=encoding,
                delimiter=delimiter,
            )
        except sniffing.NotCsv as exc:
            raise BadRequest(str(exc)) from None
        windows = (
            [] if complete else await _windows(session, job_id, analysis, stored_bytes=stored_bytes)
        )
        estimated_rows = sniffing.estimate_rows(analysis, stored_bytes)
    found = transform_for(analysis.headers)
    transform_name, variants = found if found else (None, None)
    if (
        variants is not None
    ):  # a known format's rows made whole (Shopify's variant rows): the suggestion sees them so
        analysis.headers = variants.headers(analysis.headers)
        analysis.rows = [
            row for row in (apply_leniently(variants, r) for r in analysis.rows) if row
        ]
    fields = await get_fields(session)
    schema = schema_out(await get_schema_row(session))
    remembered = await _remembered(session, analysis.headers)
    suggestion = await asyncio.to_thread(
        _suggest_from,
        analysis,
        windows,
        variants=variants,
        encoding=transcoded_from or analysis.encoding,
        fields=fields,
        remembered=remembered,
        locale=schema["default_locale"],
        currency=schema["default_currency"],
        total_rows=estimated_rows,
    )
    if settings is not None and settings.llm_base_url:
        left = SUGGESTION_BUDGET_S - (time.perf_counter() - budget_start)
        answer = await ask_llm(settings, suggestion, fields, timeout=left)
        if answer is not None:
            changed = merge_llm_answer(suggestion, answer, fields=fields)
            log.info("llm_suggestion_merged", job_id=str(job_id), changed=changed)

    job = await get_job(session, str(job_id), for_update=True)  # NotFound: deleted meanwhile
    job.status = "mapping"
    job.encoding = None if source else transcoded_from or analysis.encoding
    job.delimiter = None if source else analysis.dialect.delimiter
    job.quotechar = None if source else analysis.dialect.quotechar
    job.columns = [
        {
            "header": c.header,
            "samples": c.samples,
            "inferred_type": c.inferred_type,
            "suggested_field": c.suggested_field,
            "confidence": c.confidence,
            "reason": c.reason,
            "warnings": c.warnings,
        }
        for c in suggestion.columns
    ]
    job.suggested_mapping = suggestion.mapping()
    job.suggested_schema = suggestion.schema(fields)
    job.parse_options = {
        "headers": analysis.headers,
        "conventions": suggestion.conventions.to_json(),
        "stored_encoding": "utf-8" if transcoded_from else analysis.encoding,
        "escapechar": analysis.dialect.escapechar,
        "header_row": analysis.header_row,
        "stored_bytes": stored_bytes,
        "sources": {c.header: c.source for c in suggestion.columns},
        "format": suggestion.format,
        "xlsx": source.options() if source else None,
        "row_transform": transform_name,
        "suggested_value_mapping": suggestion.value_mapping,
    }
    job.total_rows = estimated_rows
    job.resume_offset = analysis.data_offset
    job.resume_row = analysis.header_row
    return job


# --- confirm ---------------------------------------------------------------------------------


def validate_mapping(
    headers: list[str], mapping: dict[str, str | None], fields: list[FieldDef]
) -> dict[str, str | None]:
    """The full mapping (every header, unlisted ones skipped) or BadRequest."""
    unknown = [h for h in mapping if h not in headers]
    if unknown:
        raise BadRequest(
            f"Unknown CSV headers in mapping: {unknown[:10]}; the file's headers are {headers[:50]}"
        )
    names = {f.name for f in fields}
    targets = [t for t in mapping.values() if t is not None]
    bad = sorted({t for t in targets if t not in BUILTIN_TARGETS and t not in names})
    if bad:
        raise BadRequest(
            f"Mapping targets must be one of {list(BUILTIN_TARGETS)} or a field of the confirmed schema; unknown: {bad[:10]}"
        )
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    if repeated:
        raise BadRequest(
            f"Each target may be used by one column only; used more than once: {repeated[:10]}"
        )
    if "sku" not in targets:
        raise BadRequest("No column maps to sku; map the column with the product codes to `sku`")
    return {h: mapping.get(h) for h in headers}


async def remember_mapping(session: AsyncSession, mapping: dict[str, str | None]) -> None:
    choices: dict[str, str | None] = {}
    for header, target in mapping.items():
        choices.setdefault(header_key(header), target)
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


def with_suggested_words(
    suggested: dict[str, dict[str, str]],
    given: dict[str, dict[str, Any]] | None,
    mapping: dict[str, str | None],
) -> dict[str, dict[str, Any]]:
    """The suggested value mapping (status words) of the columns that still target `status`, with the
    client's: a column the client lists takes the client's mapping only (what it sends is what applies)."""
    merged = {h: dict(words) for h, words in suggested.items() if mapping.get(h) == "status"}
    return {**merged, **(given or {})}


def validate_value_mapping(
    value_mapping: dict[str, dict[str, Any]],
    mapping: dict[str, str | None],
    fields: list[FieldDef],
    conventions: Conventions,
) -> dict[str, dict[str, Any]]:
    """A `value_mapping` whose columns map to status, enum or boolean targets and whose values are
    valid for them (or null), else BadRequest."""
    field_map = {f.name: f for f in fields}
    for header, values in value_mapping.items():
        target = mapping.get(header)
        # None: the column is the status (a field is never named like a built-in)
        field = field_map.get(target) if target and target != "status" else None
        if target != "status" and (field is None or field.type not in VALUE_MAPPED_TYPES):
            raise BadRequest(
                f"value_mapping: column {header[:100]!r} must map to status, an enum field or a boolean field "
                f"(it maps to {target!r})"
            )
        for cell, value in values.items():
            if value is None:
                continue
            try:
                if field is None:
                    if not isinstance(value, str):
                        raise ValueError("a status is text")
                    read_status(value, conventions)
                else:
                    coerce_value(field, value, conventions)
            except ValueError as exc:
                raise BadRequest(
                    f"value_mapping: column {header[:100]!r}, {cell[:60]!r} → {value!r}: {exc}"
                ) from None
    return value_mapping


async def _sample_of(session: AsyncSession, job: ImportJob) -> bytes:
    """The first `SAMPLE_BYTES` of the stored file."""
    sample = bytearray()
    async for data in read_chunks(await driver_connection(session), job.id):
        sample += data[: sniffing.SAMPLE_BYTES - len(sample)]
        if len(sample) >= sniffing.SAMPLE_BYTES:
            break
    return bytes(sample)


async def _reread_if_asked(
    session: AsyncSession, job: ImportJob, body: ConfirmIn, changes: dict[str, Any]
) -> None:
    """Decode and split the stored file again when the client overrides its encoding or delimiter."""
    encoding = body.encoding or changes.get("encoding")
    delimiter = body.delimiter or changes.get("delimiter")
    for name, value, allowed in (
        ("encoding", encoding, ENCODINGS),
        ("delimiter", delimiter, DELIMITERS),
    ):
        if value is not None and value not in allowed:
            raise BadRequest(f"{name}: must be one of {list(allowed)}")
    if job.parse_options.get("xlsx"):
        if encoding is not None or delimiter is not None:
            raise BadRequest("encoding and delimiter do not apply to an .xlsx workbook")
        return
    if (encoding is None or encoding == job.encoding) and (
        delimiter is None or delimiter == job.delimiter
    ):
        return
    transcoded_from = (
        job.encoding
        if job.parse_options.get("stored_encoding") == "utf-8"
        and job.encoding is not None
        and job.encoding.startswith("utf-16")
        else None
    )
    if transcoded_from and encoding not in (None, job.encoding):
        raise BadRequest(
            "encoding: a UTF-16 upload was stored as UTF-8; upload the file again to read it otherwise"
        )
    stored_bytes = job.parse_options.get("stored_bytes", 0)
    await _suggest_into(
        session,
        job.id,
        await _sample_of(session, job),
        stored_bytes=stored_bytes,
        complete=stored_bytes <= sniffing.SAMPLE_BYTES,
        transcoded_from=transcoded_from,
        settings=None,
        budget_start=time.perf_counter(),
        encoding=None if transcoded_from else encoding or job.parse_options.get("stored_encoding"),
        delimiter=delimiter or job.delimiter,
    )


async def confirm_import(
    session: AsyncSession, *, arq: ArqRedis, job_id: str, body: ConfirmIn
) -> ImportJob:
    """Validate the mapping, conventions and value mapping; then either dry-run the file (nothing written,
    the job stays in `mapping`) or save schema and choices and queue the import (all or nothing)."""
    job = await get_job(
        session, job_id, for_update=True
    )  # the worker waits on this lock until we commit
    if job.status != "mapping":
        raise BadRequest(f"The job is {job.status}; only a job in status mapping can be confirmed")
    changes = body.conventions.changes() if body.conventions is not None else {}
    await _reread_if_asked(session, job, body, changes)
    changes = {k: v for k, v in changes.items() if k not in ("encoding", "delimiter")}
    try:
        # a job uploaded before conventions existed: the defaults, with its detected encoding and delimiter
        stored = job.parse_options.get("conventions") or {
            "encoding": job.encoding,
            "delimiter": job.delimiter,
        }
        conventions = Conventions.from_json(stored).updated(changes)
    except ValueError as exc:
        raise BadRequest(f"conventions: {exc}") from None
    if body.mapping is None and body.schema_fields is None:
        fields = [FieldDef.model_validate(f) for f in job.suggested_schema]
    else:
        fields = body.schema_fields if body.schema_fields is not None else await get_fields(session)
    headers = job.parse_options.get("headers", [])
    mapping = validate_mapping(
        headers, job.suggested_mapping if body.mapping is None else body.mapping, fields
    )
    value_mapping = validate_value_mapping(
        with_suggested_words(
            job.parse_options.get("suggested_value_mapping") or {}, body.value_mapping, mapping
        ),
        mapping,
        fields,
        conventions,
    )
    options = {k: v for k, v in job.parse_options.items() if k != "dry_run"}
    options["conventions"] = conventions.to_json()
    if body.dry_run:
        plan = ImportPlan.of_job(
            job.delimiter,
            job.quotechar,
            options,
            headers=headers,
            mapping=mapping,
            conventions=conventions,
            value_mapping=value_mapping,
        )
        options["dry_run"] = await dry_run(
            session,
            job_id=job.id,
            plan=plan,
            fields=fields,
            start_offset=job.resume_offset,
            header_row=job.resume_row,
        )
        job.parse_options = options
        return await written(session, job)
    options["value_mapping"] = value_mapping
    job.parse_options = options
    if (
        body.schema_fields is not None
        or body.default_currency
        or body.default_locale
        or body.mapping is None
    ):
        # not validated again: ConfirmIn has checked what the client sent, and the current fields are
        # stored ones, which need not pass rules added since they were saved
        schema = SchemaIn.model_construct(
            fields=fields,
            default_currency=body.default_currency,
            default_locale=body.default_locale,
        )
        await put_schema(session, schema)
    await remember_mapping(session, mapping)
    job.mapping = mapping
    job.status = "importing"
    await session.flush()
    # sent after the commit; Redis down: the request fails and everything above rolls back
    await enqueue_after_commit(
        session,
        arq,
        Job(TASK_NAME, (str(job.id),), arq_job_id(job.id)),
        unavailable="The job queue (Redis) is unavailable; the import was not started, try again",
    )
    await session.refresh(job)
    return job


async def delete_job(session: AsyncSession, job_id: str) -> None:
    """Delete a job with its stored file and rejected rows; a job being imported is a Conflict."""
    job = await get_job(session, job_id, for_update=True)  # waits for a confirmation in progress
    if job.status == "importing":
        raise Conflict("The job is importing; it can be deleted once it is done or failed")
    await session.execute(
        text(f"DELETE FROM import_jobs WHERE id = :id AND {tenant_is('import_jobs', ':tenant')}"),
        {"id": job.id, "tenant": tenant_of(session)},
    )


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

    widest = (
        await fetch(
            "SELECT max(jsonb_array_length(cells)) FROM import_row_errors WHERE job_id = $1", job_id
        )
    )[0][0]
    width = max(len(headers), widest or 0)
    buffer = io.StringIO()
    writer = csv_writer(buffer)  # formula-safe cells, for spreadsheets
    writer.writerow([*headers, *[""] * (width - len(headers)), "row", "error"])
    last = -1
    while True:
        rows = await fetch(
            "SELECT row, cells::text AS cells, detail FROM import_row_errors WHERE job_id = $1 AND row > $2 ORDER BY row LIMIT $3",
            job_id,
            last,
            ERROR_PAGE_ROWS,
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
