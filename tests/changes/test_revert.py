"""Reverts: a product to an entry, an import and a bulk request undone (issue 15, item 3)."""

import uuid

import pytest

from tests.changes.test_write_paths import SCHEMA, changes
from tests.imports.conftest import import_file


@pytest.fixture
async def shop(client, tenant):
    response = await client.put("/api/pim/schema/", json=SCHEMA, headers=tenant.admin)
    assert response.status_code == 200, response.text
    return tenant


def _product(body: dict) -> dict:
    """A product without its timestamps: what a revert must restore exactly."""
    return {k: v for k, v in body.items() if k not in ("created_at", "updated_at")}


async def get(client, tenant, product_id: int) -> dict:
    response = await client.get(f"/api/pim/products/{product_id}/", headers=tenant.viewer)
    assert response.status_code == 200, response.text
    return _product(response.json())


async def test_revert_product_to_an_entry_and_back_from_deletion(client, shop):
    category = (
        await client.post("/api/pim/categories/", json={"name": "Shoes"}, headers=shop.editor)
    ).json()
    created = await client.post(
        "/api/pim/products/",
        json={
            "sku": "R-1",
            "name": "v1",
            "categories": [category["id"]],
            "data": {"brand": "Nike", "price": 10, "tags": ["a"]},
        },
        headers=shop.editor,
    )
    product_id = created.json()["id"]
    after_create = _product(created.json())
    await client.patch(
        f"/api/pim/products/{product_id}/",
        json={"name": "v2", "status": "inactive", "data": {"price": 12, "tags": None}},
        headers=shop.editor,
    )
    after_patch = await get(client, shop, product_id)
    await client.patch(
        f"/api/pim/products/{product_id}/",
        json={"data": {"brand": "Puma", "price": 13}},
        headers=shop.editor,
    )
    url = f"/api/pim/products/{product_id}/revert/"
    # viewers read, editors revert
    assert (await client.post(url, json={"seq": 1}, headers=shop.viewer)).status_code == 403

    response = await client.post(url, json={"seq": 1}, headers=shop.editor)
    assert response.status_code == 200, response.text
    assert _product(response.json()) == after_create
    assert await get(client, shop, product_id) == after_create
    # the revert is logged like any write
    last = (await changes(client, shop, after=3))[0]
    assert last["op"] == "updated" and last["changes"]["price"] == {"old": 13, "new": 10}

    assert (await client.post(url, json={"seq": 2}, headers=shop.editor)).status_code == 200
    assert await get(client, shop, product_id) == after_patch

    # deleted: it comes back with its id and SKU
    assert (
        await client.delete(f"/api/pim/products/{product_id}/", headers=shop.editor)
    ).status_code == 204
    response = await client.post(url, json={"seq": 3}, headers=shop.editor)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == product_id
    assert await get(client, shop, product_id) == {
        **after_patch,
        "data": {"brand": "Puma", "price": 13},
    }
    # an entry of another product, an unknown entry
    assert (await client.post(url, json={"seq": 999}, headers=shop.editor)).status_code == 404


async def test_revert_deleted_product_whose_sku_was_taken(client, shop):
    first = (
        await client.post("/api/pim/products/", json={"sku": "S", "name": "a"}, headers=shop.editor)
    ).json()
    await client.delete(f"/api/pim/products/{first['id']}/", headers=shop.editor)
    await client.post("/api/pim/products/", json={"sku": "S", "name": "b"}, headers=shop.editor)
    response = await client.post(
        f"/api/pim/products/{first['id']}/revert/", json={"seq": 1}, headers=shop.editor
    )
    assert response.status_code == 409, response.text


async def _catalog(client, tenant) -> dict[str, dict]:
    body = (
        await client.get("/api/pim/products/", params={"page_size": 200}, headers=tenant.viewer)
    ).json()
    return {p["sku"]: _product(p) for p in body["results"]}


