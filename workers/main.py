"""arq worker: `pim worker` (a `PimWorker`), or `arq workers.main.WorkerSettings` (arq's own
Worker, which ends at the first Redis error).

on_startup puts the sessionmaker and the ClickHouse client in ctx, recovers lost work, and
starts two background tasks that no job can hold up: the heartbeat that `/readyz` reads, and
the maintenance rounds (lost jobs queued again, orphaned ClickHouse rows deleted). Task
functions come from the domains' tasks modules.
"""

import asyncio
import contextlib
import gc
import time
from functools import partial

import structlog
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker, get_kwargs
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.changes.tasks import prune_old_changes
from app.clickhouse import ClickHouse
from app.config import get_settings
from app.db import create_engine, create_sessionmaker
from app.idempotency import prune_idempotency_keys
from app.imports.tasks import IMPORT_FUNCTIONS, recover_imports
from app.jobs.context import WorkerContext
from app.jobs.pruning import prune_step
from app.jobs.queue import forget, heartbeat_loop, worker_id
from app.jobs.transient import REDIS_DOWN
from app.log import configure_logging
from app.mirror.tasks import mirror_loop
from app.products.tasks import PRODUCT_FUNCTIONS
from app.products.typed_indexes import drop_orphaned_typed_indexes
from app.segments.tasks import (
    cleanup_orphaned_members,
    compute_segment_task,
    recover_segments,
)
from app.webhooks.tasks import prune_webhook_log, start_deliveries

settings = get_settings()
log = structlog.get_logger("pim.worker")

# a segment `queued`/`computing` this long without a change is checked for a lost job
SEGMENT_IDLE_SECONDS = 30
_MAX_BACKOFF_S = 5.0


async def maintain(ctx: WorkerContext, *, at_start: bool = False) -> None:
    """One maintenance round; a step whose database is down is logged and tried next round."""
    steps = (
        (
            "imports",
            lambda: recover_imports(
                ctx, progress_seen=None if at_start else ctx.setdefault("import_rows", {})
            ),
        ),
        (
            "segments",
            lambda: recover_segments(ctx, idle_seconds=0 if at_start else SEGMENT_IDLE_SECONDS),
        ),
        ("memberships", lambda: cleanup_orphaned_members(ctx)),
        ("change log retention", lambda: prune_old_changes(ctx)),
        ("idempotency keys", lambda: prune_old_idempotency_keys(ctx)),
        ("typed indexes of deleted tenants", lambda: drop_orphaned_typed_indexes(ctx["engine"])),
        ("webhook log retention", lambda: prune_webhook_log(ctx)),
    )
    for name, step in steps:
        try:
            await step()
        except Exception as exc:
            log.warning("maintenance_failed", step=name, error=f"{type(exc).__name__}: {exc}"[:300])


async def prune_old_idempotency_keys(ctx: WorkerContext) -> int:
    """One maintenance step: Idempotency-Keys older than PIM_IDEMPOTENCY_KEY_HOURS go (a batch)."""
    prune = partial(prune_idempotency_keys, hours=ctx["settings"].idempotency_key_hours)
    return await prune_step(ctx, prune, log, "idempotency_keys_pruned", "keys")


async def _maintenance_loop(ctx: WorkerContext) -> None:
    while True:
        await asyncio.sleep(ctx["settings"].worker_maintenance_seconds)
        await maintain(ctx)


async def startup(ctx: WorkerContext) -> None:
    configure_logging(settings.log_level)
    ctx["settings"] = settings
    # a running task holds up to three connections (a lease and an import's two batches being
    # written): 3 x max_jobs
    ctx["engine"] = create_engine(settings, pool_size=4, max_overflow=8)
    ctx["sessionmaker"] = create_sessionmaker(ctx["engine"])
    ctx["clickhouse"] = ClickHouse(settings)
    # jobs left behind by a worker that died, or lost by Redis; rows of deleted segments
    await maintain(ctx, at_start=True)
    ctx["worker_id"] = worker_id()
    ctx["stop_heartbeat"] = asyncio.Event()
    ctx["heartbeat"] = asyncio.create_task(
        heartbeat_loop(
            ctx["redis"],
            ctx["worker_id"],
            timeout=settings.worker_heartbeat_timeout_seconds,
            stop=ctx["stop_heartbeat"],
        )
    )
    ctx["maintenance"] = asyncio.create_task(_maintenance_loop(ctx))
    if settings.mirror_enabled:  # the ClickHouse read model, woken after every write
        ctx["mirror"] = asyncio.create_task(mirror_loop(settings, ctx["clickhouse"]))
    ctx["webhooks"] = start_deliveries(ctx)
    # The loaded app is ~125k objects that live as long as the process. Frozen, they are left out
    # of the full collections that a task's long-lived objects (an import's batch) keep
    # triggering, which otherwise walked them all each time: about a third of an import's CPU.
    gc.collect()
    gc.freeze()
    # Each import batch still promotes ~40k objects, and by default that starts a full collection
    # over every live batch about every other batch (up to ~60 ms, the writing transaction waiting).
    # A tenth as many: young collections stay as they are.
    gc.set_threshold(700, 10, 100)


