"""The tenant's vocabulary: product schema, category tree, views.

Service functions take the tenant-bound session first; only the request (or a
worker's `sessionmaker.begin()`) commits.
"""

import base64
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.fields import FieldDef
from app.catalog.schemas import (
    MAX_CATEGORY_DEPTH,
    CategoryIn,
    CategoryPatch,
    SchemaIn,
    ViewIn,
    ViewPatch,
)
from app.db import (
    TenantReader,
    driver_connection,
    get_by_id,
    page_after_id,
    reading,
    tenant_is,
    tenant_of,
    written,
)
from app.errors import BadRequest, Conflict
from app.etags import check_if_match
from app.jobs.locks import Lock, xact_lock
from app.models import Category, Product, ProductSchema, View
from app.query.categories import category_subtrees

PATH_SEPARATOR = " > "


# --- product schema -------------------------------------------------------------------------


async def get_schema_row(session: AsyncSession) -> ProductSchema | None:
    return await session.scalar(select(ProductSchema))


def schema_out(row: ProductSchema | None) -> dict[str, Any]:
    if row is None:
        return {
            "fields": [],
            "default_currency": "USD",
            "default_locale": "en-us",
            "updated_at": None,
        }
    return {
        "fields": row.fields,
        "default_currency": row.default_currency,
        "default_locale": row.default_locale,
        "updated_at": row.updated_at,
    }


async def get_fields(session: AsyncSession | TenantReader) -> list[FieldDef]:
    # read on every list/facet/write request: a plain query on the raw connection
    async with reading(session) as conn:
        raw = await conn.fetchval(
            f"SELECT fields::text FROM product_schemas WHERE {tenant_is('product_schemas')}",
            tenant_of(session),
        )
    return [FieldDef.model_validate(f) for f in orjson.loads(raw)] if raw else []


async def get_field_map(session: AsyncSession | TenantReader) -> dict[str, FieldDef]:
    return {f.name: f for f in await get_fields(session)}


def _facet_signature(fields: list[dict[str, Any]]) -> set[tuple[str, bool]]:
    return {
        (f["name"], f["type"] == "array")
        for f in fields
        if f["type"] in ("string", "enum", "array")
    }


async def lock_schema(session: AsyncSession, *, exclusive: bool = False) -> datetime | None:
    """Hold the tenant's schema lock until the transaction ends, and return the schema's version
    (`updated_at`; None: no schema yet). A schema PUT holds it exclusively; an import batch holds it
    shared, so the schema it validated its rows with is the one in force when it commits."""
    conn = await driver_connection(session)
    tenant_id = tenant_of(session)
    await xact_lock(conn, Lock.SCHEMA, tenant_id, shared=not exclusive)
    return await conn.fetchval(
        f"SELECT updated_at FROM product_schemas WHERE {tenant_is('product_schemas')}", tenant_id
    )


async def put_schema(
    session: AsyncSession, body: SchemaIn, *, if_match: str | None = None
) -> ProductSchema:
    """Replace the fields (and optionally currency/locale). Product data is never touched."""
    await lock_schema(session, exclusive=True)  # waits for the import batch being written
    row = await get_schema_row(session)
    # under the schema lock: of two PUTs with the same If-Match, one wins
    check_if_match(if_match, row.version if row is not None else None)
    before = _facet_signature(row.fields if row is not None else [])
    fields = [f.model_dump() for f in body.fields]
    if row is None:
        row = ProductSchema(fields=fields)
        if body.default_currency:
            row.default_currency = body.default_currency
        if body.default_locale:
            row.default_locale = body.default_locale
        session.add(row)
    else:
        row.fields = fields
        if body.default_currency:
            row.default_currency = body.default_currency
        if body.default_locale:
            row.default_locale = body.default_locale
        row.updated_at = func.now()
    await session.flush()
    if _facet_signature(fields) != before:
        # the set of faceted fields changed: recount them (the triggers only follow writes)
        await session.execute(
            text("SELECT pim_rebuild_facet_counts(:tenant)"), {"tenant": tenant_of(session)}
        )
    await session.refresh(row)
    return row


# --- categories -----------------------------------------------------------------------------


async def get_category(
    session: AsyncSession, category_id: int, *, for_update: bool = False
) -> Category:
    return await get_by_id(session, Category, category_id, "Category", for_update=for_update)


CATEGORY_PAGE_DEFAULT = 50
CATEGORY_PAGE_MAX = 200

