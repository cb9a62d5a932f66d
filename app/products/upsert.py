"""Set-based upsert by SKU, shared by the bulk endpoint and the CSV import.

Per batch: one lookup of the existing SKUs, one INSERT of the new rows and one
UPDATE of the existing ones, each fed by `unnest` over arrays (no per-row round
trips). Rows whose values do not change are not rewritten.

`upsert_products` takes the bulk endpoint's items: `parse_items` validates their
built-ins, then `write_rows` checks and writes them. The CSV import builds its rows
with `UpsertRow.of_valid_item` (its converter has checked and coerced everything
already) and calls `write_rows` itself. `write_rows` composes the steps: the checks
that need the database (`drop_unknown_categories`, `drop_unique_conflicts`), the pure
per-row checks (`validate_rows`) and the locking protocol that writes (`write_valid_rows`).
"""

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.fields import CoercionError, FieldDef, check_required, coerce_data
from app.catalog.service import hold_category_references
from app.db import driver_connection, tenant_is, tenant_of
from app.jobs.locks import Lock, xact_lock
from app.products import rules
from app.products.rules import data_too_large
from app.products.schemas import BulkError, BulkResult
from app.responses import json_text

BUILTIN_KEYS = frozenset(
    {"sku", "name", "status", "categories", "variation_of", "variation_attributes"}
)
# what a product read back carries besides its writable fields: ignored, so that GET output can be sent back
READ_ONLY_KEYS = frozenset({"id", "created_at", "updated_at"})
_NOT_DATA_KEYS = BUILTIN_KEYS | READ_ONLY_KEYS
_MISSING = object()
# writes of a batch that found some of its new SKUs inserted concurrently start again (write_rows)
WRITE_ATTEMPTS = 3
# an escaped NUL in JSON text: \u0000 after an even number of backslashes
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _has_nul(json: str) -> bool:
    # the regex tries every position of the text: rule out the usual case with a substring search first
    return "\\u0000" in json and _JSON_NUL.search(json) is not None


@dataclass(slots=True)
class UpsertRow:
    """One product to write: built-ins validated, `data` as given until `write_rows` coerces it."""

    index: int  # reported with the row's error
    sku: str
    name: str | None
    status: str | None
    categories: list[int] | None
    variation_of: Any  # _MISSING, None or str
    variation_attributes: list[str] | None
    data: dict[str, Any]  # values to set (before coercion, None values mean "remove")
    data_json: str = "{}"  # `data` as JSON text, once coerced
    null_keys: list[str] = field(default_factory=list)  # keys to remove

    @classmethod
    def of_valid_item(cls, index: int, item: dict[str, Any]) -> "UpsertRow":
        """A row from an item whose built-ins are valid and whose data is coerced with the whole
        schema and has no None values (a CSV row from `RowConverter`), its JSON built; nothing is
        checked again. For `write_rows(..., coerced=True)`."""
        data = dict(item)
        return cls(
            index,
            data.pop("sku"),
            data.pop("name", None),
            data.pop("status", None),
            data.pop("categories", None),
            data.pop("variation_of", _MISSING),
            data.pop("variation_attributes", None),
            data,
            json_text(data),
        )


def _has_surrogate(value: Any) -> bool:
    """Whether a lone surrogate is in any string (key or value) of a JSON value (iterative)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not rules.is_unicode(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _data_json(data: dict[str, Any]) -> str:
    """`data` as JSON text; CoercionError for text Postgres refuses (a lone surrogate)."""
    try:
        return orjson.dumps(data).decode()
    except TypeError:  # orjson refuses lone surrogates and integers beyond 64 bits
        if _has_surrogate(data):
            raise CoercionError("data: lone surrogates are not allowed") from None
        return json_text(data)


def _sku_text(value: Any) -> str | None:
    """An item's `sku` as text (a number is accepted and written as text), else None."""
    if type(value) is str:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _parse_builtins(index: int, item: Any) -> UpsertRow:
    # Runs for every item of a bulk request: plain type checks first, one pass over the keys;
    # the rules are those of POST and the import (`app.products.rules`).
    if not isinstance(item, dict):
        raise CoercionError("item must be an object")
    sku = _sku_text(item.get("sku"))
    if sku is None:
        raise CoercionError("sku: is required")
    sku = rules.check_sku(sku)
    name = item.get("name")
    if name is not None:
        if type(name) is not str:
            if not isinstance(name, (str, int, float)) or isinstance(name, bool):
                raise CoercionError("name: must be a non-empty string")
            name = str(name)
        rules.check_name(name)
    status = item.get("status")
    if status is not None:
        rules.check_status(status)
    categories = item.get("categories")
    if categories is not None:
        categories = rules.check_categories(categories)
    variation_of = item.get("variation_of", _MISSING)
    if variation_of is not _MISSING and variation_of is not None:
        rules.check_variation_of(variation_of)
    variation_attributes = item.get("variation_attributes")
    if variation_attributes is not None:
        rules.check_variation_attributes(variation_attributes)
    data = dict(item)
    for key in _NOT_DATA_KEYS:
        data.pop(key, None)
    nested = data.pop("data", None)
    if isinstance(nested, dict):  # accept the product shape too: {"sku":..., "data": {...}}
        data = {**{k: v for k, v in nested.items() if k not in _NOT_DATA_KEYS}, **data}
    elif nested is not None:
        data["data"] = nested
    return UpsertRow(index, sku, name, status, categories, variation_of, variation_attributes, data)


