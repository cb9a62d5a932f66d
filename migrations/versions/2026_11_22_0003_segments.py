"""Product segments

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # pim_date/pim_timestamptz (0001) catch cast errors in a PL/pgSQL EXCEPTION block, which opens a
    # subtransaction; that is not allowed anywhere in a query running in parallel mode ("cannot start
    # subtransactions during a parallel operation"), so every parallel scan over a large tenant with a
    # date condition failed (segment counts and computes are such scans). The PostgreSQL manual: such
    # functions must be PARALLEL UNSAFE.
    op.execute("ALTER FUNCTION pim_date(text) PARALLEL UNSAFE")
    op.execute("ALTER FUNCTION pim_timestamptz(text) PARALLEL UNSAFE")
    op.create_table('segments',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('tenant_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('definition', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='new', nullable=False),
    sa.Column('computed_count', sa.BigInteger(), nullable=True),
    sa.Column('last_computed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('current_generation', sa.BigInteger(), nullable=True),
    sa.Column('generation_seq', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_segments_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segments'))
    )
    op.create_index('ix_segments_tenant_id_id', 'segments', ['tenant_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_table('segments')
