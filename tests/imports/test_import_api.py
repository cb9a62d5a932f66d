"""CSV import through the API with a real worker: sample feeds, nasty feeds, errors CSV, re-import."""

import csv
import io

from tests.imports.conftest import IMPORT, confirm, import_file, upload, wait_done

PRODUCTS = "/api/pim/products/"


async def products_by_sku(client, headers) -> dict[str, dict]:
    out, page = {}, 1
    while True:
        r = await client.get(PRODUCTS, headers=headers, params={"page": page, "page_size": 200})
        assert r.status_code == 200, r.text
        for p in r.json()["results"]:
            out[p["sku"]] = p
        if not r.json()["next"]:
            return out
        page += 1


async def test_lamps_sample_suggestion_and_import(client, tenant, worker, sample_bytes):
    r = await upload(client, tenant.editor, sample_bytes("lamps_utf8.csv"), "lamps_utf8.csv")
    assert r.status_code == 201, r.text
    assert "suggest;dur=" in r.headers["server-timing"]
    job = r.json()
    assert set(job) == {
        "job_id", "status", "filename", "size_bytes", "delimiter", "encoding", "columns", "suggested_schema",
        "suggested_mapping", "mapping", "total_rows", "processed_rows", "created", "updated", "failed", "errors",
        "error", "created_at", "started_at", "finished_at",
    }
    assert job["status"] == "mapping" and job["filename"] == "lamps_utf8.csv"
    assert job["delimiter"] == "," and job["encoding"] == "utf-8" and job["total_rows"] == 300
    assert set(job["columns"][0]) == {"header", "samples", "inferred_type", "suggested_field", "confidence"}
    mapping = job["suggested_mapping"]
    assert mapping["Item Code"] == "sku" and mapping["Item Name"] == "name"
    assert mapping["Categories"] == "categories" and mapping["Active"] == "status"
    assert mapping["Unit Price"] == "price" and mapping["Image URL"] == "image_url"
    types = {c["header"]: c["inferred_type"] for c in job["columns"]}
    assert types["Unit Price"] == "number" and types["Stock Level"] == "integer" and types["Created"] == "date"
    assert types["Materials"] == "array" and types["Image URL"] == "url" and types["Item Name"] == "text"
    schema = {f["name"]: f for f in job["suggested_schema"]}
    assert schema["price"]["type"] == "number" and schema["stock"]["type"] == "integer"

    r = await confirm(client, tenant.editor, job, default_currency="EUR", default_locale="de-de")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "importing"
    done = await wait_done(client, tenant.editor, job["job_id"])
    assert done["status"] == "done", done
    assert (done["processed_rows"], done["created"], done["updated"], done["failed"]) == (300, 300, 0, 0)
    assert done["total_rows"] == 300 and done["started_at"] and done["finished_at"]

    products = await products_by_sku(client, tenant.viewer)
    assert len(products) == 300
    p0 = products["IC-20000"]
    assert p0["name"] == 'Lamp, "Arc" 0\nwith dimmer'
    assert p0["data"]["price"] == 67.03 and p0["data"]["stock"] == 35
    assert p0["data"]["material"] == ["steel", "brass"] and p0["data"]["created"] == "2024-12-04"
    assert products["IC-20005"]["status"] == "inactive"
    r = await client.get("/api/pim/categories/", headers=tenant.viewer)
    paths = {c["path"] for c in r.json()}
    assert {"Lighting", "Lighting > Desk", "Lighting > Floor", "Office", "Office > Lamps"} <= paths
    assert len(products["IC-20001"]["categories"]) == 2
    r = await client.get("/api/pim/schema/", headers=tenant.viewer)
    assert r.json()["default_currency"] == "EUR" and r.json()["default_locale"] == "de-de"


async def test_chaises_cp1252_semicolon_decimal_comma(client, tenant, worker, sample_bytes):
    job, done = await import_file(client, tenant.editor, sample_bytes("chaises_cp1252.csv"))
    assert job["encoding"] == "cp1252" and job["delimiter"] == ";"
    assert job["suggested_mapping"]["Référence"] == "sku" and job["suggested_mapping"]["Désignation"] == "name"
    assert done["status"] == "done" and (done["created"], done["failed"]) == (150, 0)
    products = await products_by_sku(client, tenant.viewer)
    p = products["FR-3000"]
    assert p["name"] == "Chaise empilable n°0"
    assert p["data"]["price"] == 304.22 and p["data"]["available"] is True
    assert p["data"]["release_date"] == "2023-07-18"
