"""POST /api/pim/products/search/ and /api/pim/facets/search/: the list and facets for a predicate in
the segment DSL (with `any` and `not`), checked against a Python evaluation of the same predicate over
seeded random products."""

import random
from collections import Counter
from decimal import Decimal

import pytest

SEARCH = "/api/pim/products/search/"
FACETS = "/api/pim/facets/search/"
SCHEMA = [
    {"name": "brand", "type": "string"},
    {"name": "color", "type": "enum", "options": ["red", "green", "blue"]},
    {"name": "price", "type": "number"},
    {"name": "stock", "type": "integer"},
    {"name": "tags", "type": "array"},
    {"name": "launch", "type": "date"},
    {"name": "active", "type": "boolean"},
]
BRANDS = ["Acme", "Bolt", "Core", "Dune"]
COLORS = ["red", "green", "blue"]
TAGS = ["a", "b", "c", "d"]
DATES = [f"2024-{m:02d}-{d:02d}" for m in (1, 4, 7) for d in (1, 15)]


def random_product(i: int, rng: random.Random, categories: list[int]) -> dict:
    product = {
        "sku": f"S{i:03d}",
        "name": f"Item {i}",
        "status": rng.choice(["active", "inactive"]),
        "categories": rng.sample(categories, rng.randint(0, 2)),
    }
    values = {
        "brand": rng.choice(BRANDS),
        "color": rng.choice(COLORS),
        "price": rng.choice([rng.randint(0, 50), rng.randint(0, 5000) / 100]),
        "stock": rng.randint(0, 20),
        "tags": rng.sample(TAGS, rng.randint(0, 3)),
        "launch": rng.choice(DATES),
        "active": rng.choice([True, False]),
    }
    product.update({k: v for k, v in values.items() if rng.random() > 0.2})
    return product


# --- the DSL in Python ---------------------------------------------------------------------------


def _empty(value) -> bool:
    return value is None or value == "" or value == []


def _number(value):
    return None if value is None or isinstance(value, bool) else Decimal(str(value))


def holds(node: dict, product: dict, subtrees: dict[int, list[int]]) -> bool:
    if "match" in node:
        results = [holds(c, product, subtrees) for c in node["conditions"]]
        return all(results) if node["match"] == "all" else any(results)
    if "not" in node:
        return not holds(node["not"], product, subtrees)
    field, op, value = node["field"], node["op"], node.get("value")
    negative = {"ne": "eq", "not_in": "in", "not_contains": "contains", "is_not_empty": "is_empty"}
    if op in negative:
        return not holds({**node, "op": negative[op]}, product, subtrees)
    if field == "category":
        cats = set(product["categories"])
        if op == "is_empty":
            return not cats
        if op == "eq":
            return value in cats
        if op == "in":
            return bool(cats & set(value))
        return bool(
            cats & {c for v in (value if isinstance(value, list) else [value]) for c in subtrees[v]}
        )
    stored = product.get(field)
    if op == "is_empty":
        return _empty(stored)
    if field == "tags":
        if stored is None:
            return False
        if op == "contains":
            return value in stored
        if op == "contains_all":
            return set(value) <= set(stored)
        if op in ("contains_any", "in"):
            return bool(set(value) & set(stored))
        return set(value) == set(stored)  # eq
    if stored is None:
        return False
    if field in ("price", "stock"):
        stored, value = (
            _number(stored),
            [_number(v) for v in value] if isinstance(value, list) else _number(value),
        )
    if op == "eq":
        return stored == value
    if op == "in":
        return stored in value
    if op == "between":
        return value[0] <= stored <= value[1]
    if op in ("gt", "gte", "lt", "lte"):
        return {
            "gt": stored > value,
            "gte": stored >= value,
            "lt": stored < value,
            "lte": stored <= value,
        }[op]
    return {
        "contains": value in stored,
        "icontains": value.lower() in stored.lower(),
        "starts_with": stored.startswith(value),
        "ends_with": stored.endswith(value),
    }[op]


