"""Product segments: CRUD, preview, and queueing a compute.

Service functions take the tenant-bound session first and only flush; the request (or
the worker's transaction) commits.
"""

from typing import Any

from arq.connections import ArqRedis
from pydantic import MISSING
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog
from app.clickhouse import ClickHouse
from app.db import driver_connection, get_by_id, page_after_id, tenant_of, written
from app.errors import BadRequest
from app.etags import check_if_match
from app.jobs.enqueue import Job, enqueue_after_commit
from app.mirror.reads import Mirror
from app.models import Product, Segment
from app.query.categories import category_subtrees
from app.query.compiling import to_clause
from app.query.models import Clause
from app.query.parsing import resolve
from app.segments import dsl, members
from app.segments.schemas import SegmentIn, SegmentPatch, SegmentStatus

PREVIEW_SKUS = 100
MAX_ID = 2**63 - 1
COMPUTE_FUNCTION = "compute_segment"
# the previous run finished but arq has not released its job id yet: retry enqueueing this long
_RELEASE_WAIT_S = 1.0


def compute_job_id(segment_id: int) -> str:
    """One id per segment, so that compute requests while one is queued or running coalesce."""
    return f"segment-compute:{segment_id}"


# --- definitions ----------------------------------------------------------------------------


async def resolve_definition(session: AsyncSession, definition: Any) -> tuple[Any, Clause]:
    """Parse and check a definition against this tenant's schema; (parsed node, checked tree).

    Raises `dsl.DefinitionError` (the caller decides: 400 for a request, `failed` for a task).
    """
    node = dsl.parse_definition(definition)
    fields = await catalog.get_field_map(session)
    subtrees = await category_subtrees(
        await driver_connection(session), tenant_of(session), dsl.category_ids(node)
    )
    return node, resolve(node, fields, subtrees=subtrees)


async def compile_predicate(session: AsyncSession, definition: Any):
    """Parse and check a definition against this tenant's schema; (normalised node, SQL predicate).

    Raises `dsl.DefinitionError` (the caller decides: 400 for a request, `failed` for a task).
    """
    node, clause = await resolve_definition(session, definition)
    return node, to_clause(clause)


async def _checked_definition(session: AsyncSession, definition: Any) -> tuple[dict[str, Any], Any]:
    try:
        node, predicate = await compile_predicate(session, definition)
    except dsl.DefinitionError as exc:
        raise BadRequest(str(exc)) from None
    return dsl.dump_definition(node), predicate


def matching_products(predicate):
    """The members query: ids and SKUs of the matching products, by id (tenant scoping adds the tenant)."""
    return select(Product.id, Product.sku).where(predicate).order_by(Product.id)


# --- CRUD -----------------------------------------------------------------------------------


async def list_segments(session: AsyncSession, *, after: int | None, limit: int) -> list[Segment]:
    """Up to `limit` segments after the id `after`, by id (keyset)."""
    return await page_after_id(session, Segment, after=after, limit=limit)


async def get_segment(
    session: AsyncSession, segment_id: int, *, for_update: bool = False
) -> Segment:
    return await get_by_id(session, Segment, segment_id, "Segment", for_update=for_update)


async def create_segment(session: AsyncSession, *, body: SegmentIn) -> Segment:
    definition, _predicate = await _checked_definition(session, body.definition)
    segment = Segment(name=body.name, description=body.description, definition=definition)
    session.add(segment)
    return await written(session, segment)


async def _segment_to_write(
    session: AsyncSession, segment_id: int, if_match: str | None
) -> Segment:
    """The segment, locked for a write that `if_match` (if any) allows: else a 412."""
    segment = await get_segment(session, segment_id, for_update=True)
    check_if_match(if_match, segment.version)
    return segment


async def update_segment(
    session: AsyncSession, segment_id: int, *, body: SegmentPatch, if_match: str | None = None
) -> Segment:
    segment = await _segment_to_write(session, segment_id, if_match)
    if body.name is not MISSING:
        segment.name = body.name
    if body.description is not MISSING:
        segment.description = body.description
    if body.definition is not MISSING:
        segment.definition, _predicate = await _checked_definition(session, body.definition)
    segment.updated_at = func.now()
    return await written(session, segment)


