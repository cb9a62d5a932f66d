"""The worker and Redis: outages, lost jobs, the heartbeat in /readyz (issue 13, finding 10).

A real `pim worker` process reaches a private Redis through a TCP proxy that the test cuts
(the shared Redis is never touched); the API talks to that Redis directly.
"""

import asyncio
import time

from sqlalchemy import text

from tests.conftest import start_worker, stop_worker, wait_for
from tests.hardening.conftest import tenant_in
from tests.hardening.tcp_proxy import TcpProxy
from tests.hardening.test_faults import (
    FEED,
    IMPORT,
    SEGMENTS,
    create_segment,
    seed,
    segment,
    wait_computed,
)
from tests.imports.conftest import confirm_suggestion


async def imported(http, tenant, job_id: str) -> dict:
    async def finished():
        body = (await http.get(f"{IMPORT}/{job_id}/", headers=tenant.viewer)).json()
        return body if body["status"] in ("done", "failed") else None

    return await wait_for(finished, timeout=60)


async def worker_check(http) -> dict:
    r = await http.get("/readyz")
    return r.json()["checks"].get("worker", {})


async def test_worker_survives_a_redis_outage_and_reports_its_heartbeat(app_with, redis_up):
    """Finding 10: a 5-second Redis outage ended the worker process for good while the API kept
    answering 202 "queued" and /readyz said ready. The worker now reconnects and keeps working,
    and /readyz has a `worker` entry fed by the workers' heartbeats."""
    api = await app_with(redis_url=redis_up.url, worker_heartbeat_timeout_seconds=3)
    http, tenant = api.http, await tenant_in(api.app, "outage")
    await seed(http, tenant, 30)
    before = await create_segment(http, tenant)
    proxy = TcpProxy(redis_up.port)
    worker = start_worker(
        {"PIM_REDIS_URL": proxy.url(), "PIM_WORKER_HEARTBEAT_TIMEOUT_SECONDS": "3"}
    )
    try:
        assert (
            await http.post(f"{SEGMENTS}{before}/compute/", headers=tenant.editor)
        ).status_code == 200
        assert (await wait_computed(http, tenant, before))[
            "computed_count"
        ] == 20  # the worker is connected

        proxy.cut()
        outage_ends = time.monotonic() + 5
        # the API still queues (its Redis is fine) while the worker cannot reach Redis
        during = await create_segment(http, tenant)
        assert (
            await http.post(f"{SEGMENTS}{during}/compute/", headers=tenant.editor)
        ).status_code == 200
        seen = []
        while (
            time.monotonic() < outage_ends
        ):  # the outage lasts 5 s: this waits out its length, it syncs nothing
            assert worker.poll() is None, "the worker process ended during the Redis outage"
            r = await http.get("/readyz")
            seen.append(
                (
                    r.status_code,
                    r.json()["status"],
                    r.json()["checks"].get("worker", {}).get("error"),
                )
            )
            await asyncio.sleep(0.2)
        proxy.restore()
        # the stale heartbeat showed while the worker could not reach Redis; the API itself served
        assert (200, "degraded", "no worker heartbeat in the last 3 s") in seen, seen

        assert (await wait_computed(http, tenant, during, timeout=60))["computed_count"] == 20
        after = await create_segment(http, tenant, {"field": "stock", "op": "lt", "value": 5})
        assert (
            await http.post(f"{SEGMENTS}{after}/compute/", headers=tenant.editor)
        ).status_code == 200
        assert (await wait_computed(http, tenant, after, timeout=60))["computed_count"] == 5
        job_id = await confirm_suggestion(http, tenant.editor, FEED)
        done = await imported(http, tenant, job_id)
        assert done["status"] == "done" and done["created"] == 2, done
        assert worker.poll() is None

        async def heartbeat_fresh():
            r = await http.get("/readyz")
            return r if r.json()["checks"]["worker"]["status"] == "up" else None

        ready = await wait_for(heartbeat_fresh, timeout=15)
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        check = ready.json()["checks"]["worker"]
        assert (
            check["workers"] == 1 and 0 <= check["heartbeat_age_s"] < 3 and check["error"] is None
        )
    finally:
        stop_worker(worker)
        proxy.close()

    # a worker that stopped cleanly takes its heartbeat with it
    check = await worker_check(http)
    assert check["status"] == "down" and check["workers"] == 0


async def test_segment_whose_job_redis_lost_is_computed(app_with, redis_up, settings):
    """Finding 10: a segment whose job Redis lost stayed `queued` forever (a new compute request
    only joins a live job). A worker re-queues it at start, and periodically while it runs."""
    api = await app_with(redis_url=redis_up.url)
    http, tenant = api.http, await tenant_in(api.app, "lostjob")
    await seed(http, tenant, 30)
    redis = api.app.state.arq

    # lost before any worker ran: found at worker start
    at_start = await create_segment(http, tenant)
    assert (
        await http.post(f"{SEGMENTS}{at_start}/compute/", headers=tenant.editor)
    ).status_code == 200
    await redis.flushdb()
    assert (await segment(http, tenant, at_start))[
        "status"
    ] == "queued"  # still queued, but no job anywhere

    proxy = TcpProxy(redis_up.port)
    worker = start_worker({"PIM_REDIS_URL": proxy.url(), "PIM_WORKER_MAINTENANCE_SECONDS": "1"})
    try:
        assert (await wait_computed(http, tenant, at_start, timeout=60))["computed_count"] == 20

        # lost while the worker runs (queued during an outage between worker and Redis, then Redis
        # lost it): found by a maintenance round once the segment has been queued a while
        proxy.cut()
        later = await create_segment(http, tenant)
        assert (
            await http.post(f"{SEGMENTS}{later}/compute/", headers=tenant.editor)
        ).status_code == 200
        await redis.flushdb()
        proxy.restore()
        async with api.app.state.sessionmaker() as session, session.begin():
            await session.execute(
                text("UPDATE segments SET updated_at = now() - interval '1 minute' WHERE id = :id"),
                {"id": later},
            )
        assert (await wait_computed(http, tenant, later, timeout=60))["computed_count"] == 20
    finally:
        stop_worker(worker)
        proxy.close()
