"""The fast ways entries become webhook events (the rows of `read_entry_rows`, `entry_of`'s path
for creates, events serialised one by one, the SHA-1 event id) give the very bytes of the plain
definitions: the generic pairing of old and new values, `body_of` of the whole page, `uuid5`.
Creates, updates and deletes, with unicode, nested data, big numbers, built-ins left null,
variation_of set and unset."""

import json
import uuid
from typing import Any

import orjson

from app.changes.service import (
    _CREATED_KEYS,
    ENTRY_COLUMNS,
    _in_jsonb_order,
    entry_of,
    read_entry_rows,
)
from app.db import driver_connection, session_scope
from app.webhooks.events import (
    _PRODUCT_EVENT_NAMESPACE,
    body_from,
    body_of,
    event_json,
    product_event,
)

PRODUCTS: list[dict[str, Any]] = [
    {"sku": "plain", "name": "Shoe", "data": {"brand": "Nike", "price": 10}},
    {"sku": "empty", "name": "Nothing", "data": {}},
    {
        "sku": "unicode-\u00fc",
        "name": 'Sch\u00fch \U0001f45f \u2028 "quoted" \\ back',
        "status": "draft",
        "categories": [3, 1, 2],
        "variation_attributes": ["gr\u00f6\u00dfe", "color"],
        "data": {
            "\u00fc": "two bytes, one character",
            "zz": "two bytes too",
            "\u65e5\u672c": "six bytes",
            "a": 1,
            "name2": None,
            "desc": "line\nbreak\ttab \u001f control \u00e9",
        },
    },
    {
        "sku": "nested",
        "name": "Nested",
        "variation_of": "plain",
        "data": {
            "spec": {"dims": [1, [2.5, {"deep": [None, True, False]}]], "": {}},
            "big": 2**63 - 1,
            "neg": -(2**63),
            "huge": 10**30,
            "frac": 0.1,
            "exp": 1.5e300,
            "list": [],
        },
    },
    {"sku": "variant", "name": "Variant", "variation_of": "nested", "data": {"size": "42"}},
]

INSERT_SQL = """
INSERT INTO products (tenant_id, sku, name, status, categories, variation_of,
                      variation_attributes, data)
VALUES ($1, $2, $3, $4, $5::bigint[], $6, $7::text[], $8::jsonb) RETURNING id
"""


def _reference_event(tenant_id: int, row) -> dict[str, Any]:
    """An event as built before the fast paths: the generic pairing of a row's values."""
    new = orjson.loads(row["new_values"]) if row["new_values"] is not None else {}
    if row["created_name"] is not None:
        new["name"] = row["created_name"]
        new["status"] = row["created_status"]
        new["categories"] = row["created_categories"]
        if row["created_variation_of"] is not None:
            new["variation_of"] = row["created_variation_of"]
        new["variation_attributes"] = row["created_variation_attributes"]
        new = {key: new[key] for key in sorted(new, key=lambda k: (len(k.encode()), k.encode()))}
    old = orjson.loads(row["old_values"]) if row["old_values"] is not None else {}
    changes = {key: {"old": old.get(key), "new": value} for key, value in new.items()}
    for key, value in old.items():
        if key not in new:
            changes[key] = {"old": value, "new": None}
    entry = {
        "seq": row["seq"],
        "product_id": row["product_id"],
        "sku": row["sku"],
        "op": row["op"],
        "changes": changes,
        "actor": orjson.Fragment(row["actor"]) if row["actor"] is not None else None,
        "request_id": row["request_id"],
        "import_job_id": str(row["import_job_id"]) if row["import_job_id"] else None,
        "at": row["at"],
    }
    return {
        "id": str(uuid.uuid5(_PRODUCT_EVENT_NAMESPACE, f"{tenant_id}:{row['seq']}")),
        "type": f"product.{row['op']}",
        "seq": row["seq"],
        "created_at": row["at"],
        "data": entry,
    }


