"""The worker's side of webhooks: the delivery loop, and the log's retention."""

import asyncio

import structlog

from app.db import driver_connection
from app.jobs.context import WorkerContext
from app.webhooks.delivery import Dispatcher, prune_log

log = structlog.get_logger("pim.webhooks")


def start_deliveries(ctx: WorkerContext) -> asyncio.Task:
    """The delivery loop, beside the jobs (no job holds it up; it runs until the worker stops)."""
    dispatcher = Dispatcher(ctx["engine"], ctx["sessionmaker"], ctx["settings"])
    return asyncio.create_task(dispatcher.run(), name="webhook-deliveries")


async def prune_webhook_log(ctx: WorkerContext) -> int:
    """One maintenance step: delivery log and outbox rows older than PIM_WEBHOOK_LOG_RETENTION_DAYS."""
    async with ctx["sessionmaker"]() as session, session.begin():
        conn = await driver_connection(session)
        pruned = await prune_log(conn, retention_days=ctx["settings"].webhook_log_retention_days)
    if pruned:
        log.info("webhook_log_pruned", rows=pruned)
    return pruned
