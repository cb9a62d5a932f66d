from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request, status
from fastapi.responses import Response
from pydantic import WithJsonSchema

from app import etags
from app.catalog import service as catalog
from app.catalog.fields import FieldDef
from app.db import TenantReader
from app.deps import (
    Arq,
    EditorSession,
    FilterReader,
    ObjectId,
    Reader,
    SearchReader,
    SettingsDep,
)
from app.errors import AUTH_ERRORS, BadRequest, error_responses
from app.middleware import current_request_id
from app.pagination import checked_page_size, neighbour_pages, relative_url
from app.products import service
from app.products.queries import SqlWhere
from app.products.rules import INT64_MAX, SKU_MAX
from app.products.schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    BulkIn,
    BulkResponse,
    Facets,
    FacetSearchIn,
    ProductIn,
    ProductOut,
    ProductPage,
    ProductPatch,
    ProductSearchIn,
    ProductSearchPage,
)
from app.products.tasks import note_writes_after_commit
from app.responses import json_bytes_response
from app.routing import api_router, set_location

router = api_router(prefix="/api/pim/products", tags=["products"], responses=AUTH_ERRORS)
facets_router = api_router(prefix="/api/pim/facets", tags=["products"], responses=AUTH_ERRORS)

FILTER_HELP = (
    "Any other query parameter filters on a data field: `<field>=<value>` is an exact match "
    "(for an `array` field: contains the value); `<field>__<op>=<value>` with op in "
    "`ne in gt gte lt lte contains icontains exists` (`in` takes comma-separated values; "
    "numbers and dates compare by the schema type; `ne` includes products without the field; "
    "`contains` is a case-sensitive substring, or for an `array` field an element equal to the value, "
    "`icontains` a substring in any case, of the value or of an element). `name=` and "
    "`variation_of=` are exact matches of those built-ins (`variation_of=<SKU>`: a parent's variations); "
    "other built-ins, except `sku`, `sku__in`, `status` and `category`, and reserved query names are not "
    "filters (400). A key "
    "that is a schema field's name is that field's exact filter, even when the name contains `__`; "
    "otherwise the operator is what follows the last `__`."
)

HEAVY_FILTERS = (
    " More than `PIM_HEAVY_READ_CONDITIONS_PER_TOKEN` (20) data-field filters make a heavy read "
    "(see `POST /api/product-segments/preview/`): `429` past the tenant's heavy-read bucket or "
    "concurrency cap, `503` past `PIM_HEAVY_READ_TIMEOUT_MS` (2000)."
)

# The dynamic filters in the OpenAPI document: an exploded object, so each key is its own query parameter
# and generated SDKs can pass them (`field_filters={"brand": "Nike", "price__gte": "100"}`).
FIELD_FILTERS = {
    "parameters": [
        {
            "name": "fieldFilters",
            "in": "query",
            "required": False,
            "style": "form",
            "explode": True,
            "description": "Data field filters, one query parameter each: `brand=Nike`, `price__gte=100`, "
            "`tags__in=a,b` (see the operation's description).",
            "schema": {"type": "object", "additionalProperties": {"type": "string"}},
            "example": {"brand": "Nike", "price__gte": "100"},
        }
    ]
}

Q = Annotated[
    str | None, Query(max_length=200, description="case-insensitive substring of the name")
]
# documented as the one ProductStatus enum; checked by the filter builder (a 400 naming it)
Status = Annotated[
    str | None,
    WithJsonSchema({"$ref": "#/components/schemas/ProductStatus"}),
    Query(description="active, inactive or deleted"),
]
CategoryParam = Annotated[
    int | None, Query(ge=1, le=INT64_MAX, description="category id: it or any descendant")
]
Sku = Annotated[str | None, Query(max_length=SKU_MAX, description="exact SKU")]
# The request head must fit in the HTTP server's 64 KiB (a longer one is refused before the app sees it),
# even when every character is percent-encoded UTF-8 (12 bytes for some).
SkuIn = Annotated[
    str | None,
    Query(
        alias="sku__in",
        max_length=4_000,
        description="comma-separated SKUs (at most 4,000 characters)",
    ),
]


