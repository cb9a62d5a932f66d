"""arq worker: `pim worker` or `arq workers.main.WorkerSettings`.

on_startup puts the sessionmaker and the ClickHouse client in ctx; task functions
come from the domains' tasks modules.
"""

import gc

from arq.connections import RedisSettings

from app.clickhouse import ClickHouse
from app.config import get_settings
from app.db import create_engine, create_sessionmaker
from app.log import configure_logging
from app.imports.tasks import IMPORT_FUNCTIONS, recover_imports
from app.segments.tasks import compute_segment_task, recover_segments

settings = get_settings()


async def startup(ctx: dict) -> None:
    configure_logging(settings.log_level)
    ctx["settings"] = settings
    # a running task holds up to two connections (a lease and its transaction): 2 x max_jobs
    ctx["engine"] = create_engine(settings, pool_size=4, max_overflow=4)
    ctx["sessionmaker"] = create_sessionmaker(ctx["engine"])
    ctx["clickhouse"] = ClickHouse(settings)
    await recover_imports(ctx)  # imports left in `importing` by a worker that died
    await recover_segments(ctx)  # computes left `computing` by a worker that died
    # The loaded app is ~125k objects that live as long as the process. Frozen, they are left out
    # of the full collections that a task's long-lived objects (an import's batch) keep
    # triggering, which otherwise walked them all each time: about a third of an import's CPU.
    gc.collect()
    gc.freeze()
    # Each import batch still promotes ~40k objects, and by default that starts a full collection
    # over every live batch about every other batch (up to ~60 ms, the writing transaction waiting).
    # A tenth as many: young collections stay as they are.
    gc.set_threshold(700, 10, 100)


async def shutdown(ctx: dict) -> None:
    await ctx["clickhouse"].close()
    await ctx["engine"].dispose()


FUNCTIONS: list = [compute_segment_task, *IMPORT_FUNCTIONS]


class WorkerSettings:
    functions = FUNCTIONS
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    health_check_interval = 30
    max_jobs = 4
    job_timeout = 3600
    keep_result = 0
