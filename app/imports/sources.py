"""The stored upload as records, for the upload's suggestion and for the worker.

A CSV file is read from a byte offset (`RecordStream`). An .xlsx workbook is stored as
uploaded and read with `app.imports.xlsx`: a ZIP archive cannot be read from the middle,
so its records are numbered by sheet row instead, and the worker resumes after a sheet
row (`resume_offset` holds that row number for such a job). Re-reading the rows before
it costs seconds, once per crash or time slice; converting the sheet to another stored
form would cost the same reading at every import, plus its storage.
"""

import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any

from app.imports.profiling import TYPE_SAMPLE_VALUES
from app.imports.records import Dialect, Record, RecordStream
from app.imports.sniffing import MAX_COLUMNS, SampleAnalysis, unique_headers
from app.imports.storage import read_chunks
from app.imports.transforms import RowTransform, TransformError
from app.imports.xlsx import (
    Sheet,
    XlsxError,
    declared_last_row,
    iter_rows,
    open_workbook,
)

SPOOL_BYTES = 16 << 20  # a larger workbook is spooled to disk while the worker reads it
SHEET_ROWS_PER_STEP = 500
SAMPLE_XML_BYTES = 16 << 20  # at most this much of the sheet's XML feeds the suggestion
# rows of a workbook's sample: inference types a column from 2,000 values (TYPE_SAMPLE_VALUES), and
# reading a workbook's rows costs ~5× a CSV file's: more would only slow the upload's answer
SAMPLE_ROWS = TYPE_SAMPLE_VALUES


def _blank(cells: list[str]) -> bool:
    return not any(str(c).strip() for c in cells)


@dataclass
class XlsxSource:
    """What the job keeps about an uploaded workbook (in `parse_options["xlsx"]`)."""

    sheet: str
    path: str
    sheets: list[str]

    def options(self) -> dict[str, Any]:
        return {"sheet": self.sheet, "path": self.path, "sheets": self.sheets}


def analyse_xlsx(file: IO[bytes], *, sheet: str | None) -> tuple[SampleAnalysis, XlsxSource, int]:
    """The chosen sheet's header and first rows (like `sniffing.analyse_sample` for a CSV file),
    where to find the sheet again, and the estimated number of data rows."""
    book = open_workbook(file)
    chosen = book.sheet(sheet)
    headers: list[str] | None = None
    rows: list[list[str]] = []
    header_row = header_bytes = end_bytes = 0
    complete = True
    for row in iter_rows(book, chosen):
        if headers is None:
            if _blank(row.cells):
                continue
            if len(row.cells) > MAX_COLUMNS:
                raise XlsxError(
                    f"The header has {len(row.cells)} columns; at most {MAX_COLUMNS} are supported"
                )
            headers = unique_headers([str(c) for c in row.cells])
            header_row, header_bytes = row.number, row.end_byte
            continue
        if _blank(row.cells):
            continue
        rows.append(row.cells)
        end_bytes = row.end_byte
        if len(rows) >= SAMPLE_ROWS or row.end_byte - header_bytes >= SAMPLE_XML_BYTES:
            complete = False
            break
    if headers is None:
        raise XlsxError(f"The sheet {chosen.name!r} is empty (no header row)")
    total = len(rows)
    if not complete:
        last = declared_last_row(book, chosen)
        if last and last - header_row >= total:
            total = last - header_row
        elif end_bytes > header_bytes:
            total = max(
                total,
                round(total * book.sheet_size(chosen) / (end_bytes - header_bytes)),
            )
    analysis = SampleAnalysis.of_sheet(headers, rows, complete=complete, header_row=header_row)
    return (
        analysis,
        XlsxSource(chosen.name, chosen.path, [s.name for s in book.sheets]),
        total,
    )


def xlsx_records(file: IO[bytes], source: dict[str, Any], *, start_row: int) -> Iterator[Record]:
    """The sheet's records after sheet row `start_row`; `end_offset` is the record's sheet row."""
    book = open_workbook(file)
    sheet = Sheet(name=source["sheet"], path=source["path"])
    for row in iter_rows(book, sheet, start_after=start_row):
        yield Record(row.cells, row.number)


async def stored_records(
    conn,
    job_id,
    *,
    xlsx: dict[str, Any] | None,
    encoding: str,
    dialect: Dialect,
    start_offset: int,
    width: int | None = None,
) -> AsyncIterator[Iterable[Record]]:
    """The stored file's records from the resume point, in steps (iterate each step before the next).

    `width`: the file's header cells, to check a CSV file's records against (`RecordStream`)."""
    if xlsx is None:
        stream = RecordStream(
            encoding=encoding, dialect=dialect, start_offset=start_offset, width=width
        )
        async for data in read_chunks(conn, job_id, start_offset=start_offset):
            stream.feed(data)
            yield stream.records()
        stream.finish()
        yield stream.records()
        return
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as file:
        async for data in read_chunks(conn, job_id):
            file.write(data)
        records = xlsx_records(file, xlsx, start_row=start_offset)
        while step := list(islice(records, SHEET_ROWS_PER_STEP)):
            yield step


def transformed(records: Iterable[Record], transform: RowTransform) -> Iterator[Record]:
    """A known format's rows made whole (see `transforms`)."""
    for record in records:
        if record.error is None:
            try:
                record.cells = transform.apply(record.cells)
            except TransformError as exc:
                record.error, record.sku = str(exc), exc.sku
        yield record
