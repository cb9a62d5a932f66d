"""Liveness and readiness; no credentials needed."""

import asyncio
import time

import structlog
from fastapi import Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.jobs.queue import newest_heartbeat
from app.responses import OrjsonResponse
from app.routing import api_router

router = api_router(tags=["health"])
log = structlog.get_logger("pim.health")

CHECK_TIMEOUT_S = 2.0


class Health(BaseModel):
    status: str


class DependencyStatus(BaseModel):
    status: str = Field(description="`up` or `down`")
    latency_ms: float | None = None
    error: str | None = Field(
        default=None,
        description="the kind of failure (an exception's type name); details are in the server log",
    )
    heartbeat_age_s: float | None = Field(
        default=None,
        description="`worker` only: seconds since the newest heartbeat of any worker (none yet: null)",
    )
    workers: int | None = Field(
        default=None,
        description="`worker` only: workers whose heartbeat is younger than "
        "`PIM_WORKER_HEARTBEAT_TIMEOUT_SECONDS`",
    )


class Readiness(BaseModel):
    status: str = Field(
        description="`ready`: every check is up. `degraded` (still 200): the API serves requests, but no worker "
        "has sent a heartbeat recently, so queued imports and segment computes wait. `unavailable` (503): "
        "Postgres, Redis or ClickHouse is down."
    )
    checks: dict[str, DependencyStatus] = Field(
        description="`postgres`, `redis`, `clickhouse`: reachable. `worker`: a background worker wrote its heartbeat "
        "to Redis within `PIM_WORKER_HEARTBEAT_TIMEOUT_SECONDS` (default 30; workers beat six times as often)."
    )


@router.get("/healthz", operation_id="healthz", response_model=Health)
async def healthz() -> Health:
    """The process answers (no dependency is checked: see `/readyz`). No credentials."""
    return Health(status="ok")


async def _timed(check) -> DependencyStatus:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except Exception as exc:  # any failure means "not ready", whatever its type
        # anonymous callers get the kind of failure only: its message names internal hosts and ports
        log.warning(
            "readiness_check_failed",
            check=check.__name__,
            error=f"{type(exc).__name__}: {exc}"[:300],
        )
        return DependencyStatus(status="down", error=type(exc).__name__)
    return DependencyStatus(
        status="up", latency_ms=round((time.perf_counter() - started) * 1000, 2)
    )


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is down"}},
)
async def readyz(request: Request):
    """Each dependency's status. 503 when Postgres, Redis or ClickHouse is down; `degraded` (200)
    when only the `worker` check is down (no worker heartbeat lately: queued jobs wait)."""
    state = request.app.state

    async def postgres():
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis():
        await state.arq.ping()

    async def clickhouse():
        await state.clickhouse.ping()

    results = await asyncio.gather(
        _timed(postgres), _timed(redis), _timed(clickhouse), _worker(request)
    )
    checks = dict(zip(("postgres", "redis", "clickhouse", "worker"), results, strict=True))
    ready = all(c.status == "up" for name, c in checks.items() if name != "worker")
    status = (
        ("ready" if checks["worker"].status == "up" else "degraded") if ready else "unavailable"
    )
    body = Readiness(status=status, checks=checks)
    return OrjsonResponse(body.model_dump(), status_code=200 if ready else 503)


async def _worker(request: Request) -> DependencyStatus:
    """Up while some worker's heartbeat is younger than the timeout. Not part of readiness: the
    API serves reads and writes without a worker (jobs wait in the queue), so it stays in the
    load balancer; the entry (and `degraded`) is what to alert on."""
    timeout = request.app.state.settings.worker_heartbeat_timeout_seconds
    try:
        age, alive = await asyncio.wait_for(
            newest_heartbeat(request.app.state.arq, max_age=timeout), CHECK_TIMEOUT_S
        )
    except Exception as exc:  # Redis down: the heartbeats cannot be read
        return DependencyStatus(status="down", error=f"heartbeats unreadable: {type(exc).__name__}")
    heard = age is not None and age < timeout
    return DependencyStatus(
        status="up" if heard else "down",
        heartbeat_age_s=None if age is None else round(age, 1),
        workers=alive,
        error=None if heard else f"no worker heartbeat in the last {timeout:g} s",
    )
