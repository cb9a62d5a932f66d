"""The ClickHouse dialect of the one compiler: the checked predicate tree over the read model.

The structure (groups, negations, empty groups) is `compiling._compile`'s; this module writes
each test over a `products_mirror` row (`app/mirror/model.py` says what each column holds):

- text and boolean values of `data` as `key=value` / `key:true` strings in `kv`, the string
  elements of its arrays as `key=element` in `ka`, its numbers as `nk`/`nv` (key, Float64);
- which keys are present (`present`: not JSON null) and filled (`filled`: not null, "" or []);
- the built-ins sku, name, status, variation_of and categories as columns.

Every test is 0 or 1, never NULL, so a negation is exact without coalesce. Values are bound
as asynch parameters (`%(qN)s`, escaped by the driver), field names among them; names were
checked against the schema by `parsing.resolve` already. A test the read model cannot answer
exactly (text patterns, dates and datetimes, an array's exact elements, category paths), and a
filter whose values are too large for one statement (MAX_VALUE_BYTES), raise `Unsupported`, and
the caller answers from Postgres.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.clickhouse import ELEMENT_PREFIX
from app.mirror.model import ENTRY_TABLE, MAX_KV_VALUE, NUMBER_TABLE
from app.query.compiling import compile_clause
from app.query.models import Check, Clause, Junction, Kind, Test

# the built-in text columns of the read model (the others are not mirrored)
_TEXT_COLUMNS = frozenset({"sku", "name", "status", "variation_of"})
# Values are written into the statement (asynch substitutes them), and ClickHouse parses at most
# max_query_size bytes of one (256 KiB by default): a filter whose values take more than this is
# Postgres's (a statement refused there would turn the model off for every tenant for a while)
MAX_VALUE_BYTES = 128 * 1024


class Unsupported(ValueError):
    """A test the read model cannot answer exactly: answer from Postgres."""


class _Binder:
    """Values as asynch parameters: `%(qN)s`, escaped by the driver."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any, sql_type: str = "") -> str:
        name = f"q{len(self.params)}"
        self.params[name] = _value(value)
        return f"%({name})s"


def _value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, tuple):  # a set for IN
        return tuple(_value(v) for v in value)
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, (int, float, str)):
        return value
    raise Unsupported(f"no ClickHouse form for {type(value).__name__}")


def _entry(name: str, value: Any) -> str:
    """A `kv` entry: a string as `name=value`, a boolean as `name:true` (no name has `=` or `:`)."""
    if isinstance(value, bool):
        return f"{name}:{'true' if value else 'false'}"
    if isinstance(value, str):
        if len(value.encode()) > MAX_KV_VALUE:
            raise Unsupported("a value longer than the read model keeps")
        return f"{name}={value}"
    raise Unsupported("a data value that is neither text nor boolean")


def _array(binder: _Binder, values: list[Any]) -> str:
    """A bound array; an empty one is a typed literal (18.16 types `[]` as Array(Nothing))."""
    return binder.bind(values) if values else "emptyArrayString()"


def _positive(test: Test, ctx) -> str:
    target, check, binder = test.target, test.check, ctx.binder
    name = target.name
    if target.kind == Kind.category:
        if check == Check.is_empty:
            return "empty(categories)"
        if check not in (Check.categories_contain, Check.categories_overlap):
            raise Unsupported(f"{check} on categories")  # paths: the tenant's category table
        ids = [int(i) for i in test.value]
        if not ids:
            return "0"
        function = "hasAll" if check == Check.categories_contain else "hasAny"
        return f"{function}(categories, {binder.bind(ids)})"
    if target.column is not None:
        if target.column not in _TEXT_COLUMNS or check == Check.like:
            raise Unsupported(f"{check} on {target.column}")
        column = target.column
        if check == Check.is_empty:
            return f"ifNull({column}, '') = ''"
        if check == Check.equals:
            return f"ifNull({column} = {binder.bind(test.value)}, 0)"
        if check == Check.one_of:
            return f"ifNull(has({_array(binder, list(test.value))}, {column}), 0)"
        raise Unsupported(f"{check} on {column}")
    key = binder.bind(name)
    if check == Check.is_empty:
        return f"NOT has(filled, {key})"
    if check == Check.has_value:
        return f"has(present, {key})"
    if check == Check.contains_json:
        parts = []
        for doc in test.value:
            value = doc[name]
            if isinstance(value, list):
                entries = [_entry(name, v) for v in value]
                parts.append(f"hasAll(ka, {_array(binder, entries)})")
            else:
                parts.append(f"has(kv, {binder.bind(_entry(name, value))})")
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
    if check == Check.any_element:
        return f"hasAny(ka, {_array(binder, [_entry(name, v) for v in test.value])})"
    if target.kind == Kind.text and check == Check.one_of:
        return f"hasAny(kv, {_array(binder, [_entry(name, v) for v in test.value])})"
    if target.kind == Kind.number:
        if check == Check.equals:
            condition = f"num_ = {binder.bind(test.value)}"
        elif check == Check.one_of:
            condition = f"has({binder.bind(list(test.value))}, num_)"
        elif check == Check.compare:
            if test.op not in (">", ">=", "<", "<="):
                raise Unsupported(f"comparison {test.op!r}")
            condition = f"num_ {test.op} {binder.bind(test.value)}"
        elif check == Check.between:
            low, high = test.value
            condition = f"num_ >= {binder.bind(low)} AND num_ <= {binder.bind(high)}"
        else:
            raise Unsupported(f"{check} on a number")
        # lambda parameters unlike any alias: 18.16 substitutes a query's aliases inside lambdas
        return f"arrayExists((key_, num_) -> key_ = {key} AND {condition}, nk, nv)"
    raise Unsupported(f"{check} on a {target.kind} field")


