"""A dry run of an import: the whole stored file through the mapping and conventions, nothing written.

It reads the file as the worker does (the same `RecordStream` and `RowConverter`), in the
request, with the parsing in a thread chunk by chunk. It reports what the import would do:
rows to create, update and reject, the first errors, and the values the first rows would store.
Checks that need the rows written (unique values, concurrent writers) are left to the import.
"""

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.fields import FieldDef, check_required, is_empty
from app.catalog.values import CoercionError
from app.db import driver_connection, tenant_of
from app.imports.plan import ImportPlan
from app.imports.records import Record, RecordStream
from app.imports.rows import RowConverter, RowError
from app.imports.sources import transformed
from app.imports.storage import read_chunks
from app.products.upsert import existing_skus

FIRST_ERRORS = 100
FIRST_ROWS = 20
SKU_QUERY_BATCH = 10_000
_NONE: frozenset[str] = frozenset()


@dataclass
class _Tally:
    converter: RowConverter
    required: dict[str, FieldDef]  # the schema's required fields: a new product needs them all
    row: int  # record number of the last record read (the header is record `header_row`)
    rows: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)
    # valid rows per SKU, the first row's number, and which required fields its rows set
    skus: dict[str, list] = field(default_factory=dict)
    new_skus: list[str] = field(default_factory=list)  # first seen since the last `drain_new_skus`

    def drain_new_skus(self) -> list[str]:
        skus, self.new_skus = self.new_skus, []
        return skus

    def take(self, stream: RecordStream, data: bytes | None) -> None:
        """Feed a piece of the file (None: the end) and tally the records it completes."""
        if data is None:
            stream.finish()
        else:
            stream.feed(data)
        self.take_records(stream.records())

    def take_records(self, records: Iterable[Record]) -> None:
        convert, required = self.converter.convert, self.required
        for record in records:
            self.row += 1
            cells = record.cells
            if not record.error and not "".join(cells).strip():
                continue  # blank lines are skipped, not counted (as the import does)
            self.rows += 1
            if record.error:
                self._reject(self.row, record.sku, record.error)
                continue
            try:
                converted = convert(cells)
            except RowError as exc:
                self._reject(self.row, self.converter.sku_of(cells), str(exc))
                continue
            item = converted.item
            seen = self.skus.get(item["sku"])
            set_required = (
                {name for name in required if not is_empty(item.get(name))} if required else _NONE
            )
            if seen is None:
                self.skus[item["sku"]] = [1, self.row, set_required]
                self.new_skus.append(item["sku"])
            else:
                seen[0] += 1
                if required:
                    seen[2] = seen[2] | set_required
            if len(self.preview) < FIRST_ROWS:
                values = {k: v for k, v in item.items() if k != "sku"}
                self.preview.append(
                    {
                        "row": self.row,
                        "sku": item["sku"],
                        "values": values,
                        "categories": None
                        if converted.category_paths is None
                        else list(converted.category_paths),
                    }
                )

    def _reject(self, row: int, sku: str | None, detail: str) -> None:
        self.rejected += 1
        if len(self.errors) < FIRST_ERRORS:
            self.errors.append({"row": row, "sku": sku, "detail": detail})


async def dry_run(
    session: AsyncSession,
    *,
    job_id,
    plan: ImportPlan,
    fields: list[FieldDef],
    start_offset: int,
    header_row: int,
) -> dict[str, Any]:
    """What importing the stored file with this mapping, schema and conventions would do.

    A workbook, or a file whose rows a transform completes (Shopify's variant rows, Merchant Center prices), is read
    through the worker's own record source; plain CSV is parsed in a thread piece by piece."""
    field_map = {f.name: f for f in fields}
    converter = plan.converter(field_map)
    tally = _Tally(
        converter=converter,
        required={n: f for n, f in field_map.items() if f.required},
        row=header_row,
    )
    transform = plan.transform()
    stream = RecordStream(
        encoding=plan.encoding,
        dialect=plan.dialect,
        start_offset=start_offset,
        width=plan.width(transform),
    )
    conn = await driver_connection(session)
    tenant_id = tenant_of(session)
    existing: set[str] = set()

    async def look_up(skus: list[str]) -> None:
        for i in range(0, len(skus), SKU_QUERY_BATCH):
            existing.update(await existing_skus(conn, tenant_id, skus[i : i + SKU_QUERY_BATCH]))

    if plan.xlsx is not None or plan.row_transform is not None:
        async for records in plan.records(
            conn, job_id, start_offset=start_offset, transform=transform
        ):
            tally.take_records(transformed(records, transform) if transform else records)
            await look_up(tally.drain_new_skus())
    else:
        # A piece is parsed in a thread while the connection fetches the next one and looks up the
        # SKUs of the one before: Python and Postgres work at the same time.
        parsing: asyncio.Future | None = None
        async for data in read_chunks(conn, job_id, start_offset=start_offset):
            if parsing is not None:
                await parsing
            skus = tally.drain_new_skus()
            parsing = asyncio.ensure_future(asyncio.to_thread(tally.take, stream, data))
            await look_up(skus)
        if parsing is not None:
            await parsing
        await asyncio.to_thread(tally.take, stream, None)
    await look_up(tally.drain_new_skus())

    create = update = 0
    incomplete: list[dict[str, Any]] = []
    for sku, (count, first_row, set_required) in tally.skus.items():
        if sku in existing:
            update += count
            continue
        if len(set_required) < len(tally.required):
            try:  # a new product without a required field: all its rows are rejected, as the import does
                check_required(tally.required, dict.fromkeys(set_required, True))
            except CoercionError as exc:
                tally.rejected += count
                incomplete.append({"row": first_row, "sku": sku, "detail": str(exc)})
                continue
        create += 1
        update += count - 1  # its later rows update what the first one creates
    errors = sorted(tally.errors + incomplete[:FIRST_ERRORS], key=lambda e: e["row"])[:FIRST_ERRORS]
    return {
        "rows": tally.rows,
        "create": create,
        "update": update,
        "reject": tally.rejected,
        "errors": errors,
        "preview": tally.preview,
        "conventions": plan.conventions.to_json(),
    }
