"""What Postgres row-level security would cost on the hot paths: the service's own statements,
timed as the table owner (no policy applies) and as a role bound by the policy
`tenant_id = current_setting('pim.tenant_id')::bigint`, alternately, on the same data.

    .venv/bin/python bench/catalog.py --n 100000      # loads a tenant `bench-...`
    .venv/bin/python bench/rls.py                     # the largest bench tenant

Everything happens in one transaction that is rolled back: the probe role, the policies and
`ENABLE ROW LEVEL SECURITY` leave nothing behind (the transaction holds an exclusive lock on
products, categories and facet_counts while it runs: use a database nothing else writes).
Needs the owner's URL (PIM_DATABASE_URL as a superuser or the tables' owner). The tenant is
set with `set_config(..., true)` inside that transaction, as the service would per transaction,
so the extra round trip is not in the figures: what remains is the policy's effect on plans.

Figures (2026-12-07, 100,000 products from `bench/catalog.py --n 100000`, a 2-core machine
shared with other work, load average 9.5; `bench/rls.py --runs 15`; milliseconds):

    statement (ms)                     own p50   own p95   RLS p50   RLS p95   RLS cost
    GET by id (policy only)               0.46      5.22      0.42      3.23       -7 %
    list exact brand=Brand07             12.09     15.63     97.05    117.84     +703 %
    list range price 100..120           179.28    195.82    179.21    210.42       -0 %
    list q='deluxe oak 4' (3+ chars)      6.98     11.77    199.83    242.85    +2763 %
    list page 100 (no filter)            47.10     60.36     58.61     78.61      +24 %
    list exact + ordering=-price         83.69    109.75    163.73    213.01      +96 %
    bulk: 5000 rows by sku               52.17    166.41     49.36     66.69       -5 %
    bulk: unique-field check            568.60    731.57    636.67    741.20      +12 %

The cause is in the plans, not the policy's own cost: a query's conditions run after the
policy's unless their operator is LEAKPROOF, so under RLS `data @> ...` (jsonb_contains),
`name ILIKE ...` (texticlike, trigram) and `categories && ...` (arrayoverlap) can no longer be
index conditions; the GIN indexes go unused and the tenant's rows are filtered one by one
(EXPLAIN: `Bitmap Index Scan ... Index Cond: (tenant_id = current_setting(...))`, then
`Filter: (data @> ...)`). Marking those built-in functions LEAKPROOF restores the plans
(`ALTER FUNCTION jsonb_contains(jsonb, jsonb) LEAKPROOF`: 159 ms -> 1.1 ms on a 300k-row probe),
but that needs a superuser, changes built-ins for the whole database, is not kept by a dump or
an upgrade, and managed Postgres refuses it. So the service does not use RLS: raw statements
on tenant tables take their predicate from one helper, `app.db.tenant_is`, and a test fails
on any that does not (tests/test_tenant_scoping.py).
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
from bench.catalog import SCHEMA, _TenantOnly
from bench.common import pct

TABLES = ("products", "categories", "facet_counts", "product_schemas")
CASES = {
    "exact brand=Brand07": {"brand": "Brand07"},
    "range price 100..120": {"price__gte": "100", "price__lte": "120"},
    "q='deluxe oak 4' (3+ chars)": {"q": "deluxe oak 4"},
    "page 100 (no filter)": {"page": "100"},
    "exact + ordering=-price": {"color": "navy", "ordering": "-price"},
}


async def timed(fn) -> float:
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenant", type=int, help="tenant id (default: the largest bench tenant)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    conn = await asyncpg.connect(pg_dsn(get_settings().database_url))
    tenant_id = args.tenant or await conn.fetchval(
        """SELECT t.id FROM tenants t JOIN products p ON p.tenant_id = t.id
           WHERE t.slug LIKE 'bench-%' GROUP BY t.id ORDER BY count(*) DESC LIMIT 1"""
    )
    fields = {f["name"]: FieldDef.model_validate(f) for f in SCHEMA}
    ids = [
        r[0]
        for r in await conn.fetch(
            f"SELECT id FROM products WHERE {tenant_is('products')} ORDER BY random() LIMIT 200",
            tenant_id,
        )
    ]
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute("CREATE ROLE pim_rls_probe NOLOGIN")
        for table in TABLES:
            await conn.execute(f"GRANT SELECT ON {table} TO pim_rls_probe")
            await conn.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            await conn.execute(
                f"CREATE POLICY probe ON {table} "
                "USING (tenant_id = current_setting('pim.tenant_id')::bigint)"
            )
        await conn.execute("SELECT set_config('pim.tenant_id', $1, true)", str(tenant_id))

        async def as_owner(fn) -> float:
            await conn.execute("RESET ROLE")
            return await timed(fn)

        async def under_policy(fn) -> float:
            await conn.execute("SET LOCAL ROLE pim_rls_probe")
            try:
                return await timed(fn)
            finally:
                await conn.execute("RESET ROLE")

        async def compare(label: str, fn) -> None:
            owner, policy = [], []
            await as_owner(fn)
            await under_policy(fn)  # warm up both
            for _ in range(args.runs):  # alternate, so that the shared machine's load hits both
                owner.append(await as_owner(fn))
                policy.append(await under_policy(fn))
            o, p = statistics.median(owner), statistics.median(policy)
            print(
                f"{label:32} {o:9.2f} {pct(owner, 0.95):9.2f} {p:9.2f} {pct(policy, 0.95):9.2f} "
                f"{(p / o - 1) * 100:+8.0f} %"
            )

        print(f"# tenant {tenant_id}, {args.runs} runs each, owner and policy alternately")
        print(
            f"{'statement (ms)':32} {'own p50':>9} {'own p95':>9} {'RLS p50':>9} {'RLS p95':>9} "
            f"{'RLS cost':>10}"
        )
        position = iter(range(10**9))

        async def get_by_id() -> None:
            await conn.fetchrow(
                f"SELECT {products.PRODUCT_COLUMNS} FROM products p WHERE p.id = $1",
                ids[next(position) % len(ids)],
            )

        await compare("GET by id (policy only)", get_by_id)
        for label, params in CASES.items():
            where = await products.build_filters(
                _TenantOnly(tenant_id),
                fields,
                [(k, v) for k, v in params.items() if k not in ("page", "ordering", "q")],
                q=params.get("q"),
                status=None,
                category=None,
                sku=None,
                sku_in=None,
            )

            async def listing(where=where, params=params) -> None:
                page = int(params.get("page", 1))
                listing = products.Listing(where, fields, params.get("ordering"), page, 50)
                await products.list_products(conn, listing)

            await compare(f"list {label}", listing)
        skus = [f"SKU-{i:08d}" for i in range(0, 5000)]

        async def existing_rows() -> None:  # the bulk upsert's lookup of a batch's rows
            await conn.fetch(
                f"SELECT p.id FROM products p WHERE {tenant_is('p')} AND p.sku = ANY($2::text[])",
                tenant_id,
                skus,
            )

        await compare("bulk: 5000 rows by sku", existing_rows)
        probes = [f'{{"brand": "Brand{i:02d}"}}' for i in range(50)]

        async def unique_check() -> None:  # the bulk upsert's check of a unique field
            await conn.fetch(
                f"SELECT sku FROM products WHERE {tenant_is('products')} AND data @> ANY($2::jsonb[])",
                tenant_id,
                probes[:5],
            )

        await compare("bulk: unique-field check", unique_check)
    finally:
        await transaction.rollback()
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
