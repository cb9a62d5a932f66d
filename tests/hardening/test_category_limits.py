"""Finding 6 of issue 13: category paths are bounded (20 levels, 100 paths in one CSV cell) and the
category list is paged."""

import asyncpg

from app.db import pg_dsn, tenant_is
from tests.imports.conftest import import_file

CATEGORIES = "/api/pim/categories/"


async def _chain(client, headers, depth: int, parent_id=None, prefix="L") -> list[dict]:
    made = []
    for level in range(depth):
        body = {"name": f"{prefix}{level + 1}", "parent_id": parent_id}
        response = await client.post(CATEGORIES, json=body, headers=headers)
        assert response.status_code == 201, response.text
        made.append(response.json())
        parent_id = made[-1]["id"]
    return made


async def test_api_refuses_categories_deeper_than_20_levels(client, tenant):
    """Finding 6: a category 21 levels deep is a 400 with a reason, made directly or by a move."""
    h = tenant.editor
    chain = await _chain(client, h, 20)
    assert chain[-1]["path"].count(" > ") == 19
    deeper = await client.post(
        CATEGORIES, json={"name": "L21", "parent_id": chain[-1]["id"]}, headers=h
    )
    assert deeper.status_code == 400 and "20 levels" in deeper.json()["detail"], deeper.text

    # a subtree two levels high fits under level 18, not under level 19
    top, _leaf = await _chain(client, h, 2, prefix="S")
    moved = await client.patch(
        f"{CATEGORIES}{top['id']}/", json={"parent_id": chain[18]["id"]}, headers=h
    )
    assert moved.status_code == 400 and "20 levels" in moved.json()["detail"], moved.text
    moved = await client.patch(
        f"{CATEGORIES}{top['id']}/", json={"parent_id": chain[17]["id"]}, headers=h
    )
    assert moved.status_code == 200, moved.text
    leaf = (await client.get(CATEGORIES, params={"parent_id": top["id"]}, headers=h)).json()[
        "results"
    ][0]
    assert leaf["path"].count(" > ") == 19


async def test_import_rejects_rows_with_too_deep_or_too_many_paths(
    client, tenant, settings, worker
):
    """Finding 6: a cell with a 12,000-level path, a 21-level path or 101 paths rejects its row (with
    the reason), creates no category, and the other rows import."""
    h = tenant.editor
    huge = " > ".join(f"c{i}" for i in range(12_000))
    deep = " > ".join(f"d{i}" for i in range(21))
    ok_deep = " > ".join(f"e{i}" for i in range(20))
    many = "|".join(f"m{i}" for i in range(101))
    ok_many = "|".join(f"n{i}" for i in range(100))
    rows = [
        ("huge", huge),
        ("deep", deep),
        ("many", many),
        ("ok-deep", ok_deep),
        ("ok-many", ok_many),
        ("plain", "A > B"),
    ]
    content = "sku,cats\n" + "".join(f'{sku},"{cell}"\n' for sku, cell in rows)
    _job, done = await import_file(
        client, h, content.encode(), mapping={"sku": "sku", "cats": "categories"}, schema=[]
    )
    assert done["status"] == "done", done
    assert (done["created"], done["failed"]) == (3, 3), done
    reasons = {e["sku"]: e["detail"] for e in done["errors"]}
    assert "20 levels" in reasons["huge"] and "20 levels" in reasons["deep"], reasons
    assert "100 category paths" in reasons["many"], reasons

    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        names = {
            r[0]
            for r in await conn.fetch(
                f"SELECT name FROM categories WHERE {tenant_is('categories')}", tenant.id
            )
        }
        stored = {
            r["sku"]: len(r["categories"])
            for r in await conn.fetch(
                f"SELECT sku, categories FROM products WHERE {tenant_is('products')}", tenant.id
            )
        }
    finally:
        await conn.close()
    assert not {"c0", "d0", "m0"} & names
    assert {"e19", "n99", "B"} <= names
    assert stored == {"ok-deep": 1, "ok-many": 100, "plain": 1}


async def test_category_list_is_paged_in_tree_order(client, tenant):
    """Finding 6: GET /api/pim/categories/ answers {"results", "next_cursor"}, `limit` (default 50,
    at most 200) and an opaque keyset `cursor` that walks the whole tree in its order."""
    h = tenant.editor
    for r in range(3):
        root = (
            await client.post(CATEGORIES, json={"name": f"Root {r}", "position": -r}, headers=h)
        ).json()
        for c in range(18):
            made = await client.post(
                CATEGORIES, json={"name": f"Child {c:02d}", "parent_id": root["id"]}, headers=h
            )
            assert made.status_code == 201
    first = (await client.get(CATEGORIES, headers=h)).json()
    assert (
        set(first) == {"results", "next_cursor"}
        and len(first["results"]) == 50
        and first["next_cursor"]
    )

    walked, cursor = [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(CATEGORIES, params=params, headers=h)).json()
        walked += [c["path"] for c in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = [
        p
        for r in (2, 1, 0)
        for p in [f"Root {r}", *(f"Root {r} > Child {c:02d}" for c in range(18))]
    ]
    assert walked == expected
    assert [c["path"] for c in first["results"]] == expected[:50]

    all_at_once = (await client.get(CATEGORIES, params={"limit": 200}, headers=h)).json()
    assert [c["path"] for c in all_at_once["results"]] == expected and all_at_once[
        "next_cursor"
    ] is None
    assert (await client.get(CATEGORIES, params={"limit": 201}, headers=h)).status_code == 422
    assert (await client.get(CATEGORIES, params={"limit": 0}, headers=h)).status_code == 422
    bad = await client.get(CATEGORIES, params={"cursor": "not-a-cursor"}, headers=h)
    assert bad.status_code == 400, bad.text
    # parent_id filtering pages too
    root_id = all_at_once["results"][0]["id"]
    children = (
        await client.get(CATEGORIES, params={"parent_id": root_id, "limit": 10}, headers=h)
    ).json()
    assert [c["name"] for c in children["results"]] == [f"Child {c:02d}" for c in range(10)]
    rest = (
        await client.get(
            CATEGORIES,
            params={"parent_id": root_id, "limit": 10, "cursor": children["next_cursor"]},
            headers=h,
        )
    ).json()
    assert [c["name"] for c in rest["results"]] == [
        f"Child {c:02d}" for c in range(10, 18)
    ] and rest["next_cursor"] is None
