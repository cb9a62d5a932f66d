"""What a typed index costs: the figures behind its layout (app/products/typed_indexes.py).

    .venv/bin/python bench/typed_indexes.py

In a scratch database (created from the migrations, dropped at the end):

- planning time of a list statement (`tenant_id = $1 AND pim_num(data -> 'price') >= $2 ORDER BY
  ... LIMIT 50`) with 0, 64, 256 and 1024 typed indexes of *other* tenants on `products`: every
  index of the table is looked at when any statement on it is planned;
- rows/s of a tenant's inserts (20,000 rows through the real triggers) with no typed index, with
  256 typed indexes of other tenants (only their predicates are checked), and with 3 typed
  indexes of its own (number, integer and date fields: an index entry each per row).
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url

from app.config import get_settings
from app.db import pg_dsn
from app.products.typed_indexes import TypedIndex
from app.query.models import Kind

ROWS = 20_000
PLAN_SQL = (
    "EXPLAIN (SUMMARY ON, FORMAT JSON) SELECT p.id FROM products p WHERE p.tenant_id = $1 "
    "AND pim_num(p.data -> 'price') >= $2 ORDER BY pim_num(p.data -> 'price') NULLS LAST, p.id LIMIT 50"
)
INSERT_SQL = """
    INSERT INTO products (tenant_id, sku, name, data)
    SELECT $1, $2 || g, 'Item ' || g,
           jsonb_build_object('price', (g * 7919) % 2000, 'stock', g % 500,
                              'launch', (date '2020-01-01' + g % 2000)::text, 'brand', 'b' || g % 40)
    FROM generate_series(1, $3::int) g"""


def ddl(index: TypedIndex) -> str:
    return index.create_sql.replace(" CONCURRENTLY", "")  # on a scratch table nobody reads


async def planning_ms(conn, tenant_id: int, runs: int = 200) -> float:
    times = []
    for _ in range(runs):
        plan = await conn.fetchval(PLAN_SQL, tenant_id, 100)
        times.append(json.loads(plan)[0]["Planning Time"])
    return statistics.median(times)


async def insert_rate(conn, tenant_id: int, label: str) -> float:
    started = time.perf_counter()
    await conn.execute(INSERT_SQL, tenant_id, f"{label}-", ROWS)
    rate = ROWS / (time.perf_counter() - started)
    await conn.execute("DELETE FROM products WHERE tenant_id = $1", tenant_id)
    await conn.execute("DELETE FROM product_changes WHERE tenant_id = $1", tenant_id)
    return rate


async def main() -> None:
    settings = get_settings()
    url = make_url(settings.database_url)
    scratch = f"{url.database}_typed_costs"
    admin = await asyncpg.connect(pg_dsn(settings.database_url))
    await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
    await admin.execute(f'CREATE DATABASE "{scratch}"')
    scratch_url = url.set(database=scratch).render_as_string(hide_password=False)
    try:
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=ROOT,
            env={**os.environ, "PIM_DATABASE_URL": scratch_url},
            check=True,
            capture_output=True,
        )
        conn = await asyncpg.connect(pg_dsn(scratch_url))
        try:
            writer = await conn.fetchval("INSERT INTO tenants (slug) VALUES ('w') RETURNING id")
            others = [
                await conn.fetchval("INSERT INTO tenants (slug) VALUES ($1) RETURNING id", f"o{i}")
                for i in range(1024)
            ]
            await conn.execute(INSERT_SQL, writer, "seed-", 2_000)
            await conn.execute("ANALYZE products")
            print(f"# typed-index costs, scratch database {scratch}")
            print(f"{'typed indexes of other tenants':32} {'planning p50 (ms)':>18}")
            made = 0
            for count in (0, 64, 256, 1024):
                while made < count:
                    await conn.execute(ddl(TypedIndex(others[made], Kind.number, "price")))
                    made += 1
                print(f"{count:32} {await planning_ms(conn, writer):18.3f}")
            for index in await conn.fetch(
                "SELECT relname FROM pg_class WHERE relname LIKE 'ix_products_typed_%'"
            ):
                await conn.execute(f"DROP INDEX {index['relname']}")
            await conn.execute("DELETE FROM products WHERE tenant_id = $1", writer)

            print(f"\n{'inserts of one tenant':48} {'rows/s':>8}")
            rates: dict[str, list[float]] = {"none": [], "others": [], "own": []}
            own = [
                TypedIndex(writer, Kind.number, "price"),
                TypedIndex(writer, Kind.number, "stock"),
                TypedIndex(writer, Kind.date, "launch"),
            ]
            for round_ in range(3):  # interleaved: the machine is shared
                rates["none"].append(await insert_rate(conn, writer, f"n{round_}"))
                for other in others[:256]:
                    await conn.execute(ddl(TypedIndex(other, Kind.number, "price")))
                rates["others"].append(await insert_rate(conn, writer, f"x{round_}"))
                for other in others[:256]:
                    await conn.execute(f"DROP INDEX {TypedIndex(other, Kind.number, 'price').name}")
                for index in own:
                    await conn.execute(ddl(index))
                rates["own"].append(await insert_rate(conn, writer, f"o{round_}"))
                for index in own:
                    await conn.execute(f"DROP INDEX {index.name}")
            labels = {
                "none": "no typed index",
                "others": "256 typed indexes of other tenants",
                "own": "3 typed indexes of its own (number, integer, date)",
            }
            for key, label in labels.items():
                print(f"{label:48} {statistics.median(rates[key]):8,.0f}")
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