@dataclass(frozen=True, slots=True)
class ListFilters:
    """A list's or the facets' reader, the tenant's fields and the WHERE clause of the query-string
    filters (built-ins and data fields). One dependency for the three: FastAPI walks the whole
    subtree of every dependency a route names, cached or not, so naming the reader beside it
    again would authenticate-and-check twice per request."""

    reader: TenantReader
    fields: dict[str, FieldDef]
    where: SqlWhere


async def _product_filters(
    request: Request,
    reader: FilterReader,
    q: Q = None,
    status: Status = None,
    category: CategoryParam = None,
    sku: Sku = None,
    sku_in: SkuIn = None,
) -> ListFilters:
    fields = await catalog.get_field_map(reader)
    where = await service.build_filters(
        reader,
        fields,
        list(request.query_params.multi_items()),
        q=q,
        status=status,
        category=category,
        sku=sku,
        sku_in=sku_in,
    )
    return ListFilters(reader, fields, where)


ProductFilters = Annotated[ListFilters, Depends(_product_filters)]


LIST_PAGING_HELP = (
    " Pages: `page` and `page_size` (or its alias `limit`), or `cursor`: every page carries "
    "`next_cursor` (null on the last page), and `?cursor=<it>` with the same filters and ordering "
    "returns the page after the last product of that page (keyset: no product is skipped or repeated "
    "when others are written meanwhile, and a deep page costs what the first does; a cursor sent with "
    "other filters or another ordering is a 400). A cursor page has `count` and `page` null. "
    "`updated_at__gte` / `updated_at__lt` (also `__gt`, `__lte`; ISO 8601 with a time zone) select "
    "products by their last write, for incremental reads."
)


def _cursor_of(page: service.ListPage, ordering: str | None, fingerprint: str) -> str | None:
    if page.next_keys is None:
        return None
    return service.encode_list_cursor(ordering, fingerprint, page.next_keys)


@router.get(
    "/",
    response_model=ProductPage,
    responses=error_responses(400),
    description=FILTER_HELP + HEAVY_FILTERS + LIST_PAGING_HELP,
    openapi_extra=FIELD_FILTERS,
)
async def list_products(
    request: Request,
    filters: ProductFilters,
    page: Annotated[int | None, Query(ge=1, le=10_000_000, description="1 by default")] = None,
    # no declared default: SDKs send a declared default on every call, beside a `limit`
    page_size: Annotated[
        int | None,
        checked_page_size(MAX_PAGE_SIZE, "50 by default, at most 200 (a larger value is a 400)"),
    ] = None,
    limit: Annotated[
        int | None, checked_page_size(MAX_PAGE_SIZE, "an alias of `page_size`")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(max_length=8192, description="`next_cursor` of the previous page; instead of `page`"),
    ] = None,
    ordering: Annotated[
        str | None, Query(max_length=200, description="e.g. `name`, `-updated_at`, `-price`")
    ] = None,
):
    if limit is not None:
        if page_size is not None and limit != page_size:
            raise BadRequest("limit is an alias of page_size: send one of them", param="limit")
        page_size = limit
    page_size = page_size or DEFAULT_PAGE_SIZE
    if page_size > MAX_PAGE_SIZE:
        raise BadRequest(f"page_size must be at most {MAX_PAGE_SIZE}", param="page_size")
    if cursor is not None and page is not None:
        raise BadRequest(
            "cursor and page exclude each other: a cursor page follows the cursor", param="page"
        )
    reader, fields, where = filters.reader, filters.fields, filters.where
    fingerprint = service.filters_fingerprint(
        "list", service.query_filters(list(request.query_params.multi_items()))
    )
    after = service.decode_list_cursor(cursor, ordering, fingerprint) if cursor else None
    number = page or 1
    listing = service.Listing(
        where, fields, ordering, page=number, page_size=page_size, after=after
    )
    result = await service.list_products(reader, listing, mirror=request.app.state.mirror)
    next_cursor = _cursor_of(result, ordering, fingerprint)
    if after is not None:
        next_url = relative_url(request, cursor=next_cursor) if next_cursor else None
        previous_url = None
    else:
        next_page, previous_page = neighbour_pages(number, page_size, result.total or 0)
        next_url = relative_url(request, page=next_page) if next_page else None
        previous_url = relative_url(request, page=previous_page) if previous_page else None
    body = {
        "count": result.total,
        "page": None if after is not None else number,
        "page_size": page_size,
        "next": next_url,
        "previous": previous_url,
        "next_cursor": next_cursor,
        "results": result.results,
    }
    return json_bytes_response(service.dumps(body))


