"""Issue 13, the load test's findings (a hostile tenant beside a normal one, bench/hostile.py):
refusals must cost the server little, and one tenant's heavy reads must not hold Postgres for
seconds. Each test runs its own app on its own settings (`app_with`) against the shared Postgres
and Redis."""

import asyncio
import time

import asyncpg

from app.db import pg_dsn
from tests.conftest import wait_for

PRODUCTS = "/api/pim/products/"
PREVIEW = "/api/product-segments/preview/"


def _count_script_calls(api) -> list[int]:
    """Counts the app's rate-limit round trips (the token buckets are one Lua script): a list
    that grows by one a call. (Redis's own commandstats would also count the other processes
    sharing the server.)"""
    limiter, calls = api.app.state.rate_limiter, []
    script = limiter._script

    async def counted(*args, **kwargs):
        calls.append(1)
        return await script(*args, **kwargs)

    limiter._script = counted
    return calls


def _definition(conditions: int) -> dict:
    return {
        "match": "any",
        "conditions": [
            {"field": "brand", "op": "eq", "value": f"brand-{n}"} for n in range(conditions)
        ],
    }


async def _brand_schema(api, *tenants) -> None:
    for t in tenants:
        schema = await api.http.put(
            "/api/pim/schema/",
            json={"fields": [{"name": "brand", "type": "string"}]},
            headers=t.editor,
        )
        assert schema.status_code == 200, schema.text


