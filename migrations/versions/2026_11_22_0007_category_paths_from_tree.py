"""Category paths rebuilt from the tree

Renaming or moving a category used to rewrite every path starting with its old path, which
also rewrote the subtree of a same-named category ("Men" and another root "Men", or "Men"
and "Men >" from before names with ">" were refused). Descendants are now found by
parent_id; this repairs the paths the old rewrite may have corrupted.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

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


def upgrade() -> None:
    op.execute(REBUILD_PATHS)


def downgrade() -> None:
    pass  # the repaired paths are right under either revision
