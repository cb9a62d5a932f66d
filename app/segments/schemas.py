"""Request and response models of product segments.

The `definition` is documented with the DSL's models but validated by `dsl.parse_definition`
and `dsl.compile_definition` (SkipValidation here), so that a bad definition is a `400` whose
message names the place (`conditions[1].conditions[0].value: ...`) rather than a `422`.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import MISSING, BaseModel, ConfigDict, Field, field_validator

from app.bodies import ClosedModel
from app.pagination import NextCursor
from app.products.schemas import ProductOut
from app.query.models import Definition, Node


class SegmentStatus(StrEnum):
    new = "new"
    queued = "queued"
    computing = "computing"
    ready = "ready"
    failed = "failed"


class SegmentIn(ClosedModel):
    """A new segment: its name, description and definition (a predicate in the segment DSL)."""

    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=10_000)
    definition: Definition


class SegmentPatch(ClosedModel):
    """A partial update: an absent field is unchanged; no field is nullable (null is a 422)."""

    name: Annotated[str, Field(min_length=1, max_length=255)] | MISSING = MISSING
    description: Annotated[str, Field(max_length=10_000)] | MISSING = MISSING
    definition: Definition | MISSING = Field(
        default=MISSING,
        description="replaces the definition; memberships change at the next compute",
    )

    @field_validator("definition", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # `Definition` skips validation (its checks name the place in a 400): its null is refused
        # here, as the type of every other non-nullable field refuses it
        if value is None:
            raise ValueError("Input should be a definition, not null")
        return value


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
