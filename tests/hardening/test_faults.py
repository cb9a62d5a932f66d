"""Failing dependencies, worker crashes and limits, against REAL services that the tests stop and start.

Redis, ClickHouse and Postgres here are private instances on free ports (tests/hardening/conftest.py);
the shared services in `.env` are only used where nothing gets killed. Workers are real `pim worker`
subprocesses pointed at the private instances, so no other test run's worker takes our jobs.
"""

import asyncio
import os
import random
import signal
import subprocess
import sys
import time

import orjson
from sqlalchemy import text

from app.clickhouse import ClickHouse
from app.segments import tasks as segment_tasks
from tests.conftest import ROOT, start_worker, stop_worker, wait_for
from tests.hardening.conftest import tenant_in

SEGMENTS = "/api/product-segments/"
PREVIEW = "/api/product-segments/preview/"
PRODUCTS = "/api/pim/products/"
BULK = "/api/pim/products/bulk/"
SCHEMA = "/api/pim/schema/"
FACETS = "/api/pim/facets/"
IMPORT = "/api/pim/import"
FIELDS = [
    {"name": "brand", "type": "string"},
    {"name": "color", "type": "enum", "options": ["red", "green", "blue"]},
    {"name": "price", "type": "number"},
    {"name": "stock", "type": "integer"},
    {"name": "tags", "type": "array"},
]
FEED = b"sku,title,price\nF-1,One,1.50\nF-2,Two,2.50\n"
IN_STOCK = {"field": "stock", "op": "gte", "value": 10}


def product(i: int, stock: int | None = None) -> dict:
    return {
        "sku": f"P-{i:06d}",
        "name": f"Product {i}",
        "brand": f"Brand {i % 7}",
        "color": ["red", "green", "blue"][i % 3],
        "price": i % 500 + 0.5,
        "stock": i % 100 if stock is None else stock,
        "tags": [f"t{i % 5}", f"u{i % 11}"],
    }


async def seed(http, tenant, n: int, *, start: int = 0) -> None:
    r = await http.put(SCHEMA, json={"fields": FIELDS}, headers=tenant.editor)
    assert r.status_code == 200, r.text
    for lo in range(start, start + n, 10_000):
        items = [product(i) for i in range(lo, min(start + n, lo + 10_000))]
        r = await http.post(BULK, json={"products": items}, headers=tenant.editor)
        assert r.status_code == 200 and r.json()["failed"] == 0, r.text[:500]


