"""Issue 13, resources a client can exhaust at the HTTP edge: rate limits (finding 8), wrong-key
lookups, heavy previews, and a starved database pool (finding 5). Each test runs its own app on
its own settings (`app_with`) against the shared Postgres and Redis."""

import asyncio
import secrets
import time

import asyncpg
import httpx
from sqlalchemy import text

from app.db import pg_dsn
from tests.conftest import wait_for

PRODUCTS = "/api/pim/products/"
PREVIEW = "/api/product-segments/preview/"


async def _cache_listening(api) -> None:
    async def active():
        return api.app.state.principal_cache.active

    await wait_for(active, timeout=10, interval=0.02)


async def test_token_buckets_per_key_and_per_tenant(app_with, tenant):
    """Finding 8: a burst above an API key's limit is a 429 with Retry-After; the tenant's bucket is
    shared by its keys; the RateLimit-* headers count down on every answer."""
    api = await app_with(
        rate_limit_key_burst=5,
        rate_limit_key_per_second=0.01,
        rate_limit_tenant_burst=8,
        rate_limit_tenant_per_second=0.01,
    )
    answers = [await api.http.get(PRODUCTS, headers=tenant.viewer) for _ in range(7)]
    assert [r.status_code for r in answers] == [200] * 5 + [429] * 2, [r.text for r in answers]
    assert [r.headers["RateLimit-Remaining"] for r in answers] == [
        "4",
        "3",
        "2",
        "1",
        "0",
        "0",
        "0",
    ]
    assert {r.headers["RateLimit-Limit"] for r in answers} == {"5"}
    assert all(0 < int(r.headers["RateLimit-Reset"]) <= 500 for r in answers)
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 100
    assert "Rate limit" in answers[-1].json()["detail"]

    # another key of the tenant has a bucket of its own, but the tenant's holds 8 - 5 = 3 more
    answers = [await api.http.get(PRODUCTS, headers=tenant.editor) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [(r.headers["RateLimit-Limit"], r.headers["RateLimit-Remaining"]) for r in answers] == [
        ("8", "2"),
        ("8", "1"),
        ("8", "0"),
        ("8", "0"),
    ]


async def test_rate_limit_headers_on_every_answer(app_with, tenant):
    """Finding 8: RateLimit-Limit / -Remaining / -Reset on successes and on errors alike, the 401 of
    wrong credentials included (the client address's bucket)."""
    api = await app_with()
    for method, url, headers in (
        ("GET", PRODUCTS, tenant.viewer),
        ("GET", f"{PRODUCTS}987654321/", tenant.viewer),  # 404
        ("POST", "/api/pim/views/", tenant.viewer),  # 403
        ("POST", "/api/pim/views/", tenant.editor),  # 422
        ("GET", PRODUCTS, {"X-API-Key": "pim_00000000_wrong"}),
    ):  # 401
        response = await api.http.request(method, url, headers=headers, json={})
        assert response.status_code in (200, 401, 403, 404, 422), response.text
        assert {
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
        } <= response.headers.keys(), (url, response)
    spec = (await api.http.get("/openapi.json")).json()
    assert "RateLimit-Remaining" in spec["paths"][PRODUCTS]["get"]["responses"]["429"]["headers"]


async def test_a_wrong_key_sent_again_costs_no_lookup(app_with, tenant):
    """Finding 8: wrong keys are remembered: once refused, the same key is refused from memory (here
    with the lookup pool closed, which would otherwise answer 503)."""
    api = await app_with()
    wrong = "pim_0badc0de_" + "x" * 43
    assert (await api.http.get(PRODUCTS, headers={"X-API-Key": wrong})).status_code == 401
    await api.app.state.read_pool.close()
    for _ in range(50):
        response = await api.http.get(PRODUCTS, headers={"X-API-Key": wrong})
        assert response.status_code == 401, response.text


async def test_wrong_key_guesses_are_limited_per_client_address(app_with, tenant):
    """Finding 8: each failed authentication takes a token from the client address's bucket; once it
    is empty, guesses are a 429 before any lookup, while a key already known keeps working."""
    api = await app_with(auth_failures_per_ip_burst=5, auth_failures_per_ip_per_second=0.01)
    await _cache_listening(api)
    # a client address of its own (other tests' clients are 127.0.0.1)
    address = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"
    transport = httpx.ASGITransport(app=api.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://pim.test") as http:
        assert (await http.get(PRODUCTS, headers=tenant.viewer)).status_code == 200
        statuses = []
        for n in range(20):
            response = await http.get(PRODUCTS, headers={"X-API-Key": f"pim_{n:08x}_" + "g" * 43})
            statuses.append(response.status_code)
        assert statuses == [401] * 5 + [429] * 15
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["RateLimit-Remaining"] == "0"
        assert (
            await http.get(PRODUCTS, headers=tenant.viewer)
        ).status_code == 200  # known to the process
        # a key this process has not seen needs a lookup: not from this address for now
        assert (await http.get(PRODUCTS, headers=tenant.editor)).status_code == 429
    assert (
        await api.http.get(PRODUCTS, headers=tenant.editor)
    ).status_code == 200  # another address


def _heavy_definition() -> dict:
    return {
        "match": "any",
        "conditions": [{"field": "brand", "op": "eq", "value": f"brand-{n}"} for n in range(200)],
    }


async def test_concurrent_previews_of_a_tenant_are_capped(app_with, tenant, settings):
    """Finding 8: 16 concurrent 200-condition previews of a viewer do not hold 16 database backends:
    past the tenant's cap (here 2) they are a 429 at once."""
    api = await app_with(heavy_reads_per_tenant=2)
    schema = await api.http.put(
        "/api/pim/schema/",
        json={"fields": [{"name": "brand", "type": "string"}]},
        headers=tenant.editor,
    )
    assert schema.status_code == 200, schema.text
    assert (
        await api.http.post(PREVIEW, json=_heavy_definition(), headers=tenant.viewer)
    ).status_code == 200
    # the previews wait on a lock on products, so that they are all running at the same time
    blocker = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        previews = [
            asyncio.create_task(
                api.http.post(PREVIEW, json=_heavy_definition(), headers=tenant.viewer)
            )
            for _ in range(16)
        ]

        async def refused():
            done = [t for t in previews if t.done()]
            return len(done) >= 14 and done

        done = await wait_for(refused, timeout=15, interval=0.05)
        assert [t.result().status_code for t in done] == [429] * 14
        assert done[0].result().headers["Retry-After"] == "1"
        await transaction.rollback()
    finally:
        await blocker.close()
    answers = await asyncio.gather(*previews)
    assert sorted(r.status_code for r in answers) == [200] * 2 + [429] * 14
    # and the slots are given back
    assert (
        await api.http.post(PREVIEW, json=_heavy_definition(), headers=tenant.viewer)
    ).status_code == 200


async def test_an_exhausted_pool_is_a_quick_503_with_retry_after(app_with, tenant):
    """Finding 5 (pool part): when every database connection stays busy, a request answers 503 with
    Retry-After after PIM_DB_POOL_TIMEOUT_SECONDS, not a 500 after 30 s; for sessions (writes) and
    for the lean reads alike."""
    api = await app_with(db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=1)
    await _cache_listening(api)
    assert (await api.http.get("/api/pim/views/", headers=tenant.admin)).status_code == 200
    assert (await api.http.get(PRODUCTS, headers=tenant.admin)).status_code == 200

    async with api.app.state.engine.connect() as held:
        await held.execute(text("SELECT 1"))
        started = time.monotonic()
        response = await api.http.post(
            "/api/pim/views/", json={"name": "v", "attributes": []}, headers=tenant.admin
        )
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        assert time.monotonic() - started < 5

    async with api.app.state.read_pool.acquire():
        started = time.monotonic()
        response = await api.http.get(PRODUCTS, headers=tenant.admin)
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        assert time.monotonic() - started < 5
    assert (await api.http.get(PRODUCTS, headers=tenant.admin)).status_code == 200


async def test_previews_of_a_tenant_take_from_a_bucket_of_their_own(app_with, tenant, other_tenant):
    """Finding 8: one preview costs as much as hundreds of plain requests: a tenant's previews take
    tokens from a heavy-read bucket of its own, which another tenant's previews do not touch."""
    api = await app_with(heavy_reads_burst=2, heavy_reads_per_second=0.01)
    for t in (tenant, other_tenant):
        schema = await api.http.put(
            "/api/pim/schema/",
            json={"fields": [{"name": "brand", "type": "string"}]},
            headers=t.editor,
        )
        assert schema.status_code == 200, schema.text
    # one condition: one token each (a larger definition takes more, test_load_defences.py)
    small = {"match": "all", "conditions": [{"field": "brand", "op": "eq", "value": "b"}]}
    answers = [await api.http.post(PREVIEW, json=small, headers=tenant.viewer) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert (
        await api.http.get(PRODUCTS, headers=tenant.viewer)
    ).status_code == 200  # plain reads go on
    assert (
        await api.http.post(PREVIEW, json=small, headers=other_tenant.viewer)
    ).status_code == 200
