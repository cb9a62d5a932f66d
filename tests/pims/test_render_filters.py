"""Pure parts of the PIMS route: value rendering, definitions, filter parsing and the SQL it becomes."""

from decimal import Decimal

import pytest

from app.catalog.fields import FieldDef
from app.errors import BadRequest
from app.pims import render
from app.pims.filters import (
    AnyOf,
    Range,
    add_filter_conditions,
    order_sql,
    parse_filters,
    parse_value,
)
from app.products.queries import SqlWhere

NUMBER = FieldDef(name="price", type="number")
INTEGER = FieldDef(name="stock", type="integer")
FIELDS = {
    f.name: f
    for f in [
        NUMBER,
        INTEGER,
        FieldDef(name="brand"),
        FieldDef(name="tags", type="array"),
        FieldDef(name="color", type="enum", options=["red", "blue"]),
        FieldDef(name="launch", type="date"),
        FieldDef(name="eco", type="boolean"),
        FieldDef(name="seen", type="datetime"),
    ]
}


@pytest.mark.parametrize(
    "value, expected",
    [
        (100, "100.00"),
        (100.0, "100.00"),
        (12.5, "12.50"),
        (2.875, "2.875"),
        (0, "0.00"),
        (-3.5, "-3.50"),
        (1e-7, "0.0000001"),
        (1e21, "1000000000000000000000.00"),
        (Decimal("123456789012345678901234567890.125"), "123456789012345678901234567890.125"),
        (2**70, "1180591620717411303424.00"),
        (-0.0, "0.00"),
    ],
)
def test_number_fields_render_fixed_point_with_at_least_two_decimals(value, expected):
    assert render.render_value(NUMBER, value) == expected


def test_other_values_render_as_strings():
    assert render.render_value(INTEGER, 42) == "42"
    assert render.render_value(INTEGER, 4.5) == "4.5"  # stored before the field became an integer
    assert render.render_value(FIELDS["brand"], 7) == "7"
    assert render.render_value(FIELDS["brand"], 2.5) == "2.5"
    assert (
        render.render_value(FIELDS["eco"], True) == "1"
        and render.render_value(FIELDS["eco"], False) == "0"
    )
    assert render.render_value(FIELDS["brand"], "Nike") == "Nike"
    assert render.render_value(FIELDS["brand"], None) is None
    assert render.render_value(FIELDS["tags"], None) == []
    assert render.render_value(FIELDS["tags"], "solo") == ["solo"]
    assert render.render_value(FIELDS["tags"], ["a", 1, True, None]) == ["a", "1", "1"]
    assert render.render_value(FIELDS["brand"], ["x", "y"]) == [
        "x",
        "y",
    ]  # a list stays a multi-value
    assert render.render_value(None, {"a": 1}) == '{"a":1}'


def test_parse_data_keeps_integers_beyond_64_bits():
    assert render.parse_data('{"n": 123456789012345678901234567890}') == {
        "n": 123456789012345678901234567890
    }
    assert render.parse_data('{"n": 1.5, "m": 99999999999999999999}')["n"] == Decimal("1.5")
    assert render.parse_data(None) == {} and render.parse_data("[1]") == {}
    assert render.parse_variations(None) == []
    assert render.parse_variations('[["A", {"x": 1}], ["B", null]]') == [
        ("A", {"x": 1}),
        ("B", None),
    ]


def test_labels_fall_back_by_locale_language_then_default():
    field = FieldDef(name="price", label="Price", labels={"de-de": "Preis", "fr": "Prix"})
    assert render.localized_label(field, "de-de") == "Preis"
    assert render.localized_label(field, "de-at") == "Preis"
    assert render.localized_label(field, "fr-ca") == "Prix"
    assert render.localized_label(field, "en-us") == "Price"
    assert render.localized_label(FieldDef(name="bare"), "en-us") == "bare"


