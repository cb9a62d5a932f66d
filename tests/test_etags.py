"""Strong ETags, If-None-Match (304) and If-Match (412) on products, categories, views, segments
and the schema (app/etags.py), including two writes racing with the same If-Match."""

import asyncio

import httpx
import pytest

from app.main import create_app

SEGMENT_DEFINITION = {"match": "all", "conditions": []}


async def make(client, tenant, kind: str) -> tuple[str, dict]:
    """Create one object of `kind`; its path and a PATCH body that changes it."""
    if kind == "product":
        response = await client.post(
            "/api/pim/products/", headers=tenant.editor, json={"sku": "E-1", "name": "Lamp"}
        )
        patch = {"name": "Desk lamp"}
    elif kind == "category":
        response = await client.post(
            "/api/pim/categories/", headers=tenant.editor, json={"name": "Lamps"}
        )
        patch = {"name": "Desk lamps"}
    elif kind == "view":
        response = await client.post(
            "/api/pim/views/", headers=tenant.editor, json={"name": "Web", "attributes": []}
        )
        patch = {"name": "Shop"}
    else:
        response = await client.post(
            "/api/product-segments/",
            headers=tenant.editor,
            json={"name": "All", "definition": SEGMENT_DEFINITION},
        )
        patch = {"name": "Everything"}
    assert response.status_code == 201, response.text
    assert response.headers["ETag"].startswith('"'), response.headers
    return response.headers["Location"], patch


KINDS = ["product", "category", "view", "segment"]