async def test_events_of_creates_updates_deletes_are_byte_identical(app, tenant):
    sessionmaker = app.state.sessionmaker
    ids: dict[str, int] = {}
    async with session_scope(sessionmaker, tenant.id) as session:
        conn = await driver_connection(session)
        await conn.execute(
            "SELECT set_config('pim.change', $1, true)",
            orjson.dumps(
                {
                    "actor": {"type": "token", "id": "t\u00fcst", "name": None},
                    "request_id": "req-\u00fc",
                    "import_job_id": str(uuid.uuid4()),
                }
            ).decode(),
        )
        for p in PRODUCTS:
            ids[p["sku"]] = await conn.fetchval(
                INSERT_SQL,
                tenant.id,
                p["sku"],
                p["name"],
                p.get("status", "active"),
                p.get("categories", []),
                p.get("variation_of"),
                p.get("variation_attributes", []),
                json.dumps(p["data"]),  # big integers too
            )
    # the states pim_product_state builds right after the creates
    async with session_scope(sessionmaker, tenant.id) as session:
        conn = await driver_connection(session)
        states = {
            r["id"]: r["state"]
            for r in await conn.fetch(
                "SELECT p.id, pim_product_state(p.name, p.status, p.categories, p.variation_of, "
                "p.variation_attributes, p.data)::text AS state FROM products p "
                "WHERE p.tenant_id = $1",
                tenant.id,
            )
        }
        # updates: data changed, added and removed, built-ins changed, variation_of unset/set
        await conn.execute(
            "UPDATE products SET data = data - 'brand' || '{\"price\": 12, \"\u00fc\": [1]}', "
            "name = 'Sh\u00f6e', categories = '{7}' WHERE tenant_id = $1 AND id = $2",
            tenant.id,
            ids["plain"],
        )
        await conn.execute(
            "UPDATE products SET variation_of = NULL, data = '{}' WHERE tenant_id = $1 AND id = $2",
            tenant.id,
            ids["nested"],
        )
        await conn.execute(
            "UPDATE products SET variation_of = 'plain', status = 'archived' "
            "WHERE tenant_id = $1 AND id = $2",
            tenant.id,
            ids["empty"],
        )
    async with session_scope(sessionmaker, tenant.id) as session:
        conn = await driver_connection(session)
        await conn.execute(
            "DELETE FROM products WHERE tenant_id = $1 AND id = ANY($2::bigint[])",
            tenant.id,
            [ids["unicode-\u00fc"], ids["variant"], ids["empty"]],
        )

    async with session_scope(sessionmaker, tenant.id) as session:
        conn = await driver_connection(session)
        ops = ["created", "updated", "deleted"]
        rows = await read_entry_rows(conn, tenant.id, after=0, through=10**6, ops=ops, limit=1000)
        plain_rows = await conn.fetch(
            f"SELECT {ENTRY_COLUMNS} FROM product_changes WHERE tenant_id = $1 ORDER BY seq",
            tenant.id,
        )
        # a page read in two parts (the LIMIT inside the statement) is the same rows
        first = await read_entry_rows(conn, tenant.id, after=0, through=10**6, ops=ops, limit=4)
        rest = await read_entry_rows(
            conn, tenant.id, after=first[-1]["seq"], through=10**6, ops=ops, limit=1000
        )
        only_deletes = await read_entry_rows(
            conn, tenant.id, after=0, through=10**6, ops=["deleted"], limit=2
        )
    assert [tuple(r) for r in rows] == [tuple(r) for r in plain_rows]
    assert [tuple(r) for r in first + rest] == [tuple(r) for r in plain_rows]
    assert [tuple(r) for r in only_deletes] == [
        tuple(r) for r in plain_rows if r["op"] == "deleted"
    ][:2]
    assert [r["op"] for r in rows] == ["created"] * 5 + ["updated"] * 3 + ["deleted"] * 3

    reference = [_reference_event(tenant.id, r) for r in rows]
    events = [product_event(tenant.id, entry_of(r)) for r in rows]
    for row, event, expected in zip(rows, events, reference, strict=True):
        assert event_json(event) == orjson.dumps(expected, option=orjson.OPT_UTC_Z), row["seq"]
    assert body_from(event_json(e) for e in events) == body_of(reference)

    for row, event in zip(rows, events, strict=True):
        if row["op"] != "created":
            continue
        changes = event["data"]["changes"]
        assert all(change["old"] is None for change in changes.values())
        # the create's state is the object pim_product_state builds, keys in its order
        state = {key: change["new"] for key, change in changes.items()}
        assert orjson.dumps(state) == orjson.dumps(orjson.loads(states[row["product_id"]]))
        assert set(_CREATED_KEYS) <= set(state)
        assert ("variation_of" in state) == (row["created_variation_of"] is not None)
        assert tuple(state) == _in_jsonb_order(tuple(state))
