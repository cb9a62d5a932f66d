"""Segments benchmark: preview, compute end to end, members pages — beside the raw queries.

    .venv/bin/python bench/segments.py               # 100,000 products
    .venv/bin/python bench/segments.py --n 1000000

Creates a fresh tenant, COPYs N products into Postgres, and drives the real app in
process (httpx over ASGI, with its lifespan: Postgres, Redis, ClickHouse) with a
definition that matches about 30% of the products. The compute runs on a real arq
worker: an already running one is used, otherwise `pim worker` is started for the
run. Goals: compute <= 10 s at 1M, a members page <= 30 ms. The tenant (and its
memberships) are deleted at the end unless --keep.
"""

import argparse
import asyncio
import logging
import random
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arq.connections import ArqRedis
from sqlalchemy import text

from app.auth.service import Role, create_api_key, create_tenant
from app.config import get_settings
from app.main import create_app
from app.pagination import encode_cursor
from app.products.service import products_by_ids
from app.products.upsert import driver_connection
from app.segments import members

BRANDS = [f"Brand{i}" for i in range(10)]
TAGS = ["sale", "new", "eco", "outdoor", "kids", "premium"]
SCHEMA = [
    {"name": "brand", "type": "string"},
    {"name": "price", "type": "number"},
    {"name": "stock", "type": "integer"},
    {"name": "tags", "type": "array"},
    {"name": "released", "type": "date"},
]
# ~20% (two brands of ten) + ~10% (price 90..100 of 0..100) - overlap, minus nothing: ~28%
DEFINITION = {
    "match": "all",
    "conditions": [
        {
            "match": "any",
            "conditions": [
                {"field": "brand", "op": "in", "value": ["Brand0", "Brand1"]},
                {
                    "match": "all",
                    "conditions": [
                        {"field": "price", "op": "between", "value": [90, 100]},
                        {"field": "released", "op": "gte", "value": "2019-01-01"},
                    ],
                },
            ],
        },
        {"not": {"field": "status", "op": "eq", "value": "deleted"}},
        {"field": "tags", "op": "is_not_empty"},
    ],
}
COPY_BATCH = 50_000
PAGE_SAMPLES = 40


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _p50(samples: list[float]) -> float:
    return statistics.median(samples)


async def make_tenant(app) -> tuple[int, str]:
    async with app.state.sessionmaker() as session, session.begin():
        tenant = await create_tenant(session, slug=f"bench-seg-{secrets.token_hex(4)}")
        _row, key = await create_api_key(session, tenant.id, name="bench", role=Role.admin)
    return tenant.id, key


def product_records(tenant_id: int, start: int, stop: int) -> list[tuple]:
    rng = random.Random(start)
    records = []
    for i in range(start, stop):
        data = {
            "brand": BRANDS[rng.randrange(10)],
            "price": round(rng.random() * 100, 2),
            "stock": rng.randrange(50),
            "tags": rng.sample(TAGS, k=1 + rng.randrange(3)),
            "released": f"{2019 + rng.randrange(7)}-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}",
        }
        records.append(
            (tenant_id, f"B-{i:08d}", f"Bench product {i}", "active", orjson.dumps(data).decode())
        )
    return records


async def load_products(app, tenant_id: int, n: int) -> float:
    """COPY n products into `products` for the tenant; seconds taken (including ANALYZE).

    Two connections take turns: while Postgres maintains the indexes for one batch,
    Python builds the next. A large GIN pending list lets the GIN indexes take rows in bulk.
    """
    started = time.perf_counter()
    batches = [(start, min(start + COPY_BATCH, n)) for start in range(0, n, COPY_BATCH)]

    async def loader() -> None:
        async with app.state.sessionmaker() as session:
            while batches:
                start, stop = batches.pop(0)
                records = product_records(tenant_id, start, stop)
                async with session.begin():
                    conn = await driver_connection(session)
                    await conn.execute(
                        "SET LOCAL work_mem = '256MB'; SET LOCAL gin_pending_list_limit = '256MB'"
                    )
                    await conn.copy_records_to_table(
                        "products",
                        records=records,
                        columns=["tenant_id", "sku", "name", "status", "data"],
                    )

    await asyncio.gather(loader(), loader())
    async with (
        app.state.sessionmaker() as session,
        session.begin(),
    ):  # fresh statistics, as autovacuum would give them a little later
        await session.execute(text("ANALYZE products"))
    return time.perf_counter() - started


async def worker_running(settings) -> bool:
    redis = ArqRedis.from_url(settings.redis_url)
    try:
        return bool(await redis.exists("arq:queue:health-check"))
    finally:
        await redis.aclose()


