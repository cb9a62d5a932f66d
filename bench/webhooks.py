"""Webhook delivery benchmark (issue 16): throughput to a local receiver, and idle latency.

    .venv/bin/python bench/webhooks.py                  # 200,000 products
    .venv/bin/python bench/webhooks.py --n 1000000

A real worker process (`pim worker`, PIM_WEBHOOK_ALLOW_PRIVATE=true) delivers to an HTTP receiver
on 127.0.0.1: bench/hook_receiver.py, a process of its own, answering 200 at once; it counts the
product events and keeps their ids and seqs (found in the raw body by one regular expression),
and at the end every id kept is checked against the id its seq must have (the run fails on a
wrong one). Until 2026-12-07 the receiver was http.server in a thread of this process: the bare
rounds and the loads below held the GIL it needed (part of the gap in the older figures).

1. Bulk load: N new products written by the bulk endpoint's code (`upsert_products`, batches of
   5,000, one transaction each) while the webhook (all product events) is subscribed. Figures:
   the rows/s written (the baseline: delivery cannot outrun the writes), the events/s delivered
   during the load, and the time from the end of the load to the last event delivered.
2. Backlog: `replay {"after": <before the load>}` makes the worker deliver all N events again
   as fast as it can: events/s delivered. Baseline in the same run, interleaved with the replay
   by rounds: the worker's own read and serialisation of batches of 1,000 (`next_batch`, the
   same window of seqs), without HTTP or bookkeeping. (Until 2026-12-07 the baseline read with
   `read_entries` through the last seq, no window: with the plan of an unanalysed log each page
   sorted the whole backlog, hence the 3,110 below.)
3. Idle latency: single-product writes, one every ~0.3 s; the delay from each commit to the
   receiver holding its event (p50, p95). Baseline, interleaved: a POST of a one-event body
   straight to the receiver (the HTTP round trip alone).

Measured 2026-12-07 on the shared 2-core machine, `--n 100000`, runs of the code before issue
16's delivery work (with its own benchmark: receiver in a thread) alternating with runs after
it, load average 0.6-3.6 (others' tests and benchmarks running; the load's rate swings with it):

    backlog replay, before (5 runs): 10,224 / 11,655 / 10,738 / 11,821 / 11,227 events/s
    backlog replay, after  (9 runs): 22,729 / 21,850 / 14,722 / 24,779 / 24,133 / 28,865 /
                                     30,678 / 19,018 / 29,490 events/s (the two lowest in runs
                                     whose load went at 4,701 and 6,165 rows/s: others busy)
    bare next_batch, after: 25,219-62,906 events/s; before, read_entries paged through the last
    seq: 2,070-3,563 (unanalysed log), 19,356 / 19,646 (once the worker had analysed it)

`--n 1000000`, one run each, after then before (load average 0.9-2.1): backlog replay 23,385
events/s after (bare next_batch 44,060) against 9,661 before (bare read_entries 15,737); during
the load 8,224 events/s delivered for 8,265 rows/s written after, 8,886 for 8,931 before (the
writes are the bound), all delivered 0.24 s after the last commit (1.53 s before); idle p50
7.6 ms after, 7.5 ms before.

During the load delivery follows the writes: after, 4,466-11,044 events/s delivered for
4,701-11,625 rows/s written, all delivered 0.11-0.25 s after the last commit (before: 7,167-9,548
for 7,557-11,691 rows/s, 0.33-1.38 s after it). Idle commit -> delivery p50 7.0-9.7 ms after
(6 runs with this receiver), 5.9-10.7 ms before; the old code with this receiver 9.0-11.1 ms:
unchanged within the noise (direct POST 1.1-2.0 ms, 2.2-5.0 before). The worker now spends
~22 us of CPU an event (in-process `deliver` of 99,042 events to this receiver: 34,000-42,000
events/s, against ~20,000 and 43-57 us before: the garbage collector's full passes over pages
of entries held as nested dicts were most of it); what is left is the entry and event dicts and
their JSON (~9 us), asyncpg's decoding (~2 us), HTTP and the delivery log, and Postgres on the
same two cores.

Older runs, with the receiver in a thread: `--n 1000000 --latency-writes 40` at load average
12-16: the load wrote 2,115 rows/s and the webhook delivered 2,104 events/s during it (995,000 of
1,000,000 by the last commit, the rest 0.57 s after it; 1,001 POSTs); the replayed backlog went
at 2,392 events/s against 3,110 events/s for the bare read and serialisation; idle p50 32.5 ms,
p95 52.6 ms, against 11.2 ms for a direct POST. At load average ~5, `--n 100000`: load 8,065
rows/s, delivered during it 7,661 events/s; backlog 9,044 events/s against 18,757 for the bare
read+serialise; idle p50 8.2 ms, p95 13.6 ms (direct POST 3.8 ms). Building the event JSON in
SQL instead was measured too (same machine, after ANALYZE, 10 pages of 1,000): 5,023 events/s
against 5,994 for the Python path, so it stays Python.

Run it on the development database (`.env`): it creates a tenant per run and leaves it.
"""

