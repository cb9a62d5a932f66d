"""The worker's side of products: fresh planner statistics after large writes, typed indexes.

**Statistics.** Autovacuum may lag behind a bulk load, or be off (it is on this machine's
Postgres): after a 1M-row load without ANALYZE, `q=` took 511 ms instead of 17 ms, because the
planner still believed the table small. So the bulk upsert and the import report the rows they
wrote (`note_writes`, after their commit): a counter in Redis, and one `products_upkeep` job per
PIM_UPKEEP_DEBOUNCE_SECONDS window (its id names the window, so the writes of one window make one
job, and a job running does not keep the next window's from being queued). The job runs ANALYZE
on `products` and `product_changes` once the rows counted since the last one reach
PIM_ANALYZE_MIN_ROWS or PIM_ANALYZE_FRACTION of the table, whichever is fewer; below that the
count waits for more writes. Redis losing the counter loses one nudge: autovacuum is still there.

**Typed indexes** (`typed_indexes.py`): a schema change queues `sync_typed_indexes_task` for
its tenant; `products_upkeep` syncs every tenant that wrote in its window too, which is how a
tenant that grows past PIM_TYPED_INDEX_MIN_PRODUCTS gets its indexes.
"""

import time
import uuid

import asyncpg
import structlog
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import get_fields
from app.config import Settings
from app.db import after_commit, all_tenants, session_scope, tenant_of
from app.jobs.context import WorkerContext
from app.jobs.enqueue import Job, send_now
from app.jobs.transient import REDIS_DOWN
from app.products.typed_indexes import sync_typed_indexes

log = structlog.get_logger("pim.products")

UPKEEP_TASK = "products_upkeep"
TYPED_INDEXES_TASK = "sync_typed_indexes_task"
ROWS_KEY = "pim:upkeep:rows_written"  # rows written since the last ANALYZE
TENANTS_KEY = "pim:upkeep:tenants"  # tenants that wrote since the last upkeep job
ANALYZED_TABLES = ("products", "product_changes")


def _upkeep_job(settings: Settings) -> Job:
    window = max(settings.upkeep_debounce_seconds, 0.001)
    now = time.time()
    bucket = int(now // window)
    return Job(UPKEEP_TASK, (), f"pim:upkeep:{bucket}", defer_s=(bucket + 1) * window - now)


async def note_writes(redis: ArqRedis, settings: Settings, tenant_id: int, rows: int) -> None:
    """Count `rows` written by a bulk write of the tenant (committed) and queue the window's
    upkeep job. Best effort: a Redis failure is logged, never the writer's error."""
    if rows <= 0:
        return
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incrby(ROWS_KEY, rows)
            pipe.sadd(TENANTS_KEY, str(tenant_id))
            await pipe.execute()
        await send_now(redis, _upkeep_job(settings))
    except (RedisError, *REDIS_DOWN) as exc:
        log.warning("upkeep_not_noted", tenant_id=tenant_id, rows=rows, error=str(exc)[:200])


def note_writes_after_commit(
    session: AsyncSession, redis: ArqRedis, settings: Settings, rows: int
) -> None:
    """`note_writes` once the session's transaction has committed (a request's bulk write)."""
    tenant_id = tenant_of(session)

    async def note() -> None:
        await note_writes(redis, settings, tenant_id, rows)

    if rows > 0:
        after_commit(session, note)


async def _take_tenants(redis: ArqRedis) -> list[int]:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.smembers(TENANTS_KEY)
        pipe.delete(TENANTS_KEY)
        members, _deleted = await pipe.execute()
    return sorted(int(m) for m in members)


async def analyze_if_due(ctx: WorkerContext, written: int) -> bool:
    """ANALYZE the product tables when `written` rows reach the threshold for the table's size."""
    settings = ctx["settings"]
    async with ctx["engine"].connect() as connection:
        conn: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
        reltuples = await conn.fetchval(
            "SELECT reltuples FROM pg_class WHERE oid = 'products'::regclass"
        )
        threshold = min(
            settings.analyze_min_rows, settings.analyze_fraction * max(reltuples or 0, 0)
        )
        if written < threshold:
            return False
        await conn.execute("SET statement_timeout = 0")
        try:
            for table in ANALYZED_TABLES:
                await conn.execute(all_tenants(f"ANALYZE {table}"))
        finally:
            await conn.execute("RESET statement_timeout")
    log.info("products_analyzed", rows_written=written, rows_before=reltuples)
    return True


async def _sync_tenant(ctx: WorkerContext, tenant_id: int) -> dict[str, list[str]]:
    settings = ctx["settings"]
    async with session_scope(ctx["sessionmaker"], tenant_id) as session:
        fields = await get_fields(session)
    return await sync_typed_indexes(
        ctx["engine"],
        tenant_id,
        fields,
        min_products=settings.typed_index_min_products,
        per_tenant=settings.typed_indexes_per_tenant,
        total=settings.typed_indexes_max,
    )


async def products_upkeep(ctx: WorkerContext) -> dict:
    """arq task: statistics when due, then the typed indexes of the tenants that wrote."""
    redis = ctx["redis"]
    written = int(await redis.get(ROWS_KEY) or 0)
    analyzed = await analyze_if_due(ctx, written)
    if analyzed:  # what was counted is in the statistics; writes counted meanwhile stay
        await redis.decrby(ROWS_KEY, written)
    tenants = await _take_tenants(redis)
    for tenant_id in tenants:
        try:
            await _sync_tenant(ctx, tenant_id)
        except Exception as exc:  # the next window's job tries again; the others go on
            log.warning("typed_indexes_failed", tenant_id=tenant_id, error=str(exc)[:300])
            await redis.sadd(TENANTS_KEY, str(tenant_id))  # type: ignore[misc]  # redis-py types sync and async alike
    return {"analyzed": analyzed, "rows_written": written, "tenants": tenants}


async def sync_typed_indexes_task(ctx: WorkerContext, tenant_id: int) -> dict:
    """arq task: the tenant's typed indexes made those its current schema asks for."""
    return await _sync_tenant(ctx, tenant_id)


def typed_indexes_job(tenant_id: int) -> Job:
    # never coalesced: a run that read the schema before a change must not swallow the next one
    # (runs of one tenant take turns on its lease; a run with nothing to do is a few queries)
    return Job(
        TYPED_INDEXES_TASK, (tenant_id,), f"pim:typed-indexes:{tenant_id}:{uuid.uuid4().hex}"
    )


def sync_typed_indexes_after_commit(session: AsyncSession, redis: ArqRedis) -> None:
    """Queue the tenant's typed-index sync once a schema change has committed. Best effort: with
    Redis down the schema still changes (the next upkeep of a bulk write of the tenant syncs)."""
    job = typed_indexes_job(tenant_of(session))

    async def send() -> None:
        try:
            await send_now(redis, job)
        except (RedisError, *REDIS_DOWN) as exc:
            log.warning("typed_indexes_not_queued", job_id=job.job_id, error=str(exc)[:200])

    after_commit(session, send)


PRODUCT_FUNCTIONS = [products_upkeep, sync_typed_indexes_task]
