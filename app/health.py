"""Liveness and readiness; no credentials needed."""

import asyncio
import time

import structlog
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.responses import OrjsonResponse

router = APIRouter(tags=["health"])
log = structlog.get_logger("pim.health")

CHECK_TIMEOUT_S = 2.0


class Health(BaseModel):
    status: str


class DependencyStatus(BaseModel):
    status: str
    latency_ms: float | None = None
    error: str | None = Field(default=None, description="the kind of failure (an exception's type name); details are in the server log")


class Readiness(BaseModel):
    status: str
    checks: dict[str, DependencyStatus]


@router.get("/healthz", operation_id="healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


async def _timed(check) -> DependencyStatus:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except Exception as exc:  # any failure means "not ready", whatever its type
        # anonymous callers get the kind of failure only: its message names internal hosts and ports
        log.warning("readiness_check_failed", check=check.__name__, error=f"{type(exc).__name__}: {exc}"[:300])
        return DependencyStatus(status="down", error=type(exc).__name__)
    return DependencyStatus(status="up", latency_ms=round((time.perf_counter() - started) * 1000, 2))


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is down"}},
)
async def readyz(request: Request):
    state = request.app.state

    async def postgres():
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis():
        await state.arq.ping()

    async def clickhouse():
        await state.clickhouse.ping()

    results = await asyncio.gather(_timed(postgres), _timed(redis), _timed(clickhouse))
    checks = dict(zip(("postgres", "redis", "clickhouse"), results, strict=True))
    ready = all(c.status == "up" for c in checks.values())
    body = Readiness(status="ready" if ready else "unavailable", checks=checks)
    return OrjsonResponse(body.model_dump(), status_code=200 if ready else 503)
