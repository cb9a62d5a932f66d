"""Products: lean reads (SQL straight to JSON bytes), ORM writes, bulk upsert, facets."""

import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog
from app.catalog.fields import CoercionError, FieldDef, coerce_data
from app.db import (
    ReadSource,
    TenantReader,
    driver_connection,
    one_or_not_found,
    read_connection,
    reading,
    tenant_is,
    tenant_of,
)
from app.errors import BadRequest, Conflict, NotFound
from app.etags import check_if_match
from app.mirror.reads import Mirror
from app.models import Product
from app.pagination import BAD_CURSOR, decode_cursor, encode_cursor
from app.products.queries import (
    facet_fields,
    key_text,
    keyset_condition,
    ordering_terms,
    ordering_tokens,
)
from app.products.rules import data_too_large
from app.products.schemas import BulkResult, ProductIn, ProductPatch
from app.products.upsert import unique_conflicts, upsert_products
from app.query.categories import category_subtrees
from app.query.compiling import SqlWhere, add_conditions
from app.query.models import Clause, DefinitionError, Junction
from app.query.parsing import category_ids, parse_definition, resolve
from app.query.querystring import (
    CONTROL_PARAMS,
    PAGING_PARAMS,
    parse_builtin_filters,
    parse_field_filter,
)
from app.responses import json_text

PRODUCT_COLUMNS = (
    "p.id, p.sku, p.name, p.status, p.categories, p.variation_of, p.variation_attributes, "
    "p.data::text AS data, p.created_at, p.updated_at"
)
FACET_LIMIT = 100