async def shutdown(ctx: WorkerContext) -> None:
    for task in ("webhooks", "maintenance", "mirror"):
        if task in ctx:
            ctx[task].cancel()
            await asyncio.gather(ctx[task], return_exceptions=True)
    if "heartbeat" in ctx:
        ctx["stop_heartbeat"].set()  # the beat in flight lands first, then the heartbeat goes
        await asyncio.gather(ctx["heartbeat"], return_exceptions=True)
        with contextlib.suppress(*REDIS_DOWN):
            await forget(ctx["redis"], ctx["worker_id"])
    await ctx["clickhouse"].close()
    await ctx["engine"].dispose()


FUNCTIONS: list = [compute_segment_task, *IMPORT_FUNCTIONS, *PRODUCT_FUNCTIONS]


class WorkerSettings:
    functions = FUNCTIONS
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    health_check_interval = 30
    max_jobs = 4
    # a confirmed import starts within 0.1 s instead of arq's 0.5 s (a Redis ZRANGEBYSCORE per poll)
    poll_delay = 0.1
    job_timeout = 3600
    keep_result = 0


async def _redis_pool(url: str) -> ArqRedis:
    """The worker's Redis client, once Redis answers (however long that takes).

    Commands retry for a few seconds after a lost connection, and a socket that stops
    answering times out instead of hanging the worker.
    """
    pool = ArqRedis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=10,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), 6),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    delay = 0.5
    while True:
        try:
            await pool.ping()
            return pool
        except REDIS_DOWN as exc:
            log.warning(
                "redis_unavailable", error=f"{type(exc).__name__}: {exc}"[:300], retry_in_s=delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)


class PimWorker(Worker):
    """arq's Worker, made to outlive Redis outages.

    arq ends its poll loop, and with it the process, at the first Redis error (a 5-second
    outage was enough) while the API kept queueing jobs. Here a poll that fails is logged and
    tried again with a growing delay (up to 5 s); running jobs go on (they need Postgres, not
    Redis) and finish their bookkeeping once Redis is back.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._down_since: float | None = None
        self._backoff = 0.5

    async def main(self) -> None:
        if self._pool is None:
            self._pool = await _redis_pool(settings.redis_url)
        await super().main()

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("redis_unavailable", error=f"{type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, _MAX_BACKOFF_S)
            return
        if self._down_since is not None:
            log.info("redis_reconnected", down_s=round(time.monotonic() - self._down_since, 1))
            self._down_since, self._backoff = None, 0.5

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        for job_id in job_ids:
            try:
                await super().start_jobs([job_id])
            except REDIS_DOWN:
                # arq takes a slot for a job before asking Redis about it, and only gives it back
                # for the errors it expects: without this, each outage would leak a slot
                self.job_counter -= 1
                self.sem.release()
                raise

    async def close(self) -> None:
        # arq's close gathers the job tasks without return_exceptions: a job cancelled by the
        # shutdown (in its shielded bookkeeping) ended close there, before on_shutdown
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()
        try:
            await super().close()
        except REDIS_DOWN as exc:  # arq's close stops at its first Redis call, before on_shutdown
            log.warning("redis_unavailable_at_shutdown", error=f"{type(exc).__name__}: {exc}"[:300])
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)


def run() -> None:
    """`pim worker`: a PimWorker with the WorkerSettings."""
    # arq reads a plain settings class by its attributes (arq's documented form)
    PimWorker(**get_kwargs(WorkerSettings)).run()  # type: ignore[arg-type]