SEARCH_HELP = (
    "The product list for a predicate in the segment DSL, so that filters can combine with `any` (OR) "
    'and `not`: `{"where": {"match": "any", "conditions": [{"field": "brand", "op": "eq", '
    '"value": "Nike"}, {"not": {"field": "price", "op": "gte", "value": 100}}]}, '
    '"ordering": "-price", "page": 1, "page_size": 50}`; `next_cursor` sent back as `cursor` with the '
    "same `where` and `ordering` continues after the page's last product (keyset). "
    "Fields, operators and values are those of "
    "segment definitions (a bad one is a 400 naming its place, `where: conditions[0].value: ...`); results, "
    "count and ordering are those of `GET /api/pim/products/`. A heavy read, as a segment preview: "
    "one token per `PIM_HEAVY_READ_CONDITIONS_PER_TOKEN` (20) conditions (at least one) from the "
    "tenant's heavy-read bucket, at most `PIM_HEAVY_READS_PER_TENANT` at once per API process "
    "(more are a `429` with `Retry-After`), cancelled after `PIM_HEAVY_READ_TIMEOUT_MS` (2000), "
    "a `503`."
)


@router.post(
    "/search/",
    response_model=ProductSearchPage,
    responses=error_responses(400),
    description=SEARCH_HELP,
)
async def search_products(body: ProductSearchIn, reader: SearchReader, request: Request):
    if body.page_size > MAX_PAGE_SIZE:
        raise BadRequest(f"page_size must be at most {MAX_PAGE_SIZE}", param="page_size")
    if body.cursor is not None and "page" in body.model_fields_set:
        raise BadRequest(
            "cursor and page exclude each other: a cursor page follows the cursor", param="page"
        )
    fields = await catalog.get_field_map(reader)
    where = await service.search_filters(reader, fields, body.where)
    fingerprint = service.filters_fingerprint("search", body.where)
    after = (
        service.decode_list_cursor(body.cursor, body.ordering, fingerprint) if body.cursor else None
    )
    listing = service.Listing(
        where, fields, body.ordering, page=body.page, page_size=body.page_size, after=after
    )
    result = await service.list_products(reader, listing, mirror=request.app.state.mirror)
    by_page = after is None
    next_page, previous_page = (
        neighbour_pages(body.page, body.page_size, result.total or 0) if by_page else (None, None)
    )
    body_out = {
        "count": result.total,
        "page": body.page if by_page else None,
        "page_size": body.page_size,
        "next": next_page,
        "previous": previous_page,
        "next_cursor": _cursor_of(result, body.ordering, fingerprint),
        "results": result.results,
    }
    return json_bytes_response(service.dumps(body_out))


@router.post("/", response_model=ProductOut, **etags.tagged_create(400, 409))
async def create_product(
    body: ProductIn, session: EditorSession, settings: SettingsDep, request: Request
):
    """Create a product. `data` is at most `PIM_MAX_PRODUCT_DATA_BYTES` (1 MiB by default) as JSON: larger is a 400."""
    product_id = await service.create_product(
        session, body, max_data_bytes=settings.max_product_data_bytes
    )
    product, version = await service.get_product_tagged(session, product_id)
    response = json_bytes_response(service.dumps(product), status_code=201)
    set_location(request, response, "get_product", product_id=product_id)
    return etags.tagged(response, version)


