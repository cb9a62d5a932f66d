"""Category tree (paths, subtree filters, delete rules) and views (at most one default)."""

CATEGORIES = "/api/pim/categories/"
VIEWS = "/api/pim/views/"
PRODUCTS = "/api/pim/products/"


async def _category(client, tenant, name, parent_id=None, **extra):
    response = await client.post(CATEGORIES, json={"name": name, "parent_id": parent_id, **extra}, headers=tenant.editor)
    assert response.status_code == 201, response.text
    return response.json()


async def test_category_tree_paths_and_subtree_filter(client, tenant):
    men = await _category(client, tenant, "Men", labels={"de-de": "Herren"})
    shoes = await _category(client, tenant, "Shoes", men["id"])
    running = await _category(client, tenant, "Running", shoes["id"], position=2)
    women = await _category(client, tenant, "Women")
    assert running["path"] == "Men > Shoes > Running" and men["labels"] == {"de-de": "Herren"}
    assert set(running) == {"id", "name", "parent_id", "labels", "path", "position"}

    children = (await client.get(CATEGORIES, params={"parent_id": men["id"]}, headers=tenant.viewer)).json()
    assert [c["id"] for c in children] == [shoes["id"]]
    assert len((await client.get(CATEGORIES, headers=tenant.viewer)).json()) == 4

    await client.post("/api/pim/products/bulk/", headers=tenant.editor, json={"products": [
        {"sku": "R", "categories": [running["id"]]}, {"sku": "S", "categories": [shoes["id"]]},
        {"sku": "W", "categories": [women["id"]]}, {"sku": "N"}]})
    listed = (await client.get(PRODUCTS, params={"category": men["id"]}, headers=tenant.viewer)).json()
    assert sorted(p["sku"] for p in listed["results"]) == ["R", "S"]
    listed = (await client.get(PRODUCTS, params={"category": running["id"]}, headers=tenant.viewer)).json()
    assert [p["sku"] for p in listed["results"]] == ["R"]

    # renaming or moving rewrites the paths of the whole subtree
    renamed = await client.patch(f"{CATEGORIES}{shoes['id']}/", json={"name": "Footwear"}, headers=tenant.editor)
    assert renamed.json()["path"] == "Men > Footwear"
    assert (await client.get(f"{CATEGORIES}{running['id']}/", headers=tenant.viewer)).json()["path"] == "Men > Footwear > Running"
    moved = await client.patch(f"{CATEGORIES}{shoes['id']}/", json={"parent_id": women["id"]}, headers=tenant.editor)
    assert moved.json()["path"] == "Women > Footwear"
    assert (await client.get(f"{CATEGORIES}{running['id']}/", headers=tenant.viewer)).json()["path"] == "Women > Footwear > Running"
    cycle = await client.patch(f"{CATEGORIES}{shoes['id']}/", json={"parent_id": running["id"]}, headers=tenant.editor)
    assert cycle.status_code == 400

    # a category with children cannot be deleted; a leaf can, and it leaves its products
    assert (await client.delete(f"{CATEGORIES}{shoes['id']}/", headers=tenant.editor)).status_code == 409
    assert (await client.delete(f"{CATEGORIES}{running['id']}/", headers=tenant.editor)).status_code == 204
    r = (await client.get(PRODUCTS, params={"sku": "R"}, headers=tenant.viewer)).json()["results"][0]
    assert r["categories"] == []
    assert (await client.get(f"{CATEGORIES}{running['id']}/", headers=tenant.viewer)).status_code == 404
    bad_parent = await client.post(CATEGORIES, json={"name": "X", "parent_id": 10**12}, headers=tenant.editor)
    assert bad_parent.status_code == 400
    assert (await client.post(CATEGORIES, json={"name": "A > B"}, headers=tenant.editor)).status_code == 422


async def _get(client, tenant, category):
    return (await client.get(f"{CATEGORIES}{category['id']}/", headers=tenant.viewer)).json()


async def _patch(client, tenant, category, **body):
    return await client.patch(f"{CATEGORIES}{category['id']}/", json=body, headers=tenant.editor)


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


async def test_views_have_at_most_one_default(client, tenant):
    a = (await client.post(VIEWS, json={"name": "web", "attributes": ["brand"], "is_default": True}, headers=tenant.editor)).json()
    b = (await client.post(VIEWS, json={"name": "feed", "attributes": ["brand", "price"], "is_default": True},
                           headers=tenant.editor)).json()
    assert set(b) == {"id", "name", "attributes", "is_default"}
    views = {v["name"]: v for v in (await client.get(VIEWS, headers=tenant.viewer)).json()}
    assert views["feed"]["is_default"] is True and views["web"]["is_default"] is False
    await client.patch(f"{VIEWS}{a['id']}/", json={"is_default": True}, headers=tenant.editor)
    views = {v["name"]: v for v in (await client.get(VIEWS, headers=tenant.viewer)).json()}
    assert [n for n, v in views.items() if v["is_default"]] == ["web"]
    assert (await client.post(VIEWS, json={"name": "web"}, headers=tenant.editor)).status_code == 409
    assert (await client.patch(f"{VIEWS}{b['id']}/", json={"name": "web"}, headers=tenant.editor)).status_code == 409
    assert (await client.get(f"{VIEWS}{b['id']}/", headers=tenant.viewer)).json()["attributes"] == ["brand", "price"]
    assert (await client.delete(f"{VIEWS}{b['id']}/", headers=tenant.editor)).status_code == 204
    assert (await client.get(f"{VIEWS}{b['id']}/", headers=tenant.viewer)).status_code == 404
    assert (await client.post(VIEWS, json={"name": "x"}, headers=tenant.viewer)).status_code == 403
