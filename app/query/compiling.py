"""The one compiler: a checked predicate tree to a SQL condition over `products`.

It writes SQL text; where values go depends on the reader:

- `SqlWhere`: positional `$n` parameters for the lean asyncpg reads (product list, facets,
  PIMS), every value bound with an explicit cast;
- `to_clause`: a SQLAlchemy text clause with typed bound parameters, for segments (whose
  statements are SQLAlchemy Core, and whose preview shows the SQL with `render_sql`).

The result is two-valued where it matters: under a negation every test that could be NULL
(a missing value) is wrapped in `coalesce(…, false)`, so that `NOT` is an exact negation;
elsewhere NULL already excludes the row, and the bare comparison keeps its index.
Field names travel as bound parameters as well, though they are checked against the schema.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson
from sqlalchemy import ARRAY, BigInteger, Boolean, Date, DateTime, Numeric, Text, bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import PGCompiler
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.elements import TextClause

from app.catalog.fields import DATA_KEY_RE
from app.db import tenant_is
from app.query.models import Check, Clause, Junction, Kind, Not, Target, Test
from app.responses import json_text

# up to this many documents a containment is an OR of containments (each answered by the GIN index)
MAX_OR_CONTAINMENTS = 50
SQL_TYPE_OF_KIND = {
    Kind.text: "text",
    Kind.number: "numeric",
    Kind.date: "date",
    Kind.datetime: "timestamptz",
    Kind.boolean: "boolean",
    Kind.array: "text",
    Kind.category: "bigint",
}
# test results that are never NULL (data and categories are NOT NULL columns)
_NEVER_NULL = frozenset(
    {
        Check.is_empty,
        Check.has_value,
        Check.contains_json,
        Check.element_like,
        Check.categories_contain,
        Check.categories_overlap,
        Check.category_paths,
    }
)


class Binder(Protocol):
    def bind(self, value: Any, sql_type: str) -> str:
        """SQL for a bound value of this SQL type (`numeric`, `text[]`, `jsonb`…)."""


@dataclass
class SqlWhere:
    """A growing list of SQL conditions over `products p` with positional parameters.

    `clauses` keeps the predicate trees `add_conditions` compiled into it, and `from_clauses`
    how many of the conditions they are: another dialect (the ClickHouse read model) can compile
    the same trees when every condition but the tenant's came from one (`is_predicate`)."""

    params: list[Any] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    clauses: list[Clause] = field(default_factory=list)
    from_clauses: int = 0

    @property
    def predicate(self) -> Clause | None:
        """All the clauses as one tree, when they are the whole filter (beside the tenant's
        condition); None when a condition was added as SQL."""
        if len(self.conditions) != 1 + self.from_clauses:
            return None
        return Junction("all", tuple(self.clauses))

    @classmethod
    def of_tenant(cls, tenant_id: int) -> "SqlWhere":
        """Conditions over the tenant's products `p`: its predicate first, bound as `$1`. A
        statement that formats `{where.sql}` is scoped through it (tests/test_tenant_scoping.py)."""
        where = cls()
        where.add(tenant_is("p", where.bind(tenant_id)))
        return where

    def add_equivalent(self, condition: str, clause: Clause) -> None:
        """A condition written as SQL by hand (for a partial index's exact predicate) that means
        what `clause` means: other dialects compile the clause."""
        self.conditions.append(condition)
        self.clauses.append(clause)
        self.from_clauses += 1

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def add(self, condition: str) -> None:
        self.conditions.append(condition)

    @property
    def sql(self) -> str:
        return " AND ".join(self.conditions) if self.conditions else "TRUE"


