"""Shopify product exports: variant rows inherit their handle's product-level cells and become
variations of the handle's first variant (API with a real worker, and in-process slices)."""

import csv
import io

import openpyxl
import pytest

from app.imports import service, tasks
from app.imports.schemas import ConfirmIn
from app.imports.variants import IMAGES_HEADER, VARIATION_HEADER, ShopifyVariants
from tests.imports.conftest import IMPORT, confirm, upload, wait_done
from tests.imports.test_import_api import products_by_sku

# The columns of Shopify's product CSV template, in its order (help.shopify.com, "Using CSV files to
# import and export products"); product-level cells are filled on a handle's first row only.
HEADER = [
    "Handle", "Title", "Body (HTML)", "Vendor", "Product Category", "Type", "Tags", "Published",
    "Option1 Name", "Option1 Value", "Option2 Name", "Option2 Value", "Option3 Name", "Option3 Value",
    "Variant SKU", "Variant Grams", "Variant Inventory Tracker", "Variant Inventory Qty", "Variant Inventory Policy",
    "Variant Fulfillment Service", "Variant Price", "Variant Compare At Price", "Variant Requires Shipping",
    "Variant Taxable", "Variant Barcode", "Image Src", "Image Position", "Image Alt Text", "Gift Card", "SEO Title",
    "SEO Description", "Variant Image", "Variant Weight Unit", "Variant Tax Code", "Cost per item", "Status",
]  # fmt: skip


def row(**cells: str) -> list[str]:
    named = {h.replace(" ", "_").replace("(", "").replace(")", "").lower(): h for h in HEADER}
    out = dict.fromkeys(HEADER, "")
    for key, value in cells.items():
        out[named[key]] = value
    return [out[h] for h in HEADER]


def product_rows() -> list[list[str]]:
    """3 products, 4 + 3 + 2 variants, and an extra image row; only first rows carry product-level cells."""
    rows = [
        row(handle="ocean-tee", title="Ocean Tee", body_html="<p>Soft <b>organic</b> cotton</p>", vendor="Wave Co",
            type="T-Shirts", tags="summer, cotton", published="TRUE", option1_name="Size", option1_value="S",
            option2_name="Color", option2_value="Blue", variant_sku="OT-S-BL", variant_grams="180", variant_price="19.99",
            variant_barcode="0012345678905", image_src="https://cdn.example.org/ot-1.jpg", image_position="1",
            status="active"),
        row(handle="ocean-tee", option1_value="M", option2_value="Blue", variant_sku="OT-M-BL", variant_grams="190",
            variant_price="19.99", variant_barcode="0012345678912"),
        row(handle="ocean-tee", image_src="https://cdn.example.org/ot-2.jpg", image_position="2"),
        row(handle="ocean-tee", option1_value="L", option2_value="Blue", variant_sku="OT-L-BL", variant_grams="200",
            variant_price="21.99"),
        row(handle="ocean-tee", option1_value="L", option2_value="Sand", variant_sku="OT-L-SA", variant_grams="200",
            variant_price="21.99"),
        row(handle="trail-boot", title="Trail Boot", body_html="<p>Waterproof</p>", vendor="Peak Gear", type="Boots",
            tags="hiking", published="FALSE", option1_name="Size", option1_value="42", variant_sku="TB-42",
            variant_grams="950", variant_price="129.00", status="draft"),
        row(handle="trail-boot", option1_value="43", variant_sku="TB-43", variant_grams="960", variant_price="129.00"),
        row(handle="trail-boot", option1_value="44", variant_sku="TB-44", variant_grams="970", variant_price="134.00",
            status="draft"),
        row(handle="city-cap", title="City Cap", vendor="Urban Hat", type="Caps", published="TRUE",
            option1_name="Color", option1_value="Black", variant_sku="CC-BK", variant_grams="80", variant_price="24.50",
            status="active"),
        row(handle="city-cap", option1_value="Grey", variant_sku="CC-GY", variant_grams="80", variant_price="24.50"),
    ]  # fmt: skip
    return rows


def feed_csv() -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([HEADER, *product_rows()])
    return out.getvalue().encode()


def feed_xlsx() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for cells in [HEADER, *product_rows()]:
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


MAPPING = {
    "Variant SKU": "sku",
    "Title": "name",
    "Published": "status",
    "Vendor": "vendor",
    "Type": "product_type",
    "Option1 Value": "option1",
    "Variant Price": "price",
    VARIATION_HEADER: "variation_of",
    "Status": "shopify_status",
}
SCHEMA = [
    {"name": "vendor", "type": "string"},
    {"name": "product_type", "type": "string"},
    {"name": "option1", "type": "string"},
    {"name": "price", "type": "number"},
    {"name": "shopify_status", "type": "string"},
]

EXPECTED = {  # sku: (name, status, vendor, shopify status, variation_of, option1, price)
    "OT-S-BL": ("Ocean Tee", "active", "Wave Co", "active", None, "S", 19.99),
    "OT-M-BL": ("Ocean Tee", "active", "Wave Co", "active", "OT-S-BL", "M", 19.99),
    "OT-L-BL": ("Ocean Tee", "active", "Wave Co", "active", "OT-S-BL", "L", 21.99),
    "OT-L-SA": ("Ocean Tee", "active", "Wave Co", "active", "OT-S-BL", "L", 21.99),
    "TB-42": ("Trail Boot", "inactive", "Peak Gear", "draft", None, "42", 129.0),
    "TB-43": ("Trail Boot", "inactive", "Peak Gear", "draft", "TB-42", "43", 129.0),
    "TB-44": ("Trail Boot", "inactive", "Peak Gear", "draft", "TB-42", "44", 134.0),
    "CC-BK": ("City Cap", "active", "Urban Hat", "active", None, "Black", 24.5),
    "CC-GY": ("City Cap", "active", "Urban Hat", "active", "CC-BK", "Grey", 24.5),
}


