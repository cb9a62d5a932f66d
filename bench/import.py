"""CSV import benchmark: upload + suggestion, import rows/s beside COPY of the same rows, worker RSS.

    .venv/bin/python bench/import.py                 # 1,000,000 rows
    .venv/bin/python bench/import.py --rows 200000
    .venv/bin/python bench/import.py --suggest-only  # upload + suggestion of a 134 MB file, no import
    .venv/bin/python bench/import.py --xlsx --rows 240000  # a 20 MB .xlsx workbook instead (bench/xlsx_feed.py)

Generates a supplier-style feed (';', decimal commas, dd.mm.yyyy dates, ja/nein, category
paths, '|' lists, quoted cells), starts the real API (`pim serve`) and a real worker
(`pim worker`) on a Redis database of their own, uploads the file over HTTP, confirms the
suggestion (first as a dry run, timed) and waits for the job. The baseline COPYs the same product rows into a scratch
table shaped like products (same columns and indexes) in the same run. Peak RSS is sampled
with psutil on the worker process. Goals: suggestion < 3 s, import >= 40% of COPY, RSS <= 300 MB, dry run <= 15 s.
The tenant is deleted at the end unless --keep.
"""

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth.service import Role, create_api_key, create_tenant
from app.config import get_settings
from app.db import create_engine, create_sessionmaker, tenant_is
from app.imports.rows import parse_category_paths
from app.imports.sniffing import SAMPLE_BYTES
from app.products.upsert import driver_connection

# the CSV feed describes the same catalog as the workbook
from bench.common import cpu_seconds, free_port
from bench.xlsx_feed import BRANDS, CATEGORIES, COLORS, write_xlsx_feed

HEADER = "Artikelnummer;Bezeichnung;Marke;Preis;Lagerbestand;Aktiv;Farbe;Kategorie;Bild;Erscheinungsdatum;Material\n"


def feed_row(i: int, rnd: random.Random) -> str:
    name = f'"Stuhl ""Modell {i}"", stapelbar"' if i % 50 == 0 else f"Stuhl Modell {i}"
    price = f"{rnd.randint(1, 2999)},{rnd.randint(0, 99):02d}"
    cats = CATEGORIES[i % 5] + ("|Outdoor" if i % 7 == 0 else "")
    date = f"{rnd.randint(1, 28):02d}.{rnd.randint(1, 12):02d}.20{rnd.randint(10, 24)}"
    return (
        f"SKU-{i:08d};{name};{BRANDS[i % 10]};{price};{rnd.randint(0, 500)};{'ja' if i % 3 else 'nein'};"
        f"{COLORS[i % 5]};{cats};https://img.example.org/{i}.jpg;{date};Holz|Stahl\n"
    )


def write_feed(path: Path, rows: int) -> int:
    rnd = random.Random(42)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for start in range(0, rows, 50_000):
            f.write("".join(feed_row(i, rnd) for i in range(start, min(rows, start + 50_000))))
    return path.stat().st_size


async def backend_cpu(raw, clients: dict[str, int]) -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by each Postgres backend of this database, named by its client
    (one of `clients`, {name: pid}, whose connection it serves) or its application name.

    Postgres' share of the import, which the other load on a shared machine does not inflate
    (a backend that ends in between is lost: the worker's pool keeps its connections)."""
    ports = {}
    for client, pid in clients.items():
        with contextlib.suppress(psutil.Error):
            ports.update((c.laddr.port, client) for c in psutil.Process(pid).net_connections("tcp"))
    cpu = {}
    for pid, name, port in await raw.fetch(
        """SELECT pid, application_name, client_port FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid()"""
    ):
        with contextlib.suppress(psutil.Error):
            cpu[pid] = (f"{ports.get(port, 'other')}:{name}", cpu_seconds(pid))
    return cpu


def backend_cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per application name between two `backend_cpu` snapshots."""
    used: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        used[name] = used.get(name, 0.0) + seconds - before.get(pid, (name, 0.0))[1]
    return used


class RssSampler(threading.Thread):
    """Peak RSS of a process and its children, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.05)


