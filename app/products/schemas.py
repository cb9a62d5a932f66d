"""Request and response models of products."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import MISSING, AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from app.bodies import ClosedModel
from app.products.rules import (
    INT64_MAX,
    MAX_CATEGORIES,
    MAX_VARIATION_ATTRIBUTES,
    NAME_MAX,
    SKU_MAX,
    ProductStatus,
    check_name,
    check_sku,
    check_variation_attributes,
    check_variation_of,
)
from app.query.models import Definition

MAX_BULK_ITEMS = 10_000
MAX_PAGE_SIZE = 200  # products per page of the list and the search
DEFAULT_PAGE_SIZE = 50
CategoryId = Annotated[int, Field(ge=1, le=INT64_MAX)]
# the length is checked once surrounding whitespace is removed, as the bulk upsert and the import do
Sku = Annotated[
    str,
    AfterValidator(check_sku),
    Field(json_schema_extra={"minLength": 1, "maxLength": SKU_MAX}),
]
Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX), AfterValidator(check_name)]
ParentSku = Annotated[str, Field(max_length=SKU_MAX), AfterValidator(check_variation_of)]
VariationAttributes = Annotated[
    list[str],
    Field(max_length=MAX_VARIATION_ATTRIBUTES),
    AfterValidator(check_variation_attributes),
]


class ProductIn(ClosedModel):
    """A new product: its SKU and name, built-ins, and `data` (values of the schema's fields, coerced to their types)."""

    sku: Sku = Field(description="unique per tenant; surrounding whitespace is removed")
    name: Name
    status: ProductStatus = ProductStatus.active
    categories: list[CategoryId] = Field(
        default_factory=list, description="category ids", max_length=MAX_CATEGORIES
    )
    variation_of: ParentSku | None = Field(default=None, description="the parent's SKU")
    variation_attributes: VariationAttributes = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)


class ProductPatch(ClosedModel):
    """A partial update (docs/contract.md, "PATCH and null"): an absent field is unchanged; null
    clears `variation_of` (the only nullable field) and is a 422 for any other field (`categories:
    []` empties the categories; `data` keys set to null are removed)."""

    name: Name | MISSING = MISSING
    status: ProductStatus | MISSING = MISSING
    categories: Annotated[list[CategoryId], Field(max_length=MAX_CATEGORIES)] | MISSING = MISSING
    variation_of: ParentSku | MISSING | None = Field(
        default=MISSING, description="the parent's SKU; null: no longer a variation"
    )
    variation_attributes: VariationAttributes | MISSING = MISSING
    data: dict[str, Any] | MISSING = Field(
        default=MISSING,
        description="JSON merge patch (RFC 7396): objects merge at every depth, a key set to null is removed",
    )


class ProductOut(BaseModel):
    id: int
    sku: str
    name: str
    status: ProductStatus
    categories: list[int]
    variation_of: str | None
    variation_attributes: list[str]
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime


NEXT_CURSOR_HELP = (
    "continues the list after this page's last product, in the same ordering and filters (send "
    "them with it): opaque, stable under concurrent writes (keyset); null on the last page"
)


class ProductPage(BaseModel):
    count: int | None = Field(description="matching products; null on a cursor page")
    page: int | None = Field(description="the page number; null on a cursor page")
    page_size: int
    next: str | None = Field(
        description="the next page as a relative URL (path and query); null on the last page"
    )
    previous: str | None = Field(
        description="the previous page as a relative URL; null on the first page and on a cursor page"
    )
    next_cursor: str | None = Field(description=NEXT_CURSOR_HELP)
    results: list[ProductOut]


class BulkItem(BaseModel):
    """A product to create or update by SKU: the built-ins, and every other key a `data` field."""

    model_config = ConfigDict(extra="allow")

    sku: Sku = Field(
        description="the product to create or update; surrounding whitespace is removed"
    )
    name: Name | None = Field(default=None, description="required to create a product")
    status: ProductStatus | None = None
    categories: list[CategoryId] | None = Field(
        default=None, description="category ids (replace the product's)", max_length=MAX_CATEGORIES
    )
    variation_of: ParentSku | None = Field(default=None, description="the parent's SKU")
    variation_attributes: VariationAttributes | None = None