# The tree in its order: each category right before its subtree, siblings by position, name, id.
# A category's sort key is the (position, name, id) of every category on its way from the top
# of the listing, so the order of the keys is the tree order and a page starts after the last
# key of the previous one (keyset). $3: whether to descend (the whole tree) or list one level.
_CATEGORY_PAGE = f"""
WITH RECURSIVE tree AS (
    SELECT c.*, ARRAY[ROW(c.position, c.name::text, c.id)] AS sort_key
    FROM categories c
    WHERE {tenant_is("c")} AND c.parent_id IS NOT DISTINCT FROM $2
    UNION ALL
    SELECT c.*, t.sort_key || ROW(c.position, c.name::text, c.id)
    FROM categories c JOIN tree t ON c.parent_id = t.id
    WHERE {tenant_is("c")} AND $3
) CYCLE id SET looped USING visited
SELECT id, name, parent_id, labels::text AS labels, path, position, to_jsonb(sort_key)::text AS next_key
FROM tree
WHERE NOT looped AND ($4::jsonb IS NULL OR sort_key > (
    SELECT array_agg(ROW((e ->> 'f1')::int, e ->> 'f2', (e ->> 'f3')::bigint) ORDER BY n)
    FROM jsonb_array_elements($4::jsonb) WITH ORDINALITY AS k(e, n)
))
ORDER BY sort_key
LIMIT $5
"""


def _decode_cursor(cursor: str) -> str:
    try:
        key = orjson.loads(
            base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
        )
        if not (
            isinstance(key, list)
            and key
            and all(
                isinstance(k, dict)
                and type(k.get("f1")) is int
                and isinstance(k.get("f2"), str)
                and type(k.get("f3")) is int
                for k in key
            )
        ):
            raise ValueError
    except (ValueError, UnicodeError, orjson.JSONDecodeError):
        raise BadRequest(
            "cursor: not a cursor of this list (send `next_cursor` back as it is)"
        ) from None
    return orjson.dumps(key).decode()


