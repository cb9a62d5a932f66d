"""The product list's query-string filters, parsed into the predicate tree.

`<field>=<value>` and `<field>__<op>=<value>` on data fields, and the built-in filters
(`q`, `status`, `category`, `sku`, `sku__in`, `name`, `variation_of`). Every field name is
checked against the schema (or the plain-key rule) before it becomes a test.
"""

from datetime import UTC, datetime
from typing import Any

import orjson

from app.catalog.fields import (
    DATA_KEY_RE,
    NUMERIC,
    RESERVED_NAMES,
    TEMPORAL,
    CoercionError,
    FieldDef,
    FieldType,
    coerce_value,
    plain_number,
)
from app.errors import BadRequest, ErrorCode
from app.products.rules import FALSE_WORDS, STATUSES, TRUE_WORDS
from app.query.models import BUILTINS, Check, Clause, Kind, Not, Target, Test
from app.query.parsing import field_target, like_escape
from app.responses import json_text

OPERATORS = ("ne", "in", "gt", "gte", "lt", "lte", "contains", "icontains", "exists")
RANGE_SQL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# query parameters of the list that choose the page and its order, not the products: a cursor's
# filter fingerprint leaves them out
PAGING_PARAMS = frozenset({"page", "page_size", "limit", "cursor", "ordering"})
# query parameters of the list/facets endpoints that are not field filters
CONTROL_PARAMS = PAGING_PARAMS | {"q", "status", "category", "sku", "sku__in"}
# exact filters on built-in text columns, beside the CONTROL_PARAMS (answered by the trigram and
# (tenant_id, variation_of) indexes)
BUILTIN_EXACT = ("name", "variation_of")
# range filters on built-in time columns (`updated_at__gte=2026-01-31T00:00:00Z`): an incremental
# reader's window, answered by the (tenant_id, updated_at, id) index
BUILTIN_RANGES = ("updated_at",)
BUILTIN_FILTERS_HELP = (
    "built-ins filter with q=, sku=, sku__in=, status=, category=, name=, variation_of= and "
    "updated_at__gt/gte/lt/lte= only"
)
MAX_IN_VALUES = 1000
MAX_FILTER_VALUE = 1000
# `field__exists=`: the boolean words of the JSON endpoints
FLAG_WORDS = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}


def _json_scalar(raw: str) -> Any:
    """The JSON number or boolean `raw` spells, else None."""
    try:
        value = orjson.loads(raw.strip())
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, (bool, int, float)) else None


def _coerce_filter(field_def: FieldDef, key: str, raw: str) -> Any:
    try:
        if field_def.type == FieldType.array:
            return raw
        # the field's regular expression constrains stored values, not what may be searched for
        return coerce_value(field_def.model_copy(update={"validation": None}), raw)
    except CoercionError as exc:
        raise BadRequest(
            f"Filter {key}: {str(exc).split(': ', 1)[-1]}", code=ErrorCode.invalid_filter, param=key
        ) from None


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


def _containment(field_def: FieldDef, key: str, raw_values: list[str]) -> Test:
    """Contains any of `{"field": value}` (`{"field": [value]}` for arrays) for the values' candidates."""
    wrap = (lambda v: [v]) if field_def.type == FieldType.array else (lambda v: v)
    docs = [
        {field_def.name: wrap(v)} for raw in raw_values for v in _exact_values(field_def, key, raw)
    ]
    return Test(Check.contains_json, field_target(field_def), docs)


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
        raise BadRequest(f"Filter {key}: value too long", code=ErrorCode.invalid_filter, param=key)


