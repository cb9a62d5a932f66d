"""The PIMS `/v/pc/{categoryId}` read: a fixed number of lean SQL statements per request.

1. context: schema fields, default locale, the named and default views and the category
   subtree, in one statement;
2. the exact match count;
3. the page, with category paths, each parent's variations (SKU and variation-attribute
   values) and each variation's parent attributes joined in the same statement — no query
   per product, whatever the page size. Skipped when the page lies past the last match.
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.fields import FieldDef
from app.db import read_connection, tenant_is, tenant_of
from app.errors import BadRequest, NotFound
from app.mirror.reads import Mirror, MirrorQuery
from app.pims import render
from app.pims.filters import ID_ORDER, add_filter_conditions, order_sql, parse_filters
from app.products.queries import SqlWhere
from app.products.service import SMALL_SET_ROWS
from app.query.categories import SUBTREE_CTE
from app.query.compiling import add_conditions
from app.query.models import BUILTINS, Check, Clause, Test

DEFAULT_LOCALE = "en-us"
# variations listed per parent (a page of 200 parents stays bounded in memory)
MAX_VARIATIONS = 1000
MAX_VIEW_NAME = 255

CONTEXT_SQL = f"""
WITH RECURSIVE {SUBTREE_CTE.format(tenant="$1", roots="ARRAY[$3::bigint]")}
SELECT s.fields::text AS fields,
       s.default_locale,
       (SELECT v.attributes FROM views v WHERE {tenant_is("v")} AND v.name = $2) AS named_view,
       (SELECT v.attributes FROM views v WHERE {tenant_is("v")} AND v.is_default) AS default_view,
       (SELECT array_agg(id) FROM subtree) AS category_ids
FROM (VALUES (1)) AS one(x)
LEFT JOIN product_schemas s ON {tenant_is("s")}
"""

# `{where}` starts with the tenant's predicate too (SqlWhere.of_tenant); repeating it here keeps
# the statement visibly scoped and costs nothing (the planner merges equal conditions)
PAGE_SQL = f"""
WITH page AS (
    SELECT p.id, p.sku, p.name, p.status, p.categories, p.variation_of, p.variation_attributes, p.data
    FROM {{source}}
    WHERE {tenant_is("p")} AND {{where}}
    ORDER BY {{page_order}}
    LIMIT {{limit}} OFFSET {{offset}}
)
SELECT p.sku, p.name, p.status, p.variation_of, p.variation_attributes, p.data::text AS data,
       ARRAY(SELECT c.path FROM unnest(p.categories) WITH ORDINALITY AS u(id, ord)
             JOIN categories c ON {tenant_is("c")} AND c.id = u.id
             ORDER BY u.ord) AS category_paths,
       family.variations::text AS variations,
       parent.variation_attributes AS parent_variation_attributes
FROM page p
LEFT JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_array(v.sku, v.vals) ORDER BY v.sku) AS variations
    FROM (
        SELECT ch.sku,
               (SELECT jsonb_object_agg(k.name, ch.data -> k.name)
                FROM unnest(p.variation_attributes) AS k(name) WHERE ch.data ? k.name) AS vals
        FROM products ch
        WHERE {tenant_is("ch")} AND ch.variation_of = p.sku AND ch.status <> 'deleted'
        ORDER BY ch.sku
        LIMIT {{max_variations}}
    ) v
) family ON TRUE
LEFT JOIN products parent ON {tenant_is("parent")} AND parent.sku = p.variation_of
ORDER BY {{order}}
"""


@dataclass(frozen=True)
class Context:
    fields: dict[str, FieldDef]
    view_fields: list[FieldDef]
    locale: str
    category_ids: list[int] | None  # None: every category


@lru_cache(maxsize=64)
def _parse_fields(text: str | None) -> tuple[FieldDef, ...]:
    """The schema's fields, less those named like a PIMS built-in attribute (`title`, `variation_skus`,
    `variation_matrix`): the built-in wins in attributes, definitions, filters and sort."""
    fields = (FieldDef.model_validate(f) for f in orjson.loads(text or "[]"))
    return tuple(f for f in fields if f.name not in render.BUILTIN_ATTRIBUTES)


def _view_fields(fields: tuple[FieldDef, ...], attributes: list[str] | None) -> list[FieldDef]:
    """The schema fields of a view, in the view's order; every field without a view."""
    if attributes is None:
        return list(fields)
    by_name = {f.name: f for f in fields}
    return [by_name[name] for name in dict.fromkeys(attributes) if name in by_name]


async def load_context(
    session: AsyncSession, *, category_id: int, locale: str | None, view_name: str | None
) -> Context:
    conn = await read_connection(session)
    if view_name is not None and len(view_name) > MAX_VIEW_NAME:
        raise BadRequest(f"Unknown view {view_name[:40]!r}…")
    row = await conn.fetchrow(CONTEXT_SQL, tenant_of(session), view_name, category_id)
    if category_id != 0 and row["category_ids"] is None:
        raise NotFound(f"Category {category_id} not found")
    if view_name is not None:
        if row["named_view"] is None:
            raise BadRequest(f"Unknown view {view_name!r} (ApiView header)")
        attributes: list[Any] | None = list(row["named_view"])
    else:
        attributes = list(row["default_view"]) if row["default_view"] is not None else None
    fields = _parse_fields(row["fields"])
    return Context(
        fields={f.name: f for f in fields},
        view_fields=_view_fields(fields, attributes),
        locale=locale or row["default_locale"] or DEFAULT_LOCALE,
        category_ids=list(row["category_ids"]) if category_id != 0 else None,
    )


