"""Issue 13, findings 11, 13 and 15: 500s and small leaks at the edge (JWT claims, unique
violations, odd bulk values), stricter JWTs, and what anonymous callers and filters may see."""

import asyncio
import os
import subprocess
import sys
import time

import orjson
import pytest
from jose import jwt

from app.products.upsert import BUILTIN_KEYS
from tests.conftest import ROOT
from tests.hardening.conftest import free_port

PRODUCTS = "/api/pim/products/"


def _token(settings, claims: dict, headers: dict | None = None) -> str:
    now = int(time.time())
    return jwt.encode(
        {"role": "viewer", "iat": now, "exp": now + 600, **claims},
        settings.jwt_secret,
        algorithm="HS256",
        headers=headers,
    )


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_jwt_tenant_id_is_an_integer_or_ascii_digits(client, settings, tenant):
    """Finding 11: a JWT `tenant_id` of "²" is a 401 (it was a 500), and Arabic-Indic digits do not
    name a tenant; ASCII digits and integers still do."""
    arabic = str(tenant.id).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    for tenant_id in ("²", arabic, "12a", " 1", True, 1.0, [tenant.id]):
        response = await client.get(
            PRODUCTS, headers=_bearer(_token(settings, {"tenant_id": tenant_id}))
        )
        assert response.status_code == 401, (tenant_id, response.text)
    for tenant_id in (tenant.id, str(tenant.id)):
        response = await client.get(
            PRODUCTS, headers=_bearer(_token(settings, {"tenant_id": tenant_id}))
        )
        assert response.status_code == 200, (tenant_id, response.text)


async def test_concurrent_creates_of_one_name_are_a_201_and_409s(client, tenant):
    """Finding 11: a unique violation (SQLSTATE 23505) is a 409 wherever it happens: 8 concurrent
    creates of one view name give one 201 and 409s, never a 500."""
    for attempt in range(3):
        answers = await asyncio.gather(
            *(
                client.post(
                    "/api/pim/views/",
                    json={"name": f"same-{attempt}", "attributes": []},
                    headers=tenant.editor,
                )
                for _ in range(8)
            )
        )
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [201] + [409] * 7, [r.text for r in answers]
    views = (await client.get("/api/pim/views/", headers=tenant.viewer)).json()
    names = [v["name"] for v in (views["results"] if isinstance(views, dict) else views)]
    assert sorted(names) == ["same-0", "same-1", "same-2"]


ODD_VALUES = [["active"], {"a": 1}, True, 1.5, 10**30, [[1]], [{"x": 1}], "", [None], -1]


async def test_any_odd_value_in_a_bulk_item_built_in_is_that_items_error(client, tenant):
    """Finding 11: `{"sku": "x", "status": ["active"]}` (and any odd value in any built-in) is a
    per-item error or a valid write, never a 500 that fails the whole request."""
    items = [{"sku": "ok-0", "name": "Fine"}]
    for key in sorted(BUILTIN_KEYS - {"sku"}):
        for n, value in enumerate(ODD_VALUES):
            items.append({"sku": f"{key}-{n}", key: value})
    items += [{"sku": value} for value in ODD_VALUES]
    response = await client.post(
        f"{PRODUCTS}bulk/", json={"products": items}, headers=tenant.editor
    )
    assert response.status_code == 200, response.text
    body = response.json()
    errors = {e["index"]: e["detail"] for e in body["errors"]}
    assert 0 not in errors
    status_list = items.index({"sku": "status-0", "status": ["active"]})
    assert errors[status_list].startswith("status:")
    assert body["created"] + body["updated"] + body["failed"] == len(items)
    product = (await client.get(PRODUCTS, params={"sku": "ok-0"}, headers=tenant.viewer)).json()[
        "results"
    ]
    assert [p["name"] for p in product] == ["Fine"]
    stored = (await client.get(PRODUCTS, params={"sku": "status-0"}, headers=tenant.viewer)).json()[
        "results"
    ]
    assert stored == []