def random_condition(rng: random.Random, categories: list[int]) -> dict:
    field = rng.choice(
        [
            "brand",
            "color",
            "price",
            "stock",
            "tags",
            "launch",
            "active",
            "category",
            "sku",
            "status",
        ]
    )
    if field in ("brand", "color", "sku", "status"):
        pool = {
            "brand": BRANDS,
            "color": COLORS,
            "sku": [f"S{i:03d}" for i in range(0, 120, 7)],
            "status": ["active", "inactive"],
        }[field]
        op = rng.choice(
            [
                "eq",
                "ne",
                "in",
                "not_in",
                "is_empty",
                "is_not_empty",
                "contains",
                "not_contains",
                "icontains",
                "starts_with",
                "ends_with",
            ]
        )
        if field == "status" and op in ("is_empty", "is_not_empty"):
            op = "eq"
        if op in ("in", "not_in"):
            value = rng.sample(pool, rng.randint(1, 2))
        elif op in ("contains", "not_contains", "starts_with", "ends_with"):
            word = rng.choice(pool)
            value = (
                word[:2] if op == "starts_with" else word[-2:] if op != "contains" else word[1:3]
            )
        elif op == "icontains":
            value = rng.choice(pool)[1:3].upper()
        else:
            value = rng.choice(pool)
    elif field in ("price", "stock", "launch"):
        pool = DATES if field == "launch" else [0, 5, 10, 12.5, 20, 30.25]
        op = rng.choice(
            [
                "eq",
                "ne",
                "in",
                "not_in",
                "gt",
                "gte",
                "lt",
                "lte",
                "between",
                "is_empty",
                "is_not_empty",
            ]
        )
        if op in ("in", "not_in"):
            value = rng.sample(pool, 2)
        elif op == "between":
            value = sorted(rng.sample(pool, 2))
        else:
            value = rng.choice(pool)
    elif field == "active":
        op = rng.choice(["eq", "ne", "in", "is_empty", "is_not_empty"])
        value = [rng.choice([True, False])] if op == "in" else rng.choice([True, False])
    elif field == "tags":
        op = rng.choice(
            [
                "contains",
                "contains_all",
                "contains_any",
                "in",
                "not_in",
                "eq",
                "ne",
                "is_empty",
                "is_not_empty",
            ]
        )
        value = rng.choice(TAGS) if op == "contains" else rng.sample(TAGS, rng.randint(1, 2))
    else:
        op = rng.choice(["in_category", "eq", "in", "is_empty", "ne", "not_in"])
        value = rng.sample(categories, 2) if op in ("in", "not_in") else rng.choice(categories)
    node = {"field": field, "op": op}
    if op not in ("is_empty", "is_not_empty"):
        node["value"] = value
    return node


def random_tree(rng: random.Random, categories: list[int], depth: int = 0) -> dict:
    roll = rng.random()
    if depth >= 3 or roll < 0.4:
        return random_condition(rng, categories)
    if roll < 0.6:
        return {"not": random_tree(rng, categories, depth + 1)}
    return {
        "match": rng.choice(["all", "any"]),
        "conditions": [random_tree(rng, categories, depth + 1) for _ in range(rng.randint(0, 3))],
    }


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
async def catalog(client, tenant, other_tenant):
    """120 seeded random products in a small category tree; the other tenant has look-alikes."""
    rng = random.Random(14)
    for owner in (other_tenant, tenant):
        h = owner.editor
        assert (
            await client.put("/api/pim/schema/", json={"fields": SCHEMA}, headers=h)
        ).status_code == 200
        root = (await client.post("/api/pim/categories/", json={"name": "Root"}, headers=h)).json()[
            "id"
        ]
        child = (
            await client.post(
                "/api/pim/categories/", json={"name": "Child", "parent_id": root}, headers=h
            )
        ).json()["id"]
        leaf = (
            await client.post(
                "/api/pim/categories/", json={"name": "Leaf", "parent_id": child}, headers=h
            )
        ).json()["id"]
        other = (
            await client.post("/api/pim/categories/", json={"name": "Other"}, headers=h)
        ).json()["id"]
        ids = [root, child, leaf, other]
        products = [random_product(i, rng, ids) for i in range(120)]
        response = await client.post(
            "/api/pim/products/bulk/", json={"products": products}, headers=h
        )
        assert response.json()["failed"] == 0, response.text
    subtrees = {root: [root, child, leaf], child: [child, leaf], leaf: [leaf], other: [other]}
    return products, ids, subtrees


async def _search_skus(client, tenant, where) -> tuple[int, set[str]]:
    response = await client.post(
        SEARCH, json={"where": where, "page_size": 200}, headers=tenant.viewer
    )
    assert response.status_code == 200, (where, response.text)
    body = response.json()
    return body["count"], {p["sku"] for p in body["results"]}


# --- tests ------------------------------------------------------------------------------------------


async def test_search_matches_a_python_evaluation_of_random_predicates(client, tenant, catalog):
    products, ids, subtrees = catalog
    rng = random.Random(1414)
    trees = [random_tree(rng, ids) for _ in range(120)]
    ors = nots = 0
    for where in trees:
        expected = {p["sku"] for p in products if holds(where, p, subtrees)}
        count, skus = await _search_skus(client, tenant, where)
        assert (count, skus) == (len(expected), expected), where
        text = str(where)
        ors += "'any'" in text
        nots += "'not'" in text
    assert (
        ors > 10 and nots > 10
    )  # the point: OR and NOT, which the query-string filters cannot say


