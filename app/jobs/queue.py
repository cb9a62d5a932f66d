"""The arq job queue as the worker and `/readyz` see it: heartbeats, waiting jobs, lost jobs.

- Heartbeats: each worker process writes `now` under its own id in one sorted set, six times
  per `PIM_WORKER_HEARTBEAT_TIMEOUT_SECONDS`; `/readyz` reports the newest one (`newest_heartbeat`).
- Waiting jobs: `jobs_waiting` tells a long task (an import slice) that another job is due and
  no worker has a free slot for it, so that the task hands its slot over (fairness).
- Lost jobs: Postgres knows which work is pending (a segment `queued`, an import `importing`);
  Redis may have lost the job (an outage, a flush) or kept the job of a worker that died
  marked in progress for an hour. `revive` gives such work a runnable job again.
"""

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from arq.connections import ArqRedis
from arq.constants import default_queue_name, in_progress_key_prefix
from sqlalchemy.ext.asyncio import AsyncEngine

from app.jobs.enqueue import Job, send_now
from app.jobs.locks import LockKey, any_held
from app.jobs.transient import REDIS_DOWN

log = structlog.get_logger("pim.queue")

HEARTBEATS_KEY = "pim:worker-heartbeats"
BEATS_PER_TIMEOUT = 6  # a worker counts as gone after missing this many beats
_FORGET_AFTER_S = 86_400  # ids of workers gone for a day are dropped from the set

# a due job that no worker started within this long waits for a slot (workers poll every 0.5 s)
WAITING_AFTER_MS = 1500
_WAITING_SCAN = 200


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def beat(redis: ArqRedis, member: str) -> None:
    now = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(HEARTBEATS_KEY, {member: now})
        pipe.zremrangebyscore(HEARTBEATS_KEY, "-inf", now - _FORGET_AFTER_S)
        await pipe.execute()


async def forget(redis: ArqRedis, member: str) -> None:
    """A worker that stops cleanly no longer counts as alive."""
    await redis.zrem(HEARTBEATS_KEY, member)


async def heartbeat_loop(
    redis: ArqRedis, member: str, *, timeout: float, stop: asyncio.Event
) -> None:
    """Beat `BEATS_PER_TIMEOUT` times per `timeout` until `stop` is set; while Redis is down beats
    are only skipped. Stopped by the event, not cancelled: a beat cut off in flight could reach
    Redis after `forget` and bring the stopped worker back to life."""
    down = False
    while not stop.is_set():
        try:
            await beat(redis, member)
            if down:
                log.info("heartbeat_resumed", worker=member)
            down = False
        except REDIS_DOWN as exc:
            if not down:
                log.warning(
                    "heartbeat_failed", worker=member, error=f"{type(exc).__name__}: {exc}"[:300]
                )
            down = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout / BEATS_PER_TIMEOUT)


async def newest_heartbeat(redis: ArqRedis, *, max_age: float) -> tuple[float | None, int]:
    """(seconds since the newest heartbeat, None when there is none; workers that beat within `max_age`)."""
    now = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrevrange(HEARTBEATS_KEY, 0, 0, withscores=True)
        pipe.zcount(HEARTBEATS_KEY, now - max_age, "+inf")
        newest, alive = await pipe.execute()
    if not newest:
        return None, 0
    return max(0.0, now - newest[0][1]), alive


async def jobs_waiting(
    redis: ArqRedis, *, besides: str, queue_name: str = default_queue_name
) -> bool:
    """Whether a job has been due for `WAITING_AFTER_MS` and no worker has started it (all slots busy).

    Jobs of the asking work (`besides`, the base of its job ids) do not count: a duplicate of
    it would only find its lease held. Jobs stay in the queue while they run; those have an
    in-progress key.
    """
    due_before = int(time.time() * 1000) - WAITING_AFTER_MS
    job_ids = await redis.zrangebyscore(queue_name, "-inf", due_before, start=0, num=_WAITING_SCAN)
    job_ids = [j for j in job_ids if _base(j.decode()) != besides]
    if not job_ids:
        return False
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.exists(in_progress_key_prefix + job_id.decode())
        running = await pipe.execute()
    return not all(running)


@dataclass(frozen=True)
class Pending:
    """Work that Postgres says is pending, and how to queue a job for it."""

    base: str  # every job of this work has this id or an id starting with it and ":" (slices)
    job: Job  # a new job for it
    leases: tuple[LockKey, ...]  # held by a live run of it


def _base(job_id: str) -> str:
    return ":".join(job_id.split(":", 2)[:2])


async def revive(
    redis: ArqRedis,
    pending: Sequence[Pending],
    *,
    engine: AsyncEngine,
    queue_name: str = default_queue_name,
) -> Counter[str]:
    """Give pending work a runnable job; counts of what was found: 'live', 'released', 'enqueued'.

    - a job of it waits in the queue, or its lease is held (a run is live): 'live';
    - every job of it is marked in progress but the lease is free: its worker died, and arq
      would keep the mark for the task's timeout (an hour). The marks go; the jobs, still
      queued, run again: 'released';
    - no job at all (Redis lost it) and the lease free: a new one is queued: 'enqueued'.
    A run that a revival duplicates waits on the same lease and then finds nothing left to do.
    """
    counts: Counter[str] = Counter()
    if not pending:
        return counts
    async with engine.connect() as connection:
        conn = (await connection.get_raw_connection()).driver_connection
        await _revive(redis, conn, pending, queue_name, counts)
    return counts


async def _revive(
    redis: ArqRedis, conn, pending: Sequence[Pending], queue_name: str, counts: Counter[str]
) -> None:
    by_base: dict[str, list[str]] = {}
    for raw_id in await redis.zrange(queue_name, 0, -1):
        job_id = raw_id.decode()
        by_base.setdefault(_base(job_id), []).append(job_id)
    for work in pending:
        marks = [in_progress_key_prefix + j for j in by_base.get(work.base, [])]
        if marks:
            async with redis.pipeline(transaction=False) as pipe:
                for mark in marks:
                    pipe.exists(mark)
                running = await pipe.execute()
            if not all(running):
                counts["live"] += 1  # a job of it waits for a slot
                continue
        if await any_held(conn, work.leases):
            counts["live"] += 1
        elif marks:
            await redis.delete(*marks)
            counts["released"] += 1
        elif not await send_now(redis, work.job):
            counts["live"] += 1  # queued meanwhile (by a request, or another worker)
        else:
            counts["enqueued"] += 1