class _Positional:
    """Values as `$n` parameters of a SqlWhere, in the forms asyncpg encodes for each cast."""

    def __init__(self, where: SqlWhere):
        self.where = where

    def bind(self, value: Any, sql_type: str) -> str:
        if sql_type == "jsonb":
            return f"{self.where.bind(json_text(value))}::jsonb"
        if sql_type == "jsonb[]":
            return f"{self.where.bind([json_text(v) for v in value])}::jsonb[]"
        if sql_type in ("date", "timestamptz"):  # bound as text and cast in SQL: no driver guessing
            return f"({self.where.bind(_text(value))}::text)::{sql_type}"
        if sql_type in ("date[]", "timestamptz[]"):
            return f"{self.where.bind([_text(v) for v in value])}::text[]::{sql_type}"
        if sql_type == "numeric":
            return f"{self.where.bind(_decimal(value))}::numeric"
        if sql_type == "numeric[]":
            return f"{self.where.bind([_decimal(v) for v in value])}::numeric[]"
        return f"{self.where.bind(value)}::{sql_type}"


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


_SA_TYPES: dict[str, Any] = {
    "text": Text(),
    "numeric": Numeric(),
    "date": Date(),
    "timestamptz": DateTime(timezone=True),
    "boolean": Boolean(),
    "bigint": BigInteger(),
    "jsonb": JSONB(),
}
_bind_names = itertools.count(1)


class _Named:
    """Values as typed SQLAlchemy bound parameters (`:q7`) of a text clause."""

    def __init__(self):
        self.params: list[Any] = []

    def bind(self, value: Any, sql_type: str) -> str:
        name = f"q{next(_bind_names)}"
        item = sql_type.removesuffix("[]")
        type_ = ARRAY(_SA_TYPES[item]) if sql_type.endswith("[]") else _SA_TYPES[item]
        self.params.append(bindparam(name, value, type_=type_))
        return f":{name}"


# --- typed value expressions --------------------------------------------------------------------


# Kinds whose value expression names the field as a literal, not a bound parameter: the typed
# indexes (app/products/typed_indexes.py) are on exactly this expression, and the planner matches
# an index expression only against the same expression with the same constant in it.
LITERAL_KEY_KINDS = frozenset({Kind.number, Kind.date, Kind.datetime})


def key_literal(name: str) -> str:
    """A data key as a SQL string literal; only names of the catalog's key syntax (letters, digits,
    `_`, `-`) pass, so the literal needs no escaping."""
    if not DATA_KEY_RE.fullmatch(name):
        raise ValueError(f"not a data key: {name!r}")
    return f"'{name}'"


# per typed kind: the SQL function that reads its values, and the JSON operator that hands it the
# value (a number as JSON, a date or datetime as text)
_TYPED_VALUE_READERS = {
    Kind.number: ("pim_num", "->"),
    Kind.date: ("pim_date", "->>"),
    Kind.datetime: ("pim_timestamptz", "->>"),
}


def typed_value_sql(kind: Kind, name: str, table: str) -> str:
    """The typed value of data key `name` of a number, date or datetime field, with the key as a
    literal: the one spelling of the expression the typed indexes are built on."""
    key = key_literal(name)
    if kind not in _TYPED_VALUE_READERS:
        raise ValueError(f"not a typed kind: {kind}")
    function, operator = _TYPED_VALUE_READERS[kind]
    return f"{function}({table}.data {operator} {key})"


def typed_expr(target: Target, table: str, key: str) -> str:
    """The SQL of the stored value, typed so that numbers and dates compare as such; `key` is the
    SQL of the field name (a bound parameter) for the kinds that compare as text; the typed kinds
    name the field as a literal (`typed_value_sql`) and take `key` empty."""
    if target.column is not None:
        return f"{table}.{target.column}"
    if target.kind in LITERAL_KEY_KINDS:
        return typed_value_sql(target.kind, target.name, table)
    return f"({table}.data ->> {key})"


def _expr_key(target: Target, binder: "Binder") -> str:
    """The `key` argument of `typed_expr`: none for columns and typed kinds, else a bound name."""
    if target.column or target.kind in LITERAL_KEY_KINDS:
        return ""
    return binder.bind(target.name, "text")


# --- the compiler -----------------------------------------------------------------------------------