async def test_jwt_crit_lifetime_and_iat_are_enforced(client, settings, tenant):
    """Finding 13: a `crit` header is refused; `exp` may be at most PIM_JWT_MAX_LIFETIME_SECONDS (24 h)
    after `iat` (after now without `iat`); an `iat` in the future (beyond 60 s of leeway) is refused."""
    now = int(time.time())
    day = 24 * 3600  # PIM_JWT_MAX_LIFETIME_SECONDS by default
    refused = [
        _token(settings, {"tenant_id": tenant.id}, headers={"crit": ["exp"]}),
        _token(settings, {"tenant_id": tenant.id, "exp": 10**30}),
        _token(settings, {"tenant_id": tenant.id, "iat": now, "exp": now + day + 60}),
        _token(settings, {"tenant_id": tenant.id, "iat": now + 3600, "exp": now + 7200}),
        jwt.encode(
            {"tenant_id": tenant.id, "role": "viewer", "exp": now + day + 60},
            settings.jwt_secret,
            algorithm="HS256",
        ),
    ]
    for token in refused:
        response = await client.get(PRODUCTS, headers=_bearer(token))
        assert response.status_code == 401, (jwt.get_unverified_claims(token), response.text)
    accepted = [
        _token(settings, {"tenant_id": tenant.id, "iat": now, "exp": now + day}),
        _token(
            settings, {"tenant_id": tenant.id, "iat": now + 30, "exp": now + 600}
        ),  # within the leeway
        jwt.encode(
            {"tenant_id": tenant.id, "role": "viewer", "exp": now + 600},
            settings.jwt_secret,
            algorithm="HS256",
        ),
    ]
    for token in accepted:
        response = await client.get(PRODUCTS, headers=_bearer(token))
        assert response.status_code == 200, (jwt.get_unverified_claims(token), response.text)


async def test_pim_token_default_lifetime_is_accepted(client, tenant):
    """Finding 13: a token from `pim token` with its default lifetime passes the stricter checks; a
    --ttl over the maximum is refused by the command itself."""
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "token",
        "--tenant",
        tenant.slug,
        "--role",
        "viewer",
    ]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = orjson.loads(done.stdout.strip().splitlines()[-1])["token"]
    assert (await client.get(PRODUCTS, headers=_bearer(token))).status_code == 200
    done = subprocess.run(
        [*command, "--ttl", str(10**9)],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "ttl" in done.stdout


async def test_readyz_shows_no_hosts_or_ports(app_with):
    """Finding 15: /readyz tells anonymous callers which dependency is down, not its host and port."""
    port = free_port()
    api = await app_with(redis_url=f"redis://127.0.0.1:{port}/0")
    response = await api.http.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["postgres"]["status"] == "up"
    assert "127.0.0.1" not in response.text and str(port) not in response.text, response.text


async def test_in_filters_take_their_1000_values(client, tenant):
    """Finding 15: `brand__in` takes its documented 1,000 values: the 1,000-character cap applies to
    each value, not to the comma-separated list."""
    schema = await client.put(
        "/api/pim/schema/",
        json={"fields": [{"name": "brand", "type": "string"}, {"name": "model"}]},
        headers=tenant.editor,
    )
    assert schema.status_code == 200, schema.text
    products = [
        {"sku": f"S{n}", "brand": f"brand-{n:05d}", "model": f"model-{n:05d}"} for n in range(3)
    ]
    bulk = await client.post(f"{PRODUCTS}bulk/", json={"products": products}, headers=tenant.editor)
    assert bulk.status_code == 200 and bulk.json()["failed"] == 0, bulk.text
    values = ",".join(f"brand-{n:05d}" for n in range(1, 1001))
    for key in ("brand__in", "model__in"):  # a field of the schema, and a key outside it
        filter_values = values if key == "brand__in" else values.replace("brand", "model")
        response = await client.get(PRODUCTS, params={key: filter_values}, headers=tenant.viewer)
        assert response.status_code == 200, response.text
        assert sorted(p["sku"] for p in response.json()["results"]) == ["S1", "S2"]
    too_many = await client.get(
        PRODUCTS, params={"brand__in": values + ",x"}, headers=tenant.viewer
    )
    assert too_many.status_code == 400
    too_long = await client.get(
        PRODUCTS, params={"brand__in": "a," + "b" * 1001}, headers=tenant.viewer
    )
    assert too_long.status_code == 400 and "too long" in too_long.text


@pytest.mark.parametrize("name", ["Übersicht", "価格", "prix-été"])
async def test_api_view_header_is_read_as_utf8(client, tenant, name):
    """Finding 15: a view with a non-ASCII name is found by its `ApiView` header (sent as UTF-8)."""
    schema = await client.put(
        "/api/pim/schema/",
        json={"fields": [{"name": "price", "type": "number"}, {"name": "color"}]},
        headers=tenant.editor,
    )
    assert schema.status_code == 200, schema.text
    view = await client.post(
        "/api/pim/views/", json={"name": name, "attributes": ["price"]}, headers=tenant.editor
    )
    assert view.status_code == 201, view.text
    bulk = await client.post(
        f"{PRODUCTS}bulk/",
        json={"products": [{"sku": "A", "price": 3, "color": "red"}]},
        headers=tenant.editor,
    )
    assert bulk.status_code == 200, bulk.text
    response = await client.get("/v/pc/0/", headers={**tenant.viewer, "ApiView": name.encode()})
    assert response.status_code == 200, response.text
    attributes = response.json()["products"][0]["data"]["attributes"]
    assert "price" in attributes and "color" not in attributes
    bad = await client.get("/v/pc/0/", headers={**tenant.viewer, "ApiView": b"\xff\xfe"})
    assert bad.status_code == 400
