"""The segment definition DSL: parse, validate against a schema, compile to a SQL predicate.

Pure functions, no I/O:

- `parse_definition(raw)` checks the shape and the limits (depth, number of conditions)
  and returns `Group | Negation | Condition` models;
- `category_ids(node)` lists the category ids a definition refers to, so that the caller
  can resolve their subtrees (the compiler cannot query the database);
- `compile_definition(node, fields, subtrees=...)` checks every field, operator and value
  against the tenant's schema and the built-ins and returns a SQLAlchemy boolean
  expression over the `products` table (the `Product` model). Every value is a bound
  parameter; the expression is two-valued (never NULL), so `not` is an exact negation;
- `render_sql(statement)` renders a statement with literal values, for display only.

Every error is a `DefinitionError` whose message names the place:
`conditions[1].conditions[0].value: not a number`.
"""

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

import orjson
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ARRAY, BigInteger, Boolean, ColumnElement, Date, DateTime, Numeric, Text, and_, any_
from sqlalchemy import bindparam as _bindparam
from sqlalchemy import false, func, literal, literal_column, not_, or_, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import PGCompiler
from sqlalchemy.sql import Select

from app.catalog.fields import FieldDef, FieldType
from app.models import Product

MAX_DEPTH = 8  # nested groups / negations
MAX_CONDITIONS = 200  # leaf conditions; groups and negations are limited separately to the same number
MAX_LIST_VALUES = 1000
MAX_TEXT_VALUE = 1000
MAX_FIELD_NAME = 100
PG_BIGINT_MAX = 2**63 - 1
PRODUCT_STATUSES = ("active", "inactive", "deleted")


class DefinitionError(ValueError):
    """A definition that does not fit the DSL or the schema; `str()` is `"<place>: <why>"`."""

    def __init__(self, place: str, message: str):
        super().__init__(f"{place}: {message}")
        self.place = place
        self.message = message


# --- the DSL as Pydantic models ---------------------------------------------------------------


class Op(StrEnum):
    eq = "eq"
    ne = "ne"
    in_ = "in"
    not_in = "not_in"
    is_empty = "is_empty"
    is_not_empty = "is_not_empty"
    contains = "contains"
    not_contains = "not_contains"
    icontains = "icontains"
    starts_with = "starts_with"
    ends_with = "ends_with"
    gt = "gt"
    gte = "gte"
    lt = "lt"
    lte = "lte"
    between = "between"
    contains_any = "contains_any"
    contains_all = "contains_all"
    in_category = "in_category"


class Condition(BaseModel):
    """One test on a field: `{"field": "price", "op": "between", "value": [50, 150]}`."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="a schema field or a built-in: sku, name, status, category, variation_of, "
                                   "created_at, updated_at")
    op: Op = Field(description="every type: eq ne in not_in is_empty is_not_empty; text-like: contains "
                               "not_contains icontains starts_with ends_with; numbers and dates: gt gte lt lte "
                               "between; array: contains contains_any contains_all; category: in_category")
    value: Any = Field(default=None, description="a value of the field's type; a list for in, not_in, "
                                                 "contains_any, contains_all and between ([low, high], inclusive); "
                                                 "absent for is_empty and is_not_empty; a category id (or a list "
                                                 "of ids) for the category built-in")


class Group(BaseModel):
    """`all` (AND) or `any` (OR) of its conditions; an empty `all` matches every product."""

    model_config = ConfigDict(extra="forbid")

    match: Literal["all", "any"]
    conditions: list["Node"] = Field(default_factory=list)


class Negation(BaseModel):
    """`{"not": node}`: the products the node does not match."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    not_: "Node" = Field(alias="not")


Node = Annotated[Union[Group, Negation, Condition], Field(description="a group, a negation or a condition")]
Group.model_rebuild()
Negation.model_rebuild()