def parse_items(
    items: list[Any], *, index_offset: int = 0
) -> tuple[dict[str, UpsertRow], list[BulkError]]:
    """Rows by SKU from the bulk endpoint's items, and the errors of invalid items (pure).

    A later item with the same SKU wins. `index_offset` shifts reported indexes.
    """
    rows: dict[str, UpsertRow] = {}
    errors: list[BulkError] = []
    for index, item in enumerate(items, start=index_offset):
        try:
            row = _parse_builtins(index, item)
        except (CoercionError, rules.RuleError) as exc:
            sku = _sku_text(item.get("sku")) if isinstance(item, dict) else None
            if sku is not None:
                rows.pop(
                    sku.strip(), None
                )  # it replaces an earlier item with its SKU, as a valid one would
                if not rules.is_unicode(sku):  # reported as an escape: the response is UTF-8
                    sku = sku.encode("utf-8", "backslashreplace").decode()
            errors.append(BulkError(index=index, sku=sku, detail=str(exc)))
            continue
        rows.pop(row.sku, None)  # a later item with the same SKU wins, and is written in its place
        rows[row.sku] = row
    return rows, errors


def _json_list(values: list | None) -> str | None:
    return None if values is None else orjson.dumps(values).decode()


def _id_array(ids: list[int] | None) -> str | None:
    """Category ids as a Postgres array literal (`{3,7}`), cast with `::bigint[]`: a fifth of the
    database's work of reading them from JSON per row. They are ints (`rules.check_categories`,
    or ids the import looked up), so the literal needs no quoting."""
    return None if ids is None else "{" + ",".join(map(str, ids)) + "}"


_INSERT = """
INSERT INTO products (tenant_id, sku, name, status, categories, variation_of, variation_attributes, data)
SELECT $1, t.sku, t.name, t.status,
       t.cats::bigint[],
       t.vof,
       -- most products have none: no JSON to read then
       CASE WHEN t.vattrs = '[]' THEN '{{}}'::text[]
            ELSE ARRAY(SELECT jsonb_array_elements_text(t.vattrs::jsonb)) END,
       t.data::jsonb
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
     AS t(sku, name, status, cats, vof, vattrs, data)
{conflict}{returning}
"""
INSERT_SQL = _INSERT.format(
    conflict="ON CONFLICT (tenant_id, sku) DO NOTHING\n", returning="RETURNING sku"
)
# The first attempt's INSERT: the SKUs were looked up just before, so a conflict is rare (a
# concurrent writer inserted one meanwhile), and it fails the statement (`_insert` answers
# None) instead of skipping the row. ON CONFLICT's speculative insertion (a probe of the SKU
# index and a second WAL record per row) was ~4 us of the ~45 us of backend CPU per row. When
# it succeeds every row went in: it returns none of them.
PLAIN_INSERT_SQL = _INSERT.format(conflict="", returning="")
SKU_CONSTRAINT = "uq_products_tenant_id_sku"

