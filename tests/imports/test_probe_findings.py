"""Findings of a black-box probe of the import (issue 12), through the API with the real worker:
upload, confirm, read the stored products back."""

import datetime as dt
import io

import openpyxl

from app.imports import tasks
from tests.imports.conftest import (
    IMPORT,
    confirm,
    confirm_on_private_queue,
    import_file,
    upload,
    wait_done,
)
from tests.imports.test_import_api import products_by_sku
from tests.imports.test_xlsx_import import upload_xlsx, workbook_bytes


def column(job: dict, header: str) -> dict:
    return next(c for c in job["columns"] if c["header"] == header)


def rejected(done: dict) -> dict[str | None, str]:
    return {e["sku"]: e["detail"] for e in done["errors"]}


# --- 1. status words --------------------------------------------------------------------------

STATUS_FEED = (
    b"sku,name,Status\nS-1,Lamp,active\nS-2,Desk,draft\nS-3,Chair,archived\nS-4,Shelf,Active\n"
    b"S-5,Stool,ACTIVE\nS-6,Sofa,zombie\n"
)


async def test_a_status_column_targets_the_status_with_a_shown_value_mapping(
    client, tenant, worker
):
    job, done = await import_file(client, tenant.editor, STATUS_FEED)
    assert job["suggested_mapping"]["Status"] == "status"
    assert job["suggested_value_mapping"] == {
        "Status": {"draft": "inactive", "archived": "inactive"}
    }
    assert "zombie" in " ".join(column(job, "Status")["warnings"])
    assert (done["created"], done["failed"]) == (5, 1), done["errors"]
    assert "not a status" in rejected(done)["S-6"]  # an unknown word is never silently active
    products = await products_by_sku(client, tenant.viewer)
    assert {s: p["status"] for s, p in products.items()} == {
        "S-1": "active",
        "S-2": "inactive",
        "S-3": "inactive",
        "S-4": "active",
        "S-5": "active",
    }


async def test_the_suggested_value_mapping_is_overridden_by_the_confirmed_one(
    client, tenant, worker
):
    _job, done = await import_file(
        client,
        tenant.editor,
        STATUS_FEED,
        value_mapping={"Status": {"draft": "active", "zombie": "deleted"}},
    )
    # the column's mapping is the confirmed one only: 'archived' is no longer read
    assert (done["created"], done["failed"]) == (5, 1), done["errors"]
    assert "not a status" in rejected(done)["S-3"]
    products = await products_by_sku(client, tenant.viewer)
    assert [products[s]["status"] for s in ("S-1", "S-2", "S-6")] == [
        "active",
        "active",
        "deleted",
    ]


SHOPIFY_HEADER = (
    b"Handle,Title,Body (HTML),Vendor,Published,Option1 Name,Option1 Value,Variant SKU,"
    b"Variant Price,Image Src,Image Position,Status\n"
)


async def test_shopify_status_and_its_variants_inherit_it(client, tenant, worker):
    feed = SHOPIFY_HEADER + (
        b"tee,Tee,<p>x</p>,Acme,TRUE,Size,S,TEE-S,19.99,https://cdn.example.org/tee-1.jpg,1,draft\n"
        b"tee,,,,,,M,TEE-M,19.99,,,\n"
        b"cap,Cap,<p>y</p>,Acme,TRUE,Title,Default Title,CAP-1,9.00,,,archived\n"
        b"mug,Mug,<p>z</p>,Acme,TRUE,Title,Default Title,MUG-1,5.00,,,active\n"
    )
    job, done = await import_file(client, tenant.editor, feed)
    assert job["format"] == "shopify" and job["suggested_mapping"]["Status"] == "status"
    assert job["suggested_value_mapping"]["Status"] == {
        "draft": "inactive",
        "archived": "inactive",
    }
    assert (done["created"], done["failed"]) == (4, 0), done["errors"]
    products = await products_by_sku(client, tenant.viewer)
    assert {s: p["status"] for s, p in products.items()} == {
        "TEE-S": "inactive",
        "TEE-M": "inactive",  # the variant row inherits its product's status
        "CAP-1": "inactive",
        "MUG-1": "active",
    }


WOO_HEADER = b"ID,Type,SKU,Name,Published,Is featured?,Visibility in catalog,Regular price\n"


