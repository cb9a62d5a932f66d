"""Delivering webhooks: one attempt (`send`), one batch of a subscription (`deliver_batch`) and
the worker's loop over every subscription with something to deliver (`Dispatcher`).

A subscription delivers the change log from its cursor (`cursor_seq`, the last seq delivered)
and its outbox rows at their place in that order (an outbox row's `after_seq` is the tenant's
last seq when it was recorded): outbox rows with `after_seq <= cursor` go first, then entries up
to the next outbox row's `after_seq`. A batch is read, POSTed, and only after a 2xx does the
cursor move (or the outbox rows count as delivered), in the transaction that writes the attempt
to the delivery log: a worker killed in between delivers the batch again, with the same event
ids (at least once). Entries are read only up to `committed_through` (the change log's
visibility rule), so a write committing later can never fall behind the cursor.

A failed attempt sets `next_attempt_at` with exponential back-off and jitter
(`PIM_WEBHOOK_RETRY_BASE_SECONDS` doubling up to `PIM_WEBHOOK_RETRY_MAX_SECONDS`); a subscription
whose attempts have failed for `PIM_WEBHOOK_DISABLE_AFTER_SECONDS` (3 days) is disabled.

The loop wakes on NOTIFY `pim_changes` (sent at commit by the change log's trigger, migration
h4_read_1) and `pim_webhooks` (by webhook_outbox's, migration h4_hooks_1), and polls every
`PIM_WEBHOOK_POLL_SECONDS` besides (retries, a lost listener). Each subscription it delivers to is leased (`Lock.WEBHOOK_DELIVERY`, a
session-level advisory lock on the loop's own connection): two workers never deliver to the same
subscription at once, and a killed worker's leases go with its connection.
"""

import asyncio
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.catalog.service import get_field_map
from app.changes.service import CHANGES_CHANNEL, committed_through, entry_of, read_entry_rows
from app.config import Settings
from app.db import all_tenants, driver_connection, pg_dsn, session_scope, tenant_is
from app.jobs.locks import Lease, Lock, LockKey, lease_connection
from app.jobs.transient import is_transient
from app.query.categories import category_subtrees
from app.query.compiling import SqlWhere, add_conditions
from app.query.models import DefinitionError
from app.query.parsing import category_ids, parse_definition, resolve
from app.webhooks.events import (
    PRODUCT_EVENTS,
    SIGNATURE_HEADER,
    body_from,
    event_json,
    other_event,
    product_event,
    sign,
)
from app.webhooks.urls import UrlRefused, check_url

log = structlog.get_logger("pim.webhooks")

OUTBOX_CHANNEL = "pim_webhooks"
TOTAL_TIMEOUT_S = 15.0
TIMEOUT = httpx.Timeout(TOTAL_TIMEOUT_S, connect=5.0)
KEPT_BODY_BYTES = 1024
_BUILTINS = ("name", "status", "categories", "variation_of", "variation_attributes")
_DUE_LIMIT = 200
WINDOW_BATCHES = 4  # a batch reads at most this many batch sizes of seqs


def new_client() -> httpx.AsyncClient:
    """The client deliveries go out with: connect 5 s, 15 s in all (`send` caps the total);
    redirects are not followed (a receiver cannot bounce a delivery to an address the URL
    check refused)."""
    return httpx.AsyncClient(
        timeout=TIMEOUT,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        headers={"User-Agent": "pim-webhooks/1"},
    )


def url_rules(settings: Settings) -> dict[str, bool]:
    return {
        "allow_private": settings.webhook_allow_private,
        "require_https": settings.env != "dev",
    }


@dataclass(frozen=True, slots=True)
class Attempt:
    succeeded: bool
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None


async def send(
    client: httpx.AsyncClient, url: str, secret: str, body: bytes, *, settings: Settings
) -> Attempt:
    """POST `body` to `url`, signed now; the URL is checked again first (DNS can change)."""
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        await check_url(url, **url_rules(settings))
    except UrlRefused as exc:
        return Attempt(False, None, elapsed_ms(), exc.detail, None)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)}
    kept = b""
    try:
        async with asyncio.timeout(TOTAL_TIMEOUT_S):
            async with client.stream("POST", url, content=body, headers=headers) as response:
                async for chunk in response.aiter_raw():
                    kept += chunk
                    if len(kept) >= KEPT_BODY_BYTES:
                        break  # the rest is not read: the connection is dropped
                status = response.status_code
    except TimeoutError:
        return Attempt(False, None, elapsed_ms(), f"timed out after {TOTAL_TIMEOUT_S:g} s", None)
    except (httpx.HTTPError, OSError) as exc:
        return Attempt(False, None, elapsed_ms(), f"{type(exc).__name__}: {exc}"[:500], None)
    text = kept[:KEPT_BODY_BYTES].decode("utf-8", "replace")
    ok = 200 <= status < 300
    return Attempt(ok, status, elapsed_ms(), None if ok else f"HTTP {status}", text)


