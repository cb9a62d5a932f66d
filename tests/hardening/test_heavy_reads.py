"""Every route that evaluates a predicate the client supplied is a heavy read (app/deps.py): the
segment preview, the product and facet searches (the same 200-condition definitions), and lists
with more than PIM_HEAVY_READ_CONDITIONS_PER_TOKEN query-string filters. They share the tenant's
heavy-read bucket, weighed by their conditions, and the time budget PIM_HEAVY_READ_TIMEOUT_MS."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import asyncpg
import pytest
from fastapi import FastAPI

from app.db import pg_dsn
from app.deps import Reader
from app.products.schemas import FacetSearchIn
from app.routing import api_router, check_routes_guarded

PRODUCTS = "/api/pim/products/"
PRODUCT_SEARCH = "/api/pim/products/search/"
FACET_SEARCH = "/api/pim/facets/search/"
FACETS = "/api/pim/facets/"
PREVIEW = "/api/product-segments/preview/"


def _where(conditions: int) -> dict:
    return {
        "match": "any",
        "conditions": [
            {"field": "brand", "op": "eq", "value": f"brand-{n}"} for n in range(conditions)
        ],
    }


def _filters(conditions: int) -> str:
    """A list's query string with this many data-field filters."""
    return urlencode([("brand__ne", f"brand-{n}") for n in range(conditions)])


async def _brand_schema(api, *tenants) -> None:
    for t in tenants:
        schema = await api.http.put(
            "/api/pim/schema/",
            json={"fields": [{"name": "brand", "type": "string"}]},
            headers=t.editor,
        )
        assert schema.status_code == 200, schema.text


@asynccontextmanager
async def _products_locked(settings) -> AsyncIterator[None]:
    """Every read of products waits until the block ends (it would wait its whole statement
    timeout otherwise)."""
    blocker = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            await transaction.rollback()
    finally:
        await blocker.close()


@pytest.mark.parametrize(
    ("path", "what"),
    [(PRODUCT_SEARCH, "search"), (FACET_SEARCH, "search"), (PREVIEW, "preview")],
)
async def test_a_search_over_its_time_budget_is_a_quick_503(app_with, tenant, settings, path, what):
    """A search takes the same definitions as a preview: its statement is cancelled after
    PIM_HEAVY_READ_TIMEOUT_MS, a 503 that says so (not a backend held for the 15 s statement
    timeout), and the connection goes back to the pool with the ordinary statement timeout."""
    api = await app_with(heavy_read_timeout_ms=300, db_pool_size=1, db_max_overflow=0)
    await _brand_schema(api, tenant)
    body = _where(3) if path == PREVIEW else {"where": _where(3)}
    ok = await api.http.post(path, json=body, headers=tenant.viewer)
    assert ok.status_code == 200, ok.text
    async with _products_locked(settings):
        started = time.monotonic()
        response = await asyncio.wait_for(api.http.post(path, json=body, headers=tenant.viewer), 10)
        elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.json()["detail"] == (
        f"The {what} took longer than 300 ms and was cancelled: narrow it (fewer or simpler "
        "conditions), or retry later"
    )
    assert elapsed < 5
    ms = settings.statement_timeout_ms
    async with api.app.state.read_pool.acquire() as conn:  # the pool's only connection
        assert await conn.fetchval("SHOW statement_timeout") == (
            f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
        )
    created = await api.http.post(
        PRODUCTS,
        json={"sku": "after-timeout", "name": "n", "data": {"brand": "brand-1"}},
        headers=tenant.editor,
    )
    assert created.status_code == 201, created.text
    after = await api.http.post(path, json=body, headers=tenant.viewer)
    assert after.status_code == 200, after.text


