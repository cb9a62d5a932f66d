"""Read-model test helpers: the model forced on for small tenants, syncs, and marker rows."""

import asyncio
import time

import asyncpg
import pytest

from app.catalog.fields import FieldDef
from app.db import pg_dsn, tenant_is
from app.mirror.apply import BUSY, catch_up, rebuild
from app.mirror.model import COLUMNS, TABLE, read_state
from app.query.models import Clause
from app.query.parsing import parse_definition, resolve

SCHEMA = "/api/pim/schema/"
CATEGORIES = "/api/pim/categories/"
BULK = "/api/pim/products/bulk/"
LIST = "/api/pim/products/"
SEARCH = "/api/pim/products/search/"
FACETS = "/api/pim/facets/"
FACETS_SEARCH = "/api/pim/facets/search/"
MARKER_ID = 2**62


@pytest.fixture
def mirror(app):
    """The API's read model, on for tenants of any size (PIM_MIRROR_MIN_PRODUCTS=0) during the test."""
    state = app.state.mirror
    saved = (state.enabled, state.min_products, state.wait_s)
    state.enabled, state.min_products = True, 0
    state._skip.clear()
    yield state
    state.enabled, state.min_products, state.wait_s = saved


@pytest.fixture
async def pg(settings):
    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    yield conn
    await conn.close()


async def rebuild_model(app, pg, tenant_id: int):
    return await rebuild(pg, app.state.clickhouse, tenant_id)


async def sync_model(app, pg, tenant_id: int) -> int:
    """Apply the tenant's committed entries to the model: the entries applied here. A worker of
    the suite may be applying them at the same time (BUSY): waited out, it may leave none."""
    deadline = time.monotonic() + 30
    while (applied := await catch_up(pg, app.state.clickhouse, tenant_id)) == BUSY:
        assert time.monotonic() < deadline, "another writer held the tenant's model for 30 s"
        await asyncio.sleep(0.05)
    return applied


async def model_is_current(app, pg, tenant_id: int) -> bool:
    """The model's watermark is the tenant's last committed seq."""
    state = await read_state(app.state.clickhouse, tenant_id)
    last = await pg.fetchval(
        f"SELECT last_seq FROM product_change_seqs WHERE {tenant_is('product_change_seqs')}",
        tenant_id,
    )
    return state is not None and state.seq == (last or 0)


async def add_marker(app, tenant_id: int, **state) -> None:
    """A row in the model for a product Postgres does not have: a count that includes it came
    from the model."""
    current = await read_state(app.state.clickhouse, tenant_id)
    assert current is not None
    row = {
        "tenant_id": tenant_id,
        "generation": current.generation,
        "id": MARKER_ID,
        "version": 0,
        "sign": 1,
        "sku": "marker",
        "name": "marker",
        "status": "active",
        "variation_of": None,
        "categories": [],
        "present": [],
        "filled": [],
        "kv": [],
        "long_keys": [],
        "ka": [],
        "nk": [],
        "nv": [],
        **state,
    }
    await app.state.clickhouse.insert(TABLE, COLUMNS, [tuple(row[c] for c in COLUMNS)])


async def put_schema(client, tenant, fields) -> None:
    response = await client.put(SCHEMA, json={"fields": fields}, headers=tenant.editor)
    assert response.status_code == 200, response.text


async def bulk(client, tenant, products) -> None:
    response = await client.post(BULK, json={"products": products}, headers=tenant.editor)
    assert response.status_code == 200, response.text
    assert response.json()["failed"] == 0, response.json()


def clause_of(fields: list[dict], definition: dict) -> Clause:
    """A DSL definition resolved against a schema given as the API takes it."""
    defs = {f["name"]: FieldDef.model_validate(f) for f in fields}
    return resolve(parse_definition(definition), defs)
