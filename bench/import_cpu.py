"""CPU cost per row of the CSV import's Python stages, without a database.

    .venv/bin/python bench/import_cpu.py                  # 100,000 rows
    .venv/bin/python bench/import_cpu.py --rows 20000 --profile

Generates bench/import.py's supplier feed, gets the mapping, schema and conventions from the
suggestion (as the confirm of the suggested mapping does), then times per row:

- records: `RecordStream` splitting the file (fed in stored-chunk pieces) into cells
- convert: `RowConverter.convert` and `_Batch.accept` (merge by SKU, build the product to write)
- commit:  `_Importer.commit` per batch of `BATCH_ROWS` on a stub session and connection
           that answer like an empty products table: everything the worker does in Python
           around the SQL (validation, coercion, JSON, statement arguments)

The worker does all three on one event loop (the database works meanwhile), so their sum
is the CPU time the import needs per row. CPU seconds come from `time.process_time`; the
garbage collector's share (already inside the stages) is shown on its own.
"""

import argparse
import asyncio
import cProfile
import gc
import importlib.util
import itertools
import pstats
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.catalog.fields import FieldDef
from app.config import get_settings
from app.imports import inference, sniffing, tasks
from app.imports.plan import ImportPlan
from app.imports.records import RecordStream
from app.imports.rows import RowError
from app.imports.storage import CHUNK_BYTES
from app.products import upsert

_spec = importlib.util.spec_from_file_location("bench_import", ROOT / "bench" / "import.py")
bench_import = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_import)


class StubConnection:
    """Answers the import's statements as an empty products table would: every SKU is new,
    every category id exists. Counts the rows inserted and the rows rejected."""

    def __init__(self) -> None:
        self.inserted = 0
        self.rejected = 0

    def is_in_transaction(self) -> bool:
        return True

    async def fetch(self, sql: str, *args):
        if "RETURNING sku" in sql:  # the INSERT
            self.inserted += len(args[1])
            return [(sku,) for sku in args[1]]
        if "FROM categories" in sql:
            return [(category_id,) for category_id in args[1]]
        return []

    async def fetchval(self, sql: str, *args):
        return None

    async def execute(self, sql: str, *args) -> str:
        if "import_row_errors" in sql:
            self.rejected += len(args[1])
        if "INSERT INTO products" in sql:  # the first attempt's INSERT, which returns no rows
            self.inserted += len(args[1])
        return "UPDATE 1"


class StubSession:
    def __init__(self, conn: StubConnection) -> None:
        self.conn = conn
        self.info: dict = {}

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    def begin(self):
        return self

    async def execute(self, statement, params=None):
        return None


def suggested_import(feed: bytes):
    """Mapping, schema fields, conventions and the parse options the confirm of the suggestion stores."""
    sample = feed[: sniffing.SAMPLE_BYTES]
    analysis = sniffing.analyse_sample(sample, complete=len(feed) <= sniffing.SAMPLE_BYTES)
    suggestion = inference.suggest(analysis, fields=[])
    fields = {f["name"]: FieldDef(**f) for f in suggestion.schema([])}
    return analysis, suggestion.mapping(), fields, suggestion.conventions


def make_importer(analysis, mapping, fields, conventions) -> tuple[tasks._Importer, StubConnection]:
    conn = StubConnection()
    job = tasks._Job(
        id=uuid.uuid4(),
        tenant_id=1,
        resume_offset=analysis.data_offset,
        resume_row=analysis.header_row,
        error_count=0,
        plan=ImportPlan(
            analysis.headers,
            mapping,
            conventions,
            {},
            encoding=analysis.encoding,
            dialect=analysis.dialect,
            xlsx=None,
            row_transform=None,
        ),
    )
    schema = tasks._Schema(None, fields, job.plan.converter(fields))
    ctx = {"sessionmaker": lambda: StubSession(conn), "settings": get_settings()}
    importer = tasks._Importer(ctx, job, conn, schema)  # type: ignore[arg-type]

    async def field_map(_session):
        return fields

    async def category_ids(_session, paths):
        return {p: hash(p) & 0xFFFF for p in paths}

    async def stub_connection(_session):
        return conn

    async def schema_version(_session):
        return None

    tasks.get_field_map = field_map
    tasks.ensure_category_paths = category_ids
    tasks.driver_connection = upsert.driver_connection = stub_connection
    tasks.lock_schema = schema_version
    return importer, conn


class GcTimer:
    """CPU seconds spent in garbage collections while it is installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, _info: dict) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started

    def __enter__(self) -> Self:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self)


def measure(feed: bytes, rows: int) -> dict[str, float]:
    analysis, mapping, fields, conventions = suggested_import(feed)
    importer, conn = make_importer(analysis, mapping, fields, conventions)
    converter = importer.schema.converter
    assert converter is not None

    # streamed like `_Importer.run`: one stored chunk and one batch alive at a time
    records_s = convert_s = commit_s = 0.0
    row = 0
    batch = tasks._Batch(importer.schema)
    stream = RecordStream(
        encoding=analysis.encoding, dialect=analysis.dialect, start_offset=analysis.data_offset
    )
    loop = asyncio.new_event_loop()

    def take(records) -> None:
        nonlocal row, batch, records_s, convert_s, commit_s
        while True:
            started = time.process_time()
            part = list(itertools.islice(records, tasks.BATCH_ROWS - batch.records))
            records_s += time.process_time() - started
            if not part:
                return
            started = time.process_time()
            for record in part:
                row += 1
                try:
                    batch.accept(row, converter.convert(record.cells), record.cells)
                except RowError as exc:
                    raise SystemExit(f"row {row} rejected: {exc}") from None
            batch.processed += len(part)
            batch.records += len(part)
            convert_s += time.process_time() - started
            if batch.records >= tasks.BATCH_ROWS:
                started = time.process_time()
                loop.run_until_complete(importer.commit(batch, final=False, after=None))
                commit_s += time.process_time() - started
                batch = tasks._Batch(importer.schema)

    with GcTimer() as gc_timer:
        for start in range(analysis.data_offset, len(feed), CHUNK_BYTES):
            started = time.process_time()
            stream.feed(feed[start : start + CHUNK_BYTES])
            records_s += time.process_time() - started
            take(stream.records())
        stream.finish()
        take(stream.records())
        if batch.records:
            started = time.process_time()
            loop.run_until_complete(importer.commit(batch, final=False, after=None))
            commit_s += time.process_time() - started
    loop.close()
    assert (row, conn.inserted, conn.rejected) == (rows, rows, 0), "not every row was written"

    stages = {
        "records": records_s,
        "convert": convert_s,
        "commit": commit_s,
        "gc": gc_timer.seconds,
    }
    return {name: seconds / rows * 1e6 for name, seconds in stages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs; the fastest of each stage is reported"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of one run instead"
    )
    args = parser.parse_args()
    rnd = random.Random(42)
    feed = (
        bench_import.HEADER + "".join(bench_import.feed_row(i, rnd) for i in range(args.rows))
    ).encode()
    gc.collect()  # as the worker's startup does (workers/main.py)
    gc.freeze()
    gc.set_threshold(700, 10, 100)
    if args.profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.runcall(measure, feed, args.rows)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, us in measure(feed, args.rows).items():
            best[name] = min(best.get(name, us), us)
    print(f"{args.rows:,} rows, best of {args.repeat} (µs of CPU per row):")
    gc_us = best.pop("gc")
    for name, us in best.items():
        print(f"  {name:8} {us:6.1f}")
    print(f"  {'total':8} {sum(best.values()):6.1f}  (garbage collection: {gc_us:.1f})")


if __name__ == "__main__":
    main()