import argparse
import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["PIM_WEBHOOK_ALLOW_PRIVATE"] = "true"

from app.catalog.fields import FieldDef
from app.changes.context import CONTEXT_KEY
from app.changes.service import committed_through
from app.config import get_settings
from app.db import create_engine, create_sessionmaker, driver_connection, session_scope
from app.products.upsert import upsert_products
from app.webhooks import service as webhooks
from app.webhooks.delivery import next_batch
from app.webhooks.events import body_of
from app.webhooks.schemas import WebhookIn
from bench.catalog import SCHEMA, make_product
from bench.common import create_tenant, free_port, pct

BATCH = 5_000


class Receiver:
    """The receiver process (bench/hook_receiver.py) and its figures, asked over HTTP."""

    def __init__(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/hook"
        self.base = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.hook_receiver", "--port", str(port)],
            cwd=ROOT,
            start_new_session=True,
        )
        self.http = httpx.AsyncClient(timeout=30)

    async def started(self) -> None:
        for _ in range(200):
            try:
                await self.http.get(f"{self.base}/stats")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        raise RuntimeError("the receiver did not start")

    async def _get(self, path: str, **params) -> dict:
        return (await self.http.get(f"{self.base}{path}", params=params)).json()

    async def count(self) -> int:
        return (await self._get("/stats"))["events"]

    async def posts(self) -> int:
        return (await self._get("/stats"))["posts"]

    async def arrived(self, seq: int) -> float | None:
        return (await self._get("/arrived", seq=seq))["at"]

    async def check(self, tenant_id: int) -> dict:
        return await self._get("/check", tenant=tenant_id)

    async def stop(self) -> None:
        await self.http.aclose()
        self.process.terminate()
        self.process.wait(timeout=10)


