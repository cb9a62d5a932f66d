"""The import task called in process: time slices re-queue themselves, a held lease makes a run step
aside, and startup recovery queues jobs left in `importing` and expires unconfirmed uploads."""

import uuid

import pytest
from arq.connections import ArqRedis
from sqlalchemy import text

from app.db import create_engine, create_sessionmaker
from app.imports import tasks
from app.jobs.locks import Lock, LockKey, lease
from tests.imports.conftest import IMPORT, confirm, upload

ROWS = 12_345


def feed() -> bytes:
    body = "".join(f"S-{i};Teil {i};{'x' if i % 1000 == 7 else i % 90},5\n" for i in range(ROWS))
    return ("Artikelnummer;Bezeichnung;Preis\n" + body).encode()


@pytest.fixture
async def worker_ctx(settings):
    engine = create_engine(settings, pool_size=3, max_overflow=0)
    redis = ArqRedis.from_url(settings.redis_url.rsplit("/", 1)[0] + "/12")
    await redis.flushdb()
    yield {
        "engine": engine,
        "sessionmaker": create_sessionmaker(engine),
        "redis": redis,
        "job_try": 1,
        "settings": settings,
    }
    await redis.flushdb()
    await redis.aclose()
    await engine.dispose()


async def queued_ids(redis) -> list[str]:
    return [j.job_id for j in await redis.queued_jobs()]


async def test_slices_requeue_and_resume_exactly(
    app_with, make_tenant, settings, worker_ctx, monkeypatch
):
    redis_url = (
        settings.redis_url.rsplit("/", 1)[0] + "/12"
    )  # nothing consumes this queue: the test runs the task
    client = await app_with(redis_url=redis_url)
    tenant = await make_tenant()
    job = (await upload(client, tenant.editor, feed())).json()
    assert (await confirm(client, tenant.editor, job)).status_code == 202
    job_id = job["job_id"]
    assert await queued_ids(worker_ctx["redis"]) == [f"import:{job_id}"]

    monkeypatch.setattr(tasks, "SLICE_SECONDS", 0)  # every slice ends after one batch
    monkeypatch.setattr(tasks, "BATCH_ROWS", 1000)
    runs = 0
    while True:
        result = await tasks.import_csv(worker_ctx, job_id)
        runs += 1
        if result["status"] == "done":
            break
        assert result["status"] == "continue"
        progress = (await client.get(f"{IMPORT}/{job_id}/", headers=tenant.viewer)).json()
        assert progress["processed_rows"] == 1000 * runs and progress["status"] == "importing"
        assert len(await queued_ids(worker_ctx["redis"])) == 1 + runs  # the continuation was queued
    assert runs == 13
    done = (await client.get(f"{IMPORT}/{job_id}/", headers=tenant.viewer)).json()
    bad = len([i for i in range(ROWS) if i % 1000 == 7])
    assert (done["processed_rows"], done["created"], done["updated"], done["failed"]) == (
        ROWS,
        ROWS - bad,
        0,
        bad,
    )
    # a late duplicate run does nothing
    assert (await tasks.import_csv(worker_ctx, job_id))["status"] == "skipped"


async def test_lease_and_recovery(app_with, make_tenant, settings, worker_ctx):
    redis_url = settings.redis_url.rsplit("/", 1)[0] + "/12"
    client = await app_with(redis_url=redis_url)
    tenant = await make_tenant()
    job = (await upload(client, tenant.editor, feed())).json()
    assert (await confirm(client, tenant.editor, job)).status_code == 202
    job_id = job["job_id"]
    stale = (await upload(client, tenant.editor, b"sku\nA\n")).json()

    job_lease = LockKey(Lock.IMPORT, tenant.id, job_id)
    async with lease(worker_ctx["engine"], job_lease, wait_s=0):  # another live worker holds it
        tasks.LOCK_WAIT_SECONDS, wait = 0.3, tasks.LOCK_WAIT_SECONDS
        try:
            assert (await tasks.import_csv(worker_ctx, job_id))["status"] == "busy"
        finally:
            tasks.LOCK_WAIT_SECONDS = wait

    async with worker_ctx["sessionmaker"]() as session, session.begin():
        await session.execute(
            text("UPDATE import_jobs SET created_at = now() - interval '8 days' WHERE id = :id"),
            {"id": uuid.UUID(stale["job_id"])},
        )
    await worker_ctx["redis"].flushdb()
    assert await tasks.recover_imports(worker_ctx) >= 1
    assert any(
        q.startswith(f"import:{job_id}:recover:") for q in await queued_ids(worker_ctx["redis"])
    )
    expired = (await client.get(f"{IMPORT}/{stale['job_id']}/", headers=tenant.viewer)).json()
    assert expired["status"] == "failed" and "not confirmed" in expired["error"]
    assert (await tasks.import_csv(worker_ctx, job_id))["status"] == "done"
    assert (await tasks.import_csv(worker_ctx, "not-a-uuid"))["status"] == "invalid"


async def test_raw_statements_run_inside_the_batch_transaction(worker_ctx):
    # SQLAlchemy opens the transaction with its first statement; raw asyncpg statements before
    # that would commit one by one and a batch would not be all or nothing
    async with worker_ctx["sessionmaker"]() as session, session.begin():
        conn = await tasks.driver_connection(session)
        assert conn.is_in_transaction()
