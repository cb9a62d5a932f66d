"""SQL for the product list and facets: filters from query parameters, ordering, facets.

Every field name is checked against the schema (or the plain-key rule) before it
reaches SQL, and even then it travels as a bound parameter; every value is bound.
"""

from dataclasses import dataclass, field
from typing import Any

import orjson

from app.catalog.fields import (
    DATA_KEY_RE,
    FACETED,
    NUMERIC,
    RESERVED_NAMES,
    TEMPORAL,
    CoercionError,
    FieldDef,
    FieldType,
    coerce_value,
    plain_number,
)
from app.errors import BadRequest
from app.responses import json_text

OPERATORS = ("ne", "in", "gt", "gte", "lt", "lte", "contains", "icontains", "exists")
RANGE_SQL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
BUILTIN_ORDERING = {"id": "p.id", "sku": "p.sku", "name": "p.name", "status": "p.status",
                    "created_at": "p.created_at", "updated_at": "p.updated_at"}
# query parameters of the list/facets endpoints that are not field filters
CONTROL_PARAMS = frozenset({"q", "page", "page_size", "ordering", "status", "category", "sku", "sku__in"})
# exact filters on built-in text columns, beside the CONTROL_PARAMS (answered by the trigram and
# (tenant_id, variation_of) indexes)
BUILTIN_EXACT = {"name": "p.name", "variation_of": "p.variation_of"}
BUILTIN_FILTERS_HELP = "built-ins filter with q=, sku=, sku__in=, status=, category=, name= and variation_of= only"
MAX_IN_VALUES = 1000
MAX_FILTER_VALUE = 1000


@dataclass
class SqlWhere:
    """A growing list of SQL conditions over `products p` with positional parameters."""

    params: list[Any] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def add(self, condition: str) -> None:
        self.conditions.append(condition)

    @property
    def sql(self) -> str:
        return " AND ".join(self.conditions) if self.conditions else "TRUE"


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _json_scalar(raw: str) -> Any:
    """The JSON number or boolean `raw` spells, else None."""
    try:
        value = orjson.loads(raw.strip())
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, (bool, int, float)) else None


def _exact_values(field_def: FieldDef, key: str, raw: str) -> list[Any]:
    """The JSON values a schema field's exact filter matches: the value coerced to the field's type
    and the text as given (a value stored before the field was declared or retyped keeps its JSON
    type, and the contract's rule is `data->>'field' = value`), and the number or boolean the text
    spells. Compared by containment, which the GIN index answers."""
    candidates = [_coerce_filter(field_def, key, raw), raw]
    literal = _json_scalar(raw)
    if literal is not None:
        candidates.append(literal)
    unique: dict[str, Any] = {}
    for value in candidates:
        unique.setdefault(json_text(value), value)
    return list(unique.values())


def _containment_docs(field_def: FieldDef, key: str, raw_values: list[str]) -> list[str]:
    """`{"field": value}` documents (`{"field": [value]}` for arrays) for `data @> ANY(...)`."""
    wrap = (lambda v: [v]) if field_def.type == FieldType.array else (lambda v: v)
    return [json_text({field_def.name: wrap(v)}) for raw in raw_values for v in _exact_values(field_def, key, raw)]


def _coerce_filter(field_def: FieldDef | None, key: str, raw: str) -> Any:
    if field_def is None:
        return raw
    try:
        if field_def.type == FieldType.array:
            return raw
        return coerce_value(field_def.model_copy(update={"validation": None}), raw)
    except CoercionError as exc:
        raise BadRequest(f"Filter {key}: {str(exc).split(': ', 1)[-1]}") from None


class _LazyParam:
    """A field name bound as a parameter only when the SQL actually uses it (unused parameters have no type)."""

    def __init__(self, where: "SqlWhere", value: str):
        self._where, self._value, self._sql = where, value, None

    def __str__(self) -> str:
        if self._sql is None:
            self._sql = f"{self._where.bind(self._value)}::text"
        return self._sql

    __format__ = lambda self, spec: str(self)  # noqa: E731  (used inside f-strings)


def _typed_expr(field_def: FieldDef, key_param: str) -> tuple[str, str]:
    """(SQL expression of the stored value, SQL type to cast the bound value to)."""
    if field_def.type in NUMERIC:
        return f"pim_num(p.data -> {key_param})", "numeric"
    if field_def.type == FieldType.date:
        return f"pim_date(p.data ->> {key_param})", "date"
    if field_def.type == FieldType.datetime:
        return f"pim_timestamptz(p.data ->> {key_param})", "timestamptz"
    return f"(p.data ->> {key_param})", "text"


def _bind_typed(where: SqlWhere, value: Any, sql_type: str) -> str:
    # bound as text and cast in SQL, so the driver never has to guess a Python type
    if sql_type == "text":
        return f"{where.bind(str(value))}::text"
    return f"({where.bind(str(value))}::text)::{sql_type}"


def split_filter_key(fields: dict[str, FieldDef], key: str) -> tuple[str, str]:
    """(field name, operator) of a filter parameter: `<field>` or `<field>__<op>`. Field names may
    contain `__` themselves: a key that is a schema field's name is that field's exact filter,
    and otherwise the operator is what follows the last `__`."""
    if key in fields:
        return key, ""
    name, separator, op = key.rpartition("__")
    return (name, op) if separator else (key, "")


def _check_value_length(key: str, value: str) -> None:
    if len(value) > MAX_FILTER_VALUE:
        raise BadRequest(f"Filter {key}: value too long")


