"""An import writes two batches at once (app.imports.tasks: `_Importer.run`), yet commits them in
file order: a SKU repeated in a later batch ends with the later row's values, the change log
numbers the batches' changes in file order, and the counts add up."""

import asyncio

from app.db import driver_connection, tenant_is
from app.imports import tasks
from tests.imports.conftest import IMPORT, confirm_on_private_queue, upload
from tests.imports.test_import_api import products_by_sku

BATCH = 40
ROWS = 400


def feed() -> bytes:
    lines = ["sku,name,price"]
    for i in range(ROWS):
        if i % BATCH == 5 and i >= BATCH:  # a SKU of the batch before, written again
            lines.append(f"SKU-{i - BATCH + 10:04d},Late {i},1.00")
        else:
            lines.append(f"SKU-{i:04d},Item {i},{i}.50")
    return ("\n".join(lines) + "\n").encode()


async def test_batches_overlap_and_commit_in_file_order(client, tenant, worker_ctx, monkeypatch):
    job = (await upload(client, tenant.editor, feed())).json()
    await confirm_on_private_queue(worker_ctx, tenant, job)
    monkeypatch.setattr(tasks, "BATCH_ROWS", BATCH)
    commit, in_flight, most = tasks._Importer.commit, 0, 0

    async def counted(self, batch, **kwargs):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await asyncio.sleep(0.05)  # the next batch gets its turn to start meanwhile
            return await commit(self, batch, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(tasks._Importer, "commit", counted)
    assert (await tasks.import_csv(worker_ctx, job["job_id"]))["status"] == "done"
    assert most == 2  # two batches were being written at once, never more

    done = (await client.get(f"{IMPORT}/{job['job_id']}/", headers=tenant.viewer)).json()
    late = ROWS // BATCH - 1
    assert (done["processed_rows"], done["created"], done["updated"], done["failed"]) == (
        ROWS,
        ROWS - late,
        late,
        0,
    ), done["errors"]
    products = await products_by_sku(client, tenant.viewer)
    for i in range(BATCH + 5, ROWS, BATCH):
        assert products[f"SKU-{i - BATCH + 10:04d}"]["name"] == f"Late {i}"  # the later row won

    async with worker_ctx["sessionmaker"]() as session:
        conn = await driver_connection(session)
        changes = await conn.fetch(
            f"SELECT sku, op FROM product_changes WHERE {tenant_is('product_changes')} ORDER BY seq",
            tenant.id,
        )
    # each change's batch, in the order the log numbered them: file order
    row_of = {}
    for i in range(ROWS):
        if not (i % BATCH == 5 and i >= BATCH):
            row_of.setdefault(f"SKU-{i:04d}", i)
    batches = [
        row_of[c["sku"]] // BATCH if c["op"] == "created" else row_of[c["sku"]] // BATCH + 1
        for c in changes
    ]
    assert len(changes) == ROWS
    assert batches == sorted(batches)
