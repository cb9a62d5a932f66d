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


async def test_patch_data_with_an_integer_beyond_64_bits_is_not_a_500(client, tenant):
    """The stateful run (test_fuzz_stateful.py): a merge patch with a 20-digit integer in `data`
    made the size check's orjson raise (a 500). The JSON grammar allows it: it is measured and
    stored as the other write paths do."""
    made = await client.post(
        "/api/pim/products/", json={"sku": "BIG-1", "name": "Big"}, headers=tenant.editor
    )
    assert made.status_code == 201, made.text
    body = b'{"data": {"serial": 123456789012345678901234567890, "nested": {"n": -99999999999999999999}}}'
    response = await client.patch(
        f"/api/pim/products/{made.json()['id']}/",
        content=body,
        headers={**tenant.editor, "content-type": "application/json"},
    )
    assert response.status_code in (200, 400), response.text


async def test_a_fixed_word_is_never_an_import_job_id(client, tenant):
    """`PUT /api/pim/import/csv/` is the upload's 405 (`Allow: POST`), not the job routes' (the
    job id, a string, took `csv`)."""
    response = await client.put("/api/pim/import/csv/", headers=tenant.editor)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    response = await client.get("/api/pim/import/csv/", headers=tenant.editor)
    assert response.status_code == 405 and response.headers["allow"] == "POST", response.text


async def test_an_oversized_request_head_is_declared_on_every_operation(client):
    spec = (await client.get("/openapi.json")).json()
    for operations in spec["paths"].values():
        for operation in operations.values():
            assert "431" in operation["responses"], operation["operationId"]


async def test_a_segment_whose_list_value_holds_null_reads_back(client, tenant):
    """The stateful run: a definition stored with `null` in a list value (the DSL takes it) could
    not be answered as the typed `SegmentOut.definition` (a 500)."""
    await client.put(
        "/api/pim/schema/", json={"fields": [{"name": "brand"}]}, headers=tenant.editor
    )
    definition = {"field": "brand", "op": "in", "value": ["Nike", None]}
    response = await client.post(
        "/api/product-segments/",
        json={"name": "with null", "definition": definition},
        headers=tenant.editor,
    )
    assert response.status_code in (201, 400), response.text
    if response.status_code == 201:
        read = await client.get(
            f"/api/product-segments/{response.json()['id']}/", headers=tenant.viewer
        )
        assert read.status_code == 200 and read.json()["definition"]["value"] == ["Nike", None]


async def test_a_null_convention_override_overrides_nothing(client, tenant):
    """The stateful run: `"conventions": {"true_words": null}` in a confirm was a 500."""
    job = await client.post(
        "/api/pim/import/csv/",
        files={"file": ("feed.csv", b"sku,name\nA-1,Shirt\n", "text/csv")},
        headers=tenant.editor,
    )
    assert job.status_code == 201, job.text
    response = await client.post(
        f"/api/pim/import/{job.json()['job_id']}/confirm/",
        json={"dry_run": True, "conventions": {"true_words": None, "false_words": None}},
        headers=tenant.editor,
    )
    assert response.status_code == 200, response.text
    assert response.json()["conventions"]["true_words"]
