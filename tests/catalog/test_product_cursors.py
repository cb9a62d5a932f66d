"""Keyset cursors on the product list and search, and the `updated_at` window filters (issue 15
item 4, issue 17 pagination) — black-box through the API, plans checked with EXPLAIN."""

import asyncio
import base64
import random
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from sqlalchemy import text

from app.catalog.fields import FieldDef
from app.products.service import Listing, filters_fingerprint, page_query, tenant_where
from app.query.compiling import SqlWhere
from app.query.models import Junction

SCHEMA = "/api/pim/schema/"
PRODUCTS = "/api/pim/products/"
SEARCH = "/api/pim/products/search/"
BULK = "/api/pim/products/bulk/"
FIELDS = [{"name": "brand", "type": "string"}, {"name": "price", "type": "number"}]


async def _setup(client, tenant, products):
    r = await client.put(SCHEMA, json={"fields": FIELDS}, headers=tenant.editor)
    assert r.status_code == 200, r.text
    if products:
        r = await client.post(BULK, json={"products": products}, headers=tenant.editor)
        assert r.status_code == 200 and r.json()["failed"] == 0, r.text


def _product(i: int, rng: random.Random) -> dict:
    item: dict[str, Any] = {
        "sku": f"C{i:05d}",
        "name": f"Item {i}",
        "brand": "even" if i % 2 == 0 else "odd",
    }
    if rng.random() < 0.8:  # some without a price: NULLS LAST must page too
        item["price"] = rng.choice([5, 10, 15, 20])  # many ties: the id tiebreak decides
    return item


async def _brands(client, tenant) -> dict[int, str]:
    """Every product's id and brand, by page numbers."""
    brands: dict[int, str] = {}
    page = 1
    while True:
        r = await client.get(
            PRODUCTS, params={"page": page, "page_size": 200}, headers=tenant.viewer
        )
        body = r.json()
        brands |= {p["id"]: p["data"]["brand"] for p in body["results"]}
        if body["next"] is None:
            return brands
        page += 1


async def _walk(client, tenant, params: dict, between_pages=None) -> list[dict]:
    """Every product the cursor walk returns, in order; `between_pages(n)` writes between pages."""
    seen: list[dict] = []
    r = await client.get(PRODUCTS, params=params, headers=tenant.viewer)
    n = 0
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        seen += body["results"]
        if body["next_cursor"] is None:
            assert body["next"] is None
            return seen
        # `next` is relative (path and query): the first page's is page 2, a cursor page's carries
        # the cursor and the same parameters
        assert body["next"].startswith(PRODUCTS + "?") and "://" not in body["next"]
        query = parse_qs(urlsplit(body["next"]).query)
        if between_pages is not None:
            await between_pages(n)
        if n == 0:
            assert query["page"] == ["2"]
            r = await client.get(
                PRODUCTS, params={**params, "cursor": body["next_cursor"]}, headers=tenant.viewer
            )
        else:
            assert query["cursor"] == [body["next_cursor"]]
            assert {k: v for k, v in query.items() if k != "cursor"} == {
                k: [str(v)] for k, v in params.items()
            }
            r = await client.get(body["next"], headers=tenant.viewer)
        n += 1


