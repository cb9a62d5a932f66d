"""Unit tests of the pure cell parsers and the row converter (no database)."""

import pytest

from app.catalog.fields import FieldDef
from app.imports.rows import (
    RowConverter,
    RowError,
    parse_bool,
    parse_category_paths,
    parse_date,
    parse_datetime,
    parse_number,
    parse_status,
    split_array,
)


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("12", 12),
        ("-7", -7),
        ("12.50", 12.5),
        ("12,50", 12.5),
        ("1.234,56", 1234.56),
        ("1,234.56", 1234.56),
        ("1 234,56", 1234.56),
        ("1\u00a0234,56", 1234.56),
        ("1'234.50", 1234.5),
        ("CHF 1'234.50", 1234.5),
        ("€12", 12),
        ("12 €", 12),
        ("12,99 €", 12.99),
        ("$1,234.56", 1234.56),
        ("EUR 99", 99),
        ("99 EUR", 99),
        ("(12.50)", -12.5),
        ("-€5", -5),
        ("12,5%", 12.5),
        ("1.234.567", 1234567),
        ("0,5", 0.5),
        (",5", 0.5),
        ("1e3", 1000.0),
        ("12-", -12),
        ("1,234", 1.234),  # one separator, three digits: a decimal unless the column says otherwise
        ("99999999999999999999999", 1e23),
    ],
)
def test_parse_number(cell, expected):
    assert parse_number(cell) == expected


@pytest.mark.parametrize("cell", ["abc", "12.", "1,2,3", "+-1", "1.234.56", "12 34", "1 23,4", "€", "", "1e999", "12 kg"])
def test_parse_number_rejects(cell):
    with pytest.raises(ValueError):
        parse_number(cell)


def test_parse_number_hints():
    assert parse_number("1.234", decimal=",") == 1234
    assert parse_number("1,234", decimal=".") == 1234
    assert parse_number("1,234", integer=True) == 1234
    assert parse_number("12,00", integer=True) == 12
    with pytest.raises(ValueError):
        parse_number("12,5", integer=True)
    with pytest.raises(ValueError):
        parse_number("99999999999999999999999", integer=True)
    with pytest.raises(ValueError, match="out of range"):
        parse_number("1e30", integer=True)
    with pytest.raises(ValueError, match="out of range"):
        parse_number("-9.3e18", integer=True)
    assert parse_number("1e30") == 1e30


@pytest.mark.parametrize(
    "words, value",
    [(["true", "Yes", "Y", "ja", "J", "oui", "1", "sí", "wahr"], True), (["false", "No", "n", "nein", "non", "0", "falsch"], False)],
)
def test_parse_bool(words, value):
    assert all(parse_bool(w) is value for w in words)
    with pytest.raises(ValueError):
        parse_bool("maybe")


def test_parse_dates():
    assert parse_date("2024-12-04") == "2024-12-04"
    assert parse_date("04.12.2024") == "2024-12-04"
    assert parse_date("18/07/2023") == "2023-07-18"
    assert parse_date("12/31/2023") == "2023-12-31"  # 31 cannot be a month
    assert parse_date("04/12/2024", order="mdy") == "2024-04-12"
    assert parse_date("4.7.24") == "2024-07-04"
    assert parse_date("2024-12-04T00:00:00Z") == "2024-12-04"
    for bad in ("31.02.2024", "2024-13-01", "soon", "2024-12-04 10:30"):
        with pytest.raises(ValueError):
            parse_date(bad)
    assert parse_datetime("2024-12-04T10:30:00Z") == "2024-12-04T10:30:00Z"
    assert parse_datetime("04.12.2024 10:30:15") == "2024-12-04T10:30:15"
    assert parse_datetime("04/12/2024 9:05 +02:00") == "2024-12-04T09:05:00+02:00"
    assert parse_datetime("2024-12-04") == "2024-12-04"  # coerce_value makes it midnight UTC
    with pytest.raises(ValueError):
        parse_datetime("yesterday")