# The INSERT of an import batch written while the batch before it is still being written (see
# app.imports.tasks): its rows go in at once, then it waits for that batch's transaction
# (`Lock.IMPORT_BATCH`, held until it commits) before the statement's AFTER triggers run (the
# triggers of a statement with a data-modifying WITH fire when the whole statement ends). The
# facet and change log triggers lock the tenant's counter rows until commit: this way the earlier
# batch always takes them first, and never waits for the later one.
_GATED = f"""
WITH ins AS ({{insert}}),
gate AS (
    SELECT pg_advisory_xact_lock_shared({Lock.IMPORT_BATCH.key("$1", "$9")})
    FROM (SELECT count(*) FROM ins) inserted
)
{{select}}
"""
GATED_INSERT_SQL = _GATED.format(
    insert=INSERT_SQL, select="SELECT ins.sku FROM ins CROSS JOIN gate"
)
GATED_PLAIN_INSERT_SQL = _GATED.format(
    insert=_INSERT.format(conflict="", returning="RETURNING 1"), select="SELECT FROM gate"
)

# `v` locks the rows in id order before anything is written: concurrent batches that share
# products then wait for each other instead of deadlocking (an UPDATE ... FROM locks rows in
# whatever order its join produces), and each new value is computed from the row's latest
# version (FOR UPDATE re-reads a row changed concurrently), so a concurrent PATCH is not lost.
UPDATE_SQL = f"""
WITH t AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::text[], $8::text[], $9::text[], $10::text[])
        AS t(sku, name, status, cats, set_vof, vof, vattrs, data, null_keys)
), v AS MATERIALIZED (
    SELECT p.id, p.sku, t.data <> '{{}}' AS patches_data,
           COALESCE(t.name, p.name) AS name,
           COALESCE(t.status, p.status) AS status,
           CASE WHEN t.cats IS NULL THEN p.categories ELSE t.cats::bigint[] END AS categories,
           CASE WHEN t.set_vof THEN t.vof ELSE p.variation_of END AS variation_of,
           CASE WHEN t.vattrs IS NULL THEN p.variation_attributes
                ELSE ARRAY(SELECT jsonb_array_elements_text(t.vattrs::jsonb)) END AS variation_attributes,
           (p.data || t.data::jsonb) - CASE WHEN t.null_keys = '[]' THEN '{{}}'::text[]
               ELSE ARRAY(SELECT jsonb_array_elements_text(t.null_keys::jsonb)) END AS data
    FROM t JOIN products p ON {tenant_is("p")} AND p.sku = t.sku
    ORDER BY p.id
    FOR UPDATE OF p
), too_large AS MATERIALIZED (
    -- merged data over the size limit: that row is an error, not written
    SELECT v.id, v.sku FROM v WHERE v.patches_data AND octet_length(v.data::text) > $11
), written AS (
    UPDATE products p
    SET name = v.name, status = v.status, categories = v.categories, variation_of = v.variation_of,
        variation_attributes = v.variation_attributes, data = v.data, updated_at = now()
    FROM v
    WHERE p.id = v.id AND v.id NOT IN (SELECT id FROM too_large)
      AND (p.name, p.status, p.categories, p.variation_of, p.variation_attributes, p.data)
          IS DISTINCT FROM (v.name, v.status, v.categories, v.variation_of, v.variation_attributes, v.data)
    RETURNING 1
)
SELECT ARRAY(SELECT sku FROM too_large) AS too_large, (SELECT count(*) FROM written) AS rewritten
"""


async def unique_conflicts(
    conn, tenant_id: int, fields: dict[str, FieldDef], rows: list[tuple[str, dict[str, Any]]]
) -> dict[str, str]:
    """{sku: reason} for rows whose value of a `unique` field is already used by another product
    (in the database or earlier in `rows`). One query per unique field, answered by the GIN index."""
    conflicts: dict[str, str] = {}
    for name, field_def in fields.items():
        if not field_def.unique or field_def.type == "array":
            continue
        first_owner: dict[str, str] = {}
        for sku, data in rows:
            value = data.get(name)
            if value is None or sku in conflicts:
                continue
            key = json_text(value)
            if key in first_owner and first_owner[key] != sku:
                conflicts[sku] = f"{name}: {value!r} is already used by SKU {first_owner[key]!r}"
            else:
                first_owner.setdefault(key, sku)
        if not first_owner:
            continue
        taken = await conn.fetch(
            f"SELECT sku, (data -> $3::text)::text AS value FROM products WHERE {tenant_is('products')} AND data @> ANY($2::jsonb[])",
            tenant_id,
            [f"{{{orjson.dumps(name).decode()}: {key}}}" for key in first_owner],
            name,
        )
        # a stored owner keeps its value unless this same write gives it another one
        moving_away = {sku for sku, data in rows if data.get(name) is not None}
        for row in taken:
            value = orjson.loads(row["value"])
            owner = first_owner.get(json_text(value))
            if owner is None or owner == row["sku"] or owner in conflicts:
                continue
            if row["sku"] in moving_away:
                continue
            conflicts[owner] = f"{name}: {value!r} is already used by SKU {row['sku']!r}"
    return conflicts