async def test_bulk_revert_restores_and_respects_later_edits(client, shop):
    await client.post(
        "/api/pim/products/bulk/",
        json={
            "products": [
                {"sku": "K-1", "name": "One", "brand": "Nike", "price": 1},
                {"sku": "K-2", "name": "Two", "brand": "Puma", "price": 2},
                {"sku": "K-3", "name": "Three", "brand": "Vans", "price": 3},
            ]
        },
        headers=shop.editor,
    )
    before = await _catalog(client, shop)
    bulk = await client.post(
        "/api/pim/products/bulk/",
        json={
            "products": [
                {"sku": "K-1", "brand": "Adidas", "price": 10},
                {"sku": "K-2", "price": 20, "tags": ["new"]},
                {"sku": "K-3", "name": "Three"},  # no-op
                {"sku": "K-4", "name": "Four"},
                {"sku": "K-5", "name": "Five"},
            ]
        },
        headers=shop.editor,
    )
    request_id = bulk.json()["request_id"]
    assert request_id
    # later writes: K-1's price, K-5 edited after its creation
    catalog_now = await _catalog(client, shop)
    await client.patch(
        f"/api/pim/products/{catalog_now['K-1']['id']}/",
        json={"data": {"price": 11}},
        headers=shop.editor,
    )
    await client.patch(
        f"/api/pim/products/{catalog_now['K-5']['id']}/", json={"name": "5"}, headers=shop.editor
    )
    url = f"/api/pim/products/bulk/{request_id}/revert/"
    assert (await client.post(url, headers=shop.viewer)).status_code == 403
    response = await client.post(url, headers=shop.editor)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reverted"] == 3  # K-1 (brand), K-2, K-4 deleted
    assert sorted((s["sku"], s["field"]) for s in body["skipped"]) == [
        ("K-1", "price"),
        ("K-5", "name"),
    ]
    after = await _catalog(client, shop)
    assert after["K-2"] == before["K-2"]
    assert after["K-3"] == before["K-3"]
    assert after["K-1"]["data"] == {"brand": "Nike", "price": 11}
    assert "K-4" not in after and after["K-5"]["name"] == "5"

    unknown = await client.post(
        "/api/pim/products/bulk/no-such-request/revert/", headers=shop.editor
    )
    assert unknown.status_code == 404


async def test_import_revert_restores_the_exact_previous_state(client, shop, worker):
    await client.post(
        "/api/pim/products/bulk/",
        json={
            "products": [
                {"sku": "I-1", "name": "One", "brand": "Nike", "price": 1},
                {"sku": "I-2", "name": "Two", "brand": "Puma", "price": 2, "tags": ["a"]},
            ]
        },
        headers=shop.editor,
    )
    before = await _catalog(client, shop)
    feed = b"sku,name,brand,price\nI-1,One,Adidas,1\nI-2,Deux,Puma,5\nI-3,Three,Vans,3\n"
    mapping = {"sku": "sku", "name": "name", "brand": "brand", "price": "price"}
    schema = [{"name": "brand", "type": "string"}, {"name": "price", "type": "number"}]
    job, done = await import_file(client, shop.editor, feed, mapping=mapping, schema=schema)
    assert done["status"] == "done", done
    job_id = job["job_id"]
    entries = await changes(client, shop, after=2)
    assert [(e["op"], e["sku"]) for e in entries] == [
        ("created", "I-3"),
        ("updated", "I-1"),
        ("updated", "I-2"),
    ]
    assert all(e["import_job_id"] == job_id for e in entries)
    assert all(e["actor"] == {"type": "import", "id": job_id, "name": None} for e in entries)
    assert entries[1]["changes"] == {"brand": {"old": "Nike", "new": "Adidas"}}

    response = await client.post(f"/api/pim/import/{job_id}/revert/", headers=shop.editor)
    assert response.status_code == 200, response.text
    assert response.json() == {"reverted": 3, "skipped": []}
    assert await _catalog(client, shop) == before
    # reverting again changes nothing
    again = await client.post(f"/api/pim/import/{job_id}/revert/", headers=shop.editor)
    assert again.json() == {"reverted": 0, "skipped": []}
    assert (
        await client.post(f"/api/pim/import/{uuid.uuid4()}/revert/", headers=shop.editor)
    ).status_code == 404
