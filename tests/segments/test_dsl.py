"""The definition compiler, without a database: shapes, limits, types, bound values, rendering."""

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from app.catalog.fields import FieldDef
from app.models import Product
from app.segments.dsl import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    DefinitionError,
    category_ids,
    compile_definition,
    dump_definition,
    parse_definition,
    render_sql,
)

FIELDS = {
    f.name: f
    for f in [
        FieldDef(name="brand"),
        FieldDef(name="notes", type="text"),
        FieldDef(name="price", type="number"),
        FieldDef(name="stock", type="integer"),
        FieldDef(name="tags", type="array"),
        FieldDef(name="released", type="date"),
        FieldDef(name="launched_at", type="datetime"),
        FieldDef(name="color", type="enum", options=["red", "blue"]),
        FieldDef(name="active", type="boolean"),
        FieldDef(name="site", type="url"),
    ]
}


def compile_sql(definition, subtrees=None):
    """(SQL as executed, with placeholders; its parameters)."""
    predicate = compile_definition(parse_definition(definition), FIELDS, subtrees=subtrees or {})
    compiled = select(Product.id).where(predicate).compile(dialect=postgresql.asyncpg.dialect())
    return str(compiled), compiled.params


def error_of(definition, subtrees=None) -> str:
    with pytest.raises(DefinitionError) as info:
        compile_definition(parse_definition(definition), FIELDS, subtrees=subtrees or {})
    return str(info.value)


def cond(field, op, value=None, **extra):
    node = {"field": field, "op": op, **extra}
    if value is not None:
        node["value"] = value
    return node


def all_of(*conditions):
    return {"match": "all", "conditions": list(conditions)}


# --- shape and limits ---------------------------------------------------------------------------


def test_round_trip_of_a_nested_definition():
    definition = all_of(
        cond("brand", "in", ["Nike", "Adidas"]),
        cond("price", "between", [50, 150]),
        {
            "match": "any",
            "conditions": [
                cond("tags", "contains", "running"),
                {"not": cond("name", "icontains", "kids")},
            ],
        },
    )
    assert dump_definition(parse_definition(definition)) == definition


@pytest.mark.parametrize(
    ("definition", "detail"),
    [
        ("brand", "definition: must be an object"),
        ({"match": "some", "conditions": []}, "match: must be"),
        ({"match": "all", "conditions": {}}, "conditions: must be a list"),
        (all_of(cond("brand", "eq", "x"), {}), "conditions[1]: must be a group"),
        (
            all_of({"field": "brand", "op": "eq", "value": "x", "extra": 1}),
            "conditions[0].extra: unexpected key",
        ),
        (all_of(cond("brand", "like", "x")), "conditions[0].op: unknown operator"),
        (all_of({"op": "eq", "value": "x"}), "conditions[0].field: must be a field name"),
        (all_of(cond("brand", "eq", {"a": 1})), "conditions[0].value: must be a string, number"),
        (
            all_of(cond("brand", "in", ["a", ["b"]])),
            "conditions[0].value[1]: must be a string, number",
        ),
        (all_of({"not": "x"}), "conditions[0].not: must be an object"),
        (all_of(cond("brand", "eq", "a\x00b")), "conditions[0].value: must not contain NUL"),
        (
            all_of(cond("brand", "in", ["a", "\ud800"])),
            "conditions[0].value[1]: is not valid Unicode text",
        ),
        (
            all_of({"field": "brand", "op": "eq", "value": "x", "\ud800": 1}),
            "conditions[0].…: unexpected key",
        ),
        (all_of(cond("brand", "eq", "x" * 1001)), "conditions[0].value: longer than 1000"),
        (all_of(cond("brand", "in", ["x"] * 1001)), "conditions[0].value: at most 1000 values"),
    ],
)
def test_shape_errors_name_the_place(definition, detail):
    with pytest.raises(DefinitionError) as info:
        parse_definition(definition)
    assert str(info.value).startswith(detail), str(info.value)


def nested(levels: int) -> dict:
    node = cond("brand", "eq", "x")
    for _ in range(levels):
        node = all_of(node)
    return node


def test_depth_limit():
    parse_definition(nested(MAX_DEPTH))  # eight nested groups are fine
    with pytest.raises(DefinitionError) as info:
        parse_definition(nested(MAX_DEPTH + 1))
    assert str(info.value).startswith("conditions[0]" + ".conditions[0]" * (MAX_DEPTH - 1) + ": ")
    assert "more than 8 levels" in str(info.value)
    # negations count as levels too; very deep input fails fast, without recursion trouble
    deep = cond("brand", "eq", "x")
    for _ in range(5000):
        deep = {"not": deep}
    with pytest.raises(DefinitionError):
        parse_definition(deep)


