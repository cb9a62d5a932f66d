from fastapi import Request, status
from fastapi.responses import Response

from app.deps import AdminSession, ObjectId, SettingsDep
from app.errors import AUTH_ERRORS, BadRequest, error_responses
from app.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    after_id,
    decode_cursor,
    encode_cursor,
    id_page,
)
from app.routing import api_router, set_location
from app.webhooks import service
from app.webhooks.schemas import (
    URL_RULES,
    DeliveryOut,
    DeliveryPage,
    ReplayIn,
    ReplayOut,
    SecretOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPage,
    WebhookPatch,
)

router = api_router(prefix="/api/pim/webhooks", tags=["webhooks"], responses=AUTH_ERRORS)


@router.get("/", response_model=WebhookPage, responses=error_responses(400))
async def list_webhooks(session: AdminSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    """The tenant's webhooks by id, a page at a time (`next_cursor`, opaque). Secrets are never
    shown here."""
    page = await service.list_webhooks(session, after=after_id("webhooks", cursor), limit=limit + 1)
    return id_page("webhooks", page, limit)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=error_responses(400, 409),
    description="Subscribe a receiver to events. Delivery starts with the tenant's next change "
    "(use `replay` for earlier ones). The response is the only one that shows the signing "
    f"`secret`. At most {service.MAX_WEBHOOKS} webhooks per tenant (409 `webhook_limit_reached`). "
    + URL_RULES,
)
async def create_webhook(
    body: WebhookIn,
    session: AdminSession,
    settings: SettingsDep,
    request: Request,
    response: Response,
):
    webhook = await service.create_webhook(session, body=body, settings=settings)
    set_location(request, response, "get_webhook", webhook_id=webhook.id)
    return WebhookCreated.model_validate(
        {**WebhookOut.model_validate(webhook).model_dump(), "secret": webhook.secret}
    )


@router.get("/{webhook_id}/", response_model=WebhookOut, responses=error_responses(404))
async def get_webhook(webhook_id: ObjectId, session: AdminSession):
    """One webhook: its settings, its cursor (the last change log seq delivered) and its state
    (`active`, `disabled_reason`, consecutive `failures`, `next_attempt_at`)."""
    return await service.get_webhook(session, webhook_id)


@router.patch(
    "/{webhook_id}/",
    response_model=WebhookOut,
    responses=error_responses(400, 404),
    description="Partial update. `active: true` re-enables a disabled webhook; delivery goes on "
    "from its cursor. " + URL_RULES,
)
async def update_webhook(
    webhook_id: ObjectId, body: WebhookPatch, session: AdminSession, settings: SettingsDep
):
    return await service.update_webhook(session, webhook_id, body=body, settings=settings)


@router.delete(
    "/{webhook_id}/", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404)
)
async def delete_webhook(webhook_id: ObjectId, session: AdminSession) -> Response:
    """Delete the webhook, its pending events and its delivery log."""
    await service.delete_webhook(session, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret/", response_model=SecretOut, responses=error_responses(404)
)
async def rotate_secret(webhook_id: ObjectId, session: AdminSession):
    """A new signing secret, shown only in this response; the next attempt is signed with it."""
    return {"id": webhook_id, "secret": await service.rotate_secret(session, webhook_id)}


@router.get(
    "/{webhook_id}/deliveries/", response_model=DeliveryPage, responses=error_responses(400, 404)
)
async def list_deliveries(
    webhook_id: ObjectId,
    session: AdminSession,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
):
    """Every delivery attempt, newest first: `succeeded` (a 2xx), `status_code` (null: no
    answer), `latency_ms`, `error`, the first 1 KB of the answer, the event ids and the seq range
    of the change log entries it carried."""
    before = None
    if cursor is not None:
        before = decode_cursor("webhook-deliveries", cursor).get("id")
        if type(before) is not int or before < 1:
            raise BadRequest("cursor: not a cursor of this list", param="cursor")
    rows = await service.list_deliveries(session, webhook_id, before=before, limit=limit + 1)
    results = rows[:limit]
    return {
        "results": results,
        "next_cursor": encode_cursor("webhook-deliveries", {"id": results[-1]["id"]})
        if len(rows) > limit
        else None,
    }


@router.post(
    "/{webhook_id}/replay/",
    response_model=ReplayOut,
    responses=error_responses(400, 404, 410),
    description="Deliver again every event after change log seq `after` (exclusive): the "
    "webhook's cursor goes back to `after`, and its non-product events recorded at or after that "
    "place are delivered again too. Event ids are the same as the first time. `after` beyond the "
    "last seq is a 400; below the retention a 410 `changes_pruned`.",
)
async def replay(webhook_id: ObjectId, body: ReplayIn, session: AdminSession):
    return await service.replay(session, webhook_id, after=body.after)


@router.post(
    "/{webhook_id}/ping/",
    response_model=DeliveryOut,
    responses=error_responses(404),
    description="Deliver one `ping` event now, signed like every delivery, and answer with the "
    "attempt (also in the delivery log). A failed ping does not count against the webhook.",
)
async def ping(webhook_id: ObjectId, session: AdminSession, settings: SettingsDep):
    return await service.ping(session, webhook_id, settings=settings)


__all__ = ["router"]
