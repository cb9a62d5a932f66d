"""An import slice runs with the cyclic collector paused (app.jobs.collector), which is enabled
again when the slice ends, however it ends."""

import gc

from app.imports import tasks
from tests.imports.conftest import confirm_on_private_queue, upload


async def confirmed(client, tenant, worker_ctx) -> str:
    job = (await upload(client, tenant.editor, b"sku,name\nA-1,One\nA-2,Two\n")).json()
    await confirm_on_private_queue(worker_ctx, tenant, job)
    return job["job_id"]


async def test_the_slice_runs_with_the_collector_paused(client, tenant, worker_ctx, monkeypatch):
    job_id = await confirmed(client, tenant, worker_ctx)
    run, enabled = tasks._Importer.run, []

    async def watched(self, deadline):
        enabled.append(gc.isenabled())
        return await run(self, deadline)

    monkeypatch.setattr(tasks._Importer, "run", watched)
    assert (await tasks.import_csv(worker_ctx, job_id))["status"] == "done"
    assert enabled == [False]
    assert gc.isenabled()


async def test_a_failed_slice_enables_the_collector(client, tenant, worker_ctx, monkeypatch):
    job_id = await confirmed(client, tenant, worker_ctx)

    async def failing(self, deadline):
        raise RuntimeError("parsing failed")

    monkeypatch.setattr(tasks._Importer, "run", failing)
    assert (await tasks.import_csv(worker_ctx, job_id))["status"] == "failed"
    assert gc.isenabled()
