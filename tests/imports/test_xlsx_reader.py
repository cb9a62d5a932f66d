"""The streaming .xlsx reader: the same values as openpyxl, both of its parsers, and its refusals."""

import datetime as dt
import io
import zipfile

import openpyxl
import pytest

from app.imports.xlsx import TypedCell, XlsxError, iter_rows, open_workbook, serial_cell

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
REL_NS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'


def read(content: bytes, sheet: str | None = None) -> list[tuple[int, list]]:
    book = open_workbook(io.BytesIO(content))
    return [(r.number, r.cells) for r in iter_rows(book, book.sheet(sheet))]


def values(rows: list[tuple[int, list]]) -> list[list]:
    return [[c.value if isinstance(c, TypedCell) else c for c in cells] for _, cells in rows]


def workbook(
    sheet_xml: str, *, shared: str | None = None, styles: str | None = None, date1904: bool = False
) -> bytes:
    """A minimal workbook around one sheet's XML (and optional shared strings and styles parts)."""
    rels = ['<Relationship Id="rId1" Type="http://x/worksheet" Target="worksheets/sheet1.xml"/>']
    members = {"xl/worksheets/sheet1.xml": sheet_xml}
    if shared is not None:
        rels.append(
            '<Relationship Id="rId2" Type="http://x/sharedStrings" Target="sharedStrings.xml"/>'
        )
        members["xl/sharedStrings.xml"] = shared
    if styles is not None:
        rels.append('<Relationship Id="rId3" Type="http://x/styles" Target="styles.xml"/>')
        members["xl/styles.xml"] = styles
    pr = '<workbookPr date1904="1"/>' if date1904 else ""
    members["xl/workbook.xml"] = (
        f'<workbook {NS} {REL_NS}>{pr}<sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    members["xl/_rels/workbook.xml.rels"] = f"<Relationships>{''.join(rels)}</Relationships>"
    members["[Content_Types].xml"] = "<Types/>"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in members.items():
            z.writestr(name, text.encode())
    return out.getvalue()


def test_same_values_as_openpyxl():
    book = openpyxl.Workbook()
    sheet = book.active
    rows = [
        ["text", "int", "float", "date", "datetime", "bool", "blank", "formula"],
        [
            "02134",
            42,
            3.7,
            dt.date(2024, 12, 4),
            dt.datetime(2024, 12, 4, 10, 30, 15),
            True,
            None,
            "=1+1",
        ],
        [
            "  spaced  ",
            -7,
            0.1 + 0.2,
            dt.date(1900, 1, 1),
            dt.datetime(1999, 12, 31, 23, 59, 59),
            False,
            None,
            None,
        ],
        [
            'a & b < c > "d"\nline',
            2**40,
            1e-7,
            dt.date(2100, 2, 28),
            dt.datetime(2024, 2, 29, 0, 0, 1),
            None,
            None,
            None,
        ],
        ["Müller ½ ∑ 😀", 0, -1234.5678, None, None, None, None, None],
    ]
    for r in rows:
        sheet.append(r)
    sheet.append([])
    sheet.append(["after a blank row", 1])
    sheet["J3"] = "far right"
    out = io.BytesIO()
    book.save(out)
    got = values(read(out.getvalue()))
    reference = openpyxl.load_workbook(io.BytesIO(out.getvalue()), data_only=True).active
    expected = []
    for r in reference.iter_rows(values_only=True):
        cells = list(r)
        while cells and cells[-1] is None:
            cells.pop()
        expected.append(["" if c is None else c for c in cells])
    # openpyxl reads a date-formatted cell as a datetime at midnight; the cell holds a date
    expected = [
        [c.date() if isinstance(c, dt.datetime) and c.time() == dt.time(0) else c for c in r]
        for r in expected
    ]
    # Excel keeps 15 significant digits: 0.1 + 0.2 is the 0.3 the sheet shows
    expected[2][2] = 0.3
    assert got == expected
    assert got[1][0] == "02134" and not isinstance(read(out.getvalue())[1][1][0], TypedCell)
    assert [str(c) for c in read(out.getvalue())[1][1][1:6]] == [
        "42",
        "3.7",
        "2024-12-04",
        "2024-12-04T10:30:15",
        "true",
    ]


SHARED = (
    f"<sst {NS}><si><t>plain</t></si><si><r><t>rich </t></r><r><rPr><b/></rPr><t>text</t></r></si>"
    '<si><t>漢字</t><rPh sb="0" eb="2"><t>かんじ</t></rPh></si><si><t>a_x000D_b_x005F_x0041_</t></si></sst>'
)
STYLES = (
    f'<styleSheet {NS}><numFmts><numFmt numFmtId="164" formatCode="dd/mm/yyyy\\ hh:mm"/>'
    '<numFmt numFmtId="165" formatCode="&quot;EUR&quot;\\ #,##0.00"/></numFmts>'
    '<cellStyleXfs><xf numFmtId="14"/></cellStyleXfs>'
    '<cellXfs><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="21"/></cellXfs>'
    "</styleSheet>"
)


def sheet(rows: str, prefix: str = "") -> str:
    p = f"{prefix}:" if prefix else ""
    ns = (
        f'xmlns:{prefix}="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
        if prefix
        else NS
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet {ns}><{p}sheetData>{rows}</{p}sheetData></{p}worksheet>'


ROWS = (
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="C1" t="s"><v>1</v></c><c r="D1" t="s"><v>2</v></c>'
    '<c r="E1" t="s"><v>3</v></c></row>'
    '<row r="3"><c r="A3" s="1"><v>45630</v></c><c r="B3" s="2"><v>45630.4375</v></c><c r="C3" s="3"><v>12.5</v></c>'
    '<c r="D3" s="4"><v>0.75</v></c><c r="E3" t="b"><v>0</v></c></row>'
    '<row r="4"><c r="A4" t="inlineStr"><is><t xml:space="preserve"> in&amp;line&#10;x </t></is></c>'
    '<c r="B4" t="str"><f>CONCAT("a","b")</f><v>ab</v></c><c r="C4" t="e"><v>#N/A</v></c>'
    '<c r="D4" t="d"><v>2024-12-04T08:15:00</v></c><c r="E4"><f>1/3</f><v>0.33333333333333331</v></c></row>'
    '<row r="5"><c r="A5" t="inlineStr"><is><r><t>two </t></r><r><t>runs</t></r></is></c><c r="B5"><v>1E+20</v></c></row>'
    "<row><c><v>7</v></c><c><v>8</v></c></row>"
)
EXPECTED = [
    (1, ["plain", "", "rich text", "漢字", "a\rb_x0041_"]),
    (2, []),
    (3, [dt.date(2024, 12, 4), dt.datetime(2024, 12, 4, 10, 30), 12.5, dt.time(18, 0), False]),
    (4, [" in&line\nx ", "ab", "#N/A", dt.datetime(2024, 12, 4, 8, 15), 0.333333333333333]),
    (5, ["two runs", 1e20]),
    (6, [7, 8]),
]


@pytest.mark.parametrize(
    "prefix", ["", "x"]
)  # plain rows take the fast parser, prefixed ones expat
def test_both_parsers_read_every_kind_of_cell(prefix):
    rows = (
        ROWS
        if not prefix
        else ROWS.replace("<row", "<x:row")
        .replace("</row>", "</x:row>")
        .replace("<c", "<x:c")
        .replace("</c>", "</x:c>")
        .replace("<v>", "<x:v>")
        .replace("</v>", "</x:v>")
        .replace("<f>", "<x:f>")
        .replace("</f>", "</x:f>")
    )
    content = workbook(sheet(rows, prefix), shared=SHARED, styles=STYLES)
    got = read(content)
    assert [
        (n, [c.value if isinstance(c, TypedCell) else c for c in cells]) for n, cells in got
    ] == EXPECTED


def test_resume_after_a_row_and_1904_dates():
    content = workbook(sheet(ROWS), shared=SHARED, styles=STYLES)
    book = open_workbook(io.BytesIO(content))
    assert [r.number for r in iter_rows(book, book.sheet(None), start_after=3)] == [4, 5, 6]
    content = workbook(
        sheet('<row r="1"><c r="A1" s="1"><v>0</v></c></row>'), styles=STYLES, date1904=True
    )
    assert values(read(content)) == [[dt.date(1904, 1, 1)]]
    # Excel counts a 1900-02-29 (serial 60): the days before it are one off from the days after
    assert serial_cell(1, date1904=False, time_only=False).value == dt.date(1900, 1, 1)
    assert serial_cell(59, date1904=False, time_only=False).value == dt.date(1900, 2, 28)
    assert serial_cell(61, date1904=False, time_only=False).value == dt.date(1900, 3, 1)


def test_sheet_by_name_or_index():
    book = openpyxl.Workbook()
    book.active.title = "First"
    book.active.append(["one"])
    book.create_sheet("Second").append(["two"])
    out = io.BytesIO()
    book.save(out)
    assert values(read(out.getvalue(), "Second")) == values(read(out.getvalue(), "1")) == [["two"]]
    assert values(read(out.getvalue())) == [["one"]]
    with pytest.raises(XlsxError, match="no sheet 'Third'; its sheets are 'First', 'Second'"):
        read(out.getvalue(), "Third")


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda s: s.replace("</sheetData>", ""), "ends early"),
        (
            lambda s: s.replace('<row r="5">', '<row r="5"><c r="A5"><v>1</v></c></row><rowx>'),
            "not valid",
        ),
        (lambda s: s.replace('t="s"><v>0</v>', 't="s"><v>99</v>'), "shared string 99"),
        (lambda s: "<!DOCTYPE x [<!ENTITY a 'b'>]>" + s.split("?>", 1)[1], "DOCTYPE"),
        (lambda s: s.replace("in&amp;line", "in&#1114112;line"), "no character"),
    ],
)
def test_damaged_sheets_raise_xlsx_errors(mutate, words):
    content = workbook(mutate(sheet(ROWS)), shared=SHARED, styles=STYLES)
    with pytest.raises(XlsxError, match=words):
        read(content)


def test_number_formats_that_change_a_cells_value():
    from app.imports.xlsx import _number_display

    assert _number_display("00000") == "pad:5" and _number_display('"#"000000') == "pad:6"
    assert _number_display("@") == "text"
    assert _number_display("yyyy-mm-dd") == "date" and _number_display("dd.mm.yyyy hh:mm") == "date"
    assert _number_display("0") is None and _number_display("#,##0.000") is None
    assert _number_display("0.00") is None and _number_display("General") is None
