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
from app.pagination import BAD_CURSOR, decode_cursor, encode_cursor
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
    columns: list[list[Any]] = [
        [tenant_id] * n,
        [segment_id] * n,
        [generation] * n,
        positions,
        list(product_ids),
        list(skus),
        [epoch] * n,
    ]
    await clickhouse.insert_columns(TABLE, COLUMNS, columns)


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


_ENTERED_SQL = f"""
SELECT sku FROM {TABLE}
WHERE tenant_id = %(tenant_id)s AND segment_id = %(segment_id)s AND generation = %(into)s
  AND product_id NOT IN (
      SELECT product_id FROM {TABLE}
      WHERE tenant_id = %(tenant_id)s AND segment_id = %(segment_id)s AND generation = %(out_of)s)
ORDER BY position
"""


async def membership_diff(
    clickhouse: ClickHouse,
    *,
    tenant_id: int,
    segment_id: int,
    previous: int | None,
    generation: int,
) -> tuple[list[str], list[str]]:
    """SKUs that entered the segment and SKUs that left it, from generation `previous` (None: the
    first compute, every member entered) to `generation`, each in product_id order."""
    params = {"tenant_id": tenant_id, "segment_id": segment_id}
    # generation 0 is never written (numbers start at 1): the first compute diffs against nothing
    entered = await clickhouse.fetch(
        _ENTERED_SQL, {**params, "into": generation, "out_of": previous or 0}
    )
    left = (
        await clickhouse.fetch(_ENTERED_SQL, {**params, "into": previous, "out_of": generation})
        if previous
        else []
    )
    return [r[0] for r in entered], [r[0] for r in left]


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


MEMBERS_LIST = "members"
_FIRST_AFTER_SQL = f"""
SELECT min(position) FROM {TABLE}
WHERE tenant_id = %(tenant_id)s AND segment_id = %(segment_id)s AND generation = %(generation)s
  AND product_id > %(after)s
"""


def _members_cursor(cursor: str) -> tuple[int, int, int]:
    """(generation, next position, last product id) of a members cursor."""
    payload = decode_cursor(MEMBERS_LIST, cursor)
    values = (payload.get("g"), payload.get("p"), payload.get("id"))
    if not all(type(v) is int and 0 <= v < 2**62 for v in values):
        raise BadRequest(BAD_CURSOR)
    return values  # type: ignore[return-value]


async def _start_position(
    clickhouse: ClickHouse, segment: Segment, cursor: str | None
) -> int | None:
    """Where the page starts in the current generation; None when nothing follows the cursor.

    A cursor holds the position after its page and the last product id. In the generation it was
    read from, the position is the next member; after a recompute, positions moved, and the page
    starts at the first member whose id is above the last one read (members are in id order)."""
    if cursor is None:
        return 0
    generation, position, last_id = _members_cursor(cursor)
    current = segment.current_generation
    assert current is not None  # members_page answers 409 before the first compute
    if generation == current:
        return position
    rows = await clickhouse.fetch(
        _FIRST_AFTER_SQL,
        {
            "tenant_id": segment.tenant_id,
            "segment_id": segment.id,
            "generation": current,
            "after": last_id,
        },
    )
    # min() over no rows is 0 in ClickHouse: check that the member at 0 is really after the id
    start = rows[0][0] if rows else None
    if start == 0:
        first = await page_product_ids(
            clickhouse,
            tenant_id=segment.tenant_id,
            segment_id=segment.id,
            generation=current,
            offset=0,
            limit=1,
        )
        return 0 if first and first[0] > last_id else None
    return start


async def members_page(
    session: AsyncSession,
    clickhouse: ClickHouse,
    segment: Segment,
    *,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """A page of the current generation: ids from ClickHouse, products from Postgres in that order.
    The cursor is opaque: (generation, position, last product id), so a page read across a
    recompute continues after the last product id instead of at a shifted position."""
    if limit > MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be at most {MAX_PAGE_SIZE}")
    if segment.current_generation is None:
        raise Conflict("The segment has not been computed yet: POST .../compute/ first")
    start = await _start_position(clickhouse, segment, cursor)
    ids = (
        []
        if start is None
        else await page_product_ids(
            clickhouse,
            tenant_id=segment.tenant_id,
            segment_id=segment.id,
            generation=segment.current_generation,
            offset=start,
            limit=limit + 1,  # one more tells whether there is a next page
        )
    )
    page_ids = ids[:limit]
    products = await products_by_ids(session, page_ids)  # products deleted since are skipped
    next_cursor = None
    if len(ids) > limit and start is not None:
        next_cursor = encode_cursor(
            MEMBERS_LIST,
            {"g": segment.current_generation, "p": start + limit, "id": page_ids[-1]},
        )
    return {"count": segment.computed_count or 0, "results": products, "next_cursor": next_cursor}
