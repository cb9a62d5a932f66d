"""The tenant's vocabulary: product schema, category tree, views.

Service functions take the tenant-bound session first; only the request (or a
worker's `sessionmaker.begin()`) commits.
"""

from typing import Any

import orjson

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.fields import FieldDef
from app.catalog.schemas import CategoryIn, CategoryPatch, SchemaIn, ViewIn, ViewPatch
from app.db import TenantReader, reading, tenant_of
from app.errors import BadRequest, Conflict, NotFound
from app.models import Category, Product, ProductSchema, View
from app.query.categories import category_subtrees

PATH_SEPARATOR = " > "


# --- product schema -------------------------------------------------------------------------


async def get_schema_row(session: AsyncSession) -> ProductSchema | None:
    return await session.scalar(select(ProductSchema))


def schema_out(row: ProductSchema | None) -> dict[str, Any]:
    if row is None:
        return {"fields": [], "default_currency": "USD", "default_locale": "en-us", "updated_at": None}
    return {
        "fields": row.fields,
        "default_currency": row.default_currency,
        "default_locale": row.default_locale,
        "updated_at": row.updated_at,
    }


async def get_fields(session: AsyncSession | TenantReader) -> list[FieldDef]:
    # read on every list/facet/write request: a plain query on the raw connection
    async with reading(session) as conn:
        raw = await conn.fetchval("SELECT fields::text FROM product_schemas WHERE tenant_id = $1", tenant_of(session))
    return [FieldDef.model_validate(f) for f in orjson.loads(raw)] if raw else []


async def get_field_map(session: AsyncSession | TenantReader) -> dict[str, FieldDef]:
    return {f.name: f for f in await get_fields(session)}


def _facet_signature(fields: list[dict[str, Any]]) -> set[tuple[str, bool]]:
    return {(f["name"], f["type"] == "array") for f in fields if f["type"] in ("string", "enum", "array")}


async def put_schema(session: AsyncSession, body: SchemaIn) -> ProductSchema:
    """Replace the fields (and optionally currency/locale). Product data is never touched."""
    row = await get_schema_row(session)
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
        await session.execute(text("SELECT pim_rebuild_facet_counts(:tenant)"), {"tenant": tenant_of(session)})
    await session.refresh(row)
    return row


# --- categories -----------------------------------------------------------------------------

async def get_category(session: AsyncSession, category_id: int) -> Category:
    category = await session.scalar(select(Category).where(Category.id == category_id))
    if category is None:
        raise NotFound(f"Category {category_id} not found")
    return category


async def list_categories(session: AsyncSession, *, parent_id: int | None = None, roots_only: bool = False) -> list[Category]:
    """Siblings by position, name, id; without a parent (or `roots_only`), the whole tree in that
    order depth-first, each category right before its subtree."""
    stmt = select(Category).order_by(Category.position, Category.name, Category.id)
    if parent_id is not None:
        return list(await session.scalars(stmt.where(Category.parent_id == parent_id)))
    if roots_only:
        return list(await session.scalars(stmt.where(Category.parent_id.is_(None))))
    children: dict[int | None, list[Category]] = {}
    for category in await session.scalars(stmt):
        children.setdefault(category.parent_id, []).append(category)
    ordered: list[Category] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        category = stack.pop()
        ordered.append(category)
        stack.extend(reversed(children.get(category.id, [])))
    return ordered


