"""Change log benchmark (issue 15): the log's cost on bulk upserts, and read latencies.

    .venv/bin/python bench/changes.py                         # 50,000 products, 1M entries
    .venv/bin/python bench/changes.py --n 1000000 --entries 3000000

1. Bulk upsert rows/s with and without the log, in one run: the bulk endpoint's code
   (`app.products.upsert.upsert_products`, batches of 5,000, one transaction each) writes N new
   products, then updates all of them (a new price and stock), then re-sends the update
   unchanged, for two tenants of the same shape; the log's triggers are disabled (ALTER TABLE ...
   DISABLE TRIGGER) for the batches of the second tenant. Batches alternate between the two
   modes so that the load of a shared machine falls on both alike. The re-send must add no entry.
2. `GET /api/pim/changes/` pages of 1,000 (the service's query and serialisation, no HTTP) at
   random `after` positions of a tenant holding ENTRIES entries, generated with SQL.
3. A product's history page (100 entries, newest first) for random products of that tenant, and
   for one product holding one entry in 1,000 (product id 0).

Measured 2026-12-07 on the shared 2-core machine (load average 5-7, other helpers' tests running),
`--n 50000 --entries 3000000 --runs 100`: bulk create 4,350 rows/s with the log vs 5,851 without
(0.74 of the totals, median of batch pairs 0.80); update 2,986 vs 3,508 (0.85, pairs 0.90);
unchanged re-send 8,746 vs 9,841 (0.89, pairs 1.00) and no entry written; changes page of 1,000
p50 16.5 ms (p95 34.8); history page p50 0.3 ms (3 entries) and 0.8 ms (100 of a product's 3,000).
Before the update diff compared columns (two states diffed key by key), updates ran at 0.36-0.66.

After h4_perf_1 (creates logged without their state built and without the FK check), `--n 50000`,
three runs at load average 10, 12 and 19: create ratio 0.80 / 0.65 / 0.71 of the totals (pairs
0.79 / 0.80 / 0.73), the backend's CPU 44 vs 39, 55 vs 35, 54 vs 45 us/row; the same code before
h4_perf_1 at load ~1 gave 0.72 (pairs 0.73). With 3M entries at load 12: changes page of 1,000
p50 46.9 ms (p95 143), history pages p50 1.8 ms (3 entries) and 4.6 ms (100 entries).

Prints p50/p95 in ms and rows/s. Run it on the development database (`.env`): it creates two
tenants per run and leaves them (with their products and entries) for inspection.
"""

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import time
from pathlib import Path

import asyncpg
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.catalog.fields import FieldDef
from app.changes import service as changes
from app.changes.context import CONTEXT_KEY
from app.config import get_settings
from app.db import (
    TenantReader,
    create_engine,
    create_read_pool,
    create_sessionmaker,
    driver_connection,
    pg_dsn,
    tenant_is,
)
from app.products.service import dumps
from app.products.upsert import upsert_products
from bench.catalog import SCHEMA, make_product
from bench.common import cpu_seconds, create_tenant, pct

BATCH = 5_000
TRIGGERS = ("products_log_insert", "products_log_update", "products_log_delete")


async def set_log(conn: asyncpg.Connection, enabled: bool) -> None:
    verb = "ENABLE" if enabled else "DISABLE"
    for trigger in TRIGGERS:
        await conn.execute(f"ALTER TABLE products {verb} TRIGGER {trigger}")