# Documented as BulkItem (a component the OpenAPI document adds: `app.openapi_examples`), but not
# validated as one here: the upsert checks every item with the product rules and reports a bad one
# as that item's error (the others are still written), and copying 10,000 dicts through pydantic
# cost ~7% of a bulk request's CPU.
BulkItemIn = Annotated[Any, WithJsonSchema({"$ref": "#/components/schemas/BulkItem"})]


class BulkIn(BaseModel):
    """Up to 10,000 products to create or update by SKU."""

    products: list[BulkItemIn] = Field(
        max_length=MAX_BULK_ITEMS,
        description="Items with `sku` (required), optional `name`, `status`, `categories`, `variation_of`, "
        "`variation_attributes`; every other key goes to `data`, merged into an existing product's data key by "
        "key (a key set to null is removed; a value replaces the stored one whole). `id`, `created_at` and "
        "`updated_at` are ignored, so products as read can be sent back.",
    )


class BulkError(BaseModel):
    index: int
    sku: str | None
    detail: str


class BulkResult(BaseModel):
    created: int = 0
    updated: int = 0  # rewritten or unchanged
    failed: int = 0
    errors: list[BulkError] = Field(default_factory=list)
    # existing products whose stored values changed (not part of the answer): what planner
    # statistics and the upkeep job count
    rewritten: int = Field(default=0, exclude=True)


class BulkResponse(BulkResult):
    request_id: str | None = Field(
        description="this request's X-Request-ID: undo it with "
        "POST /api/pim/products/bulk/{request_id}/revert/"
    )


class FacetValue(BaseModel):
    value: str
    count: int


class Facets(BaseModel):
    total: int
    facets: dict[str, list[FacetValue]]


SEARCH_WHERE_HELP = (
    'Which products, in the predicate DSL of segment definitions: groups `{"match": "all"|"any", '
    '"conditions": [...]}`, negations `{"not": node}` and conditions `{"field", "op", "value"}` '
    "(at most 8 nested levels and 200 conditions). Absent: every product."
)


def _every_product() -> Any:
    """The raw definition (parsed like a client's, see SkipValidation) that matches everything."""
    return {"match": "all", "conditions": []}


class FacetSearchIn(ClosedModel):
    """Facets over the products a predicate matches."""

    where: Definition = Field(default_factory=_every_product, description=SEARCH_WHERE_HELP)


class ProductSearchIn(FacetSearchIn):
    """A page of the products a predicate matches."""

    ordering: str | None = Field(
        default=None,
        max_length=200,
        description="as the list's `ordering`: e.g. `name`, `-updated_at`, `-price`",
    )
    page: int = Field(default=1, ge=1, le=10_000_000)
    page_size: int = Field(
        default=50,
        ge=1,
        # declared, but checked by the route: a larger value is a 400 naming the maximum
        json_schema_extra={"maximum": MAX_PAGE_SIZE},
        description="at most 200 (a larger value is a 400)",
    )
    cursor: str | None = Field(
        default=None,
        max_length=8192,
        description="`next_cursor` of the previous page, sent with the same `where` and `ordering`; "
        "instead of `page`",
    )


class ProductSearchPage(BaseModel):
    """The product list's page; `next` and `previous` are page numbers to send back in the body
    (null at either end), since a search is a POST and has no URL of its own."""

    count: int | None = Field(description="matching products; null on a cursor page")
    page: int | None = Field(description="the page number; null on a cursor page")
    page_size: int
    next: int | None = Field(
        description="the next page number; null on the last and on a cursor page"
    )
    previous: int | None
    next_cursor: str | None = Field(description=NEXT_CURSOR_HELP)
    results: list[ProductOut]
