"""PIMS route benchmark: GET /v/pc/{categoryId}/ through HTTP beside the very SQL it runs.

    .venv/bin/python bench/pims.py              # 100,000 products, a third of them parents with 2 variations
    .venv/bin/python bench/pims.py --n 300000

Starts the API (`pim serve --workers N`) on a free port against the databases in `.env`,
creates a fresh tenant with a two-level category tree, loads N products through the bulk
endpoint (every third product a parent whose two variations follow it), then times each
case through HTTP and, as the baseline, the same three statements (context, count, page)
straight through asyncpg. It also counts the statements per request in-process for page
sizes 1, 50 and 200, and runs wrk on one case when wrk is installed. The tenant is kept
(drop it with `DELETE FROM tenants WHERE slug = ...`).
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
from pathlib import Path

import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.catalog.fields import FieldDef
from app.config import get_settings
from app.pims import service
from app.pims.filters import parse_filters
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
COLORS = ["red", "green", "blue", "black", "white"]
SIZES = ["S", "M", "L", "XL"]
TAGS = [f"tag{i}" for i in range(12)]
SCHEMA = [
    {"name": "brand", "type": "string"},
    {"name": "color", "type": "enum", "options": COLORS},
    {"name": "size", "type": "enum", "options": SIZES},
    {"name": "price", "type": "number", "labels": {"de-de": "Preis"}},
    {"name": "stock", "type": "integer"},
    {"name": "tags", "type": "array"},
    {"name": "thumbnail", "type": "url"},
]


def make_products(n: int, categories: list[int], rng: random.Random) -> list[dict]:
    products = []
    for i in range(n):
        parent = i - i % 3
        item = {
            "sku": f"PC-{i:08d}",
            "name": f"Product {i}",
            "brand": BRANDS[int(rng.paretovariate(1.2)) % len(BRANDS)],
            "color": rng.choice(COLORS),
            "size": SIZES[i % 3],
            "price": round(rng.uniform(1, 2000), 2),
            "stock": rng.randint(0, 500),
            "tags": rng.sample(TAGS, 2),
            "thumbnail": f"https://img.example.com/{i}.jpg",
            "categories": [rng.choice(categories)],
        }
        if i == parent:
            item["variation_attributes"] = ["size", "color"]
        else:
            item["variation_of"] = f"PC-{parent:08d}"
        products.append(item)
    return products


async def timed_sql(
    conn: asyncpg.Connection, tenant_id: int, category_id: int, params: dict, runs: int
) -> list[float]:
    """The route's three statements, built by the service's own functions."""
    fields = {f["name"]: FieldDef.model_validate(f) for f in SCHEMA}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        row = await conn.fetchrow(service.CONTEXT_SQL, tenant_id, None, category_id)
        ctx = service.Context(
            fields=fields,
            view_fields=list(fields.values()),
            locale="en-us",
            category_ids=list(row["category_ids"]) if category_id else None,
        )
        specs = parse_filters(params.get("filters"), list(params.items()), fields)
        queries = service.build_queries(
            ctx,
            tenant_id=tenant_id,
            specs=specs,
            sort=params.get("sort"),
            page_size=int(params.get("pageSize", 50)),
            page_num=int(params.get("pageNum", 1)),
        )
        total = await conn.fetchval(queries.count_sql, *queries.count_params)
        page = queries.page(total)
        if page:
            await conn.fetch(page[0], *page[1])
        times.append((time.perf_counter() - started) * 1000)
    return times


def wrk(
    base: str, path: str, key: str, seconds: int, connections: int
) -> tuple[float, float] | None:
    if not shutil.which("wrk"):
        return None
    script = f'wrk.headers["X-API-Key"] = "{key}"\n'
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                f.name,
                base + path,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
        ).stdout
    finally:
        os.unlink(f.name)
    rps = p99 = None
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(parts[1])
        elif parts[:1] == ["99%"]:
            value = parts[1]
            p99 = (
                float(value[:-2])
                if value.endswith("ms")
                else float(value[:-1]) * 1000
                if value.endswith("s")
                else float(value[:-2]) / 1000
            )
    return (rps, p99) if rps is not None else None


async def statements_per_request(tenant_id: int, api_key: str, url: str) -> dict[int, int]:
    """Statements sent to Postgres per request (in-process app, asyncpg query logger), by page size."""
    from sqlalchemy import event

    from app.main import create_app

    app = create_app(get_settings())
    seen: list[str] = []
    async with app.router.lifespan_context(app):
        pool = app.state.engine.sync_engine.pool

        def on_query(record):
            seen.append(record.query)

        def on_checkout(dbapi_connection, _record, _proxy):
            dbapi_connection.driver_connection.add_query_logger(
                on_query
            )  # a set: added once per connection

        event.listen(pool, "checkout", on_checkout)
        event.listen(
            app.state.engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(a[2])
        )
        counts = {}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            (
                await http.get(url, headers={"X-API-Key": api_key})
            ).raise_for_status()  # a fresh connection's type introspection
            for page_size in (1, 50, 200):
                seen.clear()
                (
                    await http.get(
                        url, params={"pageSize": page_size}, headers={"X-API-Key": api_key}
                    )
                ).raise_for_status()
                await asyncio.sleep(0.01)
                counts[page_size] = len(
                    [q for q in seen if q.strip().upper() not in ("BEGIN", "COMMIT", "ROLLBACK")]
                )
    return counts


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration")
    args = parser.parse_args()

    settings = get_settings()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    slug = f"bench-pims-{int(time.time())}"
    tenant = create_tenant(slug)
    tenant_id, key = tenant["tenant_id"], tenant["api_key"]
    headers = {"X-API-Key": key}
    server = start_server(port, args.workers)
    conn = await asyncpg.connect(
        settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
    )
    try:
        await wait_up(base)
        async with httpx.AsyncClient(timeout=600, base_url=base, headers=headers) as http:
            (await http.put("/api/pim/schema/", json={"fields": SCHEMA})).raise_for_status()
            roots, leaves = [], []
            for r in range(5):
                root = (await http.post("/api/pim/categories/", json={"name": f"Root {r}"})).json()[
                    "id"
                ]
                roots.append(root)
                for c in range(4):
                    leaves.append(
                        (
                            await http.post(
                                "/api/pim/categories/",
                                json={"name": f"Leaf {c}", "parent_id": root},
                            )
                        ).json()["id"]
                    )
            await http.post(
                "/api/pim/views/", json={"name": "lean", "attributes": ["brand", "price"]}
            )
            products = make_products(args.n, leaves, random.Random(42))
            started = time.perf_counter()
            for start in range(0, args.n, 5000):
                response = await http.post(
                    "/api/pim/products/bulk/",
                    content=orjson.dumps({"products": products[start : start + 5000]}),
                    headers={"content-type": "application/json"},
                )
                response.raise_for_status()
                assert response.json()["failed"] == 0, response.json()["errors"][:3]
            load_s = time.perf_counter() - started
        await conn.execute("ANALYZE products")
        print(
            f"# PIMS benchmark: {args.n:,} products ({args.n // 3:,} families), tenant {slug} (id {tenant_id}), "
            f"{args.workers} uvicorn workers; loaded in {load_s:.1f} s"
        )

        sample_sku = "PC-00004200" if args.n > 4200 else "PC-00000000"
        cases = [
            ("all, pageSize 50", 0, {}),
            ("all, pageSize 200", 0, {"pageSize": "200"}),
            ("all, pageSize 1", 0, {"pageSize": "1"}),
            ("category subtree (20%), 50", roots[0], {}),
            (
                "brand any-of + price range, sort",
                0,
                {
                    "filters": "brand,price",
                    "brand": "Brand07|Brand08",
                    "price": "100;;500",
                    "sort": "price|desc",
                },
            ),
            ("one sku", 0, {"filters": "sku", "sku": sample_sku}),
            ("pageNum 100", 0, {"pageNum": "100"}),
        ]
        print(
            f"\n{'case':36} {'HTTP p50':>9} {'HTTP p95':>9} {'SQL p50':>9} {'SQL p95':>9} {'HTTP-SQL':>9}  sku_count"
        )
        async with httpx.AsyncClient(timeout=120) as http:
            for label, category, params in cases:
                url = f"{base}/api/en-us/v/pc/{category}/"
                await timed_http(http, url, params, headers, 3)  # warm up
                http_ms = await timed_http(http, url, params, headers, args.runs)
                sql_ms = await timed_sql(conn, tenant_id, category, params, args.runs)
                count = (await http.get(url, params=params, headers=headers)).json()["sku_count"]
                print(
                    f"{label:36} {statistics.median(http_ms):9.1f} {pct(http_ms, 0.95):9.1f} "
                    f"{statistics.median(sql_ms):9.1f} {pct(sql_ms, 0.95):9.1f} "
                    f"{statistics.median(http_ms) - statistics.median(sql_ms):9.1f}  {count}"
                )
            list_ms = await timed_http(
                http, f"{base}/api/pim/products/", {"page_size": "50"}, headers, args.runs
            )
            print(
                f"{'(product list, page_size 50)':36} {statistics.median(list_ms):9.1f} {pct(list_ms, 0.95):9.1f}"
            )

        counts = await statements_per_request(tenant_id, key, "/api/en-us/v/pc/0/")
        print(f"\nstatements per request by pageSize (auth + context + count + page): {counts}")
        path = f"/api/en-us/v/pc/{roots[0]}/?filters=brand&brand=Brand01|Brand02&pageSize=50"
        result = wrk(base, path, key, args.seconds, 16)
        if result:
            print(
                f"wrk {path}: {result[0]:,.0f} requests/s (16 connections, {args.seconds} s), p99 {result[1]:.1f} ms"
            )
    finally:
        await conn.close()
        stop_server(server)


if __name__ == "__main__":
    asyncio.run(main())
