"""Category tree (paths, subtree filters, delete rules) and views (at most one default)."""

import asyncio
import importlib.util
from pathlib import Path

from sqlalchemy import text

MIGRATION = (
    Path(__file__).resolve().parents[2]
    / "migrations/versions/2026_11_22_0007_category_paths_from_tree.py"
)
CATEGORIES = "/api/pim/categories/"
VIEWS = "/api/pim/views/"
PRODUCTS = "/api/pim/products/"


async def _category(client, tenant, name, parent_id=None, **extra):
    response = await client.post(
        CATEGORIES, json={"name": name, "parent_id": parent_id, **extra}, headers=tenant.editor
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_category_tree_paths_and_subtree_filter(client, tenant):
    men = await _category(client, tenant, "Men", labels={"de-de": "Herren"})
    shoes = await _category(client, tenant, "Shoes", men["id"])
    running = await _category(client, tenant, "Running", shoes["id"], position=2)
    women = await _category(client, tenant, "Women")
    assert running["path"] == "Men > Shoes > Running" and men["labels"] == {"de-de": "Herren"}
    assert set(running) == {"id", "name", "parent_id", "labels", "path", "position"}

    children = (
        await client.get(CATEGORIES, params={"parent_id": men["id"]}, headers=tenant.viewer)
    ).json()["results"]
    assert [c["id"] for c in children] == [shoes["id"]]
    assert len((await client.get(CATEGORIES, headers=tenant.viewer)).json()["results"]) == 4

    await client.post(
        "/api/pim/products/bulk/",
        headers=tenant.editor,
        json={
            "products": [
                {"sku": "R", "categories": [running["id"]]},
                {"sku": "S", "categories": [shoes["id"]]},
                {"sku": "W", "categories": [women["id"]]},
                {"sku": "N"},
            ]
        },
    )
    listed = (
        await client.get(PRODUCTS, params={"category": men["id"]}, headers=tenant.viewer)
    ).json()
    assert sorted(p["sku"] for p in listed["results"]) == ["R", "S"]
    listed = (
        await client.get(PRODUCTS, params={"category": running["id"]}, headers=tenant.viewer)
    ).json()
    assert [p["sku"] for p in listed["results"]] == ["R"]

    # renaming or moving rewrites the paths of the whole subtree
    renamed = await client.patch(
        f"{CATEGORIES}{shoes['id']}/", json={"name": "Footwear"}, headers=tenant.editor
    )
    assert renamed.json()["path"] == "Men > Footwear"
    assert (await client.get(f"{CATEGORIES}{running['id']}/", headers=tenant.viewer)).json()[
        "path"
    ] == "Men > Footwear > Running"
    moved = await client.patch(
        f"{CATEGORIES}{shoes['id']}/", json={"parent_id": women["id"]}, headers=tenant.editor
    )
    assert moved.json()["path"] == "Women > Footwear"
    assert (await client.get(f"{CATEGORIES}{running['id']}/", headers=tenant.viewer)).json()[
        "path"
    ] == "Women > Footwear > Running"
    cycle = await client.patch(
        f"{CATEGORIES}{shoes['id']}/", json={"parent_id": running["id"]}, headers=tenant.editor
    )
    assert cycle.status_code == 400

    # a category with children cannot be deleted; a leaf can, and it leaves its products
    assert (
        await client.delete(f"{CATEGORIES}{shoes['id']}/", headers=tenant.editor)
    ).status_code == 409
    assert (
        await client.delete(f"{CATEGORIES}{running['id']}/", headers=tenant.editor)
    ).status_code == 204
    r = (await client.get(PRODUCTS, params={"sku": "R"}, headers=tenant.viewer)).json()["results"][
        0
    ]
    assert r["categories"] == []
    assert (
        await client.get(f"{CATEGORIES}{running['id']}/", headers=tenant.viewer)
    ).status_code == 404
    bad_parent = await client.post(
        CATEGORIES, json={"name": "X", "parent_id": 10**12}, headers=tenant.editor
    )
    assert bad_parent.status_code == 400
    assert (
        await client.post(CATEGORIES, json={"name": "A > B"}, headers=tenant.editor)
    ).status_code == 422


async def _get(client, tenant, category):
    return (await client.get(f"{CATEGORIES}{category['id']}/", headers=tenant.viewer)).json()


async def _patch(client, tenant, category, **body):
    return await client.patch(f"{CATEGORIES}{category['id']}/", json=body, headers=tenant.editor)


async def test_same_named_siblings_keep_their_own_subtrees(client, tenant):
    """The audit's reproduction: two roots named "Men"; renaming one rewrote the other's subtree."""
    men = await _category(client, tenant, "Men")
    jackets = await _category(client, tenant, "Jackets", men["id"])
    other_men = await _category(client, tenant, " Men ")
    other_shoes = await _category(client, tenant, "Shoes", other_men["id"])
    assert other_men["path"] == "Men" and other_shoes["path"] == "Men > Shoes"
    assert (await _patch(client, tenant, other_men, name="Boys")).json()["path"] == "Boys"
    assert (await _get(client, tenant, jackets))["path"] == "Men > Jackets"
    assert (await _get(client, tenant, other_shoes))["path"] == "Boys > Shoes"
    # moving into a parent that has a same-named child is fine too
    moved = await _patch(client, tenant, other_shoes, parent_id=men["id"])
    assert moved.status_code == 200 and moved.json()["path"] == "Men > Shoes"


async def test_concurrent_tree_writes_keep_the_tree_and_paths_sound(client, tenant):
    """A tenant's category writes take turns: two crossing moves cannot both pass the cycle check,
    and a child created while its parent is renamed ends up with the new path."""
    await client.get(CATEGORIES, headers=tenant.editor)
    a = await _category(client, tenant, "A")
    b = await _category(client, tenant, "B")
    moves = await asyncio.gather(
        _patch(client, tenant, a, parent_id=b["id"]), _patch(client, tenant, b, parent_id=a["id"])
    )
    assert sorted(r.status_code for r in moves) == [200, 400], [r.text for r in moves]
    men = await _category(client, tenant, "Men")
    renamed, child = await asyncio.gather(
        _patch(client, tenant, men, name="Boys"),
        client.post(
            CATEGORIES, json={"name": "Jackets", "parent_id": men["id"]}, headers=tenant.editor
        ),
    )
    assert renamed.status_code == 200 and child.status_code == 201
    assert (await _get(client, tenant, child.json()))["path"] == "Boys > Jackets"


async def test_rename_and_move_rewrite_exactly_the_subtree(client, tenant):
    men = await _category(client, tenant, "Men")
    men_jackets = await _category(client, tenant, "Jackets", men["id"])
    menswear = await _category(client, tenant, "Menswear")
    mw_jackets = await _category(client, tenant, "Jackets", menswear["id"])
    mw_rain = await _category(client, tenant, "Rain", mw_jackets["id"])
    kids = await _category(client, tenant, "Kids")

    # renaming "Men" leaves "Menswear > ..." alone
    assert (await _patch(client, tenant, men, name="Boys")).json()["path"] == "Boys"
    assert (await _get(client, tenant, men_jackets))["path"] == "Boys > Jackets"
    assert (await _get(client, tenant, mw_jackets))["path"] == "Menswear > Jackets"
    assert (await _get(client, tenant, mw_rain))["path"] == "Menswear > Jackets > Rain"

    # moving a subtree rewrites every descendant, at every depth
    moved = await _patch(client, tenant, menswear, parent_id=kids["id"])
    assert moved.json()["path"] == "Kids > Menswear"
    assert (await _get(client, tenant, mw_jackets))["path"] == "Kids > Menswear > Jackets"
    assert (await _get(client, tenant, mw_rain))["path"] == "Kids > Menswear > Jackets > Rain"
    # a move and a rename at once, then back to the roots
    both = await _patch(client, tenant, mw_jackets, parent_id=None, name="Coats")
    assert both.json()["path"] == "Coats" and both.json()["parent_id"] is None
    assert (await _get(client, tenant, mw_rain))["path"] == "Coats > Rain"
    assert (await _get(client, tenant, men_jackets))["path"] == "Boys > Jackets"


async def test_descendants_are_found_by_parent_not_by_path_prefix(client, tenant, app):
    """Names accepted before '>' was refused (here "Men >" and "> Foo") still exist: root "Men >" has
    no children, yet "Men > > Foo" (a child of "Men") starts with its path plus the separator."""
    men = await _category(client, tenant, "Men")
    async with app.state.sessionmaker() as session, session.begin():
        legacy_root = (
            await session.execute(
                text(
                    "INSERT INTO categories (tenant_id, name, path) VALUES (:t, 'Men >', 'Men >') RETURNING id"
                ),
                {"t": tenant.id},
            )
        ).scalar_one()
        legacy_child = (
            await session.execute(
                text(
                    "INSERT INTO categories (tenant_id, name, parent_id, path) VALUES (:t, '> Foo', :p, 'Men > > Foo') RETURNING id"
                ),
                {"t": tenant.id, "p": men["id"]},
            )
        ).scalar_one()
    assert (await _patch(client, tenant, {"id": legacy_root}, name="Boys")).json()["path"] == "Boys"
    assert (await _get(client, tenant, {"id": legacy_child}))["path"] == "Men > > Foo"


async def test_names_are_stripped_and_free_of_path_separators(client, tenant):
    shoes = await _category(client, tenant, "  Shoes\t")
    assert shoes["name"] == "Shoes" and shoes["path"] == "Shoes"
    # the import and the PIMS filter split paths at ">" and path lists at "|", whatever the spaces
    for name in ["A>B", "A >B", "A> B", "A > B", ">", "Shoes >", "> Shoes", "A|B", "|", "   "]:
        created = await client.post(CATEGORIES, json={"name": name}, headers=tenant.editor)
        assert created.status_code == 422, (name, created.text)
        renamed = await _patch(client, tenant, shoes, name=name)
        assert renamed.status_code == 422, (name, renamed.text)
    assert (await _get(client, tenant, shoes))["name"] == "Shoes"
    assert (await _patch(client, tenant, shoes, name=" Boots ")).json()["path"] == "Boots"


async def test_list_honours_position_in_tree_order_and_lists_roots(client, tenant):
    men = await _category(client, tenant, "Men")
    women = await _category(client, tenant, "Women", position=-5)
    kids = await _category(client, tenant, "Kids", position=7)
    bags = await _category(client, tenant, "Bags")  # position 0 like "Men": by name
    shoes = await _category(client, tenant, "Shoes", men["id"], position=1)
    coats = await _category(client, tenant, "Coats", men["id"], position=2)
    boots = await _category(client, tenant, "Boots", shoes["id"])
    dresses = await _category(client, tenant, "Dresses", women["id"])

    listed = (await client.get(CATEGORIES, headers=tenant.viewer)).json()["results"]
    assert [c["path"] for c in listed] == [
        "Women",
        "Women > Dresses",
        "Bags",
        "Men",
        "Men > Shoes",
        "Men > Shoes > Boots",
        "Men > Coats",
        "Kids",
    ]
    roots = [women["id"], bags["id"], men["id"], kids["id"]]
    for value in ("0", "null"):
        response = await client.get(CATEGORIES, params={"parent_id": value}, headers=tenant.viewer)
        assert [c["id"] for c in response.json()["results"]] == roots, (value, response.text)
    children = (
        await client.get(CATEGORIES, params={"parent_id": men["id"]}, headers=tenant.viewer)
    ).json()["results"]
    assert [c["id"] for c in children] == [shoes["id"], coats["id"]]
    # a new position reorders
    await _patch(client, tenant, coats, position=-1)
    children = (
        await client.get(CATEGORIES, params={"parent_id": men["id"]}, headers=tenant.viewer)
    ).json()["results"]
    assert [c["id"] for c in children] == [coats["id"], shoes["id"]]
    assert {boots["id"], dresses["id"]} <= {
        c["id"] for c in (await client.get(CATEGORIES, headers=tenant.viewer)).json()["results"]
    }
    for bad in ("-1", "abc", "", "NULL", "none", str(2**63)):
        response = await client.get(CATEGORIES, params={"parent_id": bad}, headers=tenant.viewer)
        assert response.status_code == 422, (bad, response.text)


async def test_migration_rebuilds_paths_from_the_tree(app):
    """Runs migration 0007's SQL on a temporary `categories` table (it shadows the real one)."""
    spec = importlib.util.spec_from_file_location("category_paths_from_tree_0007", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    rows = [  # id, tenant, parent, name, path (some corrupted by the old prefix rewrite)
        (1, 1, None, "Men", "Men"),
        (2, 1, None, "Boys", "Boys"),
        (3, 1, 1, "Jackets", "Boys > Jackets"),
        (4, 1, 3, "Rain", "Boys > Jackets > Rain"),
        (5, 1, 2, "Shoes", "Boys > Shoes"),
        (6, 2, None, "Men", "Men"),
    ]
    async with app.state.sessionmaker() as session:  # rolled back at the end
        await session.execute(
            text("CREATE TEMP TABLE categories (LIKE public.categories INCLUDING DEFAULTS)")
        )
        await session.execute(
            text(
                "INSERT INTO categories (id, tenant_id, parent_id, name, path) VALUES (:id, :t, :p, :name, :path)"
            ),
            [dict(zip(("id", "t", "p", "name", "path"), row)) for row in rows],
        )
        await session.execute(text(migration.REBUILD_PATHS))
        result = dict((await session.execute(text("SELECT id, path FROM categories"))).all())
        await session.rollback()
    assert result == {
        1: "Men",
        2: "Boys",
        3: "Men > Jackets",
        4: "Men > Jackets > Rain",
        5: "Boys > Shoes",
        6: "Men",
    }


async def test_views_have_at_most_one_default(client, tenant):
    a = (
        await client.post(
            VIEWS,
            json={"name": "web", "attributes": ["brand"], "is_default": True},
            headers=tenant.editor,
        )
    ).json()
    b = (
        await client.post(
            VIEWS,
            json={"name": "feed", "attributes": ["brand", "price"], "is_default": True},
            headers=tenant.editor,
        )
    ).json()
    assert set(b) == {"id", "name", "attributes", "is_default"}
    views = {
        v["name"]: v for v in (await client.get(VIEWS, headers=tenant.viewer)).json()["results"]
    }
    assert views["feed"]["is_default"] is True and views["web"]["is_default"] is False
    await client.patch(f"{VIEWS}{a['id']}/", json={"is_default": True}, headers=tenant.editor)
    views = {
        v["name"]: v for v in (await client.get(VIEWS, headers=tenant.viewer)).json()["results"]
    }
    assert [n for n, v in views.items() if v["is_default"]] == ["web"]
    assert (
        await client.post(VIEWS, json={"name": "web"}, headers=tenant.editor)
    ).status_code == 409
    assert (
        await client.patch(f"{VIEWS}{b['id']}/", json={"name": "web"}, headers=tenant.editor)
    ).status_code == 409
    assert (await client.get(f"{VIEWS}{b['id']}/", headers=tenant.viewer)).json()["attributes"] == [
        "brand",
        "price",
    ]
    assert (await client.delete(f"{VIEWS}{b['id']}/", headers=tenant.editor)).status_code == 204
    assert (await client.get(f"{VIEWS}{b['id']}/", headers=tenant.viewer)).status_code == 404
    assert (await client.post(VIEWS, json={"name": "x"}, headers=tenant.viewer)).status_code == 403