def stored(products: dict[str, dict]) -> dict[str, tuple]:
    return {
        sku: (
            p["name"], p["status"], p["data"].get("vendor"), p["data"].get("shopify_status"), p["variation_of"],
            p["data"].get("option1"), p["data"].get("price"),
        )
        for sku, p in products.items()
    }  # fmt: skip


@pytest.mark.parametrize(
    "make, filename", [(feed_csv, "products_export.csv"), (feed_xlsx, "products_export.xlsx")]
)
async def test_variant_rows_inherit_their_product(client, tenant, worker, make, filename):
    r = await upload(client, tenant.editor, make(), filename)
    assert r.status_code == 201, r.text
    job = r.json()
    headers = [c["header"] for c in job["columns"]]
    assert headers == [*HEADER, VARIATION_HEADER, IMAGES_HEADER]
    assert job["suggested_mapping"][VARIATION_HEADER] == "variation_of"
    assert (
        job["suggested_mapping"]["Variant SKU"] == "sku"
        and job["suggested_mapping"]["Title"] == "name"
    )
    samples = {c["header"]: c["samples"] for c in job["columns"]}
    assert samples[VARIATION_HEADER] == ["OT-S-BL", "TB-42", "CC-BK"]

    r = await confirm(client, tenant.editor, job, mapping=MAPPING, schema=SCHEMA)
    assert r.status_code == 202, r.text
    done = await wait_done(client, tenant.editor, job["job_id"])
    assert done["status"] == "done", done
    # 9 variants; the image row is no product of its own: it updates the handle's first variant
    assert (done["processed_rows"], done["created"], done["failed"]) == (10, 9, 0), done
    assert stored(await products_by_sku(client, tenant.viewer)) == EXPECTED


@pytest.mark.parametrize(
    "make, filename", [(feed_csv, "products_export.csv"), (feed_xlsx, "products_export.xlsx")]
)
async def test_inheritance_survives_slices(client, tenant, worker_ctx, monkeypatch, make, filename):
    """Every slice ends after 2 rows: a handle's later rows are read by another run, which gets the
    handle's first row from the job (and, for a workbook, resumes after the committed sheet row)."""
    job = (await upload(client, tenant.editor, make(), filename)).json()
    async with worker_ctx["sessionmaker"]() as session:  # confirmed onto the private queue
        session.info["tenant_id"] = tenant.id
        body = ConfirmIn.model_validate({"mapping": MAPPING, "schema": SCHEMA})
        await service.confirm_import(
            session, arq=worker_ctx["redis"], job_id=job["job_id"], body=body
        )
        await session.commit()
    monkeypatch.setattr(tasks, "SLICE_SECONDS", 0)
    monkeypatch.setattr(tasks, "BATCH_ROWS", 2)
    runs = 0
    while (await tasks.import_csv(worker_ctx, job["job_id"]))["status"] == "continue":
        runs += 1
    assert runs >= 4
    done = (await client.get(f"{IMPORT}/{job['job_id']}/", headers=tenant.viewer)).json()
    assert (done["status"], done["processed_rows"], done["created"], done["failed"]) == (
        "done",
        10,
        9,
        0,
    ), done
    assert stored(await products_by_sku(client, tenant.viewer)) == EXPECTED


def test_transform_keeps_one_handle_and_leaves_other_formats_alone():
    variants = ShopifyVariants.for_headers(HEADER)
    assert variants is not None and ShopifyVariants.for_headers(["sku", "title", "handle"]) is None
    rows = [variants.apply(r) for r in product_rows()]
    title, vendor, sku = HEADER.index("Title"), HEADER.index("Vendor"), HEADER.index("Variant SKU")
    # the image row updates the handle's first variant with the images so far, nothing else
    assert (rows[2][sku], rows[2][title], rows[2][-1]) == (
        "OT-S-BL",
        "",
        "https://cdn.example.org/ot-1.jpg,https://cdn.example.org/ot-2.jpg",
    )
    variant_rows = [r for i, r in enumerate(rows) if r and i != 2]
    assert [(r[title], r[vendor], r[sku], r[-2], r[-1]) for r in variant_rows][:3] == [
        ("Ocean Tee", "Wave Co", "OT-S-BL", "", "https://cdn.example.org/ot-1.jpg"),
        ("Ocean Tee", "Wave Co", "OT-M-BL", "OT-S-BL", ""),
        ("Ocean Tee", "Wave Co", "OT-L-BL", "OT-S-BL", ""),
    ]
    assert (
        rows[7][HEADER.index("Status")] == "draft" and rows[6][HEADER.index("Published")] == "FALSE"
    )
    # a new transform restored from the state continues the current handle
    resumed = ShopifyVariants.for_headers(HEADER)
    fresh = ShopifyVariants.for_headers(HEADER)
    for r in product_rows()[:6]:
        fresh.apply(r)
    resumed.restore(fresh.state())
    assert resumed.apply(product_rows()[6])[-2] == "TB-42"
    assert resumed.apply(product_rows()[6])[title] == "Trail Boot"
