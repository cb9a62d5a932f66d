"""The maintenance steps that delete old rows (the change log, the webhook delivery log,
Idempotency-Keys): one batch a round, in a transaction of its own."""

from collections.abc import Awaitable, Callable
from typing import Any

from app.db import driver_connection, session_scope
from app.jobs.context import WorkerContext


async def prune_step(
    ctx: WorkerContext,
    prune: Callable[[Any], Awaitable[int]],
    log: Any,
    event: str,
    counted: str,
) -> int:
    """Run `prune` (it deletes a batch on the asyncpg connection it is given and answers how many
    rows went) and log a count other than 0 as `event`, the count under the key `counted`."""
    async with session_scope(ctx["sessionmaker"]) as session:
        conn = await driver_connection(session)
        pruned = await prune(conn)
    if pruned:
        log.info(event, **{counted: pruned})
    return pruned