async def delete_segment(
    session: AsyncSession, segment_id: int, *, clickhouse: ClickHouse, if_match: str | None = None
) -> None:
    await _segment_to_write(session, segment_id, if_match)
    await session.execute(
        delete(Segment).where(Segment.id == segment_id).execution_options(synchronize_session=False)
    )
    await session.flush()
    # best effort: a compute finishing later finds the segment gone and drops its own rows
    await members.drop_segment(clickhouse, tenant_id=tenant_of(session), segment_id=segment_id)


# --- preview and compute ------------------------------------------------------------------------


async def preview(
    session: AsyncSession, *, definition: Any, mirror: Mirror | None = None
) -> dict[str, Any]:
    """The count and first SKUs of the matching products now (a heavy read: the session is
    `PreviewSession`'s, under its time budget). With `mirror`, the count and the ids come from
    the read model when it may answer (`app.mirror.reads`), the SKUs from Postgres by id."""
    try:
        _node, clause = await resolve_definition(session, definition)
    except dsl.DefinitionError as exc:
        raise BadRequest(str(exc)) from None
    predicate = to_clause(clause)
    # what runs is `matching_products` with bound parameters; this copy inlines them for reading
    shown = matching_products(predicate).where(Product.tenant_id == tenant_of(session))
    found = await _preview_from_mirror(session, mirror, clause, predicate) if mirror else None
    if found is None:
        # one statement, so the predicate (hundreds of conditions, maybe) is evaluated once a row
        page = select(Product.sku, func.count().over()).where(predicate).order_by(Product.id)
        rows = (await session.execute(page.limit(PREVIEW_SKUS))).all()
        found = (rows[0][1] if rows else 0, [sku for sku, _count in rows])
    return {"count": found[0], "skus": found[1], "sql": dsl.render_sql(shown)}


async def _preview_from_mirror(
    session: AsyncSession, mirror: Mirror, clause: Clause, predicate
) -> tuple[int, list[str]] | None:
    """The model's count; the first SKUs from Postgres walking the id index when the matches are
    common (a bounded walk: the tenant's first `probe` products), else by the model's ids."""
    query = await mirror.query(await driver_connection(session), tenant_of(session), clause)
    if query is None:
        return None
    count = await query.count()
    if count is None:
        return None
    if not count:
        return 0, []
    probe = query.id_walk(PREVIEW_SKUS, count)
    if probe is not None:
        bound = select(Product.id).order_by(Product.id).offset(probe - 1).limit(1)
        walked = matching_products(predicate).where(
            Product.id <= func.coalesce(bound.scalar_subquery(), MAX_ID)
        )
        rows = (await session.execute(walked.limit(PREVIEW_SKUS))).all()
        if len(rows) >= min(PREVIEW_SKUS, count):
            return count, [sku for _id, sku in rows]
    ids = await query.ids(limit=PREVIEW_SKUS, offset=0)
    if ids is None:
        return None
    skus = dict(
        (await session.execute(select(Product.id, Product.sku).where(Product.id.in_(ids)))).all()
    )
    return count, [skus[i] for i in ids if i in skus]


async def request_compute(session: AsyncSession, segment_id: int, *, arq: ArqRedis) -> None:
    """Queue a compute of the segment, or join the one already queued or running.

    The job is sent after the commit (a run's first update, to `computing`, never overtakes our
    `queued`); a job still queued or running under the segment's id is joined. When Redis is
    down nothing is changed.
    """
    segment = await get_segment(session, segment_id, for_update=True)
    pending = segment.status in (SegmentStatus.queued, SegmentStatus.computing)
    await enqueue_after_commit(
        session,
        arq,
        Job(COMPUTE_FUNCTION, (tenant_of(session), segment_id), compute_job_id(segment_id)),
        unavailable="Redis is unavailable: the compute was not queued",
        # no run pending, yet the id may still be taken: the last run has just finished and arq
        # is about to release the id; a new request must not be swallowed by a finished run
        await_release_s=0 if pending else _RELEASE_WAIT_S,
    )
    if not pending:
        segment.status = SegmentStatus.queued.value
        segment.last_error = None
        await session.flush()
