"""Webhook subscriptions: CRUD, secrets, the delivery log, replay and ping; and `record_event`,
with which imports and segment computes put their events in the subscriptions' outboxes.

Service functions take the tenant-bound session first and only flush; the request commits.
Delivery itself is the worker's (`app/webhooks/delivery.py`).
"""

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import MISSING
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import get_field_map
from app.changes.service import committed_through
from app.clickhouse import ClickHouse
from app.config import Settings
from app.db import (
    all_tenants,
    driver_connection,
    get_by_id,
    page_after_id,
    tenant_is,
    tenant_of,
    written,
)
from app.errors import BadRequest, Conflict, ErrorCode, Gone
from app.jobs.locks import Lock, xact_lock
from app.models import WebhookSubscription
from app.query.categories import category_subtrees
from app.query.models import DefinitionError, dump_definition
from app.query.parsing import category_ids, parse_definition, resolve
from app.segments import members
from app.webhooks import delivery
from app.webhooks.events import PING, EventType, body_of, new_secret, other_event
from app.webhooks.schemas import WebhookIn, WebhookPatch
from app.webhooks.urls import check_url

MAX_WEBHOOKS = 20


async def _checked_filter(session: AsyncSession, definition: Any) -> dict[str, Any]:
    """The normalised definition, checked against the tenant's schema (a 400 naming the place)."""
    try:
        node = parse_definition(definition)
        fields = await get_field_map(session)
        subtrees = await category_subtrees(
            await driver_connection(session), tenant_of(session), category_ids(node)
        )
        resolve(node, fields, subtrees=subtrees)
    except DefinitionError as exc:
        raise BadRequest(f"filter.{exc}", param="filter") from None
    return dump_definition(node)


async def list_webhooks(
    session: AsyncSession, *, after: int | None, limit: int
) -> list[WebhookSubscription]:
    return await page_after_id(session, WebhookSubscription, after=after, limit=limit)


async def get_webhook(
    session: AsyncSession, webhook_id: int, *, for_update: bool = False
) -> WebhookSubscription:
    return await get_by_id(
        session, WebhookSubscription, webhook_id, "Webhook", for_update=for_update
    )


async def create_webhook(
    session: AsyncSession, *, body: WebhookIn, settings: Settings
) -> WebhookSubscription:
    """A new subscription, delivering from the tenant's next change on (its cursor is the last
    committed seq). At most `MAX_WEBHOOKS` per tenant (409 `webhook_limit_reached`)."""
    await check_url(body.url, **delivery.url_rules(settings))
    definition = await _checked_filter(session, body.filter) if body.filter is not None else None
    conn = await driver_connection(session)
    tenant_id = tenant_of(session)
    await xact_lock(conn, Lock.WEBHOOKS, tenant_id)  # the count holds until the commit
    count = await session.scalar(select(func.count()).select_from(WebhookSubscription))
    if (count or 0) >= MAX_WEBHOOKS:
        raise Conflict(
            f"A tenant has at most {MAX_WEBHOOKS} webhooks: delete one first",
            code=ErrorCode.webhook_limit_reached,
        )
    webhook = WebhookSubscription(
        url=body.url,
        events=sorted({e.value for e in body.events}),
        filter=definition,
        active=body.active,
        secret=new_secret(),
        cursor_seq=await committed_through(conn, tenant_id),
    )
    session.add(webhook)
    return await written(session, webhook)


async def update_webhook(
    session: AsyncSession, webhook_id: int, *, body: WebhookPatch, settings: Settings
) -> WebhookSubscription:
    webhook = await get_webhook(session, webhook_id, for_update=True)
    if body.url is not MISSING:
        await check_url(body.url, **delivery.url_rules(settings))
        webhook.url = body.url
    if body.events is not MISSING:
        webhook.events = sorted({e.value for e in body.events})
    if body.filter is not MISSING:
        webhook.filter = (
            await _checked_filter(session, body.filter) if body.filter is not None else None
        )
    if body.active is not MISSING:
        if body.active and not webhook.active:  # re-enabled: a fresh start of its retries
            webhook.disabled_reason = None
            webhook.failures = 0
            webhook.failing_since = None
            webhook.next_attempt_at = func.now()
        webhook.active = body.active
    webhook.updated_at = func.now()
    return await written(session, webhook)


