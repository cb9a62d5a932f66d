"""Catalog benchmark: bulk upsert vs COPY, list/search/facets vs bare SQL, GET-by-id throughput.

    .venv/bin/python bench/catalog.py            # 100,000 products
    .venv/bin/python bench/catalog.py --n 1000000
    .venv/bin/python bench/catalog.py --n 1000000 --typed-only   # the load, then typed indexes only
    nice -n 10 .venv/bin/python bench/catalog.py --n 10000000 --load-only  # load + read model
    .venv/bin/python bench/catalog.py --reuse SLUG   # measure a loaded catalog again
    .venv/bin/python bench/catalog.py --reuse SLUG --reads-only   # the read-model section only

Starts the API (`pim serve --workers N`) on a free port against the databases in
`.env`, creates a fresh tenant, loads N products through POST /api/pim/products/bulk/,
COPYs the same rows into the same table for a scratch tenant (the baseline), then
times each list query through HTTP beside the very SQL the service runs, and GET by
id with wrk (or httpx when wrk is missing). The scratch rows are deleted at the end;
the benchmark tenant is kept (drop it with `DELETE FROM tenants WHERE slug = ...`).

Then the ClickHouse read model (app/mirror, `--no-read-model` skips it): the tenant's model is
built (`rebuild`, timed), and each read it serves is timed through HTTP with the model answering
and with Postgres answering (the model switched off for the tenant by its state row), in
alternating blocks, beside the service's Postgres code over a bare connection where there is
one; plus the read model's own count with `sum(sign)` beside `FINAL` on ClickHouse, and the bulk
upsert with and without the change-log NOTIFY trigger that wakes the worker.
"""

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.catalog.fields import FieldDef
from app.config import get_settings
from app.db import create_engine, pg_dsn, tenant_is
from app.products import service as products
from app.products.typed_indexes import existing_indexes, sync_typed_indexes
from bench.common import (
    create_tenant,
    free_port,
    pct,
    start_server,
    stop_server,
    timed_http,
    wait_up,
)

BRANDS = [f"Brand{i:02d}" for i in range(50)]
COLORS = ["red", "green", "blue", "black", "white", "yellow", "grey", "navy"]
TAGS = [f"tag{i}" for i in range(12)]
WORDS = [
    "steel",
    "chair",
    "lamp",
    "table",
    "oak",
    "linen",
    "cotton",
    "classic",
    "modern",
    "compact",
    "deluxe",
    "outdoor",
    "travel",
    "smart",
    "eco",
]
SCHEMA = [
    {"name": "brand", "type": "string", "filterable": True},
    {"name": "color", "type": "enum", "options": COLORS},
    {"name": "price", "type": "number"},
    {"name": "stock", "type": "integer"},
    {"name": "tags", "type": "array"},
    {"name": "launch", "type": "date"},
    {"name": "description", "type": "text"},
]


def make_product(i: int, rng: random.Random) -> dict:
    name = " ".join(rng.choice(WORDS) for _ in range(3)).title() + f" {i}"
    return {
        "sku": f"SKU-{i:08d}",
        "name": name,
        "brand": BRANDS[int(rng.paretovariate(1.2)) % len(BRANDS)],
        "color": rng.choice(COLORS),
        "price": round(rng.uniform(1, 2000), 2),
        "stock": rng.randint(0, 500),
        "tags": rng.sample(TAGS, 2),
        "launch": f"20{rng.randint(15, 26)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "description": " ".join(rng.choice(WORDS) for _ in range(12)),
    }


# up to this many products the bodies are built before the clock starts (as the figures so far
# were measured); beyond, each is built as it is sent (10M: ~2.5 GB held otherwise), which takes
# client CPU from the same cores during the timing
PREBUILT_MAX = 2_000_000