@dataclass
class _Context:
    binder: Binder
    table: str
    tenant: str | None  # SQL of the tenant id, for tests that read another tenant table
    # the dialect: the SQL of a positive test, and whether its tests are never NULL (then a
    # negation needs no coalesce)
    positive: Callable[[Test, "_Context"], str] = field(default=lambda t, c: _positive(t, c))
    total: bool = False
    boolean: tuple[str, str] = ("true", "false")  # the literals of true and false

    def key(self, target: Target) -> str:
        return self.binder.bind(target.name, "text")


def _compile(clause: Clause, ctx: _Context, *, negate: bool, two_valued: bool) -> str:
    if isinstance(clause, Not):
        return _compile(clause.part, ctx, negate=not negate, two_valued=True)
    if isinstance(clause, Junction):
        if not clause.parts:  # all of nothing / any of nothing
            return ctx.boolean[0] if (clause.match == "all") != negate else ctx.boolean[1]
        if len(clause.parts) == 1:
            return _compile(clause.parts[0], ctx, negate=negate, two_valued=two_valued)
        inner = two_valued or negate
        parts = [_compile(part, ctx, negate=False, two_valued=inner) for part in clause.parts]
        joined = "(" + (" AND " if clause.match == "all" else " OR ").join(parts) + ")"
        return f"NOT {joined}" if negate else joined
    return _test(clause, ctx, negate=negate, two_valued=two_valued or negate)


def _nullable(test: Test) -> bool:
    if test.check in _NEVER_NULL:
        return False
    return test.target.column is None or test.target.nullable


def _test(test: Test, ctx: _Context, *, negate: bool, two_valued: bool) -> str:
    wrap = two_valued and _nullable(test) and not ctx.total
    if negate and not wrap and test.check == Check.like and not ctx.total:
        return _like(test, ctx, negative=True)
    sql = ctx.positive(test, ctx)
    if wrap:
        sql = f"coalesce({sql}, false)"
        return f"NOT {sql}" if negate else sql
    return f"NOT ({sql})" if negate else sql


def _like(test: Test, ctx: _Context, *, negative: bool = False) -> str:
    expr = (
        typed_expr(test.target, ctx.table, "")
        if test.target.column
        else f"({ctx.table}.data ->> {ctx.key(test.target)})"
    )
    return f"{expr} {'NOT ' if negative else ''}{test.op} {ctx.binder.bind(test.value, 'text')}"


def _containment(ctx: _Context, docs: list[Any]) -> str:
    data = f"{ctx.table}.data"
    if len(docs) == 1:
        return f"{data} @> {ctx.binder.bind(docs[0], 'jsonb')}"
    if len(docs) <= MAX_OR_CONTAINMENTS:
        return "(" + " OR ".join(f"{data} @> {ctx.binder.bind(doc, 'jsonb')}" for doc in docs) + ")"
    return f"{data} @> ANY({ctx.binder.bind(docs, 'jsonb[]')})"


# the category checks: the product's category ids against the value's, one array operator each
_CATEGORY_OPERATORS = {Check.categories_contain: "@>", Check.categories_overlap: "&&"}


