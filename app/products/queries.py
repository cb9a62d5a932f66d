"""SQL for the product list and facets: filters from query parameters, ordering, facets.

The filters parse into the predicate tree (`app.query.querystring`) and compile with the one
compiler (`app.query.compiling`). Every field name is checked against the schema (or the
plain-key rule) before it reaches SQL, and even then it travels as a bound parameter; every
value is bound.
"""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from app.catalog.fields import FACETED, FieldDef
from app.errors import BadRequest
from app.pagination import BAD_CURSOR
from app.query.compiling import SqlWhere, add_conditions, order_expr
from app.query.models import Kind
from app.query.parsing import field_target
from app.query.querystring import parse_field_filter

# built-in orderings: (expression, SQL type); all NOT NULL columns
BUILTIN_ORDERING = {
    "id": ("p.id", "bigint"),
    "sku": ("p.sku", "text"),
    "name": ("p.name", "text"),
    "status": ("p.status", "text"),
    "created_at": ("p.created_at", "timestamptz"),
    "updated_at": ("p.updated_at", "timestamptz"),
}
# the SQL type of a data field's order expression (`compiling.typed_expr`); others compare as text
_SQL_TYPE_OF_ORDER_KIND = {Kind.number: "numeric", Kind.date: "date", Kind.datetime: "timestamptz"}


class OrderTerm(NamedTuple):
    expr: str  # over `p`
    direction: str  # ASC, DESC, ASC NULLS LAST, DESC NULLS LAST
    sql_type: str  # of `expr`, to bind a cursor's key back
    nullable: bool  # a data field (sorted NULLS LAST); built-ins are NOT NULL


def add_field_filter(where: SqlWhere, fields: dict[str, FieldDef], key: str, raw: str) -> None:
    add_conditions(where, parse_field_filter(fields, key, raw))


def ordering_tokens(ordering: str | None) -> list[str]:
    return [token.strip() for token in (ordering or "").split(",") if token.strip()]


def ordering_terms(
    where: SqlWhere, fields: dict[str, FieldDef], ordering: str | None
) -> list[OrderTerm]:
    """The ORDER BY of a list, ending with `p.id` (a total order, so that pages never overlap and a
    keyset cursor has one place to resume). Field names are checked against the schema and bound as
    parameters."""
    terms: list[OrderTerm] = []
    for token in ordering_tokens(ordering):
        descending = token.startswith("-")
        name = token.lstrip("-")
        direction = "DESC" if descending else "ASC"
        if name in BUILTIN_ORDERING:
            expr, sql_type = BUILTIN_ORDERING[name]
            terms.append(OrderTerm(expr, direction, sql_type, False))
            continue
        field_def = fields.get(name)
        if field_def is None:
            raise BadRequest(f"Cannot order by {name!r}: not a built-in or schema field")
        target = field_target(field_def)
        sql_type = _SQL_TYPE_OF_ORDER_KIND.get(target.kind, "text")
        terms.append(
            OrderTerm(order_expr(target, where), f"{direction} NULLS LAST", sql_type, True)
        )
    if not terms or terms[-1].expr != "p.id":
        # in the direction of the last term: `-updated_at` is then (updated_at, id) backwards, one
        # range of the (tenant_id, updated_at, id) index, even inside a bulk write's equal stamps
        last_desc = bool(terms) and terms[-1].direction.startswith("DESC")
        terms.append(OrderTerm("p.id", "DESC" if last_desc else "ASC", "bigint", False))
    return terms


# --- keyset cursors ---------------------------------------------------------------------------


def key_text(value: Any) -> str | None:
    """A sort key value as the text its SQL type reads back exactly (`($n::text)::timestamptz`)."""
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _checked_key(value: Any, sql_type: str) -> str | None:
    """A key from a cursor, checked against its SQL type here so that a forged one is a 400, not a
    cast error in SQL."""
    if value is None or not isinstance(value, str) or len(value) > 2000:
        if value is None:
            return None
        raise BadRequest(BAD_CURSOR)
    try:
        if sql_type == "bigint":
            if not -(2**63) <= int(value) < 2**63:
                raise ValueError
        elif sql_type == "numeric":
            if not Decimal(value).is_finite():
                raise ValueError
        elif sql_type == "date":
            date.fromisoformat(value)
        elif sql_type == "timestamptz":
            if datetime.fromisoformat(value).tzinfo is None:
                raise ValueError
        elif "\x00" in value:
            raise ValueError
    except (ValueError, InvalidOperation):
        raise BadRequest(BAD_CURSOR) from None
    return value


def keyset_condition(where: SqlWhere, terms: list[OrderTerm], keys: list[Any]) -> str:
    """The rows strictly after `keys` (the last row of the previous page) in the order of `terms`.

    Lexicographic: after the first key, or equal to it and after the rest. Data-field terms sort
    NULLS LAST, so a NULL key is followed only by NULLs. The first term's bound is repeated as a
    plain `>=` / `<=` when that term is a column (never NULL), which an index scan can start from;
    the OR that follows only filters within the first key's ties. Terms in one direction without
    NULLs are one row comparison instead, which a btree index answers as a range."""
    if len(keys) != len(terms):
        raise BadRequest(BAD_CURSOR)
    values = [_checked_key(k, t.sql_type) for k, t in zip(keys, terms, strict=True)]
    if any(v is None and not t.nullable for v, t in zip(values, terms, strict=True)):
        raise BadRequest(BAD_CURSOR)
    bound = [
        None if v is None else f"({where.bind(v)}::text)::{t.sql_type}"
        for v, t in zip(values, terms, strict=True)
    ]

    descending = {t.direction.startswith("DESC") for t in terms}
    if len(terms) > 1 and len(descending) == 1 and not any(t.nullable for t in terms):
        # one direction, no NULLs: a row comparison, which a btree index takes as its range start
        op = "<" if descending == {True} else ">"
        return f"({', '.join(t.expr for t in terms)}) {op} ({', '.join(bound)})"  # type: ignore[arg-type]

    def after(term: OrderTerm, value: str | None) -> str:
        if value is None:  # NULLS LAST: nothing but NULLs follow a NULL
            return "false"
        strictly = f"{term.expr} {'<' if term.direction.startswith('DESC') else '>'} {value}"
        return f"({strictly} OR {term.expr} IS NULL)" if term.nullable else strictly

    def equal(term: OrderTerm, value: str | None) -> str:
        return f"{term.expr} IS NULL" if value is None else f"{term.expr} = {value}"

    condition = after(terms[-1], bound[-1])
    for term, value in reversed(list(zip(terms[:-1], bound[:-1], strict=True))):
        condition = f"({after(term, value)} OR ({equal(term, value)} AND {condition}))"
    first, first_value = terms[0], bound[0]
    if len(terms) > 1 and not first.nullable:
        op = "<=" if first.direction.startswith("DESC") else ">="
        condition = f"{first.expr} {op} {first_value} AND {condition}"
    return condition


def facet_fields(fields: dict[str, FieldDef]) -> list[FieldDef]:
    return [f for f in fields.values() if f.type in FACETED]
