"""The worker's side of the change log: retention."""

import structlog

from app.changes.service import prune_changes
from app.db import driver_connection
from app.jobs.context import WorkerContext

log = structlog.get_logger("pim.changes")


async def prune_old_changes(ctx: WorkerContext) -> int:
    """One maintenance step: entries older than PIM_CHANGE_RETENTION_DAYS go (a batch per round)."""
    async with ctx["sessionmaker"]() as session, session.begin():
        conn = await driver_connection(session)
        pruned = await prune_changes(conn, retention_days=ctx["settings"].change_retention_days)
    if pruned:
        log.info("changes_pruned", entries=pruned)
    return pruned