async def make_tenant(sessionmaker) -> tuple[int, str]:
    async with sessionmaker() as session, session.begin():
        tenant = await create_tenant(session, slug=f"bench-import-{secrets.token_hex(4)}")
        _row, key = await create_api_key(session, tenant.id, name="bench", role=Role.editor)
    return tenant.id, key


async def copy_baseline(
    sessionmaker, tenant_id: int, feed: Path, rows: int, *, into_products: bool = False
) -> float:
    """COPY the rows the import writes into a scratch table shaped like products; rows/s.

    With `into_products`, COPY into products itself for a scratch tenant instead (its size,
    dead tuples, foreign key and facet triggers included): what the database alone costs here.
    """
    category_ids = {
        p: i + 1
        for i, p in enumerate(
            sorted({p for c in [*CATEGORIES, "Outdoor"] for p in parse_category_paths(c)})
        )
    }
    records = []
    with feed.open(encoding="utf-8", newline="") as f:
        import csv

        reader = csv.reader(f, delimiter=";")
        next(reader)
        for cells in reader:
            data = {
                "brand": cells[2],
                "price": float(cells[3].replace(",", ".")),
                "stock": int(cells[4]),
                "color": cells[6],
                "image_url": cells[8],
                "release_date": "-".join(reversed(cells[9].split("."))),
                "material": cells[10].split("|"),
            }
            cats = [category_ids[p] for p in parse_category_paths(cells[7])]
            records.append(
                (
                    tenant_id,
                    cells[0],
                    cells[1],
                    "active" if cells[5] == "ja" else "inactive",
                    cats,
                    orjson.dumps(data).decode(),
                )
            )
    table = "products" if into_products else "bench_import_copy_scratch"
    async with sessionmaker() as session, session.begin():
        conn = await driver_connection(session)
        await conn.execute("DROP TABLE IF EXISTS bench_import_copy_scratch")
        if not into_products:
            await conn.execute(
                "CREATE TABLE bench_import_copy_scratch (LIKE products INCLUDING ALL)"
            )
    try:
        async with sessionmaker() as session, session.begin():
            conn = await driver_connection(session)
            # 100,000 rows into products itself outlast the API's statement timeout on a busy machine
            await conn.execute("SET LOCAL statement_timeout = 0")
            # binary COPY: jsonb is a version byte then the JSON text
            await conn.set_type_codec(
                "jsonb",
                encoder=lambda s: b"\x01" + s.encode(),
                decoder=lambda b: b[1:].decode(),
                schema="pg_catalog",
                format="binary",
            )
            started = time.perf_counter()
            for i in range(0, len(records), 100_000):
                await conn.copy_records_to_table(
                    table,
                    records=records[i : i + 100_000],
                    columns=["tenant_id", "sku", "name", "status", "categories", "data"],
                )
            elapsed = time.perf_counter() - started
    finally:
        async with sessionmaker() as session, session.begin():
            conn = await driver_connection(session)
            await conn.execute("DROP TABLE IF EXISTS bench_import_copy_scratch")
            if into_products:
                await conn.execute(f"DELETE FROM products WHERE {tenant_is('products')}", tenant_id)
    return rows / elapsed


