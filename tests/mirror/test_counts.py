"""One-test filters are counted from the count tables (mirror_entries, mirror_numbers), which the
materialized views keep from every block written to the model: the counts equal Postgres's after
a rebuild and after creates, updates and deletes applied from the change log; a generation the
rebuild did not mark (built before the views) is counted from its rows."""

import random

from app.mirror import reads
from app.mirror.model import COLUMNS, TABLE, State, read_state, write_state
from tests.mirror import test_equivalence as equivalence
from tests.mirror.conftest import (
    LIST,
    SEARCH,
    add_marker,
    bulk,
    clause_of,
    model_is_current,
    put_schema,
    rebuild_model,
    sync_model,
)
from tests.mirror.test_equivalence import FIELDS, both

BRANDS = ["Nike", "Puma", "O'Neill", "a=b", "tags=a", "", "L" * 70]
TAGS = ["a", "b", "x=y", "Nike"]

COUNTED = [
    {"field": "brand", "op": "eq", "value": "Nike"},
    {"field": "brand", "op": "eq", "value": "O'Neill"},
    {"field": "brand", "op": "eq", "value": "a=b"},
    {"field": "brand", "op": "eq", "value": "tags=a"},
    {"field": "brand", "op": "in", "value": ["Nike", "Puma", "Nike"]},
    {"field": "color", "op": "eq", "value": "red"},
    {"field": "color", "op": "in", "value": ["red", "blue"]},
    {"field": "flag", "op": "eq", "value": True},
    {"field": "flag", "op": "eq", "value": False},
    {"field": "price", "op": "eq", "value": 10},
    {"field": "price", "op": "in", "value": [10, 9.99, -5]},
    {"field": "price", "op": "gt", "value": 10},
    {"field": "price", "op": "gte", "value": 10},
    {"field": "price", "op": "lt", "value": 100},
    {"field": "price", "op": "lte", "value": 0},
    {"field": "price", "op": "between", "value": [9.99, 100]},
    {"field": "stock", "op": "between", "value": [3, 7]},
    {"field": "tags", "op": "contains", "value": "a"},
    {"field": "tags", "op": "contains", "value": "Nike"},
    {"field": "tags", "op": "contains", "value": "x=y"},
    {"field": "tags", "op": "contains_any", "value": ["b"]},
    {"field": "tags", "op": "contains_all", "value": ["a", "a"]},
]
# answered by the model's rows (a product may be in two count rows, or in none)
NOT_COUNTED = [
    {"field": "tags", "op": "contains_any", "value": ["a", "b"]},
    {"field": "brand", "op": "ne", "value": "Nike"},
    {"match": "all", "conditions": [COUNTED[0], COUNTED[11]]},
]


def random_data(rng: random.Random) -> dict:
    return equivalence.random_data(rng, brands=BRANDS, tags=TAGS)


async def compare(client, tenant, mirror, definition: dict, *, from_counts: bool) -> int:
    counted = mirror.counted
    body = {"where": definition, "page": 1, "page_size": 5}
    got, expected, used = await both(
        client, mirror, lambda: client.post(SEARCH, json=body, headers=tenant.viewer)
    )
    assert used, definition
    assert got["count"] == expected["count"], definition
    assert [p["id"] for p in got["results"]] == [p["id"] for p in expected["results"]]
    assert (mirror.counted > counted) == from_counts, definition
    return got["count"]


