"""Unique category names among siblings (roots included); paths rebuilt from the tree

A category's `path` ("Men > Shoes") identifies it for the CSV import and the PIMS route,
so two siblings must not share a name. Databases may already hold such duplicates (the
API accepted them): the later ones (by id) are renamed "Men (2)", "Men (3)", ... first,
skipping suffixes a sibling already uses. Then every path is recomputed from `parent_id`:
the renames change paths, and renaming or moving a category used to rewrite descendants by
string prefix, which also rewrote the subtree of a same-named category.

The unique index treats NULL parents (roots) as equal (NULLS NOT DISTINCT, Postgres 15+)
and leads with (tenant_id, parent_id), so it replaces the plain index on those two.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Row by row, but only over the duplicates: the loop's query is read once, before any rename,
# and each candidate name is checked against the siblings as they are at that moment.
DEDUPLICATE_SIBLINGS = r"""
DO $$
DECLARE
  dup record;
  n bigint;
  candidate text;
BEGIN
  FOR dup IN
    SELECT id, tenant_id, parent_id, name, rank FROM (
      SELECT id, tenant_id, parent_id, name,
             row_number() OVER (PARTITION BY tenant_id, parent_id, name ORDER BY id) AS rank
      FROM categories
    ) ranked
    WHERE rank > 1
    ORDER BY tenant_id, parent_id NULLS FIRST, name, id
  LOOP
    n := dup.rank;
    LOOP
      candidate := left(dup.name, 255 - length(' (' || n || ')')) || ' (' || n || ')';
      EXIT WHEN NOT EXISTS (
        SELECT FROM categories
        WHERE tenant_id = dup.tenant_id AND parent_id IS NOT DISTINCT FROM dup.parent_id AND name = candidate
      );
      n := n + 1;
    END LOOP;
    UPDATE categories SET name = candidate, updated_at = now() WHERE id = dup.id;
  END LOOP;
END
$$
"""

REBUILD_PATHS = r"""
WITH RECURSIVE tree(id, path) AS (
    SELECT id, name::text FROM categories WHERE parent_id IS NULL
    UNION ALL
    SELECT c.id, t.path || ' > ' || c.name FROM categories c JOIN tree t ON c.parent_id = t.id
)
UPDATE categories c SET path = tree.path, updated_at = now()
FROM tree
WHERE c.id = tree.id AND c.path IS DISTINCT FROM tree.path
"""

CREATE_INDEX = (
    "CREATE UNIQUE INDEX uq_categories_tenant_parent_name "
    "ON categories (tenant_id, parent_id, name) NULLS NOT DISTINCT"
)


def upgrade() -> None:
    op.execute(DEDUPLICATE_SIBLINGS)
    op.execute(REBUILD_PATHS)
    op.execute(CREATE_INDEX)
    op.execute("DROP INDEX ix_categories_tenant_parent")


def downgrade() -> None:
    # the renames stay: they are valid names under either revision
    op.execute("CREATE INDEX ix_categories_tenant_parent ON categories (tenant_id, parent_id)")
    op.execute("DROP INDEX uq_categories_tenant_parent_name")
