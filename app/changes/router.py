from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query

from app.changes import service
from app.changes.schemas import ChangeOp, ChangesPage, HistoryPage, RevertIn, RevertOut
from app.deps import EditorSession, ObjectId, Reader
from app.errors import AUTH_ERRORS, BadRequest, error_responses
from app.etags import TAGGED, tagged
from app.products.rules import INT64_MAX
from app.products.schemas import ProductOut
from app.products.service import dumps, get_product_tagged
from app.responses import json_bytes_response
from app.routing import JsonRoute

router = APIRouter(tags=["changes"], responses=AUTH_ERRORS, route_class=JsonRoute)

Limit = Annotated[int, Query(ge=1, le=service.MAX_LIMIT, description="at most 1,000")]


@router.get(
    "/api/pim/changes/",
    response_model=ChangesPage,
    responses=error_responses(410),
    summary="The tenant's change stream",
)
async def list_changes(
    reader: Reader,
    after: Annotated[
        int, Query(ge=0, le=INT64_MAX, description="exclusive: the last seq already read")
    ] = 0,
    limit: Limit = 100,
    op: Annotated[ChangeOp | None, Query(description="only entries of this operation")] = None,
    field: Annotated[
        str | None, Query(max_length=200, description="only entries whose `changes` hold it")
    ] = None,
):
    """Every write to the tenant's products, one entry per product per write, in `seq` order,
    deletions included. Poll with `after=<next_after>`: an entry never appears below a seq already
    read (numbers are taken in commit order). An `after` older than the retention
    (`PIM_CHANGE_RETENTION_DAYS`) is a 410 with code `changes_pruned`: copy the catalog again."""
    body = await service.read_changes(reader, after=after, limit=limit, op=op, field=field)
    return json_bytes_response(dumps(body))


@router.get(
    "/api/pim/products/{product_id}/history/",
    response_model=HistoryPage,
    responses=error_responses(400, 404),
    summary="A product's change history",
)
async def product_history(
    product_id: ObjectId,
    reader: Reader,
    cursor: Annotated[str | None, Query(max_length=20, description="`next_cursor`")] = None,
    limit: Limit = 100,
):
    """The product's entries, newest first; also for a deleted product's id."""
    if cursor is not None and not (cursor.isascii() and cursor.isdigit()):
        raise BadRequest("cursor: not a cursor this endpoint returned")
    body = await service.product_history(
        reader, product_id, cursor=int(cursor) if cursor is not None else None, limit=limit
    )
    return json_bytes_response(dumps(body))


@router.post(
    "/api/pim/products/{product_id}/revert/",
    response_model=ProductOut,
    responses=error_responses(400, 404, 409),
    summary="Put a product back as it was after one of its changes",
    openapi_extra=TAGGED,
)
async def revert_product(product_id: ObjectId, body: RevertIn, session: EditorSession):
    """The product gets its state right after entry `seq` (its built-ins and data; categories
    deleted since are left out); a deleted product comes back with its id and SKU (409 when
    another product has that SKU now). The revert is a write like any other: it is logged."""
    await service.revert_product(session, product_id, seq=body.seq)
    product, version = await get_product_tagged(session, product_id)
    return tagged(json_bytes_response(dumps(product)), version)


REVERT_HELP = (
    "Products the {what} created are deleted; the fields it changed get their previous values "
    "back, except fields a later write changed, which are kept and reported in `skipped` (a "
    "created product changed later is kept, its later changes reported). The revert is logged."
)


@router.post(
    "/api/pim/import/{job_id}/revert/",
    response_model=RevertOut,
    responses=error_responses(404),
    summary="Undo an import",
    description=REVERT_HELP.format(what="import"),
)
async def revert_import(job_id: UUID, session: EditorSession):
    result = await service.revert_writes(session, import_job_id=job_id)
    return RevertOut.model_validate(vars(result))


@router.post(
    "/api/pim/products/bulk/{request_id}/revert/",
    response_model=RevertOut,
    responses=error_responses(404),
    summary="Undo a bulk upsert",
    description=REVERT_HELP.format(what="request")
    + " The request is the one whose `request_id` (its X-Request-ID) is given; every write "
    "logged with that request id is undone.",
)
async def revert_bulk(
    request_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9._:\-]{1,128}$")],
    session: EditorSession,
):
    result = await service.revert_writes(session, request_id=request_id)
    return RevertOut.model_validate(vars(result))