@router.post("/bulk/", response_model=BulkResponse, responses=error_responses(400))
async def bulk_upsert_products(
    body: BulkIn, session: EditorSession, settings: SettingsDep, arq: Arq
):
    """Upsert up to 10,000 products by SKU. Invalid items are reported in `errors`; the others are written.
    An item whose `data` (merged with the stored data, for an existing product) is larger than
    `PIM_MAX_PRODUCT_DATA_BYTES` (1 MiB by default) as JSON is such an error. `request_id` (also
    the X-Request-ID header) names this request's writes in the change log."""
    result = await service.bulk_upsert(
        session, body.products, max_data_bytes=settings.max_product_data_bytes
    )
    # planner statistics and typed indexes after large writes (the worker, after the commit);
    # items that changed nothing write nothing and cost no Redis round trip
    note_writes_after_commit(session, arq, settings, result.created + result.rewritten)
    return BulkResponse(**result.model_dump(), request_id=current_request_id())


@router.get("/{product_id}/", response_model=ProductOut, **etags.TAGGED_READ)
async def get_product(
    product_id: ObjectId, reader: Reader, if_none_match: etags.IfNoneMatch = None
):
    """The product with its built-ins and `data` (values in their field types).
    The product, with its `ETag` (`If-None-Match` with it: `304` while it is current)."""
    product, version = await service.get_product_tagged(reader, product_id)
    return etags.not_modified(if_none_match, version) or etags.tagged(
        json_bytes_response(service.dumps(product)), version
    )


@router.patch("/{product_id}/", response_model=ProductOut, **etags.tagged_write(400, 404, 409))
async def update_product(
    product_id: ObjectId,
    body: ProductPatch,
    session: EditorSession,
    settings: SettingsDep,
    if_match: etags.IfMatch,
):
    """Update built-ins and/or `data`; `data` is a merge patch (a key set to null is removed). Merged
    `data` larger than `PIM_MAX_PRODUCT_DATA_BYTES` (1 MiB by default) as JSON is a 400. With
    `If-Match`, only the version it names is updated (else `412`)."""
    await service.patch_product(
        session,
        product_id,
        body,
        max_data_bytes=settings.max_product_data_bytes,
        if_match=if_match,
    )
    product, version = await service.get_product_tagged(session, product_id)
    return etags.tagged(json_bytes_response(service.dumps(product)), version)


@router.delete(
    "/{product_id}/",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 412, 428),
)
async def delete_product(
    product_id: ObjectId, session: EditorSession, if_match: etags.IfMatch
) -> Response:
    """Delete the product (logged in the change log: `POST .../revert/` brings it back).
    Delete the product; with `If-Match`, only the version it names (else `412`)."""
    await service.delete_product(session, product_id, if_match=if_match)
    return Response(status_code=204)


@facets_router.get(
    "/",
    response_model=Facets,
    responses=error_responses(400),
    description=FILTER_HELP + HEAVY_FILTERS,
    openapi_extra=FIELD_FILTERS,
)
async def get_facets(filters: ProductFilters, request: Request):
    """Distinct values with exact counts over all matching products, for every string, enum and array field."""
    facets = await service.facets(
        filters.reader, filters.where, filters.fields, mirror=request.app.state.mirror
    )
    return json_bytes_response(service.dumps(facets))


@facets_router.post("/search/", response_model=Facets, responses=error_responses(400))
async def search_facets(body: FacetSearchIn, reader: SearchReader, request: Request):
    """Facets (as `GET /api/pim/facets/`) over the products a predicate in the segment DSL matches, so that
    facet filters can combine with `any` (OR) and `not`. A heavy read, as `POST
    /api/pim/products/search/`."""
    fields = await catalog.get_field_map(reader)
    where = await service.search_filters(reader, fields, body.where)
    return json_bytes_response(
        service.dumps(await service.facets(reader, where, fields, mirror=request.app.state.mirror))
    )