def test_field_definitions():
    enum = render.field_definition(
        FieldDef(
            name="color",
            type="enum",
            options=["red", "blue"],
            unique=True,
            searchable=True,
            group="looks",
            validation="^[a-z]+$",
        ),
        "en-us",
    )
    assert enum["type"] == "enum" and enum["isUnique"] == "1" and enum["isSearchable"] == "1"
    assert (
        enum["validation"] == "^[a-z]+$"
        and enum["group"] == "looks"
        and enum["dictionaryIsStatic"] == "1"
    )
    assert enum["dictionary"]["data"] == ["red", "blue"] and enum["isSimpleType"] == "0"
    tags = render.field_definition(FieldDef(name="tags", type="array", filterable=False), "en-us")
    assert tags["type"] == "string" and tags["collection"] == "1" and tags["isFilterable"] == "0"
    assert "dictionary" not in tags and tags["isIndexable"] == "0"
    price = render.field_definition(NUMBER, "xx")
    assert (
        price["label"] == {"xx": "price"}
        and price["comment"] == {"xx": ""}
        and price["isSimpleType"] == "1"
    )
    every = render.definitions([NUMBER], "en-us")
    assert list(every) == [
        "sku",
        "categories",
        "status",
        "title",
        "price",
        "variation_attributes",
        "variation_of",
        "variation_skus",
        "variation_matrix",
    ]
    assert all(set(d["label"]) == {"en-us"} for d in every.values())


def test_product_attributes_of_a_parent_a_variation_and_a_plain_product():
    base = {
        "sku": "P",
        "name": "Parent",
        "status": "active",
        "category_paths": ["A > B"],
        "variation_of": None,
        "variation_attributes": ["price", "tags"],
        "parent_variation_attributes": None,
        "data": {"price": 10, "tags": ["x"], "brand": "N"},
    }
    parent = render.product_attributes(
        {**base, "children": [("C1", {"price": 11.5}), ("C2", None)]},
        view_fields=[NUMBER],
        fields=FIELDS,
    )
    assert parent == {
        "sku": "P",
        "categories": ["A > B"],
        "status": "active",
        "title": "Parent",
        "price": "10.00",
        "variation_attributes": ["price", "tags"],
        "variation_of": None,
        "variation_skus": [["C1", "C2"]],
        "variation_matrix": {
            "C1": {"price": ["11.50"], "tags": []},
            "C2": {"price": [], "tags": []},
            "P": {"price": ["10.00"], "tags": ["x"]},
        },
    }
    child = render.product_attributes(
        {
            **base,
            "sku": "C1",
            "variation_of": "P",
            "variation_attributes": [],
            "parent_variation_attributes": ["price"],
            "data": {"price": 11.5},
            "children": [],
        },
        view_fields=[],
        fields=FIELDS,
    )
    assert child["variation_attributes"] == ["price"] and child["variation_of"] == "P"
    assert child["variation_skus"] == [[]] and child["variation_matrix"] == {
        "C1": {"price": ["11.50"]}
    }
    plain = render.product_attributes(
        {**base, "variation_attributes": [], "children": None}, view_fields=[], fields=FIELDS
    )
    assert plain == {"sku": "P", "categories": ["A > B"], "status": "active", "title": "Parent"}


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Nike", AnyOf(("Nike",))),
        ("A|B|A", AnyOf(("A", "B"))),
        ("10.50;;25.00", Range(Decimal("10.50"), Decimal("25.00"))),
        (";;25", Range(None, Decimal("25"))),
        ("7.;;", Range(Decimal("7"), None)),
        (".5;;.5", Range(Decimal(".5"), Decimal(".5"))),
    ],
)
def test_parse_value(raw, expected):
    assert parse_value("x", raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        ";;",
        "1;;2;;3",
        "a;;1",
        "-1;;",
        "1.2.3;;",
        "1,5;;2",
        " 1;;2",
        "2;;1",
        "A||B",
        "",
        "|",
        "x" * 1001,
    ],
)
def test_parse_value_rejects(raw):
    with pytest.raises(BadRequest):
        parse_value("x", raw)


def test_parse_filters_checks_names_and_parameters():
    assert parse_filters(
        "brand, price", [("filters", "brand, price"), ("brand", "A"), ("price", "1;;")], FIELDS
    ) == {"brand": AnyOf(("A",)), "price": Range(Decimal(1), None)}
    assert parse_filters(None, [("sort", "sku|asc"), ("pageSize", "5")], FIELDS) == {}
    assert parse_filters(" ", [("filters", " ")], FIELDS) == {}
    assert parse_filters(
        "sku,status,title,name,categories,variation_of",
        [
            ("sku", "a"),
            ("status", "active"),
            ("title", "t"),
            ("name", "n"),
            ("categories", "A > B"),
            ("variation_of", "P"),
        ],
        FIELDS,
    )
    for filters, params in [
        ("brand", []),
        ("nope", [("nope", "1")]),
        ("sort", [("sort", "sku|asc")]),
        (None, [("brand", "A")]),
        ("brand", [("brand", "A"), ("price", "1")]),
        ("brand", [("brand", "A"), ("brand", "B")]),
        ("brand,,price", [("brand", "A"), ("price", "1")]),
        (",".join(f"f{i}" for i in range(60)), []),
    ]:
        with pytest.raises(BadRequest):
            parse_filters(filters, params, FIELDS)