def parse_aware_datetime(key: str, raw: str) -> datetime:
    """An ISO 8601 date-time with its offset (`Z` or `+02:00`), in UTC. A naive one is refused: the
    server cannot know which zone the client meant, and a guess would shift a sync window."""
    text = raw.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        parsed = None
    if parsed is None or not any(sep in text for sep in "Tt "):  # a date alone is not a date-time
        raise BadRequest(
            f"Filter {key}: not an ISO 8601 date-time with a time zone (e.g. 2026-01-31T12:00:00Z)",
            code=ErrorCode.invalid_filter,
            param=key,
        )
    if parsed.tzinfo is None:
        raise BadRequest(
            f"Filter {key}: the date-time has no time zone; add `Z` or an offset such as `+02:00`",
            code=ErrorCode.invalid_filter,
            param=key,
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise BadRequest(
            f"Filter {key}: the date-time is out of range", code=ErrorCode.invalid_filter, param=key
        ) from None


def parse_field_filter(fields: dict[str, FieldDef], key: str, raw: str) -> Clause:
    """The test of one `<field>[__<op>]=<value>` parameter."""
    if key in BUILTIN_EXACT:
        _check_value_length(key, raw)
        return Test(Check.equals, BUILTINS[key], raw)
    name, op = split_filter_key(fields, key)
    if name in BUILTIN_RANGES and op in RANGE_SQL:
        _check_value_length(key, raw)
        return Test(Check.compare, BUILTINS[name], parse_aware_datetime(key, raw), RANGE_SQL[op])
    # an `__in` list takes up to MAX_IN_VALUES values: the length cap is per value, not the whole list
    for value in raw.split(",") if op == "in" else (raw,):
        _check_value_length(key, value)
    if op and op not in OPERATORS:
        raise BadRequest(
            f"Unknown operator {op!r} in {key!r}; use one of {', '.join(OPERATORS)}",
            code=ErrorCode.unknown_filter,
            param=key,
        )
    # built-in columns and reserved query parameters are never data fields: a filter on one (other
    # than the CONTROL_PARAMS) is refused rather than silently run against `data`
    if name in RESERVED_NAMES:
        raise BadRequest(
            f"Unsupported filter {key!r}: {name!r} is not a data field ({BUILTIN_FILTERS_HELP})",
            code=ErrorCode.unknown_filter,
            param=key,
        )
    field_def = fields.get(name)
    if field_def is None and not DATA_KEY_RE.match(name):
        raise BadRequest(f"Unknown filter {key!r}", code=ErrorCode.unknown_filter, param=key)
    as_text = Target(name, Kind.text)  # the stored value as text (`data ->> name`)
    ftype = field_def.type if field_def else None

    if not op:
        if field_def is None:
            return Test(Check.equals, as_text, raw)
        return _containment(field_def, key, [raw])

    if op == "exists":
        flag = FLAG_WORDS.get(raw.strip().lower())
        if flag is None:
            raise BadRequest(
                f"Filter {key}: use true or false", code=ErrorCode.invalid_filter, param=key
            )
        present = Test(Check.has_value, as_text)
        return present if flag else Not(present)

    if op in ("contains", "icontains"):
        if ftype == FieldType.array and op == "contains":
            return Test(Check.contains_json, as_text, [{name: [raw]}])
        pattern = "%" + like_escape(raw) + "%"
        if ftype == FieldType.array:
            return Test(Check.element_like, as_text, pattern)
        return Test(Check.like, as_text, pattern, "LIKE" if op == "contains" else "ILIKE")

    if op in ("ne", "in"):
        raw_values = [raw] if op == "ne" else raw.split(",")
        if len(raw_values) > MAX_IN_VALUES:
            raise BadRequest(
                f"Filter {key}: at most {MAX_IN_VALUES} values",
                code=ErrorCode.invalid_filter,
                param=key,
            )
        test = (
            _containment(field_def, key, raw_values)
            if field_def
            else Test(Check.one_of, as_text, raw_values)
        )
        # `ne`: products without the field are "not equal" too, whatever the field
        return test if op == "in" else Not(test)

    # gt gte lt lte: numbers and dates compare by type, strings as text
    if field_def is None:
        number = plain_number(raw)
        if number is None:
            return Test(Check.compare, as_text, raw, RANGE_SQL[op])
        return Test(Check.compare, Target(name, Kind.number), number, RANGE_SQL[op])
    if ftype not in NUMERIC | TEMPORAL | {
        FieldType.string,
        FieldType.text,
        FieldType.url,
        FieldType.enum,
    }:
        raise BadRequest(
            f"Filter {key}: {op} does not apply to a {ftype} field",
            code=ErrorCode.invalid_filter,
            param=key,
        )
    return Test(
        Check.compare, field_target(field_def), _coerce_filter(field_def, key, raw), RANGE_SQL[op]
    )


def parse_builtin_filters(
    *,
    q: str | None,
    status: str | None,
    category_ids: list[int] | None,
    sku: str | None,
    sku_in: str | None,
) -> list[Clause]:
    """The tests of the built-in list filters (`category_ids`: the category's subtree, resolved)."""
    tests: list[Clause] = []
    if q:
        tests.append(Test(Check.like, BUILTINS["name"], "%" + like_escape(q) + "%", "ILIKE"))
    if status is not None:
        if status not in STATUSES:
            raise BadRequest(
                f"status must be one of {', '.join(STATUSES)}",
                code=ErrorCode.invalid_filter,
                param="status",
            )
        tests.append(Test(Check.equals, BUILTINS["status"], status))
    if category_ids is not None:
        tests.append(Test(Check.categories_overlap, BUILTINS["category"], category_ids))
    if sku is not None:
        tests.append(Test(Check.equals, BUILTINS["sku"], sku))
    if sku_in is not None:
        tests.append(Test(Check.one_of, BUILTINS["sku"], [s for s in sku_in.split(",") if s]))
    return tests