async def bulk_phase(
    sessionmaker, admin, tenants, bodies, fields
) -> tuple[dict[bool, float], list[float], dict[bool, float]]:
    """Seconds spent writing per mode (True: with the log), the ratio of each pair of batches
    written one after the other (without / with: the log's rows/s relative to none), and the
    Postgres backend's CPU seconds per mode; batches alternate modes."""
    spent = {True: 0.0, False: 0.0}
    cpu = {True: 0.0, False: 0.0}
    ratios = []
    for start in range(0, len(bodies), BATCH):
        items = bodies[start : start + BATCH]
        pair = {}
        for with_log in (True, False) if (start // BATCH) % 2 == 0 else (False, True):
            await set_log(admin, with_log)
            started = time.perf_counter()
            async with sessionmaker() as session, session.begin():
                backend = (await driver_connection(session)).get_server_pid()
                cpu_before = cpu_seconds(backend)
                session.info["tenant_id"] = tenants[with_log]
                session.info[CONTEXT_KEY] = {
                    "actor": {"type": "token", "id": "bench", "name": None},
                    "request_id": f"bench-{start}",
                    "import_job_id": None,
                }
                result, _ = await upsert_products(
                    session, items=items, fields=fields, max_data_bytes=1 << 20
                )
                cpu[with_log] += cpu_seconds(backend) - cpu_before
            pair[with_log] = time.perf_counter() - started
            spent[with_log] += pair[with_log]
            assert not result.errors, result.errors[:3]
        ratios.append(pair[False] / pair[True])
    await set_log(admin, True)
    return spent, ratios, cpu


# the first third are creates, stored as the log's trigger stores them (migration h4_perf_1: the
# data in new_values, the built-ins in created_*), the rest updates of two data keys
GENERATE = """
INSERT INTO product_changes (tenant_id, seq, product_id, sku, op, old_values, new_values, actor,
                             request_id, at, created_name, created_status, created_categories,
                             created_variation_attributes)
SELECT $1, g, CASE WHEN g % 1000 = 0 THEN 0 ELSE g % $3 + 1 END, 'SKU-' || (g % $3),
       CASE WHEN g <= $3 THEN 'created' ELSE 'updated' END,
       CASE WHEN g <= $3 THEN NULL ELSE jsonb_build_object('price', g % 997, 'stock', g % 13) END,
       CASE WHEN g <= $3
            THEN jsonb_build_object('price', g % 991, 'stock', g % 17, 'brand', 'Brand' || (g % 50),
                                    'color', 'red', 'tags', jsonb_build_array('tag1', 'tag7'),
                                    'launch', '2024-05-17',
                                    'description', 'steel chair lamp table oak linen cotton classic')
            ELSE jsonb_build_object('price', g % 991, 'stock', g % 17) END,
       '{"type": "token", "id": "bench", "name": null}', 'bench-' || (g / 5000),
       now() - make_interval(secs => $2 - g),
       CASE WHEN g <= $3 THEN 'Steel Chair Lamp ' || g END,
       CASE WHEN g <= $3 THEN 'active' END,
       CASE WHEN g <= $3 THEN ARRAY[g % 40]::bigint[] END,
       CASE WHEN g <= $3 THEN '{}'::text[] END
FROM generate_series(1, $2) g
"""


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000, help="products per mode")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    settings = get_settings()
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    admin = await asyncpg.connect(pg_dsn(settings.database_url))
    tag = secrets.token_hex(3)
    tenants = {
        True: create_tenant(f"bench-log-{tag}")["tenant_id"],
        False: create_tenant(f"bench-nolog-{tag}")["tenant_id"],
    }
    fields = {d.name: d for d in (FieldDef.model_validate(f) for f in SCHEMA)}
    for tenant_id in tenants.values():
        await admin.execute(
            "INSERT INTO product_schemas (tenant_id, fields) VALUES ($1, $2::jsonb)",
            tenant_id,
            orjson.dumps(SCHEMA).decode(),
        )
    rng = random.Random(7)
    created = [make_product(i, rng) for i in range(args.n)]
    updated = [{**p, "price": p["price"] + 1, "stock": p["stock"] + 1} for p in created]

    print(f"products per mode: {args.n:,}; batches of {BATCH:,}, modes alternating")
    for phase, bodies in (("create", created), ("update", updated), ("unchanged", updated)):
        before = await admin.fetchval(
            f"SELECT count(*) FROM product_changes WHERE {tenant_is('product_changes')}",
            tenants[True],
        )
        spent, ratios, cpu = await bulk_phase(sessionmaker, admin, tenants, bodies, fields)
        entries = (
            await admin.fetchval(
                f"SELECT count(*) FROM product_changes WHERE {tenant_is('product_changes')}",
                tenants[True],
            )
            - before
        )
        with_log, without = args.n / spent[True], args.n / spent[False]
        print(
            f"bulk {phase:9s}: with log {with_log:8,.0f} rows/s, without {without:8,.0f} rows/s, "
            f"ratio {with_log / without:.2f} (median of batch pairs "
            f"{statistics.median(ratios):.2f}); entries written {entries:,}; Postgres backend CPU "
            f"{cpu[True] / args.n * 1e6:.0f} vs {cpu[False] / args.n * 1e6:.0f} us/row"
        )

    # reads: a tenant with ENTRIES entries, generated with SQL
    reader_tenant = create_tenant(f"bench-read-{tag}")["tenant_id"]
    started = time.perf_counter()
    await admin.execute(GENERATE, reader_tenant, args.entries, max(args.entries // 3, 1))
    await admin.execute(
        "INSERT INTO product_change_seqs (tenant_id, last_seq) VALUES ($1, $2)",
        reader_tenant,
        args.entries,
    )
    await admin.execute("VACUUM ANALYZE product_changes")
    print(f"generated {args.entries:,} entries in {time.perf_counter() - started:.0f} s")
    pool = await create_read_pool(settings)
    reader = TenantReader(reader_tenant, pool)

    async def timed(fn) -> list[float]:
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            await fn()
            times.append((time.perf_counter() - started) * 1000)
        return times

    async def changes_page() -> None:
        after = random.randrange(0, args.entries - 1000)
        body = await changes.read_changes(reader, after=after, limit=1000)
        assert len(body["results"]) == 1000
        dumps(body)

    async def history_page(product_id: int | None = None) -> None:
        pid = product_id if product_id is not None else random.randrange(1, args.entries // 3)
        body = await changes.product_history(reader, pid, cursor=None, limit=100)
        assert body["results"]
        dumps(body)

    for label, fn in (
        ("changes page of 1,000", changes_page),
        ("history page (3 entries)", history_page),
        ("history page of 100 (hot product)", lambda: history_page(0)),
    ):
        times = await timed(fn)
        print(
            f"{label:34s}: p50 {statistics.median(times):6.1f} ms, p95 {pct(times, 0.95):6.1f} ms "
            f"({args.runs} runs)"
        )
    await pool.close()
    await admin.close()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
