"""Another tenant's catalog objects are 404 on every route of the catalog, and never listed."""


async def test_cross_tenant_access_is_404_everywhere(client, tenant, other_tenant):
    await client.put(
        "/api/pim/schema/", json={"fields": [{"name": "brand"}]}, headers=tenant.editor
    )
    category = (
        await client.post("/api/pim/categories/", json={"name": "Mine"}, headers=tenant.editor)
    ).json()
    view = (
        await client.post(
            "/api/pim/views/", json={"name": "mine", "attributes": ["brand"]}, headers=tenant.editor
        )
    ).json()
    product = (
        await client.post(
            "/api/pim/products/",
            json={
                "sku": "SECRET",
                "name": "Secret",
                "categories": [category["id"]],
                "data": {"brand": "Mine"},
            },
            headers=tenant.editor,
        )
    ).json()
    h = other_tenant.admin
    for method, url, body in [
        ("GET", f"/api/pim/products/{product['id']}/", None),
        ("PATCH", f"/api/pim/products/{product['id']}/", {"name": "stolen"}),
        ("DELETE", f"/api/pim/products/{product['id']}/", None),
        ("GET", f"/api/pim/categories/{category['id']}/", None),
        ("PATCH", f"/api/pim/categories/{category['id']}/", {"name": "stolen"}),
        ("DELETE", f"/api/pim/categories/{category['id']}/", None),
        ("GET", f"/api/pim/views/{view['id']}/", None),
        ("PATCH", f"/api/pim/views/{view['id']}/", {"name": "stolen"}),
        ("DELETE", f"/api/pim/views/{view['id']}/", None),
    ]:
        response = await client.request(method, url, json=body, headers=h)
        assert response.status_code == 404, (method, url, response.status_code)

    # lists, facets and filters of the other tenant never show tenant A's data
    assert (await client.get("/api/pim/products/", headers=h)).json()["count"] == 0
    assert (await client.get("/api/pim/products/", params={"sku": "SECRET"}, headers=h)).json()[
        "count"
    ] == 0
    assert (
        await client.get("/api/pim/products/", params={"category": category["id"]}, headers=h)
    ).json()["count"] == 0
    assert (await client.get("/api/pim/categories/", headers=h)).json() == {
        "results": [],
        "next_cursor": None,
    }
    assert (await client.get("/api/pim/views/", headers=h)).json()["results"] == []
    assert (await client.get("/api/pim/schema/", headers=h)).json()["fields"] == []
    assert (await client.get("/api/pim/facets/", headers=h)).json()["total"] == 0
    # writes cannot reach across either: another tenant's category id is unknown, the same SKU is a new product
    stolen = await client.post(
        "/api/pim/products/",
        json={"sku": "SECRET", "name": "x", "categories": [category["id"]]},
        headers=h,
    )
    assert stolen.status_code == 400
    bulk = await client.post(
        "/api/pim/products/bulk/",
        json={"products": [{"sku": "SECRET", "brand": "theirs"}]},
        headers=h,
    )
    assert bulk.json()["created"] == 1
    child = await client.post(
        "/api/pim/categories/", json={"name": "c", "parent_id": category["id"]}, headers=h
    )
    assert child.status_code == 400
    mine = (await client.get(f"/api/pim/products/{product['id']}/", headers=tenant.viewer)).json()
    assert mine["name"] == "Secret" and mine["data"] == {"brand": "Mine"}
