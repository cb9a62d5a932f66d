"""Lean reads on a real streaming replica (PIM_DATABASE_REPLICA_URLS), read-your-writes by LSN.

The system Postgres allows no replication connections, so the test session starts its own
primary (initdb, migrated) and a hot standby of it made with `pg_basebackup -R`, both under
/tmp on free ports, and stops them at the end. A read goes to the replica when it has replayed
what the primary had written when the read began; with its replay paused (`pg_wal_replay_pause`)
a read after a write is answered by the primary, with the write; a replica that is down is
skipped.
"""

import asyncpg
import pytest

from app.replicas import ReplicaRouter
from tests.conftest import wait_for
from tests.hardening.conftest import PrivatePostgres, tenant_in


class PrivateReplica(PrivatePostgres):
    """A hot standby of `primary`: pg_basebackup -R (streaming, standby.signal written)."""

    def __init__(self, primary: PrivatePostgres):
        super().__init__()
        self.primary = primary

    async def init(self) -> None:
        self._run(
            "pg_basebackup",
            "-D",
            str(self.data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary.port),
            "-U",
            "postgres",
            timeout=300,
        )
        await self.start()


@pytest.fixture(scope="module")
async def replicated():
    primary = PrivatePostgres()
    replica: PrivateReplica | None = None
    try:
        await primary.init()
        replica = PrivateReplica(primary)
        await replica.init()
        yield primary, replica
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


async def _on(server: PrivatePostgres, sql: str, *args):
    conn = await asyncpg.connect(
        host="127.0.0.1", port=server.port, user="postgres", database="pim"
    )
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def test_reads_on_replica_and_read_your_writes(app_with, replicated):
    primary, replica = replicated
    assert await _on(replica, "SELECT pg_is_in_recovery()") is True
    api = await app_with(database_url=primary.url, database_replica_urls=replica.url)
    router: ReplicaRouter = api.app.state.lean_pool
    assert [r.name for r in router.replicas] == ["replica0"]
    tenant = await tenant_in(api.app, "replica")
    http = api.http

    put = await http.put(
        "/api/pim/schema/",
        json={"fields": [{"name": "brand"}, {"name": "price", "type": "number"}]},
        headers=tenant.editor,
    )
    assert put.status_code == 200
    created = await http.post(
        "/api/pim/products/",
        json={"sku": "R-1", "name": "first", "data": {"brand": "Acme", "price": 10}},
        headers=tenant.editor,
    )
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]

    # the replica catches up: reads (by id, a list, facets, the history) are served there
    async def replayed():
        before = router.served["replica0"]
        got = await http.get(f"/api/pim/products/{product_id}/", headers=tenant.viewer)
        return got.status_code == 200 and router.served["replica0"] > before

    await wait_for(replayed, timeout=30, interval=0.1)
    served = dict(router.served)
    got = await http.get(f"/api/pim/products/{product_id}/", headers=tenant.viewer)
    assert got.json()["name"] == "first"
    listed = await http.get("/api/pim/products/", params={"brand": "Acme"}, headers=tenant.viewer)
    assert [p["sku"] for p in listed.json()["results"]] == ["R-1"]
    facets = await http.get("/api/pim/facets/", headers=tenant.viewer)
    assert facets.status_code == 200
    history = await http.get(f"/api/pim/products/{product_id}/history/", headers=tenant.viewer)
    assert history.status_code == 200, history.text
    assert router.served["replica0"] >= served["replica0"] + 4
    assert router.served["primary"] == served["primary"]

    # replay paused: the replica keeps the old name, and a read after the write gets the new one
    await _on(replica, "SELECT pg_wal_replay_pause()")
    try:
        patched = await http.patch(
            f"/api/pim/products/{product_id}/", json={"name": "second"}, headers=tenant.editor
        )
        assert patched.status_code == 200, patched.text
        got = await http.get(f"/api/pim/products/{product_id}/", headers=tenant.viewer)
        assert got.json()["name"] == "second"
        listed = await http.get("/api/pim/products/", headers=tenant.viewer)
        assert [p["name"] for p in listed.json()["results"]] == ["second"]
        assert router.served["primary"] >= served["primary"] + 2
        stale = await _on(replica, "SELECT name FROM products WHERE id = $1", product_id)
        assert stale == "first"  # the replica really lags: the reads above could have failed
    finally:
        await _on(replica, "SELECT pg_wal_replay_resume()")

    # replay resumed: reads go back to the replica, with the write
    await wait_for(replayed, timeout=30, interval=0.1)
    got = await http.get(f"/api/pim/products/{product_id}/", headers=tenant.viewer)
    assert got.json()["name"] == "second"

    # the replica down: reads are the primary's
    await replica.stop("immediate")
    try:
        before = router.served["primary"]
        got = await http.get(f"/api/pim/products/{product_id}/", headers=tenant.viewer)
        assert got.status_code == 200 and got.json()["name"] == "second"
        listed = await http.get("/api/pim/products/", headers=tenant.viewer)
        assert listed.status_code == 200
        assert router.served["primary"] >= before + 2
    finally:
        await replica.start()