async def delete_webhook(session: AsyncSession, webhook_id: int) -> None:
    webhook = await get_webhook(session, webhook_id, for_update=True)
    await session.delete(webhook)
    await session.flush()


async def rotate_secret(session: AsyncSession, webhook_id: int) -> str:
    """A new secret; the next attempt is signed with it."""
    webhook = await get_webhook(session, webhook_id, for_update=True)
    webhook.secret = new_secret()
    webhook.updated_at = func.now()
    await session.flush()
    return webhook.secret


async def list_deliveries(
    session: AsyncSession, webhook_id: int, *, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` attempts, newest first, older than the id `before`."""
    await get_webhook(session, webhook_id)
    conn = await driver_connection(session)
    rows = await conn.fetch(
        "SELECT id, attempted_at, ping, succeeded, status_code, latency_ms, error, response_body, "
        "event_ids, first_seq, last_seq FROM webhook_deliveries d "
        f"WHERE {tenant_is('d')} AND d.subscription_id = $2 AND d.id < $3 ORDER BY d.id DESC LIMIT $4",
        tenant_of(session),
        webhook_id,
        before if before is not None else 2**63 - 1,
        limit,
    )
    return [dict(r) for r in rows]


async def replay(session: AsyncSession, webhook_id: int, *, after: int) -> dict[str, Any]:
    """Deliver again every event after seq `after` (exclusive): the cursor goes back to it, and
    non-product events recorded since go back into the outbox. A delivery in flight does not move
    the cursor (the epoch changes)."""
    webhook = await get_webhook(session, webhook_id, for_update=True)
    conn = await driver_connection(session)
    tenant_id = tenant_of(session)
    through = await committed_through(conn, tenant_id)
    if after > through:
        raise BadRequest(f"after: the last seq is {through}", param="after")
    pruned = await conn.fetchval(
        f"SELECT pruned_through FROM product_change_seqs q WHERE {tenant_is('q')}", tenant_id
    )
    if pruned and after < pruned:
        raise Gone(
            f"Entries up to seq {pruned} were pruned (retention): replay from after={pruned}",
            code=ErrorCode.changes_pruned,
            oldest_seq=pruned + 1,
        )
    requeued = await conn.fetchval(
        f"""WITH r AS (UPDATE webhook_outbox o SET delivered_at = NULL
                       WHERE {tenant_is("o")} AND o.subscription_id = $2 AND o.after_seq >= $3
                         AND o.delivered_at IS NOT NULL RETURNING 1)
            SELECT count(*) FROM r""",
        tenant_id,
        webhook_id,
        after,
    )
    webhook.cursor_seq = after
    webhook.cursor_epoch = webhook.cursor_epoch + 1
    webhook.next_attempt_at = func.now()
    webhook.updated_at = func.now()
    await session.flush()
    return {"id": webhook_id, "cursor_seq": after, "outbox_requeued": requeued}


async def ping(session: AsyncSession, webhook_id: int, *, settings: Settings) -> dict[str, Any]:
    """Deliver one `ping` event now (whether the webhook is active or not) and log the attempt."""
    webhook = await get_webhook(session, webhook_id)
    event = other_event(str(uuid.uuid4()), PING, datetime.now(UTC), {"webhook_id": webhook_id})
    async with delivery.new_client() as client:
        attempt = await delivery.send(
            client, webhook.url, webhook.secret, body_of([event]), settings=settings
        )
    # deleted while the ping was out: its attempt has no log to go to (404); else the row is
    # locked, and a DELETE from now on waits for this attempt's log
    await get_webhook(session, webhook_id, for_update=True)
    conn = await driver_connection(session)
    await delivery.log_attempt(
        conn, tenant_of(session), webhook_id, attempt, event_ids=[event["id"]], ping=True
    )
    rows = await list_deliveries(session, webhook_id, before=None, limit=1)
    return rows[0]


# --- events of other domains -------------------------------------------------------------------


async def record_event(conn, tenant_id: int, type_: EventType, data: Any) -> None:
    """Put an event in the outbox of every subscription of the tenant to `type_`, at the current
    place of the change log; in the caller's transaction (it is delivered once that commits)."""
    await conn.execute(
        f"""INSERT INTO webhook_outbox (tenant_id, subscription_id, event_id, type, after_seq, data)
            SELECT s.tenant_id, s.id, $2, $3, COALESCE(
                       (SELECT last_seq FROM product_change_seqs q WHERE {tenant_is("q")}), 0),
                   $4::jsonb
            FROM webhook_subscriptions s WHERE {tenant_is("s")} AND $3 = ANY(s.events)""",
        tenant_id,
        uuid.uuid4(),
        type_.value,
        orjson.dumps(data, option=orjson.OPT_UTC_Z).decode(),
    )


async def wants(conn, tenant_id: int, type_: EventType) -> bool:
    """Whether any subscription of the tenant takes `type_` (to skip costly event data)."""
    return bool(
        await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE {tenant_is('s')} "
            "AND $2 = ANY(s.events))",
            tenant_id,
            type_.value,
        )
    )


async def record_import_finished(conn, job_id: uuid.UUID) -> None:
    """`import.finished` for a job that has just become `done` or `failed`, in the transaction
    that finished it (the job's own row, by its id: its tenant comes with it)."""
    job = await conn.fetchrow(
        all_tenants(
            "SELECT tenant_id, id, status, filename, total_rows, processed_rows, created, updated, "
            "failed, error, finished_at FROM import_jobs WHERE id = $1"
        ),
        job_id,
    )
    if job is None or job["status"] not in ("done", "failed"):
        return
    data = {key: job[key] for key in job.keys() if key != "tenant_id"}
    data["import_job_id"] = str(data.pop("id"))
    await record_event(conn, job["tenant_id"], EventType.import_finished, data)


MEMBERSHIP_SKUS_PER_EVENT = 10_000


async def record_segment_computed(
    conn,
    clickhouse: ClickHouse,
    tenant_id: int,
    *,
    segment_id: int,
    previous: int | None,
    generation: int,
    count: int,
) -> None:
    """`segment.computed`, and `segment.membership_changed` with the SKUs that entered and left
    (from the previous ClickHouse generation to the new one, which both still exist), in the
    transaction that makes the new generation visible. A change of more than
    `MEMBERSHIP_SKUS_PER_EVENT` SKUs is split over several events (`part` of `parts`)."""
    base = {"segment_id": segment_id, "generation": generation, "previous_generation": previous}
    await record_event(conn, tenant_id, EventType.segment_computed, {**base, "count": count})
    if not await wants(conn, tenant_id, EventType.segment_membership_changed):
        return
    entered, left = await members.membership_diff(
        clickhouse,
        tenant_id=tenant_id,
        segment_id=segment_id,
        previous=previous,
        generation=generation,
    )
    if not entered and not left:
        return
    changes = [("entered", sku) for sku in entered] + [("left", sku) for sku in left]
    parts = -(-len(changes) // MEMBERSHIP_SKUS_PER_EVENT)
    for part in range(parts):
        chunk = changes[part * MEMBERSHIP_SKUS_PER_EVENT : (part + 1) * MEMBERSHIP_SKUS_PER_EVENT]
        await record_event(
            conn,
            tenant_id,
            EventType.segment_membership_changed,
            {
                **base,
                "entered": [sku for side, sku in chunk if side == "entered"],
                "left": [sku for side, sku in chunk if side == "left"],
                "part": part + 1,
                "parts": parts,
            },
        )