def bulk_bodies(n: int, batch: int, category_ids: list[int]) -> Iterator[bytes]:
    """The request bodies, one at a time (1M products: ~250 MB); product i is in category
    `category_ids[i % len]` (none without categories). The same arguments give the same bodies."""
    rng = random.Random(42)

    def item(i: int) -> dict:
        product = make_product(i, rng)
        if category_ids:
            product["categories"] = [category_ids[i % len(category_ids)]]
        return product

    for start in range(0, n, batch):
        yield orjson.dumps({"products": [item(i) for i in range(start, min(n, start + batch))]})


async def load_bulk(base: str, headers: dict, bodies: Iterable[bytes], concurrency: int) -> float:
    """Seconds to send every body, `concurrency` requests at a time."""
    source = iter(bodies)

    async def sender(http: httpx.AsyncClient):
        for body in source:
            response = await http.post(
                f"{base}/api/pim/products/bulk/",
                content=body,
                headers={**headers, "content-type": "application/json"},
            )
            response.raise_for_status()
            result = response.json()
            assert result["failed"] == 0, result["errors"][:3]

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=600) as http:
        await asyncio.gather(*(sender(http) for _ in range(concurrency)))
    return time.perf_counter() - started


async def copy_baseline(conn: asyncpg.Connection, tenant_id: int, n: int) -> float:
    """COPY of the same rows into the same table; only the COPY itself is timed."""
    rng = random.Random(42)
    columns = [
        "tenant_id",
        "sku",
        "name",
        "status",
        "categories",
        "variation_of",
        "variation_attributes",
        "data",
    ]
    elapsed = 0.0
    chunk = 50_000
    for start in range(0, n, chunk):
        records = []
        for i in range(start, min(n, start + chunk)):
            p = make_product(i, rng)
            sku, name = p.pop("sku"), p.pop("name")
            records.append((tenant_id, sku, name, "active", [], None, [], orjson.dumps(p).decode()))
        started = time.perf_counter()
        await conn.copy_records_to_table("products", records=records, columns=columns)
        elapsed += time.perf_counter() - started
    return elapsed


class _TenantOnly:
    """Enough of a session for build_filters without a category filter: it only reads the tenant."""

    def __init__(self, tenant_id: int):
        self.info = {"tenant_id": tenant_id}


async def list_sql(conn, tenant_id: int, fields: dict, params: dict, runs: int) -> list[float]:
    """Times (ms) of the very statements the service runs for these list parameters, without HTTP."""
    where = await products.build_filters(
        _TenantOnly(tenant_id),
        fields,
        [(k, v) for k, v in params.items() if k not in products.PAGING_PARAMS | {"q"}],
        q=params.get("q"),
        status=None,
        category=None,
        sku=None,
        sku_in=None,
    )
    after = None
    if "cursor" in params:
        fingerprint = products.filters_fingerprint(
            "list", products.query_filters(list(params.items()))
        )
        after = products.decode_list_cursor(params["cursor"], params.get("ordering"), fingerprint)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        listing = products.Listing(
            where,
            fields,
            ordering=params.get("ordering"),
            page=int(params.get("page", 1)),
            page_size=int(params.get("page_size", 50)),
            after=after,
        )
        await products.list_products(conn, listing)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def facets_sql(conn, tenant_id: int, fields: dict) -> float:
    where = await products.build_filters(
        _TenantOnly(tenant_id),
        fields,
        [],
        q=None,
        status=None,
        category=None,
        sku=None,
        sku_in=None,
    )
    started = time.perf_counter()
    await products.facets(conn, where, fields)
    return (time.perf_counter() - started) * 1000


# Range filters and orderings on a number field, before and after the tenant's typed indexes
# (app/products/typed_indexes.py), each beside the cheapest bare SQL for the same answer (the
# count and the first page, hand-written): (list parameters, bare predicate, bare ORDER BY)
PRICE = "pim_num(p.data -> 'price')"
TYPED_CASES = {
    "price__gte=1800 (~10 %)": ({"price__gte": "1800"}, f"{PRICE} >= 1800", "p.id"),
    "price__gte=1800, -price": (
        {"price__gte": "1800", "ordering": "-price"},
        f"{PRICE} >= 1800",
        f"{PRICE} DESC, p.id DESC",
    ),
    "ordering=price": ({"ordering": "price"}, "true", f"{PRICE} NULLS LAST, p.id"),
    "ordering=-price": ({"ordering": "-price"}, "true", f"{PRICE} DESC NULLS LAST, p.id DESC"),
}


