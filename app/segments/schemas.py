"""Request and response models of product segments.

The `definition` is documented with the DSL's models but validated by `dsl.parse_definition`
and `dsl.compile_definition` (SkipValidation here), so that a bad definition is a `400` whose
message names the place (`conditions[1].conditions[0].value: ...`) rather than a `422`.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from app.pagination import NextCursor
from app.products.schemas import ProductOut
from app.query.models import Definition, Node


class SegmentStatus(StrEnum):
    new = "new"
    queued = "queued"
    computing = "computing"
    ready = "ready"
    failed = "failed"


class SegmentIn(BaseModel):
    """A new segment: its name, description and definition (a predicate in the segment DSL)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=10_000)
    definition: Definition


class SegmentPatch(BaseModel):
    """The segment's attributes to change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    definition: Definition | None = Field(
        default=None, description="replaces the definition; memberships change at the next compute"
    )


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    definition: Node = Field(
        description="the definition as stored (normalised): the same models a request sends, so "
        "it can be sent back"
    )
    status: SegmentStatus
    computed_count: int | None = Field(description="members at the last successful compute")
    last_computed_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class Preview(BaseModel):
    count: int = Field(description="matching products now")
    skus: list[str] = Field(description="the first 100 matching SKUs, by product id")
    sql: str = Field(description="the compiled query with its values inlined, for reading only")


class ComputeQueued(BaseModel):
    status: SegmentStatus = SegmentStatus.queued
    segment_id: int


class MembersPage(BaseModel):
    count: int = Field(description="members at the last compute")
    results: list[ProductOut]
    next_cursor: NextCursor


class SegmentPage(BaseModel):
    results: list[SegmentOut]
    next_cursor: NextCursor
