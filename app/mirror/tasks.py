"""The worker's read-model loop: woken by `NOTIFY pim_changes` (migration h4_read_1) after every
committed write, and every PIM_MIRROR_SWEEP_SECONDS for every tenant whose last seq moved since
the last sweep (a notification missed while the listener reconnected; every tenant at start); applies each woken tenant's entries (`apply.catch_up`), and
builds the model of a tenant that has none once it has PIM_MIRROR_MIN_PRODUCTS products.
"""

import asyncio
import time
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import structlog

from app.changes.service import CHANGES_CHANNEL
from app.clickhouse import ClickHouse
from app.config import Settings
from app.db import all_tenants, pg_dsn, tenant_is
from app.mirror.apply import BUSY, NEEDS_REBUILD, catch_up, rebuild

log = structlog.get_logger("pim.mirror")

# a tenant without a model is counted (to see whether it has grown enough) at most this often
SIZE_CHECK_SECONDS = 60


async def sync_tenant(
    conn: asyncpg.Connection,
    clickhouse: ClickHouse,
    tenant_id: int,
    *,
    settings: Settings,
    size_checked: dict[int, float] | None = None,
) -> int:
    """Bring one tenant's model up to date (or build it); the entries applied, or BUSY."""
    applied = await catch_up(conn, clickhouse, tenant_id, batch=settings.mirror_batch)
    if applied != NEEDS_REBUILD:
        return applied
    now = time.monotonic()
    if size_checked is not None:
        if now - size_checked.get(tenant_id, -SIZE_CHECK_SECONDS) < SIZE_CHECK_SECONDS:
            return 0
        size_checked[tenant_id] = now
    products = await conn.fetchval(
        f"SELECT count(*) FROM products p WHERE {tenant_is('p')}", tenant_id
    )
    if products < settings.mirror_min_products:
        return 0
    state = await rebuild(conn, clickhouse, tenant_id)
    log.info("mirror_rebuilt", tenant_id=tenant_id, products=state.products, seq=state.seq)
    if size_checked is not None:
        size_checked.pop(tenant_id, None)
    return await catch_up(conn, clickhouse, tenant_id, batch=settings.mirror_batch)


@asynccontextmanager
async def _connection(settings: Settings):
    conn = await asyncpg.connect(
        pg_dsn(settings.database_url),
        timeout=5,
        server_settings={"application_name": "pim-mirror"},
    )
    try:
        yield conn
    finally:
        await conn.close()


async def mirror_loop(settings: Settings, clickhouse: ClickHouse) -> None:
    """Runs until cancelled; a failure (Postgres or ClickHouse down) is logged and retried."""
    woken: set[int] = set()
    wake = asyncio.Event()

    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            woken.add(int(payload))
            wake.set()

    size_checked: dict[int, float] = {}
    seen: dict[int, int] = {}  # each tenant's last_seq at the last sweep
    while True:
        try:
            async with _connection(settings) as listener, _connection(settings) as conn:
                await listener.add_listener(CHANGES_CHANNEL, on_notify)
                next_sweep = 0.0
                while True:
                    if time.monotonic() >= next_sweep:
                        # the tenants that wrote since the last sweep (all of them at the first)
                        for tenant_id, last_seq in await conn.fetch(
                            all_tenants(  # the worker's sweep over every tenant's counter
                                "SELECT tenant_id, last_seq FROM product_change_seqs"
                            )
                        ):
                            if seen.get(tenant_id) != last_seq:
                                woken.add(tenant_id)
                                seen[tenant_id] = last_seq
                        next_sweep = time.monotonic() + settings.mirror_sweep_seconds
                    while woken:
                        tenant_id = woken.pop()
                        if (
                            await sync_tenant(
                                conn,
                                clickhouse,
                                tenant_id,
                                settings=settings,
                                size_checked=size_checked,
                            )
                            == BUSY
                        ):
                            log.debug("mirror_busy", tenant_id=tenant_id)
                    wake.clear()
                    if not woken:
                        timeout = max(0.0, next_sweep - time.monotonic())
                        try:
                            await asyncio.wait_for(wake.wait(), timeout=timeout)
                        except TimeoutError:
                            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("mirror_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            seen.clear()  # every tenant again at the next sweep
            await asyncio.sleep(1)
