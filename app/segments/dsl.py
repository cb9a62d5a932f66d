"""Segment definitions: the predicate DSL of `app.query`, compiled for SQLAlchemy statements.

`parse_definition(raw)` checks the shape and limits, `category_ids(node)` lists the categories
whose subtrees the caller resolves, and `compile_definition(node, fields, subtrees=...)` checks
the definition against the schema and returns a condition over the `products` table (the
`Product` model); `render_sql(statement)` inlines the values, for display only.
"""

from collections.abc import Mapping, Sequence

from sqlalchemy.sql.elements import TextClause

from app.catalog.fields import FieldDef
from app.query.compiling import render_sql, to_clause
from app.query.models import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    Condition,
    DefinitionError,
    Group,
    Negation,
    Node,
    dump_definition,
)
from app.query.parsing import category_ids, parse_definition, resolve


def compile_definition(
    node: Group | Negation | Condition,
    fields: Mapping[str, FieldDef],
    *,
    subtrees: Mapping[int, Sequence[int]] | None = None,
) -> TextClause:
    """A boolean SQL condition over `products` that is true exactly for the matching products."""
    return to_clause(resolve(node, fields, subtrees=subtrees))


__all__ = [
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "DefinitionError",
    "Node",
    "category_ids",
    "compile_definition",
    "dump_definition",
    "parse_definition",
    "render_sql",
]
