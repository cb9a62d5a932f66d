"""The list's exact-match and search filters are answered by indexes, not by walking the table.

The products table holds every tenant's rows, so the plan must use the GIN indexes
(data containment, trigram on name) for the exact page query the service runs.
"""

from sqlalchemy import text

from app.catalog.fields import FieldDef
from app.products.queries import SqlWhere, add_field_filter
from app.products.service import one_scan_query


async def _plan(app, sql: str, params: list) -> str:
    async with app.state.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        # On a small test database a sequential scan is the cheaper plan; with it priced out,
        # the planner shows whether an index can answer the query (without one it would still
        # fall back to a sequential scan, so the assertion below can fail).
        async with raw.transaction():
            await raw.execute("SET LOCAL enable_seqscan = off")
            rows = await raw.fetch(f"EXPLAIN {sql}", *params)
        await conn.rollback()
    return "\n".join(r[0] for r in rows)


def _matches_scan(plan: str) -> str:
    """The part of a filtered list's plan that finds the matches (the CTE `m` of `one_scan_query`)."""
    return plan.split("CTE m", 1)[1].split("CTE page", 1)[0]


async def test_exact_filter_and_search_use_indexes(app, client, tenant):
    fields = {"brand": FieldDef(name="brand")}
    await client.put(
        "/api/pim/schema/", json={"fields": [{"name": "brand"}]}, headers=tenant.editor
    )
    for start in (0, 10_000):  # enough rows that scanning the tenant's rows is not the cheaper way
        batch = [
            {"sku": f"E{i}", "name": f"Item {i}", "brand": f"b{i % 400}"}
            for i in range(start, start + 10_000)
        ]
        response = await client.post(
            "/api/pim/products/bulk/", json={"products": batch}, headers=tenant.editor
        )
        assert response.json()["created"] == 10_000
    # as autovacuum would: statistics, and the GIN pending lists merged (rows other tests wrote
    # there just before can make the planner price the GIN index above a scan of the tenant)
    async with app.state.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE products"))

    where = SqlWhere()
    where.add(f"p.tenant_id = {where.bind(tenant.id)}")
    add_field_filter(where, fields, "brand", "b3")
    sql, params, _capped = one_scan_query(where, fields, ordering=None, page=1, page_size=50)
    plan = await _plan(app, sql, params)
    matches = _matches_scan(plan)
    assert "ix_products_data" in matches, plan
    assert "pk_products" not in matches and "Seq Scan" not in plan, (
        plan
    )  # the id index only fetches the page

    where = SqlWhere()
    where.add(f"p.tenant_id = {where.bind(tenant.id)}")
    where.add(f"p.name ILIKE {where.bind('%item 1234%')}")
    sql, params, _capped = one_scan_query(where, fields, ordering=None, page=1, page_size=50)
    plan = await _plan(app, sql, params)
    assert "ix_products_name_trgm" in _matches_scan(plan), plan

    listed = await client.get("/api/pim/products/", params={"brand": "b3"}, headers=tenant.viewer)
    assert listed.json()["count"] == 50
