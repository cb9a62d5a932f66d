"""Read-your-writes, Postgres answering when the model is behind or ClickHouse is down, the
worker keeping the model current, and `pim mirror rebuild`.

A marker row (a product only the model has, `conftest.add_marker`) tells which store answered:
a count that includes it came from the model."""

import os
import subprocess
import sys

import orjson
import pytest

from app.clickhouse import ClickHouse
from app.config import Settings
from app.jobs.locks import Lock
from app.mirror.model import read_state
from app.mirror.reads import Mirror
from tests.conftest import ROOT, start_worker, stop_worker, wait_for
from tests.mirror.conftest import (
    FACETS,
    LIST,
    add_marker,
    bulk,
    put_schema,
    rebuild_model,
    sync_model,
)

FIELDS = [
    {"name": "brand", "type": "string"},
    {"name": "price", "type": "number"},
    {"name": "tags", "type": "array"},
]


async def _catalog(client, tenant, n: int = 20) -> None:
    await put_schema(client, tenant, FIELDS)
    await bulk(
        client,
        tenant,
        [
            {"sku": f"S{i}", "brand": "Old", "price": i, "tags": ["t"] if i % 2 else []}
            for i in range(n)
        ],
    )


async def _count(client, tenant, **params) -> int:
    response = await client.get(LIST, params=params, headers=tenant.viewer)
    assert response.status_code == 200, response.text
    return response.json()["count"]


async def _facets(client, tenant, **params) -> dict:
    response = await client.get(FACETS, params=params, headers=tenant.viewer)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def mirror_worker():
    """A worker that builds the model of tenants of any size."""
    proc = start_worker({"PIM_MIRROR_MIN_PRODUCTS": "0", "PIM_MIRROR_SWEEP_SECONDS": "1"})
    yield proc
    stop_worker(proc)


async def _pg_seq(pg, tenant_id: int) -> int:
    return await pg.fetchval(
        "SELECT last_seq FROM product_change_seqs WHERE tenant_id = $1", tenant_id
    )


async def test_worker_builds_and_follows_and_writes_are_read_at_once(
    client, tenant, app, mirror, pg, mirror_worker
):
    await _catalog(client, tenant)

    async def caught_up():
        state = await read_state(app.state.clickhouse, tenant.id)
        return state is not None and state.seq >= await _pg_seq(pg, tenant.id) and state

    state = await wait_for(caught_up, timeout=60)
    assert state.products == 20

    # a write, then at once a list and facets: the write is in both (whichever store answers)
    response = await client.post(
        LIST, json={"sku": "NEW1", "name": "n", "data": {"brand": "Fresh"}}, headers=tenant.editor
    )
    assert response.status_code == 201, response.text
    assert await _count(client, tenant, brand="Fresh") == 1
    body = await _facets(client, tenant, brand="Fresh")
    assert body["total"] == 1 and body["facets"]["brand"] == [{"value": "Fresh", "count": 1}]

    # the model answers a request right after a write once the worker has applied it (woken by
    # NOTIFY): with a longer wait the marker shows which store answered
    await wait_for(caught_up, timeout=30)
    await add_marker(app, tenant.id, kv=["brand=Fresh"], present=["brand"], filled=["brand"])
    mirror.wait_s = 10
    response = await client.post(
        LIST, json={"sku": "NEW2", "name": "n", "data": {"brand": "Fresh"}}, headers=tenant.editor
    )
    assert response.status_code == 201
    answers = mirror.answers
    assert await _count(client, tenant, brand="Fresh") == 3  # 2 products + the marker
    body = await _facets(client, tenant, brand="Fresh")
    assert body["total"] == 3 and body["facets"]["brand"] == [{"value": "Fresh", "count": 3}]
    assert mirror.answers == answers + 2

    # an update and a delete are followed too
    listed = (await client.get(LIST, params={"brand": "Fresh"}, headers=tenant.viewer)).json()
    real = [p for p in listed["results"] if p["sku"] != "marker"]
    response = await client.patch(
        f"{LIST}{real[0]['id']}/", json={"data": {"brand": "Newer"}}, headers=tenant.editor
    )
    assert response.status_code == 200, response.text
    response = await client.delete(f"{LIST}{real[1]['id']}/", headers=tenant.editor)
    assert response.status_code == 204
    assert await _count(client, tenant, brand="Fresh") == 1  # the marker only
    assert await _count(client, tenant, brand="Newer") == 1
    assert await _count(client, tenant) == 21 + 1