def test_condition_limit():
    parse_definition(all_of(*[cond("brand", "eq", str(i)) for i in range(MAX_CONDITIONS)]))
    with pytest.raises(DefinitionError) as info:
        parse_definition(all_of(*[cond("brand", "eq", str(i)) for i in range(MAX_CONDITIONS + 1)]))
    assert str(info.value) == f"conditions[{MAX_CONDITIONS}]: more than {MAX_CONDITIONS} conditions"
    with pytest.raises(DefinitionError, match="groups"):
        parse_definition(all_of(*[all_of() for _ in range(MAX_CONDITIONS + 1)]))


# --- fields, operators and values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "detail"),
    [
        (all_of(cond("colour", "eq", "red")), "conditions[0].field: unknown field 'colour'"),
        (
            all_of(cond("price", "contains", "1")),
            "conditions[0].op: 'contains' does not apply to number field 'price'",
        ),
        (
            all_of(cond("brand", "gt", "a")),
            "conditions[0].op: 'gt' does not apply to text field 'brand'",
        ),
        (
            all_of(cond("tags", "starts_with", "a")),
            "conditions[0].op: 'starts_with' does not apply",
        ),
        (all_of(cond("active", "gt", True)), "conditions[0].op"),
        (all_of(cond("category", "contains", 1)), "conditions[0].op"),
        (all_of(cond("brand", "in_category", 1)), "conditions[0].op"),
        (all_of(cond("price", "gt", "12")), "conditions[0].value: must be a number"),
        (all_of(cond("price", "gt", True)), "conditions[0].value: must be a number"),
        (all_of(cond("price", "eq")), "conditions[0].value: is required"),
        (all_of(cond("price", "is_empty", 1)), "conditions[0].value: is_empty takes no value"),
        (
            all_of(cond("price", "between", [1])),
            "conditions[0].value: must be a list of two values",
        ),
        (all_of(cond("price", "between", [5, 1])), "conditions[0].value: the low end is greater"),
        (all_of(cond("price", "in", [1, "x"])), "conditions[0].value[1]: must be a number"),
        (all_of(cond("price", "in", [])), "conditions[0].value: must not be empty"),
        (all_of(cond("price", "in", 3)), "conditions[0].value: must be a list"),
        (all_of(cond("brand", "eq", 3)), "conditions[0].value: must be a string"),
        (all_of(cond("released", "gt", "yesterday")), "conditions[0].value: must be an ISO date"),
        (
            all_of(cond("launched_at", "lt", "soon")),
            "conditions[0].value: must be an ISO 8601 datetime",
        ),
        (all_of(cond("updated_at", "gte", 5)), "conditions[0].value: must be an ISO 8601 datetime"),
        (
            all_of(cond("created_at", "gt", "9999-12-31T23:59:59-05:00")),
            "conditions[0].value: is out of range",
        ),
        (
            all_of(cond("created_at", "between", ["2020-01-01T06:00:00+05:00", "2020-01-01"])),
            "conditions[0].value: the low end is greater",
        ),
        (all_of(cond("active", "eq", "yes")), "conditions[0].value: must be true or false"),
        (
            all_of(cond("color", "eq", "green")),
            "conditions[0].value: 'green' is not one of red, blue",
        ),
        (
            all_of(cond("status", "in", ["active", "gone"])),
            "conditions[0].value[1]: 'gone' is not one of",
        ),
        (all_of(cond("tags", "contains", ["a"])), "conditions[0].value: must be a string"),
        (all_of(cond("tags", "contains_all", "a")), "conditions[0].value: must be a list"),
        (all_of(cond("category", "in_category", 7)), "conditions[0].value: unknown category 7"),
        (all_of(cond("category", "in", [1, 7])), "conditions[0].value[1]: unknown category 7"),
        (all_of(cond("category", "eq", "1")), "conditions[0].value: must be a category id"),
        (
            all_of(
                cond("brand", "eq", "x"),
                {"match": "any", "conditions": [cond("sku", "eq", "a"), cond("price", "gt", "x")]},
            ),
            "conditions[1].conditions[1].value: must be a number",
        ),
        (all_of({"not": cond("stock", "lt", [1])}), "conditions[0].not.value: must be a number"),
    ],
)
def test_schema_errors_name_the_place(definition, detail):
    message = error_of(definition, subtrees={1: [1, 2]})
    assert message.startswith(detail), message


