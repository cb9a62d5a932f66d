"""Deterministic regression tests for what the schemathesis run (test_fuzz.py) found."""


async def test_patch_category_with_null_name_is_a_422_and_keeps_the_name(client, tenant):
    # the PATCH null rule (docs/contract.md): `name` is not nullable, so its null is refused
    made = (
        await client.post("/api/pim/categories/", json={"name": "Men"}, headers=tenant.editor)
    ).json()
    response = await client.patch(
        f"/api/pim/categories/{made['id']}/",
        json={"name": None, "position": 3},
        headers=tenant.editor,
    )
    assert response.status_code == 422, response.text
    assert response.json()["param"] == "name"
    stored = await client.get(f"/api/pim/categories/{made['id']}/", headers=tenant.viewer)
    assert stored.json()["name"] == "Men" and stored.json()["position"] == 0


async def test_a_json_body_that_is_not_utf8_is_a_422(client, tenant):
    response = await client.post(
        "/api/pim/views/",
        content=b'{"name": "\xff\xfe"}',
        headers={**tenant.editor, "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["type"] == "json_invalid"
    assert response.json()["code"] == "validation_error"


async def test_a_nul_character_is_a_declared_400(client, tenant):
    response = await client.post(
        "/api/pim/views/", json={"name": "a\u0000b"}, headers=tenant.editor
    )
    assert response.status_code == 400, response.text
    spec = (await client.get("/openapi.json")).json()
    assert "400" in spec["paths"]["/api/pim/views/"]["post"]["responses"]


async def test_common_errors_are_in_the_openapi_document(client):
    spec = (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            codes = operation["responses"]
            if "requestBody" in operation:
                assert {"400", "413"} <= codes.keys(), (method, path)
            if operation.get("security"):
                assert "503" in codes, (method, path)
    assert spec["paths"]["/api/pim/products/"]["get"]["parameters"][-1]["name"] == "fieldFilters"


async def test_sku_in_is_bounded_to_fit_the_request_head(client, tenant):
    response = await client.get(
        "/api/pim/products/", params={"sku__in": "a" * 4001}, headers=tenant.viewer
    )
    assert response.status_code == 422
    response = await client.get(
        "/api/pim/products/", params={"sku__in": ",".join(["SKU-1"] * 600)}, headers=tenant.viewer
    )
    assert response.status_code == 200 and response.json()["count"] == 0