def product_json(row) -> dict[str, Any]:
    """A product as a JSON-ready dict; `data` passes through as the JSON text Postgres produced."""
    return {
        "id": row["id"],
        "sku": row["sku"],
        "name": row["name"],
        "status": row["status"],
        "categories": row["categories"],
        "variation_of": row["variation_of"],
        "variation_attributes": row["variation_attributes"],
        "data": orjson.Fragment(row["data"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_UTC_Z)


async def get_product_tagged(
    source: AsyncSession | TenantReader, product_id: int
) -> tuple[dict[str, Any], int]:
    """The product as `get_product_json` and its row version (its ETag, app/etags.py)."""
    async with reading(source) as conn:
        row = await conn.fetchrow(
            f"""SELECT {PRODUCT_COLUMNS}, p.xmin::text::bigint AS version
                FROM products p WHERE {tenant_is("p")} AND p.id = $2""",
            tenant_of(source),
            product_id,
        )
    if row is None:
        raise NotFound(f"Product {product_id} not found")
    return product_json(row), row["version"]


async def get_product_json(source: AsyncSession | TenantReader, product_id: int) -> dict[str, Any]:
    return (await get_product_tagged(source, product_id))[0]


async def products_by_ids(session: AsyncSession, ids: list[int]) -> list[dict[str, Any]]:
    """Products of this tenant with these ids, in the given order; missing ids are skipped."""
    if not ids:
        return []
    conn = await read_connection(session)
    rows = await conn.fetch(
        # LATERAL: one primary-key probe per id, whatever the statistics say
        f"""SELECT {PRODUCT_COLUMNS} FROM unnest($2::bigint[]) WITH ORDINALITY AS w(id, ord)
            CROSS JOIN LATERAL (SELECT * FROM products WHERE id = w.id AND {tenant_is("products")}) p ORDER BY w.ord""",
        tenant_of(session),
        ids,
    )
    return [product_json(r) for r in rows]


# --- list and facets ------------------------------------------------------------------------


async def build_filters(
    session: AsyncSession | TenantReader,
    fields: dict[str, FieldDef],
    params: list[tuple[str, str]],
    *,
    q: str | None,
    status: str | None,
    category: int | None,
    sku: str | None,
    sku_in: str | None,
) -> SqlWhere:
    """The WHERE clause of the list's query-string filters: the tenant's, then one condition per filter."""
    category_ids = await catalog.subtree_ids(session, category) if category is not None else None
    tests = parse_builtin_filters(
        q=q, status=status, category_ids=category_ids, sku=sku, sku_in=sku_in
    )
    tests += [
        parse_field_filter(fields, key, value) for key, value in params if key not in CONTROL_PARAMS
    ]
    return tenant_where(session, Junction("all", tuple(tests)))


async def search_filters(
    source: AsyncSession | TenantReader, fields: dict[str, FieldDef], definition: Any
) -> SqlWhere:
    """The WHERE clause of a search's `where` (the predicate DSL): the tenant's, then the predicate's."""
    try:
        node = parse_definition(definition)
        roots = category_ids(node)
        subtrees = {}
        if roots:
            async with reading(source) as conn:
                subtrees = await category_subtrees(conn, tenant_of(source), roots)
        clause = resolve(node, fields, subtrees=subtrees)
    except DefinitionError as exc:
        raise BadRequest(f"where: {exc}") from None
    return tenant_where(source, clause)


def tenant_where(session: AsyncSession | TenantReader, clause: Clause) -> SqlWhere:
    """The tenant's predicate, then the clause's conditions."""
    where = SqlWhere.of_tenant(tenant_of(session))
    add_conditions(where, clause)
    return where


# A filtered list reads its matches (their sort keys only) once and takes both the count
# and the page from that one scan: a trigram or GIN bitmap scan is the expensive part, and
# a count followed by a page would run it twice.
# - Ordered by a column with an index (id, sku): read at most SMALL_SET_ROWS matches; a
#   larger match set is counted and then paged by walking that index, which stops after one
#   page. Only below the cap is a bitmap scan plus sort the right plan: the planner, which
#   guesses JSONB selectivity, might otherwise walk the whole id index looking for a rare
#   value (see performance-notes.md).
# - Ordered by anything else: every match has to be sorted anyway, so always one scan.
SMALL_SET_ROWS = 50_000
INDEXED_ORDERINGS = frozenset({"p.id", "p.sku"})


def one_scan_query(
    where: SqlWhere, fields: dict[str, FieldDef], *, ordering: str | None, page: int, page_size: int
) -> tuple[str, list[Any], bool]:
    """One statement: the total and the page, both from one scan of the matches.

    Returns (sql, params, capped): when capped, a total over SMALL_SET_ROWS means the
    statement stopped early, and its page is empty."""
    query = SqlWhere(params=list(where.params), conditions=where.conditions)
    terms = ordering_terms(query, fields, ordering)  # may bind field names: its own parameter list
    capped = terms[0].expr in INDEXED_ORDERINGS
    keys = ", ".join(f"{t.expr} AS k{i}" for i, t in enumerate(terms))
    order_m = ", ".join(f"m.k{i} {t.direction}" for i, t in enumerate(terms))
    order_x = ", ".join(f"x.k{i} {t.direction}" for i, t in enumerate(terms))
    last = len(terms) - 1  # always p.id
    n = len(query.params)
    sql = f"""
        WITH m AS MATERIALIZED (
            SELECT {keys} FROM products p WHERE {where.sql} {f"LIMIT {SMALL_SET_ROWS + 1}" if capped else ""}
        ), page AS MATERIALIZED (
            SELECT * FROM m ORDER BY {order_m} LIMIT ${n + 1} OFFSET ${n + 2}
        )
        SELECT c.total, x.* FROM (SELECT count(*) AS total FROM m) c
        LEFT JOIN LATERAL (
            SELECT page.*, {PRODUCT_COLUMNS} FROM page JOIN products p ON p.id = page.k{last}
        ) x ON {f"c.total <= {SMALL_SET_ROWS}" if capped else "true"}
        ORDER BY {order_x}"""
    return sql, [*query.params, page_size, (page - 1) * page_size], capped


# A filtered cursor page ordered by an indexed column first walks that index for this many rows
# and filters them: a common value fills the page from there at once (a GIN bitmap would fetch
# and sort every match, ~100 ms for 20,000 of them); a rare one falls back to the planner's plan.
PROBE_ROWS = 5_000
DESC_NULLS_LAST = "DESC NULLS LAST"  # a data field's descending order (queries.ordering_terms)
WALKABLE_ORDERINGS = INDEXED_ORDERINGS | {"p.updated_at"}


@dataclass(frozen=True, slots=True)
class Listing:
    """A page of the product list to read: the products `where` keeps (`fields`: the tenant's
    schema) in `ordering`, the page by number (`page`), or the page after the sort keys of a
    cursor (`after`; `page` is then not read)."""

    where: SqlWhere
    fields: dict[str, FieldDef]
    ordering: str | None
    page: int
    page_size: int
    after: list[Any] | None = None


def page_query(listing: Listing, *, probe: int | None = None) -> tuple[str, list[Any]]:
    """A page of products in the list's order, with its sort keys (`k0`…): by offset (`page`), or
    after the keys of a cursor (`after`, a keyset read: one index range at any depth when the first
    ordering term has an index). `probe`: the filters apply to the first `probe` rows after the
    cursor in that order only (the tenant condition stays inside: `where.conditions[0]`)."""
    where, fields, ordering = listing.where, listing.fields, listing.ordering
    page, page_size, after = listing.page, listing.page_size, listing.after
    query = SqlWhere(params=list(where.params), conditions=list(where.conditions))
    terms = ordering_terms(query, fields, ordering)  # may bind field names: its own parameter list
    if after is not None:
        query.add(keyset_condition(query, terms, after))
    order_by = ", ".join(f"{t.expr} {t.direction}" for t in terms)
    keys = ", ".join(f"{t.expr} AS k{i}" for i, t in enumerate(terms))
    n = len(query.params)
    source = "products p"
    conditions = query.sql
    if probe is not None:
        # where's tenant is its first parameter ($1, SqlWhere.of_tenant); then the keyset
        keyset = " AND ".join(["TRUE", *query.conditions[len(where.conditions) :]])
        source = (
            f"(SELECT * FROM products p WHERE {tenant_is('p')} AND {keyset} "
            f"ORDER BY {order_by} LIMIT {int(probe)}) p"
        )
        conditions = " AND ".join(where.conditions[1:]) or "TRUE"
    sql = (
        f"SELECT {PRODUCT_COLUMNS}, {keys} FROM {source} WHERE {conditions} "
        f"ORDER BY {order_by} LIMIT ${n + 1} OFFSET ${n + 2}"
    )
    first = terms[0]
    if after is None and probe is None and len(terms) == 2 and first.direction == DESC_NULLS_LAST:
        # `-price`: a B-tree read backwards gives DESC NULLS FIRST, so the typed index
        # (typed_indexes.py) answers the rows with a value and the NULLs as two ranges of it
        def branch(test: str, order: str) -> str:
            return (
                f"SELECT {PRODUCT_COLUMNS}, {keys} FROM {source} WHERE {conditions} "
                f"AND {first.expr} {test} ORDER BY {order} LIMIT (${n + 1}::bigint + ${n + 2}::bigint)"
            )

        # both in the index's backward order: the NULL range too, whose size the planner cannot
        # estimate (it ignores a partial index's statistics) and would otherwise look for by
        # walking the primary key through every row of the table
        valued = branch("IS NOT NULL", f"{first.expr} DESC, p.id DESC")
        nulls = branch("IS NULL", f"{first.expr} DESC, p.id DESC")
        sql = (
            f"SELECT * FROM (({valued}) UNION ALL ({nulls})) p "
            f"ORDER BY p.k0 {DESC_NULLS_LAST}, p.k1 DESC LIMIT ${n + 1} OFFSET ${n + 2}"
        )
    offset = 0 if after is not None else (page - 1) * page_size
    # a cursor page reads one row more: whether there is a next page, without a count
    limit = page_size + 1 if after is not None else page_size
    return sql, [*query.params, limit, offset]


# --- cursors ---------------------------------------------------------------------------------

PRODUCT_LIST = "products"
# list parameters that are not filters: a cursor is valid with any of them
CURSOR_MISMATCH = (
    "cursor: it was issued for other filters or another ordering; send it with the filters and "
    "ordering of the request that returned it (the `next` link has them), or start again without it"
)


def filters_fingerprint(kind: str, filters: Any) -> str:
    """A short digest of a list's filters as the client sent them (query items in order, or a
    search's `where`): a cursor carries it, so that one used with other filters is refused."""
    raw = orjson.dumps([kind, filters], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()[:16]


def query_filters(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in params if k not in PAGING_PARAMS)


def encode_list_cursor(ordering: str | None, fingerprint: str, keys: list[str | None]) -> str:
    return encode_cursor(
        PRODUCT_LIST, {"o": ",".join(ordering_tokens(ordering)), "f": fingerprint, "k": keys}
    )


def decode_list_cursor(cursor: str, ordering: str | None, fingerprint: str) -> list[Any]:
    """The sort keys a cursor resumes after; a 400 when it belongs to other filters or ordering."""
    payload = decode_cursor(PRODUCT_LIST, cursor)
    keys = payload.get("k")
    if not isinstance(keys, list) or not isinstance(payload.get("o"), str):
        raise BadRequest(BAD_CURSOR, param="cursor")
    if payload["o"] != ",".join(ordering_tokens(ordering)) or payload.get("f") != fingerprint:
        raise BadRequest(CURSOR_MISMATCH, param="cursor")
    return keys


class ListPage(NamedTuple):
    total: int | None  # None on a cursor page: a count would scan every match at any depth
    results: list[dict[str, Any]]
    next_keys: list[str | None] | None  # the sort keys of the last row, when a next page exists


def _keys_of(row, terms_count: int) -> list[str | None]:
    return [key_text(row[f"k{i}"]) for i in range(terms_count)]


async def list_products(
    source: ReadSource, listing: Listing, *, mirror: Mirror | None = None
) -> ListPage:
    """A page of a list: the count and a page by number, or (`after`: a cursor's keys) the page
    after those keys. The benchmarks time this same code over a bare asyncpg connection.

    With `mirror`, a page by number takes its count (and, in id order, its ids) from the read
    model when the model may answer (`app.mirror.reads`); the rows always come from Postgres."""
    where, fields, ordering = listing.where, listing.fields, listing.ordering
    page, page_size, after = listing.page, listing.page_size, listing.after
    terms = ordering_terms(SqlWhere(), fields, ordering)  # a bad ordering is a 400 before any query
    async with reading(source) as conn:
        n_terms = len(terms)
        if after is None and mirror is not None:
            answer = await _mirror_page(conn, mirror, listing)
            if answer is not None:
                return answer
        if after is not None:
            rows = []
            if len(where.conditions) > 1 and terms[0].expr in WALKABLE_ORDERINGS:
                sql, params = page_query(listing, probe=PROBE_ROWS)
                rows = await conn.fetch(sql, *params)
            if len(rows) <= page_size:  # unfiltered, or too few matches near the cursor
                sql, params = page_query(listing)
                rows = await conn.fetch(sql, *params)
            more = len(rows) > page_size
            rows = rows[:page_size]
            next_keys = _keys_of(rows[-1], n_terms) if more else None
            return ListPage(None, [product_json(r) for r in rows], next_keys)
        found: list[Any] | None = None
        if len(where.conditions) > 1:  # filtered (the first condition is the tenant's)
            sql, params, capped = one_scan_query(
                where, fields, ordering=ordering, page=page, page_size=page_size
            )
            scanned = await conn.fetch(sql, *params)
            count = scanned[0]["total"]
            if not capped or count <= SMALL_SET_ROWS:
                found = [r for r in scanned if r["id"] is not None]
        if found is None:
            count = await conn.fetchval(
                f"SELECT count(*) FROM products p WHERE {where.sql}", *where.params
            )
            found = []
            if (page - 1) * page_size < count:
                sql, params = page_query(listing)
                found = await conn.fetch(sql, *params)
        more = bool(found) and page * page_size < count
        return ListPage(
            count, [product_json(r) for r in found], _keys_of(found[-1], n_terms) if more else None
        )


_BY_IDS_SQL = f"""SELECT {PRODUCT_COLUMNS}, p.id AS k0 FROM unnest($2::bigint[]) WITH ORDINALITY AS w(id, ord)
    CROSS JOIN LATERAL (SELECT * FROM products WHERE id = w.id AND {tenant_is("products")}) p ORDER BY w.ord"""


async def _mirror_page(conn, mirror: Mirror, listing: Listing) -> ListPage | None:
    """A page by number with the read model's count: in id order its ids too (the rows by id
    from Postgres); in another order the page from Postgres, walking the ordering's index when
    the matches are many. None: Postgres answers the whole list."""
    where, fields, ordering = listing.where, listing.fields, listing.ordering
    page, page_size = listing.page, listing.page_size
    tenant_id = where.params[0]  # SqlWhere.of_tenant's
    query = await mirror.query(conn, tenant_id, where.predicate)
    if query is None:
        return None
    count = await query.count()
    if count is None:
        return None
    terms = ordering_terms(SqlWhere(), fields, ordering)
    offset = (page - 1) * page_size
    found: list[Any] = []
    if offset < count:
        by_id, filtered = len(terms) == 1, len(where.conditions) > 1
        if not filtered or (not by_id and count > SMALL_SET_ROWS):
            sql, params = page_query(listing)
            found = await conn.fetch(sql, *params)
        elif not by_id:
            return None  # few matches in another order: one Postgres scan reads and sorts them
        else:
            # the rows Postgres would walk in the id index, filtering, to fill the page
            probe = query.id_walk(offset + page_size, count)
            if probe is not None:
                sql, params = page_query(listing, probe=probe)
                found = await conn.fetch(sql, *params)
                if len(found) < min(page_size, count - offset):
                    found = []  # the walk fell short: the model's ids
            if not found:
                ids = await query.ids(
                    limit=page_size, offset=offset, descending=terms[0].direction == "DESC"
                )
                if ids is None:
                    return None
                found = await conn.fetch(_BY_IDS_SQL, tenant_id, ids)
    more = bool(found) and page * page_size < count
    return ListPage(
        count, [product_json(r) for r in found], _keys_of(found[-1], len(terms)) if more else None
    )


async def facets(
    source: ReadSource,
    where: SqlWhere,
    fields: dict[str, FieldDef],
    *,
    mirror: Mirror | None = None,
) -> dict[str, Any]:
    """Facets of the matches (the benchmarks time this same code over a bare asyncpg connection).

    Without filters the counts come from `facet_counts`, which triggers keep exact on every
    write (migration 0004); with filters, one grouped query per facet field over the matches.
    With `mirror`, the total (and filtered facets) come from the read model when it may answer.
    """
    async with reading(source) as conn:
        faceted = facet_fields(fields)
        filtered = len(where.conditions) > 1  # the first condition is the tenant's
        query = (
            await mirror.query(
                conn, where.params[0], where.predicate, faceted=faceted if filtered else None
            )
            if mirror
            else None
        )
        total = await query.count() if query is not None else None
        if total is not None and query is not None and filtered:
            found = await query.facets(faceted)
            if found is not None:
                return {"total": total, "facets": found}
        if total is None:
            total = await conn.fetchval(
                f"SELECT count(*) FROM products p WHERE {where.sql}", *where.params
            )
        result: dict[str, list[dict[str, Any]]] = {f.name: [] for f in faceted}
        if not faceted or total == 0:
            return {"total": total, "facets": result}
        if not filtered:
            rows = await conn.fetch(
                f"""SELECT f.field AS key, t.value AS val, t.n FROM unnest($2::text[]) AS f(field)
                    CROSS JOIN LATERAL (
                        SELECT value, n FROM facet_counts
                        WHERE {tenant_is("facet_counts")} AND field = f.field AND n > 0
                        ORDER BY n DESC, value LIMIT {FACET_LIMIT}
                    ) t""",
                where.params[0],
                [f.name for f in faceted],
            )
        else:
            n = len(where.params)
            parts = []
            for i, field_def in enumerate(faceted, start=n + 1):
                key = f"${i}::text"
                if field_def.type == "array":
                    parts.append(
                        f"""(SELECT {key} AS key, e.val, count(*) AS n FROM products p
                            CROSS JOIN LATERAL (SELECT DISTINCT jsonb_array_elements_text(
                                CASE WHEN jsonb_typeof(p.data -> {key}) = 'array' THEN p.data -> {key} END) AS val) e
                            WHERE {where.sql} GROUP BY e.val ORDER BY n DESC, e.val LIMIT {FACET_LIMIT})"""
                    )
                else:
                    parts.append(
                        f"""(SELECT {key} AS key, p.data ->> {key} AS val, count(*) AS n FROM products p
                            WHERE {where.sql} AND jsonb_typeof(p.data -> {key}) = 'string'
                            GROUP BY 2 ORDER BY n DESC, val LIMIT {FACET_LIMIT})"""
                    )
            rows = await conn.fetch(
                " UNION ALL ".join(parts), *where.params, *[f.name for f in faceted]
            )
        for row in rows:
            result[row["key"]].append({"value": row["val"], "count": row["n"]})
        return {"total": total, "facets": result}


# --- writes ---------------------------------------------------------------------------------


async def _check_categories(session: AsyncSession, ids: list[int]) -> None:
    missing = set(ids) - await catalog.existing_category_ids(session, set(ids))
    if missing:
        raise BadRequest(f"categories: unknown category ids {sorted(missing)}", param="categories")


async def _check_unique(
    session: AsyncSession, fields: dict[str, FieldDef], sku: str, data: dict[str, Any]
) -> None:
    if any(f.unique for f in fields.values()):
        conflicts = await unique_conflicts(
            await driver_connection(session), tenant_of(session), fields, [(sku, data)]
        )
        if conflicts:
            raise Conflict(conflicts[sku])


def _coerce(fields: dict[str, FieldDef], data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    try:
        return coerce_data(fields, data, partial=partial)
    except CoercionError as exc:
        raise BadRequest(str(exc), param=exc.field) from None


def _check_size(data: dict[str, Any], max_data_bytes: int) -> None:
    # json_text: a client's integer beyond 64 bits (the JSON grammar allows it) is measured too
    too_large = data_too_large(json_text(data), max_data_bytes)
    if too_large:
        raise BadRequest(too_large)


async def create_product(session: AsyncSession, body: ProductIn, *, max_data_bytes: int) -> int:
    fields = await catalog.get_field_map(session)
    data = {k: v for k, v in _coerce(fields, body.data, partial=False).items() if v is not None}
    _check_size(data, max_data_bytes)
    await _check_categories(session, body.categories)
    await _check_unique(session, fields, body.sku, data)
    product = Product(
        sku=body.sku,
        name=body.name,
        status=body.status.value,
        categories=list(dict.fromkeys(body.categories)),
        variation_of=body.variation_of,
        variation_attributes=body.variation_attributes,
        data=data,
    )
    session.add(product)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f"A product with SKU {body.sku!r} already exists") from None
    return product.id


def merge_patch(target: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7396): objects merge key by key at every depth, null removes a key,
    anything else replaces the target."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


async def patch_product(
    session: AsyncSession,
    product_id: int,
    body: ProductPatch,
    *,
    max_data_bytes: int,
    if_match: str | None = None,
) -> None:
    changes = body.model_dump(exclude_unset=True)  # the fields sent (null only where nullable)
    if "categories" in changes:
        # before the row lock: a category delete takes the category lock first, then product rows
        await _check_categories(session, changes["categories"])
    product = await one_or_not_found(
        session,
        select(Product).where(Product.id == product_id),
        f"Product {product_id} not found",
        for_update=True,
    )
    check_if_match(
        if_match, product.version
    )  # under the row lock: one of two same-version writes wins
    for key in ("name", "status", "variation_of", "variation_attributes"):
        if key in changes:
            setattr(product, key, changes[key])
    if "categories" in changes:
        product.categories = list(dict.fromkeys(changes["categories"]))
    if changes.get("data"):
        fields = await catalog.get_field_map(session)
        patch = _coerce(fields, changes["data"], partial=True)
        await _check_unique(
            session, fields, product.sku, {k: v for k, v in patch.items() if v is not None}
        )
        product.data = merge_patch(product.data, patch)
        _check_size(product.data, max_data_bytes)
    await session.flush()


async def delete_product(
    session: AsyncSession, product_id: int, *, if_match: str | None = None
) -> None:
    if if_match is not None:
        product = await one_or_not_found(
            session,
            select(Product).where(Product.id == product_id),
            f"Product {product_id} not found",
            for_update=True,
        )
        check_if_match(if_match, product.version)
    result = await session.execute(
        delete(Product).where(Product.id == product_id).execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]  # a DELETE's result is a CursorResult
        raise NotFound(f"Product {product_id} not found")


async def bulk_upsert(
    session: AsyncSession, items: list[Any], *, max_data_bytes: int
) -> BulkResult:
    fields = await catalog.get_field_map(session)
    result, _rows = await upsert_products(
        session, items=items, fields=fields, max_data_bytes=max_data_bytes
    )
    return result


__all__ = [
    "build_filters",
    "bulk_upsert",
    "create_product",
    "delete_product",
    "dumps",
    "facets",
    "get_product_json",
    "get_product_tagged",
    "list_products",
    "patch_product",
    "products_by_ids",
    "search_filters",
]