async def test_a_product_changed_in_successive_batches_counts_once(client, tenant, app, mirror, pg):
    """A product changed again after a batch that changed it: the second batch cancels the state
    the first one wrote (its cancel row used to cancel the rebuilt state a second time, leaving
    the first batch's state counted for ever)."""
    await _catalog(client, tenant)
    await rebuild_model(app, pg, tenant.id)
    for brand in ("Second", "Third", "Fourth"):
        await bulk(client, tenant, [{"sku": "S1", "brand": brand}])
        await sync_model(app, pg, tenant.id)
    answers = mirror.answers
    counts = {
        b: await _count(client, tenant, brand=b) for b in ("Old", "Second", "Third", "Fourth")
    }
    assert mirror.answers > answers  # the model answered
    assert counts == {"Old": 19, "Second": 0, "Third": 0, "Fourth": 1}
    facets = (await _facets(client, tenant))["facets"]["brand"]
    assert sorted((f["value"], f["count"]) for f in facets) == [("Fourth", 1), ("Old", 19)]


async def test_behind_or_down_model_answers_from_postgres(client, tenant, app, mirror, pg):
    await _catalog(client, tenant)
    await rebuild_model(app, pg, tenant.id)
    await add_marker(app, tenant.id, kv=["brand=Old"], present=["brand"], filled=["brand"])
    assert await _count(client, tenant, brand="Old") == 21  # the model answers: 20 + marker

    # behind: no worker may apply this tenant's entries while we hold its mirror lock
    await pg.execute("BEGIN")
    await pg.execute(f"SELECT pg_advisory_xact_lock({Lock.MIRROR.key('$1')})", tenant.id)
    try:
        await bulk(client, tenant, [{"sku": "B1", "brand": "Old", "price": 1}])
        answers = mirror.answers
        assert await _count(client, tenant, brand="Old") == 21  # 21 real, no marker: Postgres
        body = await _facets(client, tenant, brand="Old")
        assert body["total"] == 21 and body["facets"]["brand"] == [{"value": "Old", "count": 21}]
        assert (await client.get(LIST, headers=tenant.viewer)).json()["count"] == 21
        assert mirror.answers == answers  # never fresh: every answer came from Postgres
    finally:
        await pg.execute("ROLLBACK")

    # ClickHouse down (nothing listens on the port): Postgres answers, at once
    settings = Settings(clickhouse_url="clickhouse://default:@127.0.0.1:1/pim")
    down = Mirror(ClickHouse(settings), settings)
    down.min_products = 0
    saved = app.state.mirror
    app.state.mirror = down
    try:
        assert await _count(client, tenant, brand="Old") == 21
        assert (await _facets(client, tenant, price__gte="10"))["total"] == 10
        assert down.answers == 0
    finally:
        app.state.mirror = saved
        await down.clickhouse.close()


async def test_pims_count_and_preview_from_the_model(client, tenant, app, mirror, pg):
    await _catalog(client, tenant)
    await rebuild_model(app, pg, tenant.id)
    await add_marker(
        app,
        tenant.id,
        kv=["brand=Old"],
        present=["brand", "price"],
        filled=["brand", "price"],
        nk=["price"],
        nv=[5.0],
    )
    response = await client.get(
        "/v/pc/0/", params={"filters": "brand", "brand": "Old"}, headers=tenant.viewer
    )
    assert response.status_code == 200, response.text
    assert response.json()["sku_count"] == 21
    response = await client.post(
        "/api/product-segments/preview/",
        json={"field": "price", "op": "between", "value": [3, 6]},
        headers=tenant.viewer,
    )
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 5  # prices 3..6 and the marker's 5
    assert response.json()["skus"] == ["S3", "S4", "S5", "S6"]  # Postgres has no marker


async def test_rebuild_command(client, tenant, app, mirror, pg):
    await _catalog(client, tenant, n=30)
    await rebuild_model(app, pg, tenant.id)
    await add_marker(app, tenant.id)
    assert await _count(client, tenant) == 31
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "mirror", "rebuild", "--tenant", tenant.slug],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        timeout=120,
        check=True,
    )
    report = orjson.loads(out.stdout.splitlines()[-1])
    assert report["rebuilt"][0]["products"] == 30
    answers = mirror.answers
    assert await _count(client, tenant) == 30  # the new generation, without the marker
    assert mirror.answers == answers + 1


async def test_model_behind_retention_needs_a_rebuild(client, tenant, app, pg):
    from app.mirror.apply import NEEDS_REBUILD, apply_batch

    await _catalog(client, tenant)
    await rebuild_model(app, pg, tenant.id)
    # no worker applies the next write (this connection holds the tenant's mirror lock; it can
    # take it again itself)
    await pg.execute(f"SELECT pg_advisory_lock({Lock.MIRROR.key('$1')})", tenant.id)
    try:
        await bulk(client, tenant, [{"sku": "R1", "brand": "x"}])
        # the entries after the watermark were pruned
        await pg.execute(
            "UPDATE product_change_seqs SET pruned_through = last_seq WHERE tenant_id = $1",
            tenant.id,
        )
        assert await apply_batch(pg, app.state.clickhouse, tenant.id) == NEEDS_REBUILD
    finally:
        await pg.execute(f"SELECT pg_advisory_unlock({Lock.MIRROR.key('$1')})", tenant.id)