async def _lock_for_writing(conn, tenant_id: int, existing_skus: list[str]) -> None:
    """Lock the batch's existing products in id order, then the tenant's facet counters.

    A batch that updates writes in two statements (INSERT, then UPDATE) and the facet_counts
    trigger of each locks counter rows: another writer could lock them in a crossing order and
    deadlock. So such a batch takes the counters' advisory lock (`Lock.FACET_COUNTS`: the trigger of
    every one-statement write holds it shared, a recount exclusively) exclusively for the rest
    of its transaction, after its product rows, the order single-row writes use too.
    """
    # one round trip: the CTE locks the rows before the lock function runs
    await conn.execute(
        f"""WITH batch_rows AS MATERIALIZED (
               SELECT p.id FROM products p WHERE {tenant_is("p")} AND p.sku = ANY($2::text[])
               ORDER BY p.id FOR UPDATE OF p
           )
           SELECT pg_advisory_xact_lock({Lock.FACET_COUNTS.key("$1")})
           FROM (SELECT count(*) FROM batch_rows) locked""",
        tenant_id,
        existing_skus,
    )


async def _insert(
    conn, tenant_id: int, new_rows: list[UpsertRow], *, gate: str | None, skip_conflicts: bool
) -> set[str] | None:
    """INSERT the rows (sorted by SKU); the SKUs that were inserted (the others exist already).
    Without `skip_conflicts`, None when one exists already: the statement failed, and the
    transaction must roll back to a savepoint. With `gate`, its triggers wait for the
    `Lock.IMPORT_BATCH` of that id (GATED_INSERT_SQL)."""
    gated: tuple[str, ...] = ()
    if gate is None:
        sql = INSERT_SQL if skip_conflicts else PLAIN_INSERT_SQL
    else:
        sql, gated = (GATED_INSERT_SQL if skip_conflicts else GATED_PLAIN_INSERT_SQL), (gate,)
    try:
        answer = await (conn.fetch if skip_conflicts else conn.execute)(
            sql,
            tenant_id,
            [r.sku for r in new_rows],
            [r.name or r.sku for r in new_rows],
            [r.status or "active" for r in new_rows],
            [_id_array(r.categories or []) for r in new_rows],
            [None if r.variation_of is _MISSING else r.variation_of for r in new_rows],
            [_json_list(r.variation_attributes or []) for r in new_rows],
            [r.data_json for r in new_rows],
            *gated,
        )
    except asyncpg.UniqueViolationError as exc:
        if skip_conflicts or exc.constraint_name != SKU_CONSTRAINT:
            raise
        return None
    return {r[0] for r in answer} if skip_conflicts else {r.sku for r in new_rows}


async def existing_skus(conn, tenant_id: int, skus: list[str]) -> set[str]:
    return {
        r[0]
        for r in await conn.fetch(
            f"SELECT sku FROM products WHERE {tenant_is('products')} AND sku = ANY($2::text[])",
            tenant_id,
            skus,
        )
    }


async def upsert_products(
    session: AsyncSession,
    *,
    items: list[Any],
    fields: dict[str, FieldDef],
    index_offset: int = 0,
    known_category_ids: set[int] | None = None,
    max_data_bytes: int,
) -> tuple[BulkResult, list[UpsertRow]]:
    """Validate, coerce and upsert `items`; invalid items are reported, valid ones written.

    Returns the result and the written rows (for callers that need their SKUs).
    `index_offset` shifts reported indexes.
    """
    rows, errors = parse_items(items, index_offset=index_offset)
    result = await write_rows(
        session,
        rows,
        fields=fields,
        known_category_ids=known_category_ids,
        max_data_bytes=max_data_bytes,
    )
    if errors:
        result.errors = sorted([*errors, *result.errors], key=lambda e: e.index)
        result.failed = len(result.errors)
    return result, list(rows.values())