# --- one batch --------------------------------------------------------------------------------


@dataclass
class Batch:
    event_ids: list[str]
    body: bytes  # the events (`body_from`), ready to sign and POST
    cursor: int  # the subscription's cursor once this batch is delivered
    outbox_ids: list[int]
    first_seq: int | None = None
    last_seq: int | None = None

    @classmethod
    def of(cls, events: Iterable[dict[str, Any]], cursor: int, outbox_ids: list[int]) -> "Batch":
        """Each event serialised as soon as it is built (see `body_from`)."""
        ids, parts = [], []
        for event in events:
            ids.append(event["id"])
            parts.append(event_json(event))
        return cls(ids, body_from(parts), cursor, outbox_ids)


_NO_EVENTS = body_from([])


_SUBSCRIPTION_SQL = f"""
SELECT id, url, secret, events, filter::text AS filter, active, cursor_seq, cursor_epoch
FROM webhook_subscriptions s WHERE {tenant_is("s")} AND s.id = $2
"""
_OUTBOX_SQL = f"""
SELECT id, event_id::text AS event_id, type, after_seq, data::text AS data, created_at
FROM webhook_outbox o WHERE {tenant_is("o")} AND o.subscription_id = $2 AND o.delivered_at IS NULL
ORDER BY after_seq, id LIMIT $3
"""


async def _matching_ids(
    session: AsyncSession, conn, tenant_id: int, definition: Any, entries: list[dict[str, Any]]
) -> set[int]:
    """Products of `entries` that the filter matches: a live product as it is now, a deleted
    one as it was when deleted (the predicate compiler's SQL over a row built from its state)."""
    node = parse_definition(definition)
    fields = await get_field_map(session)
    subtrees = await category_subtrees(conn, tenant_id, category_ids(node))
    clause = resolve(node, fields, subtrees=subtrees)
    live = sorted({e["product_id"] for e in entries if e["op"] != "deleted"})
    gone: dict[int, dict[str, Any]] = {}
    for e in entries:
        if e["op"] == "deleted":
            state = {key: change["old"] for key, change in e["changes"].items()}
            row = {key: state.pop(key, None) for key in _BUILTINS}
            gone[e["product_id"]] = {
                **row,
                "tenant_id": tenant_id,
                "id": e["product_id"],
                "sku": e["sku"],
                "categories": row["categories"] or [],
                "variation_attributes": row["variation_attributes"] or [],
                "data": state,
            }
    matched: set[int] = set()
    if live:
        where = SqlWhere.of_tenant(tenant_id)
        add_conditions(where, clause, tenant="$1")
        ids = where.bind(live)
        rows = await conn.fetch(
            f"SELECT p.id FROM products p WHERE {where.sql} AND p.id = ANY({ids}::bigint[])",
            *where.params,
        )
        matched.update(r["id"] for r in rows)
    if gone:
        where = SqlWhere.of_tenant(tenant_id)
        add_conditions(where, clause, tenant="$1")
        states = where.bind(orjson.dumps(list(gone.values())).decode())
        rows = await conn.fetch(
            f"SELECT p.id FROM jsonb_populate_recordset(NULL::products, {states}::jsonb) p "
            f"WHERE {where.sql}",
            *where.params,
        )
        matched.update(r["id"] for r in rows)
    return matched