def test_lists_categories_status():
    assert split_array("steel;brass") == ["steel", "brass"]
    assert split_array("a | b |") == ["a", "b"]
    assert split_array("a;b|c") == ["a;b", "c"]
    assert split_array("a,b", sep=",") == ["a", "b"]
    assert parse_category_paths("Lighting > Desk|Office>Lamps| > |Lighting > Desk") == ("Lighting > Desk", "Office > Lamps")
    with pytest.raises(ValueError):
        parse_category_paths("x" * 300)
    assert [parse_status(s) for s in ("Active", "inactive", "ja", "false", "deleted", "offline")] == [
        "active", "inactive", "active", "inactive", "deleted", "inactive",
    ]
    with pytest.raises(ValueError):
        parse_status("draft")


FIELDS = {
    f.name: f
    for f in [
        FieldDef(name="price", type="number"),
        FieldDef(name="stock", type="integer"),
        FieldDef(name="active", type="boolean"),
        FieldDef(name="released", type="date"),
        FieldDef(name="tags", type="array"),
        FieldDef(name="color", type="enum", options=["Bleu", "Rouge"]),
        FieldDef(name="link", type="url"),
        FieldDef(name="code", type="string", validation=r"^[A-Z]+$"),
    ]
}
HEADERS = ["SKU", "Name", "Preis", "Lager", "Aktiv", "Datum", "Tags", "Farbe", "Link", "Code", "Kategorie", "Status", "Parent"]
MAPPING = {
    "SKU": "sku", "Name": "name", "Preis": "price", "Lager": "stock", "Aktiv": "active", "Datum": "released",
    "Tags": "tags", "Farbe": "color", "Link": "link", "Code": "code", "Kategorie": "categories", "Status": "status",
    "Parent": "variation_of",
}


def converter(**hints):
    return RowConverter(headers=HEADERS, mapping=MAPPING, fields=FIELDS, hints=hints)


def test_row_converter_full_row():
    row = converter(Preis={"decimal": ","}).convert(
        [" A-1 ", "Stuhl", "1.234", "1.000", "ja", "18.07.2023", "a|b", "bleu", "https://x.org/a", "AB", "Men > Shoes|Sale", "nein", "P-1"]
    )
    assert row.item == {
        "sku": "A-1", "name": "Stuhl", "price": 1234, "stock": 1000, "active": True, "released": "2023-07-18",
        "tags": ["a", "b"], "color": "Bleu", "link": "https://x.org/a", "code": "AB", "status": "inactive",
        "variation_of": "P-1",
    }
    assert row.category_paths == ("Men > Shoes", "Sale")


def test_row_converter_empty_cells_short_and_long_rows():
    c = converter()
    row = c.convert(["A-2", "", "", "n/a", "", "", "", "", "", "", "", "", ""])
    assert row.item == {"sku": "A-2"} and row.category_paths is None  # empty and "n/a" cells leave values unset
    assert c.convert(["A-3", "Nur Name"]).item == {"sku": "A-3", "name": "Nur Name"}  # ragged short row
    assert c.convert(["A-4"] + [""] * 12 + ["", " "]).item == {"sku": "A-4"}  # trailing empty extra cells
    with pytest.raises(RowError, match="14 cells"):
        c.convert(["A-5"] + [""] * 12 + ["extra"])


@pytest.mark.parametrize(
    "index, cell, words",
    [
        (0, "", "sku"),
        (0, "x" * 300, "sku"),
        (2, "teuer", "price"),
        (3, "1,5", "stock"),
        (4, "vielleicht", "active"),
        (5, "31.02.2024", "released"),
        (7, "Grün", "color"),
        (8, "www.x.org", "link"),
        (9, "ab1", "code"),
        (11, "draft", "status"),
    ],
)
def test_row_converter_rejects(index, cell, words):
    cells = ["A-1"] + [""] * 12
    cells[index] = cell
    with pytest.raises(RowError) as exc:
        converter().convert(cells)  # parsing, then the schema's own checks (options, URL, regex)
    assert str(exc.value).startswith(words)


def test_row_converter_needs_known_targets():
    with pytest.raises(ValueError):
        RowConverter(headers=["a"], mapping={"a": "name"}, fields={})  # no sku
    with pytest.raises(ValueError):
        RowConverter(headers=["a", "b"], mapping={"a": "sku", "b": "ghost"}, fields={})
