"""The model's first statement: the count, facets or first ids read with the state they come
from, beside the tenant's last seq, and used only when that state has every committed write.

A marker row (`conftest.add_marker`) tells which store answered."""

from app.catalog.fields import FieldDef
from app.mirror import reads
from tests.mirror.conftest import (
    FACETS,
    FACETS_SEARCH,
    SEARCH,
    add_marker,
    bulk,
    clause_of,
    put_schema,
    rebuild_model,
)

PREVIEW = "/api/product-segments/preview/"

FIELDS = [
    {"name": "brand", "type": "string"},
    {"name": "price", "type": "number"},
    {"name": "tags", "type": "array"},
]
DEFS = {f["name"]: FieldDef.model_validate(f) for f in FIELDS}


async def _catalog(app, client, tenant, pg) -> None:
    await put_schema(client, tenant, FIELDS)
    await bulk(
        client,
        tenant,
        [{"sku": f"S{i}", "brand": "Old", "price": i, "tags": ["t"]} for i in range(20)],
    )
    await rebuild_model(app, pg, tenant.id)


def _clause(field: str, op: str, value):
    return clause_of(FIELDS, {"field": field, "op": op, "value": value})


async def test_answers_read_from_a_state_behind_the_request_are_not_used(
    client, tenant, app, mirror, pg
):
    await _catalog(app, client, tenant, pg)
    await add_marker(app, tenant.id, kv=["brand=Old"], present=["brand"], filled=["brand"])
    faceted = [DEFS["brand"], DEFS["tags"]]
    query = await mirror.query(pg, tenant.id, _clause("brand", "eq", "Old"))
    assert query is not None and query.state is not None
    assert await query.count() == 21  # the first statement's, marker included
    assert len(await query.ids(limit=5, offset=0) or []) == 5

    # a request that needs a later write than the model holds: nothing read so far is used,
    # and what is read again (from the same state) is refused too
    query.fresh(query.state.seq + 1, query.state)
    assert await query.count() is None
    assert await query.ids(limit=5, offset=0) is None
    assert await query.facets(faceted) is None

    query = await mirror.query(pg, tenant.id, _clause("brand", "eq", "Old"), faceted=faceted)
    assert query is not None
    assert await query.count() == 21
    assert await query.facets(faceted) == {
        "brand": [{"value": "Old", "count": 21}],
        "tags": [{"value": "t", "count": 20}],
    }


async def test_filtered_facets_without_a_faceted_value_or_without_a_match(
    client, tenant, app, mirror, pg
):
    """The facet statement gives a row (the total's) for any match, which says its state; with
    no match at all the state and the count are read on their own."""
    await _catalog(app, client, tenant, pg)
    await add_marker(app, tenant.id, present=["price"], filled=["price"], nk=["price"], nv=[500.0])

    answers = mirror.answers
    response = await client.get(FACETS, params={"price__gte": "100"}, headers=tenant.viewer)
    assert response.status_code == 200, response.text
    assert response.json() == {"total": 1, "facets": {"brand": [], "tags": []}}  # the marker

    response = await client.get(FACETS, params={"price__gte": "1000"}, headers=tenant.viewer)
    assert response.json() == {"total": 0, "facets": {"brand": [], "tags": []}}

    response = await client.get(FACETS, params={"price__lt": "2"}, headers=tenant.viewer)
    assert response.json() == {
        "total": 2,
        "facets": {"brand": [{"value": "Old", "count": 2}], "tags": [{"value": "t", "count": 2}]},
    }
    assert mirror.answers == answers + 3


