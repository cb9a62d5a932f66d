"""Read model: NOTIFY pim_changes with the tenant id when change-log entries are written

A statement-level trigger on product_changes: the notification is delivered at commit (never
for a transaction that rolls back), one per tenant and transaction (Postgres folds identical
payloads), and wakes the worker that applies the entries to the ClickHouse read model
(app/mirror/tasks.py). The change log itself is unchanged.

Revision ID: h4_read_1
Revises: h2_paging_1
"""

from alembic import op

revision = "h4_read_1"
down_revision = "h4_idem_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION pim_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('pim_changes', t::text) FROM (SELECT DISTINCT tenant_id AS t FROM new_rows) s;
          RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER product_changes_notify AFTER INSERT ON product_changes "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pim_notify_changes()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS product_changes_notify ON product_changes")
    op.execute("DROP FUNCTION IF EXISTS pim_notify_changes()")