async def test_woocommerce_published_is_the_status(client, tenant, worker):
    """Published is 1 (published), 0 (private) or -1 (draft); another value rejects its row."""
    feed = WOO_HEADER + (
        b"10,simple,W-PUB,Lamp,1,0,visible,10\n"
        b"11,simple,W-PRIV,Desk,0,0,visible,20\n"
        b"12,simple,W-DRAFT,Chair,-1,0,visible,30\n"
        b"13,simple,W-ODD,Stool,2,0,visible,40\n"
    )
    job, done = await import_file(client, tenant.editor, feed)
    assert job["format"] == "woocommerce" and job["suggested_mapping"]["Published"] == "status"
    assert job["suggested_value_mapping"] == {
        "Published": {"1": "active", "0": "inactive", "-1": "inactive"}
    }
    assert "'2'" in " ".join(column(job, "Published")["warnings"])
    assert (done["created"], done["failed"]) == (3, 1), done["errors"]
    assert "not a status" in rejected(done)["W-ODD"]  # never silently active
    products = await products_by_sku(client, tenant.viewer)
    assert {s: p["status"] for s, p in products.items()} == {
        "W-PUB": "active",
        "W-PRIV": "inactive",
        "W-DRAFT": "inactive",
    }
    assert all("published" not in p["data"] for p in products.values())


# --- 2. what the suggestion has not seen ------------------------------------------------------


async def test_a_sampled_suggestion_says_how_much_it_saw_and_points_to_the_dry_run(
    client, tenant, worker
):
    rows = [f"B-{i:07d},Bolt {i},{i % 97}.25\n" for i in range(120_000)]
    rows[70_000] = "B-0070000,Bolt odd,call us\n"  # past the sampled windows
    feed = ("sku,name,price\n" + "".join(rows)).encode()
    r = await upload(client, tenant.editor, feed)
    assert r.status_code == 201, r.text
    job = r.json()
    price = column(job, "price")
    assert price["inferred_type"] == "number"
    note = " ".join(price["warnings"])
    assert "sampled" in note and "dry run" in note, price
    assert price["confidence"] < 0.9
    r = await client.post(
        f"{IMPORT}/{job['job_id']}/confirm/", headers=tenant.editor, json={"dry_run": True}
    )
    assert r.status_code == 200, r.text
    assert r.json()["dry_run"]["reject"] == 1

    small = await upload(client, tenant.editor, b"sku,name,price\nA,B,1.25\nC,D,2.50\n")
    assert not any("sampled" in w for w in column(small.json(), "price")["warnings"])


# --- 3. WooCommerce parent references ---------------------------------------------------------

WOO_HEADER = (
    b'ID,Type,SKU,Name,Published,"Is featured?","Visibility in catalog","Regular price",'
    b"Categories,Parent\n"
)


async def test_woocommerce_parent_post_ids_resolve_to_the_parents_sku(client, tenant, worker):
    feed = WOO_HEADER + (
        b"101,variable,tee,Tee,1,0,visible,,Clothing,\n"
        b"102,variation,tee-red,Tee - Red,1,0,visible,20,,id:101\n"
        b"103,variation,tee-blue,Tee - Blue,1,0,visible,21,,tee\n"
        b"104,variation,tee-gold,Tee - Gold,1,0,visible,22,,id:999\n"
    )
    job, done = await import_file(client, tenant.editor, feed)
    assert job["format"] == "woocommerce"
    assert (done["created"], done["failed"]) == (3, 1), done["errors"]
    [error] = done["errors"]
    assert (error["row"], error["sku"]) == (5, "tee-gold") and "id:999" in error["detail"], error
    products = await products_by_sku(client, tenant.viewer)
    assert products["tee-red"]["variation_of"] == "tee"
    assert products["tee-blue"]["variation_of"] == "tee"  # a plain SKU parent
    assert products["tee"]["variation_of"] is None


