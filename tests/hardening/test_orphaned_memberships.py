"""Segment members left in ClickHouse by a delete that could not reach it (issue 13, finding 14).
Private ClickHouse and Redis that the test stops and starts; a real `pim worker`."""

from app.clickhouse import ClickHouse
from tests.conftest import start_worker, stop_worker, wait_for
from tests.hardening.conftest import tenant_in
from tests.hardening.test_faults import SEGMENTS, create_segment, seed, wait_computed


async def member_rows(clickhouse: ClickHouse, segment_id: int) -> int:
    rows = await clickhouse.fetch(
        "SELECT count() FROM product_memberships WHERE segment_id = %(id)s", {"id": segment_id}
    )
    return rows[0][0]


async def test_rows_of_a_segment_deleted_while_clickhouse_was_down_are_cleaned_up(
    app_with, redis_up, clickhouse_up, settings
):
    """Finding 14: a segment deleted while ClickHouse is down left its rows there forever. The
    worker's maintenance round deletes the rows of segments that are gone from Postgres, with SQL
    that runs on ClickHouse 18.16 and current releases (ALTER TABLE ... DELETE)."""
    api = await app_with(redis_url=redis_up.url, clickhouse_url=clickhouse_up.url)
    http, tenant = api.http, await tenant_in(api.app, "orphans")
    await seed(http, tenant, 30)
    kept, deleted = await create_segment(http, tenant), await create_segment(http, tenant)
    env = {
        "PIM_REDIS_URL": redis_up.url,
        "PIM_CLICKHOUSE_URL": clickhouse_up.url,
        "PIM_WORKER_MAINTENANCE_SECONDS": "1",
    }
    clickhouse = ClickHouse(settings.model_copy(update={"clickhouse_url": clickhouse_up.url}))
    worker = start_worker(env)
    try:
        for sid in (kept, deleted):
            assert (
                await http.post(f"{SEGMENTS}{sid}/compute/", headers=tenant.editor)
            ).status_code == 200
            assert (await wait_computed(http, tenant, sid))["computed_count"] == 20
        assert await member_rows(clickhouse, deleted) == 20

        clickhouse_up.kill()
        r = await http.delete(f"{SEGMENTS}{deleted}/", headers=tenant.editor)
        assert r.status_code == 204, r.text  # the delete does not wait for ClickHouse
        assert (await http.get(f"{SEGMENTS}{deleted}/", headers=tenant.viewer)).status_code == 404
        clickhouse_up.start()
        await clickhouse.close()  # its pooled connections died with the server

        async def cleaned() -> bool:
            try:
                return await member_rows(clickhouse, deleted) == 0
            except Exception:  # the server is still starting
                return False

        await wait_for(cleaned, timeout=60, interval=0.5)
        assert await member_rows(clickhouse, kept) == 20  # a live segment's members stay
        r = await http.get(f"{SEGMENTS}{kept}/members/", headers=tenant.viewer)
        assert r.status_code == 200 and r.json()["count"] == 20
    finally:
        stop_worker(worker)
        await clickhouse.close()
