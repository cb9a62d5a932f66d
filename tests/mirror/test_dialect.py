"""The ClickHouse dialect of the one compiler: the same tree, values and names bound, tests the
read model cannot answer refused (pure: no database)."""

from decimal import Decimal

import pytest

from app.catalog.fields import FieldDef
from app.query.clickhouse import Unsupported, compile_count, compile_predicate
from app.query.parsing import parse_definition, resolve

FIELDS = {
    f["name"]: FieldDef.model_validate(f)
    for f in (
        {"name": "brand", "type": "string"},
        {"name": "price", "type": "number"},
        {"name": "tags", "type": "array"},
        {"name": "launch", "type": "date"},
    )
}


def _resolved(definition: dict):
    return resolve(parse_definition(definition), FIELDS, subtrees={7: [7, 8]})


def compiled(definition: dict) -> tuple[str, dict]:
    return compile_predicate(_resolved(definition))


def test_values_and_names_are_parameters():
    sql, params = compiled(
        {
            "match": "any",
            "conditions": [
                {"field": "brand", "op": "eq", "value": "O'Neill') OR 1 --"},
                {"not": {"field": "price", "op": "between", "value": [1, 2.5]}},
                {"field": "tags", "op": "contains_any", "value": ["a", "b"]},
                {"field": "category", "op": "in_category", "value": 7},
            ],
        }
    )
    assert "O'Neill" not in sql and "'price'" not in sql
    assert "brand=O'Neill') OR 1 --" in params.values()
    assert "price" in params.values() and 2.5 in params.values()
    assert ["tags=a", "tags=b"] in params.values()
    assert [7, 8] in params.values()  # the category's subtree
    assert not any(isinstance(v, Decimal) for v in params.values())
    assert "NOT" in sql and " OR " in sql


def test_empty_groups_are_constants():
    assert compiled({"match": "all", "conditions": []})[0] == "1"
    assert compiled({"match": "any", "conditions": []})[0] == "0"
    assert compiled({"not": {"match": "all", "conditions": []}})[0] == "0"


@pytest.mark.parametrize(
    "definition",
    [
        {"field": "brand", "op": "contains", "value": "ik"},
        {"field": "launch", "op": "gte", "value": "2026-01-01"},
        {"field": "updated_at", "op": "gte", "value": "2026-01-01T00:00:00Z"},
        {"field": "tags", "op": "eq", "value": ["a"]},
        {"not": {"field": "name", "op": "starts_with", "value": "x"}},
    ],
)
def test_what_the_model_cannot_answer_is_refused(definition):
    with pytest.raises(Unsupported):
        compiled(definition)


def counted(definition: dict):
    return compile_count(_resolved(definition))


@pytest.mark.parametrize(
    "definition, table, entries",
    [
        ({"field": "brand", "op": "eq", "value": "O'Neill"}, "mirror_entries", ("brand=O'Neill",)),
        (
            {"field": "brand", "op": "in", "value": ["a", "b"]},
            "mirror_entries",
            ("brand=a", "brand=b"),
        ),
        ({"field": "tags", "op": "contains", "value": "a"}, "mirror_entries", ("[tags=a",)),
        ({"field": "tags", "op": "contains_any", "value": ["a"]}, "mirror_entries", ("[tags=a",)),
        (
            {"field": "tags", "op": "contains_all", "value": ["a", "a"]},
            "mirror_entries",
            ("[tags=a",),
        ),
        (
            {"match": "all", "conditions": [{"field": "price", "op": "gte", "value": 2.5}]},
            "mirror_numbers",
            None,
        ),
        ({"field": "price", "op": "between", "value": [1, 2]}, "mirror_numbers", None),
        ({"field": "price", "op": "in", "value": [1, 2]}, "mirror_numbers", None),
    ],
)
def test_one_test_filters_are_counted_from_the_count_tables(definition, table, entries):
    found = counted(definition)
    assert found is not None and found.table == table
    assert "O'Neill" not in found.condition  # bound, never spelt
    if entries is not None:
        assert tuple(entries) in found.params.values()
    else:
        assert "price" in found.params.values()


@pytest.mark.parametrize(
    "definition",
    [
        # two elements: a product holding both is in two count rows
        {"field": "tags", "op": "contains_any", "value": ["a", "b"]},
        {"field": "tags", "op": "contains_all", "value": ["a", "b"]},
        {"field": "brand", "op": "ne", "value": "a"},
        {"field": "brand", "op": "is_empty"},
        {"field": "price", "op": "ne", "value": 1},
        {"field": "sku", "op": "eq", "value": "a"},
        {"field": "category", "op": "in_category", "value": 7},
        {
            "match": "all",
            "conditions": [
                {"field": "brand", "op": "eq", "value": "a"},
                {"field": "price", "op": "gt", "value": 1},
            ],
        },
        {"match": "all", "conditions": []},
        {"field": "brand", "op": "eq", "value": "L" * 70},  # longer than the model keeps
    ],
)
def test_other_filters_are_not_counted_from_the_count_tables(definition):
    assert counted(definition) is None