def add_field_filter(where: SqlWhere, fields: dict[str, FieldDef], key: str, raw: str) -> None:
    if key in BUILTIN_EXACT:
        _check_value_length(key, raw)
        where.add(f"{BUILTIN_EXACT[key]} = {where.bind(raw)}")
        return
    name, op = split_filter_key(fields, key)
    # an `__in` list takes up to MAX_IN_VALUES values: the length cap is per value, not the whole list
    for value in raw.split(",") if op == "in" else (raw,):
        _check_value_length(key, value)
    if op and op not in OPERATORS:
        raise BadRequest(f"Unknown operator {op!r} in {key!r}; use one of {', '.join(OPERATORS)}")
    # built-in columns and reserved query parameters are never data fields: a filter on one (other
    # than the CONTROL_PARAMS) is refused rather than silently run against `data`
    if name in RESERVED_NAMES:
        raise BadRequest(f"Unsupported filter {key!r}: {name!r} is not a data field ({BUILTIN_FILTERS_HELP})")
    field_def = fields.get(name)
    if field_def is None and not DATA_KEY_RE.match(name):
        raise BadRequest(f"Unknown filter {key!r}")
    key_param = _LazyParam(where, name)
    ftype = field_def.type if field_def else None

    if not op:
        if field_def is None:
            where.add(f"(p.data ->> {key_param}) = {where.bind(raw)}")
        else:
            # containment is answered by the GIN index on (tenant_id, data)
            where.add(f"p.data @> ANY({where.bind(_containment_docs(field_def, key, [raw]))}::jsonb[])")
        return

    if op == "exists":
        flag = raw.strip().lower()
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            raise BadRequest(f"Filter {key}: use true or false")
        present = f"(p.data ? {key_param} AND p.data -> {key_param} <> 'null'::jsonb)"
        where.add(present if flag in ("true", "1", "yes") else f"NOT {present}")
        return

    if op in ("contains", "icontains"):
        if ftype == FieldType.array and op == "contains":
            where.add(f"p.data @> {where.bind(json_text({name: [raw]}))}::jsonb")
            return
        operator = "LIKE" if op == "contains" else "ILIKE"
        if ftype == FieldType.array:
            where.add(
                f"EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(p.data -> {key_param}) = 'array' "
                f"THEN p.data -> {key_param} END) e WHERE e ILIKE {where.bind('%' + like_escape(raw) + '%')})"
            )
        else:
            where.add(f"(p.data ->> {key_param}) {operator} {where.bind('%' + like_escape(raw) + '%')}")
        return

    if op in ("ne", "in"):
        raw_values = [raw] if op == "ne" else [v for v in raw.split(",")]
        if len(raw_values) > MAX_IN_VALUES:
            raise BadRequest(f"Filter {key}: at most {MAX_IN_VALUES} values")
        if field_def is not None:
            cond = f"p.data @> ANY({where.bind(_containment_docs(field_def, key, raw_values))}::jsonb[])"
        else:
            cond = f"COALESCE((p.data ->> {key_param}) = ANY({where.bind(raw_values)}::text[]), false)"
        # `ne`: products without the field are "not equal" too, whatever the field
        where.add(cond if op == "in" else f"NOT ({cond})")
        return

    # gt gte lt lte: numbers and dates compare by type, strings as text
    if field_def is None:
        number = plain_number(raw)
        if number is None:
            where.add(f"(p.data ->> {key_param}) {RANGE_SQL[op]} {where.bind(raw)}")
        else:
            where.add(f"pim_num(p.data -> {key_param}) {RANGE_SQL[op]} {_bind_typed(where, number, 'numeric')}")
        return
    if ftype not in NUMERIC | TEMPORAL | {FieldType.string, FieldType.text, FieldType.url, FieldType.enum}:
        raise BadRequest(f"Filter {key}: {op} does not apply to a {ftype} field")
    value = _coerce_filter(field_def, key, raw)
    expr, sql_type = _typed_expr(field_def, key_param)
    where.add(f"{expr} {RANGE_SQL[op]} {_bind_typed(where, value, sql_type)}")


def ordering_terms(where: SqlWhere, fields: dict[str, FieldDef], ordering: str | None) -> list[tuple[str, str]]:
    """The ORDER BY of a list as (expression over `p`, direction) pairs, ending with `p.id` (a total order,
    so that pages never overlap). Field names are checked against the schema and bound as parameters."""
    terms: list[tuple[str, str]] = []
    for token in (ordering or "").split(","):
        token = token.strip()
        if not token:
            continue
        descending = token.startswith("-")
        name = token.lstrip("-")
        direction = "DESC" if descending else "ASC"
        if name in BUILTIN_ORDERING:
            terms.append((BUILTIN_ORDERING[name], direction))
            continue
        field_def = fields.get(name)
        if field_def is None:
            raise BadRequest(f"Cannot order by {name!r}: not a built-in or schema field")
        expr, _sql_type = _typed_expr(field_def, f"{where.bind(name)}::text")
        terms.append((expr, f"{direction} NULLS LAST"))
    if not terms or terms[-1][0] != "p.id":
        terms.append(("p.id", "ASC"))
    return terms


def ordering_sql(where: SqlWhere, fields: dict[str, FieldDef], ordering: str | None) -> str:
    return ", ".join(f"{expr} {direction}" for expr, direction in ordering_terms(where, fields, ordering))


def facet_fields(fields: dict[str, FieldDef]) -> list[FieldDef]:
    return [f for f in fields.values() if f.type in FACETED]
