"""Request and response models of the CSV import."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.catalog.fields import FieldDef, FieldType, check_schema_fields
from app.catalog.schemas import LOCALE_PATTERN


class ImportStatus(StrEnum):
    pending = "pending"
    mapping = "mapping"
    importing = "importing"
    done = "done"
    failed = "failed"


class ImportColumn(BaseModel):
    header: str = Field(description="the CSV header (made unique: a repeated header gets ' (2)', an empty one 'Column N')")
    samples: list[str] = Field(description="up to 5 distinct values from the start of the file")
    inferred_type: FieldType = Field(
        description="the type the sampled values support without changing any of them: identifiers (leading zeros, "
        "letter+digit codes, `1E7`, headers such as EAN, ZIP, version) stay `string`; `integer` only when no value has "
        "a fractional part; `enum` only when the start, middle and end of the file show the same few values"
    )
    suggested_field: str | None = Field(description="`sku`, `name`, `status`, `categories`, `variation_of`, a field, or null (skip)")
    confidence: float = Field(
        ge=0,
        le=1,
        description="how sure the suggestion is, 0..1 (1: confirmed before by this tenant); below 0.6 when the "
        "evidence is thin (few values) or mixed (values the type rejects)",
    )
    reason: str = Field(
        default="",
        description="why: the rule, format or synonym that chose the target, then the reason for the type "
        "(e.g. \"the header is 'preis', a name of the field 'price'; the field's type is number\")",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="what would go wrong with this suggestion, e.g. \"2 of 1,000 sampled values are not numbers under "
        "decimal ',' (e.g. 'teuer'): those rows would be rejected\"",
    )


class ImportRowErrorOut(BaseModel):
    row: int = Field(description="record number in the file; the header is row 1")
    sku: str | None
    detail: str


class ImportJobOut(BaseModel):
    job_id: uuid.UUID
    status: ImportStatus
    filename: str
    size_bytes: int
    delimiter: str | None
    encoding: str | None = Field(description="detected encoding, e.g. utf-8, utf-8-sig (with BOM), cp1252, utf-16")
    format: Literal["shopify", "woocommerce", "akeneo", "google_merchant_center"] | None = Field(
        default=None,
        description="the known export format recognised from the headers (its column rules shaped the suggestion: "
        "e.g. Shopify's `Variant SKU` is the SKU, WooCommerce's `ID` is not; Akeneo's `name-en_US` is the name in the "
        "tenant's default locale), or null",
    )
    columns: list[ImportColumn]
    suggested_schema: list[FieldDef] = Field(description="the current schema plus a field for every new column")
    suggested_mapping: dict[str, str | None]
    mapping: dict[str, str | None] | None = Field(description="the confirmed mapping")
    total_rows: int | None = Field(description="data rows: estimated from the sample until the import is done, then exact")
    processed_rows: int
    created: int
    updated: int
    failed: int
    errors: list[ImportRowErrorOut] = Field(description="the first 100 rejected rows; all of them: GET .../errors/")
    error: str | None = Field(description="why the job failed")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mapping: dict[str, str | None] = Field(
        max_length=1000,
        description="CSV header → `sku`, `name`, `status`, `categories`, `variation_of`, a field of `schema`, "
        "or null to skip the column. Columns left out are skipped. Exactly one column must map to `sku`.",
    )
    schema_fields: list[FieldDef] | None = Field(
        default=None,
        alias="schema",
        description="the schema to save before importing (usually `suggested_schema`, edited); omitted: the current one",
    )
    default_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    default_locale: str | None = Field(default=None, pattern=LOCALE_PATTERN)

    @field_validator("schema_fields")
    @classmethod
    def _check_fields(cls, fields: list[FieldDef] | None) -> list[FieldDef] | None:
        return None if fields is None else check_schema_fields(fields)