async def write_rows(
    session: AsyncSession,
    rows: dict[str, UpsertRow],
    *,
    fields: dict[str, FieldDef],
    coerced: bool = False,
    known_category_ids: set[int] | None = None,
    max_data_bytes: int,
    gate: str | None = None,
    locked: asyncio.Event | None = None,
) -> BulkResult:
    """Check and upsert `rows` (by SKU); rows that fail a check are reported and left out of `rows`.

    The checks: known categories (`drop_unknown_categories`), each row's data (`validate_rows`),
    unique fields (`drop_unique_conflicts`); then `write_valid_rows` writes what is left. With
    `coerced` (rows from `UpsertRow.of_valid_item`), see `validate_rows`; `gate` and `locked`, see
    `write_valid_rows`.
    """
    tenant_id = tenant_of(session)
    conn = await driver_connection(session)
    errors = await drop_unknown_categories(
        conn, tenant_id, rows, known_category_ids=known_category_ids
    )
    existing = await existing_skus(conn, tenant_id, list(rows)) if rows else set()
    errors += validate_rows(
        rows, fields=fields, existing=existing, coerced=coerced, max_data_bytes=max_data_bytes
    )
    errors += await drop_unique_conflicts(conn, tenant_id, rows, fields=fields)
    result = await write_valid_rows(
        conn,
        tenant_id,
        rows,
        existing=existing,
        max_data_bytes=max_data_bytes,
        gate=gate,
        locked=locked,
    )
    result.errors = sorted([*errors, *result.errors], key=lambda e: e.index)
    result.failed = len(result.errors)
    return result


def _drop(rows: dict[str, UpsertRow], sku: str, detail: str) -> BulkError:
    """Leave the row out of `rows`; its error."""
    return BulkError(index=rows.pop(sku).index, sku=sku, detail=detail)


async def drop_unknown_categories(
    conn, tenant_id: int, rows: dict[str, UpsertRow], *, known_category_ids: set[int] | None = None
) -> list[BulkError]:
    """Errors of the rows naming a category that does not exist, left out of `rows`.

    Holds the tenant's category-reference lock, so the ids found stay until the transaction
    commits; adds them to `known_category_ids` when given.
    """
    wanted = {c for r in rows.values() for c in (r.categories or ())}
    if not wanted:
        return []
    await hold_category_references(conn, tenant_id)
    found = {
        r[0]
        for r in await conn.fetch(
            f"SELECT id FROM categories WHERE {tenant_is('categories')} AND id = ANY($2::bigint[])",
            tenant_id,
            list(wanted),
        )
    }
    if known_category_ids is not None:
        known_category_ids |= found
    missing = wanted - found
    errors = []
    for sku, row in list(rows.items()):
        if missing and (unknown := sorted(set(row.categories or ()) & missing)):
            errors.append(_drop(rows, sku, f"categories: unknown category ids {unknown}"))
    return errors


def validate_rows(
    rows: dict[str, UpsertRow],
    *,
    fields: dict[str, FieldDef],
    existing: set[str],
    coerced: bool = False,
    max_data_bytes: int,
) -> list[BulkError]:
    """Pure: check each row's data; errors of the rows that fail, left out of `rows`.

    The data is coerced with `fields` (required fields only for new products: SKUs not in
    `existing`), its JSON built, and refused with NUL characters or over `max_data_bytes`. With
    `coerced` (rows from `UpsertRow.of_valid_item`: coerced with the whole schema, JSON built),
    only the required fields of new products are checked.
    """
    errors = []
    for sku, row in list(rows.items()):
        partial = sku in existing
        try:
            if not coerced:
                values = coerce_data(fields, row.data, partial=partial)
                row.data = {k: v for k, v in values.items() if v is not None}
                row.null_keys = [k for k, v in values.items() if v is None]
                if _has_surrogate(row.null_keys):  # they travel as JSON too (the keys to remove)
                    raise CoercionError("data: lone surrogates are not allowed")
                row.data_json = _data_json(row.data)
            else:
                check_required(fields, row.data, partial=partial)
        except CoercionError as exc:
            errors.append(_drop(rows, sku, str(exc)))
            continue
        if _has_nul(row.data_json) or any("\x00" in k for k in row.null_keys):
            errors.append(_drop(rows, sku, "data: NUL characters are not allowed"))
        elif too_large := data_too_large(row.data_json, max_data_bytes):
            errors.append(_drop(rows, sku, too_large))
    return errors