def compile_predicate(clause: Clause) -> tuple[str, dict[str, Any]]:
    """The clause as a ClickHouse condition over `products_mirror` and its parameters; raises
    Unsupported for a test the read model cannot answer."""
    binder = _Binder()
    sql = compile_clause(clause, binder, table="products_mirror", positive=_positive)
    if sum(_written_size(v) for v in binder.params.values()) > MAX_VALUE_BYTES:
        raise Unsupported("a filter's values larger than a ClickHouse statement takes")
    return sql, binder.params


def _written_size(value: Any) -> int:
    """The bytes a bound value takes in the statement, quotes and escapes included."""
    if isinstance(value, (list, tuple)):
        return 2 + sum(_written_size(v) + 2 for v in value)
    if isinstance(value, str):
        return len(value.encode()) + value.count("'") + value.count("\\") + 2
    return 24


@dataclass(frozen=True)
class Counted:
    """A filter whose matches one count table holds: `condition` over `table`'s rows (each
    matching product is in exactly one of them), `marker` the column of the table's
    COUNTED_MARKER."""

    table: str
    marker: str
    condition: str
    params: dict[str, Any]


def compile_count(clause: Clause) -> Counted | None:
    """The clause as a condition over the count tables when it is one test that they answer
    exactly: equality or `in` on a text or boolean value (a product has one value a key), one
    array element, a comparison of numbers. None otherwise (the model's rows answer)."""
    while isinstance(clause, Junction) and len(clause.parts) == 1:
        clause = clause.parts[0]
    if not isinstance(clause, Test) or clause.target.column is not None:
        return None
    test, name, binder = clause, clause.target.name, _Binder()
    try:
        entries: list[str] = []
        if test.check == Check.contains_json and test.value:
            values = [doc[name] for doc in test.value]
            if all(not isinstance(v, list) for v in values):
                entries = [_entry(name, v) for v in values]
            elif len(values) == 1 and _one_element(values[0]):
                entries = [ELEMENT_PREFIX + _entry(name, values[0][0])]
        elif test.check == Check.any_element and _one_element(test.value):
            entries = [ELEMENT_PREFIX + _entry(name, test.value[0])]
        elif test.target.kind == Kind.text and test.check == Check.one_of and test.value:
            entries = [_entry(name, v) for v in test.value]
        elif test.target.kind == Kind.number:
            condition = _number_range(test, binder)
            if condition is None:
                return None
            return Counted(
                NUMBER_TABLE, "key", f"key = {binder.bind(name)} AND {condition}", binder.params
            )
    except Unsupported:
        return None
    if not entries:
        return None
    return Counted(ENTRY_TABLE, "entry", f"entry IN {binder.bind(tuple(entries))}", binder.params)


def _one_element(values: list[Any]) -> bool:
    """An array test naming one element (twice or more counts once): with two, a product holding
    both would be in two count rows."""
    return bool(values) and all(v == values[0] for v in values)


def _number_range(test: Test, binder: _Binder) -> str | None:
    """The values a number test accepts, over `value` (a count table's column)."""
    if test.check == Check.equals:
        return f"value = {binder.bind(test.value)}"
    if test.check == Check.one_of and test.value:
        return f"value IN {binder.bind(tuple(test.value))}"
    if test.check == Check.compare and test.op in (">", ">=", "<", "<="):
        return f"value {test.op} {binder.bind(test.value)}"
    if test.check == Check.between:
        low, high = test.value
        return f"value >= {binder.bind(low)} AND value <= {binder.bind(high)}"
    return None