async def bare_sql(conn, tenant_id: int, predicate: str, order: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await conn.fetchval(
            f"SELECT count(*) FROM products p WHERE {tenant_is('p')} AND {predicate}", tenant_id
        )
        await conn.fetch(
            f"SELECT p.id, p.sku, p.name, p.data::text FROM products p WHERE {tenant_is('p')} "
            f"AND {predicate} ORDER BY {order} LIMIT 50",
            tenant_id,
        )
        times.append((time.perf_counter() - started) * 1000)
    return times


async def typed_phase(
    http, base, headers, conn, tenant_id: int, fields: dict, runs: int, phase: str
):
    """Each case through HTTP, the service's statements without HTTP, and the bare SQL, interleaved."""
    for label, (params, predicate, order) in TYPED_CASES.items():
        await timed_http(http, f"{base}/api/pim/products/", params, headers, 2)  # warm up
        http_ms, sql_ms, bare_ms = [], [], []
        for _ in range(runs):
            http_ms += await timed_http(http, f"{base}/api/pim/products/", params, headers, 1)
            sql_ms += await list_sql(conn, tenant_id, fields, params, 1)
            bare_ms += await bare_sql(conn, tenant_id, predicate, order, 1)
        print(
            f"{phase:7} {label:26} {statistics.median(http_ms):9.1f} {pct(http_ms, 0.95):9.1f} "
            f"{statistics.median(sql_ms):9.1f} {statistics.median(bare_ms):9.1f}"
        )


async def typed_index_figures(http, base, headers, conn, settings, tenant_id, fields, runs):
    engine = create_engine(settings, pool_size=2, max_overflow=0)
    try:
        async with engine.connect() as sa_conn:
            raw = (await sa_conn.get_raw_connection()).driver_connection
            for name in await existing_indexes(raw, tenant_id):  # a worker may have been faster
                await raw.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        print(
            f"\n{'typed indexes':34} {'HTTP p50':>9} {'HTTP p95':>9} {'SQL p50':>9} {'bare p50':>9}"
        )
        await typed_phase(http, base, headers, conn, tenant_id, fields, runs, "before")
        started = time.perf_counter()
        built = await sync_typed_indexes(
            engine,
            tenant_id,
            list(fields.values()),
            min_products=settings.typed_index_min_products,
            per_tenant=settings.typed_indexes_per_tenant,
            total=settings.typed_indexes_max,
        )
        build_s = time.perf_counter() - started
        await conn.execute("ANALYZE products")
        await typed_phase(http, base, headers, conn, tenant_id, fields, runs, "after")
        print(
            f"built {len(built['created'])} typed indexes (CREATE INDEX CONCURRENTLY) in "
            f"{build_s:.1f} s"
        )
    finally:
        await engine.dispose()


def wrk_get_by_id(
    base: str, key: str, ids: list[int], seconds: int, connections: int
) -> tuple[float, float] | None:
    if not shutil.which("wrk"):
        return None
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    sample = ",".join(str(i) for i in random.Random(1).sample(ids, min(len(ids), 5000)))
    script.write(
        f"""
ids = {{{sample}}}
counter = 0
request = function()
  counter = counter + 1
  local id = ids[(counter % #ids) + 1]
  return wrk.format("GET", "/api/pim/products/" .. id .. "/", {{["X-API-Key"] = "{key}"}})
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %f\\n", summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.duration, latency:percentile(99)))
end
"""
    )
    script.close()
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script.name, base],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    os.unlink(script.name)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT"):
            _, requests, errors, duration_us, _p99 = line.split()
            if int(errors):
                print(f"  wrk reported {errors} errors")
            return int(requests) / (int(duration_us) / 1e6), float(_p99) / 1000
    print(out.stdout, out.stderr)
    return None


