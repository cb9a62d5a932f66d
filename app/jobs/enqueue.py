"""Queueing jobs: after the commit, always.

A job queued before its transaction commits can run before its rows are visible (or for rows
that then roll back). So a request never calls arq itself: `enqueue_after_commit` checks that
Redis answers (when it does not, the request fails with a 503 and rolls back: nothing changes)
and sends the job once the session's transaction has committed (`app.db.after_commit`); a
transaction that rolls back sends nothing. Should Redis fail in the moment between the commit
and the send, the work is pending in Postgres and the worker's recovery queues it
(`app/jobs/queue.revive`). Worker code outside any transaction sends with `send_now`.
"""

import asyncio
from dataclasses import dataclass

import structlog
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit
from app.errors import Unavailable
from app.jobs.transient import REDIS_DOWN

log = structlog.get_logger("pim.jobs")

_RELEASE_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class Job:
    """An arq job: the task's registered name, its arguments (ids, never ORM objects) and its id
    (deterministic where repeats should coalesce)."""

    function: str
    args: tuple
    job_id: str
    defer_s: float | None = None  # run no sooner than this many seconds from now


async def send_now(redis: ArqRedis, job: Job, *, await_release_s: float = 0) -> bool:
    """Queue `job` now; False when its id is taken (a job with that id is queued or running).

    `await_release_s`: a run that has just finished keeps its id for a moment, until arq releases
    it; try again for this long rather than let the finished run swallow the new job."""
    deadline = asyncio.get_running_loop().time() + await_release_s
    while (
        await redis.enqueue_job(job.function, *job.args, _job_id=job.job_id, _defer_by=job.defer_s)
        is None
    ):
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(_RELEASE_POLL_S)
    return True


async def enqueue_after_commit(
    session: AsyncSession,
    arq: ArqRedis,
    job: Job,
    *,
    unavailable: str,
    await_release_s: float = 0,
) -> None:
    """Queue `job` once `session`'s transaction commits (see the module). Raises `Unavailable`
    with the message `unavailable` now when Redis does not answer."""
    try:
        await arq.ping()
    except (RedisError, *REDIS_DOWN) as exc:
        log.warning("enqueue_refused", function=job.function, error=str(exc)[:200])
        raise Unavailable(unavailable) from None

    async def send() -> None:
        try:
            await send_now(arq, job, await_release_s=await_release_s)
        except (RedisError, *REDIS_DOWN) as exc:  # committed: the recovery queues it
            log.warning("enqueue_after_commit_failed", job_id=job.job_id, error=str(exc)[:200])

    after_commit(session, send)
