from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field


class FieldChange(BaseModel):
    """One field's value before and after a write."""

    old: Any = Field(description="the value before the write; null: the field was absent")
    new: Any = Field(description="the value after the write; null: the field is absent")


class Actor(BaseModel):
    """Who wrote: the request's credential, or the import job that wrote the row."""

    type: Literal["api_key", "token", "import"]
    id: int | str = Field(description="the API key's id, the JWT's `sub`, or the import job's id")
    name: str | None = Field(description="the API key's name")


class ChangeOp(StrEnum):
    """What a write did to a product (one component for the entry and the list's filter)."""

    created = "created"
    updated = "updated"
    deleted = "deleted"


class ChangeEntry(BaseModel):
    """One write to one product, as the change log keeps it."""

    seq: int = Field(description="per tenant, increasing in commit order")
    product_id: int
    sku: str
    op: ChangeOp
    changes: dict[str, FieldChange] = Field(
        description="built-ins (`name`, `status`, `categories`, `variation_of`, "
        "`variation_attributes`) and data fields under their own names"
    )
    actor: Actor | None
    request_id: str | None = Field(description="the writing request's X-Request-ID")
    import_job_id: UUID | None
    at: datetime


class ChangesPage(BaseModel):
    results: list[ChangeEntry]
    next_after: int = Field(description="pass as `after` for the next page")


class HistoryPage(BaseModel):
    results: list[ChangeEntry]
    next_cursor: str | None = Field(description="pass as `cursor` for older entries; null: none")


class RevertIn(BaseModel):
    """The change entry whose state the product gets back."""

    seq: int = Field(ge=1, le=2**63 - 1, description="one of the product's change entries")


class SkippedField(BaseModel):
    sku: str
    field: str
    reason: str


class RevertOut(BaseModel):
    reverted: int = Field(description="products changed back")
    skipped: list[SkippedField] = Field(
        description="fields left as they are because a later write changed them"
    )
