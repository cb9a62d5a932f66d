"""Request and response models of the CSV import."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.bodies import ClosedModel
from app.catalog.fields import FieldDef, FieldType, check_schema_fields
from app.catalog.schemas import LOCALE_PATTERN
from app.imports.conventions import ConventionsModel
from app.imports.formats import ExportFormat
from app.pagination import NextCursor


class ImportStatus(StrEnum):
    pending = "pending"
    mapping = "mapping"
    importing = "importing"
    done = "done"
    failed = "failed"


class ImportColumn(BaseModel):
    header: str = Field(
        description="the CSV header (made unique: a repeated header gets ' (2)', an empty one 'Column N')"
    )
    samples: list[str] = Field(description="up to 5 distinct values from the start of the file")
    inferred_type: FieldType = Field(
        description="the type the sampled values support without changing any of them: identifiers (leading zeros, "
        "letter+digit codes, `1E7`, headers such as EAN, ZIP, version) stay `string`; `integer` only when no value has "
        "a fractional part; `enum` only when the start, middle and end of the file show the same few values"
    )
    suggested_field: str | None = Field(
        description="`sku`, `name`, `status`, `categories`, `variation_of`, a field, or null (skip)"
    )
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
        description='what would go wrong with this suggestion, e.g. "2 of 1,000 sampled values are not numbers under '
        "decimal ',' (e.g. 'teuer'): those rows would be rejected\"",
    )


class ImportRowErrorOut(BaseModel):
    row: int = Field(description="record number in the file; the header is row 1")
    sku: str | None
    detail: str


class ConventionsOut(ConventionsModel):
    """The file's conventions: detected from the sample (all columns together) at upload, then as the
    last confirmation (or dry run) set them. The import reads every cell under them."""

    model_config = ConfigDict(extra="ignore")


class DryRunRow(BaseModel):
    row: int = Field(description="record number in the file; the header is row 1")
    sku: str
    values: dict[str, Any] = Field(
        description="what the row would store: name, status, variation_of and field values"
    )
    categories: list[str] | None = Field(
        description="the category paths the row would set (created if new); null: none"
    )


class DryRunOut(BaseModel):
    rows: int = Field(description="data rows read (blank lines are not counted)")
    create: int = Field(description="products the import would create")
    update: int = Field(
        description="rows that would update a product (existing, or created by an earlier row of the file)"
    )
    reject: int = Field(description="rows that would be rejected")
    errors: list[ImportRowErrorOut] = Field(
        description="the first 100 rows that would be rejected, in file order"
    )
    preview: list[DryRunRow] = Field(description="the converted values of the first 20 valid rows")
    conventions: ConventionsOut = Field(
        description="the conventions the dry run read the file with"
    )


class ImportJobOut(BaseModel):
    job_id: uuid.UUID
    status: ImportStatus
    filename: str
    size_bytes: int
    delimiter: str | None
    encoding: str | None = Field(
        description="detected encoding, e.g. utf-8, utf-8-sig (with BOM), cp1252, utf-16"
    )
    format: ExportFormat | None = Field(
        default=None,
        description="the known export format recognised from the headers (its column rules shaped the suggestion: "
        "e.g. Shopify's `Variant SKU` is the SKU, WooCommerce's `ID` is not; Akeneo's `name-en_US` is the name in the "
        "tenant's default locale), or null",
    )
    conventions: ConventionsOut | None = Field(
        description="how the file spells values (decimal and thousands separators, date order, list and category "
        "separators, true/false words, time zone of naive datetimes, encoding, delimiter); override in confirm"
    )
    columns: list[ImportColumn]
    suggested_schema: list[FieldDef] = Field(
        description="the current schema plus a field for every new column"
    )
    suggested_mapping: dict[str, str | None]
    suggested_value_mapping: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="per header that the suggestion maps to `status`: the words of other systems it reads as a "
        'status (e.g. Shopify\'s `{"draft": "inactive", "archived": "inactive"}`). Applied at confirm to a column '
        "that still maps to `status`; the confirm body's `value_mapping` wins word by word. Other words that are "
        "no status reject their row.",
    )
    mapping: dict[str, str | None] | None = Field(description="the confirmed mapping")
    total_rows: int | None = Field(
        description="data rows: estimated from the sample until the import is done, then exact"
    )
    processed_rows: int
    created: int
    updated: int
    failed: int
    errors: list[ImportRowErrorOut] = Field(
        description="the first 100 rejected rows; all of them: GET .../errors/"
    )
    error: str | None = Field(description="why the job failed")
    dry_run: DryRunOut | None = Field(
        description="the result of the last `confirm` with `dry_run: true` (null: none yet or the job was confirmed since)"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportJobSummary(BaseModel):
    """A job in the list: its state and counters (the suggestion and rejected rows: GET the job)."""

    job_id: uuid.UUID
    status: ImportStatus
    filename: str
    size_bytes: int
    format: ExportFormat | None
    total_rows: int | None
    processed_rows: int
    created: int
    updated: int
    failed: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportJobPage(BaseModel):
    results: list[ImportJobSummary]
    next_cursor: NextCursor


class ConfirmIn(ClosedModel):
    """The confirmed mapping, schema, conventions and value mapping of an import (each omitted: the suggestion or the current one), or a dry run."""

    model_config = ConfigDict(populate_by_name=True)

    mapping: dict[str, str | None] | None = Field(
        default=None,
        max_length=1000,
        description="CSV header → `sku`, `name`, `status`, `categories`, `variation_of`, a field of `schema`, "
        "or null to skip the column. Columns left out are skipped. Exactly one column must map to `sku`. "
        "Omitted: the suggested mapping (and, if `schema` is omitted too, the suggested schema).",
    )
    schema_fields: list[FieldDef] | None = Field(
        default=None,
        alias="schema",
        description="the schema to save before importing (usually `suggested_schema`, edited); omitted: the current one",
    )
    conventions: ConventionsModel | None = Field(
        default=None,
        description="overrides of the job's `conventions` (any subset; the others stay). They are kept on the job, "
        "also by a dry run. A cell that does not read under them rejects its row; it is never reinterpreted.",
    )
    encoding: str | None = Field(
        default=None,
        max_length=20,
        description="override of the detected encoding (same as `conventions.encoding`): the stored file is decoded "
        "again, and the job's headers, columns and suggestion are redone from it",
    )
    delimiter: str | None = Field(
        default=None,
        max_length=2,
        description="override of the detected delimiter (same as `conventions.delimiter`): the stored file is split "
        "again, and the job's headers, columns and suggestion are redone from it",
    )
    value_mapping: (
        dict[str, Annotated[dict[str, str | bool | None], Field(max_length=10_000)]] | None
    ) = Field(
        default=None,
        max_length=1000,
        description="per CSV header whose target is `status`, an `enum` field or a `boolean` field: cell text → the "
        "value to use, applied before the cell is read (exact text first, then ignoring case), e.g. "
        '`{"Status": {"draft": "inactive", "-1": "inactive"}}`. A value must be valid for the target '
        "(a status, an option of the enum, a boolean or a true/false word); null leaves the value unset.",
    )
    dry_run: bool = Field(
        default=False,
        description="true: read the whole file through the mapping, schema, conventions and value mapping without "
        "writing anything (nor saving the schema or the mapping): the answer's `dry_run` has the counts of rows to "
        "create, update and reject, the first 100 errors and the converted values of the first 20 rows. The job "
        "stays in `mapping` (its conventions and any re-read of the file with a new encoding or delimiter are kept).",
    )
    default_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    default_locale: str | None = Field(default=None, pattern=LOCALE_PATTERN)

    @field_validator("schema_fields")
    @classmethod
    def _check_fields(cls, fields: list[FieldDef] | None) -> list[FieldDef] | None:
        return None if fields is None else check_schema_fields(fields)
