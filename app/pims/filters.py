"""Pure parsing of the PIMS query parameters and the SQL they become.

`filters=brand,price` names the filtered attributes; each has its own parameter:
`brand=A|B` (any of) or `price=100.00;;1000.00` (inclusive range, digits and periods
only, either end may be empty). Attribute names are checked against the schema and the
built-ins before anything reaches SQL; field names and values travel as bound parameters.
"""

import re
from dataclasses import dataclass
from decimal import Decimal

from app.catalog.fields import (
    NUMERIC,
    STRING_LIKE,
    TEMPORAL,
    CoercionError,
    FieldDef,
    FieldType,
    coerce_value,
)
from app.catalog.service import PATH_SEPARATOR
from app.errors import BadRequest, ErrorCode
from app.products.rules import STATUSES
from app.query.compiling import SqlWhere, add_conditions, order_expr
from app.query.models import BUILTINS, Check, Clause, Junction, Kind, Not, Target, Test
from app.query.parsing import field_target, like_escape

CONTROL_PARAMS = frozenset({"filters", "sort", "pageSize", "pageNum"})
# built-in attributes that can be filtered: name → the built-in it reads (categories is matched by path)
BUILTIN_FILTERS = {
    "sku": "sku",
    "title": "name",
    "name": "name",
    "status": "status",
    "variation_of": "variation_of",
    "categories": "category",
}
BUILTIN_SORTS = {
    "sku": "p.sku",
    "title": "p.name",
    "name": "p.name",
    "status": "p.status",
    "variation_of": "p.variation_of",
}
SORT_RE = re.compile(r"^\w+\|(asc|desc)$")
RANGE_SEPARATOR = ";;"
ANY_SEPARATOR = "|"
RANGE_END_RE = re.compile(r"^(\d+\.?\d*|\.\d+)$")  # digits and periods only, one period at most
MAX_VALUES = 1000
MAX_VALUE_LENGTH = 1000
MAX_FILTERS = 50


@dataclass(frozen=True)
class AnyOf:
    values: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    low: Decimal | None
    high: Decimal | None


FilterSpec = AnyOf | Range


def parse_value(name: str, raw: str) -> FilterSpec:
    """`A|B` → AnyOf, `1.5;;20` / `;;20` / `1.5;;` → Range; anything else breaking the rules is a 400."""
    if len(raw) > MAX_VALUE_LENGTH:
        raise BadRequest(
            f"{name}: the value is longer than {MAX_VALUE_LENGTH} characters",
            code=ErrorCode.invalid_filter,
            param=name,
        )
    if RANGE_SEPARATOR in raw:
        parts = raw.split(RANGE_SEPARATOR)
        if len(parts) != 2:
            raise BadRequest(
                f"{name}: a range is `min;;max` with one `;;`",
                code=ErrorCode.invalid_filter,
                param=name,
            )
        ends: list[Decimal | None] = []
        for part in parts:
            if part == "":
                ends.append(None)
            elif RANGE_END_RE.match(part):
                ends.append(Decimal(part))
            else:
                raise BadRequest(
                    f"{name}: range ends may contain only digits and periods, got {part!r}",
                    code=ErrorCode.invalid_filter,
                    param=name,
                )
        low, high = ends
        if low is None and high is None:
            raise BadRequest(
                f"{name}: a range needs at least one end", code=ErrorCode.invalid_filter, param=name
            )
        if low is not None and high is not None and low > high:
            raise BadRequest(
                f"{name}: the range's lower end is greater than its upper end",
                code=ErrorCode.invalid_filter,
                param=name,
            )
        return Range(low, high)
    values = raw.split(ANY_SEPARATOR)
    if any(v == "" for v in values):
        raise BadRequest(
            f"{name}: empty value (separate several values with `|`)",
            code=ErrorCode.invalid_filter,
            param=name,
        )
    if len(values) > MAX_VALUES:
        raise BadRequest(
            f"{name}: at most {MAX_VALUES} values", code=ErrorCode.invalid_filter, param=name
        )
    return AnyOf(tuple(dict.fromkeys(values)))


def parse_filters(
    filters: str | None, params: list[tuple[str, str]], fields: dict[str, FieldDef]
) -> dict[str, FilterSpec]:
    """The filtered attributes with their specs, checked against `filters` and the schema."""
    counts: dict[str, int] = {}
    for key, _value in params:
        counts[key] = counts.get(key, 0) + 1
    repeated = sorted(k for k, n in counts.items() if n > 1)
    if repeated:
        raise BadRequest(
            f"Query parameter {repeated[0]!r} is given more than once", param=repeated[0]
        )
    names: list[str] = []
    if filters is not None and filters.strip():  # an empty `filters=` filters nothing
        names = list(dict.fromkeys(n.strip() for n in filters.split(",")))
        if any(not n for n in names):
            raise BadRequest(
                "filters: empty attribute name (use `filters=brand,price`)", param="filters"
            )
        if len(names) > MAX_FILTERS:
            raise BadRequest(f"filters: at most {MAX_FILTERS} attributes", param="filters")
    for name in names:
        if name in CONTROL_PARAMS or (name not in fields and name not in BUILTIN_FILTERS):
            raise BadRequest(
                f"filters: unknown attribute {name!r}", code=ErrorCode.unknown_filter, param=name
            )
    values = dict(params)
    for key in values:
        if key not in CONTROL_PARAMS and key not in names:
            raise BadRequest(
                f"Unexpected query parameter {key!r}: attribute filters must be listed in `filters`",
                code=ErrorCode.unknown_filter,
                param=key,
            )
    specs: dict[str, FilterSpec] = {}
    for name in names:
        if name not in values:
            raise BadRequest(
                f"filters: {name!r} is listed but has no `{name}=` parameter",
                code=ErrorCode.invalid_filter,
                param=name,
            )
        specs[name] = parse_value(name, values[name])
    return specs


