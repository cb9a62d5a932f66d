"""The jobs module on the real services: lock keys, leases, jobs sent only after the commit."""

import asyncio
import secrets
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from sqlalchemy import text

from app.auth.service import Role, create_api_key
from app.catalog.service import lock_schema
from app.db import after_commit, driver_connection, session_scope
from app.errors import Unavailable
from app.imports import service as imports
from app.imports.schemas import ConfirmIn
from app.jobs.enqueue import Job, enqueue_after_commit
from app.jobs.locks import LeaseBusy, Lock, LockKey, any_held, lease, xact_lock
from app.jobs.transient import is_transient
from app.models import Tenant
from app.segments import service as segments
from tests.conftest import TenantCtx
from tests.imports.conftest import IMPORT, upload

PRODUCTS = "/api/pim/products/"
INT4_MAX = 2**31 - 1


# --- lock keys ------------------------------------------------------------------------------------


async def test_lock_keys_are_distinct_across_namespaces_and_large_tenants(app):
    tenants = [1, 2, INT4_MAX, INT4_MAX + 1, INT4_MAX + 2, 2**40, 2**63 - 1]
    async with app.state.sessionmaker() as session:
        conn = await driver_connection(session)
        keys = {}
        for lock in Lock:
            for tenant_id in tenants:
                for object_id in (None, "1", "2"):
                    sql = f"SELECT {lock.key('$1', '$2' if object_id else None)}"
                    args = (tenant_id, object_id) if object_id else (tenant_id,)
                    keys[lock, tenant_id, object_id] = await conn.fetchval(sql, *args)
    assert all(-(2**63) <= k < 2**63 for k in keys.values())
    assert len(set(keys.values())) == len(keys)


async def test_tenants_2_31_apart_do_not_share_a_lock(app, tenant):
    """The old keys took the tenant id modulo 2^31-1: tenant t and t + 2^31-1 waited for each other."""
    other = tenant.id + INT4_MAX
    sessionmaker = app.state.sessionmaker
    async with session_scope(sessionmaker, tenant.id) as holding:
        await lock_schema(holding, exclusive=True)
        async with session_scope(sessionmaker, other) as session:
            await (await driver_connection(session)).execute("SET LOCAL lock_timeout = '2s'")
            assert await lock_schema(session, exclusive=True) is None  # not held by `holding`


async def test_the_facet_trigger_and_the_service_share_the_counters_lock(app, tenant):
    """The trigger (SQL, migration h2_jobs_1) and the bulk upsert (Python) must take one key."""
    sessionmaker = app.state.sessionmaker
    async with session_scope(sessionmaker, tenant.id) as holding:
        await xact_lock(await driver_connection(holding), Lock.FACET_COUNTS, tenant.id)
        async with session_scope(sessionmaker, tenant.id) as session:
            conn = await driver_connection(session)
            await conn.execute("SET LOCAL lock_timeout = '300ms'")
            with pytest.raises(asyncpg.LockNotAvailableError):
                await conn.execute(
                    "INSERT INTO products (tenant_id, sku, name) VALUES ($1, 'LOCKED-1', 'x')",
                    tenant.id,
                )


async def _tenant_with_id(app, tenant_id: int) -> TenantCtx:
    slug = f"big-{secrets.token_hex(6)}"
    async with app.state.sessionmaker() as session, session.begin():
        session.add(Tenant(id=tenant_id, slug=slug))
        await session.flush()
        ctx = TenantCtx(id=tenant_id, slug=slug)
        for role in Role:
            _row, key = await create_api_key(session, tenant_id, name=role.value, role=role)
            ctx.keys[role.value] = key
    return ctx


async def test_a_tenant_id_above_2_31_writes_products(app, client):
    """The facet counters' lock cast the tenant id to int: such a tenant could not write a product."""
    big = await _tenant_with_id(app, 2**31 + secrets.randbelow(2**40))
    schema = {"fields": [{"name": "brand", "type": "string"}]}
    assert (await client.put("/api/pim/schema/", json=schema, headers=big.admin)).status_code == 200
    one = {"sku": "BIG-1", "name": "One", "data": {"brand": "Acme"}}
    r = await client.post(PRODUCTS, json=one, headers=big.editor)
    assert r.status_code == 201, r.text
    # a bulk write that updates takes the counters' lock exclusively
    items = [{"sku": "BIG-1", "brand": "Zenith"}, {"sku": "BIG-2", "name": "Two"}]
    r = await client.post(f"{PRODUCTS}bulk/", json={"products": items}, headers=big.editor)
    assert r.status_code == 200, r.text
    r = await client.get("/api/pim/facets/", headers=big.viewer)
    assert r.status_code == 200, r.text
    assert r.json()["facets"]["brand"] == [{"value": "Zenith", "count": 1}], r.json()