# --- the read model -----------------------------------------------------------------------------


async def _set_model(clickhouse, tenant_id: int, state, *, on: bool) -> None:
    """Let the API's read model answer for the tenant, or not (a state with no products is below
    PIM_MIRROR_MIN_PRODUCTS, 1 here); switching on waits out the API's skip memory."""
    from app.mirror.model import State, write_state
    from app.mirror.reads import SKIP_SECONDS

    await write_state(clickhouse, tenant_id, state if on else State(state.generation, state.seq, 0))
    if on:
        await asyncio.sleep(SKIP_SECONDS + 0.5)


async def _timed(http, method: str, url: str, headers: dict, runs: int, **kwargs) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await http.request(method, url, headers=headers, **kwargs)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


async def model_state(conn, tenant_id: int, clickhouse=None):
    """The tenant's read model brought up to date: caught up when it has one (a --reuse), else
    built (timed); its state."""
    from app.clickhouse import ClickHouse
    from app.mirror.apply import NEEDS_REBUILD, catch_up, rebuild
    from app.mirror.model import read_state

    own = clickhouse is None
    clickhouse = clickhouse or ClickHouse(get_settings())
    try:
        if await catch_up(conn, clickhouse, tenant_id) != NEEDS_REBUILD:
            state = await read_state(clickhouse, tenant_id)
            if state is not None and state.products:
                print(f"\n# read model: {state.products:,} products, caught up")
                return state
        started = time.perf_counter()
        state = await rebuild(conn, clickhouse, tenant_id)
        await catch_up(conn, clickhouse, tenant_id)
        print(
            f"\n# read model: rebuild of {state.products:,} products "
            f"{time.perf_counter() - started:.1f} s"
        )
        return await read_state(clickhouse, tenant_id)
    finally:
        if own:
            await clickhouse.close()


