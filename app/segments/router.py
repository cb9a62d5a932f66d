from typing import Annotated

from fastapi import Body, Request, status
from fastapi.responses import Response

from app import etags
from app.deps import Arq, EditorSession, ObjectId, PreviewSession, ViewerSession
from app.errors import AUTH_ERRORS, BadRequest, error_responses
from app.pagination import DEFAULT_LIMIT, Cursor, Limit, after_id, checked_page_size, id_page
from app.products.service import dumps
from app.query.models import DEFINITION_ERRORS, DEFINITION_HELP
from app.responses import json_bytes_response
from app.routing import api_router, created
from app.segments import members, schemas, service

router = api_router(prefix="/api/product-segments", tags=["segments"], responses=AUTH_ERRORS)


@router.get("/", response_model=schemas.SegmentPage, responses=error_responses(400))
async def list_segments(
    session: ViewerSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
):
    """Segments by id, a page at a time: `next_cursor` (opaque) fetches the next page and is `null`
    on the last one; a page starts after the last segment of the previous one (keyset)."""
    after = after_id("segments", cursor)
    page = await service.list_segments(session, after=after, limit=limit + 1)
    return id_page("segments", page, limit)


@router.post(
    "/",
    response_model=schemas.SegmentOut,
    description=DEFINITION_ERRORS,
    **etags.tagged_create(400),
)
async def create_segment(
    body: schemas.SegmentIn, session: EditorSession, request: Request, response: Response
):
    segment = await service.create_segment(session, body=body)
    return created(request, response, segment, "get_segment", segment_id=segment.id)


@router.post(
    "/preview/",
    response_model=schemas.Preview,
    responses=error_responses(400, 429, 503),
    description="Count the products a definition matches now, without saving it. A heavy read: it "
    "takes one token per `PIM_HEAVY_READ_CONDITIONS_PER_TOKEN` (20) conditions from the tenant's "
    "preview bucket, a tenant runs at most `PIM_HEAVY_READS_PER_TENANT` previews at once per API "
    "process, and more are a 429 with `Retry-After`; a preview that runs longer than "
    "`PIM_HEAVY_READ_TIMEOUT_MS` (2000) is cancelled, a 503. " + DEFINITION_ERRORS,
)
async def preview_segment(
    definition: Annotated[schemas.Definition, Body(description=DEFINITION_HELP)],
    session: PreviewSession,
    request: Request,
):
    return await service.preview(session, definition=definition, mirror=request.app.state.mirror)


@router.get("/{segment_id}/", response_model=schemas.SegmentOut, **etags.TAGGED_READ)
async def get_segment(
    segment_id: ObjectId, session: ViewerSession, conditional: etags.ConditionalGet
):
    """The segment with its definition (as sent, normalised) and the state of its last compute,
    and its `ETag` (`If-None-Match` with it: `304` while it is current; a compute changes it)."""
    segment = await service.get_segment(session, segment_id)
    return conditional.answer(segment.version, segment)


@router.patch(
    "/{segment_id}/",
    response_model=schemas.SegmentOut,
    description="Partial update. A new definition takes effect for the members at the next compute. "
    "With `If-Match`, only the version it names is changed (else `412`). " + DEFINITION_ERRORS,
    **etags.tagged_write(400, 404),
)
async def update_segment(
    segment_id: ObjectId,
    body: schemas.SegmentPatch,
    session: EditorSession,
    conditional: etags.ConditionalWrite,
):
    segment = await service.update_segment(
        session, segment_id, body=body, if_match=conditional.if_match
    )
    return conditional.answer(segment.version, segment)


@router.delete(
    "/{segment_id}/",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 412, 428),
)
async def delete_segment(
    segment_id: ObjectId, request: Request, session: EditorSession, if_match: etags.IfMatch
) -> Response:
    """Delete the segment and (best effort) its memberships; with `If-Match`, only the version it
    names (else `412`)."""
    await service.delete_segment(
        session, segment_id, clickhouse=request.app.state.clickhouse, if_match=if_match
    )
    return Response(status_code=204)


@router.post(
    "/{segment_id}/compute/",
    response_model=schemas.ComputeQueued,
    responses=error_responses(404, 503),
)
async def compute_segment(segment_id: ObjectId, session: EditorSession, arq: Arq):
    """Queue a recompute of the membership and answer at once.

    Requests while a compute is queued or running join it. The segment moves
    `queued → computing → ready` (or `failed` with `last_error`); `computed_count` and
    `last_computed_at` change when the run finishes. `503` when Redis is down (nothing changes).
    """
    await service.request_compute(session, segment_id, arq=arq)
    return {"status": "queued", "segment_id": segment_id}


@router.get(
    "/{segment_id}/members/",
    response_model=schemas.MembersPage,
    responses=error_responses(400, 404, 409, 503),
)
async def list_segment_members(
    segment_id: ObjectId,
    request: Request,
    session: ViewerSession,
    cursor: Cursor = None,
    limit: Annotated[
        int | None,
        # checked by members_page
        checked_page_size(
            members.MAX_PAGE_SIZE,
            f"members per page, at most {members.MAX_PAGE_SIZE} (more is a 400)",
            le=2**31 - 1,
        ),
    ] = None,
    page_size: Annotated[
        int | None,
        checked_page_size(members.MAX_PAGE_SIZE, "an alias of `limit`", le=2**31 - 1),
    ] = None,
):
    """The members of the last compute, by product id, a page at a time (default 50): `next_cursor`
    (opaque) fetches the next page and is `null` on the last one; a page started before a
    recompute continues after the last product id read. `409` before the first compute."""
    if limit is not None and page_size is not None and limit != page_size:
        raise BadRequest("page_size is an alias of limit: send one of them")
    segment = await service.get_segment(session, segment_id)
    page = await members.members_page(
        session,
        request.app.state.clickhouse,
        segment,
        cursor=cursor,
        limit=limit or page_size or members.DEFAULT_PAGE_SIZE,
    )
    return json_bytes_response(dumps(page))
