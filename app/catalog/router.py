from typing import Annotated, Literal

from fastapi import Query, Request, Response, status
from pydantic import Field

from app import etags
from app.catalog import service
from app.catalog.schemas import (
    CategoryIn,
    CategoryOut,
    CategoryPage,
    CategoryPatch,
    SchemaIn,
    SchemaOut,
    ViewIn,
    ViewOut,
    ViewPage,
    ViewPatch,
)
from app.deps import Arq, EditorSession, ObjectId, ViewerSession
from app.errors import AUTH_ERRORS, error_responses
from app.models import ProductSchema
from app.pagination import DEFAULT_LIMIT, Cursor, Limit, after_id, id_page
from app.products.rules import INT64_MAX
from app.products.tasks import sync_typed_indexes_after_commit
from app.routing import api_router, created

schema_router = api_router(prefix="/api/pim/schema", tags=["schema"], responses=AUTH_ERRORS)
categories_router = api_router(
    prefix="/api/pim/categories", tags=["categories"], responses=AUTH_ERRORS
)
views_router = api_router(prefix="/api/pim/views", tags=["views"], responses=AUTH_ERRORS)


def _version(row: ProductSchema | None) -> int | None:
    return row.version if row is not None else None


@schema_router.get(
    "/", response_model=SchemaOut, responses=etags.NOT_MODIFIED, openapi_extra=etags.TAGGED
)
async def get_product_schema(session: ViewerSession, conditional: etags.ConditionalGet):
    """The tenant's fields, default currency and locale (a fresh tenant has no fields), with the
    schema's `ETag` (`If-None-Match` with it: `304` while it is current)."""
    row = await service.get_schema_row(session)
    return conditional.answer(_version(row), service.schema_out(row))


@schema_router.put("/", response_model=SchemaOut, **etags.tagged_write(400))
async def replace_product_schema(
    body: SchemaIn, session: EditorSession, conditional: etags.ConditionalWrite, arq: Arq
):
    """Replace the field list. Product data is kept as it is: values of removed or retyped fields stay in `data`.
    With `If-Match`, only the version it names is replaced (`412` otherwise; a tenant that never
    wrote its schema has the version `"0"`).

    The body of `GET` can be sent back as it is: the read-only `updated_at` is ignored. A field that
    breaks a rule (reserved name, `validation` RE2 cannot compile or that its type does not apply,
    `unique` array, empty enum option) is a `422` naming it.

    Number, date and datetime fields of a large tenant get typed indexes shortly after (built by
    the worker, without blocking writes): range filters and orderings on them then read an index."""
    row = await service.put_schema(session, body, if_match=conditional.if_match)
    sync_typed_indexes_after_commit(session, arq)
    return conditional.answer(row.version, service.schema_out(row))


# `?parent_id=0` and `?parent_id=null` both mean "no parent": the root categories
ParentFilter = Annotated[int, Field(ge=0, le=INT64_MAX)] | Literal["null"]


@categories_router.get("/", response_model=CategoryPage, responses=error_responses(400))
async def list_categories(
    session: ViewerSession,
    parent_id: Annotated[
        ParentFilter | None,
        Query(
            description="only the children of this category; `0` or `null`: only the root categories"
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=service.CATEGORY_PAGE_MAX, description="categories per page")
    ] = service.CATEGORY_PAGE_DEFAULT,
    cursor: Annotated[
        str | None,
        Query(max_length=8192, description="`next_cursor` of the previous page, as it was"),
    ] = None,
):
    """Categories in tree order, a page at a time: each category right before its subtree,
    siblings ordered by `position`, then `name`, then `id`. With `parent_id`, only those children
    (or roots), in the same order. `next_cursor` (opaque) fetches the next page and is `null` on the
    last one; a page starts right after the last category of the previous one in that order, so
    categories created or deleted meanwhile do not shift the pages."""
    if parent_id == 0 or parent_id == "null":
        return await service.list_categories(session, roots_only=True, limit=limit, cursor=cursor)
    assert not isinstance(parent_id, str)
    return await service.list_categories(session, parent_id=parent_id, limit=limit, cursor=cursor)


