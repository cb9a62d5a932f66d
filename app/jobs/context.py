"""What a task finds in arq's `ctx`: a dict (arq creates it and writes its own keys into it),
typed here so that a misspelt or missing key is a type error, not a KeyError in a worker."""

import asyncio
import uuid
from typing import TypedDict

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.clickhouse import ClickHouse
from app.config import Settings


class WorkerContext(TypedDict, total=False):
    # arq's own
    redis: ArqRedis
    job_id: str
    job_try: int
    # ours, put there by `workers/main.py:startup`
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    clickhouse: ClickHouse
    worker_id: str
    stop_heartbeat: asyncio.Event
    heartbeat: asyncio.Task
    maintenance: asyncio.Task
    mirror: asyncio.Task  # the read model's loop (app/mirror/tasks.py)
    webhooks: asyncio.Task  # the webhook delivery loop (app/webhooks/delivery.py)
    import_rows: dict[uuid.UUID, int]  # each import job's row at the last maintenance round


def job_try(ctx: WorkerContext) -> int:
    """Which try of the job this is (1 when the task is called outside arq)."""
    return ctx.get("job_try", 1)
