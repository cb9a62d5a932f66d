"""A worker killed with SIGKILL in the middle of an import: a restarted worker resumes, counts stay exact."""

import signal
import time

from redis.asyncio import Redis
from sqlalchemy import text

from tests.conftest import start_worker, stop_worker, wait_for
from tests.imports.conftest import IMPORT, confirm, upload, wait_done

ROWS = 120_000
BAD_EVERY = 997  # these rows have a non-numeric price


def big_feed() -> bytes:
    lines = ["sku;name;price;stock;category;tags\n"]
    for i in range(ROWS):
        price = "n.v." if i % BAD_EVERY == 0 else f"{i % 1000},{i % 100:02d}"
        lines.append(
            f"K-{i:06d};Produkt {i};{price};{i % 50};Werkzeug > Gruppe {i % 7};a|b{i % 3}\n"
        )
    return "".join(lines).encode()


def _redis_db(url: str, db: int) -> str:
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


async def test_sigkill_mid_import_resumes_with_exact_counts(app_with, make_tenant, settings):
    redis_url = _redis_db(
        settings.redis_url, 11
    )  # a queue of its own: no other worker takes the job
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    client = await app_with(redis_url=redis_url)
    tenant = await make_tenant("crash")
    r = await upload(client, tenant.editor, big_feed())
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["suggested_mapping"]["category"] == "categories"
    bad = len(range(0, ROWS, BAD_EVERY))

    proc = start_worker({"PIM_REDIS_URL": redis_url})
    try:
        r = await confirm(client, tenant.editor, job)
        assert r.status_code == 202, r.text

        async def some_progress():
            r = await client.get(f"{IMPORT}/{job['job_id']}/", headers=tenant.viewer)
            body = r.json()
            return body if body["processed_rows"] >= 10_000 else None

        before = await wait_for(some_progress, timeout=60, interval=0.05)
        assert before["status"] == "importing" and before["processed_rows"] < ROWS
        stop_worker(proc, signal.SIGKILL)
        killed_at = (await client.get(f"{IMPORT}/{job['job_id']}/", headers=tenant.viewer)).json()
        assert killed_at["status"] == "importing" and killed_at["processed_rows"] < ROWS

        started = time.monotonic()
        proc = start_worker(
            {"PIM_REDIS_URL": redis_url}
        )  # its startup re-queues jobs left in `importing`
        done = await wait_done(client, tenant.editor, job["job_id"], timeout=120)
        assert time.monotonic() - started < 60
    finally:
        stop_worker(proc)
        await redis.flushdb()
        await redis.aclose()

    assert done["status"] == "done", done
    assert (done["processed_rows"], done["created"], done["updated"], done["failed"]) == (
        ROWS,
        ROWS - bad,
        0,
        bad,
    )
    assert done["total_rows"] == ROWS
    async with client._transport.app.state.sessionmaker() as session:
        counts = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM products WHERE tenant_id = :t), "
                    "(SELECT count(*) FROM import_row_errors WHERE job_id = :j), "
                    "(SELECT count(*) FROM import_chunks WHERE job_id = :j), "
                    "(SELECT count(*) FROM categories WHERE tenant_id = :t)"
                ),
                {"t": tenant.id, "j": job["job_id"]},
            )
        ).one()
    assert tuple(counts) == (
        ROWS - bad,
        bad,
        0,
        8,
    )  # chunks are dropped when done; 1 parent + 7 groups
    assert [e["row"] for e in done["errors"]] == [i + 2 for i in range(0, ROWS, BAD_EVERY)][:100]
