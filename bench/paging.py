"""Product list paging at depth: a keyset cursor page beside the offset page at the same depth.

    .venv/bin/python bench/paging.py                 # 1,000,000 products
    .venv/bin/python bench/paging.py --n 200000 --runs 20

COPYs N products (bench/catalog.py's rows) into a fresh tenant of the `.env` database, vacuums
and analyzes, then times the very code the list endpoint runs (`list_products`, without
HTTP) at several depths: the page by number (`page=`, which counts and skips) and the page
after a cursor at the same position (`cursor=`, a keyset read). The tenant is deleted at the end.
"""

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.catalog.fields import FieldDef
from app.config import get_settings
from app.db import pg_dsn, tenant_is
from app.products import service as products
from app.products.queries import key_text, ordering_terms
from app.query.compiling import SqlWhere
from bench.catalog import SCHEMA, copy_baseline
from bench.common import pct

PAGE = 50


class _TenantOnly:
    def __init__(self, tenant_id: int):
        self.info = {"tenant_id": tenant_id}


async def _where(tenant_id: int, fields: dict, params: dict) -> SqlWhere:
    return await products.build_filters(
        _TenantOnly(tenant_id),
        fields,
        list(params.items()),
        q=None,
        status=None,
        category=None,
        sku=None,
        sku_in=None,
    )


async def _timed(runs: int, call) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--offset-runs", type=int, default=5, help="runs of the offset page (seconds each at depth)"
    )
    parser.add_argument("--only", default="", help="only the cases whose label contains this")
    args = parser.parse_args()

    conn = await asyncpg.connect(pg_dsn(get_settings().database_url))
    tenant_id = await conn.fetchval(
        "INSERT INTO tenants (slug) VALUES ($1) RETURNING id", f"bench-paging-{time.time_ns()}"
    )
    try:
        load_s = await copy_baseline(conn, tenant_id, args.n)
        await conn.execute("VACUUM ANALYZE products")
        print(
            f"{args.n:,} products COPYed in {load_s:.1f} s; page size {PAGE}; "
            f"{args.offset_runs} runs of each offset page, {args.runs} of each cursor page"
        )
        fields = {f["name"]: FieldDef.model_validate(f) for f in SCHEMA}
        cases = {
            "no filter, by id": ({}, None),
            "no filter, ordering=-updated_at": ({}, "-updated_at"),
            "no filter, ordering=updated_at": ({}, "updated_at"),
            "brand=Brand07, by id": ({"brand": "Brand07"}, None),
            "brand=Brand07, ordering=updated_at": ({"brand": "Brand07"}, "updated_at"),
        }
        print(
            f"\n{'list':34} {'depth':>9} {'offset p50':>11} {'p95':>7} {'cursor p50':>11} {'p95':>7}"
        )
        for label, (params, ordering) in cases.items():
            if args.only not in label:
                continue
            where = await _where(tenant_id, fields, params)
            matches = await conn.fetchval(
                f"SELECT count(*) FROM products p WHERE {where.sql}", *where.params
            )
            for fraction in (0.0, 0.5, 0.999):
                page = max(1, int(matches * fraction) // PAGE)
                # the keys of the row before that page: what the previous page's cursor holds
                keyed = SqlWhere(params=list(where.params), conditions=where.conditions)
                terms = ordering_terms(keyed, fields, ordering)
                order = ", ".join(f"{t.expr} {t.direction}" for t in terms)
                keys = ", ".join(f"{t.expr} AS k{i}" for i, t in enumerate(terms))
                n = len(keyed.params)
                row = await conn.fetchrow(
                    f"SELECT {keys} FROM products p WHERE {where.sql} ORDER BY {order} "
                    f"OFFSET ${n + 1} LIMIT 1",
                    *keyed.params,
                    max(0, (page - 1) * PAGE - 1),
                )
                after = [key_text(row[f"k{i}"]) for i in range(len(terms))]

                async def by_offset(where=where, ordering=ordering, page=page):
                    await products.list_products(
                        conn, products.Listing(where, fields, ordering, page, PAGE)
                    )

                async def by_cursor(where=where, ordering=ordering, after=after):
                    result = await products.list_products(
                        conn, products.Listing(where, fields, ordering, 1, PAGE, after)
                    )
                    assert len(result.results) == PAGE or page * PAGE >= matches

                if page > 1:
                    # the cursor page is the offset page (same products, same order)
                    offset_page = await products.list_products(
                        conn, products.Listing(where, fields, ordering, page, PAGE)
                    )
                    cursor_page = await products.list_products(
                        conn, products.Listing(where, fields, ordering, 1, PAGE, after)
                    )
                    assert [p["id"] for p in offset_page.results] == [
                        p["id"] for p in cursor_page.results
                    ]
                await by_offset()
                await by_cursor()  # warm
                offset_ms = await _timed(args.offset_runs, by_offset)
                cursor_ms = await _timed(args.runs, by_cursor)
                print(
                    f"{label:34} {(page - 1) * PAGE:>9,} {statistics.median(offset_ms):11.1f} "
                    f"{pct(offset_ms, 0.95):7.1f} {statistics.median(cursor_ms):11.1f} "
                    f"{pct(cursor_ms, 0.95):7.1f}"
                )
    finally:
        await conn.execute(f"DELETE FROM products WHERE {tenant_is('products')}", tenant_id)
        await conn.execute("DELETE FROM tenants WHERE id = $1", tenant_id)
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