async def test_cursor_walk_sees_every_product_once_under_concurrent_writes(client, tenant):
    rng = random.Random(15)
    await _setup(client, tenant, [_product(i, rng) for i in range(400)])
    for walk, params in enumerate(
        (
            {"limit": 23},
            {"limit": 17, "ordering": "sku"},
            {"limit": 19, "ordering": "-price"},
            {"limit": 21, "ordering": "price,-name", "brand": "even"},
            {"limit": 22, "brand": "odd"},  # filtered, by an index: the probe, then the fallback
        )
    ):
        # new SKUs per walk: re-sending an old one would update its price, and a product whose
        # sort key changes may rightly come again
        base = 10_000 * (walk + 1)
        brands = await _brands(client, tenant)
        before = set(brands)
        deleted: set[int] = set()
        created = 0
        stop = asyncio.Event()

        async def writer():
            # writes beside the walk: creates (ids beyond and, by price/sku, anywhere in the
            # order) and deletes of random products (read already or not yet)
            nonlocal created
            wrng = random.Random(walk)
            while not stop.is_set():
                i = base + created
                r = await client.post(
                    BULK,
                    json={"products": [_product(i, wrng), _product(i + 1, wrng)]},
                    headers=tenant.editor,
                )
                assert r.status_code == 200, r.text
                created += 2
                victim = wrng.choice(sorted(before - deleted))
                deleted.add(victim)  # before the await: between_pages must not pick it too
                r = await client.delete(f"{PRODUCTS}{victim}/", headers=tenant.editor)
                assert r.status_code == 204
                await asyncio.sleep(0)

        async def between_pages(n: int):
            # at least one interleaving per page, whatever the scheduler does with the writer
            await client.post(
                BULK,
                json={"products": [_product(base + 5_000 + n, rng)]},
                headers=tenant.editor,
            )
            alive = sorted(before - deleted)
            victim = alive[min(len(alive) - 1, (n + 1) * 23)]  # ahead of a walk in id order
            deleted.add(victim)  # before the await: the writer must not pick it too
            r = await client.delete(f"{PRODUCTS}{victim}/", headers=tenant.editor)
            assert r.status_code == 204

        task = asyncio.create_task(writer())
        try:
            seen = await _walk(client, tenant, params, between_pages)
        finally:
            stop.set()
            await task
        assert created > 0 and deleted
        ids = [p["id"] for p in seen]
        assert len(ids) == len(set(ids)), (params, "a product appeared twice")
        survivors = {i for i in before - deleted if brands[i] == params.get("brand", brands[i])}
        assert all(p["data"]["brand"] == params.get("brand", p["data"]["brand"]) for p in seen)
        missing = survivors - set(ids)
        assert not missing, (params, f"{len(missing)} products that existed throughout skipped")
        # the walk's order is the list's order
        listed = await client.get(
            PRODUCTS, params={**params, "limit": 200, "page": 1}, headers=tenant.viewer
        )
        order = [p["id"] for p in listed.json()["results"] if p["id"] in set(ids)]
        walked = [i for i in ids if i in set(order)]
        assert walked[: len(order)] == order[: len(walked)], params


async def test_cursor_by_updated_at_resumes_a_sync_window(client, tenant):
    """An incremental reader: `ordering=updated_at&updated_at__gte=<last sync>`: products written
    after the window opened are all seen, those updated while walking may come again (newer)."""
    rng = random.Random(7)
    await _setup(client, tenant, [_product(i, rng) for i in range(60)])
    first = await client.get(
        PRODUCTS, params={"ordering": "-updated_at", "limit": 1}, headers=tenant.viewer
    )
    mark = first.json()["results"][0]["updated_at"]
    await client.post(
        BULK, json={"products": [_product(i, rng) for i in range(100, 130)]}, headers=tenant.editor
    )
    params = {"ordering": "updated_at", "updated_at__gt": mark, "limit": 7}
    updated = []

    async def touch(n: int):
        if n < 3:  # an already-read product changes: it comes again, after its new write
            seen_sku = f"C{100 + n:05d}"
            r = await client.post(
                BULK,
                json={"products": [{"sku": seen_sku, "brand": "moved"}]},
                headers=tenant.editor,
            )
            assert r.json()["updated"] == 1
            updated.append(seen_sku)

    seen = await _walk(client, tenant, params, touch)
    skus = [p["sku"] for p in seen]
    assert set(skus) == {f"C{i:05d}" for i in range(100, 130)}
    assert sorted(s for s in set(skus) if skus.count(s) > 1) == sorted(updated)
    times = [p["updated_at"] for p in seen]
    assert times == sorted(times)