async def test_preview_skus_from_a_walk_of_postgres_or_from_the_model(
    client, tenant, other_tenant, app, mirror, pg, monkeypatch
):
    """The preview's count is the model's; its SKUs come from a bounded walk of the tenant's
    products in id order when that finds them all, else by the model's ids."""
    await put_schema(client, other_tenant, FIELDS)
    for i in range(3):  # the other tenant's products between ours in id order
        await bulk(client, other_tenant, [{"sku": f"X{i}", "price": 4}])
        await bulk(client, tenant, [{"sku": f"T{i}", "price": 4}])
    await _catalog(app, client, tenant, pg)

    async def no_ids(*args, **kwargs):
        raise AssertionError("the walk found the SKUs: no ids from the model")

    with monkeypatch.context() as patched:
        patched.setattr(reads.MirrorQuery, "ids", no_ids)
        answers = mirror.answers
        response = await client.post(
            PREVIEW,
            json={"field": "price", "op": "between", "value": [3, 5]},
            headers=tenant.viewer,
        )
        assert response.status_code == 200, response.text
        assert response.json()["count"] == 6
        assert response.json()["skus"] == ["T0", "T1", "T2", "S3", "S4", "S5"]
        assert mirror.answers == answers + 1

    # a match the walk cannot find (the marker, in the model only): SKUs by the model's ids
    await add_marker(app, tenant.id, present=["price"], filled=["price"], nk=["price"], nv=[4.0])
    response = await client.post(
        PREVIEW, json={"field": "price", "op": "between", "value": [3, 5]}, headers=tenant.viewer
    )
    assert response.json()["count"] == 7
    assert response.json()["skus"] == ["T0", "T1", "T2", "S3", "S4", "S5"]


async def test_a_filter_too_large_for_a_statement_is_answered_by_postgres(
    client, tenant, app, mirror, pg
):
    """Values are written into the ClickHouse statement, which its parser takes up to 256 KiB
    of: a larger filter is Postgres's, and the model stays on for the next request (a failed
    statement would have turned it off for every tenant for PIM_MIRROR_RETRY_SECONDS)."""
    await _catalog(app, client, tenant, pg)
    await add_marker(app, tenant.id, kv=["brand=Old"], present=["brand"], filled=["brand"])
    # 6 x 1,000 values of 62 bytes (values the model keeps): ~400 KB of values
    many = [f"{'v' * 58}{i:04d}" for i in range(1006)]
    large = {
        "match": "any",
        "conditions": [
            {"field": "brand", "op": "in", "value": [*many[i : i + 999], "Old"]} for i in range(6)
        ],
    }
    answers = mirror.answers
    for route in (SEARCH, FACETS_SEARCH):
        response = await client.post(route, json={"where": large}, headers=tenant.viewer)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.get("count", body.get("total")) == 20  # Postgres's: no marker
    assert mirror.answers == answers
    response = await client.get(
        "/api/pim/products/", params={"brand": "Old"}, headers=tenant.viewer
    )
    assert response.json()["count"] == 21  # the model's, marker included
    assert mirror.answers == answers + 1


async def test_a_statement_clickhouse_refuses_leaves_the_model_on(
    client, tenant, app, mirror, pg, monkeypatch
):
    """A statement the server refuses (here: over a limit of 1 row read) is that request's
    alone: Postgres answers it, and the next request reads the model again. Only a failure to
    reach ClickHouse turns the model off for a while."""
    await _catalog(app, client, tenant, pg)
    await add_marker(app, tenant.id, kv=["brand=Old"], present=["brand"], filled=["brand"])
    settings = reads._SETTINGS
    answers = mirror.answers
    with monkeypatch.context() as patched:
        patched.setattr(reads, "_SETTINGS", settings + ", max_rows_to_read = 1")
        response = await client.get(FACETS, params={"brand": "Old"}, headers=tenant.viewer)
        assert response.status_code == 200, response.text
        assert response.json()["total"] == 20  # Postgres's: no marker
    assert mirror.answers == answers
    response = await client.get(FACETS, params={"brand": "Old"}, headers=tenant.viewer)
    assert response.json()["total"] == 21  # the model's, marker included
    assert mirror.answers == answers + 1
