"""One rule for null in PATCH bodies (docs/contract.md, "PATCH and null"): an absent field is
unchanged, null clears a field the PATCH schema declares nullable, and null for any other field
is a 422 naming it. Checked on every PATCH route of the app, and on the stored outcome."""

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import MISSING

# every PATCH route's nullable fields: what null clears
NULLABLE = {
    "/api/pim/products/{product_id}/": {"variation_of"},
    "/api/pim/categories/{category_id}/": {"parent_id"},
    "/api/pim/views/{view_id}/": set(),
    "/api/product-segments/{segment_id}/": set(),
    "/api/pim/webhooks/{webhook_id}/": {"filter"},
}


def _patch_routes(app) -> dict[str, APIRoute]:
    routes = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and "PATCH" in route.methods:
            routes[context.path] = route
    return routes


def test_every_patch_model_leaves_absent_fields_unset_and_declares_its_nullable_ones(app):
    routes = _patch_routes(app)
    assert set(routes) == set(NULLABLE), "a new PATCH route: add it here and to the tests below"
    spec = app.openapi()
    for path, route in routes.items():
        model = route.body_field.field_info.annotation  # type: ignore[union-attr]
        for name, field in model.model_fields.items():
            # absent is MISSING, never None: None is the client's null, never a default
            assert field.default is MISSING, (path, name)
        ref = spec["paths"][path]["patch"]["requestBody"]["content"]["application/json"]["schema"]
        schema = spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
        nullable = {
            name
            for name, prop in schema["properties"].items()
            if {"type": "null"} in prop.get("anyOf", [])
        }
        assert nullable == NULLABLE[path], path
        assert "required" not in schema, path


async def _null_is_422(client, headers, path: str, fields: list[str]) -> None:
    for name in fields:
        response = await client.patch(path, headers=headers, json={name: None})
        assert response.status_code == 422, (path, name, response.text)
        assert response.json()["code"] == "validation_error"
        assert response.json()["param"] == name


async def test_product_patch(client, tenant):
    category = (
        await client.post("/api/pim/categories/", headers=tenant.editor, json={"name": "Lamps"})
    ).json()
    parent = await client.post(
        "/api/pim/products/", headers=tenant.editor, json={"sku": "P", "name": "Parent"}
    )
    assert parent.status_code == 201
    created = await client.post(
        "/api/pim/products/",
        headers=tenant.editor,
        json={
            "sku": "V",
            "name": "Lamp",
            "categories": [category["id"]],
            "variation_of": "P",
            "variation_attributes": ["color"],
            "data": {"color": "red"},
        },
    )
    assert created.status_code == 201, created.text
    path = created.headers["Location"]
    before = created.json()
    await _null_is_422(
        client,
        tenant.editor,
        path,
        ["name", "status", "categories", "variation_attributes", "data"],
    )
    after = (await client.get(path, headers=tenant.viewer)).json()
    assert after == before  # no refused null changed anything

    # an absent field is unchanged; null clears the nullable one
    cleared = await client.patch(path, headers=tenant.editor, json={"variation_of": None})
    assert cleared.status_code == 200
    assert cleared.json()["variation_of"] is None
    assert cleared.json()["categories"] == [category["id"]]
    assert cleared.json()["name"] == "Lamp"
    # the way to empty a list is [], and a data key is removed by null inside the merge patch
    emptied = await client.patch(
        path, headers=tenant.editor, json={"categories": [], "data": {"color": None}}
    )
    assert emptied.status_code == 200
    stored = (await client.get(path, headers=tenant.viewer)).json()
    assert stored["categories"] == [] and stored["data"] == {}
    assert stored["variation_attributes"] == ["color"]


