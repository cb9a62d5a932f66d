"""Deleting a tenant that has products and change-log entries removes all of it (it failed: the
products' delete trigger took seqs for a tenant the same cascade had removed)."""

import asyncpg

from app.db import pg_dsn


async def test_a_tenant_with_products_and_entries_can_be_deleted(
    client, make_tenant, tenant, settings
):
    doomed = await make_tenant("doomed")
    for ctx in (doomed, tenant):
        response = await client.post(
            "/api/pim/products/bulk/",
            json={"products": [{"sku": f"D-{i}", "name": f"Product {i}"} for i in range(3)]},
            headers=ctx.editor,
        )
        assert response.status_code == 200, response.text
    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        await conn.execute("DELETE FROM tenants WHERE id = $1", doomed.id)
        for table in ("products", "product_changes", "product_change_seqs", "facet_counts"):
            left = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE tenant_id = $1", doomed.id
            )
            assert left == 0, table
        # the other tenant keeps its products and its log
        assert (
            await conn.fetchval("SELECT count(*) FROM products WHERE tenant_id = $1", tenant.id)
            == 3
        )
        assert (
            await conn.fetchval(
                "SELECT last_seq FROM product_change_seqs WHERE tenant_id = $1", tenant.id
            )
            == 3
        )
    finally:
        await conn.close()
