"""Unit tests of the row converter: cells read by the value core under the file's conventions (no database).

The spreadsheet number parser this module tested before (currency symbols, `(12.50)`, `12-`,
per-cell guessing of `1,234`) is gone: issue 12 forbids reinterpreting a cell. Those cases are
now rejections, tested in tests/imports/test_values.py with the value core and the conventions.
"""

import pytest

from app.catalog.fields import FieldDef
from app.imports.conventions import Conventions
from app.imports.rows import RowConverter, RowError, parse_category_paths, read_status


def test_lists_categories_status():
    assert parse_category_paths("Lighting > Desk|Office>Lamps| > |Lighting > Desk") == (
        "Lighting > Desk",
        "Office > Lamps",
    )
    with pytest.raises(ValueError):
        parse_category_paths("x" * 300)
    # WooCommerce: a comma splits paths only when every part is a path
    assert parse_category_paths("Clothing > Tshirts, Clothing > Men", ",") == (
        "Clothing > Tshirts",
        "Clothing > Men",
    )
    assert parse_category_paths("Tables, Chairs > Outdoor", ",") == ("Tables, Chairs > Outdoor",)
    assert parse_category_paths("A > B|C", ",") == ("A > B|C",)
    german = Conventions(true_words=("ja", "1"), false_words=("nein", "0"))
    assert [read_status(s, german) for s in ("Active", "inactive", "ja", "NEIN", "deleted")] == [
        "active",
        "inactive",
        "active",
        "inactive",
        "deleted",
    ]
    for bad in ("draft", "offline", "archived"):
        with pytest.raises(ValueError, match="value_mapping"):
            read_status(bad, german)


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
HEADERS = [
    "SKU",
    "Name",
    "Preis",
    "Lager",
    "Aktiv",
    "Datum",
    "Tags",
    "Farbe",
    "Link",
    "Code",
    "Kategorie",
    "Status",
    "Parent",
]
MAPPING = {
    "SKU": "sku",
    "Name": "name",
    "Preis": "price",
    "Lager": "stock",
    "Aktiv": "active",
    "Datum": "released",
    "Tags": "tags",
    "Farbe": "color",
    "Link": "link",
    "Code": "code",
    "Kategorie": "categories",
    "Status": "status",
    "Parent": "variation_of",
}


DEFAULTS = Conventions()
GERMAN = Conventions(
    decimal=",",
    thousands=".",
    date_order="dmy",
    true_words=("ja", "1"),
    false_words=("nein", "0"),
    delimiter=";",
)


def converter(conventions=DEFAULTS, value_mapping=None):
    return RowConverter(
        headers=HEADERS,
        mapping=MAPPING,
        fields=FIELDS,
        conventions=conventions,
        value_mapping=value_mapping,
    )


def test_row_converter_full_row():
    row = converter(GERMAN).convert(
        [
            " A-1 ",
            "Stuhl",
            "1.234",
            "1.000",
            "ja",
            "18.07.2023",
            "a|b",
            "bleu",
            "https://x.org/a",
            "AB",
            "Men > Shoes|Sale",
            "nein",
            "P-1",
        ]
    )
    assert row.item == {
        "sku": "A-1",
        "name": "Stuhl",
        "price": 1234,
        "stock": 1000,
        "active": True,
        "released": "2023-07-18",
        "tags": ["a", "b"],
        "color": "Bleu",
        "link": "https://x.org/a",
        "code": "AB",
        "status": "inactive",
        "variation_of": "P-1",
    }
    assert row.category_paths == ("Men > Shoes", "Sale")


def test_row_converter_empty_cells_short_and_long_rows():
    c = converter()
    row = c.convert(["A-2", "", "", "n/a", "", "", "", "", "", "", "", "", ""])
    assert (
        row.item == {"sku": "A-2"} and row.category_paths is None
    )  # empty and "n/a" cells leave values unset
    assert c.convert(["A-3", "Nur Name"]).item == {
        "sku": "A-3",
        "name": "Nur Name",
    }  # ragged short row
    assert c.convert(["A-4"] + [""] * 12 + ["", " "]).item == {
        "sku": "A-4"
    }  # trailing empty extra cells
    with pytest.raises(RowError, match="14 cells"):
        c.convert(["A-5"] + [""] * 12 + ["extra"])


@pytest.mark.parametrize(
    "index, cell, words",
    [
        (0, "", "sku"),
        (0, "x" * 300, "sku"),
        (2, "teuer", "price"),
        (2, "SKU-12", "price"),
        (2, "12,50 €", "price"),
        (2, "1,234", "price"),  # no thousands separator under the default conventions: not a number
        (3, "1,5", "stock"),
        (3, "3.700", "stock"),  # 3.7 under decimal '.': not an integer (never 3700)
        (4, "ja", "active"),  # not a boolean word under the default conventions
        (4, "vielleicht", "active"),
        (5, "31.02.2024", "released"),
        (5, "18.07.2023", "released"),  # ISO dates only under the default conventions
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


def test_row_converter_value_mapping():
    c = converter(
        value_mapping={
            "Status": {"draft": "inactive", "-1": "inactive", "gone": None},
            "Farbe": {"Blue": "Bleu"},
            "Aktiv": {"x": True},
        }
    )
    cells = ["A-1"] + [""] * 12
    cells[11], cells[7], cells[4] = "Draft", "blue", "x"
    assert c.convert(cells).item == {
        "sku": "A-1",
        "status": "inactive",
        "color": "Bleu",
        "active": True,
    }
    cells[11] = "gone"
    assert "status" not in c.convert(cells).item  # mapped to null: the value stays unset
    cells[11] = "archived"
    with pytest.raises(RowError, match="^status: "):
        c.convert(cells)