async def main(args) -> None:
    settings = get_settings()
    redis_url = settings.redis_url.rsplit("/", 1)[0] + f"/{args.redis_db}"  # a queue of its own
    engine = create_engine(settings, pool_size=2, max_overflow=0)
    sessionmaker = create_sessionmaker(engine)
    tmp = Path(tempfile.mkdtemp(prefix="pim-bench-import-"))
    feed = tmp / "feed.csv"
    started = time.perf_counter()
    size = write_feed(feed, args.rows)
    print(
        f"feed: {args.rows:,} rows, {size / 1e6:.1f} MB, generated in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    uploaded, content_type = feed, "text/csv"
    if args.xlsx:  # the CSV feed stays for the COPY baselines
        uploaded, content_type = (
            tmp / "feed.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        started = time.perf_counter()
        size = write_xlsx_feed(uploaded, args.rows)
        print(
            f"workbook: {args.rows:,} rows, {size / 1e6:.1f} MB, written in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        live, dead = await raw.fetchrow(
            "SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relname = 'products'"
        ) or (0, 0)
        print(f"products before: {live:,} live rows, {dead:,} dead", flush=True)
        if args.vacuum:
            started = time.perf_counter()
            await raw.execute("SET statement_timeout = 0")
            await raw.execute("VACUUM ANALYZE products", timeout=3600)
            print(f"VACUUM ANALYZE products: {time.perf_counter() - started:.0f} s", flush=True)

    env = {**os.environ, "PIM_REDIS_URL": redis_url, "PIM_LOG_LEVEL": "WARNING"}
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sampler = RssSampler(worker.pid)
    tenant_id, key = await make_tenant(sessionmaker)
    headers = {"X-API-Key": key}
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=600) as http:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the API server did not start")
                await asyncio.sleep(0.05)
            sampler.start()
            idle_rss = sampler.process.memory_info().rss

            started, cpu_before = time.perf_counter(), cpu_seconds(server.pid)
            with uploaded.open("rb") as f:
                r = await http.post(
                    "/api/pim/import/csv/",
                    headers=headers,
                    files={"file": (uploaded.name, f, content_type)},
                )
            upload_s, upload_cpu_s = (
                time.perf_counter() - started,
                cpu_seconds(server.pid) - cpu_before,
            )
            assert r.status_code == 201, r.text
            timing = dict(
                part.strip().split(";dur=") for part in r.headers["server-timing"].split(",")
            )
            job = r.json()
            print(
                f"upload + suggestion: {upload_s:.2f} s over HTTP (server: upload {float(timing['upload']) / 1000:.2f} s, "
                f"suggestion {float(timing['suggest']) / 1000:.3f} s from the first {SAMPLE_BYTES >> 20} MiB); "
                f"estimated rows {job['total_rows']:,}; {upload_cpu_s:.2f} s of the API process's CPU",
                flush=True,
            )
            print("mapping:", job["suggested_mapping"], flush=True)
            if args.suggest_only:
                return

            print("conventions:", job["conventions"], flush=True)

            started, cpu_before = time.perf_counter(), cpu_seconds(server.pid)
            r = await http.post(
                f"/api/pim/import/{job['job_id']}/confirm/",
                headers=headers,
                json={
                    "mapping": job["suggested_mapping"],
                    "schema": job["suggested_schema"],
                    "dry_run": True,
                },
            )
            dry_run_s, dry_run_cpu_s = (
                time.perf_counter() - started,
                cpu_seconds(server.pid) - cpu_before,
            )
            assert r.status_code == 200, r.text
            dry = r.json()["dry_run"]
            print(
                f"dry run: {dry['rows']:,} rows in {dry_run_s:.1f} s over HTTP, {dry_run_cpu_s:.1f} s of the API "
                f"process's CPU (create {dry['create']:,}, update {dry['update']:,}, reject {dry['reject']:,})",
                flush=True,
            )
            assert (dry["rows"], dry["create"], dry["reject"]) == (args.rows, args.rows, 0), dry

            clients = {"worker": worker.pid, "api": server.pid}
            async with engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                pg_before = await backend_cpu(raw, clients)
                started, cpu_before = time.perf_counter(), cpu_seconds(worker.pid)
                r = await http.post(
                    f"/api/pim/import/{job['job_id']}/confirm/",
                    headers=headers,
                    json={"mapping": job["suggested_mapping"], "schema": job["suggested_schema"]},
                )
            assert r.status_code == 202, r.text
            while True:
                body = (await http.get(f"/api/pim/import/{job['job_id']}/", headers=headers)).json()
                if body["status"] in ("done", "failed"):
                    break
                await asyncio.sleep(0.05)
            import_s, import_cpu_s = (
                time.perf_counter() - started,
                cpu_seconds(worker.pid) - cpu_before,
            )
            async with engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                pg_used = backend_cpu_used(pg_before, await backend_cpu(raw, clients))
        sampler.stop.set()
        assert body["status"] == "done", body
        assert (body["processed_rows"], body["created"], body["failed"]) == (
            args.rows,
            args.rows,
            0,
        ), body
        import_rate = args.rows / import_s
        print(
            f"import: {args.rows:,} rows in {import_s:.1f} s = {import_rate:,.0f} rows/s, {import_cpu_s:.1f} s of the "
            f"worker's CPU (created {body['created']:,}, failed {body['failed']}); "
            f"peak worker RSS {sampler.peak / 2**20:.0f} MB",
            flush=True,
        )
        per_row = {name: round(seconds / args.rows * 1e6, 1) for name, seconds in pg_used.items()}
        print(
            f"CPU per row during the import: worker {import_cpu_s / args.rows * 1e6:.1f} us; "
            f"Postgres backends by application {per_row} us; load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        copy_rate = await copy_baseline(sessionmaker, tenant_id, feed, args.rows)
        print(
            f"COPY baseline into a scratch table shaped like products: {copy_rate:,.0f} rows/s",
            flush=True,
        )
        copy_tenant, _key = await make_tenant(sessionmaker)
        try:
            copy_products_rate = await copy_baseline(
                sessionmaker, copy_tenant, feed, args.rows, into_products=True
            )
        finally:
            async with sessionmaker() as session, session.begin():
                await (await driver_connection(session)).execute(
                    "DELETE FROM tenants WHERE id = $1", copy_tenant
                )
        print(
            f"COPY into products itself (scratch tenant; triggers, FK, current size): {copy_products_rate:,.0f} rows/s",
            flush=True,
        )
        suggest_s = float(timing["suggest"]) / 1000
        ratio = import_rate / copy_rate
        print(f"peak worker RSS: {sampler.peak / 2**20:.0f} MB (idle {idle_rss / 2**20:.0f} MB)")
        result = {
            "rows": args.rows,
            "format": "xlsx" if args.xlsx else "csv",
            "file_mb": round(size / 1e6, 1),
            "upload_and_suggestion_s": round(upload_s, 2),
            "suggestion_s": round(suggest_s, 3),
            "import_rows_per_s": round(import_rate),
            "copy_rows_per_s": round(copy_rate),
            "import_vs_copy": round(ratio, 2),
            "copy_into_products_rows_per_s": round(copy_products_rate),
            "import_vs_copy_into_products": round(import_rate / copy_products_rate, 2),
            "peak_worker_rss_mb": round(sampler.peak / 2**20),
            "dry_run_s": round(dry_run_s, 1),
            "dry_run_cpu_s": round(dry_run_cpu_s, 1),
            "import_worker_cpu_s": round(import_cpu_s, 1),
            "import_worker_us_per_row": round(import_cpu_s / args.rows * 1e6, 1),
            "import_postgres_us_per_row": per_row,
            "load_average_1m": round(os.getloadavg()[0], 2),
            "goals": {
                "suggestion_under_3s": suggest_s < 3,
                "dry_run_at_most_15s": dry_run_s <= 15,
                "import_at_least_40pct_of_copy": ratio >= 0.4,
                "rss_at_most_300mb": sampler.peak <= 300 * 2**20,
            },
        }
        print(orjson.dumps(result).decode())
    finally:
        sampler.stop.set()
        for proc in (server, worker):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        feed.unlink(missing_ok=True)
        uploaded.unlink(missing_ok=True)
        tmp.rmdir()
        if not args.keep:
            async with sessionmaker() as session, session.begin():
                conn = await driver_connection(session)
                # products first: the change log's trigger records their deletion for the tenant
                await conn.execute(f"DELETE FROM products WHERE {tenant_is('products')}", tenant_id)
                await conn.execute("DELETE FROM tenants WHERE id = $1", tenant_id)
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the tenant and its products")
    parser.add_argument(
        "--suggest-only", action="store_true", help="stop after the upload and its suggestion"
    )
    parser.add_argument(
        "--xlsx",
        action="store_true",
        help="upload the rows as an .xlsx workbook (bench/xlsx_feed.py)",
    )
    parser.add_argument(
        "--redis-db",
        type=int,
        default=10,
        help="Redis database of the benchmark's queue (default 10); runs sharing one would take each other's jobs",
    )
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="VACUUM ANALYZE products first (where autovacuum is off, dead rows pile up)",
    )
    asyncio.run(main(parser.parse_args()))