async def test_counts_equal_postgres_after_rebuild_and_after_writes(
    client, tenant, app, mirror, pg, monkeypatch
):
    monkeypatch.setattr(reads, "BEHIND_SKIP_SECONDS", 0.0)
    rng = random.Random(5)
    await put_schema(client, tenant, FIELDS)
    await bulk(client, tenant, [{"sku": f"P{i}", **random_data(rng)} for i in range(400)])
    await rebuild_model(app, pg, tenant.id)
    nonzero = 0
    for definition in COUNTED:
        nonzero += await compare(client, tenant, mirror, definition, from_counts=True) > 0
    assert nonzero >= len(COUNTED) - 2  # the data gives most filters matches
    for definition in NOT_COUNTED:
        await compare(client, tenant, mirror, definition, from_counts=False)

    # updates that move products between values, remove keys and change types; creates; deletes
    changes = []
    for i in rng.sample(range(400), 150):
        item = {"sku": f"P{i}", **random_data(rng)}
        for key in rng.sample(["brand", "price", "tags", "flag"], 2):
            item[key] = None
        changes.append(item)
    await bulk(client, tenant, changes)
    await bulk(client, tenant, [{"sku": f"N{i}", **random_data(rng)} for i in range(30)])
    listed = (await client.get(LIST, params={"page_size": 40}, headers=tenant.viewer)).json()
    for product in listed["results"]:
        response = await client.delete(f"{LIST}{product['id']}/", headers=tenant.editor)
        assert response.status_code == 204
    assert await sync_model(app, pg, tenant.id) >= 0  # the suite's worker may have applied them
    assert await model_is_current(app, pg, tenant.id)
    for definition in COUNTED:
        await compare(client, tenant, mirror, definition, from_counts=True)
    # the same list through its query string
    for params in ({"brand": "O'Neill"}, {"price__gte": "10"}, {"tags": "a"}, {"color": "red"}):
        counted = mirror.counted
        got, expected, used = await both(
            client, mirror, lambda p=params: client.get(LIST, params=p, headers=tenant.viewer)
        )
        assert used and got["count"] == expected["count"], params
        assert mirror.counted > counted, params


async def test_a_generation_without_its_counts_is_counted_from_its_rows(
    client, tenant, app, mirror, pg
):
    await put_schema(client, tenant, FIELDS)
    await bulk(client, tenant, [{"sku": f"S{i}", "brand": "Old", "price": i} for i in range(20)])
    state = await rebuild_model(app, pg, tenant.id)
    # a generation written row by row as before the count tables (no rebuild's mark), beside
    # the marked one: its counts are not used
    generation = state.generation + 1
    columns = ", ".join(COLUMNS)
    copied = ", ".join("%(generation)s" if c == "generation" else c for c in COLUMNS)
    await app.state.clickhouse.execute(
        f"INSERT INTO {TABLE} ({columns}) SELECT {copied} FROM {TABLE} "
        "WHERE tenant_id = %(tenant_id)s AND generation = %(previous)s",
        {"tenant_id": tenant.id, "generation": generation, "previous": state.generation},
    )
    await write_state(app.state.clickhouse, tenant.id, State(generation, state.seq, state.products))
    assert (await read_state(app.state.clickhouse, tenant.id)).generation == generation
    await add_marker(app, tenant.id, kv=["brand=Old"], present=["brand"], filled=["brand"])

    brand_old = clause_of(FIELDS, {"field": "brand", "op": "eq", "value": "Old"})
    counted = mirror.counted
    query = await mirror.query(pg, tenant.id, brand_old)
    assert query is not None
    assert await query.count() == 21  # the marker row: the model answered, from its rows
    assert mirror.counted == counted

    # rebuilt: marked again, and counted from the count tables
    await rebuild_model(app, pg, tenant.id)
    query = await mirror.query(pg, tenant.id, brand_old)
    assert query is not None and await query.count() == 20
    assert mirror.counted == counted + 1


async def test_keys_that_are_no_field_name_are_not_in_the_model(client, tenant, app, mirror, pg):
    """Data keeps keys outside the schema as given; one named `brand=a` holding "b", or `[tags`
    holding "a", would otherwise be counted as brand "a=b" or as the tag "a"."""
    await put_schema(client, tenant, FIELDS)
    await bulk(
        client,
        tenant,
        [
            {"sku": "real", "brand": "a=b", "tags": ["a"], "flag": True},
            {"sku": "odd", "brand=a": "b", "[tags=a": "x", "[tags": ["a"], "flag:true": 1},
        ],
    )
    await rebuild_model(app, pg, tenant.id)
    for definition in (
        {"field": "brand", "op": "eq", "value": "a=b"},
        {"field": "tags", "op": "contains", "value": "a"},
        {"field": "flag", "op": "eq", "value": True},
    ):
        assert await compare(client, tenant, mirror, definition, from_counts=True) == 1
    # and the rows agree (a filter of two tests is counted from them)
    both_tests = {
        "match": "all",
        "conditions": [
            {"field": "brand", "op": "eq", "value": "a=b"},
            {"field": "tags", "op": "contains", "value": "a"},
        ],
    }
    assert await compare(client, tenant, mirror, both_tests, from_counts=False) == 1
