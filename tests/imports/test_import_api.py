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
        "job_id",
        "status",
        "filename",
        "size_bytes",
        "delimiter",
        "encoding",
        "columns",
        "suggested_schema",
        "suggested_mapping",
        "suggested_value_mapping",
        "mapping",
        "total_rows",
        "processed_rows",
        "created",
        "updated",
        "failed",
        "errors",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "conventions",
        "dry_run",
        "format",
    }
    assert job["format"] is None
    assert job["status"] == "mapping" and job["filename"] == "lamps_utf8.csv"
    assert job["delimiter"] == "," and job["encoding"] == "utf-8" and job["total_rows"] == 300
    assert set(job["columns"][0]) == {
        "header",
        "samples",
        "inferred_type",
        "suggested_field",
        "confidence",
        "reason",
        "warnings",
    }
    mapping = job["suggested_mapping"]
    assert mapping["Item Code"] == "sku" and mapping["Item Name"] == "name"
    assert mapping["Categories"] == "categories" and mapping["Active"] == "status"
    # the tenant has no fields: new fields are named after their headers, not after synonyms
    assert mapping["Unit Price"] == "unit_price" and mapping["Image URL"] == "image_url"
    types = {c["header"]: c["inferred_type"] for c in job["columns"]}
    assert (
        types["Unit Price"] == "number"
        and types["Stock Level"] == "integer"
        and types["Created"] == "date"
    )
    assert (
        types["Materials"] == "array"
        and types["Image URL"] == "url"
        and types["Item Name"] == "text"
    )
    schema = {f["name"]: f for f in job["suggested_schema"]}
    assert schema["unit_price"]["type"] == "number" and schema["stock_level"]["type"] == "integer"

    r = await confirm(client, tenant.editor, job, default_currency="EUR", default_locale="de-de")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "importing"
    done = await wait_done(client, tenant.editor, job["job_id"])
    assert done["status"] == "done", done
    assert (done["processed_rows"], done["created"], done["updated"], done["failed"]) == (
        300,
        300,
        0,
        0,
    )
    assert done["total_rows"] == 300 and done["started_at"] and done["finished_at"]

    products = await products_by_sku(client, tenant.viewer)
    assert len(products) == 300
    p0 = products["IC-20000"]
    assert p0["name"] == 'Lamp, "Arc" 0\nwith dimmer'
    assert p0["data"]["unit_price"] == 67.03 and p0["data"]["stock_level"] == 35
    assert p0["data"]["materials"] == ["steel", "brass"] and p0["data"]["created"] == "2024-12-04"
    assert products["IC-20005"]["status"] == "inactive"
    r = await client.get("/api/pim/categories/", headers=tenant.viewer)
    paths = {c["path"] for c in r.json()["results"]}
    assert {"Lighting", "Lighting > Desk", "Lighting > Floor", "Office", "Office > Lamps"} <= paths
    assert len(products["IC-20001"]["categories"]) == 2
    r = await client.get("/api/pim/schema/", headers=tenant.viewer)
    assert r.json()["default_currency"] == "EUR" and r.json()["default_locale"] == "de-de"


async def test_chaises_cp1252_semicolon_decimal_comma(client, tenant, worker, sample_bytes):
    job, done = await import_file(client, tenant.editor, sample_bytes("chaises_cp1252.csv"))
    assert job["encoding"] == "cp1252" and job["delimiter"] == ";"
    assert (
        job["suggested_mapping"]["Référence"] == "sku"
        and job["suggested_mapping"]["Désignation"] == "name"
    )
    assert done["status"] == "done" and (done["created"], done["failed"]) == (150, 0)
    products = await products_by_sku(client, tenant.viewer)
    p = products["FR-3000"]
    assert p["name"] == "Chaise empilable n°0"
    assert p["data"]["prix_ttc"] == 304.22 and p["data"]["disponible"] is True
    assert p["data"]["date_de_sortie"] == "2023-07-18"


NASTY = (
    "\ufeffArtikelnummer;Bezeichnung;Preis;Farbe;Farbe;Lager;Aktiv;Erscheinungsdatum;Tags\r\n"
    'A-1;Stuhl "Klassik";1.234,56;rot;dunkelrot;12;ja;18.07.2023;wohnen|küche\r\n'
    'A-2;"Tisch\r\nmit Schublade; groß";99,90;blau;;3;nein;01.02.2024;büro\r\n'
    "\r\n"
    "A-3;Lampe;12,5;grün;;;ja;;\r\n"
    ";Ohne SKU;5,00;rot;;1;ja;;\r\n"
    "A-4;Sofa;teuer;rot;;1;ja;;\r\n"
    "A-5;Regal;10,00;weiß;;2;nein;02.03.2024;wohnen;EXTRA\r\n"
    "A-6;Hocker\r\n"
    ";;;;;;;;\r\n"
    "A-1;Stuhl Klassik neu;;;;;;;\r\n"
).encode("utf-8")


