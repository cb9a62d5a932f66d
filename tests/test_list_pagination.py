"""One pagination style for every list (issue 17): `limit` (default 50, at most 200) and an opaque
`cursor` in, `{"results": [...], "next_cursor"}` out, keyset so that writes between pages neither
skip nor repeat an item — views, segments, API keys, import jobs, categories."""

import pytest

VIEWS = "/api/pim/views/"
SEGMENTS = "/api/product-segments/"
KEYS = "/api/auth/api-keys/"
IMPORTS = "/api/pim/import/"
CATEGORIES = "/api/pim/categories/"


async def _create(client, tenant, kind: str, i: int) -> str:
    """Create the i-th item of a list; returns its id as the list shows it."""
    if kind == "views":
        r = await client.post(VIEWS, json={"name": f"view-{i}"}, headers=tenant.editor)
        return r.json()["id"]
    if kind == "segments":
        r = await client.post(
            SEGMENTS,
            json={"name": f"seg-{i}", "definition": {"field": "sku", "op": "eq", "value": "x"}},
            headers=tenant.editor,
        )
        return r.json()["id"]
    if kind == "keys":
        r = await client.post(
            KEYS, json={"name": f"key-{i}", "role": "viewer"}, headers=tenant.admin
        )
        return r.json()["id"]
    r = await client.post(
        f"{IMPORTS}csv/",
        files={"file": (f"feed-{i}.csv", f"sku,name\nS{i},N{i}\n".encode(), "text/csv")},
        headers=tenant.editor,
    )
    assert r.status_code == 201, r.text
    return r.json()["job_id"]


LISTS = {
    "views": (VIEWS, "viewer", "id"),
    "segments": (SEGMENTS, "viewer", "id"),
    "keys": (KEYS, "admin", "id"),
    "imports": (IMPORTS, "viewer", "job_id"),
}


async def _walk(client, url, headers, limit, between=None) -> list[dict]:
    items, cursor, n = [], None, 0
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        r = await client.get(url, params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"results", "next_cursor"} and len(body["results"]) <= limit
        items += body["results"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        if between is not None:
            await between(n)
        n += 1


@pytest.mark.parametrize("kind", sorted(LISTS))
async def test_keyset_list_pages(client, tenant, other_tenant, kind):
    url, role, key = LISTS[kind]
    headers = tenant.headers(role)
    before = (await client.get(url, headers=headers)).json()["results"]  # e.g. the tenant's keys
    made = [await _create(client, tenant, kind, i) for i in range(7)]
    first = (await client.get(url, headers=headers)).json()
    assert first["next_cursor"] is None and len(first["results"]) == len(before) + 7  # default 50

    # every item once, in the list's order, while items are created between pages
    created_meanwhile = []

    async def create(n: int):
        created_meanwhile.append(await _create(client, tenant, kind, 100 + n))

    walked = await _walk(client, url, headers, 3, create)
    ids = [item[key] for item in walked]
    assert len(ids) == len(set(ids))
    assert set(made) <= set(ids)
    everything = (await client.get(url, params={"limit": 200}, headers=headers)).json()["results"]
    order = [item[key] for item in everything]
    assert ids == [i for i in order if i in set(ids)]  # the walk's order is the list's order
    if kind == "imports":
        assert order[: len(created_meanwhile)] == created_meanwhile[::-1]  # newest first
    else:
        assert ids[-len(created_meanwhile) :] == created_meanwhile  # by id: new ones come last

    # limits and cursors
    assert (await client.get(url, params={"limit": 201}, headers=headers)).status_code == 422
    assert (await client.get(url, params={"limit": 0}, headers=headers)).status_code == 422
    assert (await client.get(url, params={"cursor": "nope"}, headers=headers)).status_code == 400
    other = "views" if kind != "views" else "segments"
    for i in range(2):
        await _create(client, tenant, other, 200 + i)
    page = (await client.get(LISTS[other][0], params={"limit": 1}, headers=tenant.admin)).json()
    assert page["next_cursor"]
    r = await client.get(url, params={"cursor": page["next_cursor"]}, headers=headers)
    assert r.status_code == 400 and "not a cursor of this list" in r.json()["detail"]

    # another tenant's cursor lists that tenant's own items only
    mine = (await client.get(url, params={"limit": 1}, headers=headers)).json()["next_cursor"]
    theirs = await client.get(url, params={"cursor": mine}, headers=other_tenant.headers(role))
    assert theirs.status_code == 200
    assert not {item[key] for item in theirs.json()["results"]} & set(ids)


async def test_import_jobs_list_roles_and_summary(client, tenant, other_tenant):
    job_id = await _create(client, tenant, "imports", 1)
    r = await client.get(IMPORTS, headers=tenant.viewer)
    assert r.status_code == 200
    (job,) = r.json()["results"]
    assert (
        job["job_id"] == job_id and job["status"] == "mapping" and job["filename"] == "feed-1.csv"
    )
    assert "columns" not in job and "errors" not in job  # a summary: GET the job for those
    assert (await client.get(IMPORTS, headers=other_tenant.viewer)).json()["results"] == []
    assert (await client.get(IMPORTS)).status_code == 401


async def test_categories_share_the_style(client, tenant):
    for i in range(3):
        r = await client.post(CATEGORIES, json={"name": f"c{i}"}, headers=tenant.editor)
        assert r.status_code == 201
    first = (await client.get(CATEGORIES, params={"limit": 2}, headers=tenant.viewer)).json()
    assert set(first) == {"results", "next_cursor"} and len(first["results"]) == 2
    rest = await client.get(
        CATEGORIES, params={"limit": 2, "cursor": first["next_cursor"]}, headers=tenant.viewer
    )
    assert len(rest.json()["results"]) == 1 and rest.json()["next_cursor"] is None
    assert (
        await client.get(CATEGORIES, params={"limit": 201}, headers=tenant.viewer)
    ).status_code == 422


@pytest.mark.parametrize(
    "query",
    [
        b"",
        b"page=2",
        b"brand=Acme&page=3&page_size=20",
        b"tags=a&tags=b&page=2&tags=c",
        b"q=caf%C3%A9+cr%C3%A8me&empty=&flag",
        b"name__contains=%26%3D%25%2B&cursor=abc&page=1",
        b"x=%FF%FE&y=a+b%20c",
        b"a=1;b=2&page=9",
    ],
)
@pytest.mark.parametrize(
    "params",
    [{"page": 4}, {"page": None}, {"cursor": "eyJ9"}, {"cursor": None, "page": 2}],
)
def test_relative_url_is_starlettes(query, params):
    """The page links are built without Starlette's URL API, with the same result."""
    from starlette.requests import Request

    from app.pagination import relative_url

    request = Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/api/pim/products/",
            "root_path": "",
            "query_string": query,
            "headers": [(b"host", b"h")],
            "scheme": "http",
            "server": ("h", 80),
        }
    )
    url = request.url.remove_query_params([k for k, v in params.items() if v is None])
    url = url.include_query_params(**{k: v for k, v in params.items() if v is not None})
    expected = f"{url.path}?{url.query}" if url.query else url.path
    assert relative_url(request, **params) == expected
