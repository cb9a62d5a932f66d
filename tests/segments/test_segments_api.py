"""Product segments through the API, against real Postgres, Redis, ClickHouse and a running worker."""

import asyncio
import random
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from arq import Retry
from arq.connections import ArqRedis
from sqlalchemy import text

from app.clickhouse import ClickHouse
from app.models import Product
from app.segments.service import compile_predicate, matching_products
from app.segments.tasks import MAX_TRIES, compute_segment
from tests.conftest import wait_for

SEGMENTS = "/api/product-segments/"
PREVIEW = "/api/product-segments/preview/"
SCHEMA = "/api/pim/schema/"
CATEGORIES = "/api/pim/categories/"
PRODUCTS = "/api/pim/products/"
BULK = "/api/pim/products/bulk/"

FIELDS = [
    {"name": "brand", "type": "string"},
    {"name": "price", "type": "number"},
    {"name": "stock", "type": "integer"},
    {"name": "tags", "type": "array"},
    {"name": "released", "type": "date"},
    {"name": "color", "type": "enum", "options": ["red", "green", "blue"]},
]
BRANDS = ["Nike", "Adidas", "Puma", "O'Neil", None]
TAGS = ["running", "trail", "kids", "sale", "new"]
NAMES = ["Air", "Trail Blazer", "Kids Runner", "Classic", "Ultra 50% off", "kids_mini"]


# --- ground truth: the DSL evaluated in Python -----------------------------------------------------

MISSING = object()


def _value(product, field):
    if field in ("sku", "name", "status", "variation_of", "created_at", "updated_at"):
        return product[field]
    if field == "category":
        return product["categories"]
    return product["data"].get(field, MISSING)