async def test_nasty_feed_counts_errors_csv_and_reimport(client, tenant, worker):
    job, done = await import_file(client, tenant.editor, NASTY)
    assert job["encoding"] == "utf-8-sig" and job["delimiter"] == ";"
    headers = [c["header"] for c in job["columns"]]
    assert headers == [
        "Artikelnummer",
        "Bezeichnung",
        "Preis",
        "Farbe",
        "Farbe (2)",
        "Lager",
        "Aktiv",
        "Erscheinungsdatum",
        "Tags",
    ]
    m = job["suggested_mapping"]
    assert (m["Artikelnummer"], m["Bezeichnung"], m["Preis"], m["Farbe"], m["Aktiv"]) == (
        "sku",
        "name",
        "preis",
        "farbe",
        "status",
    )
    assert m["Farbe (2)"] == "farbe_2" and m["Lager"] == "lager" and m["Tags"] == "tags"
    types = {c["header"]: c["inferred_type"] for c in job["columns"]}
    assert (
        types["Preis"] == "number"
        and types["Erscheinungsdatum"] == "date"
        and types["Lager"] == "integer"
    )

    assert done["status"] == "done", done
    # data rows 2,3,5,6,7,8,9,11 (4 and 10 are blank); 6: no SKU, 7: bad price, 8: extra cell
    assert (done["processed_rows"], done["created"], done["updated"], done["failed"]) == (
        8,
        4,
        1,
        3,
    )
    assert done["total_rows"] == 8
    assert [(e["row"], e["sku"]) for e in done["errors"]] == [(6, None), (7, "A-4"), (8, "A-5")]
    assert "sku" in done["errors"][0]["detail"] and "preis" in done["errors"][1]["detail"]
    assert "cells" in done["errors"][2]["detail"]

    products = await products_by_sku(client, tenant.viewer)
    assert set(products) == {"A-1", "A-2", "A-3", "A-6"}
    a1 = products["A-1"]
    assert (
        a1["name"] == "Stuhl Klassik neu"
    )  # the later row won, the earlier row's other cells stay
    assert (
        a1["data"]["preis"] == 1234.56
        and a1["data"]["lager"] == 12
        and a1["data"]["tags"] == ["wohnen", "küche"]
    )
    assert a1["data"]["erscheinungsdatum"] == "2023-07-18" and a1["data"]["farbe_2"] == "dunkelrot"
    assert (
        products["A-2"]["name"] == "Tisch\r\nmit Schublade; groß"
        and products["A-2"]["status"] == "inactive"
    )
    assert "lager" not in products["A-3"]["data"]  # an empty cell leaves the value unset
    assert products["A-6"]["name"] == "Hocker" and products["A-6"]["data"] == {}

    r = await client.get(f"{IMPORT}/{job['job_id']}/errors/", headers=tenant.viewer)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == [*headers, "", "row", "error"]  # one extra column: row 8 had ten cells
    assert [row[-2] for row in rows[1:]] == ["6", "7", "8"]
    assert rows[1][:3] == ["", "Ohne SKU", "5,00"] and rows[2][2] == "teuer"
    assert rows[3][:10] == [
        "A-5",
        "Regal",
        "10,00",
        "weiß",
        "",
        "2",
        "nein",
        "02.03.2024",
        "wohnen",
        "EXTRA",
    ]

    # the same file again: every valid row updates, nothing is created
    job2, again = await import_file(client, tenant.editor, NASTY)
    assert job2["suggested_mapping"] == job["suggested_mapping"]
    assert all(c["confidence"] == 1.0 for c in job2["columns"])  # remembered from the confirmation
    assert (again["processed_rows"], again["created"], again["updated"], again["failed"]) == (
        8,
        0,
        5,
        3,
    )
    assert len(await products_by_sku(client, tenant.viewer)) == 4


