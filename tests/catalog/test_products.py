"""Products: CRUD, list filters/ordering/paging, bulk upsert, facets — black-box through the API."""

import random

import pytest

SCHEMA = "/api/pim/schema/"
PRODUCTS = "/api/pim/products/"
BULK = "/api/pim/products/bulk/"
FACETS = "/api/pim/facets/"

FIELDS = [
    {"name": "brand", "type": "string"},
    {"name": "price", "type": "number"},
    {"name": "stock", "type": "integer"},
    {"name": "tags", "type": "array"},
    {"name": "color", "type": "enum", "options": ["red", "green", "blue"]},
    {"name": "launch", "type": "date"},
    {"name": "active", "type": "boolean"},
]


async def _setup(client, tenant, products):
    assert (
        await client.put(SCHEMA, json={"fields": FIELDS}, headers=tenant.editor)
    ).status_code == 200
    response = await client.post(BULK, json={"products": products}, headers=tenant.editor)
    assert response.status_code == 200, response.text
    assert response.json()["failed"] == 0, response.json()
    return response.json()


async def _list(client, tenant, **params):
    response = await client.get(PRODUCTS, params=params, headers=tenant.viewer)
    assert response.status_code == 200, response.text
    return response.json()


def _skus(page):
    return [p["sku"] for p in page["results"]]


async def test_crud_and_merge_patch(client, tenant):
    await _setup(client, tenant, [])
    created = await client.post(
        PRODUCTS,
        headers=tenant.editor,
        json={
            "sku": "NK-AM90-42",
            "name": "Air Max 90",
            "data": {"brand": "Nike", "price": 129.9, "tags": ["running"]},
        },
    )
    assert created.status_code == 201
    product = created.json()
    assert set(product) == {
        "id",
        "sku",
        "name",
        "status",
        "categories",
        "variation_of",
        "variation_attributes",
        "data",
        "created_at",
        "updated_at",
    }
    assert (
        product["status"] == "active"
        and product["categories"] == []
        and product["variation_of"] is None
    )
    assert product["created_at"].endswith("Z")
    duplicate = await client.post(
        PRODUCTS, json={"sku": "NK-AM90-42", "name": "again"}, headers=tenant.editor
    )
    assert duplicate.status_code == 409
    pid = product["id"]
    patched = await client.patch(
        f"{PRODUCTS}{pid}/",
        headers=tenant.editor,
        json={
            "name": "Air Max 90 OG",
            "status": "inactive",
            "data": {"price": "99", "tags": None, "note": "x"},
        },
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Air Max 90 OG" and patched.json()["status"] == "inactive"
    assert patched.json()["data"] == {"brand": "Nike", "price": 99, "note": "x"}
    assert (await client.get(f"{PRODUCTS}{pid}/", headers=tenant.viewer)).json() == patched.json()
    assert (
        await client.patch(f"{PRODUCTS}{pid}/", json={"status": "gone"}, headers=tenant.editor)
    ).status_code == 422
    assert (await client.delete(f"{PRODUCTS}{pid}/", headers=tenant.editor)).status_code == 204
    assert (await client.get(f"{PRODUCTS}{pid}/", headers=tenant.viewer)).status_code == 404
    assert (await client.delete(f"{PRODUCTS}{pid}/", headers=tenant.editor)).status_code == 404


async def test_filters_compare_by_type(client, tenant):
    prices = [5, 9.5, 10, 80, 100, 250, 1000]
    await _setup(
        client,
        tenant,
        [
            {
                "sku": f"P{i}",
                "name": f"Item {i}",
                "price": p,
                "stock": i,
                "brand": "Acme" if i % 2 else "Bolt",
                "launch": f"2026-0{i + 1}-15",
                "tags": ["sale"] if i < 3 else ["new", "eco"],
                "active": i % 3 == 0,
            }
            for i, p in enumerate(prices)
        ],
    )
    # numbers compare as numbers ("80" > "100" as strings; not here)
    assert _skus(await _list(client, tenant, price__gte="80")) == ["P3", "P4", "P5", "P6"]
    assert _skus(await _list(client, tenant, price__gt="9.5", price__lt="250")) == [
        "P2",
        "P3",
        "P4",
    ]
    assert _skus(await _list(client, tenant, price="10")) == ["P2"]
    assert _skus(await _list(client, tenant, ordering="-price"))[:3] == ["P6", "P5", "P4"]
    assert _skus(await _list(client, tenant, ordering="price")) == [
        "P0",
        "P1",
        "P2",
        "P3",
        "P4",
        "P5",
        "P6",
    ]
    assert _skus(await _list(client, tenant, brand="Bolt")) == ["P0", "P2", "P4", "P6"]
    assert _skus(await _list(client, tenant, brand__ne="Bolt")) == ["P1", "P3", "P5"]
    assert _skus(await _list(client, tenant, brand__in="Bolt,Nope", stock__lte="2")) == ["P0", "P2"]
    assert _skus(await _list(client, tenant, tags="sale")) == ["P0", "P1", "P2"]
    assert _skus(await _list(client, tenant, tags__in="eco,sale"))[:4] == ["P0", "P1", "P2", "P3"]
    assert _skus(await _list(client, tenant, launch__gte="2026-05-01")) == ["P4", "P5", "P6"]
    assert _skus(await _list(client, tenant, active="true")) == ["P0", "P3", "P6"]
    assert _skus(await _list(client, tenant, brand__icontains="acm")) == ["P1", "P3", "P5"]
    assert _skus(await _list(client, tenant, color__exists="false"))[:2] == ["P0", "P1"]
    # the boolean words of the JSON endpoints (app/products/rules.py), not a set of its own
    assert _skus(await _list(client, tenant, color__exists="off")) == _skus(
        await _list(client, tenant, color__exists="false")
    )
    assert _skus(await _list(client, tenant, q="item 1")) == ["P1"]
    assert _skus(await _list(client, tenant, sku__in="P1,P5")) == ["P1", "P5"]
    assert _skus(await _list(client, tenant, sku="P6")) == ["P6"]
    assert (await _list(client, tenant, status="inactive"))["count"] == 0
    # unknown data keys: exact match on the text value
    await client.post(
        BULK, json={"products": [{"sku": "P0", "origin": "DE"}]}, headers=tenant.editor
    )
    assert _skus(await _list(client, tenant, origin="DE")) == ["P0"]


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": "201"},
        {"price__gte": "cheap"},
        {"brand__between": "a"},
        {"ordering": "nope"},
        {"status": "gone"},
        {"bad key!": "x"},
        {"launch__gt": "yesterday"},
        {"active__lt": "true"},
    ],
)
async def test_bad_list_parameters_are_400(client, tenant, params):
    await _setup(client, tenant, [{"sku": "A", "price": 1}])
    response = await client.get(PRODUCTS, params=params, headers=tenant.viewer)
    assert response.status_code == 400, (params, response.text)
    assert isinstance(response.json()["detail"], str)