async def next_batch(session: AsyncSession, tenant_id: int, sub: Any, *, size: int) -> Batch:
    """What the subscription delivers next (see the module); no events: only the cursor moves."""
    conn = await driver_connection(session)
    cursor = sub["cursor_seq"]
    through = await committed_through(conn, tenant_id)
    pending = await conn.fetch(_OUTBOX_SQL, tenant_id, sub["id"], size)
    skip = set(sub.get("skip_outbox") or ())
    pending = [o for o in pending if o["id"] not in skip]
    ready = [o for o in pending if o["after_seq"] <= cursor]
    if ready:
        events = (
            other_event(o["event_id"], o["type"], o["created_at"], orjson.Fragment(o["data"]))
            for o in ready
        )
        return Batch.of(events, cursor, [o["id"] for o in ready])
    # a window of seqs (a tenant's seqs are consecutive): each read is a bounded range of the
    # primary key whatever plan the statistics lead to, also when few entries are wanted
    upper = min([through, cursor + WINDOW_BATCHES * size, *(o["after_seq"] for o in pending)])
    if upper <= cursor:
        return Batch([], _NO_EVENTS, cursor, [])
    ops = [t.split(".", 1)[1] for t in sub["events"] if t in PRODUCT_EVENTS]
    rows = (
        await read_entry_rows(conn, tenant_id, after=cursor, through=upper, ops=ops, limit=size)
        if ops
        else []
    )
    new_cursor = rows[-1]["seq"] if len(rows) == size else upper
    if sub["filter"] is not None and rows:
        entries = [entry_of(r) for r in rows]
        matched = await _matching_ids(
            session, conn, tenant_id, orjson.loads(sub["filter"]), entries
        )
        rows = [r for r, e in zip(rows, entries, strict=True) if e["product_id"] in matched]
        del entries
    batch = Batch.of((product_event(tenant_id, entry_of(r)) for r in rows), new_cursor, [])
    if rows:
        batch.first_seq, batch.last_seq = rows[0]["seq"], rows[-1]["seq"]
    return batch


_LOG_SQL = """
INSERT INTO webhook_deliveries (tenant_id, subscription_id, ping, succeeded, status_code,
    latency_ms, error, response_body, event_ids, first_seq, last_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text[], $10, $11)
"""
_ADVANCE_SQL = f"""
UPDATE webhook_subscriptions s SET cursor_seq = $3, failures = 0, failing_since = NULL,
    last_error = NULL, next_attempt_at = now()
WHERE {tenant_is("s")} AND s.id = $2 AND s.cursor_epoch = $4
"""
_DELIVERED_SQL = f"""
UPDATE webhook_outbox o SET delivered_at = now()
WHERE {tenant_is("o")} AND o.id = ANY($2::bigint[])
"""
# a failed attempt: the next one after `$3` seconds; disabled once failing for `$5` seconds
_FAILED_SQL = f"""
UPDATE webhook_subscriptions s SET failures = s.failures + 1,
    failing_since = COALESCE(s.failing_since, now()), last_error = $4,
    next_attempt_at = now() + make_interval(secs => $3),
    active = s.active AND COALESCE(s.failing_since, now()) > now() - make_interval(secs => $5),
    disabled_reason = CASE
        WHEN COALESCE(s.failing_since, now()) > now() - make_interval(secs => $5) THEN s.disabled_reason
        ELSE 'failing since ' || to_char(s.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
             || ': ' || $4 END
WHERE {tenant_is("s")} AND s.id = $2 AND s.cursor_epoch = $6
RETURNING s.active, s.failures
"""


async def log_attempt(
    conn,
    tenant_id: int,
    subscription_id: int,
    attempt: Attempt,
    *,
    event_ids: list[str],
    ping: bool = False,
    first_seq: int | None = None,
    last_seq: int | None = None,
) -> None:
    await conn.execute(
        _LOG_SQL,
        tenant_id,
        subscription_id,
        ping,
        attempt.succeeded,
        attempt.status_code,
        attempt.latency_ms,
        attempt.error,
        attempt.response_body,
        event_ids,
        first_seq,
        last_seq,
    )


def backoff_seconds(failures: int, settings: Settings) -> float:
    """The wait after the `failures`-th failure in a row: doubling from the base up to the max,
    then between half and all of it (jitter, so that receivers coming back are not stampeded)."""
    delay = min(
        settings.webhook_retry_max_seconds,
        settings.webhook_retry_base_seconds * 2 ** min(failures - 1, 30),
    )
    return delay / 2 + random.random() * delay / 2


@dataclass
class Plan:
    """A subscription's next batch, read and ready to POST (or, without events, only a move of
    its cursor past entries it does not want); `problem`: why it cannot be built (a filter the
    schema no longer fits), which counts as a failed attempt."""

    tenant_id: int
    subscription_id: int
    url: str
    secret: str
    epoch: int
    cursor: int  # the cursor this batch starts after
    batch: Batch | None
    problem: str | None = None


