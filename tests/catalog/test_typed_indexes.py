"""Typed indexes and planner statistics, built by the worker after schema changes and bulk loads.

A large tenant's number and date fields get B-tree indexes on exactly the expression the
predicate compiler writes, so a range filter's matches and a page in a field's order are read
from an index (EXPLAIN of the statements the list runs); a retyped or removed field loses its
index. A bulk load larger than the threshold moves `last_analyze` with autovacuum off.
"""

import asyncio
import re
from datetime import date, timedelta

from app.catalog.fields import FieldDef
from app.jobs.locks import lease_connection
from app.products.queries import SqlWhere, add_field_filter
from app.products.service import Listing, one_scan_query, page_query
from app.products.typed_indexes import (
    INDEX_TURN,
    drop_orphaned_typed_indexes,
    existing_indexes,
    sync_typed_indexes,
    typed_index_count,
)
from tests.catalog.test_query_plans import _matches_scan, _plan
from tests.conftest import wait_for

N = 12_000  # over PIM_TYPED_INDEX_MIN_PRODUCTS (10,000 in the tests: tests/databases.py)


async def _indexes(app, tenant_id: int) -> dict[str, bool]:
    async with app.state.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        return await existing_indexes(raw, tenant_id)


async def _load(client, tenant, n: int, start: int = 0) -> None:
    first = date(2020, 1, 1)
    for low in range(start, start + n, 6_000):
        batch = [
            {
                "sku": f"T{i}",
                "name": f"Item {i}",
                "price": (i * 7919) % 1000,
                "released": (first + timedelta(days=i % 1500)).isoformat(),
            }
            for i in range(low, min(low + 6_000, start + n))
        ]
        response = await client.post(
            "/api/pim/products/bulk/", json={"products": batch}, headers=tenant.editor
        )
        assert response.status_code == 200, response.text
        assert response.json()["failed"] == 0


def _sorted_rows(plan: str) -> list[str]:
    """The estimated rows of each Sort node of a plan."""
    return re.findall(r"Sort  \(cost=\S+ rows=(\d+)", plan)


def _where(tenant_id: int) -> SqlWhere:
    return SqlWhere.of_tenant(tenant_id)


async def test_typed_indexes_serve_ranges_and_orderings(app, client, tenant, worker):
    schema = [{"name": "price", "type": "number"}, {"name": "released", "type": "date"}]
    put = await client.put("/api/pim/schema/", json={"fields": schema}, headers=tenant.editor)
    assert put.status_code == 200
    await _load(client, tenant, N)
    # the bulk load's upkeep job (the tenant is now over the size threshold) builds both
    indexes = await wait_for(lambda: _with_count(app, tenant.id, 2), timeout=60, interval=0.3)
    assert all(indexes.values()), indexes
    async with app.state.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.execute("ANALYZE products")

    fields = {f["name"]: FieldDef(**f) for f in schema}

    where = _where(tenant.id)
    add_field_filter(where, fields, "price__gte", "990")
    sql, params, _ = one_scan_query(where, fields, ordering=None, page=1, page_size=50)
    plan = await _plan(app, sql, params)
    assert "ix_products_typed_" in _matches_scan(plan), plan

    where = _where(tenant.id)
    add_field_filter(where, fields, "released__lt", "2020-01-05")
    sql, params, _ = one_scan_query(where, fields, ordering=None, page=1, page_size=50)
    plan = await _plan(app, sql, params)
    assert "ix_products_typed_" in _matches_scan(plan), plan

    # a page in a number field's order, both directions, is the first rows of the index
    for ordering in ("price", "-price", "released"):
        listing = Listing(_where(tenant.id), fields, ordering=ordering, page=1, page_size=50)
        sql, params = page_query(listing)
        plan = await _plan(app, sql, params)
        # an index scan in the index's order (forwards, or backwards for `-price`, whose NULLs
        # are a second range of the index); at most those ranges' first rows are sorted, never
        # the tenant's rows
        assert "Index Scan" in plan and "ix_products_typed_" in plan, (ordering, plan)
        # (not the primary key walked for the NULLs: at 1M that was 4 s instead of 11 ms)
        assert "Seq Scan" not in plan and "pk_products" not in plan, (ordering, plan)
        assert all(int(r) <= 100 for r in _sorted_rows(plan)), (ordering, plan)

    # and through the API the answers are the same as without an index
    listed = await client.get(
        "/api/pim/products/",
        params={"price__gte": "990", "ordering": "-price", "page_size": "200"},
        headers=tenant.viewer,
    )
    body = listed.json()
    expected = sorted(((i * 7919) % 1000, i) for i in range(N) if (i * 7919) % 1000 >= 990)
    assert body["count"] == len(expected)
    got = [(p["data"]["price"], p["sku"]) for p in body["results"]]
    assert [g[0] for g in got] == sorted((e[0] for e in expected), reverse=True)[: len(got)]

    # a field retyped to string loses its index; the other stays
    schema[0]["type"] = "string"
    put = await client.put("/api/pim/schema/", json={"fields": schema}, headers=tenant.editor)
    assert put.status_code == 200
    left = await wait_for(lambda: _with_count(app, tenant.id, 1), timeout=60, interval=0.3)
    assert left == {name: True for name in indexes if name in left}