async def test_injection_strings_are_plain_values(client, tenant):
    await _setup(
        client,
        tenant,
        [{"sku": "A", "name": "x' OR '1'='1", "brand": "a'; DROP TABLE products; --"}],
    )
    for params in (
        {"brand": "' OR 1=1 --"},
        {"q": "%' OR '1'='1"},
        {"brand__icontains": "%"},
        {"q": "_"},
        {"origin'; --": "x"},
        {"ordering": "price; DROP TABLE products"},
    ):
        response = await client.get(PRODUCTS, params=params, headers=tenant.viewer)
        assert response.status_code in (200, 400)
        if response.status_code == 200:
            assert response.json()["count"] == 0, params
    assert _skus(await _list(client, tenant, brand="a'; DROP TABLE products; --")) == ["A"]
    assert _skus(await _list(client, tenant, q="' OR '1")) == ["A"]


async def test_paging_links_and_counts(client, tenant):
    await _setup(client, tenant, [{"sku": f"S{i:03d}", "name": f"n{i}"} for i in range(120)])
    first = await _list(client, tenant, page_size=50)
    assert first["count"] == 120 and len(first["results"]) == 50 and first["previous"] is None
    assert "page=2" in first["next"]
    last = await _list(client, tenant, page_size=50, page=3)
    assert len(last["results"]) == 20 and last["next"] is None and "page=2" in last["previous"]
    beyond = await _list(client, tenant, page_size=50, page=9)
    assert beyond["results"] == [] and beyond["count"] == 120
    seen = []
    for page in (1, 2, 3):
        seen += _skus(await _list(client, tenant, page_size=50, page=page, ordering="-name"))
    assert len(seen) == len(set(seen)) == 120


