"""Index of a tenant's products that are not deleted

The PIMS route leaves deleted products out by default; with this partial index its
exact count is an index-only scan instead of a read of every product row.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_products_tenant_live ON products (tenant_id, id) WHERE status <> 'deleted'")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_products_tenant_live")