def _where(specs):
    where = SqlWhere()
    tenant = where.bind(1)
    add_filter_conditions(where, specs, FIELDS, tenant_placeholder=tenant)
    return where


def test_filter_sql_binds_every_name_and_value():
    where = _where({"brand": AnyOf(("Nike", "x'); DROP TABLE products; --"))})
    assert "DROP" not in where.sql and "Nike" not in where.sql
    assert where.conditions[-1] == "p.status <> 'deleted'"
    assert where.sql.count("p.data @>") == 2  # small any-of: one indexable containment per value
    where = _where({"brand": AnyOf(tuple(f"b{i}" for i in range(60)))})
    assert "@> ANY(" in where.sql
    where = _where({"price": Range(Decimal(1), None), "status": AnyOf(("deleted",))})
    assert "pim_num" in where.sql and ">=" in where.sql and "<=" not in where.sql
    assert "p.status <> 'deleted'" not in where.sql
    assert Decimal(1) in where.params and ["deleted"] in where.params
    where = _where({"categories": AnyOf(("Men >Shoes",))})
    assert ["Men > Shoes"] in where.params and ["Men > Shoes > %"] in where.params
    where = _where({"categories": AnyOf(("100%_off",))})
    assert ["100\\%\\_off > %"] in where.params  # LIKE wildcards in a path are literal
    for specs in (
        {"launch": Range(Decimal(1), None)},
        {"tags": Range(None, Decimal(2))},
        {"sku": Range(Decimal(1), None)},
        {"color": AnyOf(("green",))},
        {"launch": AnyOf(("tomorrow",))},
        {"status": AnyOf(("gone",))},
        {"eco": AnyOf(("maybe",))},
        {"seen": AnyOf(("yesterday",))},
    ):
        with pytest.raises(BadRequest):
            _where(specs)


def test_order_sql():
    where = SqlWhere()
    assert order_sql(where, None, FIELDS) == "p.id"
    assert order_sql(where, "sku|asc", FIELDS) == "p.sku ASC, p.id ASC"
    assert order_sql(where, "title|desc", FIELDS) == "p.name DESC, p.id DESC"
    assert order_sql(where, "price|desc", FIELDS).startswith(
        "pim_num(p.data -> 'price') DESC NULLS LAST"  # the typed index's expression
    )
    assert order_sql(where, "launch|asc", FIELDS).startswith("pim_date(")
    assert order_sql(where, "seen|asc", FIELDS).startswith("pim_timestamptz(")
    assert order_sql(where, "brand|asc", FIELDS).startswith("(p.data ->> ")
    for bad in ("sku", "sku|ASC", "sku|asc\n", "nope|asc", "categories|asc", "|asc", "a b|asc"):
        with pytest.raises(BadRequest):
            order_sql(SqlWhere(), bad, FIELDS)


def test_page_plan_fence_only_for_selective_filters():
    from app.pims.service import Context, build_queries

    def queries(specs, category_ids=None, page_num=1):
        ctx = Context(fields=FIELDS, view_fields=[], locale="en-us", category_ids=category_ids)
        return build_queries(
            ctx, tenant_id=7, specs=specs, sort=None, page_size=50, page_num=page_num
        )

    unfiltered = queries({})
    assert not unfiltered.fenced(10) and "(p.id + 0)" not in unfiltered.page(10)[0]
    assert not queries({"status": AnyOf(("active",))}).fenced(10)
    filtered = queries({"brand": AnyOf(("Nike",))})
    assert filtered.fenced(10) and not filtered.fenced(10**7)
    sql, params = filtered.page(10)
    assert "ORDER BY (p.id + 0)" in sql and sql.rstrip().endswith(
        "ORDER BY p.id"
    )  # the outer order stays plain
    assert params[0] == 7 and params[-2:] == [50, 0]
    assert queries({}, category_ids=[3, 4]).fenced(10)
    assert queries({}, page_num=3).page(100) is None  # past the last match: no page statement
    assert queries({}, page_num=2).page(100)[1][-2:] == [50, 50]
