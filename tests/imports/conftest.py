"""Helpers for the CSV import tests: upload, confirm, wait, and app instances with other settings."""

import contextlib
import uuid
from pathlib import Path

import httpx
import pytest
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

from app.db import create_engine, create_sessionmaker
from app.main import create_app
from tests.conftest import wait_for

IMPORT = "/api/pim/import"
SAMPLES = (
    Path(__file__).resolve().parent / "samples"
)  # the two supplier feeds of shared/samples, kept here


async def upload(
    client: httpx.AsyncClient, headers: dict, content: bytes, filename: str = "feed.csv"
) -> httpx.Response:
    return await client.post(
        f"{IMPORT}/csv/", headers=headers, files={"file": (filename, content, "text/csv")}
    )


async def confirm_on_private_queue(worker_ctx, tenant, job: dict) -> None:
    """Confirm the job with its suggestion onto the worker context's own queue (a test then runs
    the task itself, no worker process takes it)."""
    from app.imports import service
    from app.imports.schemas import ConfirmIn

    async with worker_ctx["sessionmaker"]() as session:
        session.info["tenant_id"] = tenant.id
        body = ConfirmIn.model_validate(
            {"mapping": job["suggested_mapping"], "schema": job["suggested_schema"]}
        )
        await service.confirm_import(
            session, arq=worker_ctx["redis"], job_id=job["job_id"], body=body
        )
        await session.commit()


async def confirm(
    client, headers, job: dict, *, mapping=None, schema=None, **extra
) -> httpx.Response:
    body = {
        "mapping": job["suggested_mapping"] if mapping is None else mapping,
        "schema": job["suggested_schema"] if schema is None else schema,
        **extra,
    }
    return await client.post(f"{IMPORT}/{job['job_id']}/confirm/", headers=headers, json=body)


async def wait_done(client, headers, job_id: str, timeout: float = 60) -> dict:
    async def finished():
        r = await client.get(f"{IMPORT}/{job_id}/", headers=headers)
        assert r.status_code == 200, r.text
        return r.json() if r.json()["status"] in ("done", "failed") else None

    return await wait_for(finished, timeout=timeout)


async def confirm_suggestion(client, headers, content: bytes, filename: str = "feed.csv") -> str:
    """Upload and confirm the suggestion unchanged; the job id (the import is queued)."""
    r = await upload(client, headers, content, filename)
    assert r.status_code == 201, r.text
    job = r.json()
    r = await confirm(client, headers, job)
    assert r.status_code == 202, r.text
    return job["job_id"]


async def import_file(
    client, headers, content: bytes, *, mapping=None, schema=None, **extra
) -> tuple[dict, dict]:
    """Upload, confirm the suggestion (or the given mapping/schema), wait; returns (suggestion, final job)."""
    r = await upload(client, headers, content)
    assert r.status_code == 201, r.text
    job = r.json()
    r = await confirm(client, headers, job, mapping=mapping, schema=schema, **extra)
    assert r.status_code == 202, r.text
    return job, await wait_done(client, headers, job["job_id"])


@pytest.fixture(scope="session")
def sample_bytes():
    def read(name: str) -> bytes:
        return (SAMPLES / name).read_bytes()  # a missing feed fails the test: it never skips

    return read


@pytest.fixture
async def app_with(settings):
    """`client = await app_with(max_upload_bytes=1000)`: an app instance with other settings."""
    stack = contextlib.AsyncExitStack()

    async def make(**overrides) -> httpx.AsyncClient:
        application = create_app(settings.model_copy(update=overrides))
        await stack.enter_async_context(application.router.lifespan_context(application))
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        return await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://pim.test", timeout=60)
        )

    yield make
    await stack.aclose()


@pytest.fixture
async def worker_ctx(settings):
    """The task's context, with a queue of its own on the test Redis database: the session's worker
    (which polls the default queue) never takes these jobs, and nothing is flushed."""
    engine = create_engine(settings, pool_size=3, max_overflow=0)
    queue = f"test-slices:{uuid.uuid4().hex}"
    redis = ArqRedis(ConnectionPool.from_url(settings.redis_url), default_queue_name=queue)
    yield {
        "engine": engine,
        "sessionmaker": create_sessionmaker(engine),
        "redis": redis,
        "job_try": 1,
        "settings": settings,
    }
    await redis.delete(queue)
    await redis.aclose()
    await engine.dispose()
