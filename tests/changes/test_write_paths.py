"""Every write path appends exactly the expected change entries (issue 15, item 1)."""

import pytest

SCHEMA = {
    "fields": [
        {"name": "brand", "type": "string"},
        {"name": "price", "type": "number"},
        {"name": "tags", "type": "array"},
    ]
}


@pytest.fixture
async def shop(client, tenant):
    response = await client.put("/api/pim/schema/", json=SCHEMA, headers=tenant.admin)
    assert response.status_code == 200, response.text
    return tenant


async def changes(client, tenant, after: int = 0, **params) -> list[dict]:
    response = await client.get(
        "/api/pim/changes/", params={"after": after, "limit": 1000, **params}, headers=tenant.viewer
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def test_post_patch_delete(client, shop):
    created = await client.post(
        "/api/pim/products/",
        json={"sku": "A-1", "name": "Shoe", "data": {"brand": "Nike", "price": 10}},
        headers={**shop.editor, "X-Request-ID": "req-post-1"},
    )
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]
    patched = await client.patch(
        f"/api/pim/products/{product_id}/",
        json={"data": {"price": 12, "brand": None}},
        headers={**shop.editor, "X-Request-ID": "req-patch-1"},
    )
    assert patched.status_code == 200, patched.text
    # a PATCH that changes nothing logs nothing
    same = await client.patch(
        f"/api/pim/products/{product_id}/", json={"data": {"price": 12}}, headers=shop.editor
    )
    assert same.status_code == 200
    assert (
        await client.delete(f"/api/pim/products/{product_id}/", headers=shop.editor)
    ).status_code == 204

    entries = await changes(client, shop)
    assert [(e["seq"], e["op"], e["sku"], e["product_id"]) for e in entries] == [
        (1, "created", "A-1", product_id),
        (2, "updated", "A-1", product_id),
        (3, "deleted", "A-1", product_id),
    ]
    create, patch, delete = entries
    assert create["changes"] == {
        "name": {"old": None, "new": "Shoe"},
        "status": {"old": None, "new": "active"},
        "categories": {"old": None, "new": []},
        "variation_attributes": {"old": None, "new": []},
        "brand": {"old": None, "new": "Nike"},
        "price": {"old": None, "new": 10},
    }
    assert create["request_id"] == "req-post-1"
    assert create["actor"]["type"] == "api_key" and create["actor"]["name"] == "editor"
    assert isinstance(create["actor"]["id"], int)
    assert create["import_job_id"] is None
    assert patch["changes"] == {
        "price": {"old": 10, "new": 12},
        "brand": {"old": "Nike", "new": None},
    }
    assert patch["request_id"] == "req-patch-1"
    # a delete keeps the last state
    assert delete["changes"] == {
        "name": {"old": "Shoe", "new": None},
        "status": {"old": "active", "new": None},
        "categories": {"old": [], "new": None},
        "variation_attributes": {"old": [], "new": None},
        "price": {"old": 12, "new": None},
    }