async def test_cp1252_accents_tab_delimited(client, tenant, worker):
    feed = (
        "SKU\tProduktname\tGröße\tPreis €\tVerfügbar\tLieferdatum\tBeschreibung\n"
        "B-1\tMüller Schürze\tM\t€ 12,00\tja\t01.12.2023\tSchöne Schürze für die Küche\n"
        "B-2\tCafé crème Tasse\tL\t€ 1.299,00\tnein\t24.12.2023\tTasse, 0,3 l — spülmaschinenfest\n"
        "B-3\tGarçon Hut\tS\t€ 7,50\tja\t31.01.2024\t\n"
    ).encode("cp1252")
    job, done = await import_file(client, tenant.editor, feed)
    assert job["encoding"] == "cp1252" and job["delimiter"] == "\t"
    assert [c["header"] for c in job["columns"]][2:4] == ["Größe", "Preis €"]
    assert done["status"] == "done" and (done["created"], done["failed"]) == (3, 0), done
    products = await products_by_sku(client, tenant.viewer)
    assert products["B-1"]["name"] == "Müller Schürze" and products["B-3"]["name"] == "Garçon Hut"
    # issue 12: a cell with a currency symbol is not a number (no value is reinterpreted): the column is
    # text and keeps what was written; the file's conventions are shown
    assert job["conventions"]["decimal"] == "," and job["conventions"]["thousands"] == "."
    assert job["conventions"]["date_order"] == "dmy" and job["conventions"]["encoding"] == "cp1252"
    assert (
        products["B-2"]["data"]["preis"] == "€ 1.299,00"
        and products["B-2"]["data"]["verfugbar"] is False
    )
    assert products["B-2"]["data"]["lieferdatum"] == "2023-12-24"
    assert products["B-2"]["data"]["beschreibung"] == "Tasse, 0,3 l — spülmaschinenfest"


async def test_required_and_unique_fields_are_enforced(client, tenant, worker):
    schema = [
        {"name": "ean", "type": "string", "unique": True},
        {"name": "brand", "type": "string", "required": True},
        {"name": "color", "type": "enum", "options": ["Rot", "Blau"]},
    ]
    r = await client.put("/api/pim/schema/", headers=tenant.editor, json={"fields": schema})
    assert r.status_code == 200, r.text
    for sku, data in (("OLD", {"brand": "X", "ean": "111"}), ("OLD2", {"brand": "Y"})):
        r = await client.post(
            PRODUCTS, headers=tenant.editor, json={"sku": sku, "name": sku, "data": data}
        )
        assert r.status_code == 201, r.text
    feed = (
        "sku;ean;brand;color\n"
        "N-1;222;Acme;rot\n"  # enum option matched without regard to case
        "N-2;333;;Blau\n"  # a new product without its required brand
        "OLD2;;;Blau\n"  # an existing product: its brand is already there
        "N-3;111;Acme;\n"  # ean 111 belongs to OLD
        "N-4;444;Acme;Grün\n"  # not an option
    ).encode()
    mapping = {"sku": "sku", "ean": "ean", "brand": "brand", "color": "color"}
    _job, done = await import_file(client, tenant.editor, feed, mapping=mapping, schema=schema)
    assert (done["processed_rows"], done["created"], done["updated"], done["failed"]) == (
        5,
        1,
        1,
        3,
    ), done
    errors = {e["sku"]: e["detail"] for e in done["errors"]}
    assert set(errors) == {"N-2", "N-3", "N-4"}
    assert "brand" in errors["N-2"] and "ean" in errors["N-3"] and "color" in errors["N-4"]
    products = await products_by_sku(client, tenant.viewer)
    assert products["N-1"]["data"] == {"ean": "222", "brand": "Acme", "color": "Rot"}
    assert products["OLD2"]["data"] == {"brand": "Y", "color": "Blau"}


async def test_an_import_cannot_empty_a_required_field_of_an_existing_product(
    client, tenant, worker
):
    schema = [{"name": "tags", "type": "array", "required": True}]
    r = await client.put("/api/pim/schema/", headers=tenant.editor, json={"fields": schema})
    assert r.status_code == 200, r.text
    for sku in ("OLD", "OLD2"):
        r = await client.post(
            PRODUCTS, headers=tenant.editor, json={"sku": sku, "name": sku, "data": {"tags": ["a"]}}
        )
        assert r.status_code == 201, r.text
    feed = b"sku;tags\nOLD;|\nOLD2;b|c\n"
    _job, done = await import_file(
        client, tenant.editor, feed, mapping={"sku": "sku", "tags": "tags"}, schema=schema
    )
    assert (done["updated"], done["failed"]) == (1, 1), done
    assert done["errors"][0]["sku"] == "OLD" and "tags" in done["errors"][0]["detail"], done[
        "errors"
    ]
    products = await products_by_sku(client, tenant.viewer)
    assert products["OLD"]["data"] == {"tags": ["a"]} and products["OLD2"]["data"] == {
        "tags": ["b", "c"]
    }
