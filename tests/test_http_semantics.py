"""HTTP semantics (issue 17, "HTTP"): Location on 201, Allow on 405, HEAD on every GET, 405 for
fixed path words, 415 for a body that is not declared JSON, CORS off unless configured."""

import httpx
from fastapi.routing import iter_route_contexts

from app.main import create_app
from tests.imports.conftest import upload

PRODUCTS = "/api/pim/products/"
CATEGORIES = "/api/pim/categories/"


async def _created_then_read(client, headers, url, body, read_headers):
    created = await client.post(url, json=body, headers=headers)
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location.startswith("/") and "://" not in location
    return created, location, await client.get(location, headers=read_headers)


async def test_every_201_says_where_the_object_is(client, tenant):
    cases = [
        (PRODUCTS, {"sku": "L-1", "name": "located"}),
        (CATEGORIES, {"name": "Located"}),
        ("/api/pim/views/", {"name": "located", "attributes": ["brand"]}),
        (
            "/api/product-segments/",
            {
                "name": "located",
                "definition": {
                    "match": "all",
                    "conditions": [{"field": "sku", "op": "eq", "value": "x"}],
                },
            },
        ),
    ]
    for url, body in cases:
        created, location, read = await _created_then_read(
            client, tenant.editor, url, body, tenant.viewer
        )
        assert location == f"{url}{created.json()['id']}/"
        assert read.status_code == 200 and read.json()["id"] == created.json()["id"], url
    key = await client.post(
        "/api/auth/api-keys/", json={"name": "k", "role": "viewer"}, headers=tenant.admin
    )
    assert key.status_code == 201
    assert key.headers["location"] == f"/api/auth/api-keys/{key.json()['id']}/"
    job = await upload(client, tenant.editor, b"sku,name\nA,a\n")
    assert job.status_code == 201, job.text
    assert job.headers["location"] == f"/api/pim/import/{job.json()['job_id']}/"
    read = await client.get(job.headers["location"], headers=tenant.viewer)
    assert read.status_code == 200 and read.json()["job_id"] == job.json()["job_id"]


def test_every_201_documents_location(app):
    created = [
        operation["responses"]["201"]
        for operations in app.openapi()["paths"].values()
        for operation in operations.values()
        if "201" in operation["responses"]
    ]
    assert len(created) >= 6
    assert all("Location" in response.get("headers", {}) for response in created)


def test_every_json_body_documents_415(app):
    operations = [
        operation
        for operations in app.openapi()["paths"].values()
        for operation in operations.values()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert len(operations) >= 10
    assert all("415" in operation["responses"] for operation in operations)


async def test_405_lists_every_method_of_the_path(client, tenant):
    r = await client.put(PRODUCTS, json={}, headers=tenant.editor)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == "GET, HEAD, POST"
    assert r.json()["code"] == "method_not_allowed"
    r = await client.post(f"{PRODUCTS}1/", json={}, headers=tenant.editor)
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, HEAD, PATCH"
    r = await client.delete("/api/pim/schema/", headers=tenant.admin)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, PUT"


async def test_fixed_path_words_are_not_ids(client, tenant):
    r = await client.get(f"{PRODUCTS}bulk/", headers=tenant.viewer)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == "POST"
    assert r.json()["code"] == "method_not_allowed"
    r = await client.patch(f"{PRODUCTS}search/", json={}, headers=tenant.editor)
    assert r.status_code == 405 and r.headers["allow"] == "POST", r.text
    # a word that is no route's: still an invalid id
    r = await client.get(f"{PRODUCTS}nonsense/", headers=tenant.viewer)
    assert r.status_code == 422 and r.json()["param"] == "product_id"


async def test_head_answers_every_get_without_a_body(app, client, tenant):
    created = await client.post(PRODUCTS, json={"sku": "H-1", "name": "h"}, headers=tenant.editor)
    get = await client.get(f"{PRODUCTS}{created.json()['id']}/", headers=tenant.viewer)
    head = await client.head(f"{PRODUCTS}{created.json()['id']}/", headers=tenant.viewer)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"] != "0"
    assert head.headers["content-type"] == get.headers["content-type"]
    missing = await client.head(f"{PRODUCTS}999999999/", headers=tenant.viewer)
    assert missing.status_code == 404 and missing.content == b""
    assert (await client.head(PRODUCTS)).status_code == 401
    # every GET route answers HEAD (not 405), whatever else it answers
    paths = {
        context.path_format.replace("{", "").replace("}", "")
        for context in iter_route_contexts(app.routes)
        if "GET" in (getattr(context.original_route, "methods", None) or ())
    }
    for path in paths:
        r = await client.head(path, headers=tenant.admin)
        assert r.status_code != 405 and r.content == b"", (path, r.status_code)


async def test_a_body_not_declared_json_is_415(client, tenant):
    for headers in ({}, {"content-type": "text/plain"}, {"content-type": "application/xml"}):
        r = await client.post(
            CATEGORIES, content=b'{"name": "x"}', headers={**tenant.editor, **headers}
        )
        assert r.status_code == 415, (headers, r.text)
        assert r.json()["code"] == "unsupported_media_type"
    # no body where one is required: 415 too, not a 422 for the missing body
    r = await client.post(CATEGORIES, headers=tenant.editor)
    assert r.status_code == 415, r.text
    for content_type in ("application/json", "application/json; charset=utf-8"):
        r = await client.post(
            CATEGORIES,
            content=b'{"name": "' + content_type[-5:].encode() + b'"}',
            headers={**tenant.editor, "content-type": content_type},
        )
        assert r.status_code == 201, r.text
    # credentials are checked first
    assert (await client.post(CATEGORIES, content=b"x")).status_code == 401


async def test_cors_is_off_by_default(client, tenant):
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"}
    r = await client.options(PRODUCTS, headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    r = await client.get(PRODUCTS, headers={**tenant.viewer, "Origin": "https://shop.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def test_cors_allows_the_configured_origins(settings, tenant):
    app = create_app(settings.model_copy(update={"cors_origins": "https://shop.example"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pim.test") as http:
            preflight = {
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key, content-type",
            }
            r = await http.options(PRODUCTS, headers=preflight)
            assert r.status_code == 200, r.text
            assert r.headers["access-control-allow-origin"] == "https://shop.example"
            assert "x-api-key" in r.headers["access-control-allow-headers"].lower()
            r = await http.get(
                PRODUCTS, headers={**tenant.viewer, "Origin": "https://shop.example"}
            )
            assert r.headers["access-control-allow-origin"] == "https://shop.example"
            assert "location" in r.headers["access-control-expose-headers"].lower()
            other = await http.options(
                PRODUCTS, headers={**preflight, "Origin": "https://evil.example"}
            )
            assert "access-control-allow-origin" not in other.headers
