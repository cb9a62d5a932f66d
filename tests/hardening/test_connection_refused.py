"""Postgres refusing a new connection (its role's or database's connection limit, max_connections:
SQLSTATE 53300; 53400, 57P03 alike) is a busy database, not a server bug: a 503 with
Retry-After, as when our own pool is exhausted. Provoked for real: the app connects as a role
with a CONNECTION LIMIT whose free connections the test holds."""

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.db import pg_dsn
from tests.conftest import jwt_headers, wait_for

PRODUCTS = "/api/pim/products/"


@pytest.fixture
async def limited_role(settings) -> AsyncIterator[str]:
    """A login role of its own with CONNECTION LIMIT 4 (the app's key-revocation listener, ORM
    pool and lean-read pool need one each, requests one at a time) that may read and write the
    test database's tables. Roles are cluster-wide: a unique name, dropped afterwards."""
    name = f"pim_conn_limit_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        await admin.execute(f"CREATE ROLE {name} LOGIN CONNECTION LIMIT 4")
        await admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {name}")
        await admin.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {name}")
        yield name
    finally:
        # requested before `app_with`: the app's lifespan, and its connections, ended first
        await admin.execute(f"DROP OWNED BY {name}")
        await admin.execute(f"DROP ROLE {name}")
        await admin.close()


async def _backends_at_most(admin: asyncpg.Connection, role: str, count: int) -> bool:
    return count >= await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", role
    )


async def test_postgres_refusing_connections_is_a_503_with_retry_after(
    limited_role, app_with, tenant, settings
):
    url = make_url(settings.database_url).set(username=limited_role)
    database_url = url.render_as_string(hide_password=False)
    api = await app_with(database_url=database_url)
    # the role's remaining connections (the app's startup may have opened one of its own)
    held: list[asyncpg.Connection] = []
    with pytest.raises(asyncpg.TooManyConnectionsError):
        for _ in range(5):
            held.append(await asyncpg.connect(pg_dsn(database_url)))
    try:
        # "too many connections for role": with a JWT the caller needs no lookup and the lean
        # read's pool (raw asyncpg) is refused; with an API key the lookup (SQLAlchemy) is
        for headers in (jwt_headers(settings, tenant.id, "viewer"), tenant.viewer):
            response = await api.http.get(PRODUCTS, headers=headers)
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "1"
            assert response.json()["detail"] == (
                "The database refuses new connections right now; retry shortly"
            )
        # a write, through the request's ORM session
        created = await api.http.post(
            PRODUCTS, json={"sku": "refused", "name": "n"}, headers=tenant.editor
        )
        assert created.status_code == 503, created.text
        assert created.headers["Retry-After"] == "1"
        assert created.json()["detail"] == response.json()["detail"]
    finally:
        for conn in held:
            await conn.close()
    # the connections free up (once their backends have exited: close() does not wait for that)
    admin = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        await wait_for(
            lambda: _backends_at_most(admin, limited_role, 4 - len(held)), timeout=15, interval=0.05
        )
    finally:
        await admin.close()
    # the same requests are served
    created = await api.http.post(
        PRODUCTS, json={"sku": "accepted", "name": "n"}, headers=tenant.editor
    )
    assert created.status_code == 201, created.text
    listed = await api.http.get(PRODUCTS, headers=tenant.viewer)
    assert listed.status_code == 200, listed.text
    assert [p["sku"] for p in listed.json()["results"]] == ["accepted"]