async def plan_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant_id: int,
    subscription_id: int,
    *,
    after: Plan | None = None,
) -> Plan | None:
    """The subscription's next batch; None when it is deleted or inactive. `after`: the batch
    being delivered now, assumed delivered (its cursor and outbox rows), so that the next one is
    read while it is in flight; `complete` tells whether the assumption held."""
    async with session_scope(sessionmaker, tenant_id) as session:
        conn = await driver_connection(session)
        sub = await conn.fetchrow(_SUBSCRIPTION_SQL, tenant_id, subscription_id)
        if sub is None or not sub["active"]:
            return None
        if after is not None and after.batch is not None:
            if sub["cursor_epoch"] != after.epoch:
                return None  # replayed meanwhile: the caller starts over
            sub = {
                **dict(sub),
                "cursor_seq": after.batch.cursor,
                "skip_outbox": after.batch.outbox_ids,
            }
        plan = Plan(
            tenant_id,
            subscription_id,
            sub["url"],
            sub["secret"],
            sub["cursor_epoch"],
            sub["cursor_seq"],
            None,
        )
        try:
            plan.batch = await next_batch(session, tenant_id, sub, size=settings.webhook_batch_size)
        except DefinitionError as exc:  # the schema changed under the filter
            plan.problem = f"filter: {exc}"
    return plan


async def complete(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    plan: Plan,
    attempt: Attempt | None,
) -> bool:
    """Record the outcome of a plan: the attempt in the delivery log and, after a 2xx (or for a
    plan without events, `attempt` None), the cursor and outbox rows, in one transaction; else
    the back-off. True when the cursor moved (False: failed, or a replay changed the epoch)."""
    try:
        return await _complete(sessionmaker, settings, plan, attempt)
    except asyncpg.ForeignKeyViolationError:
        return False  # the webhook was deleted meanwhile: nothing to record


async def _complete(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    plan: Plan,
    attempt: Attempt | None,
) -> bool:
    tenant_id, subscription_id = plan.tenant_id, plan.subscription_id
    batch = plan.batch
    async with session_scope(sessionmaker, tenant_id) as session:
        conn = await driver_connection(session)
        if attempt is not None:
            await log_attempt(
                conn,
                tenant_id,
                subscription_id,
                attempt,
                event_ids=batch.event_ids if batch else [],
                first_seq=batch.first_seq if batch else None,
                last_seq=batch.last_seq if batch else None,
            )
        if batch is not None and (attempt is None or attempt.succeeded):
            status = await conn.execute(
                _ADVANCE_SQL, tenant_id, subscription_id, batch.cursor, plan.epoch
            )
            if batch.outbox_ids:
                await conn.execute(_DELIVERED_SQL, tenant_id, batch.outbox_ids)
            return status.endswith(" 1")
        failures = await conn.fetchval(
            f"SELECT failures FROM webhook_subscriptions s WHERE {tenant_is('s')} AND s.id = $2",
            tenant_id,
            subscription_id,
        )
        error = (attempt.error if attempt else None) or plan.problem or "failed"
        row = await conn.fetchrow(
            _FAILED_SQL,
            tenant_id,
            subscription_id,
            backoff_seconds((failures or 0) + 1, settings),
            error,
            settings.webhook_disable_after_seconds,
            plan.epoch,
        )
    if row is not None and not row["active"]:
        log.warning("webhook_disabled", subscription_id=subscription_id, error=error)
    return False


async def deliver(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    settings: Settings,
    tenant_id: int,
    subscription_id: int,
) -> None:
    """Deliver to the subscription until nothing is left or an attempt fails. While a batch is
    POSTed the next one is read (pipelined); it is used only if the POST succeeds and the cursor
    moved as assumed, so the order and the at-least-once rule are those of one batch at a time."""
    plan = await plan_batch(sessionmaker, settings, tenant_id, subscription_id)
    while plan is not None:
        batch = plan.batch
        if batch is None:  # the filter cannot be built: a failed attempt
            await complete(
                sessionmaker, settings, plan, Attempt(False, None, 0, plan.problem, None)
            )
            return
        if not batch.event_ids:
            if batch.cursor == plan.cursor or not await complete(
                sessionmaker, settings, plan, None
            ):
                return
            plan = await plan_batch(sessionmaker, settings, tenant_id, subscription_id)
            continue
        upcoming = asyncio.create_task(
            plan_batch(sessionmaker, settings, tenant_id, subscription_id, after=plan)
        )
        try:
            attempt = await send(client, plan.url, plan.secret, batch.body, settings=settings)
            moved = await complete(sessionmaker, settings, plan, attempt)
        except BaseException:
            upcoming.cancel()
            await asyncio.gather(upcoming, return_exceptions=True)
            raise
        if not moved:
            upcoming.cancel()
            await asyncio.gather(upcoming, return_exceptions=True)
            if not attempt.succeeded:
                return
            plan = await plan_batch(sessionmaker, settings, tenant_id, subscription_id)
            continue
        plan = await upcoming