# --- the predicate tree ------------------------------------------------------------------------


def _coerce(field: FieldDef, name: str, raw: str):
    try:
        # the field's regular expression constrains stored values, not what may be searched for
        return coerce_value(field.model_copy(update={"validation": None}), raw)
    except CoercionError as exc:
        raise BadRequest(
            f"{name}: {str(exc).split(': ', 1)[-1]}", code=ErrorCode.invalid_filter, param=name
        ) from None


def _builtin_test(name: str, spec: FilterSpec) -> Test:
    if isinstance(spec, Range):
        raise BadRequest(
            f"{name}: ranges apply to numeric attributes only",
            code=ErrorCode.invalid_filter,
            param=name,
        )
    values = list(spec.values)
    if name == "status":
        unknown = [v for v in values if v not in STATUSES]
        if unknown:
            raise BadRequest(
                f"status: {unknown[0]!r} is not one of {', '.join(STATUSES)}",
                code=ErrorCode.invalid_filter,
                param="status",
            )
    if name == "categories":
        paths = [PATH_SEPARATOR.join(p.strip() for p in v.split(">") if p.strip()) for v in values]
        patterns = [like_escape(p) + like_escape(PATH_SEPARATOR) + "%" for p in paths]
        # the categories with these paths and their descendants
        return Test(Check.category_paths, BUILTINS["category"], (paths, patterns))
    return Test(Check.one_of, BUILTINS[BUILTIN_FILTERS[name]], values)


def _field_test(field: FieldDef, spec: FilterSpec) -> Clause:
    name = field.name
    if isinstance(spec, Range):
        if field.type not in NUMERIC | STRING_LIKE:
            raise BadRequest(
                f"{name}: ranges apply to numeric attributes only, not to a {field.type} field",
                code=ErrorCode.invalid_filter,
                param=name,
            )
        # numbers compare as numbers; numeric text in a string field too (other text never matches)
        number = Target(name, Kind.number)
        if spec.low is not None and spec.high is not None:
            # one test: the read model reads the field's value once for both ends
            return Test(Check.between, number, (spec.low, spec.high))
        ends = [(">=", spec.low), ("<=", spec.high)]
        return Junction(
            "all",
            tuple(Test(Check.compare, number, end, op) for op, end in ends if end is not None),
        )
    values = (
        [_coerce(field, name, v) for v in spec.values]
        if field.type != FieldType.array
        else list(spec.values)
    )
    if field.type in NUMERIC:
        return Test(Check.one_of, field_target(field), [Decimal(str(v)) for v in values])
    if field.type in TEMPORAL:
        return Test(Check.one_of, field_target(field), values)
    wrap = (lambda v: [v]) if field.type == FieldType.array else (lambda v: v)
    return Test(Check.contains_json, field_target(field), [{name: wrap(v)} for v in values])


def filter_clause(specs: dict[str, FilterSpec], fields: dict[str, FieldDef]) -> Junction:
    """One test per filtered attribute."""
    return Junction(
        "all",
        tuple(
            _field_test(fields[name], spec) if name in fields else _builtin_test(name, spec)
            for name, spec in specs.items()
        ),
    )


def add_filter_conditions(
    where: SqlWhere,
    specs: dict[str, FilterSpec],
    fields: dict[str, FieldDef],
    *,
    tenant_placeholder: str,
) -> None:
    """Add one condition per filtered attribute; without a `status` filter, deleted products are left out."""
    add_conditions(where, filter_clause(specs, fields), tenant=tenant_placeholder)
    if "status" not in specs:  # spelt out: the partial index ix_products_tenant_live's predicate
        where.add_equivalent(
            "p.status <> 'deleted'", Not(Test(Check.equals, BUILTINS["status"], "deleted"))
        )


ID_ORDER = "p.id"  # without a sort


def order_sql(where: SqlWhere, sort: str | None, fields: dict[str, FieldDef]) -> str:
    """ORDER BY for `attribute|asc|desc` (numbers and dates by value, missing values last), then by id."""
    if sort is None:
        return ID_ORDER
    if not SORT_RE.fullmatch(sort):
        raise BadRequest("sort: must match ^\\w+\\|(asc|desc)$, e.g. `sku|asc`", param="sort")
    name, _, direction = sort.partition("|")
    direction_sql = direction.upper()
    if name in BUILTIN_SORTS:
        return f"{BUILTIN_SORTS[name]} {direction_sql}, p.id {direction_sql}"
    field = fields.get(name)
    if field is None:
        raise BadRequest(f"sort: unknown or unsortable attribute {name!r}", param="sort")
    return (
        f"{order_expr(field_target(field), where)} {direction_sql} NULLS LAST, p.id {direction_sql}"
    )
