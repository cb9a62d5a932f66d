"""XLSX upload through the API with a real worker: cell types, sheet choice, refused files."""

import datetime as dt
import io
import zipfile

import openpyxl
import pytest

from tests.imports.conftest import IMPORT, confirm, wait_done
from tests.imports.test_import_api import products_by_sku

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook_bytes(
    sheets: dict[str, list[list]], *, number_formats: dict[tuple[str, int], str] | None = None
) -> bytes:
    """An .xlsx with the given sheets (rows of Python values; str cells are text cells)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
        for (sheet_name, column), fmt in (number_formats or {}).items():
            if sheet_name == name:
                for cells in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
                    cells[0].number_format = fmt
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload_xlsx(client, headers, content: bytes, *, filename="feed.xlsx", sheet=None):
    params = {} if sheet is None else {"sheet": sheet}
    return await client.post(
        f"{IMPORT}/csv/",
        headers=headers,
        params=params,
        files={"file": (filename, content, XLSX_TYPE)},
    )


PRODUCTS = [
    ["SKU", "Name", "Weight kg", "Stock", "Released", "Updated", "Available", "ZIP", "Part"],
    [
        "A-1",
        "Lamp",
        3.7,
        12,
        dt.date(2024, 12, 4),
        dt.datetime(2024, 12, 4, 10, 30),
        True,
        "02134",
        "1E7",
    ],
    [
        "A-2",
        "Desk",
        0.975,
        0,
        dt.date(2023, 1, 31),
        dt.datetime(2023, 1, 31, 8, 0, 15),
        False,
        "10115",
        "1.20",
    ],
    [
        "A-3",
        "Chair",
        1234.5,
        7,
        dt.date(2020, 2, 29),
        dt.datetime(2020, 2, 29, 23, 59),
        True,
        "00501",
        "X-9",
    ],
]


async def test_xlsx_cells_keep_their_types(client, tenant, worker):
    content = workbook_bytes({"Products": PRODUCTS}, number_formats={("Products", 3): "#,##0.000"})
    r = await upload_xlsx(
        client, tenant.editor, content, filename="products.bin"
    )  # recognised by content
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["encoding"] is None and job["delimiter"] is None and job["total_rows"] == 3
    types = {c["header"]: c["inferred_type"] for c in job["columns"]}
    assert (
        types["Weight kg"] == "number"
        and types["Stock"] == "integer"
        and types["Released"] == "date"
    )
    assert (
        types["Updated"] == "datetime"
        and types["Available"] == "boolean"
        and types["ZIP"] == "string"
    )
    samples = {c["header"]: c["samples"] for c in job["columns"]}
    assert samples["Weight kg"][:2] == ["3.7", "0.975"] and samples["ZIP"][0] == "02134"
    mapping = job["suggested_mapping"]
    assert mapping["SKU"] == "sku" and mapping["Name"] == "name"

    r = await confirm(client, tenant.editor, job)
    assert r.status_code == 202, r.text
    done = await wait_done(client, tenant.editor, job["job_id"])
    assert done["status"] == "done", done
    assert (done["processed_rows"], done["created"], done["failed"]) == (3, 3, 0), done
    products = await products_by_sku(client, tenant.viewer)
    field = {c["header"]: c["suggested_field"] for c in job["columns"]}
    a1, a2, a3 = products["A-1"], products["A-2"], products["A-3"]
    assert a1["name"] == "Lamp" and a3["name"] == "Chair"
    assert a1["data"][field["Weight kg"]] == 3.7 and a2["data"][field["Weight kg"]] == 0.975
    assert a3["data"][field["Weight kg"]] == 1234.5
    assert a1["data"][field["Stock"]] == 12 and a2["data"][field["Stock"]] == 0
    assert (
        a1["data"][field["Released"]] == "2024-12-04"
        and a3["data"][field["Released"]] == "2020-02-29"
    )
    assert a1["data"][field["Updated"]].startswith("2024-12-04T10:30")
    assert a1["data"][field["Available"]] is True and a2["data"][field["Available"]] is False
    assert a1["data"][field["ZIP"]] == "02134" and a3["data"][field["ZIP"]] == "00501"
    assert a1["data"][field["Part"]] == "1E7" and a2["data"][field["Part"]] == "1.20"


async def test_xlsx_number_cell_is_that_number_in_a_decimal_comma_file(client, tenant, worker):
    """Text cells written the German way ("1,5") do not change what a number cell means (6.257 stays 6.257)."""
    rows = [
        ["Artikelnummer", "Gewicht", "Preis"],
        ["DE-1", "1,5", "12,50"],
        ["DE-2", 6.257, "1.234,00"],
        ["DE-3", "2,25", "7,00"],
        ["DE-4", 0.975, "3,10"],
    ]
    r = await upload_xlsx(client, tenant.editor, workbook_bytes({"Artikel": rows}))
    assert r.status_code == 201, r.text
    job = r.json()
    mapping = {**job["suggested_mapping"], "Artikelnummer": "sku"}
    schema = [f for f in job["suggested_schema"] if f["name"] in mapping.values()]
    schema = [{**f, "type": "number"} if f["name"] == mapping["Gewicht"] else f for f in schema]
    r = await confirm(client, tenant.editor, job, mapping=mapping, schema=schema)
    assert r.status_code == 202, r.text
    done = await wait_done(client, tenant.editor, job["job_id"])
    assert done["status"] == "done" and done["failed"] == 0, done
    products = await products_by_sku(client, tenant.viewer)
    weight = mapping["Gewicht"]
    assert [products[s]["data"][weight] for s in ("DE-1", "DE-2", "DE-3", "DE-4")] == [
        1.5,
        6.257,
        2.25,
        0.975,
    ]


async def test_xlsx_sheet_by_name_or_index(client, tenant, worker):
    content = workbook_bytes(
        {
            "Notes": [["read me"], ["this sheet is not the catalog"]],
            "Catalog": [
                ["sku", "name", "price"],
                ["S-1", "Second sheet", 9.99],
                ["S-2", "Also second", 19],
            ],
        }
    )
    r = await upload_xlsx(client, tenant.editor, content)
    assert r.status_code == 201 and r.json()["columns"][0]["header"] == "read me"
    r = await upload_xlsx(client, tenant.editor, content, sheet="Nope")
    assert r.status_code == 400 and "'Catalog'" in r.json()["detail"], r.text
    r = await upload_xlsx(client, tenant.editor, content, sheet="1")
    assert r.status_code == 201 and r.json()["columns"][0]["header"] == "sku", r.text

    r = await upload_xlsx(client, tenant.editor, content, sheet="Catalog")
    assert r.status_code == 201, r.text
    job = r.json()
    assert [c["header"] for c in job["columns"]] == ["sku", "name", "price"]
    r = await confirm(client, tenant.editor, job)
    assert r.status_code == 202, r.text
    done = await wait_done(client, tenant.editor, job["job_id"])
    assert done["status"] == "done" and done["created"] == 2, done
    products = await products_by_sku(client, tenant.viewer)
    assert products["S-1"]["name"] == "Second sheet" and products["S-1"]["data"]["price"] == 9.99
    assert products["S-2"]["data"]["price"] == 19


async def test_xlsx_rejected_row_is_reported_with_the_sheet_row(client, tenant, worker):
    rows = [["sku", "stock"], ["R-1", 5], [], ["R-2", 2.5], ["R-3", "seven"]]
    r = await upload_xlsx(client, tenant.editor, workbook_bytes({"S": rows}))
    job = r.json()
    schema = [{"name": "stock", "type": "integer"}]
    r = await confirm(
        client, tenant.editor, job, mapping={"sku": "sku", "stock": "stock"}, schema=schema
    )
    assert r.status_code == 202, r.text
    done = await wait_done(client, tenant.editor, job["job_id"])
    assert done["status"] == "done" and (done["created"], done["failed"]) == (1, 2), done
    assert [(e["row"], e["sku"]) for e in done["errors"]] == [(4, "R-2"), (5, "R-3")]
    assert "not an integer" in done["errors"][0]["detail"]
    r = await client.get(f"{IMPORT}/{job['job_id']}/errors/", headers=tenant.viewer)
    assert r.status_code == 200 and "R-2,2.5,4," in r.text


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


GOOD = workbook_bytes({"S": [["sku", "name"], ["B-1", "One"]]})


@pytest.mark.parametrize(
    "content, status, words",
    [
        (GOOD[: len(GOOD) // 2], 400, "damaged or truncated"),
        (GOOD[:-30] + b"\x00" * 30, 400, "damaged"),
        (_zip({"hello.txt": b"not a workbook"}), 400, "not an .xlsx workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), 415, ".xls"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
            + bytes(600)
            + "EncryptionInfo".encode("utf-16-le")
            + bytes(100),
            415,
            "encrypted",
        ),
        (
            _zip({"xl/workbook.xml": b"<workbook><sheets><sheet name='S' sheetId='1'/>"}),
            400,
            "not valid XML",
        ),
    ],
)
async def test_broken_workbooks_are_refused_with_a_message(client, tenant, content, status, words):
    r = await upload_xlsx(client, tenant.editor, content)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"], r.text


async def test_a_csv_named_xlsx_is_refused(client, tenant):
    r = await upload_xlsx(client, tenant.editor, b"sku,name\nA,B\n" * 500, filename="feed.xlsx")
    assert r.status_code == 400 and "not one" in r.json()["detail"], r.text


async def test_zip_bomb_is_refused_before_it_is_inflated(client, tenant):
    """A sheet that unpacks 2,000:1 (a real sheet is 5-20:1) is refused without reading it."""
    rows = b"".join(b'<row r="%d"><c r="A%d"><v>1</v></c></row>' % (i, i) for i in range(1, 2))
    sheet = b"<worksheet><sheetData>" + rows + b" " * (64 << 20) + b"</sheetData></worksheet>"
    members = {
        "[Content_Types].xml": b"<Types/>",
        "xl/workbook.xml": b'<workbook><sheets><sheet name="S" sheetId="1"/></sheets></workbook>',
        "xl/worksheets/sheet1.xml": sheet,
    }
    r = await upload_xlsx(client, tenant.editor, _zip(members))
    assert r.status_code == 400 and "zip bomb" in r.json()["detail"], r.text
