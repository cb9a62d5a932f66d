"""Idempotency keys: the stored answers of POSTs sent with `Idempotency-Key`

A row is claimed (INSERT ... ON CONFLICT) before the route runs, in its own statement: a
duplicate sent meanwhile finds it in flight (`status_code` null). Once the route's transaction
has committed, its answer is stored in the row, and a retry with the same key and request gets
it back; a route that fails deletes its claim. Rows older than PIM_IDEMPOTENCY_KEY_HOURS are
taken over by a new claim and pruned by the worker (app/idempotency.py).

Revision ID: h4_idem_1
Revises: h2_paging_1
"""

from alembic import op

revision = "h4_idem_1"
down_revision = "h4_perf_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE idempotency_keys (
            tenant_id bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            credential text NOT NULL,
            key text NOT NULL,
            claim uuid NOT NULL,
            method text NOT NULL,
            path text NOT NULL,
            fingerprint text,
            status_code integer,
            headers jsonb,
            body bytea,
            created_at timestamptz NOT NULL DEFAULT now(),
            completed_at timestamptz,
            CONSTRAINT pk_idempotency_keys PRIMARY KEY (tenant_id, credential, key)
        )
        """
    )
    op.execute("CREATE INDEX ix_idempotency_keys_created_at ON idempotency_keys (created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS idempotency_keys")