# --- leases ---------------------------------------------------------------------------------------


async def test_lease_gives_up_after_its_wait_and_waits_forever_without_one(app, tenant):
    engine = app.state.engine
    key = LockKey(Lock.SEGMENT, tenant.id, "lease-test")
    async with engine.connect() as connection:
        probe = (await connection.get_raw_connection()).driver_connection
        async with lease(engine, key, wait_s=0):
            assert await any_held(probe, [key])
            started = time.monotonic()
            with pytest.raises(LeaseBusy):
                async with lease(engine, key, wait_s=0.5):
                    pass
            assert time.monotonic() - started >= 0.5
            entered = asyncio.Event()

            async def patient() -> None:
                async with lease(engine, key, wait_s=None):
                    entered.set()

            waiter = asyncio.create_task(patient())
            # it outlasts another contender's whole wait
            with pytest.raises(LeaseBusy):
                async with lease(engine, key, wait_s=0.5):
                    pass
            assert not waiter.done() and not entered.is_set()
        await asyncio.wait_for(waiter, 10)  # released: the waiter gets it
        assert entered.is_set() and not await any_held(probe, [key])


async def test_a_lease_is_released_when_its_block_fails(app, tenant):
    engine = app.state.engine
    key = LockKey(Lock.IMPORT, tenant.id, str(uuid.uuid4()))
    turn = LockKey(Lock.IMPORT_TURN, tenant.id)
    with pytest.raises(RuntimeError):
        async with lease(engine, key, wait_s=0) as held:
            assert await held.try_lock(turn)
            raise RuntimeError("the run failed")
    async with engine.connect() as connection:
        probe = (await connection.get_raw_connection()).driver_connection
        assert not await any_held(probe, [key, turn])


# --- transient errors -----------------------------------------------------------------------------


async def test_transient_errors_are_found_through_wrappers(app):
    async with app.state.sessionmaker() as session:
        conn = await driver_connection(session)
        with pytest.raises(Exception) as deadlock:
            await conn.execute(
                "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'deadlock_detected'; END $$"
            )
        with pytest.raises(Exception) as bad_sql:
            await session.execute(text("SELECT no_such_column FROM tenants"))
    assert is_transient(deadlock.value)
    try:
        raise RuntimeError("while writing") from deadlock.value
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(bad_sql.value)
    assert is_transient(Unavailable("ClickHouse is unavailable"))
    assert not is_transient(ValueError("a bad row"))


# --- after the commit -----------------------------------------------------------------------------


@pytest.fixture
async def queue(settings):
    """A Redis queue of its own on the test Redis database: no worker takes these jobs."""
    name = f"test-jobs:{uuid.uuid4().hex}"
    redis = ArqRedis(ConnectionPool.from_url(settings.redis_url), default_queue_name=name)
    yield redis
    await redis.delete(name)
    await redis.aclose()


async def queued(redis: ArqRedis) -> list[str]:
    return [j.job_id for j in await redis.queued_jobs()]


async def test_a_job_is_sent_only_after_the_commit(app, tenant, queue):
    job = Job("compute_segment", (tenant.id, 1), f"test:{uuid.uuid4().hex}")
    seen_at_send: list[bool] = []
    async with session_scope(app.state.sessionmaker, tenant.id) as session:
        conn = await driver_connection(session)
        await conn.execute(
            "INSERT INTO views (tenant_id, name) VALUES ($1, $2)",
            tenant.id,
            job.job_id,
        )
        await enqueue_after_commit(session, queue, job, unavailable="down")

        async def row_visible() -> None:  # runs where the job is sent: the row must be visible
            async with app.state.sessionmaker() as other:
                found = await (await driver_connection(other)).fetchval(
                    "SELECT count(*) FROM views WHERE name = $1", job.job_id
                )
            seen_at_send.append(found == 1)

        after_commit(session, row_visible)
        assert await queued(queue) == []  # not before the commit
    assert await queued(queue) == [job.job_id]
    assert seen_at_send == [True]