async def test_search_orders_and_pages_like_the_list(client, tenant, catalog):
    products, _ids, subtrees = catalog
    where = {
        "match": "any",
        "conditions": [
            {"field": "brand", "op": "eq", "value": "Acme"},
            {"not": {"field": "price", "op": "gte", "value": 10}},
        ],
    }
    expected = [p for p in products if holds(where, p, subtrees)]
    assert len(expected) > 10
    pages, page = [], 1
    while page is not None:
        body = (
            await client.post(
                SEARCH,
                json={"where": where, "ordering": "-sku", "page": page, "page_size": 7},
                headers=tenant.viewer,
            )
        ).json()
        assert body["count"] == len(expected) and body["page_size"] == 7
        pages += [p["sku"] for p in body["results"]]
        page = body["next"]
    assert pages == sorted((p["sku"] for p in expected), reverse=True)
    # the same page as the list's query-string filter when the predicate says the same
    listed = (
        await client.get(
            "/api/pim/products/",
            params={"brand": "Acme", "ordering": "price"},
            headers=tenant.viewer,
        )
    ).json()
    searched = (
        await client.post(
            SEARCH,
            json={"where": {"field": "brand", "op": "eq", "value": "Acme"}, "ordering": "price"},
            headers=tenant.viewer,
        )
    ).json()
    assert searched["results"] == listed["results"] and searched["count"] == listed["count"]


def _python_facets(products: list[dict]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = {"brand": Counter(), "color": Counter(), "tags": Counter()}
    for p in products:
        for name in ("brand", "color"):
            if isinstance(p.get(name), str):
                counts[name][p[name]] += 1
        for tag in set(p.get("tags") or []):
            counts["tags"][tag] += 1
    return {name: dict(c) for name, c in counts.items()}


async def test_facet_search_matches_a_python_evaluation(client, tenant, catalog):
    products, ids, subtrees = catalog
    rng = random.Random(4141)
    trees = [{"match": "all", "conditions": []}] + [random_tree(rng, ids) for _ in range(50)]
    for where in trees:
        matching = [p for p in products if holds(where, p, subtrees)]
        response = await client.post(FACETS, json={"where": where}, headers=tenant.viewer)
        assert response.status_code == 200, (where, response.text)
        body = response.json()
        facets = {
            name: {v["value"]: v["count"] for v in values}
            for name, values in body["facets"].items()
        }
        assert body["total"] == len(matching), where
        expected = _python_facets(matching) if matching else {"brand": {}, "color": {}, "tags": {}}
        assert facets == expected, where
        for values in body["facets"].values():  # most frequent first, then by value
            assert [(-v["count"], v["value"]) for v in values] == sorted(
                (-v["count"], v["value"]) for v in values
            )


async def test_search_errors_name_their_place(client, tenant, catalog):
    cases = [
        (
            {"where": {"match": "any", "conditions": [{"field": "nope", "op": "eq", "value": 1}]}},
            "where: conditions[0].field: unknown field",
        ),
        ({"where": {"field": "price", "op": "gt", "value": "x"}}, "where: value: must be a number"),
        (
            {"where": {"field": "category", "op": "in_category", "value": 999_999}},
            "unknown category 999999",
        ),
        ({"where": {"match": "all"}, "page_size": 201}, "page_size must be at most 200"),
        ({"where": {"match": "all"}, "ordering": "nope"}, "Cannot order by 'nope'"),
    ]
    for body, message in cases:
        response = await client.post(SEARCH, json=body, headers=tenant.viewer)
        assert response.status_code == 400 and message in response.text, (body, response.text)
    response = await client.post(
        FACETS,
        json={"where": {"not": {"field": "tags", "op": "gt", "value": "a"}}},
        headers=tenant.viewer,
    )
    assert response.status_code == 400 and "where: not.op: 'gt' does not apply" in response.text
    assert (
        await client.post(SEARCH, json={"filter": {}}, headers=tenant.viewer)
    ).status_code == 422
    # no key, no search
    assert (await client.post(SEARCH, json={})).status_code == 401


async def test_search_sees_only_its_tenant(client, tenant, other_tenant, catalog):
    """The other tenant holds look-alike products (same SKUs and values) and categories with the same names:
    the searches above count only the caller's; here the other tenant's category ids are unknown."""
    _products, ids, _subtrees = catalog
    everything = (await client.post(SEARCH, json={}, headers=tenant.viewer)).json()
    assert everything["count"] == 120
    theirs = (await client.post(SEARCH, json={}, headers=other_tenant.viewer)).json()
    assert theirs["count"] == 120 and not {p["id"] for p in theirs["results"]} & {
        p["id"] for p in everything["results"]
    }
    their_categories = (
        await client.get("/api/pim/categories/", headers=other_tenant.viewer)
    ).json()
    their_ids = [
        c["id"]
        for c in (
            their_categories["results"] if isinstance(their_categories, dict) else their_categories
        )
    ]
    assert not set(their_ids) & set(ids)
    response = await client.post(
        SEARCH,
        json={"where": {"field": "category", "op": "in_category", "value": their_ids[0]}},
        headers=tenant.viewer,
    )
    assert response.status_code == 400 and f"unknown category {their_ids[0]}" in response.text
    facets = (await client.post(FACETS, json={}, headers=tenant.viewer)).json()
    assert facets["total"] == 120
