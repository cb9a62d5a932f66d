"""The stream's ordering: a consumer reading `after=<seq>` never misses an entry (issue 15, item 2).

Sequence numbers come from the tenant's counter row, which the writing transaction keeps locked
until it ends: a second writer of the tenant cannot take a number (nor commit) before the first
one commits, so numbers are visible in order and the classic outbox gap (seq 8 committed, seq 7
still in flight, a reader moving past 7) cannot happen.
"""

import asyncio
import random

import asyncpg
import pytest

from app.db import pg_dsn
from tests.changes.test_write_paths import SCHEMA, changes
from tests.conftest import wait_for


@pytest.fixture
async def shop(client, tenant):
    response = await client.put("/api/pim/schema/", json=SCHEMA, headers=tenant.admin)
    assert response.status_code == 200, response.text
    return tenant


async def test_a_lower_seq_committing_later_is_not_skipped(client, shop, settings):
    bulk = await client.post(
        "/api/pim/products/bulk/",
        json={"products": [{"sku": "O-1", "name": "a"}, {"sku": "O-2", "name": "b"}]},
        headers=shop.editor,
    )
    assert bulk.status_code == 200
    ids = {
        p["sku"]: p["id"]
        for p in (await client.get("/api/pim/products/", headers=shop.viewer)).json()["results"]
    }
    first = await asyncpg.connect(pg_dsn(settings.database_url))
    second = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        # the first writer takes seq 3 and stays open
        first_tx = first.transaction()
        await first_tx.start()
        await first.execute("UPDATE products SET name = 'first' WHERE id = $1", ids["O-1"])
        second_pid = await second.fetchval("SELECT pg_backend_pid()")

        async def second_writer() -> None:
            async with second.transaction():
                await second.execute(
                    "UPDATE products SET name = 'second' WHERE id = $1", ids["O-2"]
                )

        second_task = asyncio.create_task(second_writer())

        async def second_is_waiting() -> bool:
            return (
                await first.fetchval(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                    second_pid,
                )
                or second_task.done()
            )

        await wait_for(second_is_waiting, timeout=30, interval=0.02)
        assert not second_task.done(), "the second writer committed before the first one"
        # a consumer polling now sees neither: nothing it could skip past
        assert await changes(client, shop, after=2) == []
        await first_tx.commit()
        await asyncio.wait_for(second_task, timeout=30)
    finally:
        await first.close()
        await second.close()
    entries = await changes(client, shop, after=2)
    assert [(e["seq"], e["sku"], e["changes"]["name"]["new"]) for e in entries] == [
        (3, "O-1", "first"),
        (4, "O-2", "second"),
    ]


def _state(product: dict) -> dict:
    """A product as the change log describes it (its built-ins and data keys)."""
    state = {
        "name": product["name"],
        "status": product["status"],
        "categories": product["categories"],
        "variation_attributes": product["variation_attributes"],
        **product["data"],
    }
    if product["variation_of"] is not None:
        state["variation_of"] = product["variation_of"]
    return state


async def test_consumer_copy_matches_catalog_with_8_concurrent_writers(client, shop):
    skus = [f"W-{i}" for i in range(40)]
    writers_done = asyncio.Event()
    rng = random.Random(15)

    async def writer(n: int) -> None:
        local = random.Random(n)
        for step in range(25):
            action = local.random()
            if action < 0.4:
                batch = local.sample(skus, 6)
                response = await client.post(
                    "/api/pim/products/bulk/",
                    json={
                        "products": [
                            {"sku": s, "name": f"{s}-{n}-{step}", "price": local.randint(1, 5)}
                            for s in batch
                        ]
                    },
                    headers=shop.editor,
                )
            else:
                listing = await client.get(
                    "/api/pim/products/",
                    params={"sku": local.choice(skus)},
                    headers=shop.viewer,
                )
                found = listing.json()["results"]
                if not found:
                    continue
                url = f"/api/pim/products/{found[0]['id']}/"
                if action < 0.75:
                    response = await client.patch(
                        url,
                        json={"data": {"brand": local.choice(["a", "b", None]), "price": step}},
                        headers=shop.editor,
                    )
                else:
                    response = await client.delete(url, headers=shop.editor)
            # a write that lost a race to a concurrent one (deleted meanwhile, deadlock retry) is fine
            assert response.status_code in (200, 204, 404, 503), response.text

    copy: dict[int, dict] = {}
    after = 0
    polls = 0

    async def consume_available() -> int:
        nonlocal after
        read = 0
        while True:
            page = (
                await client.get(
                    "/api/pim/changes/", params={"after": after, "limit": 50}, headers=shop.viewer
                )
            ).json()
            for entry in page["results"]:
                assert entry["seq"] == after + 1, "the stream skipped a number"
                after = entry["seq"]
                if entry["op"] == "deleted":
                    del copy[entry["product_id"]]
                    continue
                state = copy.setdefault(entry["product_id"], {})
                for key, change in entry["changes"].items():
                    if change["new"] is None:
                        state.pop(key, None)
                    else:
                        state[key] = change["new"]
            read += len(page["results"])
            if not page["results"]:
                return read

    async def consumer() -> None:
        nonlocal polls
        while not writers_done.is_set():
            await consume_available()
            polls += 1
            await asyncio.sleep(
                rng.random() / 50
            )  # pacing of a polling client, not a synchronisation
        await consume_available()

    consuming = asyncio.create_task(consumer())
    await asyncio.gather(*(writer(n) for n in range(8)))
    writers_done.set()
    await consuming
    assert polls > 1
    catalog = (
        await client.get("/api/pim/products/", params={"page_size": 200}, headers=shop.viewer)
    ).json()["results"]
    assert {p["id"]: _state(p) for p in catalog} == copy
    assert after > 40