async def test_a_burst_over_the_limit_is_refused_without_redis_round_trips(
    app_with, tenant, settings
):
    """Load test (finding 8's buckets): once a process has seen a key's bucket empty, the rest of a
    burst is refused from its own mirror of the bucket, with the same 429, Retry-After and
    RateLimit-* headers, and no Redis round trip each."""
    api = await app_with(
        rate_limit_key_burst=3,
        rate_limit_key_per_second=0.01,
        rate_limit_tenant_burst=1000,
        rate_limit_tenant_per_second=100,
    )
    calls = _count_script_calls(api)
    answers = [await api.http.get(PRODUCTS, headers=tenant.viewer) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    before = len(calls)
    assert before >= 3  # the passing requests asked Redis
    refused = [await api.http.get(PRODUCTS, headers=tenant.viewer) for _ in range(20)]
    assert len(calls) == before
    assert {r.status_code for r in refused} == {429}
    for response in refused:
        assert "Rate limit" in response.json()["detail"]
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Remaining"] == "0"
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 300
        assert 1 <= int(response.headers["Retry-After"]) <= 100


async def test_redis_stays_the_authority_across_processes(app_with, tenant):
    """Load test: a process's mirror of a bucket only ever refuses what Redis would refuse. Tokens
    another process took are not in the mirror, so the request goes to Redis, which refuses it."""
    limits = dict(
        rate_limit_key_burst=5,
        rate_limit_key_per_second=0.01,
        rate_limit_tenant_burst=1000,
        rate_limit_tenant_per_second=100,
    )
    first, second = await app_with(**limits), await app_with(**limits)
    taken = [await first.http.get(PRODUCTS, headers=tenant.viewer) for _ in range(3)]
    assert [r.headers["RateLimit-Remaining"] for r in taken] == ["4", "3", "2"]
    taken = [await second.http.get(PRODUCTS, headers=tenant.viewer) for _ in range(3)]
    assert [r.status_code for r in taken] == [200, 200, 429]
    # the first process's mirror still shows 2 tokens: Redis, asked, has none
    response = await first.http.get(PRODUCTS, headers=tenant.viewer)
    assert response.status_code == 429, response.text
    assert response.headers["RateLimit-Remaining"] == "0"


async def test_without_redis_each_process_still_enforces_the_limits(app_with, tenant):
    """Load test: the API process, overloaded by a hostile tenant, saw its Redis round trips time
    out, and the limits were lifted for 5 s each time (fail open): the tenant's 200-condition
    previews then went through three times as often as its heavy-read bucket allows. While Redis
    cannot be asked, the process now enforces the buckets itself, heavy reads included."""
    api = await app_with(
        redis_url="redis://127.0.0.1:1/0",  # nothing listens there: every round trip fails
        rate_limit_key_burst=3,
        rate_limit_key_per_second=0.01,
        heavy_reads_burst=1,
        heavy_reads_per_second=0.01,
    )
    answers = [await api.http.get(PRODUCTS, headers=tenant.viewer) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    # another key of the tenant has a bucket of its own; its heavy reads share the tenant's
    await _brand_schema(api, tenant)
    previews = [
        await api.http.post(PREVIEW, json=_definition(1), headers=tenant.editor) for _ in range(2)
    ]
    assert [r.status_code for r in previews] == [200, 429], previews[-1].text


async def test_a_large_definition_takes_more_preview_tokens(
    app_with, tenant, other_tenant, make_tenant
):
    """Load test (finding 8's preview bucket): a 200-condition preview costs Postgres as much as
    dozens of small ones, so it takes one token per PIM_HEAVY_READ_CONDITIONS_PER_TOKEN (20)
    conditions: ten here, the whole bucket."""
    api = await app_with(heavy_reads_burst=10, heavy_reads_per_second=0.01)
    await _brand_schema(api, tenant, other_tenant)
    large = await api.http.post(PREVIEW, json=_definition(200), headers=tenant.viewer)
    assert large.status_code == 200, large.text
    after = await api.http.post(PREVIEW, json=_definition(1), headers=tenant.viewer)
    assert after.status_code == 429, after.text
    assert int(after.headers["Retry-After"]) >= 1
    # small previews take one token each: ten pass
    small = [
        await api.http.post(PREVIEW, json=_definition(1), headers=other_tenant.viewer)
        for _ in range(11)
    ]
    assert [r.status_code for r in small] == [200] * 10 + [429]
    # 21 conditions take two tokens; a preview larger than the bucket takes the whole bucket
    api = await app_with(heavy_reads_burst=3, heavy_reads_per_second=0.01)
    third, fourth = await make_tenant(), await make_tenant()
    await _brand_schema(api, third, fourth)
    answers = [
        await api.http.post(PREVIEW, json=_definition(n), headers=t.viewer)
        for n, t in ((21, third), (1, third), (1, third), (200, fourth))
    ]
    assert [r.status_code for r in answers] == [200, 200, 429, 200]


async def test_a_heavy_read_this_process_can_refuse_is_refused_before_its_body(
    app_with, tenant, settings
):
    """Load test (16 connections flooding previews beside a normal tenant): once this process
    has seen the tenant's heavy-read bucket empty, or every heavy slot of the tenant taken, the
    next preview or search is a 429 before its body is read or parsed and without a Redis round
    trip (not even its key's token): a body that is not JSON at all gets the 429, not the 422 a
    read body would get."""
    api = await app_with(heavy_reads_burst=1, heavy_reads_per_second=0.01)
    await _brand_schema(api, tenant)
    first = await api.http.post(PREVIEW, json=_definition(1), headers=tenant.viewer)
    assert first.status_code == 200, first.text
    garbage = {**tenant.viewer, "content-type": "application/json"}
    calls = _count_script_calls(api)
    refused = [
        await api.http.post(path, content=b"{not json", headers=garbage)
        for path in (PREVIEW, PRODUCTS + "search/")
    ]
    assert calls == []
    for response in refused:
        assert response.status_code == 429, response.text
        assert "heavy reads" in response.json()["detail"]
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["RateLimit-Limit"] == "1"
        assert response.headers["RateLimit-Remaining"] == "0"
    # a plain read of the same tenant is not a heavy one: it passes
    listed = await api.http.get(PRODUCTS, headers=tenant.viewer)
    assert listed.status_code == 200, listed.text


async def test_a_preview_beside_the_tenants_running_heavy_reads_is_refused_before_its_body(
    app_with, tenant, settings
):
    """Load test: while the tenant's heavy reads of this process hold every slot
    (PIM_HEAVY_READS_PER_TENANT), its next preview is a 429 before its body is read."""
    api = await app_with(heavy_reads_per_tenant=1)
    await _brand_schema(api, tenant)
    blocker = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        running = asyncio.create_task(
            api.http.post(PREVIEW, json=_definition(1), headers=tenant.viewer)
        )

        async def slot_taken():
            return api.app.state.heavy_reads._running.get(tenant.id) == 1

        await wait_for(slot_taken, timeout=15, interval=0.05)
        refused = await api.http.post(
            PREVIEW,
            content=b"{not json",
            headers={**tenant.viewer, "content-type": "application/json"},
        )
        await transaction.rollback()
    finally:
        await blocker.close()
    assert refused.status_code == 429, refused.text
    assert "run at once" in refused.json()["detail"]
    assert refused.headers["RateLimit-Limit"] == str(settings.rate_limit_key_burst)
    assert (await asyncio.wait_for(running, 20)).status_code == 200


async def test_a_preview_over_its_time_budget_is_a_503(app_with, tenant, settings):
    """Load test (finding 8's previews holding backends for 15 s): a preview's statement is
    cancelled after PIM_HEAVY_READ_TIMEOUT_MS, a 503 that says so, and the connection goes back to
    the pool with the ordinary statement timeout."""
    api = await app_with(heavy_read_timeout_ms=300, db_pool_size=1, db_max_overflow=0)
    await _brand_schema(api, tenant)
    ok = await api.http.post(PREVIEW, json=_definition(3), headers=tenant.viewer)
    assert ok.status_code == 200, ok.text
    assert ok.json()["count"] == 0 and ok.json()["skus"] == []
    # the preview waits on a lock on products: it would wait until the lock goes
    blocker = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        response = await asyncio.wait_for(
            api.http.post(PREVIEW, json=_definition(3), headers=tenant.viewer), 10
        )
        elapsed = time.monotonic() - started
        await transaction.rollback()
    finally:
        await blocker.close()
    assert response.status_code == 503, response.text
    assert "preview took longer than 300 ms" in response.json()["detail"]
    assert elapsed < 5
    async with api.app.state.engine.connect() as conn:  # the pool's only connection
        timeout = (await conn.exec_driver_sql("SHOW statement_timeout")).scalar()
    ms = settings.statement_timeout_ms
    assert timeout == (f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms")
    created = await api.http.post(
        "/api/pim/products/",
        json={"sku": "after-timeout", "name": "n", "data": {"brand": "brand-1"}},
        headers=tenant.editor,
    )
    assert created.status_code == 201, created.text
    found = await api.http.post(PREVIEW, json=_definition(3), headers=tenant.viewer)
    assert found.json()["count"] == 1 and found.json()["skus"] == ["after-timeout"]


async def test_a_tenant_runs_a_bounded_number_of_requests_at_once(
    app_with, tenant, other_tenant, settings
):
    """Load test (8 connections of one tenant hammering within its rate limit): past
    PIM_TENANT_REQUESTS_PER_PROCESS running requests, a tenant's next request waits its turn,
    while another tenant's request runs at once."""
    api = await app_with(tenant_requests_per_process=2)
    views = "/api/pim/views/"
    blocker = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        # two product lists of the tenant wait on the lock, holding its two turns
        lists = [
            asyncio.create_task(api.http.get(PRODUCTS, headers=tenant.viewer)) for _ in range(2)
        ]

        async def both_blocked():
            return 2 <= await blocker.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'products' AND NOT l.granted "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )

        await wait_for(both_blocked, timeout=15, interval=0.05)
        waiting = asyncio.create_task(api.http.get(views, headers=tenant.viewer))
        other = await asyncio.wait_for(api.http.get(views, headers=other_tenant.viewer), 10)
        assert other.status_code == 200, other.text
        # the other tenant's request has been answered; the tenant's third is still waiting
        assert not waiting.done() and not any(t.done() for t in lists)
        await transaction.rollback()
    finally:
        await blocker.close()
    answers = await asyncio.wait_for(asyncio.gather(*lists, waiting), 20)
    assert [r.status_code for r in answers] == [200, 200, 200]


async def test_tenant_turns_wait_in_order_and_leave_nothing_behind():
    """A tenant's requests past its limit wait; one cancelled while waiting gives up its place;
    when the last leaves, the tenant's entry is gone (the map stays bounded)."""
    from app.ratelimit import TenantTurns

    turns = TenantTurns(limit=1)
    order: list[str] = []
    release = asyncio.Event()

    async def request(name: str, hold: bool = False) -> None:
        async with turns.turn(7):
            order.append(name)
            if hold:
                await release.wait()

    first = asyncio.create_task(request("first", hold=True))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(request("cancelled"))
    second = asyncio.create_task(request("second"))
    await asyncio.sleep(0)
    assert order == ["first"]
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    release.set()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    assert turns._tenants == {}