@dataclass
class Queries:
    """The count and page statements of one request (the benchmark runs these very statements)."""

    count_sql: str
    count_params: list[Any]
    predicate: Clause | None  # the filter as one tree, for the read model (None: SQL only)
    page_where: SqlWhere
    order: str
    page_size: int
    offset: int
    selective: bool  # filtered by category or by an attribute other than status

    def fenced(self, total: int) -> bool:
        """The product list's fence: a selective filter with few matches reads its own index and sorts them,
        rather than letting the planner walk the id index hoping to meet matches early. Without a selective
        filter nearly every row matches, and walking the id index is the best plan whatever the count."""
        return self.selective and total <= SMALL_SET_ROWS

    def page(self, total: int, *, probe: int | None = None) -> tuple[str, list[Any]] | None:
        """The page statement, or None when the page lies past the last match. `probe`: in id
        order, the filters apply to the tenant's first `probe` products only (a bounded walk of
        the id index; the caller checks that it found the page)."""
        if self.offset >= total:
            return None
        where = SqlWhere(params=list(self.page_where.params), conditions=self.page_where.conditions)
        source = "products p"
        if probe is not None:
            assert self.order == ID_ORDER
            source = (
                f"(SELECT * FROM products p WHERE {tenant_is('p')} "
                f"ORDER BY p.id LIMIT {int(probe)}) p"
            )
        sql = PAGE_SQL.format(
            source=source,
            where=where.sql,
            page_order=self.order.replace("p.id", "(p.id + 0)")
            if self.fenced(total)
            else self.order,
            order=self.order,
            limit=where.bind(self.page_size),
            offset=where.bind(self.offset),
            max_variations=MAX_VARIATIONS,
        )
        return sql, where.params


async def _probed_page(conn, queries: Queries, total: int, query: MirrorQuery) -> list[Any] | None:
    """With the read model's count: a filtered page in id order from a bounded walk of the id
    index when its matches are common (the planner, which cannot tell, may plan a parallel scan
    that costs more to start than the walk); None when it is not such a page, or the walk fell
    short."""
    if queries.order != ID_ORDER or len(queries.page_where.conditions) < 2:
        return None
    offset = queries.offset
    if offset >= total:
        return []
    probe = query.id_walk(offset + queries.page_size, total)
    if probe is None:
        return None
    page = queries.page(total, probe=probe)
    assert page is not None
    rows = await conn.fetch(page[0], *page[1])
    return rows if len(rows) >= min(queries.page_size, total - offset) else None


def build_queries(
    ctx: Context,
    *,
    tenant_id: int,
    specs: dict[str, Any],
    sort: str | None,
    page_size: int,
    page_num: int,
) -> Queries:
    where = SqlWhere.of_tenant(tenant_id)
    tenant = "$1"  # the page statement refers to it by number
    if ctx.category_ids is not None:
        add_conditions(
            where, Test(Check.categories_overlap, BUILTINS["category"], ctx.category_ids)
        )
    add_filter_conditions(where, specs, ctx.fields, tenant_placeholder=tenant)
    page_where = SqlWhere(params=list(where.params), conditions=where.conditions)
    order = order_sql(
        page_where, sort, ctx.fields
    )  # its parameters only exist in the page statement
    return Queries(
        count_sql=f"SELECT count(*) FROM products p WHERE {where.sql}",
        count_params=where.params,
        predicate=where.predicate,
        page_where=page_where,
        order=order,
        page_size=page_size,
        offset=(page_num - 1) * page_size,
        selective=ctx.category_ids is not None or any(name != "status" for name in specs),
    )


async def pims_products(
    session: AsyncSession,
    *,
    category_id: int,
    locale: str | None,
    view_name: str | None,
    filters: str | None,
    sort: str | None,
    page_size: int,
    page_num: int,
    params: list[tuple[str, str]],
    mirror: Mirror | None = None,
) -> dict[str, Any]:
    """The response body as a JSON-ready dict; with `mirror`, the count comes from the read
    model when it may answer (`app.mirror.reads`)."""
    ctx = await load_context(session, category_id=category_id, locale=locale, view_name=view_name)
    specs = parse_filters(filters, params, ctx.fields)
    queries = build_queries(
        ctx,
        tenant_id=tenant_of(session),
        specs=specs,
        sort=sort,
        page_size=page_size,
        page_num=page_num,
    )
    conn = await read_connection(session)
    query = await mirror.query(conn, tenant_of(session), queries.predicate) if mirror else None
    total = await query.count() if query is not None else None
    rows = None
    if total is not None and query is not None:
        rows = await _probed_page(conn, queries, total, query)
    if total is None:
        total = await conn.fetchval(queries.count_sql, *queries.count_params)
    if rows is None:
        page = queries.page(total)
        rows = await conn.fetch(page[0], *page[1]) if page else []

    products = []
    for row in rows:
        item = {
            "sku": row["sku"],
            "name": row["name"],
            "status": row["status"],
            "category_paths": row["category_paths"],
            "variation_of": row["variation_of"],
            "variation_attributes": row["variation_attributes"],
            "parent_variation_attributes": row["parent_variation_attributes"],
            "data": render.parse_data(row["data"]),
            "children": render.parse_variations(row["variations"]),
        }
        attributes = render.product_attributes(item, view_fields=ctx.view_fields, fields=ctx.fields)
        products.append({"data": {"attributes": attributes}, "sku": row["sku"]})
    return {
        "products": products,
        "definition": render.definitions(ctx.view_fields, ctx.locale),
        "status": "OK",
        "sku_count": total,
    }