def dump_definition(node: Group | Negation | Condition) -> dict[str, Any]:
    """The normalised JSON form of a parsed definition (what is stored and returned)."""
    if isinstance(node, Group):
        return {"match": node.match, "conditions": [dump_definition(c) for c in node.conditions]}
    if isinstance(node, Negation):
        return {"not": dump_definition(node.not_)}
    out: dict[str, Any] = {"field": node.field, "op": node.op.value}
    if node.value is not None:
        out["value"] = node.value
    return out


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


def _parse_node(raw: Any, path: str, depth: int, budget: _Budget) -> Group | Negation | Condition:
    if not isinstance(raw, dict):
        raise DefinitionError(
            _place(path), "must be an object: a group {match, conditions}, a negation {not} or a condition {field, op, value}"
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
        _place(path), "must be a group {match, conditions}, a negation {not} or a condition {field, op, value}"
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
            raise DefinitionError(_sub(path, shown), f"unexpected key; allowed here: {', '.join(sorted(allowed))}")


def _enter(path: str, depth: int, budget: _Budget) -> None:
    if depth > MAX_DEPTH:
        raise DefinitionError(_place(path), f"groups and negations are nested more than {MAX_DEPTH} levels deep")
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
    children = [_parse_node(child, f"{base}[{i}]", depth + 1, budget) for i, child in enumerate(conditions)]
    return Group(match=match, conditions=children)


def _parse_condition(raw: dict, path: str, budget: _Budget) -> Condition:
    _check_keys(raw, {"field", "op", "value"}, path)
    budget.conditions += 1
    if budget.conditions > MAX_CONDITIONS:
        raise DefinitionError(_place(path), f"more than {MAX_CONDITIONS} conditions")
    field = raw.get("field")
    if not isinstance(field, str) or not field or len(field) > MAX_FIELD_NAME or not is_text(field):
        raise DefinitionError(_sub(path, "field"), f"must be a field name (a string of 1 to {MAX_FIELD_NAME} characters)")
    op = raw.get("op")
    if op not in Op.__members__.values():
        raise DefinitionError(_sub(path, "op"), f"unknown operator; use one of {', '.join(o.value for o in Op)}")
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


def iter_conditions(node: Group | Negation | Condition, path: str = "") -> Iterator[tuple[str, Condition]]:
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
                if isinstance(v, int) and not isinstance(v, bool) and 0 < v <= PG_BIGINT_MAX:
                    ids.add(v)
    return ids


# --- field kinds and operators ------------------------------------------------------------------


class Kind(StrEnum):
    text = "text"
    number = "number"
    date = "date"
    datetime = "datetime"
    boolean = "boolean"
    array = "array"
    category = "category"


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
LIST_OPS = frozenset({Op.in_, Op.not_in, Op.contains_any, Op.contains_all})
NO_VALUE_OPS = frozenset({Op.is_empty, Op.is_not_empty})


@dataclass(frozen=True)
class Target:
    """What a condition's `field` refers to: a built-in column or a key of `data`."""

    name: str
    kind: Kind
    column: Any = None  # the Product column of a built-in; None for a data field
    nullable: bool = False
    options: tuple[str, ...] | None = None


BUILTINS: dict[str, Target] = {
    "sku": Target("sku", Kind.text, Product.sku),
    "name": Target("name", Kind.text, Product.name),
    "status": Target("status", Kind.text, Product.status, options=PRODUCT_STATUSES),
    "variation_of": Target("variation_of", Kind.text, Product.variation_of, nullable=True),
    "created_at": Target("created_at", Kind.datetime, Product.created_at),
    "updated_at": Target("updated_at", Kind.datetime, Product.updated_at),
    "category": Target("category", Kind.category, Product.categories),
}


def resolve_field(name: str, fields: Mapping[str, FieldDef]) -> Target | None:
    if name in BUILTINS:
        return BUILTINS[name]
    field = fields.get(name)
    if field is None:
        return None
    options = tuple(field.options) if field.type == FieldType.enum and field.options else None
    return Target(field.name, KIND_OF_TYPE[field.type], options=options)


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
                parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
            except ValueError:
                pass
            else:
                try:
                    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
                except OverflowError:
                    raise DefinitionError(path, "is out of range") from None
        raise DefinitionError(path, "must be an ISO 8601 datetime (2026-11-22T13:42:00Z) or date")
    # category
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= PG_BIGINT_MAX:
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


# --- SQL building blocks ----------------------------------------------------------------------------


def _bind(value: Any, type_: Any) -> Any:
    return _bindparam(None, value, type_=type_, unique=True)


def _key(name: str):
    # field names travel as bound parameters too (they are validated against the schema anyway)
    return _bind(name, Text())


def _json(name: str) -> ColumnElement:
    """`data -> 'name'` (jsonb; NULL when the key is missing)."""
    return Product.data.op("->", return_type=JSONB)(_key(name))


def _json_text(name: str) -> ColumnElement:
    """`data ->> 'name'` (text; NULL when the key is missing)."""
    return Product.data.op("->>", return_type=Text)(_key(name))


def _data_contains(doc: dict[str, Any]) -> ColumnElement:
    """`data @> doc`: answered by the GIN index on (tenant_id, data), never NULL."""
    return Product.data.op("@>", return_type=Boolean)(_bind(doc, JSONB()))


def _two_valued(expr: ColumnElement) -> ColumnElement:
    """NULL (a missing or malformed value) counts as false, so that `not` is an exact negation."""
    return func.coalesce(expr, false())


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# constants of our own, not client values
_EMPTY_JSON = [literal_column(v, JSONB) for v in ("'null'::jsonb", "'\"\"'::jsonb", "'[]'::jsonb")]


def _data_is_empty(name: str) -> ColumnElement:
    """Missing key, JSON null, empty string or empty list."""
    value = _json(name)
    return or_(value.is_(None), value.in_(_EMPTY_JSON))


def _sql_type(kind: Kind) -> Any:
    return {
        Kind.text: Text(),
        Kind.number: Numeric(),
        Kind.date: Date(),
        Kind.datetime: DateTime(timezone=True),
        Kind.boolean: Boolean(),
        Kind.array: Text(),
        Kind.category: BigInteger(),
    }[kind]


def _typed_expr(target: Target) -> ColumnElement:
    """The SQL expression of the stored value, typed so that numbers and dates compare as such."""
    if target.column is not None:
        return target.column
    if target.kind == Kind.number:
        return func.pim_num(_json(target.name), type_=Numeric())
    if target.kind == Kind.date:
        return func.pim_date(_json_text(target.name), type_=Date())
    if target.kind == Kind.datetime:
        return func.pim_timestamptz(_json_text(target.name), type_=DateTime(timezone=True))
    return _json_text(target.name)


# --- the compiler -------------------------------------------------------------------------------------


def compile_definition(
    node: Group | Negation | Condition,
    fields: Mapping[str, FieldDef],
    *,
    subtrees: Mapping[int, Sequence[int]] | None = None,
) -> ColumnElement:
    """A boolean SQL expression over `products` that is true exactly for the matching products.

    `subtrees` maps each category id the definition names (see `category_ids`) to the ids
    of the category and its descendants; an id missing from it is an unknown category.
    """
    return _compile(node, "", fields, subtrees or {})


def _compile(node, path: str, fields: Mapping[str, FieldDef], subtrees: Mapping[int, Sequence[int]]) -> ColumnElement:
    if isinstance(node, Group):
        base = _sub(path, "conditions")
        parts = [_compile(child, f"{base}[{i}]", fields, subtrees) for i, child in enumerate(node.conditions)]
        if not parts:
            return true() if node.match == "all" else false()  # all of nothing / any of nothing
        if len(parts) == 1:
            return parts[0]
        return and_(*parts) if node.match == "all" else or_(*parts)
    if isinstance(node, Negation):
        return not_(_compile(node.not_, _sub(path, "not"), fields, subtrees))
    return _compile_condition(node, path, fields, subtrees)


_NEGATIVE = {Op.ne: Op.eq, Op.not_in: Op.in_, Op.not_contains: Op.contains, Op.is_not_empty: Op.is_empty}


def _compile_condition(cond: Condition, path: str, fields: Mapping[str, FieldDef], subtrees) -> ColumnElement:
    target = resolve_field(cond.field, fields)
    if target is None:
        raise DefinitionError(_sub(path, "field"), f"unknown field {cond.field!r}: not in the product schema and not a built-in")
    if cond.op not in OPS_BY_KIND[target.kind]:
        allowed = " ".join(o.value for o in Op if o in OPS_BY_KIND[target.kind])
        raise DefinitionError(_sub(path, "op"), f"{cond.op.value!r} does not apply to {target.kind.value} field "
                                                f"{target.name!r}; use one of: {allowed}")
    value_path = _sub(path, "value")
    if cond.op in NO_VALUE_OPS:
        if cond.value is not None:
            raise DefinitionError(value_path, f"{cond.op.value} takes no value")
    elif cond.value is None:
        raise DefinitionError(value_path, "is required")
    positive = _NEGATIVE.get(cond.op)
    if positive is not None:
        return not_(_positive(target, positive, cond.value, value_path, subtrees))
    return _positive(target, cond.op, cond.value, value_path, subtrees)


def _positive(target: Target, op: Op, value: Any, path: str, subtrees) -> ColumnElement:
    """The two-valued SQL of a non-negated operator."""
    if target.kind == Kind.category:
        return _category(op, value, path, subtrees)
    if target.kind == Kind.array:
        return _array(target.name, op, value, path)
    if op == Op.is_empty:
        if target.column is None:
            return _data_is_empty(target.name)
        if target.kind == Kind.text:
            return func.coalesce(target.column, literal("", Text())) == ""
        return target.column.is_(None)  # created_at / updated_at: never empty

    expr = _typed_expr(target)
    nullable = target.column is None or target.nullable

    def done(condition: ColumnElement) -> ColumnElement:
        return _two_valued(condition) if nullable else condition

    if op == Op.eq:
        scalar = _scalar(target.kind, value, path)
        if target.kind == Kind.text:
            _check_option(target, scalar, path)
        if target.column is None and target.kind in (Kind.text, Kind.boolean):
            return _data_contains({target.name: scalar})
        return done(expr == _bind(scalar, _sql_type(target.kind)))
    if op == Op.in_:
        values = _values(target.kind, value, path)
        if target.kind == Kind.text:
            for i, v in enumerate(values):
                _check_option(target, v, f"{path}[{i}]")
        if target.kind == Kind.boolean:
            return or_(*[_data_contains({target.name: v}) for v in dict.fromkeys(values)])
        return done(expr == any_(_bind(values, ARRAY(_sql_type(target.kind)))))
    if op in (Op.gt, Op.gte, Op.lt, Op.lte):
        bound = _bind(_scalar(target.kind, value, path), _sql_type(target.kind))
        comparison = {Op.gt: expr > bound, Op.gte: expr >= bound, Op.lt: expr < bound, Op.lte: expr <= bound}[op]
        return done(comparison)
    if op == Op.between:
        if not isinstance(value, list) or len(value) != 2:
            raise DefinitionError(path, "must be a list of two values: [low, high] (both included)")
        low, high = _values(target.kind, value, path)
        if low > high:
            raise DefinitionError(path, "the low end is greater than the high end")
        sql_type = _sql_type(target.kind)
        return done(expr.between(_bind(low, sql_type), _bind(high, sql_type)))
    # text operators
    text = _scalar(Kind.text, value, path)
    pattern = {
        Op.contains: "%{}%",
        Op.icontains: "%{}%",
        Op.starts_with: "{}%",
        Op.ends_with: "%{}",
    }[op].format(_like_escape(text))
    bound = _bind(pattern, Text())
    if op == Op.icontains:
        return done(expr.ilike(bound, escape="\\"))
    return done(expr.like(bound, escape="\\"))


def _array(name: str, op: Op, value: Any, path: str) -> ColumnElement:
    if op == Op.is_empty:
        return _data_is_empty(name)
    if op == Op.contains:
        return _data_contains({name: [_scalar(Kind.array, value, path)]})
    if op == Op.contains_all:
        return _data_contains({name: list(dict.fromkeys(_values(Kind.array, value, path)))})
    if op in (Op.contains_any, Op.in_):
        values = list(dict.fromkeys(_values(Kind.array, value, path)))
        stored = _json(name)
        # `?|`: any of the strings is an element; only for lists, so a scalar string never matches
        return _two_valued(
            and_(func.jsonb_typeof(stored) == "array", stored.op("?|", return_type=Boolean)(_bind(values, ARRAY(Text()))))
        )
    if op == Op.eq:
        # the same set of elements, in any order
        values = list(dict.fromkeys(_values(Kind.array, value, path, allow_empty=True)))
        stored = _json(name)
        doc = _bind(values, JSONB())
        return _two_valued(
            and_(
                func.jsonb_typeof(stored) == "array",
                stored.op("@>", return_type=Boolean)(doc),
                stored.op("<@", return_type=Boolean)(_bind(values, JSONB())),
            )
        )
    raise DefinitionError(path, f"{op.value} does not apply to an array field")  # pragma: no cover (checked above)


def _category(op: Op, value: Any, path: str, subtrees: Mapping[int, Sequence[int]]) -> ColumnElement:
    column = Product.categories
    if op == Op.is_empty:
        return func.cardinality(column) == 0

    def known(category_id: int, where: str) -> int:
        if category_id not in subtrees:
            raise DefinitionError(where, f"unknown category {category_id}")
        return category_id

    if op == Op.eq:
        category_id = known(_scalar(Kind.category, value, path), path)
        return column.op("@>", return_type=Boolean)(_bind([category_id], ARRAY(BigInteger())))
    if op == Op.in_:
        ids = [known(v, f"{path}[{i}]") for i, v in enumerate(_values(Kind.category, value, path))]
        return column.op("&&", return_type=Boolean)(_bind(list(dict.fromkeys(ids)), ARRAY(BigInteger())))
    # in_category: the category or any descendant; one id or a list of ids
    if isinstance(value, list):
        ids = [known(v, f"{path}[{i}]") for i, v in enumerate(_values(Kind.category, value, path))]
    else:
        ids = [known(_scalar(Kind.category, value, path), path)]
    tree: dict[int, None] = {}
    for category_id in ids:
        tree.update(dict.fromkeys(subtrees[category_id]))
    return column.op("&&", return_type=Boolean)(_bind(list(tree), ARRAY(BigInteger())))


# --- display ------------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _DisplayCompiler(PGCompiler):
    """Renders bound values as SQL literals. For showing a query to a person, never for running it."""

    def render_literal_value(self, value, type_):
        if isinstance(type_, JSONB):
            return _quote(orjson.dumps(value).decode()) + "::jsonb"
        if value is None:
            return "NULL"
        if isinstance(type_, ARRAY):
            item_type = type_.item_type
            items = ", ".join(self.render_literal_value(v, item_type) for v in value)
            return f"ARRAY[{items}]::{self.dialect.type_compiler_instance.process(item_type)}[]"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, Decimal)):
            return str(value)
        if isinstance(value, datetime):
            return _quote(value.isoformat()) + "::timestamptz"
        if isinstance(value, date):
            return _quote(value.isoformat()) + "::date"
        if isinstance(value, str):
            return _quote(value)
        return super().render_literal_value(value, type_)


class _DisplayDialect(postgresql.dialect):
    statement_compiler = _DisplayCompiler


_DISPLAY_DIALECT = _DisplayDialect()


def render_sql(statement: Select | ColumnElement) -> str:
    """The statement with its values inlined, one clause per line: display only."""
    compiled = statement.compile(dialect=_DISPLAY_DIALECT, compile_kwargs={"literal_binds": True})
    return str(compiled)