def _positive(test: Test, ctx: _Context) -> str:
    target, check, bind, table = test.target, test.check, ctx.binder.bind, ctx.table
    sql_type = SQL_TYPE_OF_KIND[target.kind]
    if check == Check.like:
        return _like(test, ctx)
    if check == Check.contains_json:
        return _containment(ctx, test.value)
    if check in _CATEGORY_OPERATORS:
        return f"{table}.categories {_CATEGORY_OPERATORS[check]} {bind(test.value, 'bigint[]')}"
    if check == Check.category_paths:
        paths, patterns = test.value
        if ctx.tenant is None:
            raise ValueError("category paths are the tenant's: compile them with its parameter")
        return (
            f"{table}.categories && ARRAY(SELECT c.id FROM categories c WHERE {tenant_is('c', ctx.tenant)} "
            f"AND (c.path = ANY({bind(paths, 'text[]')}) OR c.path LIKE ANY({bind(patterns, 'text[]')})))"
        )
    if check == Check.is_empty:
        if target.kind == Kind.category:
            return f"cardinality({table}.categories) = 0"
        if target.column is None:
            value = f"{table}.data -> {ctx.key(target)}"
            return f"({value} IS NULL OR {value} IN ('null'::jsonb, '\"\"'::jsonb, '[]'::jsonb))"
        if target.kind == Kind.text:
            return f"coalesce({table}.{target.column}, '') = ''"
        return f"{table}.{target.column} IS NULL"
    if check == Check.has_value:
        key = ctx.key(target)
        return f"({table}.data ? {key} AND {table}.data -> {key} <> 'null'::jsonb)"
    if check in (Check.any_element, Check.same_elements, Check.element_like):
        stored = f"{table}.data -> {ctx.key(target)}"
        if check == Check.element_like:
            return (
                f"EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof({stored}) = 'array' "
                f"THEN {stored} END) e WHERE e ILIKE {bind(test.value, 'text')})"
            )
        if check == Check.any_element:  # `?|`: any of the strings is an element (lists only)
            return (
                f"(jsonb_typeof({stored}) = 'array' AND {stored} ?| {bind(test.value, 'text[]')})"
            )
        return (
            f"(jsonb_typeof({stored}) = 'array' AND {stored} @> {bind(test.value, 'jsonb')} "
            f"AND {stored} <@ {bind(test.value, 'jsonb')})"
        )
    expr = typed_expr(target, table, _expr_key(target, ctx.binder))
    if check in (Check.equals, Check.compare):  # equals is the comparison `=`
        op = "=" if check == Check.equals else test.op
        return f"{expr} {op} {bind(test.value, sql_type)}"
    if check == Check.one_of:
        return f"{expr} = ANY({bind(test.value, sql_type + '[]')})"
    if check == Check.between:
        low, high = test.value
        return f"{expr} BETWEEN {bind(low, sql_type)} AND {bind(high, sql_type)}"
    raise AssertionError(f"unknown check {check}")  # pragma: no cover


# --- readers ---------------------------------------------------------------------------------------------


def add_conditions(where: SqlWhere, clause: Clause, *, tenant: str | None = None) -> None:
    """Add a clause to a SqlWhere over `products p`: the parts of a top-level `all` one condition each
    (the list tells a filtered read from an unfiltered one by its conditions), nothing for an empty `all`.
    `tenant` is the SQL of the tenant id (for PIMS category paths)."""
    ctx = _Context(_Positional(where), "p", tenant)
    parts = clause.parts if isinstance(clause, Junction) and clause.match == "all" else (clause,)
    for part in parts:
        where.add(_compile(part, ctx, negate=False, two_valued=False))
    where.clauses.append(clause)
    where.from_clauses += len(parts)


def compile_clause(
    clause: Clause, binder: Binder, *, table: str, positive: Callable[[Test, _Context], str]
) -> str:
    """A clause in another dialect: its `positive` writes each test (never NULL), `binder` binds
    the values. The structure (groups, negations, empty groups) is this module's."""
    ctx = _Context(binder, table, None, positive=positive, total=True, boolean=("1", "0"))
    return _compile(clause, ctx, negate=False, two_valued=False)


def to_clause(clause: Clause) -> TextClause:
    """A SQLAlchemy condition over the `products` table (the `Product` model), values bound and typed."""
    binder = _Named()
    sql = _compile(clause, _Context(binder, "products", None), negate=False, two_valued=False)
    return text(sql).bindparams(*binder.params)


def order_expr(target: Target, where: SqlWhere) -> str:
    """A field's typed value expression over `p` for ORDER BY, its name bound in `where`."""
    return typed_expr(target, "p", _expr_key(target, _Positional(where)))


# --- display ------------------------------------------------------------------------------------------


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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


class _DisplayDialect(postgresql.dialect):  # type: ignore[misc,valid-type]  # the module exports the class as a variable
    statement_compiler = _DisplayCompiler


_DISPLAY_DIALECT = _DisplayDialect()


def render_sql(statement: Select | ColumnElement | TextClause) -> str:
    """The statement with its values inlined, one clause per line: display only."""
    compiled = statement.compile(dialect=_DISPLAY_DIALECT, compile_kwargs={"literal_binds": True})
    return str(compiled)