@categories_router.post("/", response_model=CategoryOut, **etags.tagged_create(400))
async def create_category(
    body: CategoryIn, session: EditorSession, request: Request, response: Response
):
    """Create a category; its `path` is its parent's path and its name joined by " > "."""
    category = await service.create_category(session, body)
    return created(request, response, category, "get_category", category_id=category.id)


@categories_router.get("/{category_id}/", response_model=CategoryOut, **etags.TAGGED_READ)
async def get_category(
    category_id: ObjectId, session: ViewerSession, conditional: etags.ConditionalGet
):
    """The category with its path (`Men > Shoes`) and labels, and its `ETag` (`If-None-Match`
    with it: `304` while it is current)."""
    category = await service.get_category(session, category_id)
    return conditional.answer(category.version, category)


@categories_router.patch(
    "/{category_id}/", response_model=CategoryOut, **etags.tagged_write(400, 404)
)
async def update_category(
    category_id: ObjectId,
    body: CategoryPatch,
    session: EditorSession,
    conditional: etags.ConditionalWrite,
):
    """Rename or move a category (`parent_id: null` makes it a root) and rewrite its descendants' paths.
    With `If-Match`, only the version it names is changed (else `412`)."""
    category = await service.patch_category(
        session, category_id, body, if_match=conditional.if_match
    )
    return conditional.answer(category.version, category)


@categories_router.delete(
    "/{category_id}/",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 409, 412, 428),
)
async def delete_category(
    category_id: ObjectId, session: EditorSession, if_match: etags.IfMatch
) -> None:
    """Delete a leaf category and remove it from its products; `409` while it has children. With
    `If-Match`, only the version it names (else `412`)."""
    await service.delete_category(session, category_id, if_match=if_match)


@views_router.get("/", response_model=ViewPage, responses=error_responses(400))
async def list_views(session: ViewerSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    """Views by id, a page at a time: `next_cursor` (opaque) fetches the next page and is `null`
    on the last one; a page starts after the last view of the previous one (keyset)."""
    after = after_id("views", cursor)
    return id_page("views", await service.list_views(session, after=after, limit=limit + 1), limit)


@views_router.post("/", response_model=ViewOut, **etags.tagged_create(409))
async def create_view(body: ViewIn, session: EditorSession, request: Request, response: Response):
    """Create a view; `is_default: true` makes it the only default view."""
    view = await service.create_view(session, body)
    return created(request, response, view, "get_view", view_id=view.id)


@views_router.get("/{view_id}/", response_model=ViewOut, **etags.TAGGED_READ)
async def get_view(view_id: ObjectId, session: ViewerSession, conditional: etags.ConditionalGet):
    """The view with its attribute list, and its `ETag` (`If-None-Match` with it: `304` while it
    is current)."""
    view = await service.get_view(session, view_id)
    return conditional.answer(view.version, view)


@views_router.patch("/{view_id}/", response_model=ViewOut, **etags.tagged_write(404, 409))
async def update_view(
    view_id: ObjectId, body: ViewPatch, session: EditorSession, conditional: etags.ConditionalWrite
):
    """Partial update; `attributes` replaces the list. `is_default: true` makes it the tenant's
    default view (the one before stops being it). With `If-Match`, only the version it names
    (else `412`)."""
    view = await service.patch_view(session, view_id, body, if_match=conditional.if_match)
    return conditional.answer(view.version, view)


@views_router.delete(
    "/{view_id}/", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 412, 428)
)
async def delete_view(view_id: ObjectId, session: EditorSession, if_match: etags.IfMatch) -> None:
    """Delete the view (the PIMS routes then fall back to the default view, or every attribute).
    Delete a view; with `If-Match`, only the version it names (else `412`)."""
    await service.delete_view(session, view_id, if_match=if_match)