def test_every_value_is_bound():
    hostile = "x' OR '1'='1'; DROP TABLE products; --"
    definition = all_of(
        cond("brand", "eq", hostile),
        cond("brand", "in", [hostile, "b"]),
        cond("name", "icontains", hostile),
        cond("sku", "starts_with", hostile),
        cond("tags", "contains_any", [hostile]),
        cond("tags", "eq", [hostile]),
        cond("price", "between", [1, 2.5]),
        cond("released", "gte", "2024-01-31"),
        cond("color", "ne", "red"),
        cond("category", "in_category", 3),
    )
    sql, params = compile_sql(definition, subtrees={3: [3, 4]})
    assert "DROP" not in sql and "'1'='1" not in sql and "Nike" not in sql
    assert "2024" not in sql and "2.5" not in sql and "red" not in sql
    assert any(hostile in str(v) for v in params.values())
    # text field names travel as parameters as well; a number or date field's name is a literal
    # (the typed indexes are on that expression), admitted only in the data-key syntax
    assert "'brand'" not in sql
    assert "pim_num(products.data -> 'price')" in sql


def test_typed_field_names_are_checked_literals():
    from app.query.compiling import key_literal

    assert key_literal("price") == "'price'"
    for hostile in ("x' OR '1'='1", "a b", "price\n", "", "1abc", "a" * 65, "é"):
        with pytest.raises(ValueError):
            key_literal(hostile)


def test_types_compare_as_types():
    sql, _ = compile_sql(all_of(cond("price", "gt", 10), cond("stock", "lte", 3)))
    assert sql.count("pim_num(") == 2 and "NUMERIC" in sql
    sql, _ = compile_sql(all_of(cond("released", "lt", "2024-01-01")))
    assert "pim_date(" in sql and "DATE" in sql
    sql, _ = compile_sql(all_of(cond("launched_at", "gte", "2024-01-01T10:00:00Z")))
    assert "pim_timestamptz(" in sql
    sql, _ = compile_sql(all_of(cond("created_at", "gte", "2024-01-01")))
    assert "products.created_at >=" in sql


def test_arrays_use_containment_and_categories_their_subtree():
    sql, params = compile_sql(
        all_of(cond("tags", "contains", "running"), cond("tags", "contains_all", ["a", "b"]))
    )
    assert sql.count("products.data @>") == 2
    assert {"tags": ["running"]} in params.values() and {"tags": ["a", "b"]} in params.values()
    sql, params = compile_sql(all_of(cond("category", "in_category", 3)), subtrees={3: [3, 4, 9]})
    assert "products.categories &&" in sql and [3, 4, 9] in params.values()
    sql, params = compile_sql(
        all_of(cond("category", "in_category", [3, 5])), subtrees={3: [3, 4], 5: [5, 4]}
    )
    assert [3, 4, 5] in params.values()


def test_equality_on_text_fields_uses_the_gin_index():
    sql, params = compile_sql(all_of(cond("brand", "eq", "Nike")))
    assert "products.data @>" in sql and {"brand": "Nike"} in params.values()


def test_negations_are_two_valued():
    # a missing value makes a comparison NULL; coalesce turns it into false so that NOT is exact
    sql, _ = compile_sql({"not": cond("price", "gt", 5)})
    assert "NOT coalesce(" in sql.replace("\n", " ")
    sql, _ = compile_sql(cond("brand", "ne", "x"))
    assert sql.replace("\n", " ").count("NOT") == 1


def test_empty_groups():
    assert compile_sql(all_of())[0].endswith("true")
    assert compile_sql({"match": "any", "conditions": []})[0].endswith("false")


def test_like_wildcards_are_escaped():
    _sql, params = compile_sql(all_of(cond("name", "contains", "50%_off\\")))
    assert "%50\\%\\_off\\\\%" in params.values()


def test_category_ids_are_collected_for_resolution():
    node = parse_definition(
        all_of(
            cond("category", "in_category", 3),
            {"not": cond("category", "in", [4, 5])},
            cond("brand", "eq", "x"),
        )
    )
    assert category_ids(node) == {3, 4, 5}


def test_render_sql_inlines_values_for_display():
    definition = all_of(
        cond("brand", "in", ["Nike", "O'Neil"]),
        cond("price", "between", [50, 150.5]),
        cond("tags", "contains", "running"),
        cond("released", "gte", "2024-01-01"),
        cond("category", "in_category", 3),
        {"not": cond("name", "icontains", "kids")},
    )
    predicate = compile_definition(parse_definition(definition), FIELDS, subtrees={3: [3, 4]})
    shown = render_sql(select(Product.id, Product.sku).where(predicate))
    assert "ARRAY['Nike', 'O''Neil']" in shown
    assert "BETWEEN 50 AND 150.5" in shown
    assert """'{"tags":["running"]}'::jsonb""" in shown
    assert "'2024-01-01'::date" in shown
    assert "ARRAY[3, 4]" in shown
    assert "NOT ILIKE '%kids%'" in shown
    assert "(products.data ->> 'brand')" in shown
