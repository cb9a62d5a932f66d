"""The worker's side of the change log: retention."""

from functools import partial

import structlog

from app.changes.service import prune_changes
from app.jobs.context import WorkerContext
from app.jobs.pruning import prune_step

log = structlog.get_logger("pim.changes")


async def prune_old_changes(ctx: WorkerContext) -> int:
    """One maintenance step: entries older than PIM_CHANGE_RETENTION_DAYS go (a batch per round)."""
    prune = partial(prune_changes, retention_days=ctx["settings"].change_retention_days)
    return await prune_step(ctx, prune, log, "changes_pruned", "entries")
