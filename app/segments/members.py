"""Segment membership in ClickHouse: `product_memberships`, one generation per compute.

Rows are `(tenant_id, segment_id, generation, position, product_id, sku, computed_at)` ordered
by `(tenant_id, segment_id, generation, position)`, where `position` is the member's rank by
product_id in its generation: the order is product_id order, and a page at any offset is a
primary-key range read. A compute writes a new generation and
the segment's `current_generation` in Postgres switches to it only when it is complete,
so readers never see half of a recompute; older generations are deleted afterwards.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from asynch.errors import ClickHouseException
from sqlalchemy.ext.asyncio import AsyncSession

from app.clickhouse import ClickHouse
from app.errors import AppError, BadRequest, Conflict
from app.models import Segment
from app.products.service import products_by_ids

log = structlog.get_logger("pim.segments")

TABLE = "product_memberships"
COLUMNS = ("tenant_id", "segment_id", "generation", "position", "product_id", "sku", "computed_at")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

_PAGE_SQL = f"""
SELECT product_id FROM {TABLE}
WHERE tenant_id = %(tenant_id)s AND segment_id = %(segment_id)s AND generation = %(generation)s
  AND position >= %(offset)s AND position < %(end)s
ORDER BY position
"""


async def insert_block(
    clickhouse: ClickHouse,
    *,
    tenant_id: int,
    segment_id: int,
    generation: int,
    first_position: int,
    product_ids: Sequence[int],
    skus: Sequence[str],
    computed_at: datetime,
) -> None:
    """One columnar INSERT of a block of members in product_id order, ranked from `first_position`.

    Callers send 10k-1M rows at a time.
    """
    if not product_ids:
        return
    n = len(product_ids)
    positions = list(range(first_position, first_position + n))
    # DateTime as epoch seconds: asynch converts datetime objects one by one (15x slower for the block)
    epoch = int(computed_at.replace(tzinfo=computed_at.tzinfo or UTC).timestamp())
    columns = [
        [tenant_id] * n,
        [segment_id] * n,
        [generation] * n,
        positions,
        list(product_ids),
        list(skus),
        [epoch] * n,
    ]
    async with clickhouse.connection() as conn:
        # columnar inserts need asynch's protocol-level connection
        await conn._connection.execute(
            f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES", columns, columnar=True
        )


async def drop_generations(
    clickhouse: ClickHouse,
    *,
    tenant_id: int,
    segment_id: int,
    below: int | None = None,
    only: int | None = None,
) -> None:
    """Delete old (`below`) or one abandoned (`only`) generation of a segment; all of them when neither is given."""
    sql = f"ALTER TABLE {TABLE} DELETE WHERE tenant_id = %(tenant_id)s AND segment_id = %(segment_id)s"
    params: dict[str, Any] = {"tenant_id": tenant_id, "segment_id": segment_id}
    if below is not None:
        sql += " AND generation < %(generation)s"
        params["generation"] = below
    elif only is not None:
        sql += " AND generation = %(generation)s"
        params["generation"] = only
    await clickhouse.execute(sql, params)


async def segment_ids(clickhouse: ClickHouse) -> set[int]:
    """Every segment that has rows here."""
    return {row[0] for row in await clickhouse.fetch(f"SELECT DISTINCT segment_id FROM {TABLE}")}


async def drop_segments(clickhouse: ClickHouse, segment_ids: Sequence[int]) -> None:
    """Delete every row of these segments (ids are unique across tenants): one mutation."""
    await clickhouse.execute(
        f"ALTER TABLE {TABLE} DELETE WHERE segment_id IN %(ids)s", {"ids": tuple(segment_ids)}
    )


async def drop_segment(clickhouse: ClickHouse, *, tenant_id: int, segment_id: int) -> bool:
    """Best effort: remove every membership row of a deleted segment; False when ClickHouse refused."""
    try:
        await drop_generations(clickhouse, tenant_id=tenant_id, segment_id=segment_id)
    except (AppError, ClickHouseException, OSError) as exc:
        log.warning("segment_memberships_not_deleted", segment_id=segment_id, error=str(exc)[:300])
        return False
    return True


async def page_product_ids(
    clickhouse: ClickHouse,
    *,
    tenant_id: int,
    segment_id: int,
    generation: int,
    offset: int,
    limit: int,
) -> list[int]:
    rows = await clickhouse.fetch(
        _PAGE_SQL,
        {
            "tenant_id": tenant_id,
            "segment_id": segment_id,
            "generation": generation,
            "offset": offset,
            "end": offset + limit,
        },
    )
    return [r[0] for r in rows]


async def members_page(
    session: AsyncSession, clickhouse: ClickHouse, segment: Segment, *, cursor: int, page_size: int
) -> dict[str, Any]:
    """A page of the current generation: ids from ClickHouse, products from Postgres in that order."""
    if page_size > MAX_PAGE_SIZE:
        raise BadRequest(f"page_size must be at most {MAX_PAGE_SIZE}")
    if segment.current_generation is None:
        raise Conflict("The segment has not been computed yet: POST .../compute/ first")
    ids = await page_product_ids(
        clickhouse,
        tenant_id=segment.tenant_id,
        segment_id=segment.id,
        generation=segment.current_generation,
        offset=cursor,
        limit=page_size + 1,  # one more tells whether there is a next page
    )
    has_next = len(ids) > page_size
    products = await products_by_ids(session, ids[:page_size])  # products deleted since are skipped
    return {
        "count": segment.computed_count or 0,
        "results": products,
        "next_cursor": cursor + page_size if has_next else None,
    }
