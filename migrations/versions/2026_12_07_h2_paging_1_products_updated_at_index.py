"""Index of a tenant's products by last write

Incremental readers page the product list by `updated_at` (`ordering=updated_at` with
`updated_at__gte=<last sync>`) with keyset cursors: with this index a page is one index range
at any depth, instead of a sort of every matching product. `id` last: the list's tiebreak.

Revision ID: h2_paging_1
Revises: h2_changes_1
"""

from alembic import op

revision = "h2_paging_1"
down_revision = "h2_changes_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_products_tenant_updated ON products (tenant_id, updated_at, id)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_products_tenant_updated")
