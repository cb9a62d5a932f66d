"""`validate_rows`: the bulk upsert's and the import's per-row checks, a pure function (no database)."""

from app.catalog.fields import FieldDef
from app.products.upsert import UpsertRow, parse_items, validate_rows

FIELDS = {
    "price": FieldDef(name="price", type="number"),
    "ean": FieldDef(name="ean", type="string", required=True),
}


def test_rows_are_coerced_and_the_failing_ones_left_out():
    rows, errors = parse_items(
        [
            {"sku": "new-ok", "price": "12.50", "ean": "400"},
            {"sku": "new-missing-ean", "price": 3},  # required for a new product
            {"sku": "old-no-ean", "price": 4, "stale": None},  # an update: required is not
            {"sku": "bad-price", "price": "twelve", "ean": "401"},
            {"sku": "nul", "ean": "4\x00"},
            {"sku": "big", "ean": "402", "blob": "x" * 300},
        ]
    )
    assert errors == []
    found = validate_rows(rows, fields=FIELDS, existing={"old-no-ean"}, max_data_bytes=200)

    refused = {e.sku: (e.index, e.detail.split(":", 1)[0]) for e in found}
    assert refused == {
        "new-missing-ean": (1, "ean"),
        "bad-price": (3, "price"),
        "nul": (4, "data"),
        "big": (5, "data"),
    }
    assert list(rows) == ["new-ok", "old-no-ean"]
    assert rows["new-ok"].data == {"price": 12.5, "ean": "400"}
    assert rows["new-ok"].data_json == '{"price":12.5,"ean":"400"}'
    assert rows["old-no-ean"].null_keys == ["stale"]


def test_coerced_rows_only_check_what_depends_on_the_product_existing():
    rows = {
        sku: UpsertRow.of_valid_item(index, item)
        for index, (sku, item) in enumerate(
            [
                ("a", {"sku": "a", "name": "A", "ean": "1"}),
                ("b", {"sku": "b", "name": "B"}),
                ("c", {"sku": "c", "name": "C"}),
            ]
        )
    }
    found = validate_rows(rows, fields=FIELDS, existing={"c"}, coerced=True, max_data_bytes=1000)
    assert [(e.sku, e.detail.split(":", 1)[0]) for e in found] == [("b", "ean")]
    assert list(rows) == ["a", "c"]