async def _lock_tree(session: AsyncSession) -> None:
    """Serialise the tenant's category writes until the transaction ends.

    A path is computed from the parent's path, and a move is checked against the subtree as
    read: without the lock, a child created during its parent's rename keeps the old path, and
    two crossing moves can both pass the cycle check."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('pim.categories'), (:tenant % 2147483647)::int)"),
        {"tenant": tenant_of(session)},
    )


async def _parent_path(session: AsyncSession, parent_id: int | None) -> str | None:
    if parent_id is None:
        return None
    parent = await session.scalar(select(Category.path).where(Category.id == parent_id))
    if parent is None:
        raise BadRequest(f"Parent category {parent_id} not found")
    return parent


def _join(parent_path: str | None, name: str) -> str:
    return f"{parent_path}{PATH_SEPARATOR}{name}" if parent_path else name


async def create_category(session: AsyncSession, body: CategoryIn) -> Category:
    await _lock_tree(session)
    parent_path = await _parent_path(session, body.parent_id)
    category = Category(
        name=body.name, parent_id=body.parent_id, labels=body.labels, position=body.position, path=_join(parent_path, body.name)
    )
    session.add(category)
    await session.flush()
    await session.refresh(category)
    return category


async def subtree_ids(session: AsyncSession | TenantReader, category_id: int) -> list[int]:
    """The category and all its descendants (empty when it does not exist for this tenant)."""
    async with reading(session) as conn:
        return (await category_subtrees(conn, tenant_of(session), [category_id])).get(category_id, [])


# the paths of a category's descendants, rebuilt from its (new) path down the tree by parent_id
# (CYCLE: should the data ever hold a loop, the walk stops instead of running until the timeout)
_REWRITE_DESCENDANT_PATHS = text(
    """
    WITH RECURSIVE tree(id, path) AS (
        SELECT id, :path || :sep || name FROM categories WHERE tenant_id = :tenant AND parent_id = :id
        UNION ALL
        SELECT c.id, t.path || :sep || c.name FROM categories c JOIN tree t ON c.parent_id = t.id
        WHERE c.tenant_id = :tenant
    ) CYCLE id SET looped USING visited
    UPDATE categories c SET path = tree.path, updated_at = now()
    FROM tree
    WHERE c.id = tree.id AND NOT tree.looped AND c.path IS DISTINCT FROM tree.path
    """
)


async def patch_category(session: AsyncSession, category_id: int, body: CategoryPatch) -> Category:
    changes = body.model_dump(exclude_unset=True)
    renames = changes.get("name") is not None or "parent_id" in changes
    if renames:
        await _lock_tree(session)  # before the reads below
    category = await get_category(session, category_id)
    for key in ("labels", "position"):
        if changes.get(key) is not None:
            setattr(category, key, changes[key])
    if renames:
        name = changes.get("name") or category.name
        parent_id = changes.get("parent_id", category.parent_id)
        if "parent_id" in changes and parent_id is not None and parent_id in await subtree_ids(session, category_id):
            raise BadRequest("A category cannot be moved under itself or one of its descendants")
        parent_path = await _parent_path(session, parent_id)
        old_path = category.path
        category.name, category.parent_id, category.path = name, parent_id, _join(parent_path, name)
        await session.flush()
        if category.path != old_path:
            await session.execute(
                _REWRITE_DESCENDANT_PATHS,
                {"tenant": tenant_of(session), "id": category.id, "path": category.path, "sep": PATH_SEPARATOR},
            )
    else:
        await session.flush()
    await session.refresh(category)
    return category


async def delete_category(session: AsyncSession, category_id: int) -> None:
    await _lock_tree(session)  # no child is created under it between the check and the delete
    await get_category(session, category_id)
    if await session.scalar(select(Category.id).where(Category.parent_id == category_id).limit(1)):
        raise Conflict("The category has children; delete or move them first")
    await session.execute(
        update(Product)
        .where(Product.categories.contains([category_id]))
        .values(categories=func.array_remove(Product.categories, category_id))
        .execution_options(synchronize_session=False)
    )
    await session.execute(delete(Category).where(Category.id == category_id))


async def ensure_category_paths(session: AsyncSession, paths: list[str]) -> dict[str, int]:
    """Resolve paths like "Men > Shoes" to ids, creating the missing categories along the way."""
    wanted: dict[str, list[str]] = {}
    for raw in paths:
        parts = [p.strip() for p in raw.split(">") if p.strip()]
        if parts:
            wanted[PATH_SEPARATOR.join(parts)] = parts
    if not wanted:
        return {}
    prefixes = {PATH_SEPARATOR.join(parts[: i + 1]) for parts in wanted.values() for i in range(len(parts))}
    # same-named siblings share a path: the oldest category answers it (dict() keeps the last row)
    lookup = select(Category.path, Category.id).where(Category.path.in_(prefixes)).order_by(Category.id.desc())
    existing = dict((await session.execute(lookup)).all())
    if prefixes - existing.keys():
        await _lock_tree(session)  # then read again: a concurrent import may have created some meanwhile
        existing = dict((await session.execute(lookup)).all())
    for path in sorted(prefixes, key=lambda p: p.count(PATH_SEPARATOR)):
        if path in existing:
            continue
        parent_path, _, name = path.rpartition(PATH_SEPARATOR)
        category = Category(name=name, parent_id=existing.get(parent_path) if parent_path else None, path=path)
        session.add(category)
        await session.flush()
        existing[path] = category.id
    return {path: existing[path] for path in wanted}


async def category_paths(session: AsyncSession, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict((await session.execute(select(Category.id, Category.path).where(Category.id.in_(ids)))).all())


async def existing_category_ids(session: AsyncSession, ids: set[int]) -> set[int]:
    if not ids:
        return set()
    return set(await session.scalars(select(Category.id).where(Category.id.in_(ids))))


# --- views ----------------------------------------------------------------------------------


async def get_view(session: AsyncSession, view_id: int) -> View:
    view = await session.scalar(select(View).where(View.id == view_id))
    if view is None:
        raise NotFound(f"View {view_id} not found")
    return view


async def list_views(session: AsyncSession) -> list[View]:
    return list(await session.scalars(select(View).order_by(View.id)))


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
    await session.flush()
    await session.refresh(view)
    return view


async def patch_view(session: AsyncSession, view_id: int, body: ViewPatch) -> View:
    view = await get_view(session, view_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "name" in changes:
        await _check_view_name(session, changes["name"], view.id)
    if changes.get("is_default"):
        await _clear_default(session, except_id=view.id)
    for key, value in changes.items():
        setattr(view, key, value)
    await session.flush()
    await session.refresh(view)
    return view


async def delete_view(session: AsyncSession, view_id: int) -> None:
    await get_view(session, view_id)
    await session.execute(delete(View).where(View.id == view_id))