async def test_woocommerce_parents_resolve_across_slices(client, tenant, worker_ctx, monkeypatch):
    """Every slice ends after 2 rows: a later run knows the post IDs of the rows before it."""
    feed = WOO_HEADER + (
        b"101,variable,tee,Tee,1,0,visible,,Clothing,\n"
        b"201,variable,cap,Cap,1,0,visible,,Clothing,\n"
        b"102,variation,tee-red,Tee - Red,1,0,visible,20,,id:101\n"
        b"103,simple,mug,Mug,1,0,visible,5,,\n"
        b"104,variation,tee-blue,Tee - Blue,1,0,visible,21,,id:101\n"
        b"202,variation,cap-black,Cap - Black,1,0,visible,9,,id:201\n"
    )
    job = (await upload(client, tenant.editor, feed)).json()
    await confirm_on_private_queue(worker_ctx, tenant, job)
    monkeypatch.setattr(tasks, "SLICE_SECONDS", 0)
    monkeypatch.setattr(tasks, "BATCH_ROWS", 2)
    runs = 0
    while (await tasks.import_csv(worker_ctx, job["job_id"]))["status"] == "continue":
        runs += 1
    assert runs >= 2
    done = (await client.get(f"{IMPORT}/{job['job_id']}/", headers=tenant.viewer)).json()
    assert (done["created"], done["failed"]) == (6, 0), done["errors"]
    products = await products_by_sku(client, tenant.viewer)
    assert [products[s]["variation_of"] for s in ("tee-red", "tee-blue", "cap-black")] == [
        "tee",
        "tee",
        "cap",
    ]


# --- 4. stray quotes --------------------------------------------------------------------------


async def test_a_stray_quote_rejects_its_row_and_never_swallows_the_next(client, tenant, worker):
    feed = (
        b"sku,name,price\n"
        b'SKU-1,Widget 5" screen,12.50\n'
        b'SKU-2,"Gadget,9.99\n'
        b"SKU-3,Thing,4.00\n"
        b"SKU-4,Other,5.00\n"
        b'SKU-5,"Cable, 2 m",3.00\n'
    )
    _job, done = await import_file(client, tenant.editor, feed)
    assert (done["created"], done["failed"]) == (4, 1), done["errors"]
    [error] = done["errors"]
    assert error["row"] == 3 and "quote" in error["detail"], error
    products = await products_by_sku(client, tenant.viewer)
    assert products["SKU-1"]["name"] == 'Widget 5" screen'
    assert products["SKU-1"]["data"]["price"] == 12.5
    assert products["SKU-3"]["name"] == "Thing" and products["SKU-4"]["data"]["price"] == 5.0
    assert products["SKU-5"]["name"] == "Cable, 2 m"


async def test_a_quote_that_closes_rows_later_does_not_merge_them(client, tenant, worker):
    feed = (
        b"sku,name,price\n"
        b'SKU-1,"Gadget 7,9.99\n'
        b"SKU-2,Thing,4.00\n"
        b'SKU-3,Other 5",5.00\n'
        b"SKU-4,Last,6.00\n"
        b'SKU-5,"Lamp\nwith shade",7.00\n'
    )
    _job, done = await import_file(client, tenant.editor, feed)
    products = await products_by_sku(client, tenant.viewer)
    assert products["SKU-2"]["name"] == "Thing" and products["SKU-4"]["name"] == "Last"
    assert products["SKU-5"]["name"] == "Lamp\nwith shade"  # a real multi-line cell stays one
    assert [e["row"] for e in done["errors"]] == [2], done["errors"]
    assert "quote" in done["errors"][0]["detail"]
    assert not any("\n" in p["name"] for s, p in products.items() if s != "SKU-5")


# --- 5. XLSX number formats -------------------------------------------------------------------


async def test_xlsx_zero_padded_and_text_formats_give_the_displayed_text(client, tenant, worker):
    rows = [
        ["SKU", "Name", "ZIP", "Lot", "Price", "Released"],
        ["X-1", "Lamp", 2134, 7, 12.5, dt.date(2024, 12, 4)],
        ["X-2", "Desk", 10001, 123, 3.0, dt.date(2023, 1, 31)],
    ]
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for r in (2, 3):
        sheet.cell(r, 3).number_format = "00000"
        sheet.cell(r, 4).number_format = "@"
        sheet.cell(r, 6).number_format = "yyyy-mm-dd"
    out = io.BytesIO()
    book.save(out)
    r = await upload_xlsx(client, tenant.editor, out.getvalue())
    assert r.status_code == 201, r.text
    job = r.json()
    assert column(job, "ZIP")["inferred_type"] == "string"
    assert column(job, "ZIP")["samples"][0] == "02134"
    r = await confirm(client, tenant.editor, job)
    assert r.status_code == 202, r.text
    done = await wait_done(client, tenant.editor, job["job_id"])
    assert (done["created"], done["failed"]) == (2, 0), done["errors"]
    products = await products_by_sku(client, tenant.viewer)
    field = job["suggested_mapping"]
    x1 = products["X-1"]["data"]
    assert x1[field["ZIP"]] == "02134" and products["X-2"]["data"][field["ZIP"]] == "10001"
    # a number in a text-format cell is its text, typed like text of a CSV file
    assert column(job, "Lot")["samples"] == ["7", "123"] and x1[field["Lot"]] == 7
    assert x1[field["Price"]] == 12.5 and x1[field["Released"]] == "2024-12-04"


