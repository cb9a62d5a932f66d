"""A SKU inserted by a concurrent writer after a batch looked its SKUs up (app.products.upsert:
`write_valid_rows`). The batch's first INSERT has no ON CONFLICT and fails on it; the batch rolls
back to its savepoint and writes that SKU as an update: the stored values, the counts and the
change log are those of the two writes one after the other."""

import pytest

from app.db import create_engine, create_sessionmaker, driver_connection
from app.products import upsert
from app.products.upsert import UpsertRow, write_valid_rows
from tests.changes.test_write_paths import SCHEMA, changes


@pytest.fixture
async def shop(client, tenant):
    response = await client.put("/api/pim/schema/", json=SCHEMA, headers=tenant.admin)
    assert response.status_code == 200, response.text
    return tenant


@pytest.mark.parametrize("gate", [None, "test-gate:1"])  # the bulk endpoint's, an import batch's
async def test_sku_inserted_after_the_lookup_is_updated(client, shop, settings, monkeypatch, gate):
    first = await client.post(
        "/api/pim/products/",
        json={"sku": "A-1", "name": "Shoe", "data": {"brand": "Nike", "price": 10}},
        headers=shop.editor,
    )
    assert first.status_code == 201, first.text
    answers = []
    insert = upsert._insert

    async def recorded(*args, **kwargs):
        answers.append(await insert(*args, **kwargs))
        return answers[-1]

    monkeypatch.setattr(upsert, "_insert", recorded)
    rows = {
        sku: UpsertRow.of_valid_item(index, item)
        for index, (sku, item) in enumerate(
            [
                ("A-1", {"sku": "A-1", "price": 12}),
                ("A-2", {"sku": "A-2", "name": "Boot", "brand": "Puma", "tags": ["x"]}),
            ]
        )
    }
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            session.info["tenant_id"] = shop.id
            conn = await driver_connection(session)
            # the lookup ran before A-1 was inserted: both SKUs look new
            result = await write_valid_rows(
                conn, shop.id, rows, existing=set(), max_data_bytes=100_000, gate=gate
            )
    finally:
        await engine.dispose()

    assert answers == [None, {"A-2"}]  # the plain INSERT failed; the second one skips conflicts
    assert (result.created, result.updated, result.errors) == (1, 1, [])
    listed = await client.get("/api/pim/products/", headers=shop.viewer)
    stored = {p["sku"]: (p["name"], p["data"]) for p in listed.json()["results"]}
    assert stored == {
        "A-1": ("Shoe", {"brand": "Nike", "price": 12}),
        "A-2": ("Boot", {"brand": "Puma", "tags": ["x"]}),
    }
    logged = [(c["op"], c["sku"], c["changes"]) for c in await changes(client, shop)]
    created = {"status": {"old": None, "new": "active"}, "categories": {"old": None, "new": []}}
    created["variation_attributes"] = {"old": None, "new": []}
    assert logged == [
        (
            "created",
            "A-1",
            {
                "name": {"old": None, "new": "Shoe"},
                **created,
                "brand": {"old": None, "new": "Nike"},
                "price": {"old": None, "new": 10},
            },
        ),
        (
            "created",
            "A-2",
            {
                "name": {"old": None, "new": "Boot"},
                **created,
                "brand": {"old": None, "new": "Puma"},
                "tags": {"old": None, "new": ["x"]},
            },
        ),
        ("updated", "A-1", {"price": {"old": 10, "new": 12}}),  # the INSERT goes first
    ]