@pytest.mark.parametrize("kind", KINDS)
async def test_etag_if_none_match_and_if_match(client, tenant, kind):
    path, patch = await make(client, tenant, kind)
    first = await client.get(path, headers=tenant.viewer)
    assert first.status_code == 200
    tag = first.headers["ETag"]
    assert tag.startswith('"') and tag.endswith('"')

    # If-None-Match: 304 while current, no body; weak and list forms compare weakly
    for header in (tag, f"W/{tag}", f'"nope", {tag}', "*"):
        cached = await client.get(path, headers={**tenant.viewer, "If-None-Match": header})
        assert cached.status_code == 304, header
        assert cached.content == b""
        assert cached.headers["ETag"] == tag
    other = await client.get(path, headers={**tenant.viewer, "If-None-Match": '"12345"'})
    assert other.status_code == 200 and other.headers["ETag"] == tag

    # If-Match with another version: 412, nothing changes
    stale = await client.patch(path, headers={**tenant.editor, "If-Match": '"12345"'}, json=patch)
    assert stale.status_code == 412, stale.text
    assert stale.json()["code"] == "precondition_failed"
    assert stale.json()["param"] == "If-Match"
    assert stale.headers["ETag"] == tag
    weak = await client.patch(path, headers={**tenant.editor, "If-Match": f"W/{tag}"}, json=patch)
    assert weak.status_code == 412  # strong comparison
    assert (await client.get(path, headers=tenant.viewer)).json() == first.json()

    # the current version: written, and the answer's ETag is the one GET gives from now on
    written = await client.patch(path, headers={**tenant.editor, "If-Match": tag}, json=patch)
    assert written.status_code == 200, written.text
    new_tag = written.headers["ETag"]
    assert new_tag != tag
    again = await client.get(path, headers={**tenant.viewer, "If-None-Match": tag})
    assert again.status_code == 200
    assert again.headers["ETag"] == new_tag
    assert again.json() == written.json()
    # a PATCH without If-Match writes whatever the version (and changes it)
    unconditional = await client.patch(path, headers=tenant.editor, json={"name": "Third"})
    assert unconditional.status_code == 200
    assert unconditional.headers["ETag"] != new_tag

    # DELETE: a stale If-Match is a 412 and the object stays; the current one deletes
    current = unconditional.headers["ETag"]
    refused = await client.delete(path, headers={**tenant.editor, "If-Match": new_tag})
    assert refused.status_code == 412
    assert (await client.get(path, headers=tenant.viewer)).status_code == 200
    deleted = await client.delete(path, headers={**tenant.editor, "If-Match": current})
    assert deleted.status_code == 204
    assert (await client.get(path, headers=tenant.viewer)).status_code == 404


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_writes_with_one_if_match_one_wins(client, tenant, kind):
    path, _patch = await make(client, tenant, kind)
    tag = (await client.get(path, headers=tenant.viewer)).headers["ETag"]
    names = [f"Name {i}" for i in range(8)]
    # as many pooled connections as writers, so that none waits for a new connection while
    # another's whole request runs: the writers read the row at the same time
    await asyncio.gather(*(client.get(path, headers=tenant.editor) for _ in names))
    answers = await asyncio.gather(
        *(
            client.patch(path, headers={**tenant.editor, "If-Match": tag}, json={"name": name})
            for name in names
        )
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [412] * 7, statuses
    (winner,) = [a for a in answers if a.status_code == 200]
    stored = await client.get(path, headers=tenant.viewer)
    assert stored.json()["name"] == winner.json()["name"]
    assert stored.headers["ETag"] == winner.headers["ETag"]


async def test_the_schema_is_tagged(client, tenant):
    fresh = await client.get("/api/pim/schema/", headers=tenant.viewer)
    assert fresh.headers["ETag"] == '"0"'  # never written
    body = {"fields": [{"name": "color", "type": "string"}]}
    answers = await asyncio.gather(
        *(
            client.put("/api/pim/schema/", headers={**tenant.editor, "If-Match": '"0"'}, json=body)
            for _ in range(4)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 412, 412, 412]
    (written,) = [a for a in answers if a.status_code == 200]
    tag = written.headers["ETag"]
    assert tag != '"0"'
    cached = await client.get("/api/pim/schema/", headers={**tenant.viewer, "If-None-Match": tag})
    assert cached.status_code == 304 and cached.headers["ETag"] == tag
    stale = await client.put(
        "/api/pim/schema/", headers={**tenant.editor, "If-Match": '"0"'}, json=body
    )
    assert stale.status_code == 412
    assert (await client.get("/api/pim/schema/", headers=tenant.viewer)).headers["ETag"] == tag


async def test_a_write_by_another_path_changes_the_etag(client, tenant):
    path, _patch = await make(client, tenant, "product")
    tag = (await client.get(path, headers=tenant.viewer)).headers["ETag"]
    bulk = await client.post(
        "/api/pim/products/bulk/",
        headers=tenant.editor,
        json={"products": [{"sku": "E-1", "name": "Renamed by bulk"}]},
    )
    assert bulk.status_code == 200, bulk.text
    after = await client.get(path, headers={**tenant.viewer, "If-None-Match": tag})
    assert after.status_code == 200 and after.headers["ETag"] != tag
    refused = await client.patch(
        path, headers={**tenant.editor, "If-Match": tag}, json={"name": "Mine"}
    )
    assert refused.status_code == 412
    assert (await client.get(path, headers=tenant.viewer)).json()["name"] == "Renamed by bulk"


async def test_another_tenants_object_is_a_404_whatever_the_if_match(client, tenant, other_tenant):
    path, patch = await make(client, tenant, "category")
    tag = (await client.get(path, headers=tenant.viewer)).headers["ETag"]
    for answer in (
        await client.get(path, headers={**other_tenant.viewer, "If-None-Match": tag}),
        await client.patch(path, headers={**other_tenant.editor, "If-Match": tag}, json=patch),
        await client.delete(path, headers={**other_tenant.editor, "If-Match": "*"}),
    ):
        assert answer.status_code == 404


async def test_if_match_can_be_required(settings, tenant):
    app = create_app(settings.model_copy(update={"require_if_match": True}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://pim.test") as http:
            path, patch = await make(http, tenant, "category")
            tag = (await http.get(path, headers=tenant.viewer)).headers["ETag"]
            for answer in (
                await http.patch(path, headers=tenant.editor, json=patch),
                await http.delete(path, headers=tenant.editor),
                await http.put("/api/pim/schema/", headers=tenant.editor, json={"fields": []}),
            ):
                assert answer.status_code == 428, answer.text
                assert answer.json()["code"] == "precondition_required"
            assert (await http.get(path, headers=tenant.viewer)).headers["ETag"] == tag
            written = await http.patch(path, headers={**tenant.editor, "If-Match": tag}, json=patch)
            assert written.status_code == 200
            spec = app.openapi()
            assert (
                "428" in spec["paths"]["/api/pim/categories/{category_id}/"]["patch"]["responses"]
            )
