"""The worker's side of webhooks: the delivery loop, and the log's retention."""

import asyncio
from functools import partial

import structlog

from app.jobs.context import WorkerContext
from app.jobs.pruning import prune_step
from app.webhooks.delivery import Dispatcher, prune_log

log = structlog.get_logger("pim.webhooks")


def start_deliveries(ctx: WorkerContext) -> asyncio.Task:
    """The delivery loop, beside the jobs (no job holds it up; it runs until the worker stops)."""
    dispatcher = Dispatcher(ctx["engine"], ctx["sessionmaker"], ctx["settings"])
    return asyncio.create_task(dispatcher.run(), name="webhook-deliveries")


async def prune_webhook_log(ctx: WorkerContext) -> int:
    """One maintenance step: delivery log and outbox rows older than PIM_WEBHOOK_LOG_RETENTION_DAYS."""
    prune = partial(prune_log, retention_days=ctx["settings"].webhook_log_retention_days)
    return await prune_step(ctx, prune, log, "webhook_log_pruned", "rows")
