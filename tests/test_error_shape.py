"""Every error answer is `{"detail": str, "code", "param", "request_id"}`; a 422 adds `errors`
(issue 17, "Errors"). Black-box, one sample per error class."""

from typing import Any

import httpx

from app.errors import ErrorCode

PRODUCTS = "/api/pim/products/"
VIEWS = "/api/pim/views/"


def assert_error(
    response: httpx.Response, status: int, code: str, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"], body
    assert body["code"] == code, body
    assert body["param"] == param, body
    assert body["request_id"] == response.headers["x-request-id"], body
    return body


async def test_unknown_and_invalid_filters_name_their_parameter(client, tenant):
    r = await client.get(PRODUCTS, params={"9lives": "1"}, headers=tenant.viewer)
    assert_error(r, 400, "unknown_filter", "9lives")
    r = await client.get(PRODUCTS, params={"created_at__in": "1"}, headers=tenant.viewer)
    assert_error(r, 400, "unknown_filter", "created_at__in")
    r = await client.get(PRODUCTS, params={"brand__foo": "x"}, headers=tenant.viewer)
    assert_error(r, 400, "unknown_filter", "brand__foo")
    r = await client.get(PRODUCTS, params={"brand__exists": "maybe"}, headers=tenant.viewer)
    assert_error(r, 400, "invalid_filter", "brand__exists")
    r = await client.get(PRODUCTS, params={"status": "lost"}, headers=tenant.viewer)
    assert_error(r, 400, "invalid_filter", "status")


async def test_the_request_id_sent_is_the_one_in_the_body(client, tenant):
    r = await client.get(
        PRODUCTS, params={"nope__zz": "1"}, headers={**tenant.viewer, "X-Request-ID": "req-42"}
    )
    assert assert_error(r, 400, "unknown_filter", "nope__zz")["request_id"] == "req-42"


async def test_authentication_role_and_tenant_errors(client, tenant, other_tenant):
    assert_error(await client.get(PRODUCTS), 401, "unauthorized")
    r = await client.post(VIEWS, json={"name": "v", "attributes": []}, headers=tenant.viewer)
    assert_error(r, 403, "forbidden")
    created = await client.post(PRODUCTS, json={"sku": "E1", "name": "e"}, headers=tenant.editor)
    assert created.status_code == 201, created.text
    r = await client.get(f"{PRODUCTS}{created.json()['id']}/", headers=other_tenant.viewer)
    assert_error(r, 404, "not_found")
    # a path no route has
    assert_error(
        await client.get("/api/pim/nothing-here/", headers=tenant.viewer), 404, "not_found"
    )


async def test_conflict_and_method_not_allowed(client, tenant):
    view = {"name": "dup", "attributes": ["brand"]}
    assert (await client.post(VIEWS, json=view, headers=tenant.editor)).status_code == 201
    assert_error(await client.post(VIEWS, json=view, headers=tenant.editor), 409, "conflict")
    r = await client.put(PRODUCTS, json={}, headers=tenant.editor)
    assert_error(r, 405, "method_not_allowed")


async def test_validation_errors_keep_the_list_in_errors(client, tenant):
    r = await client.post(PRODUCTS, json={"sku": "V1", "name": 5}, headers=tenant.editor)
    body = assert_error(r, 422, "validation_error", "name")
    assert [e["loc"] for e in body["errors"]] == [["body", "name"]]
    assert body["detail"].startswith("name: ")
    r = await client.post(PRODUCTS, json={"name": 5, "status": 7}, headers=tenant.editor)
    body = assert_error(r, 422, "validation_error", "sku")
    assert len(body["errors"]) == 3 and "(and 2 more errors)" in body["detail"]
    # malformed JSON is a validation error too
    r = await client.post(
        PRODUCTS, content=b"{", headers={**tenant.editor, "content-type": "application/json"}
    )
    body = assert_error(r, 422, "validation_error", None)
    assert body["errors"][0]["type"] == "json_invalid"


async def test_body_limit_error_has_the_shape(client, tenant, settings):
    r = await client.post(
        PRODUCTS,
        content=b"x",
        headers={
            **tenant.editor,
            "content-type": "application/json",
            "content-length": str(settings.max_json_body_bytes + 1),
        },
    )
    assert_error(r, 413, "payload_too_large")


async def test_pims_errors_keep_their_shape_and_add_the_code(client, tenant):
    r = await client.get("/v/pc/0/?filters=nope&nope=1", headers=tenant.viewer)
    assert r.status_code == 400
    assert r.json() == {
        "status": "ERROR",
        "detail": "filters: unknown attribute 'nope'",
        "code": "unknown_filter",
    }
    r = await client.get("/v/pc/0/")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"


def test_every_code_is_documented(app):
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    assert schemas["ErrorCode"]["enum"] == [code.value for code in ErrorCode]
    assert set(schemas["ErrorBody"]["required"]) == {"detail", "code"}
    assert "errors" in schemas["ValidationErrorBody"]["required"]
    invalid = spec["paths"]["/api/pim/products/"]["post"]["responses"]["422"]
    ref = invalid["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ValidationErrorBody"
    with open("docs/contract.md") as contract:
        text = contract.read()
    missing = [code.value for code in ErrorCode if f"`{code.value}`" not in text]
    assert not missing, missing


async def test_field_and_cursor_errors_name_their_parameter(client, tenant):
    schema = {"fields": [{"name": "price", "type": "number"}]}
    assert (
        await client.put("/api/pim/schema/", json=schema, headers=tenant.admin)
    ).status_code == 200
    r = await client.post(
        PRODUCTS, json={"sku": "F1", "name": "f", "data": {"price": "cheap"}}, headers=tenant.editor
    )
    assert_error(r, 400, "bad_request", "price")
    r = await client.get(PRODUCTS, params={"cursor": "not-a-cursor"}, headers=tenant.viewer)
    assert_error(r, 400, "bad_request", "cursor")
    r = await client.get(PRODUCTS, params={"page_size": 100000}, headers=tenant.viewer)
    assert r.status_code in (400, 422) and r.json()["param"] == "page_size", r.text
