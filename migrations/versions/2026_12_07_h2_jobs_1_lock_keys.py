"""Advisory-lock keys: 64-bit and namespaced, computed by one function

The locks used to be keyed by two int4 halves in four different ways, one of them the tenant id
cast to int (a tenant above 2^31 could not write a product: `integer out of range`), others the
id modulo 2^31-1 (tenants 1 and 2^31 shared a lock). `pim_lock_key(namespace, tenant, id)` is now
the one key of every advisory lock: `hashtextextended('<namespace>:<tenant>:<id>', 0)`. The
facet-count trigger and the recount take `pim.facet_counts` with it; the service's locks use it
through `app/jobs/locks.py`. Otherwise the functions are those of 0004 and 0006.

Revision ID: h2_jobs_1
Revises: 0007
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "h2_jobs_1"
down_revision = "0007"
branch_labels = None
depends_on = None

LOCK_KEY_FUNCTION = r"""
CREATE OR REPLACE FUNCTION pim_lock_key(namespace text, tenant bigint, id text DEFAULT '')
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN hashtextextended(namespace || ':' || tenant || ':' || id, 0)
"""

_TRIGGER_LOCK = (
    "pg_advisory_xact_lock_shared(7130, t.tenant_id::int)",
    "pg_advisory_xact_lock_shared(pim_lock_key(''pim.facet_counts'', t.tenant_id))",
)
_REBUILD_LOCK = (
    "pg_advisory_xact_lock(7130, tenant::int)",
    "pg_advisory_xact_lock(pim_lock_key('pim.facet_counts', tenant))",
)


def _migration(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _replaced(sql: str, old: str, new: str) -> str:
    assert sql.count(old) == 1, old
    return sql.replace(old, new)


def upgrade() -> None:
    op.execute(LOCK_KEY_FUNCTION)
    trigger = _migration("2026_11_22_0006_cheaper_facet_deltas").TRIGGER_FUNCTION
    op.execute(_replaced(trigger, *_TRIGGER_LOCK))
    rebuild = _migration("2026_11_22_0004_facet_counts").REBUILD_FUNCTION
    op.execute(_replaced(rebuild, *_REBUILD_LOCK))


def downgrade() -> None:
    op.execute(_migration("2026_11_22_0006_cheaper_facet_deltas").TRIGGER_FUNCTION)
    op.execute(_migration("2026_11_22_0004_facet_counts").REBUILD_FUNCTION)
    op.execute("DROP FUNCTION pim_lock_key(text, bigint, text)")