async def read_model_section(
    base: str, headers: dict, conn, tenant_id: int, fields: dict, runs: int, bodies
) -> None:
    from app.clickhouse import ClickHouse

    settings = get_settings()
    clickhouse = ClickHouse(settings)
    try:
        state = await model_state(conn, tenant_id, clickhouse)
        for statement in ("OPTIMIZE TABLE products_mirror", "SELECT 1"):
            await clickhouse.execute(statement)
        # sum(sign) (what the service runs) beside FINAL, on the same rows
        scope = "tenant_id = %(t)s AND generation = %(g)s AND has(kv, 'brand=Brand02')"
        params = {"t": tenant_id, "g": state.generation}
        # and the count table's (what a one-test filter's count reads)
        counted = (
            "SELECT sum(n) FROM mirror_entries WHERE tenant_id = %(t)s AND generation = %(g)s "
            "AND entry = 'brand=Brand02'"
        )
        collapse, final, table = [], [], []
        for _ in range(max(5, runs // 3)):
            for sql, out in (
                (f"SELECT sum(sign) FROM products_mirror WHERE {scope}", collapse),
                (f"SELECT count() FROM products_mirror FINAL WHERE {scope}", final),
                (counted, table),
            ):
                t0 = time.perf_counter()
                await clickhouse.fetch(sql, params)
                out.append((time.perf_counter() - t0) * 1000)
        print(
            f"ClickHouse count brand=Brand02: sum(sign) p50 {statistics.median(collapse):.1f} ms, "
            f"FINAL p50 {statistics.median(final):.1f} ms, "
            f"count table p50 {statistics.median(table):.1f} ms"
        )

        list_url, facets_url = f"{base}/api/pim/products/", f"{base}/api/pim/facets/"
        cases = [
            ("list brand=Brand02", "GET", list_url, {"params": {"brand": "Brand02"}}),
            ("list brand=Brand01", "GET", list_url, {"params": {"brand": "Brand01"}}),
            ("list price__gte=1800", "GET", list_url, {"params": {"price__gte": "1800"}}),
            ("list tags=tag3", "GET", list_url, {"params": {"tags": "tag3"}}),
            ("first page (no filter)", "GET", list_url, {"params": {}}),
            ("facets (no filter)", "GET", facets_url, {"params": {}}),
            ("facets brand=Brand02", "GET", facets_url, {"params": {"brand": "Brand02"}}),
            ("facets price__gte=1800", "GET", facets_url, {"params": {"price__gte": "1800"}}),
            (
                "PIMS brand + price range",
                "GET",
                f"{base}/v/pc/0/",
                {"params": {"filters": "brand,price", "brand": "Brand02", "price": "100;;1000"}},
            ),
            (
                "segment preview price>=1800",
                "POST",
                f"{base}/api/product-segments/preview/",
                {"json": {"field": "price", "op": "gte", "value": 1800}},
            ),
        ]
        results: dict[str, dict[str, list[float]]] = {c[0]: {"on": [], "off": []} for c in cases}
        block = max(3, runs // 4)
        async with httpx.AsyncClient(timeout=120) as http:
            for _round in range(2):
                for on in (True, False):
                    await _set_model(clickhouse, tenant_id, state, on=on)
                    for label, method, url, kwargs in cases:
                        await _timed(http, method, url, headers, 1, **kwargs)  # warm up
                        runs_here = block if "preview" not in label else max(3, block // 2)
                        results[label]["on" if on else "off"] += await _timed(
                            http, method, url, headers, runs_here, **kwargs
                        )
            await _set_model(clickhouse, tenant_id, state, on=True)
            counts = {}
            for label, method, url, kwargs in cases:
                body = (await http.request(method, url, headers=headers, **kwargs)).json()
                counts[label] = body.get("count", body.get("total", body.get("sku_count")))
        bare: dict[str, float] = {}
        for label, params in (
            ("list brand=Brand02", {"brand": "Brand02"}),
            ("list brand=Brand01", {"brand": "Brand01"}),
            ("list price__gte=1800", {"price__gte": "1800"}),
            ("list tags=tag3", {"tags": "tag3"}),
            ("first page (no filter)", {}),
        ):
            bare[label] = statistics.median(
                await list_sql(conn, tenant_id, fields, params, max(3, runs // 4))
            )
        for label, params in (
            ("facets (no filter)", []),
            ("facets brand=Brand02", [("brand", "Brand02")]),
            ("facets price__gte=1800", [("price__gte", "1800")]),
        ):
            where = await products.build_filters(
                _TenantOnly(tenant_id),
                fields,
                params,
                q=None,
                status=None,
                category=None,
                sku=None,
                sku_in=None,
            )
            times = []
            for _ in range(max(3, runs // 6)):
                t0 = time.perf_counter()
                await products.facets(conn, where, fields)
                times.append((time.perf_counter() - t0) * 1000)
            bare[label] = statistics.median(times)
        print(
            f"\n{'read (HTTP p50, ms)':30} {'model':>8} {'Postgres':>9} {'bare PG SQL':>12}  count"
        )
        for label, _m, _u, _k in cases:
            on, off = results[label]["on"], results[label]["off"]
            shown = f"{bare[label]:12.1f}" if label in bare else f"{'-':>12}"
            print(
                f"{label:30} {statistics.median(on):8.1f} {statistics.median(off):9.1f} "
                f"{shown}  {counts[label]}"
            )

        # the NOTIFY trigger on the change log (the worker's wake-up) and bulk throughput
        if bodies:
            rates: dict[str, list[float]] = {"with NOTIFY": [], "without NOTIFY": []}
            for i, body in enumerate(bodies):
                with_notify = i % 2 == 0
                if not with_notify:
                    await conn.execute(
                        "ALTER TABLE product_changes DISABLE TRIGGER product_changes_notify"
                    )
                try:
                    seconds = await load_bulk(base, headers, [body], 1)
                finally:
                    await conn.execute(
                        "ALTER TABLE product_changes ENABLE TRIGGER product_changes_notify"
                    )
                rows = len(orjson.loads(body)["products"])
                rates["with NOTIFY" if with_notify else "without NOTIFY"].append(rows / seconds)
            print(
                "bulk upsert, new rows, alternating batches: "
                + ", ".join(
                    f"{k} {statistics.median(v):,.0f} rows/s" for k, v in rates.items() if v
                )
            )
    finally:
        await clickhouse.close()


def _extra(args) -> list[bytes]:
    """New products for the NOTIFY comparison, after the catalog's SKUs."""
    rng = random.Random(7)
    return [
        orjson.dumps({"products": [make_product(i, rng) for i in range(start, start + args.batch)]})
        for start in range(args.n, args.n + 40_000, args.batch)
    ]


async def catalog_shape(base: str, headers: dict, categories: int) -> list[int]:
    """The benchmark's schema and `categories` categories, through the API; their ids."""
    async with httpx.AsyncClient(timeout=120) as http:
        (
            await http.put(f"{base}/api/pim/schema/", json={"fields": SCHEMA}, headers=headers)
        ).raise_for_status()
        category_ids = []
        for c in range(categories):
            made = await http.post(
                f"{base}/api/pim/categories/", json={"name": f"Category {c}"}, headers=headers
            )
            category_ids.append(made.raise_for_status().json()["id"])
    return category_ids


async def load(args, base: str, headers: dict, conn, slug: str, tenant: dict) -> None:
    """A fresh catalog: schema, categories, N products by bulk upsert (timed beside COPY), then
    vacuumed and analyzed as autovacuum would."""
    scratch_id = None
    try:
        category_ids = await catalog_shape(base, headers, args.categories)
        print(
            f"# catalog benchmark: {args.n:,} products, tenant {slug} (id {tenant['tenant_id']}), "
            f"{args.workers} uvicorn workers, bulk batches of {args.batch} x {args.concurrency} concurrent, "
            f"{args.categories} categories"
        )

        bodies: Iterable[bytes] = bulk_bodies(args.n, args.batch, category_ids)
        if args.n <= PREBUILT_MAX:
            bodies = list(bodies)  # built before the clock starts
        bulk_s = await load_bulk(base, headers, bodies, args.concurrency)
        bulk_rate = args.n / bulk_s
        scratch_id = await conn.fetchval(
            "INSERT INTO tenants (slug) VALUES ($1) RETURNING id", slug + "-copy"
        )
        copy_s = await copy_baseline(conn, scratch_id, args.n)
        copy_rate = args.n / copy_s
        print(f"bulk upsert (new rows)   {bulk_rate:>10,.0f} rows/s  ({bulk_s:.1f} s)")
        print(
            f"COPY baseline            {copy_rate:>10,.0f} rows/s  ({copy_s:.1f} s)  -> bulk/COPY = {bulk_rate / copy_rate:.2f}"
        )
        await conn.execute(f"DELETE FROM products WHERE {tenant_is('products')}", scratch_id)
        await conn.execute("DELETE FROM tenants WHERE id = $1", scratch_id)
        scratch_id = None

        # as autovacuum would after a load (it is off on some CI machines): visibility map and statistics
        await conn.execute("VACUUM ANALYZE products")
        # the first bodies again (the generator is deterministic)
        unchanged = list(
            islice(bulk_bodies(args.n, args.batch, category_ids), max(1, 50_000 // args.batch))
        )
        update_s = await load_bulk(base, headers, unchanged, args.concurrency)
        unchanged_rows = sum(len(orjson.loads(b)["products"]) for b in unchanged)
        print(f"bulk upsert (unchanged)  {unchanged_rows / update_s:>10,.0f} rows/s")
        # the upsert locked those rows (FOR UPDATE marks their pages not all-visible): vacuum again,
        # as autovacuum would, so that counts are index-only scans as in a settled catalog
        await conn.execute("VACUUM products")
    finally:
        if scratch_id is not None:
            await conn.execute(f"DELETE FROM products WHERE {tenant_is('products')}", scratch_id)
            await conn.execute("DELETE FROM tenants WHERE id = $1", scratch_id)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seconds", type=int, default=10, help="GET-by-id load duration")
    parser.add_argument(
        "--reuse", metavar="SLUG", help="measure the catalog of an earlier run's tenant again"
    )
    parser.add_argument(
        "--no-read-model", action="store_true", help="skip the ClickHouse read-model section"
    )
    parser.add_argument(
        "--typed-only",
        action="store_true",
        help="after the load (or --reuse), only the typed-index figures",
    )
    parser.add_argument(
        "--reads-only",
        action="store_true",
        help="after the load (or --reuse), only the read-model section",
    )
    parser.add_argument(
        "--load-only",
        action="store_true",
        help="load the catalog and build its read model, then stop (measure later with --reuse)",
    )
    parser.add_argument(
        "--categories",
        type=int,
        default=20,
        help="categories the products are spread over (0: none)",
    )
    args = parser.parse_args()

    settings = get_settings()
    # the API's read model answers for the benchmark tenant at any --n (1, not 0: the section
    # switches the model off by a state of 0 products)
    os.environ.setdefault("PIM_MIRROR_MIN_PRODUCTS", "1")
    # Postgres's answers at 10M take longer than a request may run by default (15 s a statement,
    # 2 s a heavy read such as a preview): the server the benchmark starts lets them finish
    os.environ.setdefault("PIM_STATEMENT_TIMEOUT_MS", "600000")
    os.environ.setdefault("PIM_HEAVY_READ_TIMEOUT_MS", "600000")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    if args.reuse:  # the catalog a previous run loaded: measure again without loading it
        slug = args.reuse
        key = subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli",
                "apikey",
                "create",
                "--tenant",
                slug,
                "--role",
                "admin",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        tenant = {
            "tenant_id": await conn.fetchval("SELECT id FROM tenants WHERE slug = $1", slug),
            "api_key": orjson.loads(key.stdout)["api_key"],
        }
        args.n = await conn.fetchval(
            f"SELECT count(*) FROM products WHERE {tenant_is('products')}", tenant["tenant_id"]
        )
    else:
        slug = f"bench-{int(time.time())}"
        tenant = create_tenant(slug)
    headers = {"X-API-Key": tenant["api_key"]}
    server = start_server(port, args.workers)
    try:
        await wait_up(base)
        if args.reuse:
            print(f"# catalog benchmark: {args.n:,} products of tenant {slug} (reused)")
        else:
            await load(args, base, headers, conn, slug, tenant)
        fields = {f["name"]: FieldDef.model_validate(f) for f in SCHEMA}
        if args.load_only:
            state = await model_state(conn, tenant["tenant_id"])
            print(f"read model of {state.products:,} products; measure with --reuse {slug}")
            return
        if args.typed_only:
            await conn.execute("VACUUM ANALYZE products")
            async with httpx.AsyncClient(timeout=120) as http:
                await typed_index_figures(
                    http, base, headers, conn, settings, tenant["tenant_id"], fields, args.runs
                )
            return
        if args.reads_only:
            await read_model_section(
                base, headers, conn, tenant["tenant_id"], fields, args.runs, _extra(args)
            )
            return
        last_page = max(1, min(100, args.n // 50))
        cases = {
            "exact brand=Brand07": {"brand": "Brand07"},
            "range price 100..120": {"price__gte": "100", "price__lte": "120"},
            "q='deluxe oak 4' (3+ chars)": {"q": "deluxe oak 4"},
            f"page {last_page} (no filter)": {"page": str(last_page)},
            "exact + ordering=-price": {"color": "navy", "ordering": "-price"},
        }
        # a cursor page near the end of the catalog (the millionth row at --n 1000000), as a
        # client that walked there holds it: by id, and by updated_at (an incremental reader)
        no_filters = products.filters_fingerprint("list", [])
        for ordering in (None, "updated_at"):
            row = await conn.fetchrow(
                f"SELECT id, updated_at FROM products WHERE {tenant_is('products')} "
                f"ORDER BY {ordering or 'id'}, id OFFSET $2 LIMIT 1",
                tenant["tenant_id"],
                max(0, args.n - 100),
            )
            keys = (
                [str(row["id"])]
                if ordering is None
                else [row["updated_at"].isoformat(), str(row["id"])]
            )
            cursor = products.encode_list_cursor(ordering, no_filters, keys)
            label = f"cursor at {args.n - 100:,}" + (f" {ordering}" if ordering else "")
            cases[label] = {"cursor": cursor} | ({"ordering": ordering} if ordering else {})
        print(
            f"\n{'list query':32} {'HTTP p50':>9} {'HTTP p95':>9} {'SQL p50':>9} {'SQL p95':>9} {'ratio p50':>9}  count"
        )
        async with httpx.AsyncClient(timeout=120) as http:
            for label, params in cases.items():
                await timed_http(http, f"{base}/api/pim/products/", params, headers, 3)  # warm up
                http_ms = await timed_http(
                    http, f"{base}/api/pim/products/", params, headers, args.runs
                )
                sql_ms = await list_sql(conn, tenant["tenant_id"], fields, params, args.runs)
                count = (
                    await http.get(f"{base}/api/pim/products/", params=params, headers=headers)
                ).json()["count"]
                print(
                    f"{label:32} {statistics.median(http_ms):9.1f} {pct(http_ms, 0.95):9.1f} "
                    f"{statistics.median(sql_ms):9.1f} {pct(sql_ms, 0.95):9.1f} "
                    f"{statistics.median(http_ms) / statistics.median(sql_ms):9.2f}  {count}"
                )

            facet_http = await timed_http(
                http, f"{base}/api/pim/facets/", {}, headers, max(5, args.runs // 5)
            )
            facet_sql = [
                await facets_sql(conn, tenant["tenant_id"], fields)
                for _ in range(max(5, args.runs // 5))
            ]
            print(
                f"{'facets (all products)':32} {statistics.median(facet_http):9.1f} {pct(facet_http, 0.95):9.1f} "
                f"{statistics.median(facet_sql):9.1f} {pct(facet_sql, 0.95):9.1f} "
                f"{statistics.median(facet_http) / statistics.median(facet_sql):9.2f}"
            )
            facet_http = await timed_http(
                http,
                f"{base}/api/pim/facets/",
                {"brand": "Brand07"},
                headers,
                max(5, args.runs // 5),
            )
            print(
                f"{'facets brand=Brand07':32} {statistics.median(facet_http):9.1f} {pct(facet_http, 0.95):9.1f}"
            )
            await typed_index_figures(
                http, base, headers, conn, settings, tenant["tenant_id"], fields, args.runs
            )

        if not args.no_read_model:
            await read_model_section(
                base, headers, conn, tenant["tenant_id"], fields, args.runs, _extra(args)
            )

        ids = [
            r[0]
            for r in await conn.fetch(
                f"SELECT id FROM products WHERE {tenant_is('products')} ORDER BY random() LIMIT 5000",
                tenant["tenant_id"],
            )
        ]
        result = wrk_get_by_id(base, tenant["api_key"], ids, args.seconds, 32)
        if result:
            print(
                f"\nGET /api/pim/products/{{id}}/  {result[0]:,.0f} requests/s (wrk, 32 connections, "
                f"{args.seconds} s), p99 {result[1]:.1f} ms"
            )
    finally:
        await conn.close()
        stop_server(server)


if __name__ == "__main__":
    asyncio.run(main())
