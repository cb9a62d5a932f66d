"""The DSL: its shape and limits (`parse_definition`), and its resolution against a schema
into the checked tree the compiler reads (`resolve`).

Pure functions, no I/O. `category_ids(node)` lists the category ids a definition refers to,
so that the caller can resolve their subtrees before `resolve` (which cannot query the
database). Every error is a `DefinitionError` whose message names the place:
`conditions[1].conditions[0].value: not a number`.
"""

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from app.catalog.fields import FieldDef, FieldType
from app.products.rules import INT64_MAX
from app.query.models import (
    BUILTINS,
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_FIELD_NAME,
    MAX_LIST_VALUES,
    MAX_TEXT_VALUE,
    Check,
    Clause,
    Condition,
    DefinitionError,
    Group,
    Junction,
    Kind,
    Negation,
    Not,
    Op,
    Target,
    Test,
)


def like_escape(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (backslash is Postgres's default escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- parsing: shape and limits ----------------------------------------------------------------


def _sub(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _place(path: str) -> str:
    return path or "definition"


@dataclass
class _Budget:
    conditions: int = 0
    groups: int = 0


def parse_definition(raw: Any) -> Group | Negation | Condition:
    """Check the shape of a definition and its limits; raise DefinitionError naming the place."""
    return _parse_node(raw, "", 1, _Budget())


def condition_count(raw: Any) -> int:
    """The conditions of a raw definition (or of a body carrying one), counted before any check (at most MAX_CONDITIONS + 1):
    what a request will cost, weighed before it is parsed."""
    count, pending, visited = 0, [raw], 0
    while pending and count <= MAX_CONDITIONS and visited <= 4 * MAX_CONDITIONS:
        node = pending.pop()
        visited += 1
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            if "conditions" in node:
                pending.append(node["conditions"])
            elif "not" in node:
                pending.append(node["not"])
            elif "field" in node or "op" in node:
                count += 1
            else:  # a request body that carries a definition: {"where": {...}, "page": 2}
                pending.extend(node.values())
    return count


def _parse_node(raw: Any, path: str, depth: int, budget: _Budget) -> Group | Negation | Condition:
    if not isinstance(raw, dict):
        raise DefinitionError(
            _place(path),
            "must be an object: a group {match, conditions}, a negation {not} or a condition {field, op, value}",
        )
    if "match" in raw or "conditions" in raw:
        return _parse_group(raw, path, depth, budget)
    if "not" in raw:
        _check_keys(raw, {"not"}, path)
        _enter(path, depth, budget)
        return Negation(not_=_parse_node(raw["not"], _sub(path, "not"), depth + 1, budget))
    if "field" in raw or "op" in raw:
        return _parse_condition(raw, path, budget)
    raise DefinitionError(
        _place(path),
        "must be a group {match, conditions}, a negation {not} or a condition {field, op, value}",
    )


def is_text(value: str) -> bool:
    """Encodable as UTF-8: JSON can carry lone surrogates (`"\\ud800"`) that no database accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_keys(raw: dict, allowed: set[str], path: str) -> None:
    for key in raw:
        if key not in allowed:
            shown = key if len(key) <= 50 and is_text(key) else "…"
            raise DefinitionError(
                _sub(path, shown), f"unexpected key; allowed here: {', '.join(sorted(allowed))}"
            )


def _enter(path: str, depth: int, budget: _Budget) -> None:
    if depth > MAX_DEPTH:
        raise DefinitionError(
            _place(path), f"groups and negations are nested more than {MAX_DEPTH} levels deep"
        )
    budget.groups += 1
    if budget.groups > MAX_CONDITIONS:
        raise DefinitionError(_place(path), f"more than {MAX_CONDITIONS} groups and negations")


def _parse_group(raw: dict, path: str, depth: int, budget: _Budget) -> Group:
    _check_keys(raw, {"match", "conditions"}, path)
    _enter(path, depth, budget)
    match = raw.get("match")
    if match not in ("all", "any"):
        raise DefinitionError(_sub(path, "match"), 'must be "all" or "any"')
    conditions = raw.get("conditions", [])
    if not isinstance(conditions, list):
        raise DefinitionError(_sub(path, "conditions"), "must be a list")
    base = _sub(path, "conditions")
    children = [
        _parse_node(child, f"{base}[{i}]", depth + 1, budget) for i, child in enumerate(conditions)
    ]
    return Group(match=match, conditions=children)


def _parse_condition(raw: dict, path: str, budget: _Budget) -> Condition:
    _check_keys(raw, {"field", "op", "value"}, path)
    budget.conditions += 1
    if budget.conditions > MAX_CONDITIONS:
        raise DefinitionError(_place(path), f"more than {MAX_CONDITIONS} conditions")
    field = raw.get("field")
    if not isinstance(field, str) or not field or len(field) > MAX_FIELD_NAME or not is_text(field):
        raise DefinitionError(
            _sub(path, "field"),
            f"must be a field name (a string of 1 to {MAX_FIELD_NAME} characters)",
        )
    op = raw.get("op")
    if not isinstance(op, str) or op not in Op.__members__.values():
        raise DefinitionError(
            _sub(path, "op"), f"unknown operator; use one of {', '.join(o.value for o in Op)}"
        )
    value = raw.get("value")
    _check_value_shape(value, _sub(path, "value"))
    return Condition(field=field, op=Op(op), value=value)


def _check_value_shape(value: Any, path: str) -> None:
    """Values are JSON scalars or flat lists of scalars, of bounded size."""
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and len(value) > MAX_LIST_VALUES:
        raise DefinitionError(path, f"at most {MAX_LIST_VALUES} values")
    for i, item in enumerate(items):
        where = f"{path}[{i}]" if isinstance(value, list) else path
        if isinstance(item, (dict, list)):
            raise DefinitionError(where, "must be a string, number, boolean or a list of those")
        if isinstance(item, str):
            if len(item) > MAX_TEXT_VALUE:
                raise DefinitionError(where, f"longer than {MAX_TEXT_VALUE} characters")
            if "\x00" in item:
                raise DefinitionError(where, "must not contain NUL characters")
            if not is_text(item):
                raise DefinitionError(where, "is not valid Unicode text (a lone surrogate)")


def iter_conditions(
    node: Group | Negation | Condition, path: str = ""
) -> Iterator[tuple[str, Condition]]:
    """Every condition with its place, depth first."""
    if isinstance(node, Group):
        base = _sub(path, "conditions")
        for i, child in enumerate(node.conditions):
            yield from iter_conditions(child, f"{base}[{i}]")
    elif isinstance(node, Negation):
        yield from iter_conditions(node.not_, _sub(path, "not"))
    else:
        yield path, node


def category_ids(node: Group | Negation | Condition) -> set[int]:
    """Category ids named by `category` conditions (to resolve their subtrees before compiling)."""
    ids: set[int] = set()
    for _path, cond in iter_conditions(node):
        if cond.field == "category":
            for v in cond.value if isinstance(cond.value, list) else [cond.value]:
                if isinstance(v, int) and not isinstance(v, bool) and 0 < v <= INT64_MAX:
                    ids.add(v)
    return ids


# --- values ---------------------------------------------------------------------------------------


def _scalar(kind: Kind, value: Any, path: str) -> Any:
    """Check one value against the field's kind; return it in the form SQL is bound with."""
    if kind in (Kind.text, Kind.array):
        if not isinstance(value, str):
            raise DefinitionError(path, "must be a string")
        return value
    if kind == Kind.number:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DefinitionError(path, "must be a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise DefinitionError(path, "must be a finite number")
        return Decimal(str(value))
    if kind == Kind.boolean:
        if not isinstance(value, bool):
            raise DefinitionError(path, "must be true or false")
        return value
    if kind == Kind.date:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise DefinitionError(path, "must be an ISO date (YYYY-MM-DD)")
    if kind == Kind.datetime:
        if isinstance(value, str):
            text = value.strip()
            try:
                parsed = datetime.fromisoformat(
                    text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
                )
            except ValueError:
                pass
            else:
                try:
                    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
                except OverflowError:
                    raise DefinitionError(path, "is out of range") from None
        raise DefinitionError(path, "must be an ISO 8601 datetime (2026-11-22T13:42:00Z) or date")
    # category
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= INT64_MAX:
        raise DefinitionError(path, "must be a category id (a positive integer)")
    return value


def _values(kind: Kind, value: Any, path: str, *, allow_empty: bool = False) -> list[Any]:
    if not isinstance(value, list):
        raise DefinitionError(path, "must be a list")
    if not value and not allow_empty:
        raise DefinitionError(path, "must not be empty")
    return [_scalar(kind, v, f"{path}[{i}]") for i, v in enumerate(value)]


def _check_option(target: Target, value: str, path: str) -> None:
    if target.options is not None and value not in target.options:
        raise DefinitionError(path, f"{value!r} is not one of {', '.join(target.options)}")


# --- field kinds and operators ------------------------------------------------------------------


EVERY_TYPE = frozenset({Op.eq, Op.ne, Op.in_, Op.not_in, Op.is_empty, Op.is_not_empty})
TEXT_OPS = frozenset({Op.contains, Op.not_contains, Op.icontains, Op.starts_with, Op.ends_with})
ORDERED_OPS = frozenset({Op.gt, Op.gte, Op.lt, Op.lte, Op.between})
ARRAY_OPS = frozenset({Op.contains, Op.contains_any, Op.contains_all})
OPS_BY_KIND: dict[Kind, frozenset[Op]] = {
    Kind.text: EVERY_TYPE | TEXT_OPS,
    Kind.number: EVERY_TYPE | ORDERED_OPS,
    Kind.date: EVERY_TYPE | ORDERED_OPS,
    Kind.datetime: EVERY_TYPE | ORDERED_OPS,
    Kind.boolean: EVERY_TYPE,
    Kind.array: EVERY_TYPE | ARRAY_OPS,
    Kind.category: EVERY_TYPE | {Op.in_category},
}
KIND_OF_TYPE = {
    FieldType.string: Kind.text,
    FieldType.text: Kind.text,
    FieldType.url: Kind.text,
    FieldType.enum: Kind.text,
    FieldType.number: Kind.number,
    FieldType.integer: Kind.number,
    FieldType.date: Kind.date,
    FieldType.datetime: Kind.datetime,
    FieldType.boolean: Kind.boolean,
    FieldType.array: Kind.array,
}
NO_VALUE_OPS = frozenset({Op.is_empty, Op.is_not_empty})
COMPARISONS = {Op.gt: ">", Op.gte: ">=", Op.lt: "<", Op.lte: "<="}


def field_target(field: FieldDef) -> Target:
    """A schema field as a test target (its kind from its type)."""
    options = tuple(field.options) if field.type == FieldType.enum and field.options else None
    return Target(field.name, KIND_OF_TYPE[field.type], options=options)


def resolve_field(name: str, fields: Mapping[str, FieldDef]) -> Target | None:
    if name in BUILTINS:
        return BUILTINS[name]
    field = fields.get(name)
    return field_target(field) if field is not None else None


# --- resolution: a parsed definition checked against the schema ------------------------------------


def resolve(
    node: Group | Negation | Condition,
    fields: Mapping[str, FieldDef],
    *,
    subtrees: Mapping[int, Sequence[int]] | None = None,
) -> Clause:
    """The checked tree of a parsed definition: every field, operator and value checked against the
    tenant's schema and the built-ins, values in their SQL types.

    `subtrees` maps each category id the definition names (see `category_ids`) to the ids
    of the category and its descendants; an id missing from it is an unknown category.
    """
    return _resolve(node, "", fields, subtrees or {})


def _resolve(
    node, path: str, fields: Mapping[str, FieldDef], subtrees: Mapping[int, Sequence[int]]
) -> Clause:
    if isinstance(node, Group):
        base = _sub(path, "conditions")
        parts = [
            _resolve(child, f"{base}[{i}]", fields, subtrees)
            for i, child in enumerate(node.conditions)
        ]
        return parts[0] if len(parts) == 1 else Junction(node.match, tuple(parts))
    if isinstance(node, Negation):
        return Not(_resolve(node.not_, _sub(path, "not"), fields, subtrees))
    return _resolve_condition(node, path, fields, subtrees)


_NEGATIVE = {
    Op.ne: Op.eq,
    Op.not_in: Op.in_,
    Op.not_contains: Op.contains,
    Op.is_not_empty: Op.is_empty,
}


def _resolve_condition(
    cond: Condition, path: str, fields: Mapping[str, FieldDef], subtrees
) -> Clause:
    target = resolve_field(cond.field, fields)
    if target is None:
        raise DefinitionError(
            _sub(path, "field"),
            f"unknown field {cond.field!r}: not in the product schema and not a built-in",
        )
    if cond.op not in OPS_BY_KIND[target.kind]:
        allowed = " ".join(o.value for o in Op if o in OPS_BY_KIND[target.kind])
        raise DefinitionError(
            _sub(path, "op"),
            f"{cond.op.value!r} does not apply to {target.kind.value} field "
            f"{target.name!r}; use one of: {allowed}",
        )
    value_path = _sub(path, "value")
    if cond.op in NO_VALUE_OPS:
        if cond.value is not None:
            raise DefinitionError(value_path, f"{cond.op.value} takes no value")
    elif cond.value is None:
        raise DefinitionError(value_path, "is required")
    positive = _NEGATIVE.get(cond.op)
    if positive is not None:
        return Not(_positive(target, positive, cond.value, value_path, subtrees))
    return _positive(target, cond.op, cond.value, value_path, subtrees)


def _positive(target: Target, op: Op, value: Any, path: str, subtrees) -> Test:
    """The test of a non-negated operator."""
    if target.kind == Kind.category:
        return _category(target, op, value, path, subtrees)
    if target.kind == Kind.array:
        return _array(target, op, value, path)
    if op == Op.is_empty:
        return Test(Check.is_empty, target)
    if op == Op.eq:
        scalar = _scalar(target.kind, value, path)
        if target.kind == Kind.text:
            _check_option(target, scalar, path)
        if target.column is None and target.kind in (Kind.text, Kind.boolean):
            return Test(Check.contains_json, target, [{target.name: scalar}])
        return Test(Check.equals, target, scalar)
    if op == Op.in_:
        values = _values(target.kind, value, path)
        if target.kind == Kind.text:
            for i, v in enumerate(values):
                _check_option(target, v, f"{path}[{i}]")
        if target.kind == Kind.boolean:
            return Test(
                Check.contains_json, target, [{target.name: v} for v in dict.fromkeys(values)]
            )
        return Test(Check.one_of, target, values)
    if op in COMPARISONS:
        return Test(Check.compare, target, _scalar(target.kind, value, path), COMPARISONS[op])
    if op == Op.between:
        if not isinstance(value, list) or len(value) != 2:
            raise DefinitionError(path, "must be a list of two values: [low, high] (both included)")
        low, high = _values(target.kind, value, path)
        if low > high:
            raise DefinitionError(path, "the low end is greater than the high end")
        return Test(Check.between, target, (low, high))
    # text operators
    text = _scalar(Kind.text, value, path)
    pattern = {
        Op.contains: "%{}%",
        Op.icontains: "%{}%",
        Op.starts_with: "{}%",
        Op.ends_with: "%{}",
    }[op].format(like_escape(text))
    return Test(Check.like, target, pattern, "ILIKE" if op == Op.icontains else "LIKE")


def _array(target: Target, op: Op, value: Any, path: str) -> Test:
    name = target.name
    if op == Op.is_empty:
        return Test(Check.is_empty, target)
    if op == Op.contains:
        return Test(Check.contains_json, target, [{name: [_scalar(Kind.array, value, path)]}])
    if op == Op.contains_all:
        return Test(
            Check.contains_json,
            target,
            [{name: list(dict.fromkeys(_values(Kind.array, value, path)))}],
        )
    if op in (Op.contains_any, Op.in_):
        return Test(
            Check.any_element, target, list(dict.fromkeys(_values(Kind.array, value, path)))
        )
    if op == Op.eq:
        values = list(dict.fromkeys(_values(Kind.array, value, path, allow_empty=True)))
        return Test(Check.same_elements, target, values)
    raise DefinitionError(
        path, f"{op.value} does not apply to an array field"
    )  # pragma: no cover (checked above)


def _category(
    target: Target, op: Op, value: Any, path: str, subtrees: Mapping[int, Sequence[int]]
) -> Test:
    if op == Op.is_empty:
        return Test(Check.is_empty, target)

    def known(category_id: int, where: str) -> int:
        if category_id not in subtrees:
            raise DefinitionError(where, f"unknown category {category_id}")
        return category_id

    if op == Op.eq:
        return Test(
            Check.categories_contain, target, [known(_scalar(Kind.category, value, path), path)]
        )
    if op == Op.in_:
        ids = [known(v, f"{path}[{i}]") for i, v in enumerate(_values(Kind.category, value, path))]
        return Test(Check.categories_overlap, target, list(dict.fromkeys(ids)))
    # in_category: the category or any descendant; one id or a list of ids
    if isinstance(value, list):
        ids = [known(v, f"{path}[{i}]") for i, v in enumerate(_values(Kind.category, value, path))]
    else:
        ids = [known(_scalar(Kind.category, value, path), path)]
    tree: dict[int, None] = {}
    for category_id in ids:
        tree.update(dict.fromkeys(subtrees[category_id]))
    return Test(Check.categories_overlap, target, list(tree))
