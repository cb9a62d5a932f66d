"""Request and response models of webhooks."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import MISSING, BaseModel, ConfigDict, Field

from app.bodies import ClosedModel
from app.pagination import NextCursor
from app.products.rules import INT64_MAX
from app.query.models import Definition
from app.webhooks.events import EventType
from app.webhooks.urls import MAX_URL_LENGTH

EVENTS_HELP = (
    "`product.created`, `product.updated`, `product.deleted` (the change log's entries), "
    "`import.finished`, `segment.computed`, `segment.membership_changed`"
)
FILTER_HELP = (
    "A segment definition (the DSL of `/api/product-segments/`): only product events of "
    "matching products are delivered. It is evaluated at delivery against the product as it is "
    "then (a deleted product: as it was when deleted). Other events are not filtered."
)
# what the create and update routes say of `url` (and `filter`): the service checks them
URL_RULES = (
    "The `url` must be `http` or `https` (`https` outside dev) and resolve only to public "
    "addresses: loopback, private, link-local (cloud metadata), unspecified and other non-public "
    "IPv4 and IPv6 addresses, and `localhost`, are a 400 with code `webhook_url_refused` (checked "
    "again before every delivery; `PIM_WEBHOOK_ALLOW_PRIVATE=true` lifts it in dev and tests). "
    "A `filter` that does not fit the schema is a 400 naming the place."
)

_EXAMPLE: dict[str, Any] = {
    "url": "https://hooks.example.com/pim",
    "events": ["product.created", "product.updated", "product.deleted"],
    "filter": {"match": "all", "conditions": [{"field": "brand", "op": "eq", "value": "Nike"}]},
}


class WebhookIn(ClosedModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH, description="http(s) receiver")
    events: list[EventType] = Field(
        min_length=1, max_length=len(EventType), description=EVENTS_HELP
    )
    filter: Definition | None = Field(default=None, description=FILTER_HELP)
    active: bool = True


class WebhookPatch(ClosedModel):
    """A partial update: an absent field is unchanged; `filter: null` removes the filter; null for
    any other field is a 422 (docs/contract.md, "PATCH and null")."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"active": True}, {"filter": None}]})

    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)] | MISSING = MISSING
    events: Annotated[list[EventType], Field(min_length=1, max_length=len(EventType))] | MISSING = (
        MISSING
    )
    filter: Definition | MISSING | None = Field(
        default=MISSING, description=FILTER_HELP + " `null` removes it."
    )
    active: bool | MISSING = Field(
        default=MISSING,
        description="`true` re-enables a disabled webhook (its failure count starts again)",
    )


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    events: list[str]
    filter: dict[str, Any] | None
    active: bool
    disabled_reason: str | None = Field(description="why the webhook was disabled, if it was")
    cursor_seq: int = Field(description="the last change log seq delivered")
    failures: int = Field(description="consecutive failed attempts")
    failing_since: datetime | None
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret: shown only in this response")


class SecretOut(BaseModel):
    id: int
    secret: str = Field(description="the new signing secret: shown only in this response")


class WebhookPage(BaseModel):
    results: list[WebhookOut]
    next_cursor: NextCursor


class DeliveryOut(BaseModel):
    id: int
    attempted_at: datetime
    ping: bool
    succeeded: bool = Field(description="the receiver answered 2xx")
    status_code: int | None = Field(description="null: no HTTP answer (see `error`)")
    latency_ms: int
    error: str | None
    response_body: str | None = Field(description="the first 1 KB of the answer")
    event_ids: list[str]
    first_seq: int | None
    last_seq: int | None


class DeliveryPage(BaseModel):
    results: list[DeliveryOut]
    next_cursor: NextCursor


class ReplayIn(ClosedModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"after": 0}]})

    after: int = Field(ge=0, le=INT64_MAX, description="exclusive: events after this seq")


class ReplayOut(BaseModel):
    id: int
    cursor_seq: int
    outbox_requeued: int = Field(description="non-product events to be delivered again")