# --- the loop ---------------------------------------------------------------------------------

_DUE_SQL = all_tenants(  # the worker delivers for every tenant
    """SELECT s.tenant_id, s.id FROM webhook_subscriptions s
       LEFT JOIN product_change_seqs q ON q.tenant_id = s.tenant_id
       WHERE s.active AND s.next_attempt_at <= now()
         AND (s.cursor_seq < COALESCE(q.last_seq, 0)
              OR EXISTS (SELECT 1 FROM webhook_outbox o
                         WHERE o.subscription_id = s.id AND o.delivered_at IS NULL))
       ORDER BY s.next_attempt_at LIMIT $1"""
)


class Dispatcher:
    """The worker's delivery loop (see the module); `run` until cancelled."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.wake = asyncio.Event()
        self.running: dict[int, asyncio.Task] = {}
        self._locks = asyncio.Lock()  # the lease connection runs one statement at a time

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook_loop_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def _run(self) -> None:
        listener: asyncpg.Connection | None = None
        async with new_client() as client, lease_connection(self.engine) as lease:
            try:
                while True:
                    if listener is None or listener.is_closed():
                        listener = await self._listen()
                    self.wake.clear()
                    await self._start_due(client, lease)
                    try:
                        await asyncio.wait_for(self.wake.wait(), self.settings.webhook_poll_seconds)
                    except TimeoutError:
                        pass
            finally:
                for task in self.running.values():
                    task.cancel()
                await asyncio.gather(*self.running.values(), return_exceptions=True)
                self.running.clear()
                if listener is not None and not listener.is_closed():
                    listener.terminate()

    async def _listen(self) -> asyncpg.Connection | None:
        try:
            conn = await asyncpg.connect(
                pg_dsn(self.settings.database_url),
                timeout=5,
                server_settings={"application_name": "pim-webhook-listener"},
            )
            for channel in (CHANGES_CHANNEL, OUTBOX_CHANNEL):
                await conn.add_listener(channel, lambda *_args: self.wake.set())
            return conn
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            log.warning("webhook_listener_unavailable", error=str(exc)[:300])
            return None  # polling only, until it comes back

    async def _start_due(self, client: httpx.AsyncClient, lease: Lease) -> None:
        room = self.settings.webhook_concurrency - len(self.running)
        if room <= 0:
            return
        async with self.engine.connect() as connection:
            raw: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
            due = await raw.fetch(_DUE_SQL, _DUE_LIMIT)
        for row in due:
            if room <= 0:
                break
            if row["id"] in self.running:
                continue
            key = LockKey(Lock.WEBHOOK_DELIVERY, row["tenant_id"], str(row["id"]))
            async with self._locks:
                if not await lease.try_lock(key):
                    continue  # another worker delivers to it
            self.running[row["id"]] = asyncio.create_task(
                self._drain(client, lease, key, row["tenant_id"], row["id"])
            )
            room -= 1

    async def _drain(
        self, client: httpx.AsyncClient, lease: Lease, key: LockKey, tenant_id: int, sub_id: int
    ) -> None:
        try:
            await deliver(self.sessionmaker, client, self.settings, tenant_id, sub_id)
        except Exception as exc:
            level = log.info if is_transient(exc) else log.error
            level(
                "webhook_delivery_error",
                subscription_id=sub_id,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            await asyncio.sleep(1)  # not at once again
        finally:
            try:
                async with self._locks:
                    await lease.unlock(key)
            finally:
                self.running.pop(sub_id, None)
                self.wake.set()  # what committed meanwhile is looked at again


async def prune_log(conn, *, retention_days: int) -> int:
    """Delivery log rows and delivered outbox rows older than the retention go."""
    deleted = await conn.fetchval(
        all_tenants(  # retention: every tenant's old rows
            """WITH d AS (DELETE FROM webhook_deliveries
                          WHERE attempted_at < now() - make_interval(days => $1) RETURNING 1),
                    o AS (DELETE FROM webhook_outbox
                          WHERE created_at < now() - make_interval(days => $1) RETURNING 1)
               SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM o)"""
        ),
        retention_days,
    )
    return deleted or 0
