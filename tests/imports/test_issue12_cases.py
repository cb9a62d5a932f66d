"""The five-row cases of issue 12, through the API with the real worker and the suggestion accepted
unchanged: the stored values are the ones written in the file, and no valid row is rejected."""

from tests.imports.conftest import import_file
from tests.imports.test_import_api import products_by_sku


def column(job: dict, header: str) -> dict:
    return next(c for c in job["columns"] if c["header"] == header)


async def test_three_decimals_beside_two_are_decimals(client, tenant, worker):
    feed = (
        b"sku,name,price,weight_kg\nW-1,Box,12.50,3.700\nW-2,Crate,9.99,6.257\nW-3,Bag,4.00,0.975\n"
    )
    job, done = await import_file(client, tenant.editor, feed)
    assert column(job, "weight_kg")["inferred_type"] == "number"
    assert (done["created"], done["failed"]) == (3, 0), done["errors"]
    products = await products_by_sku(client, tenant.viewer)
    assert [products[s]["data"]["weight_kg"] for s in ("W-1", "W-2", "W-3")] == [3.7, 6.257, 0.975]


async def test_codes_zip_codes_part_numbers_and_versions_stay_as_written(client, tenant, worker):
    feed = (
        b"sku,name,supplier_code,zip,part,firmware\n"
        b"C-1,Pump,SKU-12,02134,1E7,1.20\nC-2,Valve,XYZ-2024,10001,2E5,1.3\nC-3,Hose,ABC 5,94105,0815,2.10\n"
    )
    job, done = await import_file(client, tenant.editor, feed)
    assert {
        column(job, h)["inferred_type"] for h in ("supplier_code", "zip", "part", "firmware")
    } == {"string"}
    assert (done["created"], done["failed"]) == (3, 0), done["errors"]
    products = await products_by_sku(client, tenant.viewer)
    got = [
        [products[s]["data"][k] for k in ("supplier_code", "zip", "part", "firmware")]
        for s in ("C-1", "C-2", "C-3")
    ]
    assert got == [
        ["SKU-12", "02134", "1E7", "1.20"],
        ["XYZ-2024", "10001", "2E5", "1.3"],
        ["ABC 5", "94105", "0815", "2.10"],
    ]


async def test_html_with_angle_brackets_is_a_description_not_categories(client, tenant, worker):
    html = "<div><p>Oak chair &gt; solid wood</p><ul><li>Seat height 45 cm</li><li>Load > 120 kg</li></ul></div>"
    feed = "".join(f'H-{i},Chair {i},"{html}"\n' for i in range(5))
    job, done = await import_file(client, tenant.editor, ("sku,name,Description\n" + feed).encode())
    assert job["suggested_mapping"]["Description"] == "description"
    assert column(job, "Description")["inferred_type"] == "text"
    assert (done["created"], done["failed"]) == (5, 0), done["errors"]
    products = await products_by_sku(client, tenant.viewer)
    assert products["H-0"]["data"]["description"] == html and products["H-0"]["categories"] == []
    r = await client.get("/api/pim/categories/", headers=tenant.viewer)
    assert r.json()["results"] == []  # no junk categories


async def test_free_text_with_semicolons_is_not_split_and_comma_separated_paths_are(
    client, tenant, worker
):
    feed = (
        b"sku,name,note,category\n"
        b'T-1,Shirt,"Cotton; machine washable at 40 degrees",Clothing > Tshirts\n'
        b'T-2,Shirt Men,"Slim fit; long sleeves, buttoned collar","Clothing > Tshirts, Clothing > Men"\n'
        b"T-3,Cap,One size,Clothing > Hats\n"
    )
    job, done = await import_file(client, tenant.editor, feed)
    assert (
        column(job, "note")["inferred_type"] == "string"
        and job["conventions"]["category_separator"] == ","
    )
    assert (done["created"], done["failed"]) == (3, 0), done["errors"]
    products = await products_by_sku(client, tenant.viewer)
    assert products["T-2"]["data"]["note"] == "Slim fit; long sleeves, buttoned collar"
    r = await client.get("/api/pim/categories/", headers=tenant.viewer)
    by_id = {c["id"]: c["path"] for c in r.json()["results"]}
    assert {by_id[i] for i in products["T-2"]["categories"]} == {
        "Clothing > Tshirts",
        "Clothing > Men",
    }


async def test_brand_is_no_enum_when_later_rows_bring_new_brands(client, tenant, worker):
    # more than the first megabyte: the first 6,000 rows have 4 brands, the later ones 12 others
    early = ["Hay", "Vitra", "Muuto", "Flos"]
    late = [
        "Tolix",
        "Fermob",
        "Kartell",
        "Artemide",
        "Ikea",
        "Thonet",
        "Magis",
        "Alessi",
        "Knoll",
        "Cassina",
        "Moroso",
        "Zanotta",
    ]
    filler = "x" * 120
    rows = [
        f"B-{i:05d},Chair {i},{early[i % 4] if i < 6000 else late[i % 12]},{filler}\n"
        for i in range(12_000)
    ]
    feed = ("sku,name,brand,notes\n" + "".join(rows)).encode()
    assert len(feed) > (1 << 20)
    job, done = await import_file(client, tenant.editor, feed)
    brand = column(job, "brand")
    assert brand["inferred_type"] == "string" and brand["suggested_field"] == "brand"
    schema = {f["name"]: f for f in job["suggested_schema"]}
    assert schema["brand"]["type"] == "string"
    assert (done["created"], done["failed"]) == (12_000, 0), done["errors"][:3]
    products = await products_by_sku(client, tenant.viewer)
    assert products["B-11999"]["data"]["brand"] == late[11999 % 12]


async def test_good_names_are_kept_and_synonyms_find_existing_fields(client, tenant, worker):
    feed = b"sku,name,in_stock,gtin,link\nN-1,Lamp,yes,04006381333931,https://shop.example.com/n-1\nN-2,Desk,no,04006381333948,https://shop.example.com/n-2\n"
    job, done = await import_file(client, tenant.editor, feed)
    m = job["suggested_mapping"]
    assert (m["in_stock"], m["gtin"], m["link"]) == ("in_stock", "gtin", "link")
    assert (done["created"], done["failed"]) == (2, 0), done["errors"]
    products = await products_by_sku(client, tenant.viewer)
    assert products["N-1"]["data"] == {
        "in_stock": True,
        "gtin": "04006381333931",
        "link": "https://shop.example.com/n-1",
    }
