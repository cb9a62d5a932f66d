"""Issue 12 through the API: one value core for bulk and import, conventions, dry run, value mapping.

Black-box: upload, confirm, then GET the products and assert the values stored.
"""

import csv
import io

import pytest

from tests.imports.conftest import IMPORT, import_file, upload, wait_done

PRODUCTS = "/api/pim/products/"
DEFAULTS = {
    "decimal": ".",
    "thousands": None,
    "date_order": "ymd",
    "list_separator": "|",
    "category_separator": "|",
    "true_words": ["1", "on", "t", "true", "y", "yes"],
    "false_words": ["0", "f", "false", "n", "no", "off"],
    "time_zone": "UTC",
}


async def stored(client, headers) -> dict[str, dict]:
    out, page = {}, 1
    while True:
        r = await client.get(PRODUCTS, headers=headers, params={"page": page, "page_size": 200})
        assert r.status_code == 200, r.text
        out.update({p["sku"]: p for p in r.json()["results"]})
        if not r.json()["next"]:
            return out
        page += 1


def csv_bytes(rows: list[list[str]], delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


async def post_confirm(client, headers, job_id: str, body: dict):
    return await client.post(f"{IMPORT}/{job_id}/confirm/", headers=headers, json=body)


# --- one value core: bulk and import agree --------------------------------------------------------

SCHEMA = [
    {"name": "n", "type": "number"},
    {"name": "i", "type": "integer"},
    {"name": "b", "type": "boolean"},
    {"name": "d", "type": "date"},
    {"name": "t", "type": "datetime"},
]
ACCEPT, REJECT = "accept", "reject"
# (field, text, expected): expected is REJECT, or the value both paths must store
VALUES = [
    ("n", "SKU-12", REJECT),
    ("n", "XYZ-2024", REJECT),
    ("n", "ABC 5", REJECT),
    ("n", "3.700", 3.7),
    ("n", "1E7", 1e7),
    ("n", " 7 ", 7),
    ("n", "12.50", 12.5),
    ("n", "1_000", REJECT),
    ("n", "１２", REJECT),
    ("n", "1,234", REJECT),
    ("n", "12,50", REJECT),
    ("n", "€12", REJECT),
    ("n", "(5)", REJECT),
    ("n", "12-", REJECT),
    ("n", "0x10", REJECT),
    ("n", "-0.5", -0.5),
    ("n", "+3", 3),
    ("n", "02134", REJECT),
    ("i", "007", REJECT),
    ("n", "0.5", 0.5),
    ("i", "0", 0),
    ("n", "1e400", REJECT),
    ("i", "3.700", REJECT),
    ("i", "1e3", 1000),
    ("i", "12.0", 12),
    ("i", "1_000", REJECT),
    ("i", "７", REJECT),
    ("i", " 7 ", 7),
    ("i", "SKU-12", REJECT),
    ("i", "99999999999999999999", REJECT),
    ("b", "yes", True),
    ("b", "No", False),
    ("b", "1", True),
    ("b", "off", False),
    ("b", "ja", REJECT),
    ("b", "maybe", REJECT),
    ("d", "2024-12-04", "2024-12-04"),
    ("d", "04.12.2024", REJECT),
    ("d", "12/04/2024", REJECT),
    ("d", "2024-02-30", REJECT),
    ("d", "2024-12-04T10:00:00Z", REJECT),
    ("t", "2024-12-04T10:30:00", "2024-12-04T10:30:00Z"),
    ("t", "2024-12-04 10:30", "2024-12-04T10:30:00Z"),
    ("t", "2024-12-04T10:30:00+02:00", "2024-12-04T08:30:00Z"),
    ("t", "2024-12-04", "2024-12-04T00:00:00Z"),
    ("t", "04.12.2024 10:30", REJECT),
]


async def test_bulk_and_import_accept_and_reject_the_same_values(client, make_tenant, worker):
    bulk_tenant, import_tenant = await make_tenant("bulk"), await make_tenant("csv")
    for t in (bulk_tenant, import_tenant):
        assert (
            await client.put("/api/pim/schema/", headers=t.editor, json={"fields": SCHEMA})
        ).status_code == 200
    skus = [f"V-{k}" for k in range(len(VALUES))]

    items = [{"sku": sku, "name": "x", field: text} for sku, (field, text, _) in zip(skus, VALUES)]
    r = await client.post(f"{PRODUCTS}bulk/", headers=bulk_tenant.editor, json={"products": items})
    assert r.status_code == 200, r.text
    bulk_rejected = {e["sku"] for e in r.json()["errors"]}

    names = [f["name"] for f in SCHEMA]
    rows = [["sku", "name", *names]]
    for sku, (field, text, _) in zip(skus, VALUES):
        rows.append([sku, "x", *[text if n == field else "" for n in names]])
    r = await upload(client, import_tenant.editor, csv_bytes(rows))
    assert r.status_code == 201, r.text
    job = r.json()
    body = {"mapping": {h: h for h in rows[0]}, "schema": SCHEMA, "conventions": DEFAULTS}
    assert (
        await post_confirm(client, import_tenant.editor, job["job_id"], body)
    ).status_code == 202
    done = await wait_done(client, import_tenant.editor, job["job_id"])
    assert done["status"] == "done", done
    import_rejected = {e["sku"] for e in done["errors"]}

    by_bulk, by_import = (
        await stored(client, bulk_tenant.viewer),
        await stored(client, import_tenant.viewer),
    )
    for sku, (field, text, expected) in zip(skus, VALUES):
        case = (field, text, expected)
        if expected == REJECT:
            assert sku in bulk_rejected and sku in import_rejected, case
            assert sku not in by_bulk and sku not in by_import, case
        else:
            assert sku not in bulk_rejected and sku not in import_rejected, case
            assert by_bulk[sku]["data"][field] == by_import[sku]["data"][field] == expected, case
            assert type(by_bulk[sku]["data"][field]) is type(by_import[sku]["data"][field]), case


# --- stored values under detected conventions ---------------------------------------------------------


async def test_three_decimal_weights_stay_decimal_beside_prices(client, tenant, worker):
    weights = [
        "3.700",
        "6.257",
        "1.250",
        "2.500",
        "0.975",
    ]  # the feed: once typed integer, 3.700 → 3700
    rows = [["sku", "name", "weight_kg", "price"]] + [
        [f"W-{k}", f"Item {k}", w, "12.50"] for k, w in enumerate(weights)
    ]
    job, done = await import_file(client, tenant.editor, csv_bytes(rows))
    assert job["conventions"]["decimal"] == "." and job["conventions"]["thousands"] is None
    assert done["status"] == "done" and (done["created"], done["failed"]) == (5, 0), done
    products = await stored(client, tenant.viewer)
    assert [products[f"W-{k}"]["data"]["weight_kg"] for k in range(5)] == [
        3.7,
        6.257,
        1.25,
        2.5,
        0.975,
    ]
    assert {products[f"W-{k}"]["data"]["price"] for k in range(5)} == {12.5}


async def test_german_conventions_are_detected_and_followed(client, tenant, worker):
    feed = (
        "Artikel;Name;Gewicht;Preis;Aktiv;Datum\n"
        "G-1;Stuhl;3.700;1.234,50;ja;31.12.2024\n"
        "G-2;Tisch;12.000;12,50;nein;01.02.2024\n"
    ).encode("cp1252")
    schema = [
        {"name": "gewicht", "type": "number"},
        {"name": "preis", "type": "number"},
        {"name": "aktiv", "type": "boolean"},
        {"name": "datum", "type": "date"},
    ]
    mapping = {
        "Artikel": "sku",
        "Name": "name",
        "Gewicht": "gewicht",
        "Preis": "preis",
        "Aktiv": "aktiv",
        "Datum": "datum",
    }
    job, done = await import_file(client, tenant.editor, feed, mapping=mapping, schema=schema)
    c = job["conventions"]
    assert (c["decimal"], c["thousands"], c["date_order"], c["delimiter"]) == (",", ".", "dmy", ";")
    assert "ja" in c["true_words"] and "nein" in c["false_words"]
    assert done["status"] == "done" and done["failed"] == 0, done
    p = await stored(client, tenant.viewer)
    assert p["G-1"]["data"] == {
        "gewicht": 3700,
        "preis": 1234.5,
        "aktiv": True,
        "datum": "2024-12-31",
    }
    assert p["G-2"]["data"] == {
        "gewicht": 12000,
        "preis": 12.5,
        "aktiv": False,
        "datum": "2024-02-01",
    }


async def test_a_cell_that_does_not_read_rejects_its_row(client, tenant, worker):
    schema = [{"name": "part", "type": "number"}]
    feed = b"sku,name,part\nP-1,A,12\nP-2,B,SKU-12\nP-3,C,ABC 5\nP-4,D,1.5\n"
    _, done = await import_file(
        client,
        tenant.editor,
        feed,
        mapping={"sku": "sku", "name": "name", "part": "part"},
        schema=schema,
    )
    assert (done["created"], done["failed"]) == (2, 2), done
    details = {e["sku"]: e["detail"] for e in done["errors"]}
    assert details["P-2"].startswith("part: not a number") and "'SKU-12'" in details["P-2"]
    assert set(details) == {"P-2", "P-3"}
    p = await stored(client, tenant.viewer)
    assert set(p) == {"P-1", "P-4"} and p["P-4"]["data"]["part"] == 1.5


async def test_conventions_override_and_time_zone(client, tenant, worker):
    # nothing in the file tells whether 3.700 is a decimal: the default '.' holds until the user says otherwise
    feed = b"sku;name;gewicht;seen\nO-1;A;3.700;04.12.2024 10:30\nO-2;B;1.250;01.07.2024 10:30\n"
    r = await upload(client, tenant.editor, feed)
    job = r.json()
    assert job["conventions"]["decimal"] == "." and job["conventions"]["date_order"] == "dmy"
    schema = [{"name": "gewicht", "type": "number"}, {"name": "seen", "type": "datetime"}]
    body = {
        "mapping": {"sku": "sku", "name": "name", "gewicht": "gewicht", "seen": "seen"},
        "schema": schema,
        "conventions": {"decimal": ",", "thousands": ".", "time_zone": "Europe/Berlin"},
    }
    r = await post_confirm(client, tenant.editor, job["job_id"], body)
    assert r.status_code == 202, r.text
    assert (
        r.json()["conventions"]["decimal"] == ","
        and r.json()["conventions"]["time_zone"] == "Europe/Berlin"
    )
    done = await wait_done(client, tenant.editor, job["job_id"])
    assert done["failed"] == 0, done
    p = await stored(client, tenant.viewer)
    assert p["O-1"]["data"] == {
        "gewicht": 3700,
        "seen": "2024-12-04T09:30:00Z",
    }  # Berlin winter time: UTC+1
    assert p["O-2"]["data"] == {"gewicht": 1250, "seen": "2024-07-01T08:30:00Z"}  # summer: UTC+2

    r = await upload(client, tenant.editor, feed)
    bad = await post_confirm(
        client,
        tenant.editor,
        r.json()["job_id"],
        {**body, "conventions": {"decimal": ",", "thousands": ","}},
    )
    assert bad.status_code == 400 and "thousands" in bad.text
    bad = await post_confirm(
        client,
        tenant.editor,
        r.json()["job_id"],
        {**body, "conventions": {"time_zone": "Mars/Base"}},
    )
    assert bad.status_code == 422


async def test_encoding_and_delimiter_overrides_reread_the_file(client, tenant, worker):
    text = "SKU;Bezeichnung\nE-1;Rohr ½ Zoll\nE-2;Muffe ¾ Zoll\n"
    r = await upload(client, tenant.editor, text.encode("cp1252"))
    job = r.json()
    assert job["encoding"] == "cp1252"  # not cp1250, where ½ would read as ˝
    # the user says the file is cp1250 (wrongly, here): the file is decoded again and the import follows
    body = {"mapping": {"SKU": "sku", "Bezeichnung": "name"}, "schema": [], "encoding": "cp1250"}
    r = await post_confirm(client, tenant.editor, job["job_id"], body)
    assert r.status_code == 202, r.text
    assert r.json()["encoding"] == "cp1250" and r.json()["conventions"]["encoding"] == "cp1250"
    await wait_done(client, tenant.editor, job["job_id"])
    assert (await stored(client, tenant.viewer))["E-1"]["name"] == "Rohr ˝ Zoll"

    # a delimiter override splits the stored file again: new headers, new suggestion
    feed = b"code,label\tprice\nD-1,x\t1.5\nD-2,y\t2.5\n"
    job = (await upload(client, tenant.editor, feed)).json()
    r = await post_confirm(
        client, tenant.editor, job["job_id"], {"delimiter": "\t", "dry_run": True}
    )
    assert r.status_code == 200, r.text
    assert [c["header"] for c in r.json()["columns"]] == ["code,label", "price"] and r.json()[
        "delimiter"
    ] == "\t"
    body = {
        "mapping": {"code,label": "sku", "price": "price"},
        "schema": [{"name": "price", "type": "number"}],
    }
    r = await post_confirm(client, tenant.editor, job["job_id"], body)
    assert r.status_code == 202, r.text
    await wait_done(client, tenant.editor, job["job_id"])
    assert (await stored(client, tenant.viewer))["D-2,y"]["data"]["price"] == 2.5


# --- dry run -------------------------------------------------------------------------------------------


async def test_dry_run_reports_without_writing(client, tenant, worker):
    r = await client.post(PRODUCTS, headers=tenant.editor, json={"sku": "R-1", "name": "old"})
    assert r.status_code == 201, r.text
    schema = [
        {"name": "weight", "type": "number", "required": True},
        {"name": "tags", "type": "array"},
    ]
    feed = csv_bytes(
        [
            ["sku", "name", "weight", "tags", "category"],
            ["R-1", "updated", "1.5", "a|b", "Home > Garden"],
            ["R-2", "new", "2", "", ""],
            ["R-3", "bad", "SKU-12", "", ""],
            ["R-2", "again", "3.700", "c", ""],
            ["R-4", "no weight", "", "", ""],
            ["R-5", "fine", "0.975", "", ""],
        ]
    )
    job = (await upload(client, tenant.editor, feed)).json()
    body = {
        "mapping": {
            "sku": "sku",
            "name": "name",
            "weight": "weight",
            "tags": "tags",
            "category": "categories",
        },
        "schema": schema,
        "dry_run": True,
    }
    r = await post_confirm(client, tenant.editor, job["job_id"], body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "mapping"
    dry = out["dry_run"]
    assert (dry["rows"], dry["create"], dry["update"], dry["reject"]) == (6, 2, 2, 2), dry
    assert [(e["row"], e["sku"]) for e in dry["errors"]] == [(4, "R-3"), (6, "R-4")]
    assert (
        dry["errors"][0]["detail"].startswith("weight: not a number")
        and "weight: is required" in dry["errors"][1]["detail"]
    )
    assert dry["preview"][0] == {
        "row": 2,
        "sku": "R-1",
        "values": {"name": "updated", "weight": 1.5, "tags": ["a", "b"]},
        "categories": ["Home > Garden"],
    }
    assert [p["values"].get("weight") for p in dry["preview"]] == [1.5, 2, 3.7, None, 0.975]
    # nothing was written: products, schema, categories
    assert set(await stored(client, tenant.viewer)) == {"R-1"}
    assert (await client.get("/api/pim/schema/", headers=tenant.viewer)).json()["fields"] == []
    assert (await client.get(f"{IMPORT}/{job['job_id']}/", headers=tenant.viewer)).json()[
        "dry_run"
    ] == dry

    # try again with a change, then import: the import does what the dry run said
    body["conventions"] = {"list_separator": ";"}
    dry2 = (await post_confirm(client, tenant.editor, job["job_id"], body)).json()["dry_run"]
    assert (
        dry2["preview"][0]["values"]["tags"] == ["a|b"]
        and dry2["conventions"]["list_separator"] == ";"
    )
    del body["dry_run"], body["conventions"]
    r = await post_confirm(client, tenant.editor, job["job_id"], body)
    assert r.status_code == 202 and r.json()["dry_run"] is None
    done = await wait_done(client, tenant.editor, job["job_id"])
    assert (done["created"], done["updated"], done["failed"]) == (
        dry["create"],
        dry["update"],
        dry["reject"],
    )
    p = await stored(client, tenant.viewer)
    assert set(p) == {"R-1", "R-2", "R-5"} and p["R-1"]["name"] == "updated"
    # the conventions of the last dry run are kept on the job (list separator ';')
    assert p["R-1"]["data"] == {"weight": 1.5, "tags": ["a|b"]} and p["R-2"]["data"] == {
        "weight": 3.7,
        "tags": ["c"],
    }


# --- value mapping ---------------------------------------------------------------------------------------


async def test_value_mapping(client, tenant, worker):
    schema = [
        {"name": "color", "type": "enum", "options": ["Red", "Blue"]},
        {"name": "sale", "type": "boolean"},
    ]
    feed = csv_bytes(
        [
            ["sku", "Status", "Farbe", "Sale"],
            ["M-1", "draft", "rot", "x"],
            ["M-2", "-1", "Blue", ""],
            ["M-3", "Active", "blau", "-"],
            ["M-4", "archived", "Red", "yes"],
        ]
    )
    mapping = {"sku": "sku", "Status": "status", "Farbe": "color", "Sale": "sale"}
    value_mapping = {
        "Status": {"draft": "inactive", "-1": "inactive"},
        "Farbe": {"rot": "Red", "Blau": "Blue"},
        "Sale": {"x": True, "-": "no"},
    }
    _, done = await import_file(
        client, tenant.editor, feed, mapping=mapping, schema=schema, value_mapping=value_mapping
    )
    assert (done["created"], done["failed"]) == (3, 1), done
    assert done["errors"][0]["sku"] == "M-4" and "value_mapping" in done["errors"][0]["detail"]
    p = await stored(client, tenant.viewer)
    assert (p["M-1"]["status"], p["M-1"]["data"]) == ("inactive", {"color": "Red", "sale": True})
    assert (p["M-2"]["status"], p["M-2"]["data"]) == ("inactive", {"color": "Blue"})
    assert (p["M-3"]["status"], p["M-3"]["data"]) == ("active", {"color": "Blue", "sale": False})


@pytest.mark.parametrize(
    "value_mapping, words",
    [
        ({"sku": {"a": "b"}}, "must map to status"),
        ({"Name": {"a": "b"}}, "must map to status"),
        ({"Status": {"draft": "paused"}}, "not a status"),
        ({"Farbe": {"rot": "Green"}}, "not one of"),
        ({"Sale": {"x": "maybe"}}, "not a boolean"),
    ],
)
async def test_value_mapping_validation(client, tenant, value_mapping, words):
    feed = b"sku,Name,Status,Farbe,Sale\nM-1,n,draft,rot,x\n"
    job = (await upload(client, tenant.editor, feed)).json()
    body = {
        "mapping": {
            "sku": "sku",
            "Name": "name",
            "Status": "status",
            "Farbe": "color",
            "Sale": "sale",
        },
        "schema": [
            {"name": "color", "type": "enum", "options": ["Red"]},
            {"name": "sale", "type": "boolean"},
        ],
        "value_mapping": value_mapping,
        "dry_run": True,
    }
    r = await post_confirm(client, tenant.editor, job["job_id"], body)
    assert r.status_code == 400 and words in r.json()["detail"], r.text


async def test_null_conventions_keep_the_detected_ones(client, tenant):
    """schemathesis found it: `conventions.time_zone: null` in a confirm was a 500. A null
    convention overrides nothing (the detected one stays); only `thousands: null` means none."""
    job = (await upload(client, tenant.editor, b"sku;name;price\nA;a;1,50\n")).json()
    detected = job["conventions"]
    nulls = {key: None for key in detected if key not in ("thousands",)}
    response = await client.post(
        f"{IMPORT}/{job['job_id']}/confirm/",
        headers=tenant.editor,
        json={"conventions": nulls, "dry_run": True},
    )
    assert response.status_code == 200, response.text
    shown = (await client.get(f"{IMPORT}/{job['job_id']}/", headers=tenant.viewer)).json()
    assert shown["conventions"] == detected