async def test_bulk_creates_updates_and_no_ops(client, shop):
    first = await client.post(
        "/api/pim/products/bulk/",
        json={
            "products": [
                {"sku": "B-1", "name": "One", "brand": "Nike", "price": 1},
                {"sku": "B-2", "name": "Two", "brand": "Puma", "tags": ["x"]},
            ]
        },
        headers={**shop.editor, "X-Request-ID": "bulk-1"},
    )
    assert first.status_code == 200, first.text
    assert first.json()["request_id"] == "bulk-1" == first.headers["x-request-id"]
    second = await client.post(
        "/api/pim/products/bulk/",
        json={
            "products": [
                {"sku": "B-1", "name": "One", "brand": "Nike", "price": 1},  # no-op
                {"sku": "B-2", "brand": "Adidas", "tags": ["x", "y"]},  # update
                {"sku": "B-3", "name": "Three"},  # create
                {"sku": "", "name": "invalid"},  # error: nothing logged
            ]
        },
        headers={**shop.editor, "X-Request-ID": "bulk-2"},
    )
    assert second.status_code == 200, second.text
    entries = await changes(client, shop)
    summary = [(e["seq"], e["op"], e["sku"], e["request_id"]) for e in entries]
    assert summary == [
        (1, "created", "B-1", "bulk-1"),
        (2, "created", "B-2", "bulk-1"),
        (3, "created", "B-3", "bulk-2"),
        (4, "updated", "B-2", "bulk-2"),
    ]
    assert entries[3]["changes"] == {
        "brand": {"old": "Puma", "new": "Adidas"},
        "tags": {"old": ["x"], "new": ["x", "y"]},
    }
    # an unchanged re-send writes no entries
    again = await client.post(
        "/api/pim/products/bulk/",
        json={"products": [{"sku": "B-1", "name": "One", "brand": "Nike", "price": 1}]},
        headers=shop.editor,
    )
    assert again.status_code == 200
    assert len(await changes(client, shop)) == 4
    # filters
    assert [e["seq"] for e in await changes(client, shop, op="updated")] == [4]
    assert [e["seq"] for e in await changes(client, shop, field="tags")] == [2, 4]
    assert [e["seq"] for e in await changes(client, shop, after=2)] == [3, 4]


async def test_category_delete_logs_the_products_it_changes(client, shop):
    category = (
        await client.post("/api/pim/categories/", json={"name": "Shoes"}, headers=shop.editor)
    ).json()
    other = (
        await client.post("/api/pim/categories/", json={"name": "Hats"}, headers=shop.editor)
    ).json()
    await client.post(
        "/api/pim/products/bulk/",
        json={
            "products": [
                {"sku": "C-1", "name": "In", "categories": [category["id"], other["id"]]},
                {"sku": "C-2", "name": "Out", "categories": [other["id"]]},
            ]
        },
        headers=shop.editor,
    )
    response = await client.delete(
        f"/api/pim/categories/{category['id']}/",
        headers={**shop.editor, "X-Request-ID": "cat-del"},
    )
    assert response.status_code == 204, response.text
    entries = await changes(client, shop, after=2)
    assert [(e["op"], e["sku"], e["request_id"]) for e in entries] == [
        ("updated", "C-1", "cat-del")
    ]
    assert entries[0]["changes"] == {
        "categories": {"old": [category["id"], other["id"]], "new": [other["id"]]}
    }


async def test_token_actor(client, shop, settings):
    from app.auth.service import Role, issue_token

    token = issue_token(settings, tenant_id=shop.id, role=Role.editor, subject="alice@example.com")
    response = await client.post(
        "/api/pim/products/",
        json={"sku": "T-1", "name": "By token"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    (entry,) = await changes(client, shop)
    assert entry["actor"] == {"type": "token", "id": "alice@example.com", "name": None}


async def test_history_newest_first_and_for_deleted_products(client, shop):
    product = (
        await client.post(
            "/api/pim/products/", json={"sku": "H-1", "name": "v0"}, headers=shop.editor
        )
    ).json()
    for i in range(1, 5):
        await client.patch(
            f"/api/pim/products/{product['id']}/", json={"name": f"v{i}"}, headers=shop.editor
        )
    await client.delete(f"/api/pim/products/{product['id']}/", headers=shop.editor)
    url = f"/api/pim/products/{product['id']}/history/"
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(url, params=params, headers=shop.viewer)).json()
        seen += [e["seq"] for e in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [6, 5, 4, 3, 2, 1]
    assert (await client.get(url, headers=shop.viewer)).json()["results"][0]["op"] == "deleted"
    assert (
        await client.get("/api/pim/products/999999999/history/", headers=shop.viewer)
    ).status_code == 404
    assert (await client.get(url, params={"cursor": "x"}, headers=shop.viewer)).status_code == 400