async def test_cursor_bound_to_filters_and_ordering(client, tenant, other_tenant):
    rng = random.Random(3)
    await _setup(client, tenant, [_product(i, rng) for i in range(30)])
    page = await client.get(
        PRODUCTS, params={"brand": "even", "ordering": "price", "limit": 5}, headers=tenant.viewer
    )
    cursor = page.json()["next_cursor"]
    assert cursor
    ok = await client.get(
        PRODUCTS,
        params={"ordering": "price", "limit": 5, "brand": "even", "cursor": cursor},
        headers=tenant.viewer,
    )
    assert ok.status_code == 200 and ok.json()["count"] is None and ok.json()["page"] is None
    assert ok.json()["previous"] is None
    for params in (
        {"brand": "odd", "ordering": "price", "cursor": cursor},
        {"ordering": "price", "cursor": cursor},  # the filters left out
        {"brand": "even", "ordering": "-price", "cursor": cursor},
        {"brand": "even", "cursor": cursor},
    ):
        r = await client.get(PRODUCTS, params=params, headers=tenant.viewer)
        assert r.status_code == 400, (params, r.text)
        assert "issued for other filters or another ordering" in r.json()["detail"]
    # the page size may change between pages
    r = await client.get(
        PRODUCTS,
        params={"brand": "even", "ordering": "price", "page_size": 3, "cursor": cursor},
        headers=tenant.viewer,
    )
    assert r.status_code == 200 and len(r.json()["results"]) == 3
    # a search cursor is not a list cursor, and the other way round
    search = await client.post(
        SEARCH,
        json={"where": {"field": "brand", "op": "eq", "value": "even"}, "page_size": 5},
        headers=tenant.viewer,
    )
    search_cursor = search.json()["next_cursor"]
    assert search_cursor
    r = await client.get(PRODUCTS, params={"cursor": search_cursor}, headers=tenant.viewer)
    assert r.status_code == 400
    r = await client.post(SEARCH, json={"cursor": cursor}, headers=tenant.viewer)
    assert r.status_code == 400
    for bad in ("abc", "eyJsIjoicHJvZHVjdHMiLCJvIjoiIiwiZiI6IngiLCJrIjpbIngiXX0", "%%%"):
        r = await client.get(PRODUCTS, params={"cursor": bad}, headers=tenant.viewer)
        assert r.status_code == 400, (bad, r.text)
    # a forged key of the wrong type is a 400, never a 500
    forged = {"l": "products", "o": "", "f": filters_fingerprint("list", []), "k": ["x"]}
    raw = base64.urlsafe_b64encode(orjson.dumps(forged)).rstrip(b"=").decode()
    r = await client.get(PRODUCTS, params={"cursor": raw}, headers=tenant.viewer)
    assert r.status_code == 400 and "not a cursor of this list" in r.json()["detail"]
    r = await client.get(PRODUCTS, params={"cursor": cursor, "page": 2}, headers=tenant.viewer)
    assert r.status_code == 400
    # another tenant's cursor reads that tenant's own products only
    await _setup(client, other_tenant, [_product(i, rng) for i in range(3)])
    r = await client.get(
        PRODUCTS,
        params={"ordering": "price", "limit": 5, "brand": "even", "cursor": cursor},
        headers=other_tenant.viewer,
    )
    assert r.status_code == 200
    mine = {p["id"] for p in (await client.get(PRODUCTS, headers=tenant.viewer)).json()["results"]}
    assert not {p["id"] for p in r.json()["results"]} & mine


async def test_search_cursor_walk(client, tenant):
    rng = random.Random(5)
    await _setup(client, tenant, [_product(i, rng) for i in range(90)])
    where = {"match": "any", "conditions": [{"field": "brand", "op": "eq", "value": "odd"}]}
    body = {"where": where, "ordering": "-price", "page_size": 8}
    r = await client.post(SEARCH, json=body, headers=tenant.viewer)
    first = r.json()
    assert first["count"] == 45 and first["page"] == 1 and first["next_cursor"]
    seen = first["results"]
    cursor = first["next_cursor"]
    while cursor:
        r = await client.post(SEARCH, json={**body, "cursor": cursor}, headers=tenant.viewer)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["count"] is None and page["next"] is None and page["page"] is None
        seen += page["results"]
        cursor = page["next_cursor"]
    by_pages = []
    for number in range(1, 7):
        r = await client.post(SEARCH, json={**body, "page": number}, headers=tenant.viewer)
        by_pages += r.json()["results"]
    assert [p["id"] for p in seen] == [p["id"] for p in by_pages] and len(seen) == 45
    r = await client.post(
        SEARCH,
        json={**body, "ordering": "price", "cursor": first["next_cursor"]},
        headers=tenant.viewer,
    )
    assert r.status_code == 400


async def test_page_numbers_carry_a_cursor_and_relative_links(client, tenant):
    rng = random.Random(11)
    await _setup(client, tenant, [_product(i, rng) for i in range(25)])
    second = (
        await client.get(PRODUCTS, params={"page": 2, "limit": 10}, headers=tenant.viewer)
    ).json()
    assert second["count"] == 25 and second["page_size"] == 10
    for link, number in ((second["next"], "3"), (second["previous"], "1")):
        assert urlsplit(link).path == PRODUCTS and not urlsplit(link).netloc
        assert parse_qs(urlsplit(link).query) == {"page": [number], "limit": ["10"]}
    # page 2's cursor continues with page 3
    third = (
        await client.get(
            PRODUCTS, params={"limit": 10, "cursor": second["next_cursor"]}, headers=tenant.viewer
        )
    ).json()
    by_page = (
        await client.get(PRODUCTS, params={"page": 3, "limit": 10}, headers=tenant.viewer)
    ).json()
    assert [p["id"] for p in third["results"]] == [p["id"] for p in by_page["results"]]
    assert third["next_cursor"] is None and by_page["next_cursor"] is None
    r = await client.get(PRODUCTS, params={"limit": 10, "page_size": 20}, headers=tenant.viewer)
    assert r.status_code == 400
    r = await client.get(PRODUCTS, params={"limit": 201}, headers=tenant.viewer)
    assert r.status_code == 400


