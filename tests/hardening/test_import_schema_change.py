"""Finding 2 of issue 13: an import validates each batch against the schema in force when the
batch commits, so a schema PUT in the middle of an import governs the rows written after it."""

import asyncpg

from app.db import pg_dsn, tenant_is
from tests.conftest import wait_for
from tests.imports.conftest import IMPORT, confirm, upload, wait_done

ROWS = 150_000
OLD = [{"name": "price", "type": "number"}, {"name": "color", "type": "string"}]
NEW = [{"name": "price", "type": "integer"}, {"name": "color", "type": "enum", "options": ["Red"]}]


def feed() -> bytes:
    """Odd rows cost 1.5 (not an integer), even rows 2; every row is "red"."""
    return (
        "sku,price,color\n"
        + "".join(f"S-{i:06d},{'1.5' if i % 2 else '2'},red\n" for i in range(ROWS))
    ).encode()


async def test_schema_put_during_an_import_governs_the_later_rows(client, tenant, settings, worker):
    """Finding 2: a schema PUT lands mid-import (200). Rows committed before it are stored as the old
    schema read them; every row after it follows the new one: an odd row (price 1.5, no longer an
    integer) is rejected, an even row is stored with the enum's option "Red". In file order: one cut."""
    h = tenant.editor
    (await client.put("/api/pim/schema/", json={"fields": OLD}, headers=h)).raise_for_status()
    job = (await upload(client, h, feed())).json()
    started = await confirm(
        client, h, job, mapping={"sku": "sku", "price": "price", "color": "color"}, schema=OLD
    )
    assert started.status_code == 202, started.text

    async def some_committed():
        state = (await client.get(f"{IMPORT}/{job['job_id']}/", headers=h)).json()
        return state if state["processed_rows"] > 0 else None

    state = await wait_for(some_committed, timeout=120, interval=0.05)
    assert state["status"] == "importing" and state["processed_rows"] < ROWS, state
    put = await client.put("/api/pim/schema/", json={"fields": NEW}, headers=h)
    assert put.status_code == 200, put.text
    done = await wait_done(client, h, job["job_id"], timeout=300)
    assert done["status"] == "done", done

    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        stored = {
            r["sku"]: (r["price"], r["color"])
            for r in await conn.fetch(
                f"SELECT sku, data -> 'price' AS price, data ->> 'color' AS color FROM products WHERE {tenant_is('products')}",
                tenant.id,
            )
        }
        rejected = {
            r["sku"]: r["detail"]
            for r in await conn.fetch(
                "SELECT e.sku, e.detail FROM import_row_errors e WHERE e.job_id = $1::uuid",
                job["job_id"],
            )
        }
    finally:
        await conn.close()

    # the first row written under the new schema: everything before it was written under the old one
    new_rows = [i for i in range(ROWS) if stored.get(f"S-{i:06d}", (None, None))[1] == "Red"]
    assert new_rows, "no row was written under the new schema"
    cut = new_rows[0]
    if f"S-{cut - 1:06d}" in rejected:  # the batch under the new schema began with an odd row
        cut -= 1
    for i in range(ROWS):
        sku = f"S-{i:06d}"
        if i < cut:
            assert stored[sku][1] == "red" and sku not in rejected, (
                i,
                stored.get(sku),
                rejected.get(sku),
            )
        elif i % 2:
            assert sku in rejected and "price" in rejected[sku] and sku not in stored, (
                i,
                stored.get(sku),
            )
        else:
            assert stored[sku] == ("2", "Red"), (i, stored[sku])
    assert 0 < cut < ROWS
    assert done["failed"] == len(rejected) == len([i for i in range(cut, ROWS) if i % 2])