async def test_category_patch(client, tenant):
    root = (
        await client.post("/api/pim/categories/", headers=tenant.editor, json={"name": "Home"})
    ).json()
    child = await client.post(
        "/api/pim/categories/",
        headers=tenant.editor,
        json={"name": "Lamps", "parent_id": root["id"], "labels": {"fr": "Lampes"}, "position": 3},
    )
    path = child.headers["Location"]
    await _null_is_422(client, tenant.editor, path, ["name", "labels", "position"])
    assert (await client.get(path, headers=tenant.viewer)).json() == child.json()
    moved = await client.patch(path, headers=tenant.editor, json={"parent_id": None})
    assert moved.status_code == 200
    assert moved.json()["parent_id"] is None
    assert moved.json()["path"] == "Lamps"
    assert moved.json()["labels"] == {"fr": "Lampes"} and moved.json()["position"] == 3


async def test_view_patch(client, tenant):
    created = await client.post(
        "/api/pim/views/",
        headers=tenant.editor,
        json={"name": "Web", "attributes": ["color"], "is_default": True},
    )
    path = created.headers["Location"]
    await _null_is_422(client, tenant.editor, path, ["name", "attributes", "is_default"])
    assert (await client.get(path, headers=tenant.viewer)).json() == created.json()
    renamed = await client.patch(path, headers=tenant.editor, json={"name": "Shop"})
    assert renamed.json() == {**created.json(), "name": "Shop"}


async def test_segment_patch(client, tenant):
    definition = {"match": "all", "conditions": []}
    created = await client.post(
        "/api/product-segments/",
        headers=tenant.editor,
        json={"name": "All", "description": "every product", "definition": definition},
    )
    path = created.headers["Location"]
    # `definition: null` used to be a 400 although the document allowed it: now the document
    # refuses it and so does the API, with a 422
    await _null_is_422(client, tenant.editor, path, ["name", "description", "definition"])
    stored = (await client.get(path, headers=tenant.viewer)).json()
    assert stored["definition"] == created.json()["definition"]
    assert stored["description"] == "every product"
    described = await client.patch(path, headers=tenant.editor, json={"description": ""})
    assert described.status_code == 200
    assert described.json()["description"] == "" and described.json()["name"] == "All"


async def test_webhook_patch(client, tenant):
    created = await client.post(
        "/api/pim/webhooks/",
        headers=tenant.admin,
        json={
            "url": "http://127.0.0.1:9/hook",
            "events": ["product.created"],
            "filter": {"field": "status", "op": "eq", "value": "active"},
        },
    )
    assert created.status_code == 201, created.text
    path = created.headers["Location"]
    await _null_is_422(client, tenant.admin, path, ["url", "events", "active"])
    assert (await client.get(path, headers=tenant.admin)).json()["filter"] is not None
    cleared = await client.patch(path, headers=tenant.admin, json={"filter": None})
    assert cleared.status_code == 200 and cleared.json()["filter"] is None
    assert (await client.get(path, headers=tenant.admin)).json()["filter"] is None


@pytest.mark.parametrize("path", sorted(NULLABLE))
async def test_an_empty_patch_changes_nothing(client, tenant, path):
    creates = {
        "/api/pim/products/{product_id}/": ("/api/pim/products/", {"sku": "S", "name": "N"}),
        "/api/pim/categories/{category_id}/": ("/api/pim/categories/", {"name": "N"}),
        "/api/pim/views/{view_id}/": ("/api/pim/views/", {"name": "N"}),
        "/api/product-segments/{segment_id}/": (
            "/api/product-segments/",
            {"name": "N", "definition": {"match": "all", "conditions": []}},
        ),
        "/api/pim/webhooks/{webhook_id}/": (
            "/api/pim/webhooks/",
            {"url": "http://127.0.0.1:9/hook", "events": ["product.created"]},
        ),
    }
    url, body = creates[path]
    headers = tenant.admin  # webhooks are admin only; the rest take an editor or better
    created = await client.post(url, headers=headers, json=body)
    assert created.status_code == 201, created.text
    patched = await client.patch(created.headers["Location"], headers=headers, json={})
    assert patched.status_code == 200
    ignored = {"updated_at", "secret"}  # a webhook's secret is shown in its creation answer only
    assert {k: v for k, v in patched.json().items() if k not in ignored} == {
        k: v for k, v in created.json().items() if k not in ignored
    }