async def test_a_search_with_many_conditions_takes_more_tokens(
    app_with, tenant, other_tenant, make_tenant
):
    """A 200-condition search costs Postgres as much as a 200-condition preview: one token per
    20 conditions from the same heavy-read bucket, ten here, the whole bucket."""
    api = await app_with(heavy_reads_burst=10, heavy_reads_per_second=0.01)
    third = await make_tenant()
    await _brand_schema(api, tenant, other_tenant, third)
    large = await api.http.post(PRODUCT_SEARCH, json={"where": _where(200)}, headers=tenant.viewer)
    assert large.status_code == 200, large.text
    after = [
        await api.http.post(path, json=body, headers=tenant.viewer)
        for path, body in (
            (PRODUCT_SEARCH, {"where": _where(1)}),
            (FACET_SEARCH, {"where": _where(1)}),
            (PREVIEW, _where(1)),
        )
    ]
    assert [r.status_code for r in after] == [429] * 3, [r.text for r in after]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in after)
    # small searches take one token each: ten pass, products and facets alike
    small = [
        await api.http.post(path, json={"where": _where(1)}, headers=other_tenant.viewer)
        for path in [PRODUCT_SEARCH, FACET_SEARCH] * 5 + [PRODUCT_SEARCH]
    ]
    assert [r.status_code for r in small] == [200] * 10 + [429]
    # 100 conditions take five tokens: two such facet searches empty the bucket
    answers = [
        await api.http.post(FACET_SEARCH, json={"where": _where(100)}, headers=third.viewer)
        for _ in range(3)
    ]
    assert [r.status_code for r in answers] == [200, 200, 429]


async def test_a_list_with_many_filters_is_a_heavy_read(app_with, tenant, other_tenant, settings):
    """Query-string filters are conditions too (a 64 KiB request line holds hundreds): up to
    PIM_HEAVY_READ_CONDITIONS_PER_TOKEN (20) a list is a plain read; more take the heavy-read
    bucket's tokens and its time budget."""
    api = await app_with(
        heavy_reads_burst=5, heavy_reads_per_second=0.01, heavy_read_timeout_ms=300
    )
    await _brand_schema(api, tenant, other_tenant)
    plain = [
        await api.http.get(f"{path}?{_filters(20)}", headers=tenant.viewer)
        for path in [PRODUCTS, FACETS] * 4
    ]
    assert [r.status_code for r in plain] == [200] * 8, plain[-1].text
    heavy = [
        await api.http.get(f"{path}?{_filters(60)}", headers=tenant.viewer)
        for path in (PRODUCTS, FACETS)
    ]
    assert [r.status_code for r in heavy] == [200, 429], heavy[-1].text
    # a plain list still passes with the bucket empty
    assert (await api.http.get(f"{PRODUCTS}?{_filters(3)}", headers=tenant.viewer)).status_code == (
        200
    )
    async with _products_locked(settings):
        started = time.monotonic()
        response = await asyncio.wait_for(
            api.http.get(f"{PRODUCTS}?{_filters(21)}", headers=other_tenant.viewer), 10
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert "filtered read took longer than 300 ms" in response.json()["detail"]
    assert elapsed < 5


async def test_a_heavy_list_gives_its_slot_back(app_with, tenant, other_tenant):
    """The heavy-read slot a filtered list takes is released when its answer is built, whether it
    succeeded or failed: with one slot per tenant, heavy lists one after the other all run."""
    api = await app_with(heavy_reads_per_tenant=1, heavy_reads_burst=100)
    await _brand_schema(api, tenant, other_tenant)
    statuses = []
    for path in [PRODUCTS, FACETS] * 3:
        statuses.append(
            (await api.http.get(f"{path}?{_filters(60)}", headers=tenant.viewer)).status_code
        )
        # a heavy list that fails (a filter on no field: 400) gives its slot back too
        bad = await api.http.get(
            f"{path}?{_filters(60)}&updated_at__gte=yesterday", headers=tenant.viewer
        )
        statuses.append(bad.status_code)
    assert statuses == [200, 400] * 6


def test_a_route_evaluating_a_client_predicate_outside_the_budget_does_not_start():
    """The budget is not a habit each route must remember: a viewer route whose body carries a
    definition, reading through a plain Reader, is refused at startup."""
    router = api_router(prefix="/api/experiment", tags=["experiment"])

    @router.post("/search/")
    async def forgetful_search(body: FacetSearchIn, reader: Reader) -> None:
        return None

    app = FastAPI()
    app.include_router(router)
    with pytest.raises(RuntimeError, match="evaluates a predicate the client supplied"):
        check_routes_guarded(app)
