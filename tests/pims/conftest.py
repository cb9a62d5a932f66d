"""Helpers for the PIMS route tests: catalog setup through the API, and a SQL statement counter."""

import asyncio
from dataclasses import dataclass, field

import pytest
from sqlalchemy import event

SCHEMA = "/api/pim/schema/"
CATEGORIES = "/api/pim/categories/"
VIEWS = "/api/pim/views/"
BULK = "/api/pim/products/bulk/"


async def put_schema(client, tenant, fields, **extra):
    response = await client.put(SCHEMA, json={"fields": fields, **extra}, headers=tenant.editor)
    assert response.status_code == 200, response.text


async def make_category(client, tenant, name, parent_id=None) -> int:
    response = await client.post(
        CATEGORIES, json={"name": name, "parent_id": parent_id}, headers=tenant.editor
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def make_view(client, tenant, name, attributes, is_default=False) -> int:
    response = await client.post(
        VIEWS,
        json={"name": name, "attributes": attributes, "is_default": is_default},
        headers=tenant.editor,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def bulk(client, tenant, products):
    response = await client.post(BULK, json={"products": products}, headers=tenant.editor)
    assert response.status_code == 200, response.text
    assert response.json()["failed"] == 0, response.json()
    return response.json()


@dataclass
class StatementCounter:
    """Every statement sent to Postgres: through SQLAlchemy (ORM, text) and straight through asyncpg."""

    orm: list[str] = field(default_factory=list)
    driver: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.orm.clear()
        self.driver.clear()

    async def settle(self) -> None:
        await asyncio.sleep(0)  # asyncpg calls its query loggers with call_soon
        await asyncio.sleep(0)

    @property
    def data_statements(self) -> list[str]:
        """Statements other than transaction control and pool pings."""
        skip = ("BEGIN", "COMMIT", "ROLLBACK", ";", "SELECT 1")
        return [
            s
            for s in self.orm + self.driver
            if s.strip().upper() not in skip and not s.strip().upper().startswith(skip[:3])
        ]


@pytest.fixture
def statements(app):
    counter = StatementCounter()
    sync_engine = app.state.engine.sync_engine

    def on_execute(_conn, _cursor, statement, _params, _context, _executemany):
        counter.orm.append(statement)

    def on_query(record):
        counter.driver.append(record.query)

    def on_checkout(dbapi_connection, _record, _proxy):
        dbapi_connection.driver_connection.add_query_logger(on_query)

    def on_checkin(dbapi_connection, _record):
        if dbapi_connection is not None:
            dbapi_connection.driver_connection.remove_query_logger(on_query)

    event.listen(sync_engine, "before_cursor_execute", on_execute)
    event.listen(sync_engine.pool, "checkout", on_checkout)
    event.listen(sync_engine.pool, "checkin", on_checkin)
    try:
        yield counter
    finally:
        event.remove(sync_engine, "before_cursor_execute", on_execute)
        event.remove(sync_engine.pool, "checkout", on_checkout)
        event.remove(sync_engine.pool, "checkin", on_checkin)
