"""A tenant that has products can be deleted

Deleting a tenant cascades to its products; their delete trigger logged the deletions and took
the next seqs from product_change_seqs, whose row for that tenant the same cascade had removed:
the upsert of the counter row then failed its foreign key, and the tenant could not be deleted.
The log no longer records the deletion of a product whose tenant is gone (the tenant's entries
go with it: trigger tenants_drop_changes, h4_perf_1).

Revision ID: h5_tenant_1
Revises: h4_hooks_1
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "h5_tenant_1"
down_revision = "h4_hooks_1"
branch_labels = None
depends_on = None

_DELETED_SOURCE = "      FROM old_rows o$s$;"


def _log_function_of_h4_perf_1() -> str:
    path = Path(__file__).with_name("2026_12_07_h4_perf_1_cheaper_change_log.py")
    spec = importlib.util.spec_from_file_location("h4_perf_1", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LOG_FUNCTION


def upgrade() -> None:
    function = _log_function_of_h4_perf_1()
    assert function.count(_DELETED_SOURCE) == 1
    op.execute(
        function.replace(
            _DELETED_SOURCE,
            "      FROM old_rows o\n"
            "      -- not when the tenant itself is being deleted: its log goes with it\n"
            "      WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = o.tenant_id)$s$;",
        )
    )


def downgrade() -> None:
    op.execute(_log_function_of_h4_perf_1())