def start_worker() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="products to load (default 100000)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark tenant")
    args = parser.parse_args()

    settings = get_settings()
    app = create_app(
        settings.model_copy(update={"log_level": "WARNING"})
    )  # no per-request log lines
    logging.getLogger("httpx").setLevel(logging.WARNING)
    worker = None
    async with app.router.lifespan_context(app):
        if not await worker_running(settings):
            worker = start_worker()
        tenant_id, key = await make_tenant(app)
        headers = {"X-API-Key": key}
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as http:
                assert (
                    await http.put("/api/pim/schema/", json={"fields": SCHEMA}, headers=headers)
                ).status_code == 200
                load_s = await load_products(app, tenant_id, args.n)
                print(
                    f"products: {args.n:,} loaded with COPY in {load_s:.1f} s ({args.n / load_s:,.0f} rows/s)"
                )

                # preview, beside the bare count of the same predicate
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    response = await http.post(
                        "/api/product-segments/preview/", json=DEFINITION, headers=headers
                    )
                    times.append(time.perf_counter() - t)
                    assert response.status_code == 200, response.text
                preview = response.json()
                share = preview["count"] / args.n
                print(
                    f"preview: count {preview['count']:,} ({share:.0%}); p50 {_ms(_p50(times))} "
                    f"(runs: {', '.join(_ms(s) for s in times)})"
                )

                segment = (
                    await http.post(
                        "/api/product-segments/",
                        headers=headers,
                        json={"name": "bench", "definition": DEFINITION},
                    )
                ).json()
                sid = segment["id"]
                for attempt in (1, 2):
                    t = time.perf_counter()
                    response = await http.post(
                        f"/api/product-segments/{sid}/compute/", headers=headers
                    )
                    assert response.status_code == 200, response.text
                    enqueue_s = time.perf_counter() - t
                    while True:
                        body = (
                            await http.get(f"/api/product-segments/{sid}/", headers=headers)
                        ).json()
                        if (
                            body["status"] == "queued"
                            and worker is None
                            and time.perf_counter() - t > 15
                        ):
                            print(
                                "  (the running worker did not take the job within 15 s: starting our own)"
                            )
                            worker = start_worker()
                        if (
                            body["status"] == "ready"
                            and body["computed_count"] is not None
                            and body["last_error"] is None
                            and body["last_computed_at"] != segment.get("last_computed_at")
                        ):
                            break
                        if body["status"] == "failed":
                            raise SystemExit(f"compute failed: {body['last_error']}")
                        await asyncio.sleep(0.02)
                    total_s = time.perf_counter() - t
                    segment = body
                    print(
                        f"compute #{attempt}: {body['computed_count']:,} members; enqueue answered in {_ms(enqueue_s)}, "
                        f"ready after {total_s:.2f} s end to end"
                    )
                assert segment["computed_count"] == preview["count"]

                count = segment["computed_count"]
                deep = min(200_000, int(args.n * 0.2), max(count - 50, 0))
                async with app.state.sessionmaker() as session:
                    generation = await session.scalar(
                        text("SELECT current_generation FROM segments WHERE id = :id"), {"id": sid}
                    )
                for label, cursor in (("start", 0), (f"offset {deep:,}", deep)):
                    samples = []
                    for _ in range(PAGE_SAMPLES):
                        t = time.perf_counter()
                        # the cursor a client holds after reading `cursor` members
                        opaque = encode_cursor(
                            members.MEMBERS_LIST,
                            {"g": generation, "p": cursor, "id": 0},
                        )
                        response = await http.get(
                            f"/api/product-segments/{sid}/members/",
                            params={"limit": 50} | ({"cursor": opaque} if cursor else {}),
                            headers=headers,
                        )
                        samples.append(time.perf_counter() - t)
                        assert (
                            response.status_code == 200 and len(response.json()["results"]) == 50
                        ), response.text
                    # the two halves of a page on their own: ClickHouse ids, then Postgres rows
                    ch_samples, pg_samples = [], []
                    async with app.state.sessionmaker() as session:
                        session.info["tenant_id"] = tenant_id
                        for _ in range(PAGE_SAMPLES):
                            t = time.perf_counter()
                            ids = await members.page_product_ids(
                                app.state.clickhouse,
                                tenant_id=tenant_id,
                                segment_id=sid,
                                generation=(
                                    await session.scalar(
                                        text(
                                            "SELECT current_generation FROM segments WHERE id = :id"
                                        ),
                                        {"id": sid},
                                    )
                                ),
                                offset=cursor,
                                limit=51,
                            )
                            ch_samples.append(time.perf_counter() - t)
                            t = time.perf_counter()
                            await products_by_ids(session, ids[:50])
                            pg_samples.append(time.perf_counter() - t)
                    print(
                        f"members page at {label}: p50 {_ms(_p50(samples))} through the API "
                        f"(ClickHouse ids {_ms(_p50(ch_samples))} incl. one pointer read, "
                        f"Postgres rows {_ms(_p50(pg_samples))})"
                    )
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
            if not args.keep:
                t = time.perf_counter()
                await members.drop_segment(
                    app.state.clickhouse, tenant_id=tenant_id, segment_id=locals().get("sid", 0)
                )
                async with app.state.sessionmaker() as session, session.begin():
                    await session.execute(
                        text("DELETE FROM tenants WHERE id = :id"), {"id": tenant_id}
                    )
                print(f"cleanup: tenant {tenant_id} deleted in {time.perf_counter() - t:.1f} s")
            else:
                print(f"kept tenant {tenant_id}")


if __name__ == "__main__":
    asyncio.run(main())