def _num(v):
    return Decimal(str(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _typed(field, v):
    kind = {
        "price": "number",
        "stock": "number",
        "released": "date",
        "created_at": "dt",
        "updated_at": "dt",
    }.get(field)
    if kind == "number":
        return _num(v), _num
    if kind == "date":
        return (date.fromisoformat(v) if isinstance(v, str) else None), date.fromisoformat
    if kind == "dt":

        def parse(s):
            parsed = datetime.fromisoformat(s.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

        return parse(v), parse
    return (v if isinstance(v, str) else None), (lambda x: x)


def matches(product, node, subtrees) -> bool:
    if "match" in node:
        results = [matches(product, child, subtrees) for child in node["conditions"]]
        return all(results) if node["match"] == "all" else any(results)
    if "not" in node:
        return not matches(product, node["not"], subtrees)
    op, field, value = node["op"], node["field"], node.get("value")
    negated = {"ne": "eq", "not_in": "in", "not_contains": "contains", "is_not_empty": "is_empty"}
    if op in negated and not (field == "tags" and op == "contains"):
        return not matches(product, {**node, "op": negated[op]}, subtrees)
    stored = _value(product, field)
    if op == "is_empty":
        return stored in (MISSING, None, "", [])
    if field == "category":
        if op == "eq":
            return value in stored
        if op == "in":
            return bool(set(value) & set(stored))
        ids = value if isinstance(value, list) else [value]
        return bool({c for i in ids for c in subtrees[i]} & set(stored))
    if field == "tags":
        tags = stored if isinstance(stored, list) else []
        if op == "contains":
            return value in tags
        if op == "contains_all":
            return set(value) <= set(tags)
        if op in ("contains_any", "in"):
            return bool(set(value) & set(tags))
        if op == "eq":
            return isinstance(stored, list) and set(tags) == set(value)
        raise AssertionError(op)
    typed, convert = _typed(field, stored if stored is not MISSING else None)
    if typed is None:
        return False
    if op == "eq":
        return typed == convert(value)
    if op == "in":
        return typed in [convert(v) for v in value]
    if op in ("gt", "gte", "lt", "lte"):
        bound = convert(value)
        return {
            "gt": typed > bound,
            "gte": typed >= bound,
            "lt": typed < bound,
            "lte": typed <= bound,
        }[op]
    if op == "between":
        return convert(value[0]) <= typed <= convert(value[1])
    if op == "contains":
        return value in typed
    if op == "icontains":
        return value.lower() in typed.lower()
    if op == "starts_with":
        return typed.startswith(value)
    if op == "ends_with":
        return typed.endswith(value)
    raise AssertionError(op)


# --- helpers ------------------------------------------------------------------------------------


async def make_categories(client, tenant) -> tuple[dict[str, int], dict[int, list[int]]]:
    ids: dict[str, int] = {}
    for name, parent in [
        ("Men", None),
        ("Shoes", "Men"),
        ("Running", "Shoes"),
        ("Women", None),
        ("Kids", None),
    ]:
        body = {"name": name, "parent_id": ids[parent] if parent else None}
        response = await client.post(CATEGORIES, json=body, headers=tenant.editor)
        assert response.status_code == 201, response.text
        ids[name] = response.json()["id"]
    subtrees = {
        ids["Men"]: [ids["Men"], ids["Shoes"], ids["Running"]],
        ids["Shoes"]: [ids["Shoes"], ids["Running"]],
        ids["Running"]: [ids["Running"]],
        ids["Women"]: [ids["Women"]],
        ids["Kids"]: [ids["Kids"]],
    }
    return ids, subtrees


def random_product(rng: random.Random, i: int, category_ids: list[int]) -> dict:
    item = {
        "sku": f"SKU-{i:05d}",
        "name": f"{rng.choice(NAMES)} {i}",
        "status": rng.choice(["active", "active", "inactive"]),
        "categories": rng.sample(category_ids, k=rng.randint(0, 2)),
    }
    if (brand := rng.choice(BRANDS)) is not None:
        item["brand"] = brand
    if rng.random() < 0.85:
        item["price"] = rng.choice([round(rng.uniform(0, 300), 2), rng.randint(0, 300)])
    if rng.random() < 0.8:
        item["stock"] = rng.randint(0, 10)
    if rng.random() < 0.8:
        item["tags"] = rng.sample(TAGS, k=rng.randint(0, 3))
    if rng.random() < 0.8:
        item["released"] = (
            f"{rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        )
    if rng.random() < 0.5:
        item["color"] = rng.choice(["red", "green", "blue"])
    return item


async def seed(client, tenant, n=240, seed_value=7):
    assert (
        await client.put(SCHEMA, json={"fields": FIELDS}, headers=tenant.editor)
    ).status_code == 200
    categories, subtrees = await make_categories(client, tenant)
    rng = random.Random(seed_value)
    items = [random_product(rng, i, list(categories.values())) for i in range(n)]
    response = await client.post(BULK, json={"products": items}, headers=tenant.editor)
    assert response.status_code == 200 and response.json()["failed"] == 0, response.text
    return categories, subtrees


async def all_products(client, tenant) -> list[dict]:
    products, page = [], 1
    while True:
        response = await client.get(
            PRODUCTS, params={"page": page, "page_size": 200}, headers=tenant.viewer
        )
        assert response.status_code == 200
        body = response.json()
        products += body["results"]
        if not body["next"]:
            return sorted(products, key=lambda p: p["id"])
        page += 1


def nested_definition(categories) -> dict:
    return {
        "match": "all",
        "conditions": [
            {"field": "status", "op": "eq", "value": "active"},
            {
                "match": "any",
                "conditions": [
                    {"field": "brand", "op": "in", "value": ["Nike", "O'Neil"]},
                    {
                        "match": "all",
                        "conditions": [
                            {"field": "price", "op": "between", "value": [50, 200.5]},
                            {"field": "tags", "op": "contains_any", "value": ["running", "trail"]},
                        ],
                    },
                    {"field": "category", "op": "in_category", "value": categories["Men"]},
                ],
            },
            {
                "not": {
                    "match": "any",
                    "conditions": [
                        {"field": "name", "op": "icontains", "value": "KIDS"},
                        {"field": "released", "op": "lt", "value": "2021-06-01"},
                    ],
                }
            },
            {"field": "stock", "op": "ne", "value": 0},
        ],
    }


async def create_segment(client, tenant, definition, name="Segment") -> dict:
    response = await client.post(
        SEGMENTS, json={"name": name, "definition": definition}, headers=tenant.editor
    )
    assert response.status_code == 201, response.text
    return response.json()


async def wait_until_computed(client, tenant, segment_id, after=None) -> dict:
    async def done():
        body = (await client.get(f"{SEGMENTS}{segment_id}/", headers=tenant.viewer)).json()
        if body["status"] == "failed":
            raise AssertionError(body)
        fresh = body["last_computed_at"] is not None and body["last_computed_at"] != after
        return body if body["status"] == "ready" and fresh else None

    return await wait_for(done, timeout=60)


async def read_members(client, tenant, segment_id, page_size) -> tuple[list[int], int]:
    ids, cursor, count = [], None, None
    while True:
        params = {"limit": page_size} | ({"cursor": cursor} if cursor else {})
        response = await client.get(
            f"{SEGMENTS}{segment_id}/members/", params=params, headers=tenant.viewer
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["results"]) <= page_size
        count = body["count"]
        ids += [p["id"] for p in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, count


async def generation_seq(app, segment_id) -> int:
    async with app.state.sessionmaker() as session:
        return await session.scalar(
            text("SELECT generation_seq FROM segments WHERE id = :id"), {"id": segment_id}
        )


# --- tests --------------------------------------------------------------------------------------


async def test_preview_matches_a_ground_truth(client, tenant, other_tenant):
    categories, subtrees = await seed(client, tenant)
    await seed(
        client, other_tenant, n=60, seed_value=8
    )  # same SKUs in another tenant: never counted
    products = await all_products(client, tenant)
    m = categories
    definitions = [
        nested_definition(categories),
        {
            "match": "any",
            "conditions": [
                {"field": "brand", "op": "is_empty"},
                {"field": "tags", "op": "eq", "value": ["sale", "new"]},
                {"field": "price", "op": "gt", "value": 250},
            ],
        },
        {
            "match": "all",
            "conditions": [
                {"field": "tags", "op": "contains", "value": "kids"},
                {"field": "tags", "op": "is_not_empty"},
                {"not": {"field": "category", "op": "in", "value": [m["Women"], m["Kids"]]}},
                {"field": "created_at", "op": "gte", "value": "2000-01-01"},
                {"field": "updated_at", "op": "lt", "value": "2100-01-01T00:00:00Z"},
            ],
        },
        {
            "match": "any",
            "conditions": [
                {"field": "name", "op": "contains", "value": "50%"},
                {"field": "name", "op": "starts_with", "value": "kids_"},
                {"field": "sku", "op": "ends_with", "value": "7"},
            ],
        },
        {
            "match": "all",
            "conditions": [
                {"field": "brand", "op": "not_in", "value": ["Nike", "Puma"]},
                {"field": "released", "op": "between", "value": ["2022-01-01", "2024-12-31"]},
                {"field": "stock", "op": "in", "value": [1, 2, 3]},
                {"field": "color", "op": "ne", "value": "red"},
                {"field": "category", "op": "eq", "value": m["Shoes"]},
            ],
        },
        {
            "not": {
                "match": "any",
                "conditions": [
                    {"field": "price", "op": "lte", "value": 100},
                    {"field": "tags", "op": "contains_all", "value": ["running", "sale"]},
                    {"field": "brand", "op": "not_contains", "value": "i"},
                ],
            }
        },
        {"match": "all", "conditions": []},
    ]
    for definition in definitions:
        expected = [p["sku"] for p in products if matches(p, definition, subtrees)]
        response = await client.post(PREVIEW, json=definition, headers=tenant.viewer)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["count"] == len(expected), definition
        assert body["skus"] == expected[:100]
        assert body["sql"].startswith("SELECT products.id, products.sku")
        assert f"products.tenant_id = {tenant.id}" in body["sql"]
    # the nested definition is a real test: it selects some products, not none or all
    nested = [p for p in products if matches(p, definitions[0], subtrees)]
    assert 10 < len(nested) < len(products) - 10
    shown = (await client.post(PREVIEW, json=definitions[0], headers=tenant.viewer)).json()["sql"]
    assert "'O''Neil'" in shown and "BETWEEN 50 AND 200.5" in shown and "ILIKE '%KIDS%'" in shown


async def test_injection_strings_match_nothing(client, tenant):
    _categories, subtrees = await seed(client, tenant, n=40)
    products = await all_products(client, tenant)
    hostile = [
        "x' OR '1'='1",
        "'; DROP TABLE products; --",
        "Nike' --",
        '{"brand": "Nike"}',
        "%' OR 1=1 --",
        "\\",
    ]
    wildcards = [
        "%",
        "_",
    ]  # LIKE wildcards are matched literally (some names hold "50%" or "kids_")
    for value in hostile + wildcards:
        for definition in [
            {"field": "brand", "op": "eq", "value": value},
            {"field": "brand", "op": "in", "value": [value]},
            {"field": "name", "op": "contains", "value": value},
            {"field": "sku", "op": "icontains", "value": value},
            {"field": "name", "op": "starts_with", "value": value},
            {"field": "tags", "op": "contains_any", "value": [value]},
            {"field": "tags", "op": "contains", "value": value},
        ]:
            response = await client.post(PREVIEW, json=definition, headers=tenant.viewer)
            assert response.status_code == 200, response.text
            expected = sum(matches(p, definition, subtrees) for p in products)
            assert response.json()["count"] == expected, definition
            if value in hostile:
                assert expected == 0
    response = await client.post(
        PREVIEW,
        json={"field": "brand') OR 1=1 --", "op": "eq", "value": "x"},
        headers=tenant.viewer,
    )
    assert response.status_code == 400 and response.json()["detail"].startswith(
        "field: unknown field"
    )
    assert len(await all_products(client, tenant)) == len(products)


async def test_errors_name_the_place(client, tenant):
    await seed(client, tenant, n=5)
    bad = {
        "match": "all",
        "conditions": [
            {"field": "brand", "op": "eq", "value": "Nike"},
            {"match": "any", "conditions": [{"field": "price", "op": "gt", "value": "cheap"}]},
        ],
    }
    for method, url in [("POST", SEGMENTS), ("POST", PREVIEW)]:
        body = {"name": "x", "definition": bad} if url == SEGMENTS else bad
        response = await client.request(method, url, json=body, headers=tenant.editor)
        assert response.status_code == 400
        assert response.json()["detail"].startswith("conditions[1].conditions[0].value: "), (
            response.json()
        )
    segment = await create_segment(client, tenant, {"match": "all", "conditions": []})
    response = await client.patch(
        f"{SEGMENTS}{segment['id']}/", json={"definition": bad}, headers=tenant.editor
    )
    assert response.status_code == 400 and response.json()["detail"].startswith(
        "conditions[1].conditions[0].value: "
    )
    cases = [
        (
            {"match": "all", "conditions": [{"field": "nope", "op": "eq", "value": 1}]},
            "conditions[0].field: unknown field",
        ),
        (
            {"match": "all", "conditions": [{"field": "price", "op": "contains", "value": "1"}]},
            "conditions[0].op: ",
        ),
        (
            {
                "match": "all",
                "conditions": [{"field": "category", "op": "in_category", "value": 2**40}],
            },
            "conditions[0].value: unknown category",
        ),
        ("everything", "definition: must be an object"),
    ]
    deep = {"field": "brand", "op": "eq", "value": "x"}
    for _ in range(9):
        deep = {"match": "all", "conditions": [deep]}
    cases.append(
        (
            deep,
            "conditions[0]"
            + ".conditions[0]" * 7
            + ": groups and negations are nested more than 8",
        )
    )
    many = {
        "match": "any",
        "conditions": [{"field": "sku", "op": "eq", "value": str(i)} for i in range(201)],
    }
    cases.append((many, "conditions[200]: more than 200 conditions"))
    for definition, detail in cases:
        response = await client.post(PREVIEW, json=definition, headers=tenant.viewer)
        assert response.status_code == 400, response.text
        assert response.json()["detail"].startswith(detail), response.json()
    # the shape of the rest of the body is a normal request validation error
    response = await client.post(
        SEGMENTS, json={"definition": {"match": "all", "conditions": []}}, headers=tenant.editor
    )
    assert response.status_code == 422


async def test_crud_roles_and_tenants(client, tenant, other_tenant):
    await seed(client, tenant, n=5)
    definition = {"match": "all", "conditions": [{"field": "brand", "op": "eq", "value": "Nike"}]}
    forbidden = await client.post(
        SEGMENTS, json={"name": "x", "definition": definition}, headers=tenant.viewer
    )
    assert forbidden.status_code == 403
    segment = await create_segment(client, tenant, definition, name="Nike")
    assert set(segment) == {
        "id",
        "name",
        "description",
        "definition",
        "status",
        "computed_count",
        "last_computed_at",
        "last_error",
        "created_at",
        "updated_at",
    }
    assert (
        segment["status"] == "new"
        and segment["computed_count"] is None
        and segment["definition"] == definition
    )
    sid = segment["id"]
    assert (await client.get(SEGMENTS, headers=tenant.viewer)).json() == {
        "results": [segment],
        "next_cursor": None,
    }
    assert (
        await client.get(f"{SEGMENTS}{sid}", headers=tenant.viewer)
    ).json() == segment  # no trailing slash
    assert (await client.post(PREVIEW, json=definition, headers=tenant.viewer)).status_code == 200
    for method, url, body in [
        ("PATCH", f"{SEGMENTS}{sid}/", {"name": "y"}),
        ("DELETE", f"{SEGMENTS}{sid}/", None),
        ("POST", f"{SEGMENTS}{sid}/compute/", None),
    ]:
        assert (
            await client.request(method, url, json=body, headers=tenant.viewer)
        ).status_code == 403
    patched = await client.patch(
        f"{SEGMENTS}{sid}/", json={"name": "Nike shoes", "description": "d"}, headers=tenant.editor
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Nike shoes" and patched.json()["definition"] == definition

    # another tenant sees none of it
    assert (await client.get(SEGMENTS, headers=other_tenant.admin)).json()["results"] == []
    for method, url, body in [
        ("GET", f"{SEGMENTS}{sid}/", None),
        ("PATCH", f"{SEGMENTS}{sid}/", {"name": "mine"}),
        ("POST", f"{SEGMENTS}{sid}/compute/", None),
        ("GET", f"{SEGMENTS}{sid}/members/", None),
        ("DELETE", f"{SEGMENTS}{sid}/", None),
    ]:
        response = await client.request(method, url, json=body, headers=other_tenant.admin)
        assert response.status_code == 404, (method, url, response.text)
    assert (await client.get(f"{SEGMENTS}{sid}/", headers=tenant.viewer)).json()[
        "name"
    ] == "Nike shoes"

    assert (await client.delete(f"{SEGMENTS}{sid}/", headers=tenant.editor)).status_code == 204
    assert (await client.get(f"{SEGMENTS}{sid}/", headers=tenant.viewer)).status_code == 404
    assert (await client.get(f"{SEGMENTS}2147483647/", headers=tenant.viewer)).status_code == 404


async def test_compute_members_and_recompute(client, tenant, worker, app):
    categories, subtrees = await seed(client, tenant, n=300, seed_value=11)
    definition = nested_definition(categories)
    segment = await create_segment(client, tenant, definition)
    sid = segment["id"]
    response = await client.get(f"{SEGMENTS}{sid}/members/", headers=tenant.viewer)
    assert response.status_code == 409

    response = await client.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
    assert response.status_code == 200 and response.json() == {
        "status": "queued",
        "segment_id": sid,
    }
    computed = await wait_until_computed(client, tenant, sid)
    products = await all_products(client, tenant)
    expected = [p["id"] for p in products if matches(p, definition, subtrees)]
    assert computed["computed_count"] == len(expected) and computed["last_error"] is None

    ids, count = await read_members(client, tenant, sid, page_size=7)
    assert count == len(expected)
    assert ids == expected  # each member exactly once, in product id order
    page = (await client.get(f"{SEGMENTS}{sid}/members/", headers=tenant.viewer)).json()
    assert len(page["results"]) == min(50, len(expected))
    assert (page["next_cursor"] is not None) == (len(expected) > 50)
    assert set(page["results"][0]) >= {"id", "sku", "name", "data", "categories"}
    too_big = await client.get(
        f"{SEGMENTS}{sid}/members/", params={"page_size": 201}, headers=tenant.viewer
    )
    assert too_big.status_code == 400
    # a cursor is opaque (issue 17): an offset is not one
    not_a_cursor = await client.get(
        f"{SEGMENTS}{sid}/members/", params={"cursor": 10_000}, headers=tenant.viewer
    )
    assert not_a_cursor.status_code == 400

    # change products: some stop matching, some start, one is deleted
    by_sku = {p["sku"]: p for p in products}
    members = [p for p in products if p["id"] in set(expected)]
    outsiders = [p for p in products if p["id"] not in set(expected)]
    changes = [{"sku": p["sku"], "stock": 0} for p in members[:5]]
    changes += [
        {
            "sku": p["sku"],
            "status": "active",
            "brand": "Nike",
            "stock": 3,
            "name": f"Plain {p['id']}",
            "released": "2024-05-05",
        }
        for p in outsiders[:7]
    ]
    response = await client.post(BULK, json={"products": changes}, headers=tenant.editor)
    assert response.json()["failed"] == 0
    deleted = members[6]
    assert (
        await client.delete(f"{PRODUCTS}{deleted['id']}/", headers=tenant.editor)
    ).status_code == 204
    # until the recompute the members stay as computed (minus the deleted product)
    ids, count = await read_members(client, tenant, sid, page_size=50)
    assert count == len(expected) and ids == [i for i in expected if i != deleted["id"]]

    # a reader in the middle of the members when the recompute lands
    before = (
        await client.get(f"{SEGMENTS}{sid}/members/", params={"limit": 10}, headers=tenant.viewer)
    ).json()
    assert before["next_cursor"]
    assert (
        await client.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
    ).status_code == 200
    recomputed = await wait_until_computed(client, tenant, sid, after=computed["last_computed_at"])
    products = await all_products(client, tenant)
    expected = [p["id"] for p in products if matches(p, definition, subtrees)]
    # its cursor continues after the last product it read, in the new members
    last_read, rest, cursor = before["results"][-1]["id"], [], before["next_cursor"]
    while cursor:
        page = (
            await client.get(
                f"{SEGMENTS}{sid}/members/",
                params={"limit": 10, "cursor": cursor},
                headers=tenant.viewer,
            )
        ).json()
        rest += [p["id"] for p in page["results"]]
        cursor = page["next_cursor"]
    assert rest == [i for i in expected if i > last_read]
    assert recomputed["computed_count"] == len(expected)
    assert {by_sku[c["sku"]]["id"] for c in changes[5:]} <= set(expected)
    assert not {by_sku[c["sku"]]["id"] for c in changes[:5]} & set(expected)
    ids, count = await read_members(client, tenant, sid, page_size=13)
    assert ids == expected and count == len(expected)

    # a schema change that breaks the definition fails the next compute with a reason
    fields = [f for f in FIELDS if f["name"] != "stock"]
    assert (
        await client.put(SCHEMA, json={"fields": fields}, headers=tenant.editor)
    ).status_code == 200
    assert (
        await client.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
    ).status_code == 200

    async def failed():
        body = (await client.get(f"{SEGMENTS}{sid}/", headers=tenant.viewer)).json()
        return body if body["status"] == "failed" else None

    body = await wait_for(failed, timeout=60)
    assert body["last_error"].startswith("conditions[3].field: unknown field 'stock'")
    # the last good members stay readable
    assert (await read_members(client, tenant, sid, page_size=200))[0] == expected


async def test_quick_repeated_computes_coalesce(client, tenant, worker, app):
    await seed(client, tenant, n=50)
    segment = await create_segment(
        client,
        tenant,
        {"match": "all", "conditions": [{"field": "stock", "op": "gte", "value": 2}]},
    )
    sid = segment["id"]
    before = await generation_seq(app, sid)
    for _ in range(5):
        response = await client.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
        assert response.status_code == 200 and response.json()["status"] == "queued"
    await wait_until_computed(client, tenant, sid)
    await asyncio.sleep(1.5)  # a straggler run would have started by now
    body = (await client.get(f"{SEGMENTS}{sid}/", headers=tenant.viewer)).json()
    assert body["status"] == "ready"
    runs = await generation_seq(app, sid) - before
    assert 1 <= runs <= 2, runs

    # concurrent requests too
    before = await generation_seq(app, sid)
    responses = await asyncio.gather(
        *[client.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor) for _ in range(5)]
    )
    assert all(r.status_code == 200 for r in responses)
    await wait_for(lambda: _status_is(client, tenant, sid, "ready"), timeout=60)
    await asyncio.sleep(1.5)
    assert 1 <= await generation_seq(app, sid) - before <= 2


async def _status_is(client, tenant, sid, status):
    body = (await client.get(f"{SEGMENTS}{sid}/", headers=tenant.viewer)).json()
    return body["status"] == status and await asyncio.sleep(0, result=True)


async def test_backing_services_down(client, tenant, worker, app, settings):
    await seed(client, tenant, n=20)
    segment = await create_segment(client, tenant, {"field": "stock", "op": "gte", "value": 0})
    sid = segment["id"]

    # Redis down: 503 and the segment is left as it was
    real_arq = app.state.arq
    app.state.arq = ArqRedis.from_url(
        "redis://127.0.0.1:1/0", socket_connect_timeout=1, socket_timeout=1
    )
    try:
        response = await client.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
    finally:
        await app.state.arq.aclose()
        app.state.arq = real_arq
    assert response.status_code == 503 and "Redis" in response.json()["detail"]
    assert (await client.get(f"{SEGMENTS}{sid}/", headers=tenant.viewer)).json()["status"] == "new"

    assert (
        await client.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
    ).status_code == 200
    await wait_until_computed(client, tenant, sid)

    # ClickHouse down: members answer 503
    real_clickhouse = app.state.clickhouse
    app.state.clickhouse = ClickHouse(
        settings.model_copy(update={"clickhouse_url": "clickhouse://default:@127.0.0.1:1/pim"})
    )
    try:
        response = await client.get(f"{SEGMENTS}{sid}/members/", headers=tenant.viewer)
        deleted = await client.delete(
            f"{SEGMENTS}{sid}/", headers=tenant.editor
        )  # best effort: still deleted
    finally:
        await app.state.clickhouse.close()
        app.state.clickhouse = real_clickhouse
    assert response.status_code == 503
    assert deleted.status_code == 204


async def test_date_conditions_survive_parallel_plans(client, tenant, app):
    """pim_date/pim_timestamptz trap cast errors in a subtransaction, which a parallel plan forbids."""
    _categories, subtrees = await seed(client, tenant, n=40)
    definition = {
        "match": "any",
        "conditions": [
            {"field": "released", "op": "gte", "value": "2023-01-01"},
            {"field": "updated_at", "op": "gte", "value": "2100-01-01"},
        ],
    }
    expected = [
        p["id"] for p in await all_products(client, tenant) if matches(p, definition, subtrees)
    ]
    async with app.state.sessionmaker() as session:
        session.info["tenant_id"] = tenant.id
        async with session.begin():
            version = int(
                await session.scalar(text("SELECT current_setting('server_version_num')"))
            )
            force = "debug_parallel_query" if version >= 160000 else "force_parallel_mode"
            await session.execute(
                text(f"SET LOCAL {force} = on")
            )  # a parallel plan even for a small tenant
            _node, predicate = await compile_predicate(session, definition)
            ids = list(
                await session.scalars(matching_products(predicate).with_only_columns(Product.id))
            )
    assert ids == expected


async def test_compute_retries_then_fails_while_clickhouse_is_down(client, tenant, app, settings):
    """The task itself, in process, against real Postgres and a ClickHouse address where nothing listens."""

    await seed(client, tenant, n=10)
    segment = await create_segment(client, tenant, {"field": "stock", "op": "gte", "value": 0})
    dead = ClickHouse(
        settings.model_copy(update={"clickhouse_url": "clickhouse://default:@127.0.0.1:1/pim"})
    )
    ctx = {"sessionmaker": app.state.sessionmaker, "clickhouse": dead, "job_try": 1}
    try:
        with pytest.raises(Retry):
            await compute_segment(ctx, tenant.id, segment["id"])
        body = (await client.get(f"{SEGMENTS}{segment['id']}/", headers=tenant.viewer)).json()
        assert body["status"] == "queued"
        assert body["last_error"].startswith(
            f"try 1 of {MAX_TRIES} failed, retrying: Unavailable: ClickHouse"
        )
        ctx["job_try"] = MAX_TRIES
        assert (await compute_segment(ctx, tenant.id, segment["id"]))["status"] == "failed"
    finally:
        await dead.close()
    body = (await client.get(f"{SEGMENTS}{segment['id']}/", headers=tenant.viewer)).json()
    assert body["status"] == "failed" and body["last_error"].startswith(
        f"failed after {MAX_TRIES} tries"
    )
    assert body["computed_count"] is None
    assert (
        await client.get(f"{SEGMENTS}{segment['id']}/members/", headers=tenant.viewer)
    ).status_code == 409