async def _with_count(app, tenant_id: int, n: int) -> dict[str, bool] | None:
    found = await _indexes(app, tenant_id)
    return found if len(found) == n and all(found.values()) else None


async def test_small_tenant_gets_no_typed_index(app, client, tenant, worker, other_tenant):
    """Below the size threshold a schema with number fields builds nothing (a tenant's rows are
    few: its (tenant_id, id) index is enough). The other tenant's sync shows the job ran."""
    schema = [{"name": "price", "type": "number"}]
    for t in (tenant, other_tenant):
        put = await client.put("/api/pim/schema/", json={"fields": schema}, headers=t.editor)
        assert put.status_code == 200
    await _load(client, tenant, 50)
    await _load(client, other_tenant, N)
    await wait_for(lambda: _with_count(app, other_tenant.id, 1), timeout=60, interval=0.3)
    assert await _indexes(app, tenant.id) == {}


async def test_large_bulk_load_refreshes_statistics(app, client, tenant, worker):
    async with app.state.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.execute("ALTER TABLE products SET (autovacuum_enabled = false)")
        await raw.execute("ANALYZE products")
        before = await raw.fetchval(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'products'"
        )
        rows = await raw.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'products'")
    assert before is not None
    put = await client.put(
        "/api/pim/schema/",
        json={"fields": [{"name": "price", "type": "number"}]},
        headers=tenant.editor,
    )
    assert put.status_code == 200
    # more than 10 % of the table (PIM_ANALYZE_FRACTION): the worker analyzes it
    await _load(client, tenant, max(N, int(rows * 0.12)), start=100_000)

    async def analyzed():
        async with app.state.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            after = await raw.fetchval(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'products'"
            )
        return after if after is not None and after > before else None

    await wait_for(analyzed, timeout=60, interval=0.3)


async def test_caps_and_idempotence(app, tenant):
    """The worker's sync itself: the table-wide cap refuses a build, a repeated sync does nothing,
    a per-tenant bound of 0 drops the tenant's index, an invalid index is rebuilt."""
    fields = [FieldDef(name="price", type="number"), FieldDef(name="seen", type="datetime")]
    engine = app.state.engine

    async def sync(**caps):
        options = {"min_products": 0, "per_tenant": 8, "total": 10**6} | caps
        return await sync_typed_indexes(engine, tenant.id, fields, **options)

    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        present = await typed_index_count(raw)
    refused = await sync(total=present)
    assert refused["created"] == [] and len(refused["over_cap"]) == 2
    assert await _indexes(app, tenant.id) == {}

    made = await sync()
    assert len(made["created"]) == 2
    assert await sync() == {"created": [], "dropped": [], "over_cap": []}

    # an interrupted CREATE INDEX CONCURRENTLY leaves an invalid index: dropped and built again
    name = made["created"][0]
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = $1::regclass", name
        )
    again = await sync()
    assert again["dropped"] == [name] and again["created"] == [name]
    assert all((await _indexes(app, tenant.id)).values())

    dropped = await sync(per_tenant=1)
    assert len(dropped["dropped"]) == 1
    assert len(await _indexes(app, tenant.id)) == 1
    await sync(per_tenant=0)
    assert await _indexes(app, tenant.id) == {}


async def test_deleted_tenant_loses_its_typed_indexes(app, make_tenant):
    gone = await make_tenant("gone")
    fields = [FieldDef(name="price", type="number")]
    made = await sync_typed_indexes(
        app.state.engine, gone.id, fields, min_products=0, per_tenant=8, total=10**6
    )
    assert len(made["created"]) == 1
    async with app.state.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.execute("DELETE FROM tenants WHERE id = $1", gone.id)
    assert await drop_orphaned_typed_indexes(app.state.engine) == made["created"]
    assert await _indexes(app, gone.id) == {}


async def test_index_builds_and_drops_take_turns_across_tenants(app, make_tenant):
    """Two CREATE or DROP INDEX CONCURRENTLY on `products` at once deadlocked (Postgres aborted
    one): every tenant's build and drop waits for the table's turn."""
    engine = app.state.engine
    fields = [FieldDef(name="price", type="number")]
    first, second = await make_tenant("turn_a"), await make_tenant("turn_b")

    def sync(tenant_id: int, per_tenant: int = 8):
        return sync_typed_indexes(
            engine, tenant_id, fields, min_products=0, per_tenant=per_tenant, total=10**6
        )

    async with lease_connection(engine) as other:
        await other.wait_lock(INDEX_TURN)
        build = asyncio.create_task(sync(first.id))
        finished, _ = await asyncio.wait({build}, timeout=1.0)
        assert not finished, "the build did not wait for the table's turn"
        assert await _indexes(app, first.id) == {}
        await other.unlock(INDEX_TURN)
        assert len((await build)["created"]) == 1

    # builds and drops of several tenants at once all finish
    results = await asyncio.gather(sync(second.id), sync(first.id, per_tenant=0), sync(second.id))
    assert sorted(len(r["created"]) for r in results) == [0, 0, 1]
    assert len(results[1]["dropped"]) == 1
    assert await _indexes(app, first.id) == {}
    assert list((await _indexes(app, second.id)).values()) == [True]