def start_worker() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=ROOT,
        env={**os.environ, "PIM_WEBHOOK_ALLOW_PRIVATE": "true", "PIM_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def wait_count(receiver: Receiver, target: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while (count := await receiver.count()) < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} of {target} events after {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000, help="products in the bulk load")
    parser.add_argument("--latency-writes", type=int, default=40)
    args = parser.parse_args()
    settings = get_settings()
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    tenant_id = create_tenant(f"bench-hooks-{secrets.token_hex(3)}")["tenant_id"]
    fields = {d.name: d for d in (FieldDef.model_validate(f) for f in SCHEMA)}
    async with session_scope(sessionmaker, tenant_id) as session:
        conn = await driver_connection(session)
        await conn.execute(
            "INSERT INTO product_schemas (tenant_id, fields) VALUES ($1, $2::jsonb)",
            tenant_id,
            orjson.dumps(SCHEMA).decode(),
        )
    receiver = Receiver()
    await receiver.started()
    async with session_scope(sessionmaker, tenant_id) as session:
        hook = await webhooks.create_webhook(
            session,
            body=WebhookIn.model_validate(
                {
                    "url": receiver.url,
                    "events": ["product.created", "product.updated", "product.deleted"],
                }
            ),
            settings=settings,
        )
        hook_id, start_seq = hook.id, hook.cursor_seq
    worker = start_worker()
    try:
        rng = random.Random(7)
        products = [
            make_product(i, rng) for i in range(BATCH)
        ]  # the load makes its batches as it goes
        # warm-up: the worker is up and delivering (one product, deleted again: two events)
        async with session_scope(sessionmaker, tenant_id) as session:
            await upsert_products(
                session,
                items=[{**products[0], "sku": "warm-up"}],
                fields=fields,
                max_data_bytes=1 << 20,
            )
        async with session_scope(sessionmaker, tenant_id) as session:
            await (await driver_connection(session)).execute(
                "DELETE FROM products p WHERE p.tenant_id = $1 AND p.sku = 'warm-up'", tenant_id
            )
        await wait_count(receiver, 2, timeout=300)
        async with session_scope(sessionmaker, tenant_id) as session:
            start_seq = await committed_through(await driver_connection(session), tenant_id)
        warm_events, warm_posts = await receiver.count(), await receiver.posts()

        # 1. bulk load, delivered as it goes
        started = time.monotonic()
        delivered_at_end = 0
        for start in range(0, args.n, BATCH):
            async with session_scope(sessionmaker, tenant_id) as session:
                session.info[CONTEXT_KEY] = {
                    "actor": {"type": "token", "id": "bench", "name": None},
                    "request_id": f"bench-{start}",
                    "import_job_id": None,
                }
                items = [make_product(i, rng) for i in range(start, min(start + BATCH, args.n))]
                result, _ = await upsert_products(
                    session,
                    items=items,
                    fields=fields,
                    max_data_bytes=1 << 20,
                )
                assert not result.errors, result.errors[:3]
        load_s = time.monotonic() - started
        delivered_at_end = await receiver.count() - warm_events
        done = await wait_count(receiver, warm_events + args.n, timeout=3600)
        total_s = done - started
        print(
            f"bulk load of {args.n:,} products: {args.n / load_s:,.0f} rows/s written ({load_s:.1f} s)"
        )
        print(
            f"  delivered during the load: {delivered_at_end:,} events "
            f"({delivered_at_end / load_s:,.0f} events/s); all {args.n:,} delivered "
            f"{total_s:.1f} s after the start ({args.n / total_s:,.0f} events/s overall), "
            f"{done - started - load_s:.2f} s after the last commit; "
            f"{await receiver.posts() - warm_posts} POSTs"
        )

        # 2. backlog: replay everything vs the bare read, interleaved in rounds
        through = None
        async with session_scope(sessionmaker, tenant_id) as session:
            through = await committed_through(await driver_connection(session), tenant_id)
        bare_s, bare_events = 0.0, 0
        base = await receiver.count()
        replay_started = time.monotonic()
        async with session_scope(sessionmaker, tenant_id) as session:
            await webhooks.replay(session, hook_id, after=start_seq)
        cursor = start_seq
        events = ["product.created", "product.updated", "product.deleted"]
        while await receiver.count() < base + args.n:
            # a bare round: the worker's own read and serialisation of 10 batches of 1,000
            # (`next_batch`, same window of seqs), without HTTP or bookkeeping; the worker keeps
            # delivering meanwhile
            t0 = time.monotonic()
            async with session_scope(sessionmaker, tenant_id) as session:
                for _ in range(10):
                    sub = {"id": hook_id, "cursor_seq": cursor, "events": events, "filter": None}
                    batch = await next_batch(session, tenant_id, sub, size=1000)
                    cursor = batch.cursor if batch.cursor < through else start_seq
                    bare_events += len(batch.event_ids)
            bare_s += time.monotonic() - t0
            await asyncio.sleep(0.05)
        replay_s = time.monotonic() - replay_started
        print(
            f"backlog replay of {args.n:,} events: {args.n / replay_s:,.0f} events/s delivered "
            f"({replay_s:.1f} s); bare read+serialise, same run, interleaved: "
            f"{bare_events / bare_s:,.0f} events/s"
        )

        # 3. idle latency: commit -> receiver, vs a direct POST
        await asyncio.sleep(2)
        delays, direct = [], []
        async with httpx.AsyncClient() as http:
            for i in range(args.latency_writes):
                async with session_scope(sessionmaker, tenant_id) as session:
                    session.info[CONTEXT_KEY] = {
                        "actor": {"type": "token", "id": "bench", "name": None},
                        "request_id": f"bench-latency-{i}",
                        "import_job_id": None,
                    }
                    item = {**products[i], "price": products[i]["price"] + 1 + i}
                    await upsert_products(
                        session, items=[item], fields=fields, max_data_bytes=1 << 20
                    )
                    seq = await committed_through(await driver_connection(session), tenant_id)
                committed = time.time()
                deadline = time.monotonic() + 30
                while (arrived := await receiver.arrived(seq)) is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"seq {seq} not delivered after 30 s")
                    # the receiver notes the time of arrival: polled every 10 ms, not 2
                    await asyncio.sleep(0.01)
                delays.append((arrived - committed) * 1000)
                body = body_of(
                    [{"id": "x", "type": "ping", "seq": None, "created_at": None, "data": {}}]
                )
                t0 = time.time()
                await http.post(receiver.url, content=body)
                direct.append((time.time() - t0) * 1000)
                await asyncio.sleep(0.3 + random.random() * 0.1)
        print(
            f"idle commit -> delivery: p50 {pct(delays, 0.5):.1f} ms, p95 {pct(delays, 0.95):.1f} ms "
            f"({len(delays)} writes); a direct POST to the receiver: p50 {pct(direct, 0.5):.1f} ms"
        )
        checked = await receiver.check(tenant_id)
        print(
            f"receiver: {checked['checked']:,} product events, {checked['bad']} with a wrong id, "
            f"{checked['distinct_seqs']:,} distinct seqs, {checked['unmatched']} not recognised"
        )
        assert checked["bad"] == 0 and checked["unmatched"] == 0, checked
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        await receiver.stop()
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