async def test_a_job_of_a_transaction_that_rolls_back_is_never_sent(app, tenant, queue):
    job = Job("compute_segment", (tenant.id, 1), f"test:{uuid.uuid4().hex}")
    with pytest.raises(RuntimeError):
        async with session_scope(app.state.sessionmaker, tenant.id) as session:
            await enqueue_after_commit(session, queue, job, unavailable="down")
            raise RuntimeError("the request failed after queueing")
    # the same session rolled back, then used again and committed: still nothing
    async with app.state.sessionmaker() as session:
        await session.execute(text("SELECT 1"))
        await enqueue_after_commit(session, queue, job, unavailable="down")
        await session.rollback()
        await session.execute(text("SELECT 1"))
        await session.commit()
    assert await queued(queue) == []


async def test_a_savepoint_neither_sends_nor_drops_the_job(app, tenant, queue):
    job = Job("compute_segment", (tenant.id, 1), f"test:{uuid.uuid4().hex}")
    async with app.state.sessionmaker() as session:
        await session.execute(text("SELECT 1"))
        async with session.begin_nested():
            await enqueue_after_commit(session, queue, job, unavailable="down")
        assert await queued(queue) == []  # RELEASE SAVEPOINT commits nothing
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                raise RuntimeError("a savepoint rolled back")
        await session.commit()
    assert await queued(queue) == [job.job_id]


async def test_redis_down_refuses_before_anything_is_committed(app, tenant):
    down = ArqRedis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        async with app.state.sessionmaker() as session:
            with pytest.raises(Unavailable, match="the queue is down"):
                await enqueue_after_commit(
                    session, down, Job("f", (), "test:down"), unavailable="the queue is down"
                )
    finally:
        await down.aclose()


async def test_a_compute_is_queued_after_its_request_commits(app, client, tenant, queue):
    """The service as a request runs it: nothing reaches Redis before the commit, and a request
    that rolls back leaves nothing behind (a job for a `queued` status that never was)."""
    definition = {"field": "status", "op": "eq", "value": "active"}
    r = await client.post(
        "/api/product-segments/",
        json={"name": "S", "definition": definition},
        headers=tenant.editor,
    )
    assert r.status_code == 201, r.text
    segment_id = r.json()["id"]
    async with app.state.sessionmaker() as session:
        session.info["tenant_id"] = tenant.id
        await segments.request_compute(session, segment_id, arq=queue)
        assert await queued(queue) == []
        await session.rollback()
    assert await queued(queue) == []
    async with app.state.sessionmaker() as session:
        session.info["tenant_id"] = tenant.id
        await segments.request_compute(session, segment_id, arq=queue)
        assert await queued(queue) == []
        await session.commit()
    assert await queued(queue) == [f"segment-compute:{segment_id}"]


async def test_an_import_is_queued_after_its_confirmation_commits(app, client, tenant, queue):
    job = (await upload(client, tenant.editor, b"sku;name\nA-1;One\n")).json()
    body = ConfirmIn.model_validate(
        {"mapping": job["suggested_mapping"], "schema": job["suggested_schema"]}
    )
    async with app.state.sessionmaker() as session:
        session.info["tenant_id"] = tenant.id
        await imports.confirm_import(session, arq=queue, job_id=job["job_id"], body=body)
        assert await queued(queue) == []
        await session.rollback()
    assert await queued(queue) == []
    r = await client.get(f"{IMPORT}/{job['job_id']}/", headers=tenant.viewer)
    assert r.json()["status"] == "mapping"
    async with app.state.sessionmaker() as session:
        session.info["tenant_id"] = tenant.id
        await imports.confirm_import(session, arq=queue, job_id=job["job_id"], body=body)
        await session.commit()
    assert await queued(queue) == [f"import:{job['job_id']}"]


def test_nothing_in_app_sends_a_job_but_the_jobs_module():
    """Requests queue with `enqueue_after_commit`; only app/jobs talks to arq's enqueue."""
    app_dir = Path(__file__).resolve().parents[2] / "app"
    offenders = [
        str(path.relative_to(app_dir.parent))
        for path in app_dir.rglob("*.py")
        if ".enqueue_job(" in path.read_text() and path.parent.name != "jobs"
    ]
    assert offenders == []


async def test_revoking_a_key_takes_effect_at_once(client, tenant):
    """The revocation drops the key from the process's cache after its commit (an after-commit
    action, no longer a commit inside the handler)."""
    created = await client.post(
        "/api/auth/api-keys/", json={"name": "short-lived", "role": "viewer"}, headers=tenant.admin
    )
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["api_key"]}
    assert (await client.get(PRODUCTS, headers=key)).status_code == 200  # cached now
    r = await client.delete(f"/api/auth/api-keys/{created.json()['id']}/", headers=tenant.admin)
    assert r.status_code == 204
    assert (await client.get(PRODUCTS, headers=key)).status_code == 401
