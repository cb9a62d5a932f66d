"""Retention: the worker prunes entries older than PIM_CHANGE_RETENTION_DAYS; a stream read from
before what is kept answers 410 (issue 15, item 5)."""

import asyncpg

from app.changes.tasks import prune_old_changes
from app.db import pg_dsn, tenant_is
from tests.changes.test_write_paths import changes


async def test_old_entries_are_pruned_and_reading_before_them_is_410(client, app, tenant, settings):
    for i in range(4):
        response = await client.post(
            "/api/pim/products/", json={"sku": f"P-{i}", "name": "x"}, headers=tenant.editor
        )
        assert response.status_code == 201
    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    try:  # the first three entries are older than the retention
        await conn.execute(
            "UPDATE product_changes SET at = now() - make_interval(days => $2) "
            f"WHERE {tenant_is('product_changes')} AND seq <= 3",
            tenant.id,
            settings.change_retention_days + 1,
        )
    finally:
        await conn.close()
    ctx = {"sessionmaker": app.state.sessionmaker, "settings": settings}
    assert await prune_old_changes(ctx) >= 3

    response = await client.get("/api/pim/changes/", params={"after": 0}, headers=tenant.viewer)
    assert response.status_code == 410, response.text
    assert response.json()["code"] == "changes_pruned"
    assert response.json()["oldest_seq"] == 4
    assert [e["seq"] for e in await changes(client, tenant, after=3)] == [4]
