"""Finding 7 of issue 13: per-tenant quota for stored uploads, a cap on a product's `data`, and
`DELETE /api/pim/import/{job_id}/`."""

import asyncpg

from app.auth.service import Role
from app.db import pg_dsn, tenant_is
from tests.hardening.conftest import tenant_in
from tests.imports.conftest import IMPORT, upload, wait_done

MiB = 1024 * 1024
PRODUCTS = "/api/pim/products/"


def csv_of(size: int, tag: str) -> bytes:
    line = f"{tag}-{{:08d}},{'x' * 90}\n"
    rows = size // len(line.format(0))
    return ("sku,name\n" + "".join(line.format(i) for i in range(rows))).encode()


async def stored(settings, tenant_id: int) -> tuple[int, int]:
    """(jobs, bytes of stored chunks) of the tenant."""
    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        return tuple(
            await conn.fetchrow(
                f"""SELECT count(DISTINCT j.id), coalesce(sum(octet_length(c.data)), 0) FROM import_jobs j
               LEFT JOIN import_chunks c ON c.job_id = j.id WHERE {tenant_is("j")}""",
                tenant_id,
            )
        )
    finally:
        await conn.close()


async def test_upload_quota_and_deleting_jobs(app_with, settings):
    """Finding 7: a tenant's stored uploads stay under PIM_IMPORT_STORAGE_QUOTA_BYTES (a 413 that
    says so, leaving nothing stored); DELETE of a job frees its share (204); a job importing is a 409;
    another tenant has its own quota."""
    api = await app_with(import_storage_quota_bytes=10 * MiB)
    tenant = await tenant_in(api.app, "quota")
    other = await tenant_in(api.app, "quota-other")
    h = tenant.editor

    first = await upload(api.http, h, csv_of(6 * MiB, "a"))
    assert first.status_code == 201, first.text
    over = await upload(api.http, h, csv_of(6 * MiB, "b"))
    assert over.status_code == 413, over.text
    assert "quota" in over.json()["detail"] and "DELETE" in over.json()["detail"]
    assert await stored(settings, tenant.id) == (
        1,
        first.json()["size_bytes"],
    )  # the refused one left nothing
    assert (await upload(api.http, other.editor, csv_of(6 * MiB, "c"))).status_code == 201

    viewer = await api.http.delete(
        f"{IMPORT}/{first.json()['job_id']}/", headers=tenant.headers(Role.viewer.value)
    )
    assert viewer.status_code == 403
    deleted = await api.http.delete(f"{IMPORT}/{first.json()['job_id']}/", headers=h)
    assert deleted.status_code == 204, deleted.text
    assert (await api.http.get(f"{IMPORT}/{first.json()['job_id']}/", headers=h)).status_code == 404
    assert await stored(settings, tenant.id) == (0, 0)
    again = await upload(api.http, h, csv_of(6 * MiB, "b"))
    assert again.status_code == 201, again.text

    # a job being imported cannot be deleted (its status set here for a moment, then back: a worker
    # starting meanwhile would import it)
    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        await conn.execute(
            "UPDATE import_jobs SET status = 'importing' WHERE id = $1::uuid",
            again.json()["job_id"],
        )
        busy = await api.http.delete(f"{IMPORT}/{again.json()['job_id']}/", headers=h)
        await conn.execute(
            "UPDATE import_jobs SET status = 'mapping' WHERE id = $1::uuid", again.json()["job_id"]
        )
    finally:
        await conn.close()
    assert busy.status_code == 409 and "importing" in busy.json()["detail"], busy.text
    assert await stored(settings, tenant.id) == (1, again.json()["size_bytes"])
    assert (
        await api.http.delete(f"{IMPORT}/{again.json()['job_id']}/", headers=h)
    ).status_code == 204
    missing = await api.http.delete(f"{IMPORT}/00000000-0000-0000-0000-000000000000/", headers=h)
    assert missing.status_code == 404


async def test_product_data_is_capped_everywhere(client, tenant, settings, worker):
    """Finding 7: `data` larger than PIM_MAX_PRODUCT_DATA_BYTES (1 MiB) as JSON is a 400 on POST and
    PATCH (also once merged), a per-item error in bulk (also once merged with the stored data) and a
    rejected row in a CSV import; nothing oversized is stored."""
    h = tenant.editor
    fields = [{"name": "a", "type": "text"}, {"name": "b", "type": "text"}]
    (await client.put("/api/pim/schema/", json={"fields": fields}, headers=h)).raise_for_status()
    big, half = "x" * (MiB + 10), "y" * (600 * 1024)

    posted = await client.post(
        PRODUCTS, json={"sku": "p-big", "name": "n", "data": {"a": big}}, headers=h
    )
    assert posted.status_code == 400 and "limit" in posted.json()["detail"], posted.text[:300]
    made = await client.post(
        PRODUCTS, json={"sku": "p-half", "name": "n", "data": {"a": half}}, headers=h
    )
    assert made.status_code == 201, made.text[:300]
    patched = await client.patch(
        f"{PRODUCTS}{made.json()['id']}/", json={"data": {"b": half}}, headers=h
    )
    assert patched.status_code == 400 and "limit" in patched.json()["detail"], patched.text[:300]

    bulk = await client.post(
        f"{PRODUCTS}bulk/",
        headers=h,
        json={
            "products": [
                {"sku": "b-big", "a": big},
                {"sku": "b-ok", "a": "fine"},
                {"sku": "p-half", "b": half},
                {"sku": "b-half", "a": half},
            ]
        },
    )
    assert bulk.status_code == 200, bulk.text[:300]
    result = bulk.json()
    assert (result["created"], result["updated"], result["failed"]) == (2, 0, 2), {
        k: result[k] for k in ("created", "updated")
    }
    assert {e["sku"]: e["index"] for e in result["errors"]} == {"b-big": 0, "p-half": 2}
    assert all("limit" in e["detail"] for e in result["errors"])

    # import: a row that, merged with the stored product, would be too large is rejected
    content = f"sku,b\nb-half,{half}\nb-ok,small\n".encode()
    job = (await upload(client, h, content)).json()
    confirm = await client.post(
        f"{IMPORT}/{job['job_id']}/confirm/",
        headers=h,
        json={"mapping": {"sku": "sku", "b": "b"}, "schema": fields},
    )
    assert confirm.status_code == 202, confirm.text
    done = await wait_done(client, h, job["job_id"])
    assert (done["updated"], done["failed"]) == (1, 1), done
    assert done["errors"][0]["sku"] == "b-half" and "limit" in done["errors"][0]["detail"]

    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        sizes = dict(
            await conn.fetch(
                f"SELECT sku, octet_length(data::text) FROM products WHERE {tenant_is('products')}",
                tenant.id,
            )
        )
    finally:
        await conn.close()
    assert set(sizes) == {"p-half", "b-ok", "b-half"}
    assert max(sizes.values()) < MiB
