"""The category subtree: a category and all its descendants, by parent_id."""

from collections.abc import Iterable

from app.db import tenant_is

# A recursive CTE `subtree(root, id)`: each root among `{roots}` (SQL of a bigint[]) with itself and
# every descendant, for the tenant `{tenant}` (SQL of its id). Used as `WITH RECURSIVE {SUBTREE_CTE}`.
SUBTREE_CTE = f"""subtree(root, id) AS (
    SELECT id, id FROM categories WHERE {tenant_is("categories", "{tenant}")} AND id = ANY({{roots}})
    UNION ALL
    SELECT t.root, c.id FROM categories c JOIN subtree t ON c.parent_id = t.id
    WHERE {tenant_is("c", "{tenant}")}
)"""

_SUBTREES_SQL = f"WITH RECURSIVE {SUBTREE_CTE.format(tenant='$1', roots='$2::bigint[]')} SELECT root, id FROM subtree"


async def category_subtrees(conn, tenant_id: int, roots: Iterable[int]) -> dict[int, list[int]]:
    """{category id: [it and its descendants]} for the tenant's categories among `roots`
    (an unknown id is absent); `conn` is an asyncpg connection."""
    roots = sorted(set(roots))
    if not roots:
        return {}
    subtrees: dict[int, list[int]] = {}
    for root, category_id in await conn.fetch(_SUBTREES_SQL, tenant_id, roots):
        subtrees.setdefault(root, []).append(category_id)
    return subtrees