async def drop_unique_conflicts(
    conn, tenant_id: int, rows: dict[str, UpsertRow], *, fields: dict[str, FieldDef]
) -> list[BulkError]:
    """Errors of the rows whose value of a `unique` field another product has, left out of `rows`."""
    if not any(f.unique for f in fields.values()):
        return []
    conflicts = await unique_conflicts(
        conn, tenant_id, fields, [(r.sku, r.data) for r in rows.values()]
    )
    return [_drop(rows, sku, detail) for sku, detail in conflicts.items()]


async def write_valid_rows(
    conn,
    tenant_id: int,
    rows: dict[str, UpsertRow],
    *,
    existing: set[str],
    max_data_bytes: int,
    gate: str | None = None,
    locked: asyncio.Event | None = None,
) -> BulkResult:
    """Write checked rows: INSERT the new ones, UPDATE the `existing` ones (the locking protocol).

    The result counts them; its errors are the updates whose merged data is over
    `max_data_bytes` (not written). `locked` is set once the write holds its locks (or has
    nothing to write); with `gate`, the INSERT's triggers wait for that import batch to commit.
    """
    result = BulkResult()
    existing = set(existing)
    # New rows go in SKU order: two batches inserting the same SKUs wait for each other instead
    # of deadlocking.
    new_rows = sorted((r for r in rows.values() if r.sku not in existing), key=lambda r: r.sku)
    inserted: set[str] = set()
    for attempt in range(WRITE_ATTEMPTS if rows else 0):
        await conn.execute("SAVEPOINT pim_write")
        if existing:
            await _lock_for_writing(
                conn, tenant_id, [r.sku for r in rows.values() if r.sku in existing]
            )
        else:
            # Only new products: one INSERT, whose trigger locks the counter rows in one sorted pass
            # and cannot deadlock with another one-statement write. It holds the counters' lock
            # shared, as single-row writes do, so batches of new products write in parallel (a bulk
            # load of one tenant: ~1.4x the rows/s of taking turns). Taken before the INSERT: a batch
            # holding the lock exclusively never waits for this batch's uncommitted rows.
            await xact_lock(conn, Lock.FACET_COUNTS, tenant_id, shared=True)
        if locked is not None:
            locked.set()
        written = (
            await _insert(
                conn,
                tenant_id,
                new_rows,
                gate=gate,
                skip_conflicts=attempt > 0 or attempt == WRITE_ATTEMPTS - 1,
            )
            if new_rows
            else set()
        )
        if written is not None:
            inserted = written
            if len(inserted) == len(new_rows) or attempt == WRITE_ATTEMPTS - 1:
                await conn.execute("RELEASE SAVEPOINT pim_write")
                break
        # Some were inserted by a concurrent writer meanwhile. The UPDATE they now need must lock
        # them before the counters' lock, as `_lock_for_writing` does (another batch may hold them
        # while it waits for that lock): undo, which releases both locks, and start again.
        await conn.execute("ROLLBACK TO SAVEPOINT pim_write")
        existing |= await existing_skus(conn, tenant_id, [r.sku for r in new_rows])
        new_rows = [r for r in new_rows if r.sku not in existing]
    if locked is not None:
        locked.set()  # no rows: no locks
    result.created = len(inserted)
    # still taken after the last attempt
    existing |= {r.sku for r in new_rows if r.sku not in inserted}

    update_rows = [r for r in rows.values() if r.sku in existing]
    if update_rows:
        too_large, rewritten = await conn.fetchrow(
            UPDATE_SQL,
            tenant_id,
            [r.sku for r in update_rows],
            [r.name for r in update_rows],
            [r.status for r in update_rows],
            [_id_array(r.categories) for r in update_rows],
            [r.variation_of is not _MISSING for r in update_rows],
            [None if r.variation_of is _MISSING else r.variation_of for r in update_rows],
            [_json_list(r.variation_attributes) for r in update_rows],
            [r.data_json for r in update_rows],
            [_json_list(r.null_keys) for r in update_rows],
            max_data_bytes,
        )
        detail = f"data: larger than the limit of {max_data_bytes} bytes (as JSON) once merged with the stored data"
        for sku in too_large:
            result.errors.append(BulkError(index=rows[sku].index, sku=sku, detail=detail))
        result.updated = len(update_rows) - len(too_large)
        result.rewritten = rewritten
    result.failed = len(result.errors)
    return result
