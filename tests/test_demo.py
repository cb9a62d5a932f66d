"""The demo catalog of `make run` (app/demo.py, `pim demo load`): what it loads, read back through
the API, and that loading it again duplicates nothing."""

import json
import os
import subprocess
import sys

from app.demo import PARENTS_PER_LEAF, SCHEMA, TREE, load_demo_catalog
from tests.conftest import ROOT

PRODUCTS = 300
CATEGORIES = len(TREE) + sum(len(leaves) for leaves in TREE.values())


def _pim(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


async def _catalog(client, headers) -> dict:
    """What a newcomer sees: counts and ids of everything the demo loads."""
    products = await client.get("/api/pim/products/", headers=headers, params={"page_size": 1})
    categories = await client.get("/api/pim/categories/", headers=headers, params={"limit": 200})
    views = await client.get("/api/pim/views/", headers=headers)
    segments = await client.get("/api/product-segments/", headers=headers)
    schema = await client.get("/api/pim/schema/", headers=headers)
    ids = []
    cursor = None
    while True:
        params = {"page_size": 200, "ordering": "sku", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/pim/products/", headers=headers, params=params)).json()
        ids += [(p["id"], p["sku"]) for p in page["results"]]
        if not (cursor := page["next_cursor"]):
            break
    return {
        "products": products.json()["count"],
        "product_ids": ids,
        "categories": [(c["id"], c["path"]) for c in categories.json()["results"]],
        "views": [(v["id"], v["name"], v["is_default"]) for v in views.json()["results"]],
        "segments": [(s["id"], s["name"]) for s in segments.json()["results"]],
        "fields": [f["name"] for f in schema.json()["fields"]],
    }


async def test_the_demo_catalog_loads_and_loads_again_without_duplicates(
    app, client, settings, tenant
):
    first = _pim("demo", "load", "--tenant", tenant.slug)
    assert first["tenant_id"] == tenant.id
    assert first["products"] == PRODUCTS and first["variations"] == PRODUCTS * 4 // 5
    assert first["categories"] == CATEGORIES == 16
    loaded = await _catalog(client, tenant.viewer)
    assert loaded["products"] == PRODUCTS
    assert len(loaded["product_ids"]) == PRODUCTS
    assert len(loaded["categories"]) == CATEGORIES
    assert "Lighting > Table lamps" in [path for _id, path in loaded["categories"]]
    assert loaded["views"] == [(first["view_id"], "Web shop", True)]
    assert loaded["segments"] == [(first["segment_id"], "Lighting in stock under 150")]
    assert loaded["fields"] == [field.name for field in SCHEMA]

    # variations: each parent has 4, found by the parent's SKU
    parent = "DEMO-LIG-TAB-01"
    family = await client.get(
        "/api/pim/products/", headers=tenant.viewer, params={"variation_of": parent}
    )
    assert family.json()["count"] == 4
    assert len(TREE) * 3 * PARENTS_PER_LEAF == PRODUCTS // 5
    # the facets and the segment have something to show
    facets = (await client.get("/api/pim/facets/", headers=tenant.viewer)).json()
    assert {facet["value"] for facet in facets["facets"]["brand"]} >= {"Nordlys", "Kasa"}
    segment = (
        await client.get(f"/api/product-segments/{first['segment_id']}/", headers=tenant.viewer)
    ).json()
    preview = await client.post(
        "/api/product-segments/preview/", headers=tenant.viewer, json=segment["definition"]
    )
    assert preview.status_code == 200, preview.text
    assert 0 < preview.json()["count"] < PRODUCTS

    # again, through the service function this time: the same objects, nothing added
    async with app.state.sessionmaker() as session, session.begin():
        session.info["tenant_id"] = tenant.id
        second = await load_demo_catalog(session, max_data_bytes=settings.max_product_data_bytes)
    assert second.view_id == first["view_id"] and second.segment_id == first["segment_id"]
    assert await _catalog(client, tenant.viewer) == loaded


async def test_the_demo_catalog_stays_in_its_tenant(client, tenant, other_tenant):
    _pim("demo", "load", "--tenant", tenant.slug)
    products = await client.get("/api/pim/products/", headers=other_tenant.viewer)
    assert products.json()["count"] == 0
    categories = await client.get("/api/pim/categories/", headers=other_tenant.viewer)
    assert categories.json()["results"] == []
