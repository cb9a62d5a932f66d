"""SQL for the product list and facets: filters from query parameters, ordering, facets.

The filters parse into the predicate tree (`app.query.querystring`) and compile with the one
compiler (`app.query.compiling`). Every field name is checked against the schema (or the
plain-key rule) before it reaches SQL, and even then it travels as a bound parameter; every
value is bound.
"""

from app.catalog.fields import FACETED, FieldDef
from app.errors import BadRequest
from app.query.compiling import SqlWhere, add_conditions, order_expr
from app.query.parsing import field_target
from app.query.querystring import parse_field_filter

BUILTIN_ORDERING = {
    "id": "p.id",
    "sku": "p.sku",
    "name": "p.name",
    "status": "p.status",
    "created_at": "p.created_at",
    "updated_at": "p.updated_at",
}


def add_field_filter(where: SqlWhere, fields: dict[str, FieldDef], key: str, raw: str) -> None:
    add_conditions(where, parse_field_filter(fields, key, raw))


def ordering_terms(
    where: SqlWhere, fields: dict[str, FieldDef], ordering: str | None
) -> list[tuple[str, str]]:
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
        terms.append((order_expr(field_target(field_def), where), f"{direction} NULLS LAST"))
    if not terms or terms[-1][0] != "p.id":
        terms.append(("p.id", "ASC"))
    return terms


def ordering_sql(where: SqlWhere, fields: dict[str, FieldDef], ordering: str | None) -> str:
    return ", ".join(
        f"{expr} {direction}" for expr, direction in ordering_terms(where, fields, ordering)
    )


def facet_fields(fields: dict[str, FieldDef]) -> list[FieldDef]:
    return [f for f in fields.values() if f.type in FACETED]