async def list_categories(
    session: AsyncSession | TenantReader,
    *,
    parent_id: int | None = None,
    roots_only: bool = False,
    limit: int = CATEGORY_PAGE_DEFAULT,
    cursor: str | None = None,
) -> dict[str, Any]:
    """A page of categories in tree order: each category right before its subtree, siblings by
    position, name, id. With `parent_id` (or `roots_only`), only those children (or roots).

    Returns {"results", "next_cursor"}; `next_cursor` is None on the last page. Each page walks
    the tree once (the order is computed, not stored)."""
    one_level = parent_id is not None or roots_only
    async with reading(session) as conn:
        rows = await conn.fetch(
            _CATEGORY_PAGE,
            tenant_of(session),
            parent_id,
            not one_level,
            _decode_cursor(cursor) if cursor else None,
            limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    results = [
        {
            "id": r["id"],
            "name": r["name"],
            "parent_id": r["parent_id"],
            "labels": orjson.loads(r["labels"]),
            "path": r["path"],
            "position": r["position"],
        }
        for r in rows
    ]
    next_cursor = (
        base64.urlsafe_b64encode(rows[-1]["next_key"].encode()).rstrip(b"=").decode()
        if more
        else None
    )
    return {"results": results, "next_cursor": next_cursor}


async def _lock_tree(session: AsyncSession) -> None:
    """Serialise the tenant's category writes until the transaction ends.

    A path is computed from the parent's path, and a move is checked against the subtree as
    read: without the lock, a child created during its parent's rename keeps the old path, and
    two crossing moves can both pass the cycle check."""
    await xact_lock(await driver_connection(session), Lock.CATEGORIES, tenant_of(session))


# Products reference categories by id in an array, which no foreign key can guard. This lock is
# that guard: every write that assigns category ids holds it shared from its existence check
# until it commits, and a delete holds it exclusively while it removes the id from products and
# the row. So a writer either commits before the delete (whose next statement then sees its
# products) or checks after it (and finds the id gone); concurrent writers do not wait for each other.
async def hold_category_references(conn, tenant_id: int, *, exclusive: bool = False) -> None:
    """Take the tenant's category-reference lock on `conn` (an asyncpg connection in a transaction)
    until the transaction ends: shared before checking ids to assign, exclusive to delete one."""
    await xact_lock(conn, Lock.CATEGORY_REFS, tenant_id, shared=not exclusive)


async def _parent_path(session: AsyncSession, parent_id: int | None) -> str | None:
    if parent_id is None:
        return None
    parent = await session.scalar(select(Category.path).where(Category.id == parent_id))
    if parent is None:
        raise BadRequest(f"Parent category {parent_id} not found")
    return parent


def _join(parent_path: str | None, name: str) -> str:
    return f"{parent_path}{PATH_SEPARATOR}{name}" if parent_path else name


def _depth(path: str | None) -> int:
    """Levels of a path (names hold no '>', so the separators count them)."""
    return path.count(PATH_SEPARATOR) + 1 if path else 0


def _check_depth(parent_path: str | None, height: int = 1) -> None:
    """A subtree `height` levels high placed under `parent_path` stays within MAX_CATEGORY_DEPTH."""
    if _depth(parent_path) + height > MAX_CATEGORY_DEPTH:
        raise BadRequest(
            f"Categories are at most {MAX_CATEGORY_DEPTH} levels deep; this would make one "
            f"{_depth(parent_path) + height} levels deep"
        )


async def create_category(session: AsyncSession, body: CategoryIn) -> Category:
    await _lock_tree(session)
    parent_path = await _parent_path(session, body.parent_id)
    _check_depth(parent_path)
    category = Category(
        name=body.name,
        parent_id=body.parent_id,
        labels=body.labels,
        position=body.position,
        path=_join(parent_path, body.name),
    )
    session.add(category)
    return await written(session, category)


async def subtree_ids(session: AsyncSession | TenantReader, category_id: int) -> list[int]:
    """The category and all its descendants (empty when it does not exist for this tenant)."""
    async with reading(session) as conn:
        return (await category_subtrees(conn, tenant_of(session), [category_id])).get(
            category_id, []
        )


# the paths of a category's descendants, rebuilt from its (new) path down the tree by parent_id
# (CYCLE: should the data ever hold a loop, the walk stops instead of running until the timeout)
_REWRITE_DESCENDANT_PATHS = text(
    f"""
    WITH RECURSIVE tree(id, path) AS (
        SELECT id, :path || :sep || name FROM categories
        WHERE {tenant_is("categories", ":tenant")} AND parent_id = :id
        UNION ALL
        SELECT c.id, t.path || :sep || c.name FROM categories c JOIN tree t ON c.parent_id = t.id
        WHERE {tenant_is("c", ":tenant")}
    ) CYCLE id SET looped USING visited
    UPDATE categories c SET path = tree.path, updated_at = now()
    FROM tree
    WHERE c.id = tree.id AND {tenant_is("c", ":tenant")} AND NOT tree.looped
      AND c.path IS DISTINCT FROM tree.path
    """
)


async def patch_category(
    session: AsyncSession, category_id: int, body: CategoryPatch, *, if_match: str | None = None
) -> Category:
    changes = body.model_dump(exclude_unset=True)  # the fields sent (null only for parent_id)
    renames = "name" in changes or "parent_id" in changes
    if renames:
        await _lock_tree(session)  # before the reads below
    category = await get_category(session, category_id, for_update=if_match is not None)
    check_if_match(if_match, category.version)
    for key in ("labels", "position"):
        if key in changes:
            setattr(category, key, changes[key])
    if renames:
        name = changes.get("name") or category.name
        parent_id = changes.get("parent_id", category.parent_id)
        if (
            "parent_id" in changes
            and parent_id is not None
            and parent_id in await subtree_ids(session, category_id)
        ):
            raise BadRequest("A category cannot be moved under itself or one of its descendants")
        parent_path = await _parent_path(session, parent_id)
        if parent_id != category.parent_id:
            deepest = await session.scalar(
                select(
                    func.max(
                        func.array_length(func.string_to_array(Category.path, PATH_SEPARATOR), 1)
                    )
                ).where(Category.id.in_(await subtree_ids(session, category_id)))
            )
            _check_depth(parent_path, (deepest or 1) - _depth(category.path) + 1)
        old_path = category.path
        category.name, category.parent_id, category.path = name, parent_id, _join(parent_path, name)
        await session.flush()
        if category.path != old_path:
            await session.execute(
                _REWRITE_DESCENDANT_PATHS,
                {
                    "tenant": tenant_of(session),
                    "id": category.id,
                    "path": category.path,
                    "sep": PATH_SEPARATOR,
                },
            )
    else:
        await session.flush()
    await session.refresh(category)
    return category


async def delete_category(
    session: AsyncSession, category_id: int, *, if_match: str | None = None
) -> None:
    await _lock_tree(session)  # no child is created under it between the check and the delete
    category = await get_category(session, category_id, for_update=if_match is not None)
    check_if_match(if_match, category.version)
    if await session.scalar(select(Category.id).where(Category.parent_id == category_id).limit(1)):
        raise Conflict("The category has children; delete or move them first")
    # waits for the writers assigning categories to commit: the UPDATE below then sees their products
    await hold_category_references(
        await driver_connection(session), tenant_of(session), exclusive=True
    )
    await session.execute(
        update(Product)
        .where(Product.categories.contains([category_id]))
        .values(categories=func.array_remove(Product.categories, category_id))
        .execution_options(synchronize_session=False)
    )
    await session.execute(delete(Category).where(Category.id == category_id))


_INSERT_CATEGORIES = """
INSERT INTO categories (tenant_id, name, parent_id, path)
SELECT $1, t.name, t.parent_id, t.path FROM unnest($2::text[], $3::bigint[], $4::text[]) AS t(name, parent_id, path)
RETURNING path, id
"""


async def ensure_category_paths(session: AsyncSession, paths: list[str]) -> dict[str, int]:
    """Resolve paths like "Men > Shoes" to ids, creating the missing categories along the way.

    Paths come checked (at most MAX_CATEGORY_DEPTH levels, see `parse_category_paths`). One
    lookup, then one INSERT per level for the missing categories of that level."""
    wanted: dict[str, list[str]] = {}
    for raw in paths:
        parts = [p.strip() for p in raw.split(">") if p.strip()]
        if parts:
            wanted[PATH_SEPARATOR.join(parts)] = parts
    if not wanted:
        return {}
    levels: list[dict[str, str]] = []  # per level: {path: name}
    for parts in wanted.values():
        path = ""
        for depth, name in enumerate(parts):
            path = _join(path, name)
            if depth == len(levels):
                levels.append({})
            levels[depth][path] = name
    prefixes = [path for level in levels for path in level]
    tenant_id = tenant_of(session)
    conn = await driver_connection(session)
    # same-named siblings share a path: the oldest category answers it (dict() keeps the last row)
    lookup = f"SELECT path, id FROM categories WHERE {tenant_is('categories')} AND path = ANY($2::text[]) ORDER BY id DESC"
    existing = dict(await conn.fetch(lookup, tenant_id, prefixes))
    if len(existing) < len(prefixes):
        await _lock_tree(
            session
        )  # then read again: a concurrent import may have created some meanwhile
        existing = dict(await conn.fetch(lookup, tenant_id, prefixes))
        for level in levels:
            missing = [(path, name) for path, name in level.items() if path not in existing]
            if missing:
                parents = [existing.get(path.rpartition(PATH_SEPARATOR)[0]) for path, _ in missing]
                existing.update(
                    dict(
                        await conn.fetch(
                            _INSERT_CATEGORIES,
                            tenant_id,
                            [name for _, name in missing],
                            parents,
                            [path for path, _ in missing],
                        )
                    )
                )
    return {path: existing[path] for path in wanted}


async def category_paths(session: AsyncSession, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        (
            await session.execute(select(Category.id, Category.path).where(Category.id.in_(ids)))
        ).all()
    )


async def existing_category_ids(session: AsyncSession, ids: set[int]) -> set[int]:
    """Which of `ids` exist; they keep existing until the transaction ends (see `hold_category_references`)."""
    if not ids:
        return set()
    await hold_category_references(await driver_connection(session), tenant_of(session))
    return set(await session.scalars(select(Category.id).where(Category.id.in_(ids))))


# --- views ----------------------------------------------------------------------------------


async def get_view(session: AsyncSession, view_id: int, *, for_update: bool = False) -> View:
    return await get_by_id(session, View, view_id, "View", for_update=for_update)


async def list_views(session: AsyncSession, *, after: int | None, limit: int) -> list[View]:
    """Up to `limit` views after the id `after`, by id (keyset: `ix` on the primary key)."""
    return await page_after_id(session, View, after=after, limit=limit)


async def _clear_default(session: AsyncSession, except_id: int | None = None) -> None:
    stmt = update(View).where(View.is_default.is_(True)).values(is_default=False)
    if except_id is not None:
        stmt = stmt.where(View.id != except_id)
    await session.execute(stmt.execution_options(synchronize_session=False))


async def _check_view_name(session: AsyncSession, name: str, view_id: int | None = None) -> None:
    stmt = select(View.id).where(View.name == name)
    if view_id is not None:
        stmt = stmt.where(View.id != view_id)
    if await session.scalar(stmt) is not None:
        raise Conflict(f"A view named {name!r} already exists")


async def create_view(session: AsyncSession, body: ViewIn) -> View:
    await _check_view_name(session, body.name)
    if body.is_default:
        await _clear_default(session)  # at most one default: the newest wins
    view = View(name=body.name, attributes=body.attributes, is_default=body.is_default)
    session.add(view)
    return await written(session, view)


async def patch_view(
    session: AsyncSession, view_id: int, body: ViewPatch, *, if_match: str | None = None
) -> View:
    view = await get_view(session, view_id, for_update=if_match is not None)
    check_if_match(if_match, view.version)
    changes = body.model_dump(exclude_unset=True)  # the fields sent (none is nullable)
    if "name" in changes:
        await _check_view_name(session, changes["name"], view.id)
    if changes.get("is_default"):
        await _clear_default(session, except_id=view.id)
    for key, value in changes.items():
        setattr(view, key, value)
    return await written(session, view)


async def delete_view(session: AsyncSession, view_id: int, *, if_match: str | None = None) -> None:
    view = await get_view(session, view_id, for_update=if_match is not None)
    check_if_match(if_match, view.version)
    await session.execute(delete(View).where(View.id == view_id))
