"""All SQLAlchemy models, in one place. Tables are created by Alembic migrations."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdentityKey, TenantScoped, Timestamps, UpdatedAt


class RowVersion:
    """Mixin: `version` is the row's `xmin` (the transaction that wrote it last), the object's
    ETag (app/etags.py). Written by Postgres: read again (`session.refresh`) after a flush."""

    version: Mapped[int] = mapped_column(
        "xmin",
        BigInteger,
        system=True,
        server_default=FetchedValue(),
        server_onupdate=FetchedValue(),
    )


class Tenant(IdentityKey, Base):
    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiKey(IdentityKey, TenantScoped, Base):
    __tablename__ = "api_keys"

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProductSchema(RowVersion, TenantScoped, UpdatedAt, Base):
    __tablename__ = "product_schemas"

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    default_currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    default_locale: Mapped[str] = mapped_column(String(16), server_default="en-us")


class Category(IdentityKey, RowVersion, TenantScoped, Timestamps, Base):
    __tablename__ = "categories"
    __table_args__ = (Index("ix_categories_tenant_parent", "tenant_id", "parent_id"),)

    name: Mapped[str] = mapped_column(String(255))
    parent_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("categories.id", ondelete="RESTRICT")
    )
    labels: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # "Men > Shoes": materialised so that reads and the PIMS route need no recursion
    path: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, server_default="0")


class View(IdentityKey, RowVersion, TenantScoped, Timestamps, Base):
    __tablename__ = "views"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        Index(
            "uq_views_one_default", "tenant_id", unique=True, postgresql_where=text("is_default")
        ),
    )

    name: Mapped[str] = mapped_column(String(255))
    attributes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    is_default: Mapped[bool] = mapped_column(Boolean, server_default="false")


class Product(IdentityKey, RowVersion, TenantScoped, Timestamps, Base):
    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sku"),
        Index("ix_products_tenant_id_id", "tenant_id", "id"),
        Index("ix_products_tenant_updated", "tenant_id", "updated_at", "id"),
        Index(
            "ix_products_data",
            "tenant_id",
            "data",
            postgresql_using="gin",
            postgresql_ops={"data": "jsonb_path_ops"},
        ),
        Index(
            "ix_products_name_trgm",
            "tenant_id",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index("ix_products_categories", "tenant_id", "categories", postgresql_using="gin"),
        Index(
            "ix_products_variation_of",
            "tenant_id",
            "variation_of",
            postgresql_where=text("variation_of IS NOT NULL"),
        ),
        Index(
            "ix_products_tenant_live",
            "tenant_id",
            "id",
            postgresql_where=text("status <> 'deleted'"),
        ),
    )

    sku: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    categories: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    variation_of: Mapped[str | None] = mapped_column(Text)
    variation_attributes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class FacetCount(Base):
    """Exact facet counts per tenant, field and value; written only by the triggers of migration 0004."""

    __tablename__ = "facet_counts"
    __table_args__ = (Index("ix_facet_counts_top", "tenant_id", "field", text("n DESC"), "value"),)

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    field: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class ImportJob(TenantScoped, Base):
    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    filename: Mapped[str] = mapped_column(Text, server_default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    delimiter: Mapped[str | None] = mapped_column(String(4))
    quotechar: Mapped[str | None] = mapped_column(String(4))
    encoding: Mapped[str | None] = mapped_column(String(32))
    # how the worker reads the stored file: headers, escapechar, line break, per-column parse hints
    parse_options: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    suggested_schema: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    suggested_mapping: Mapped[dict[str, Any]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb")
    )
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    total_rows: Mapped[int | None] = mapped_column(BigInteger)
    processed_rows: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated: Mapped[int] = mapped_column(BigInteger, server_default="0")
    failed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # first 100 rejected rows; all of them are in import_row_errors
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    error: Mapped[str | None] = mapped_column(Text)
    # resume point: byte offset in the stored file after the last committed batch, and its row number
    resume_offset: Mapped[int] = mapped_column(BigInteger, server_default="0")
    resume_row: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImportChunk(Base):
    """The uploaded file, stored in Postgres so that a worker on another host can read it."""

    __tablename__ = "import_chunks"

    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ImportRowError(Base):
    __tablename__ = "import_row_errors"

    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    row: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sku: Mapped[str | None] = mapped_column(Text)
    cells: Mapped[list[str]] = mapped_column(JSONB)
    detail: Mapped[str] = mapped_column(Text)


class HeaderMapping(TenantScoped, UpdatedAt, Base):
    """A tenant's confirmed CSV header → field choices, preferred for the next upload."""

    __tablename__ = "header_mappings"

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    header_key: Mapped[str] = mapped_column(Text, primary_key=True)
    field: Mapped[str | None] = mapped_column(Text)


class Segment(IdentityKey, RowVersion, TenantScoped, Timestamps, Base):
    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_tenant_id_id", "tenant_id", "id"),)

    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, server_default="")
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), server_default="new")
    computed_count: Mapped[int | None] = mapped_column(BigInteger)
    last_computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    # membership rows in ClickHouse carry a generation; readers only see `current_generation`
    current_generation: Mapped[int | None] = mapped_column(BigInteger)
    generation_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")


class IdempotencyKey(TenantScoped, Base):
    """A POST's `Idempotency-Key` and, once its transaction committed, its answer (read and
    written in raw SQL by app/idempotency.py; the model documents the table)."""

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    credential: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    claim: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    method: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookSubscription(IdentityKey, TenantScoped, Timestamps, Base):
    """A webhook (migration h4_hooks_1); its outbox and delivery log are read with raw SQL."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index("ix_webhook_subscriptions_tenant_id", "tenant_id", "id"),)

    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    cursor_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cursor_epoch: Mapped[int] = mapped_column(Integer, server_default="0")
    failures: Mapped[int] = mapped_column(Integer, server_default="0")
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_error: Mapped[str | None] = mapped_column(Text)