async def create_segment(http, tenant, definition=IN_STOCK) -> int:
    r = await http.post(
        SEGMENTS, json={"name": "in stock", "definition": definition}, headers=tenant.editor
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def segment(http, tenant, sid: int) -> dict:
    r = await http.get(f"{SEGMENTS}{sid}/", headers=tenant.viewer)
    assert r.status_code == 200, r.text
    return r.json()


async def wait_computed(
    http, tenant, sid: int, *, after: str | None = None, timeout: float = 60
) -> dict:
    async def done():
        body = await segment(http, tenant, sid)
        assert body["status"] != "failed", body
        fresh = body["last_computed_at"] is not None and body["last_computed_at"] != after
        return body if body["status"] == "ready" and fresh else None

    return await wait_for(done, timeout=timeout, interval=0.1)


async def all_member_ids(http, tenant, sid: int) -> list[int]:
    ids, cursor = [], None
    while True:
        r = await http.get(
            f"{SEGMENTS}{sid}/members/",
            params={"limit": 200} | ({"cursor": cursor} if cursor else {}),
            headers=tenant.viewer,
        )
        assert r.status_code == 200, r.text
        ids += [p["id"] for p in r.json()["results"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return ids


async def product_ids(http, tenant, **filters) -> list[int]:
    ids, page = [], 1
    while True:
        r = await http.get(
            PRODUCTS, params={**filters, "page": page, "page_size": 200}, headers=tenant.viewer
        )
        assert r.status_code == 200, r.text
        ids += [p["id"] for p in r.json()["results"]]
        if r.json()["next"] is None:
            return ids
        page += 1


# --- Redis down ---------------------------------------------------------------------------------


async def test_redis_down_is_503_for_queueing_only_and_recovers(app_with, redis_up):
    api = await app_with(redis_url=redis_up.url)
    http, tenant = api.http, await tenant_in(api.app)
    await seed(http, tenant, 30)
    warm = await create_segment(http, tenant)
    # the app's Redis pool now holds a live connection, which the kill below resets
    assert (await http.post(f"{SEGMENTS}{warm}/compute/", headers=tenant.editor)).status_code == 200
    sid = await create_segment(http, tenant)

    redis_up.kill()

    for _ in range(2):  # over the reset pooled connection, then on a refused new one
        r = await http.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
        assert r.status_code == 503 and "Redis" in r.json()["detail"], r.text
    body = await segment(http, tenant, sid)
    assert body["status"] == "new" and body["last_error"] is None

    # an upload does not need Redis; its confirmation does, and leaves the job as it was
    r = await http.post(
        f"{IMPORT}/csv/", files={"file": ("feed.csv", FEED, "text/csv")}, headers=tenant.editor
    )
    assert r.status_code == 201, r.text
    job = r.json()
    confirm = {"mapping": job["suggested_mapping"], "schema": job["suggested_schema"]}
    r = await http.post(f"{IMPORT}/{job['job_id']}/confirm/", json=confirm, headers=tenant.editor)
    assert r.status_code == 503 and "Redis" in r.json()["detail"], r.text
    job_now = (await http.get(f"{IMPORT}/{job['job_id']}/", headers=tenant.viewer)).json()
    assert job_now["status"] == "mapping" and job_now["mapping"] is None

    # what does not need Redis keeps working
    r = await http.get(PRODUCTS, params={"brand": "Brand 3"}, headers=tenant.viewer)
    assert r.status_code == 200 and r.json()["count"] == 4
    r = await http.post(
        PRODUCTS, json={"sku": "NEW-1", "name": "New", "data": {"stock": 50}}, headers=tenant.editor
    )
    assert r.status_code == 201, r.text
    r = await http.patch(
        f"{PRODUCTS}{r.json()['id']}/", json={"data": {"stock": 60}}, headers=tenant.editor
    )
    assert r.status_code == 200 and r.json()["data"]["stock"] == 60
    r = await http.post(PREVIEW, json=IN_STOCK, headers=tenant.viewer)
    assert r.status_code == 200 and r.json()["count"] == 21  # 20 seeded (stock 10..29) + NEW-1
    assert (await http.get(FACETS, headers=tenant.viewer)).status_code == 200
    r = await http.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["redis"]["status"] == "down"
    assert r.json()["checks"]["postgres"]["status"] == "up"

    redis_up.start()  # an empty Redis on the same port: the job queued before the kill is gone

    r = await http.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
    assert r.status_code == 200 and r.json() == {"status": "queued", "segment_id": sid}, r.text
    assert (await segment(http, tenant, sid))["status"] == "queued"
    r = await http.post(f"{IMPORT}/{job['job_id']}/confirm/", json=confirm, headers=tenant.editor)
    assert r.status_code == 202 and r.json()["status"] == "importing", r.text

    worker = start_worker({"PIM_REDIS_URL": redis_up.url})
    try:
        computed = await wait_computed(http, tenant, sid)
        assert computed["computed_count"] == 21

        async def imported():
            body = (await http.get(f"{IMPORT}/{job['job_id']}/", headers=tenant.viewer)).json()
            return body if body["status"] in ("done", "failed") else None

        done = await wait_for(imported, timeout=60)
        assert done["status"] == "done" and done["created"] == 2, done
    finally:
        stop_worker(worker)


# --- ClickHouse down ----------------------------------------------------------------------------


async def test_clickhouse_down_members_503_compute_retries_then_fails_and_recovers(
    app_with, redis_up, clickhouse_up
):
    api = await app_with(redis_url=redis_up.url, clickhouse_url=clickhouse_up.url)
    http, tenant = api.http, await tenant_in(api.app)
    await seed(http, tenant, 40)
    sid = await create_segment(http, tenant)
    worker = start_worker({"PIM_REDIS_URL": redis_up.url, "PIM_CLICKHOUSE_URL": clickhouse_up.url})
    try:
        assert (
            await http.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
        ).status_code == 200
        first = await wait_computed(http, tenant, sid)
        assert first["computed_count"] == 30
        expected = await product_ids(http, tenant, stock__gte=10)
        assert await all_member_ids(http, tenant, sid) == expected

        clickhouse_up.kill()

        for _ in range(2):  # over the API's pooled (now reset) connection, then a refused new one
            r = await http.get(f"{SEGMENTS}{sid}/members/", headers=tenant.viewer)
            assert r.status_code == 503 and "ClickHouse" in r.json()["detail"], r.text
        r = await http.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["clickhouse"]["status"] == "down"

        # the compute is queued (Redis is fine), the worker retries with a growing delay, then gives up
        assert (
            await http.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
        ).status_code == 200
        seen: dict[str, float] = {}

        async def failed():
            body = await segment(http, tenant, sid)
            error = body["last_error"] or ""
            for mark in (
                "try 1 of 3 failed, retrying",
                "try 2 of 3 failed, retrying",
                "failed after 3 tries",
            ):
                if error.startswith(mark):
                    seen.setdefault(mark, time.monotonic())
            return body if body["status"] == "failed" else None

        gave_up = await wait_for(failed, timeout=60, interval=0.1)
        assert gave_up["last_error"].startswith(
            "failed after 3 tries: Unavailable: ClickHouse is unavailable"
        )
        assert list(seen) == [
            "try 1 of 3 failed, retrying",
            "try 2 of 3 failed, retrying",
            "failed after 3 tries",
        ]
        first_gap = seen["try 2 of 3 failed, retrying"] - seen["try 1 of 3 failed, retrying"]
        second_gap = seen["failed after 3 tries"] - seen["try 2 of 3 failed, retrying"]
        assert first_gap >= 4 and second_gap >= 9 and second_gap > first_gap, (
            first_gap,
            second_gap,
        )
        # the members of the last good compute stay the visible ones
        assert (
            gave_up["computed_count"] == 30
            and gave_up["last_computed_at"] == first["last_computed_at"]
        )

        clickhouse_up.start()

        r = await http.get(f"{SEGMENTS}{sid}/members/", headers=tenant.viewer)
        assert r.status_code == 200 and r.json()["count"] == 30, r.text
        assert await all_member_ids(http, tenant, sid) == expected
        await seed(http, tenant, 5, start=1000)  # stock 0..4: not in stock
        await seed(http, tenant, 15, start=1010)  # stock 10..24: in stock
        assert (
            await http.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
        ).status_code == 200
        again = await wait_computed(http, tenant, sid, after=first["last_computed_at"])
        assert again["computed_count"] == 45 and again["last_error"] is None
        assert await all_member_ids(http, tenant, sid) == await product_ids(
            http, tenant, stock__gte=10
        )
    finally:
        stop_worker(worker)


# --- Postgres restarted -------------------------------------------------------------------------


async def test_postgres_restart_pool_recovers_without_restarting_the_api(
    app_with, private_postgres
):
    api = await app_with(database_url=private_postgres.url)
    http, tenant = api.http, await tenant_in(api.app)
    await seed(http, tenant, 50)
    first_id = (await http.get(PRODUCTS, headers=tenant.viewer)).json()["results"][0]["id"]

    async def burst(n: int = 8) -> list[int]:
        responses = await asyncio.gather(
            *[
                http.get(PRODUCTS, params={"brand": f"Brand {i % 7}"}, headers=tenant.viewer)
                for i in range(n)
            ]
        )
        return [r.status_code for r in responses]

    assert await burst() == [200] * 8
    # several pooled connections, all of which the restart closes: the lean reads' pool (lists, GET)
    # and the sessions' pool (writes)
    assert api.app.state.read_pool.get_size() >= 2
    assert (
        await http.post(
            PRODUCTS, json={"sku": "BEFORE-RESTART", "name": "x"}, headers=tenant.editor
        )
    ).status_code == 201
    assert api.app.state.engine.pool.checkedin() >= 1, api.app.state.engine.pool.status()

    await private_postgres.restart("fast")

    statuses = []
    for _ in range(5):
        r = await http.get(f"{PRODUCTS}{first_id}/", headers=tenant.viewer)
        statuses.append(r.status_code)
        assert r.status_code in (200, 503), r.text
    print("statuses right after `pg_ctl restart -m fast`:", statuses)
    # at most the very first request may fail, and then as a 503 (checkout replaces closed connections)
    assert statuses[1:] == [200] * 4 and statuses[0] in (200, 503)
    assert await burst() == [200] * 8
    r = await http.post(PRODUCTS, json={"sku": "AFTER-RESTART", "name": "x"}, headers=tenant.editor)
    assert r.status_code == 201, r.text

    # stopped for a moment: a quick 503 (not a 500, not a hang), and back once it is up again
    await private_postgres.stop("fast")
    try:
        started = time.monotonic()
        r = await http.get(f"{PRODUCTS}{first_id}/", headers=tenant.viewer)
        assert r.status_code == 503 and r.json()["detail"], r.text
        assert time.monotonic() - started < 10
    finally:
        await private_postgres.start()
    assert (await http.get(f"{PRODUCTS}{first_id}/", headers=tenant.viewer)).status_code == 200
    assert await burst() == [200] * 8


# --- worker killed mid-compute ------------------------------------------------------------------

# A real worker whose compute writes ClickHouse blocks of 500 rows (the default is 250,000), so
# that a SIGKILL reliably lands between two blocks: a half-written generation really exists.
SMALL_BLOCKS_WORKER = (
    "import app.segments.tasks as t; t.BLOCK_ROWS = t.FETCH_ROWS = 500; "
    "from app.cli import main; raise SystemExit(main(['worker']))"
)


def start_small_block_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SMALL_BLOCKS_WORKER],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def test_worker_killed_mid_compute_finishes_exactly_after_restart(
    app_with, redis_up, clickhouse_up, settings
):
    assert {"BLOCK_ROWS", "FETCH_ROWS"} <= vars(segment_tasks).keys(), (
        "SMALL_BLOCKS_WORKER needs updating"
    )
    api = await app_with(redis_url=redis_up.url, clickhouse_url=clickhouse_up.url)
    http, tenant = api.http, await tenant_in(api.app)
    n = 20_000
    await seed(http, tenant, n)
    sid = await create_segment(http, tenant)
    clickhouse = ClickHouse(settings.model_copy(update={"clickhouse_url": clickhouse_up.url}))
    env = {"PIM_REDIS_URL": redis_up.url, "PIM_CLICKHOUSE_URL": clickhouse_up.url}

    async def generation_rows(generation: int) -> tuple[int, int]:
        rows = await clickhouse.fetch(
            "SELECT count(), uniqExact(product_id) FROM product_memberships "
            "WHERE tenant_id = %(t)s AND segment_id = %(s)s AND generation = %(g)s",
            {"t": tenant.id, "s": sid, "g": generation},
        )
        return rows[0]

    worker = start_small_block_worker(env)
    try:
        assert (
            await http.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
        ).status_code == 200
        first = await wait_computed(http, tenant, sid)
        assert first["computed_count"] == n * 9 // 10
        assert await generation_rows(1) == (n * 9 // 10,) * 2
        r = await http.get(
            f"{SEGMENTS}{sid}/members/", params={"page_size": 200}, headers=tenant.viewer
        )
        first_page = [p["id"] for p in r.json()["results"]]

        # change the truth, then kill the worker while it writes the next generation
        r = await http.post(
            BULK,
            json={"products": [product(i, stock=0) for i in range(10, 2010)]},
            headers=tenant.editor,
        )
        assert r.status_code == 200 and r.json()["updated"] == 2000
        async with api.app.state.sessionmaker() as session:
            expected = list(
                await session.scalars(
                    text(
                        "SELECT id FROM products WHERE tenant_id = :t AND (data->>'stock')::int >= 10 ORDER BY id"
                    ),
                    {"t": tenant.id},
                )
            )
        assert len(expected) == n * 9 // 10 - 1800
        assert (
            await http.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
        ).status_code == 200

        async def partly_written():
            count, _unique = await generation_rows(2)
            return count if count > 0 else None

        await wait_for(partly_written, timeout=60, interval=0.01)
        stop_worker(worker, signal.SIGKILL)
        partial, _ = await generation_rows(2)
        print(f"killed with {partial} of {len(expected)} rows of generation 2 written")
        assert 0 < partial < len(expected)

        # readers still see the whole previous generation, never the half-written one
        stuck = await segment(http, tenant, sid)
        assert stuck["status"] == "computing" and stuck["computed_count"] == first["computed_count"]
        r = await http.get(
            f"{SEGMENTS}{sid}/members/", params={"page_size": 200}, headers=tenant.viewer
        )
        assert r.status_code == 200 and r.json()["count"] == first["computed_count"]
        assert [p["id"] for p in r.json()["results"]] == first_page

        started = time.monotonic()
        worker = start_small_block_worker(env)
        done = await wait_computed(http, tenant, sid, after=first["last_computed_at"], timeout=90)
        print(f"finished {time.monotonic() - started:.1f} s after the worker restart: {done}")
        assert done["computed_count"] == len(expected) and done["last_error"] is None
        members = await all_member_ids(http, tenant, sid)
        assert members == expected  # exact: no duplicates, nothing missing, nothing extra
        current = max(
            await clickhouse.fetch(
                "SELECT generation FROM product_memberships WHERE tenant_id = %(t)s AND segment_id = %(s)s GROUP BY generation",
                {"t": tenant.id, "s": sid},
            )
        )[0]
        assert current > 2 and await generation_rows(current) == (len(expected),) * 2
    finally:
        stop_worker(worker)
        await clickhouse.close()


# --- concurrent writers -------------------------------------------------------------------------


async def test_concurrent_bulk_upserts_of_the_same_products_do_not_deadlock(client, make_tenant):
    """Found by bench/load.py: batches sharing products in different orders deadlocked (a 500)."""
    tenant = await make_tenant("writers")
    skus = [f"D-{i:04d}" for i in range(60)]
    r = await client.post(
        BULK,
        json={"products": [{"sku": s, "name": s, "n": -1} for s in skus]},
        headers=tenant.editor,
    )
    assert r.status_code == 200 and r.json()["created"] == 60
    rng = random.Random(7)
    statuses: dict[int, int] = {}
    for attempt in range(6):
        bodies = [
            {
                "products": [
                    {"sku": s, "name": s, "n": attempt * 100 + k} for s in rng.sample(skus, 25)
                ]
            }
            for k in range(12)
        ]
        responses = await asyncio.gather(
            *[client.post(BULK, json=b, headers=tenant.editor) for b in bodies]
        )
        for response in responses:
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    assert statuses == {200: 72}, statuses


async def test_concurrent_batches_of_new_and_existing_products_create_each_once(
    client, make_tenant
):
    """Batches of only new products write in parallel (shared lock); batches that also update take
    turns. Overlapping new SKUs, in both kinds, must be created exactly once, with exact facets."""
    tenant = await make_tenant("inserters")
    assert (
        await client.put(SCHEMA, json={"fields": FIELDS}, headers=tenant.editor)
    ).status_code == 200
    existing = [f"E-{i:03d}" for i in range(30)]
    r = await client.post(
        BULK,
        json={"products": [{"sku": s, "brand": "old"} for s in existing]},
        headers=tenant.editor,
    )
    assert r.status_code == 200 and r.json()["created"] == 30
    rng = random.Random(11)
    created = updated = 0
    new: set[str] = set()
    for attempt in range(5):
        pool = [f"N-{attempt}-{i:03d}" for i in range(80)]
        bodies = []
        for k in range(12):
            skus = rng.sample(pool, 30) + (rng.sample(existing, 10) if k % 3 == 0 else [])
            rng.shuffle(skus)
            bodies.append(
                {"products": [{"sku": s, "brand": f"b{k % 4}", "tags": [f"t{k}"]} for s in skus]}
            )
            new |= {s for s in skus if s.startswith("N-")}
        responses = await asyncio.gather(
            *[client.post(BULK, json=b, headers=tenant.editor) for b in bodies]
        )
        assert [r.status_code for r in responses] == [200] * 12, [r.text[:200] for r in responses]
        created += sum(r.json()["created"] for r in responses)
        updated += sum(r.json()["updated"] for r in responses)
    assert created == len(new)  # every new SKU was created by exactly one batch
    assert created + updated == 5 * (12 * 30 + 4 * 10)
    listed = (await client.get(PRODUCTS, params={"page_size": 1}, headers=tenant.viewer)).json()
    assert listed["count"] == len(new) + 30
    stored = (
        await client.get(FACETS, headers=tenant.viewer)
    ).json()  # the counts kept by the triggers
    live = (
        await client.get(FACETS, params={"status": "active"}, headers=tenant.viewer)
    ).json()  # recounted
    assert stored == live and stored["total"] == len(new) + 30


# --- limits -------------------------------------------------------------------------------------


async def test_body_and_upload_limits_are_413(app_with):
    api = await app_with(max_json_body_bytes=2_000, max_upload_bytes=5_000)
    http, tenant = api.http, await tenant_in(api.app)
    small = {"products": [product(i) for i in range(3)]}
    big = {"products": [product(i) for i in range(40)]}
    assert (await http.post(BULK, json=small, headers=tenant.editor)).status_code == 200

    r = await http.post(BULK, json=big, headers=tenant.editor)
    assert r.status_code == 413 and r.json() == {"detail": "Request body is larger than 2000 bytes"}

    async def chunks(data: bytes):  # no Content-Length: the limit is enforced while streaming
        for i in range(0, len(data), 500):
            yield data[i : i + 500]

    body = orjson.dumps(big)
    r = await http.post(
        BULK, content=chunks(body), headers={**tenant.editor, "content-type": "application/json"}
    )
    assert r.status_code == 413 and "2000 bytes" in r.json()["detail"], r.text

    feed = b"sku,name\n" + b"".join(b"S-%05d,Name %05d\n" % (i, i) for i in range(400))
    assert len(feed) > 5_000
    r = await http.post(
        f"{IMPORT}/csv/", files={"file": ("big.csv", feed, "text/csv")}, headers=tenant.editor
    )
    assert r.status_code == 413 and "5000 bytes" in r.json()["detail"], r.text
    r = await http.post(
        f"{IMPORT}/csv/", files={"file": ("ok.csv", FEED, "text/csv")}, headers=tenant.editor
    )
    assert r.status_code == 201, r.text


async def test_page_sizes_and_definitions_are_bounded(client, make_tenant):
    tenant = await make_tenant("limits")
    for path, param in ((PRODUCTS, "page_size"), ("/api/en-us/v/pc/0/", "pageSize")):
        r = await client.get(path, params={param: 200}, headers=tenant.viewer)
        assert r.status_code == 200, r.text
        r = await client.get(path, params={param: 201}, headers=tenant.viewer)
        assert r.status_code == 400 and "200" in r.json()["detail"], r.text
    r = await client.get(PRODUCTS, params={"page_size": 10**30}, headers=tenant.viewer)
    assert r.status_code in (400, 422), r.text
    sid = await create_segment(client, tenant, {"field": "sku", "op": "eq", "value": "x"})
    r = await client.get(
        f"{SEGMENTS}{sid}/members/", params={"page_size": 201}, headers=tenant.viewer
    )
    assert r.status_code == 400 and "200" in r.json()["detail"], r.text

    r = await client.post(
        BULK,
        json={"products": [{"sku": f"S{i}", "name": "n"} for i in range(10_001)]},
        headers=tenant.editor,
    )
    assert r.status_code in (400, 422), r.text[:300]

    many = {
        "match": "any",
        "conditions": [{"field": "sku", "op": "eq", "value": f"S{i}"} for i in range(201)],
    }
    deep: dict = {"field": "sku", "op": "eq", "value": "x"}
    for _ in range(9):
        deep = {"not": deep}
    for definition, words in ((many, "200 conditions"), (deep, "8 levels")):
        r = await client.post(PREVIEW, json=definition, headers=tenant.viewer)
        assert r.status_code == 400 and words in r.json()["detail"], r.text
        r = await client.post(
            SEGMENTS, json={"name": "too big", "definition": definition}, headers=tenant.editor
        )
        assert r.status_code == 400 and words in r.json()["detail"], r.text
    ok = {"match": "any", "conditions": many["conditions"][:200]}
    assert (await client.post(PREVIEW, json=ok, headers=tenant.viewer)).status_code == 200


async def test_statement_timeout_is_a_clear_503(app_with):
    api = await app_with()
    tenant = await tenant_in(api.app)
    await seed(api.http, tenant, 20_000)
    slow = await app_with(statement_timeout_ms=20)
    # filtered facets group every facet field over all 20,000 matches: far more than 20 ms
    started = time.monotonic()
    r = await slow.http.get(FACETS, params={"price__gte": "0"}, headers=tenant.viewer)
    elapsed = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert r.json() == {
        "detail": "The database statement took too long and was cancelled: narrow the filters, or retry a write later"
    }
    assert elapsed < 5
    # quick statements under the same timeout are fine: one product by SKU (index lookups only). An
    # unfiltered page counts all 20,000 rows, which takes 3 to 50 ms on these test databases, new each
    # session, depending on whether vacuum could mark their pages all-visible yet: not a quick statement.
    r = await slow.http.get(PRODUCTS, params={"sku": "P-000007"}, headers=tenant.viewer)
    assert r.status_code == 200, r.text
    assert [p["sku"] for p in r.json()["results"]] == ["P-000007"]


async def test_pims_route_reports_backend_failures_in_its_error_shape(settings, tenant):
    """A statement timeout on the PIMS route is a 503 in the PIMS shape, not the global one."""
    import httpx as _httpx

    from app.main import create_app

    app = create_app(settings.model_copy(update={"statement_timeout_ms": 1}))
    async with app.router.lifespan_context(app):
        transport = _httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with _httpx.AsyncClient(transport=transport, base_url="http://pim.test") as http:
            await http.post(
                "/api/pim/products/bulk/",
                headers=tenant.editor,
                json={"products": [{"sku": f"T{i}", "name": f"n{i}"} for i in range(3000)]},
            )
            for _ in range(5):  # a 1 ms statement timeout trips on the route's count or page query
                response = await http.get(
                    "/v/pc/0/", params={"pageSize": 200}, headers=tenant.viewer
                )
                if response.status_code != 200:
                    break
            assert response.status_code == 503, response.text
            body = response.json()
            assert body["status"] == "ERROR" and "took too long" in body["detail"]