# --- 6. error values and NaN ------------------------------------------------------------------


async def test_error_values_and_nan_in_a_number_column_reject_their_row(client, tenant, worker):
    feed = (
        b"sku,name,price\nE-1,Lamp,1.50\nE-2,Desk,#N/A\nE-3,Chair,#VALUE!\nE-4,Shelf,#REF!\n"
        b"E-5,Stool,NaN\nE-6,Sofa,n/a\nE-7,Bed,2.50\n"
    )
    job, done = await import_file(client, tenant.editor, feed)
    assert column(job, "price")["inferred_type"] == "number"
    assert (done["created"], done["failed"]) == (3, 4), done["errors"]
    assert set(rejected(done)) == {"E-2", "E-3", "E-4", "E-5"}
    products = await products_by_sku(client, tenant.viewer)
    assert "price" not in products["E-6"]["data"]  # a null word leaves the value unset


async def test_xlsx_error_cells_in_a_number_column_reject_their_row(client, tenant, worker):
    content = workbook_bytes(
        {
            "Sheet": [
                ["SKU", "Name", "Price"],
                ["F-1", "Lamp", 1.5],
                ["F-2", "Desk", "#N/A"],
                ["F-3", "Chair", "#DIV/0!"],
                ["F-4", "Shelf", 2.5],
            ]
        }
    )
    r = await upload_xlsx(client, tenant.editor, content)
    assert r.status_code == 201, r.text
    job = r.json()
    assert column(job, "Price")["inferred_type"] == "number"
    r = await confirm(client, tenant.editor, job)
    assert r.status_code == 202, r.text
    done = await wait_done(client, tenant.editor, job["job_id"])
    assert (done["created"], done["failed"]) == (2, 2), done["errors"]
    assert set(rejected(done)) == {"F-2", "F-3"}


# --- 7. Shopify image rows --------------------------------------------------------------------


async def test_shopify_image_rows_add_their_images_to_the_product(client, tenant, worker):
    feed = SHOPIFY_HEADER + (
        b"tee,Tee,<p>x</p>,Acme,TRUE,Size,S,TEE-S,19.99,https://cdn.example.org/tee-1.jpg,1,active\n"
        b"tee,,,,,,M,TEE-M,19.99,https://cdn.example.org/tee-2.jpg,2,\n"
        b"tee,,,,,,,,,https://cdn.example.org/tee-3.jpg,3,\n"
        b"tee,,,,,,,,,https://cdn.example.org/tee-4.jpg,4,\n"
        b"cap,Cap,<p>y</p>,Acme,TRUE,Title,Default Title,CAP-1,9.00,https://cdn.example.org/cap.jpg,1,active\n"
    )
    job, done = await import_file(client, tenant.editor, feed)
    assert job["suggested_mapping"]["Images"] == "images"
    assert (done["created"], done["failed"]) == (3, 0), done["errors"]
    products = await products_by_sku(client, tenant.viewer)
    assert products["TEE-S"]["data"]["images"] == [
        f"https://cdn.example.org/tee-{i}.jpg" for i in (1, 2, 3, 4)
    ]
    assert products["TEE-S"]["name"] == "Tee" and products["TEE-M"]["variation_of"] == "TEE-S"
    assert products["CAP-1"]["data"]["images"] == ["https://cdn.example.org/cap.jpg"]


async def test_an_unknown_shopify_status_rejects_its_row(client, tenant, worker):
    feed = SHOPIFY_HEADER + (
        b"mug,Mug,<p>z</p>,Acme,TRUE,Title,Default Title,MUG-1,5.00,,,active\n"
        b"cup,Cup,<p>c</p>,Acme,TRUE,Title,Default Title,CUP-1,4.00,,,unlisted\n"
    )
    job, done = await import_file(client, tenant.editor, feed)
    assert job["suggested_mapping"]["Status"] == "status"
    assert "unlisted" in " ".join(column(job, "Status")["warnings"])
    assert (done["created"], done["failed"]) == (1, 1), done["errors"]
    assert "not a status" in rejected(done)["CUP-1"]