async def test_updated_at_window_filters(client, tenant):
    rng = random.Random(1)
    await _setup(client, tenant, [_product(i, rng) for i in range(5)])
    all_ = (await client.get(PRODUCTS, headers=tenant.viewer)).json()["results"]
    times = sorted(p["updated_at"] for p in all_)
    await asyncio.sleep(0.01)  # a distinct timestamp for the next write (not synchronisation)
    r = await client.post(BULK, json={"products": [_product(50, rng)]}, headers=tenant.editor)
    assert r.json()["created"] == 1
    after = (
        await client.get(PRODUCTS, params={"updated_at__gt": times[-1]}, headers=tenant.viewer)
    ).json()
    assert [p["sku"] for p in after["results"]] == ["C00050"]
    new_time = after["results"][0]["updated_at"]
    r = await client.get(
        PRODUCTS,
        params={"updated_at__gte": times[0], "updated_at__lt": new_time},
        headers=tenant.viewer,
    )
    assert r.json()["count"] == 5
    r = await client.get(PRODUCTS, params={"updated_at__gte": new_time}, headers=tenant.viewer)
    assert [p["sku"] for p in r.json()["results"]] == ["C00050"]
    # an offset instead of Z: the same instant
    assert new_time.endswith("Z")
    shifted = new_time[:-1] + "+00:00"
    r = await client.get(PRODUCTS, params={"updated_at__gte": shifted}, headers=tenant.viewer)
    assert r.json()["count"] == 1
    for bad, message in (
        ("2026-01-31T12:00:00", "no time zone"),
        ("2026-01-31", "not an ISO 8601 date-time"),
        ("yesterday", "not an ISO 8601 date-time"),
        ("2026-13-01T00:00:00Z", "not an ISO 8601 date-time"),
    ):
        r = await client.get(PRODUCTS, params={"updated_at__gte": bad}, headers=tenant.viewer)
        assert r.status_code == 400, (bad, r.text)
        assert (
            r.json()["detail"].startswith("Filter updated_at__gte: ")
            and message in r.json()["detail"]
        ), r.text
    r = await client.get(PRODUCTS, params={"updated_at": new_time}, headers=tenant.viewer)
    assert r.status_code == 400  # not an exact filter: a window has two ends


async def _plan(app, sql: str, params: list) -> str:
    async with app.state.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        async with raw.transaction():
            # as in test_query_plans: on a small database a scan is cheaper; priced out, the plan
            # shows whether an index can answer the query (without one it still scans)
            await raw.execute("SET LOCAL enable_seqscan = off")
            rows = await raw.fetch(f"EXPLAIN {sql}", *params)
        await conn.rollback()
    return "\n".join(r[0] for r in rows)


class _Tenant:
    def __init__(self, tenant_id: int):
        self.info = {"tenant_id": tenant_id}


async def test_cursor_pages_start_in_an_index(app, client, tenant):
    rng = random.Random(2)
    await _setup(client, tenant, [_product(i, rng) for i in range(2_000)])
    async with app.state.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE products"))
    fields = {f["name"]: FieldDef.model_validate(f) for f in FIELDS}
    where: SqlWhere = tenant_where(_Tenant(tenant.id), Junction("all", ()))
    middle = (
        await client.get(PRODUCTS, params={"page": 20, "limit": 50}, headers=tenant.viewer)
    ).json()["results"][-1]
    stamp, pid = middle["updated_at"].replace("Z", "+00:00"), str(middle["id"])
    for ordering, keys, index in (
        (None, [pid], "_products"),  # pk_products or ix_products_tenant_id_id
        ("-updated_at", [stamp, pid], "ix_products_tenant_updated"),
        ("updated_at", [stamp, pid], "ix_products_tenant_updated"),
        ("sku", [middle["sku"], pid], "uq_products_tenant_id_sku"),
    ):
        sql, params = page_query(
            Listing(where, fields, ordering=ordering, page=1, page_size=50, after=keys)
        )
        plan = await _plan(app, sql, params)
        assert index in plan, (ordering, plan)
        # the keyset bound is an index condition (a range start), not a filter over every row
        index_cond = [line for line in plan.splitlines() if "Index Cond" in line]
        assert index_cond and any(
            op in line for line in index_cond for op in (" > ", " < ", " >= ", " <= ")
        ), (ordering, plan)
        # no sort of the whole match set (an incremental sort within equal keys is fine)
        assert not re.search(r"(?:^|->)\s*Sort\s+\(cost", plan, re.MULTILINE), (ordering, plan)