async def test_bulk_upsert_semantics(client, tenant):
    await _setup(
        client, tenant, [{"sku": "B1", "name": "One", "brand": "Acme", "price": 1, "tags": ["a"]}]
    )
    response = await client.post(
        BULK,
        headers=tenant.editor,
        json={
            "products": [
                {"sku": "B1", "price": "2.5"},  # update: merged into existing data
                {"sku": "B2", "name": "Two", "price": "x"},  # bad: not a number
                {"sku": "B3", "name": "Three", "price": 3},
                {"name": "no sku"},  # bad: no SKU
                {"sku": "B3", "name": "Three again", "price": 4},  # later duplicate wins
                {"sku": "B4", "status": "bogus"},  # bad status
                {"sku": "B5", "categories": [999999999]},  # unknown category
                {"sku": ["not", "a", "string"]},  # bad SKU type
            ]
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"], body["failed"]) == (1, 1, 5)
    assert [e["index"] for e in body["errors"]] == [1, 3, 5, 6, 7]
    assert body["errors"][0] == {"index": 1, "sku": "B2", "detail": "price: not a number"}
    b1 = (await _list(client, tenant, sku="B1"))["results"][0]
    assert b1["name"] == "One" and b1["data"] == {"brand": "Acme", "price": 2.5, "tags": ["a"]}
    b3 = (await _list(client, tenant, sku="B3"))["results"][0]
    assert b3["name"] == "Three again" and b3["data"] == {"price": 4}
    assert (await _list(client, tenant, sku="B2"))["count"] == 0
    # re-sending unchanged rows counts as updated and does not touch updated_at
    again = await client.post(
        BULK, json={"products": [{"sku": "B1", "price": 2.5}]}, headers=tenant.editor
    )
    assert again.json()["updated"] == 1
    assert (await _list(client, tenant, sku="B1"))["results"][0]["updated_at"] == b1["updated_at"]
    too_many = await client.post(
        BULK, json={"products": [{"sku": f"X{i}"} for i in range(10_001)]}, headers=tenant.editor
    )
    assert too_many.status_code == 422


async def test_facets_count_all_matching_products(client, tenant):
    rng = random.Random(7)
    products = [
        {
            "sku": f"F{i:05d}",
            "brand": rng.choice(["Acme", "Bolt", "Core"]),
            "tags": ["common"],
            "color": rng.choice(["red", "green"]),
        }
        for i in range(1500)
    ]
    for i in range(1000, 1500, 50):  # a value that appears only after the first 1,000 products
        products[i]["brand"] = "Late"
        products[i]["tags"] = ["common", "late", "late"]
        products[i]["color"] = "blue"
    await _setup(client, tenant, products)
    body = (await client.get(FACETS, headers=tenant.viewer)).json()
    assert body["total"] == 1500
    brands = {v["value"]: v["count"] for v in body["facets"]["brand"]}
    assert brands["Late"] == 10
    assert sum(brands.values()) == 1500
    assert {v["value"]: v["count"] for v in body["facets"]["tags"]} == {"common": 1500, "late": 10}
    assert {"value": "blue", "count": 10} in body["facets"]["color"]
    counts = [v["count"] for v in body["facets"]["brand"]]
    assert counts == sorted(counts, reverse=True)
    assert set(body["facets"]) == {"brand", "tags", "color"}
    filtered = (await client.get(FACETS, params={"brand": "Late"}, headers=tenant.viewer)).json()
    assert filtered["total"] == 10
    assert filtered["facets"]["brand"] == [{"value": "Late", "count": 10}]
    assert filtered["facets"]["color"] == [{"value": "blue", "count": 10}]


async def test_facets_keep_at_most_100_values(client, tenant):
    await _setup(
        client,
        tenant,
        [{"sku": f"V{i}", "brand": f"b{i:03d}", "tags": [f"t{i}"]} for i in range(130)]
        + [{"sku": "V-extra", "brand": "b129"}],
    )
    body = (await client.get(FACETS, headers=tenant.viewer)).json()
    assert len(body["facets"]["brand"]) == 100
    assert body["facets"]["brand"][0] == {"value": "b129", "count": 2}
    assert [v["value"] for v in body["facets"]["brand"][1:4]] == ["b000", "b001", "b002"]


async def test_huge_numbers_and_odd_values_are_not_500(client, tenant):
    await _setup(client, tenant, [])
    huge = 10**30
    r = await client.post(
        BULK,
        json={"products": [{"sku": "H1", "price": huge, "extra": huge, "stock": huge}]},
        headers=tenant.editor,
    )
    assert (
        r.status_code == 200 and r.json()["failed"] == 1
    )  # stock is an integer field: out of range
    r = await client.post(
        BULK,
        json={"products": [{"sku": "H2", "price": huge, "extra": -huge}]},
        headers=tenant.editor,
    )
    assert r.status_code == 200 and r.json()["created"] == 1
    assert (await _list(client, tenant, price__gte=str(huge)))["count"] == 1
    assert (await _list(client, tenant, price=str(huge)))["count"] == 1
    r = await client.post(
        PRODUCTS, json={"sku": "H3", "name": "h", "categories": [huge]}, headers=tenant.editor
    )
    assert r.status_code == 422
    r = await client.post(
        PRODUCTS, json={"sku": "H3", "name": "h", "data": {"x": huge}}, headers=tenant.editor
    )
    assert r.status_code == 201
    for params in (
        {"page": str(huge)},
        {"page_size": str(huge)},
        {"category": str(huge)},
        {"stock__gt": str(huge)},
        {"price__in": ",".join(["1"] * 5)},
        {"ordering": "-" * 300},
    ):
        r = await client.get(PRODUCTS, params=params, headers=tenant.viewer)
        assert r.status_code in (200, 400, 422), (params, r.status_code)


async def test_facet_counts_follow_every_kind_of_write(client, tenant):
    await _setup(
        client,
        tenant,
        [
            {
                "sku": f"W{i}",
                "brand": ["Acme", "Bolt"][i % 2],
                "tags": ["a", "b"] if i % 3 else ["a"],
                "color": "red",
            }
            for i in range(30)
        ],
    )

    async def both_paths():
        stored = (await client.get(FACETS, headers=tenant.viewer)).json()  # counts table
        live = (
            await client.get(FACETS, params={"status": "active"}, headers=tenant.viewer)
        ).json()  # live query
        assert stored == live
        return {
            k: {v["value"]: v["count"] for v in vs} for k, vs in stored["facets"].items()
        }, stored["total"]

    facets, total = await both_paths()
    assert (
        total == 30
        and facets["brand"] == {"Acme": 15, "Bolt": 15}
        and facets["tags"] == {"a": 30, "b": 20}
    )

    first = (await client.get(PRODUCTS, params={"sku": "W0"}, headers=tenant.viewer)).json()[
        "results"
    ][0]
    await client.patch(
        f"{PRODUCTS}{first['id']}/",
        json={"data": {"brand": "Core", "tags": ["c"]}},
        headers=tenant.editor,
    )
    await client.post(
        BULK,
        json={"products": [{"sku": "W1", "brand": "Core"}, {"sku": "W2", "tags": None}]},
        headers=tenant.editor,
    )
    second = (await client.get(PRODUCTS, params={"sku": "W3"}, headers=tenant.viewer)).json()[
        "results"
    ][0]
    await client.delete(f"{PRODUCTS}{second['id']}/", headers=tenant.editor)
    facets, total = await both_paths()
    assert total == 29
    assert facets["brand"] == {"Acme": 14, "Bolt": 13, "Core": 2}
    assert facets["tags"] == {"a": 27, "b": 19, "c": 1}

    # a new string field over existing data, and a retyped one, are recounted at once
    fields = [f for f in FIELDS if f["name"] != "color"] + [
        {"name": "color", "type": "text"},
        {"name": "origin"},
    ]
    await client.put(SCHEMA, json={"fields": fields}, headers=tenant.editor)
    await client.post(
        BULK, json={"products": [{"sku": "W5", "origin": "DE"}]}, headers=tenant.editor
    )
    facets, _ = await both_paths()
    assert "color" not in facets and facets["origin"] == {"DE": 1}
    await client.put(SCHEMA, json={"fields": FIELDS}, headers=tenant.editor)
    facets, _ = await both_paths()
    assert facets["color"] == {"red": 29}

    # an element repeated within one product's array counts that product once
    await client.post(
        BULK, json={"products": [{"sku": "X1", "tags": ["d", "d", "a"]}]}, headers=tenant.editor
    )
    await client.post(
        BULK, json={"products": [{"sku": "X1", "tags": ["d", "e", "e"]}]}, headers=tenant.editor
    )
    facets, _ = await both_paths()
    assert facets["tags"]["d"] == 1 and facets["tags"]["e"] == 1 and facets["tags"]["a"] == 27


async def test_a_bulk_request_is_one_transaction(app, tenant):
    """Raw statements of the upsert run inside the request's transaction: a failure rolls all of them back."""
    from app.catalog.fields import FieldDef
    from app.db import driver_connection, tenant_is
    from app.products.upsert import upsert_products

    async with app.state.sessionmaker() as session:
        session.info["tenant_id"] = tenant.id
        conn = await driver_connection(session)
        assert conn.is_in_transaction()
        result, _ = await upsert_products(
            session,
            items=[{"sku": "TX1", "brand": "x"}],
            fields={"brand": FieldDef(name="brand")},
            max_data_bytes=1 << 20,
        )
        assert result.created == 1
        await session.rollback()
    async with app.state.sessionmaker() as session:
        session.info["tenant_id"] = tenant.id
        conn = await driver_connection(session)
        assert (
            await conn.fetchval(
                f"SELECT count(*) FROM products WHERE {tenant_is('products')}", tenant.id
            )
            == 0
        )
        await session.rollback()


async def test_nul_characters_reject_only_their_item(client, tenant):
    await _setup(client, tenant, [])
    response = await client.post(
        BULK,
        headers=tenant.editor,
        json={
            "products": [
                {"sku": "N1", "brand": "ok"},
                {"sku": "N\u00002"},
                {"sku": "N3", "brand": "a\u0000b"},
                {"sku": "N4", "name": "x\u0000"},
                {"sku": "N5", "extra": {"deep": ["\u0000"]}},
                {"sku": "N6", "k\u0000": 1},
            ]
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["created"] == 1 and body["failed"] == 5
    assert [e["index"] for e in body["errors"]] == [1, 2, 3, 4, 5]


async def test_large_and_small_match_sets_list_alike(client, tenant, monkeypatch):
    """A filtered list takes count and page from one scan of its matches; above SMALL_SET_ROWS,
    when ordered by an indexed column, it counts and then walks that index instead. Both paths
    give the same pages and counts."""
    from app.products import service

    rng = random.Random(7)
    await _setup(
        client,
        tenant,
        [
            {
                "sku": f"M{i:03}",
                "name": f"Item {i}",
                "brand": rng.choice(["Acme", "Bolt", "Core"]),
                "price": rng.choice([None, rng.randint(1, 50)]),
                "tags": rng.sample(["a", "b", "c"], 2),
            }
            for i in range(90)
        ],
    )
    cases = [
        {"brand": "Acme"},
        {"brand": "Acme", "ordering": "-price"},
        {"tags": "a", "ordering": "price,-name"},
        {"q": "item 1", "ordering": "-id"},
        {"price__gte": "10", "ordering": "sku", "page": "2", "page_size": "7"},
        {"brand": "Bolt", "page": "40"},
        {"brand": "Nobody"},
        {"status": "active", "ordering": "-updated_at,name"},
        {"tags": "b", "ordering": "-sku", "page": "3", "page_size": "5"},
    ]
    small = [await _list(client, tenant, **params) for params in cases]
    monkeypatch.setattr(service, "SMALL_SET_ROWS", 3)
    large = [await _list(client, tenant, **params) for params in cases]
    assert small == large
    assert small[0]["count"] > 3 and small[6]["count"] == 0 and small[5]["results"] == []
    prices = [p["data"].get("price") for p in small[1]["results"]]
    present = [p for p in prices if p is not None]
    assert present == sorted(present, reverse=True) and prices == present + [None] * (
        len(prices) - len(present)
    )


async def test_bulk_items_that_are_not_objects_fail_alone(client, tenant):
    await _setup(client, tenant, [])
    response = await client.post(
        BULK,
        json={"products": [{"sku": "O1"}, 5, "O2", None, [], {"sku": "O3"}]},
        headers=tenant.editor,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["failed"]) == (2, 4)
    assert [(e["index"], e["detail"]) for e in body["errors"]] == [
        (i, "item must be an object") for i in (1, 2, 3, 4)
    ]
    response = await client.post(BULK, json={"products": {"sku": "O4"}}, headers=tenant.editor)
    assert response.status_code == 422


async def test_builtin_and_reserved_names_are_not_data_filters(client, tenant):
    await _setup(client, tenant, [{"sku": "A1", "name": "Alpha Shoe", "brand": "Acme"}])
    for params in (
        {"name__icontains": "alpha"},
        {"status__in": "active,inactive"},
        {"sku__ne": "A1"},
        {"id": "1"},
        {"created_at__gte": "2020-01-01"},
        {"categories": "1"},
    ):
        for path in (PRODUCTS, FACETS):
            r = await client.get(path, params=params, headers=tenant.viewer)
            assert r.status_code == 400 and "not a data field" in r.json()["detail"], (
                path,
                params,
                r.text,
            )
    assert _skus(await _list(client, tenant, sku="A1", status="active", brand="Acme")) == ["A1"]
    # `limit` and `cursor` are list controls since issue 17 (an alias of page_size; a keyset cursor)
    r = await client.get(PRODUCTS, params={"limit": "10"}, headers=tenant.viewer)
    assert r.status_code == 200 and r.json()["page_size"] == 10
    r = await client.get(PRODUCTS, params={"cursor": "abc"}, headers=tenant.viewer)
    assert r.status_code == 400 and "not a cursor of this list" in r.json()["detail"]


async def test_name_and_variation_of_are_exact_builtin_filters(client, tenant):
    await _setup(
        client,
        tenant,
        [
            {"sku": "P1", "name": "Air Max 90", "variation_attributes": ["size"]},
            {"sku": "P1-42", "name": "Air Max 90 42", "variation_of": "P1", "size": "42"},
            {"sku": "P1-43", "name": "Air Max 90 43", "variation_of": "P1", "size": "43"},
            {"sku": "X", "name": "air max 90", "name_alias": "Air Max 90"},
        ],
    )
    assert _skus(await _list(client, tenant, name="Air Max 90")) == [
        "P1"
    ]  # exact: case and whole value
    assert _skus(await _list(client, tenant, variation_of="P1", ordering="sku")) == [
        "P1-42",
        "P1-43",
    ]
    r = await client.get(FACETS, params={"variation_of": "P1"}, headers=tenant.viewer)
    assert r.status_code == 200 and r.json()["total"] == 2


async def test_exact_filters_match_values_stored_before_the_field_was_declared(client, tenant):
    await _setup(client, tenant, [])
    r = await client.post(
        BULK,
        json={
            "products": [
                {"sku": "S1", "size": 42, "free": 1},
                {"sku": "S2", "size": "42"},
                {"sku": "S3", "size": "43"},
            ]
        },
        headers=tenant.editor,
    )
    assert r.json()["created"] == 3
    assert sorted(_skus(await _list(client, tenant, size="42"))) == [
        "S1",
        "S2",
    ]  # data->>'size' = '42'
    fields = [*FIELDS, {"name": "size", "type": "string"}]
    assert (
        await client.put(SCHEMA, json={"fields": fields}, headers=tenant.editor)
    ).status_code == 200
    assert sorted(_skus(await _list(client, tenant, size="42"))) == ["S1", "S2"]
    assert sorted(_skus(await _list(client, tenant, size__in="42,43"))) == ["S1", "S2", "S3"]
    assert _skus(await _list(client, tenant, size__ne="42")) == ["S3"]
    # `ne` counts a product without the key as "not equal", for schema fields and other keys alike
    assert sorted(_skus(await _list(client, tenant, free__ne="1"))) == ["S2", "S3"]
    assert sorted(_skus(await _list(client, tenant, brand__ne="x"))) == ["S1", "S2", "S3"]


async def test_bulk_accepts_products_as_read_back(client, tenant):
    await _setup(client, tenant, [{"sku": "B1", "name": "Beta", "brand": "Acme"}])
    product = (await _list(client, tenant, sku="B1"))["results"][0]
    product["name"] = "Beta renamed"
    r = await client.post(BULK, json={"products": [product]}, headers=tenant.editor)
    assert r.json() == {
        "created": 0,
        "updated": 1,
        "failed": 0,
        "errors": [],
        "request_id": r.headers["x-request-id"],  # issue 15: the request's writes can be undone
    }
    again = (await client.get(f"{PRODUCTS}{product['id']}/", headers=tenant.viewer)).json()
    assert again["name"] == "Beta renamed" and again["data"] == {
        "brand": "Acme"
    }  # no id / timestamps in data


async def test_sku_whitespace_is_one_product_on_every_write_path(client, tenant):
    await _setup(client, tenant, [])
    r = await client.post(PRODUCTS, json={"sku": " WS-1 ", "name": "w"}, headers=tenant.editor)
    assert r.status_code == 201 and r.json()["sku"] == "WS-1"
    r = await client.post(
        BULK, json={"products": [{"sku": "WS-1 ", "brand": "Acme"}]}, headers=tenant.editor
    )
    assert r.json()["updated"] == 1
    r = await client.post(PRODUCTS, json={"sku": "   ", "name": "w"}, headers=tenant.editor)
    assert r.status_code == 422


async def test_a_later_invalid_item_replaces_the_earlier_one_with_its_sku(client, tenant):
    await _setup(client, tenant, [])
    for later in ({"sku": "H", "status": "bad"}, {"sku": "H", "price": "x"}):
        r = await client.post(
            BULK, json={"products": [{"sku": "H", "price": "1"}, later]}, headers=tenant.editor
        )
        assert r.json()["created"] == 0 and [e["index"] for e in r.json()["errors"]] == [1], (
            r.json()
        )
    assert (await _list(client, tenant, sku="H"))["count"] == 0


async def test_request_body_edge_cases_are_422_with_short_answers(client, tenant):
    await _setup(client, tenant, [])
    headers = {**tenant.editor, "content-type": "application/json"}
    for body in (
        b'{"products": [{"sku": "n1", "x": NaN}]}',
        b'{"products": [{"sku": "n1", "x": Infinity}]}',
    ):
        r = await client.post(BULK, content=body, headers=headers)
        assert r.status_code == 422 and r.json()["errors"][0]["type"] == "json_invalid", r.text
    r = await client.post(
        PRODUCTS, content=b'{"sku": "n2", "name": "n", "data": {"x": -Infinity}}', headers=headers
    )
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "json_invalid", r.text
    deep = b'{"products": [{"sku": "d", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}]}"
    r = await client.post(BULK, content=deep, headers=headers)
    assert r.status_code == 422 and "UTF-8" not in r.text and "nested" in r.text, r.text
    r = await client.post(
        BULK, json={"products": [{"sku": f"S{i}"} for i in range(10_001)]}, headers=tenant.editor
    )
    assert r.status_code == 422 and len(r.content) < 2_000, len(r.content)
    r = await client.get(PRODUCTS, params={"page_size": "99999999999"}, headers=tenant.viewer)
    assert r.status_code == 400 and "200" in r.json()["detail"]


async def test_openapi_documents_the_conflict_of_a_patch_and_integer_limits(client):
    document = (await client.get("/openapi.json")).json()
    assert "409" in document["paths"]["/api/pim/products/{product_id}/"]["patch"]["responses"]
    category_ids = document["components"]["schemas"]["ProductIn"]["properties"]["categories"][
        "items"
    ]
    assert category_ids == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    assert isinstance(category_ids["minimum"], int) and isinstance(category_ids["maximum"], int)


async def test_a_page_past_the_end_links_back_to_the_last_page(client, tenant):
    await _setup(client, tenant, [{"sku": f"P{i}"} for i in range(5)])
    page = await _list(client, tenant, page=9, page_size=2)
    assert page["results"] == [] and page["next"] is None and "page=3" in page["previous"]
    assert "page=2" in (await _list(client, tenant, page=3, page_size=2))["previous"]


async def test_patch_data_is_a_json_merge_patch_at_every_depth(client, tenant):
    await _setup(client, tenant, [])
    created = await client.post(
        PRODUCTS,
        json={
            "sku": "M1",
            "name": "m",
            "data": {"brand": "Acme", "dims": {"w": 1, "h": 2, "unit": {"len": "cm"}}},
        },
        headers=tenant.editor,
    )
    pid = created.json()["id"]
    r = await client.patch(
        f"{PRODUCTS}{pid}/",
        json={
            "data": {
                "dims": {"w": None, "d": 3, "unit": {"mass": "kg"}},
                "extra": {"a": None, "b": 1},
            }
        },
        headers=tenant.editor,
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {
        "brand": "Acme",
        "dims": {"h": 2, "d": 3, "unit": {"len": "cm", "mass": "kg"}},
        "extra": {"b": 1},
    }
    r = await client.patch(
        f"{PRODUCTS}{pid}/", json={"data": {"dims": [1, 2], "brand": None}}, headers=tenant.editor
    )
    assert r.json()["data"] == {"dims": [1, 2], "extra": {"b": 1}}


async def test_deeply_nested_values_and_lone_surrogates_fail_only_their_item(client, tenant):
    await _setup(client, tenant, [])
    headers = {**tenant.editor, "content-type": "application/json"}
    deep_object, deep_array = '{"a":' * 1000 + "1" + "}" * 1000, "[" * 1000 + "1" + "]" * 1000
    for deep in (deep_object, deep_array):
        body = '{"products": [{"sku": "ok-%d"}, {"sku": "deep", "x": %s}]}' % (len(deep) % 7, deep)
        r = await client.post(BULK, content=body.encode(), headers=headers)
        assert r.status_code == 200 and r.json()["created"] == 1, r.text[:300]
        assert r.json()["errors"][0]["index"] == 1 and "nested" in r.json()["errors"][0]["detail"]
        r = await client.post(
            PRODUCTS,
            content=('{"sku": "d1", "name": "d", "data": {"x": %s}}' % deep).encode(),
            headers=headers,
        )
        assert r.status_code == 400 and "nested" in r.json()["detail"], r.text[:300]
    pid = (
        await client.post(PRODUCTS, json={"sku": "d2", "name": "d"}, headers=tenant.editor)
    ).json()["id"]
    r = await client.patch(
        f"{PRODUCTS}{pid}/", content=('{"data": {"x": %s}}' % deep_object).encode(), headers=headers
    )
    assert r.status_code == 400 and "nested" in r.json()["detail"], r.text[:300]
    ok = '{"a":' * 30 + "1" + "}" * 30
    r = await client.post(
        PRODUCTS,
        content=('{"sku": "d3", "name": "d", "data": {"x": %s}}' % ok).encode(),
        headers=headers,
    )
    assert r.status_code == 201, r.text[:300]

    await client.post(BULK, json={"products": [{"sku": "s5"}]}, headers=tenant.editor)
    for item in (
        '{"sku": "s1", "free": "\\ud800"}',
        '{"sku": "s2", "name": "x\\udc00"}',
        '{"sku": "s3\\ud800"}',
        '{"sku": "s4", "free": {"k\\ud800": 1}}',
        '{"sku": "s5", "\\ud800": null}',
    ):
        body = '{"products": [{"sku": "valid"}, %s]}' % item
        r = await client.post(BULK, content=body.encode(), headers=headers)
        assert (
            r.status_code == 200 and r.json()["failed"] == 1 and r.json()["errors"][0]["index"] == 1
        ), r.text
        assert "surrogate" in r.json()["errors"][0]["detail"]
    assert (await _list(client, tenant, sku="valid"))["count"] == 1

    r = await client.post(
        BULK, content=b'{"products": [{"sku": "big", "free": 1e400}]}', headers=headers
    )
    assert r.status_code == 422 and "out of range" in r.text, r.text


async def test_bulk_edge_items(client, tenant):
    await _setup(client, tenant, [])
    # a later invalid item with a numeric SKU replaces the earlier one, as with a string SKU
    r = await client.post(
        BULK,
        json={"products": [{"sku": 7, "price": "1"}, {"sku": 7, "status": "bad"}]},
        headers=tenant.editor,
    )
    assert r.json()["created"] == 0 and r.json()["errors"][0]["sku"] == "7", r.json()
    # built-in names inside a nested `data` object do not become data keys
    r = await client.post(
        BULK,
        json={"products": [{"sku": "B4", "data": {"id": 5, "sku": "zz", "name": "nn", "k": 1}}]},
        headers=tenant.editor,
    )
    assert r.json()["created"] == 1
    assert (await _list(client, tenant, sku="B4"))["results"][0]["data"] == {"k": 1}
    # a range filter on a key outside the schema reads plain decimal numbers only
    await client.post(BULK, json={"products": [{"sku": "F1", "free": 1000}]}, headers=tenant.editor)
    assert _skus(await _list(client, tenant, free__gt="999")) == ["F1"]
    assert (
        _skus(await _list(client, tenant, free__gt="９９９")) == []
        and _skus(await _list(client, tenant, free__gt="9_99")) == []
    )
    # a validation error does not echo a large value found deep inside the body
    r = await client.post(
        PRODUCTS,
        json={"sku": "x", "name": "n", "extra": {"a": "x" * 100_000}},
        headers=tenant.editor,
    )
    assert r.status_code == 422 and len(r.content) < 2_000, len(r.content)


async def test_bulk_counts_rewritten_rows_apart_from_unchanged_ones(app, tenant):
    """`updated` counts every existing product an item named; `rewritten` (not in the answer) only
    those whose stored values changed: what the upkeep job counts toward ANALYZE, so that a re-sent
    unchanged feed costs no Redis round trip."""
    from app.db import session_scope
    from app.products.service import bulk_upsert

    items = [{"sku": f"rw-{i}", "name": f"Item {i}", "shade": f"s{i}"} for i in range(5)]

    async def upsert(batch):
        async with session_scope(app.state.sessionmaker, tenant.id) as session:
            return await bulk_upsert(session, batch, max_data_bytes=1 << 20)

    first = await upsert(items)
    assert (first.created, first.updated, first.rewritten) == (5, 0, 0)
    again = await upsert(items)
    assert (again.created, again.updated, again.rewritten) == (0, 5, 0)
    changed = [dict(item, shade="new") if i in (1, 3) else item for i, item in enumerate(items)]
    last = await upsert(changed)
    assert (last.created, last.updated, last.rewritten) == (0, 5, 2)
    assert "rewritten" not in last.model_dump()
