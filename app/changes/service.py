"""The change log: the tenant's stream, a product's history, reverts, retention.

Entries are written by triggers on `products` (migration h2_changes_1) in the writing
transaction; this module only reads them and, to revert, writes products back (which the same
triggers log). A product's state is a JSON object of its built-ins (name, status, categories,
variation_of, variation_attributes; a null one absent) and its data keys, the shape the entries'
`changes` diff.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.service import hold_category_references
from app.db import TenantReader, all_tenants, driver_connection, reading, tenant_is, tenant_of
from app.errors import BadRequest, Conflict, ErrorCode, Gone, NotFound
from app.jobs.locks import Lock, xact_lock

MAX_LIMIT = 1_000
# NOTIFYed at the commit of every transaction that wrote entries, with the tenant id (a trigger,
# migration h4_read_1): wakes the read model's and the webhooks' loops
CHANGES_CHANNEL = "pim_changes"
BUILTINS = ("name", "status", "categories", "variation_of", "variation_attributes")
# entries deleted per maintenance round: a long backlog is pruned over several rounds
PRUNE_BATCH = 100_000

# A create stores its data in new_values and its built-ins in the created_* columns (migration
# h4_perf_1: nothing is built when it is written); `_new_values` puts its state together.
_CREATED_COLUMNS = (
    "created_name, created_status, created_categories, created_variation_of, "
    "created_variation_attributes"
)
_CHANGE_COLUMNS = (
    f"old_values::text AS old_values, new_values::text AS new_values, {_CREATED_COLUMNS}"
)
ENTRY_COLUMNS = (
    f"seq, product_id, sku, op, {_CHANGE_COLUMNS}, actor::text AS actor, request_id, "
    "import_job_id, at"
)
# the columns ENTRY_COLUMNS reads, as they are stored
_RAW_COLUMNS = (
    f"seq, product_id, sku, op, old_values, new_values, {_CREATED_COLUMNS}, actor, request_id, "
    "import_job_id, at"
)
# the built-ins a create's state always has (its columns are NOT NULL); variation_of when set
_CREATED_KEYS = ("name", "status", "categories", "variation_attributes")
_STATE_SQL = (
    "pim_product_state(p.name, p.status, p.categories, p.variation_of, "
    "p.variation_attributes, p.data)::text"
)


def _jsonb_key_order(key: str) -> tuple[int, bytes]:
    raw = key.encode()
    return len(raw), raw


@lru_cache(maxsize=1024)
def _in_jsonb_order(keys: tuple[str, ...]) -> tuple[str, ...]:
    """Keys in the order jsonb keeps them (shorter first, then bytewise). A tenant's creates share
    few key sets: each is sorted once."""
    return tuple(sorted(keys, key=_jsonb_key_order))


def _created_state(row: asyncpg.Record) -> dict[str, Any]:
    """A create's state in no particular order: its data (`new_values`) with its built-ins (the
    created_* columns)."""
    state = orjson.loads(row["new_values"]) if row["new_values"] is not None else {}
    state["name"] = row["created_name"]
    state["status"] = row["created_status"]
    state["categories"] = row["created_categories"]
    if row["created_variation_of"] is not None:
        state["variation_of"] = row["created_variation_of"]
    state["variation_attributes"] = row["created_variation_attributes"]
    return state


def _new_values(row: asyncpg.Record) -> dict[str, Any]:
    """An entry's new values; for a create, its state: the data with the built-ins, in jsonb's
    key order, the very object `pim_product_state` builds."""
    if row["created_name"] is None:  # not a create, or one written whole before h4_perf_1
        return orjson.loads(row["new_values"]) if row["new_values"] is not None else {}
    state = _created_state(row)
    return {key: state[key] for key in _in_jsonb_order(tuple(state))}


def _created_changes(row: asyncpg.Record) -> dict[str, dict[str, Any]]:
    """`_changes` of a create (no old values): its state's keys in jsonb order, each from null,
    built in one pass (most entries of a bulk load are creates)."""
    state = _created_state(row)
    return {key: {"old": None, "new": state[key]} for key in _in_jsonb_order(tuple(state))}


def _changes(row: asyncpg.Record) -> dict[str, dict[str, Any]]:
    """An entry's `changes`: its old and new values paired up by key (a key missing on one side
    was absent there)."""
    if row["created_name"] is not None and row["old_values"] is None:
        return _created_changes(row)
    old = orjson.loads(row["old_values"]) if row["old_values"] is not None else {}
    new = _new_values(row)
    pairs = {key: {"old": old.get(key), "new": value} for key, value in new.items()}
    for key, value in old.items():
        if key not in new:
            pairs[key] = {"old": value, "new": None}
    return pairs


def entry_of(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "seq": row["seq"],
        "product_id": row["product_id"],
        "sku": row["sku"],
        "op": row["op"],
        "changes": _changes(row),
        "actor": orjson.Fragment(row["actor"]) if row["actor"] is not None else None,
        "request_id": row["request_id"],
        "import_job_id": str(row["import_job_id"]) if row["import_job_id"] else None,
        "at": row["at"],
    }


# --- reading ----------------------------------------------------------------------------------


async def read_changes(
    reader: TenantReader | AsyncSession,
    *,
    after: int,
    limit: int,
    op: str | None = None,
    field: str | None = None,
) -> dict[str, Any]:
    """The tenant's entries with seq > `after`, in seq order (= commit order, see the migration)."""
    tenant_id = tenant_of(reader)
    params: list[Any] = [tenant_id, after, limit]
    conditions = ["seq > $2"]
    if op is not None:
        params.append(op)
        conditions.append(f"op = ${len(params)}")
    if field is not None:
        params.append(field)
        n = len(params)
        conditions.append(
            f"(old_values ? ${n} OR new_values ? ${n} OR (created_name IS NOT NULL AND "
            f"(${n} = ANY(ARRAY{list(_CREATED_KEYS)}::text[]) "
            f"OR (${n} = 'variation_of' AND created_variation_of IS NOT NULL))))"
        )
    async with reading(reader) as conn:
        pruned_through = await conn.fetchval(
            f"SELECT pruned_through FROM product_change_seqs WHERE {tenant_is('product_change_seqs')}",
            tenant_id,
        )
        if pruned_through and after < pruned_through:
            raise Gone(
                f"Entries up to seq {pruned_through} were pruned (retention): copy the catalog "
                f"again, then read changes from after={pruned_through}",
                code=ErrorCode.changes_pruned,
                oldest_seq=pruned_through + 1,
            )
        rows = await conn.fetch(
            f"SELECT {ENTRY_COLUMNS} FROM product_changes WHERE {tenant_is('product_changes')} "
            f"AND {' AND '.join(conditions)} "
            "ORDER BY seq LIMIT $3",
            *params,
        )
    return {
        "results": [entry_of(r) for r in rows],
        "next_after": rows[-1]["seq"] if rows else after,
    }


async def committed_through(conn, tenant_id: int) -> int:
    """The tenant's last seq taken by a committed write: every entry up to it is visible now and
    none will appear below it later (the counter row is locked until the writer commits: see the
    migration), so a reader that has delivered up to it has missed nothing."""
    value = await conn.fetchval(
        f"SELECT last_seq FROM product_change_seqs WHERE {tenant_is('product_change_seqs')}",
        tenant_id,
    )
    return value or 0


async def read_entry_rows(
    conn, tenant_id: int, *, after: int, through: int, ops: list[str], limit: int
) -> list[asyncpg.Record]:
    """Rows of entries with `after` < seq <= `through` of these operations, in seq order (what a
    stream reader such as a webhook delivers; `through` from `committed_through`), each made an
    entry by `entry_of` (a reader that serialises them one at a time never holds a page of
    entries at once).

    The page is chosen first and only its rows are turned into text: a plan that reads the
    whole range of seqs and sorts it (the plan of a log without statistics) spent half the
    statement's time on the jsonb output of rows the LIMIT then dropped."""
    return await conn.fetch(
        f"SELECT {ENTRY_COLUMNS} FROM (SELECT {_RAW_COLUMNS} FROM product_changes "
        f"WHERE {tenant_is('product_changes')} AND seq > $2 AND seq <= $3 "
        "AND op = ANY($4::text[]) ORDER BY seq LIMIT $5) c ORDER BY seq",
        tenant_id,
        after,
        through,
        ops,
        limit,
    )


async def product_history(
    reader: TenantReader | AsyncSession, product_id: int, *, cursor: int | None, limit: int
) -> dict[str, Any]:
    """A product's entries, newest first; `cursor` is the seq the previous page ended at."""
    tenant_id = tenant_of(reader)
    async with reading(reader) as conn:
        rows = await conn.fetch(
            f"SELECT {ENTRY_COLUMNS} FROM product_changes WHERE {tenant_is('product_changes')} AND product_id = $2 "
            "AND seq < $3 ORDER BY seq DESC LIMIT $4",
            tenant_id,
            product_id,
            cursor if cursor is not None else 2**63 - 1,
            limit + 1,
        )
        if not rows and cursor is None:
            exists = await conn.fetchval(
                f"SELECT 1 FROM products WHERE {tenant_is('products')} AND id = $2",
                tenant_id,
                product_id,
            )
            if not exists:
                raise NotFound(f"Product {product_id} not found")
    page = rows[:limit]
    return {
        "results": [entry_of(r) for r in page],
        "next_cursor": str(page[-1]["seq"]) if len(rows) > limit else None,
    }


# --- reverting --------------------------------------------------------------------------------


def _unapply(state: dict[str, Any] | None, op: str, changes: dict[str, Any]) -> dict | None:
    """The state before an entry, from the state after it."""
    if op == "created":
        return None
    before = {} if op == "deleted" or state is None else dict(state)
    for key, change in changes.items():
        if change["old"] is None:
            before.pop(key, None)
        else:
            before[key] = change["old"]
    return before


@dataclass
class _Targets:
    """What a revert writes: products to update, to create again (with their id) and to delete."""

    update: dict[int, dict[str, Any]] = field(default_factory=dict)
    create: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    delete: set[int] = field(default_factory=set)


_UPDATE_SQL = f"""
WITH t AS (SELECT id, s::jsonb AS s FROM unnest($2::bigint[], $3::text[]) AS t(id, s))
UPDATE products p
SET name = t.s ->> 'name', status = t.s ->> 'status',
    categories = ARRAY(SELECT c::bigint FROM jsonb_array_elements_text(COALESCE(t.s -> 'categories', '[]')) c
                       WHERE EXISTS (SELECT 1 FROM categories k WHERE {tenant_is("k")} AND k.id = c::bigint)),
    variation_of = t.s ->> 'variation_of',
    variation_attributes = ARRAY(SELECT jsonb_array_elements_text(COALESCE(t.s -> 'variation_attributes', '[]'))),
    data = t.s - ARRAY{list(BUILTINS)}::text[], updated_at = now()
FROM t
WHERE {tenant_is("p")} AND p.id = t.id
RETURNING p.id
"""

_INSERT_SQL = f"""
INSERT INTO products (id, tenant_id, sku, name, status, categories, variation_of, variation_attributes, data)
SELECT t.id, $1, t.sku, t.s ->> 'name', t.s ->> 'status',
       ARRAY(SELECT c::bigint FROM jsonb_array_elements_text(COALESCE(t.s -> 'categories', '[]')) c
             WHERE EXISTS (SELECT 1 FROM categories k WHERE {tenant_is("k")} AND k.id = c::bigint)),
       t.s ->> 'variation_of',
       ARRAY(SELECT jsonb_array_elements_text(COALESCE(t.s -> 'variation_attributes', '[]'))),
       t.s - ARRAY{list(BUILTINS)}::text[]
FROM (SELECT id, sku, s::jsonb AS s FROM unnest($2::bigint[], $3::text[], $4::text[]) AS t(id, sku, s)) t
"""


async def _write_targets(conn, tenant_id: int, targets: _Targets) -> None:
    """Write the products back, set-based: one UPDATE, one DELETE, one INSERT."""
    if targets.update:
        ids = sorted(targets.update)
        await conn.execute(
            _UPDATE_SQL, tenant_id, ids, [orjson.dumps(targets.update[i]).decode() for i in ids]
        )
    if targets.delete:
        await conn.execute(
            f"DELETE FROM products WHERE {tenant_is('products')} AND id = ANY($2::bigint[])",
            tenant_id,
            sorted(targets.delete),
        )
    if targets.create:
        ids = sorted(targets.create)
        try:
            await conn.execute(
                _INSERT_SQL,
                tenant_id,
                ids,
                [targets.create[i][0] for i in ids],
                [orjson.dumps(targets.create[i][1]).decode() for i in ids],
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(
                "A deleted product cannot come back: its SKU is used by another product now"
            ) from None


async def _current_states(conn, tenant_id: int, product_ids: list[int]) -> dict[int, dict]:
    """The products' states, their rows locked in id order (as every multi-row writer does).

    The category-reference lock first, as the other writers take it (a category delete holds it
    while it rewrites products): the restored category ids are then checked until commit."""
    await hold_category_references(conn, tenant_id)
    rows = await conn.fetch(
        f"SELECT p.id, {_STATE_SQL} AS state FROM products p "
        f"WHERE {tenant_is('p')} AND p.id = ANY($2::bigint[]) ORDER BY p.id FOR UPDATE",
        tenant_id,
        product_ids,
    )
    return {r["id"]: orjson.loads(r["state"]) for r in rows}


async def revert_product(session: AsyncSession, product_id: int, *, seq: int) -> None:
    """Put the product back in its state right after entry `seq` (one of its own entries)."""
    tenant_id = tenant_of(session)
    conn = await driver_connection(session)
    entry = await conn.fetchrow(
        f"SELECT sku, op FROM product_changes WHERE {tenant_is('product_changes')} AND product_id = $2 AND seq = $3",
        tenant_id,
        product_id,
        seq,
    )
    if entry is None:
        raise NotFound(f"Change {seq} of product {product_id} not found")
    if entry["op"] == "deleted":
        raise BadRequest(
            f"Change {seq} deleted the product: revert to an earlier change, or delete it"
        )
    current = (await _current_states(conn, tenant_id, [product_id])).get(product_id)
    later = await conn.fetch(
        f"SELECT op, {_CHANGE_COLUMNS} FROM product_changes "
        f"WHERE {tenant_is('product_changes')} AND product_id = $2 AND seq > $3 ORDER BY seq DESC",
        tenant_id,
        product_id,
        seq,
    )
    state = current
    for row in later:
        state = _unapply(state, row["op"], _changes(row))
    targets = _Targets()
    if state is None:  # cannot happen for an entry that left the product in place; be explicit
        raise BadRequest(f"Change {seq} left no product to restore")
    if current is None:
        targets.create[product_id] = (entry["sku"], state)
    elif state != current:
        targets.update[product_id] = state
    await _write_targets(conn, tenant_id, targets)


@dataclass
class RevertResult:
    reverted: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)


async def revert_writes(
    session: AsyncSession, *, import_job_id: UUID | None = None, request_id: str | None = None
) -> RevertResult:
    """Undo every entry of an import (or of a request): products it created are deleted, the
    fields it changed get their previous values back, except fields a later write changed
    (reported in `skipped`, kept as they are)."""
    tenant_id = tenant_of(session)
    conn = await driver_connection(session)
    value: UUID | str | None
    if import_job_id is not None:
        column, value, what = "import_job_id", import_job_id, f"Import {import_job_id}"
        known = await conn.fetchval(
            f"SELECT 1 FROM import_jobs WHERE {tenant_is('import_jobs')} AND id = $2",
            tenant_id,
            import_job_id,
        )
    else:
        column, value, what = "request_id", request_id, f"Request {request_id}"
        known = None
    own = await conn.fetch(
        f"SELECT seq, product_id, sku, op, {_CHANGE_COLUMNS} FROM product_changes "
        f"WHERE {tenant_is('product_changes')} AND {column} = $2 ORDER BY seq",
        tenant_id,
        value,
    )
    if not own and not known:
        raise NotFound(f"{what} not found")
    result = RevertResult()
    if not own:
        return result
    entries: dict[int, list[tuple[int, str, dict]]] = defaultdict(list)
    skus: dict[int, str] = {}
    for row in own:
        entries[row["product_id"]].append((row["seq"], row["op"], _changes(row)))
        skus[row["product_id"]] = row["sku"]
    product_ids = sorted(entries)
    current = await _current_states(conn, tenant_id, product_ids)
    # several statements follow: the facet counters' lock exclusively after the product rows, as
    # the bulk upsert takes it (app/products/upsert.py)
    await xact_lock(conn, Lock.FACET_COUNTS, tenant_id)
    later_rows = await conn.fetch(
        f"SELECT seq, product_id, op, {_CHANGE_COLUMNS} FROM product_changes "
        f"WHERE {tenant_is('product_changes')} AND product_id = ANY($2::bigint[]) AND seq > $3 "
        f"AND {column} IS DISTINCT FROM $4 ORDER BY seq",
        tenant_id,
        product_ids,
        own[0]["seq"],
        value,
    )
    later: dict[int, list[tuple[int, str, dict]]] = defaultdict(list)
    for row in later_rows:
        later[row["product_id"]].append((row["seq"], row["op"], _changes(row)))
    taken_skus = {
        r["sku"]
        for r in await conn.fetch(
            f"SELECT sku FROM products WHERE {tenant_is('products')} AND sku = ANY($2::text[])",
            tenant_id,
            [skus[i] for i in product_ids if i not in current],
        )
    }

    targets = _Targets()
    for product_id in product_ids:
        own_entries, others = entries[product_id], later[product_id]
        sku, state = skus[product_id], current.get(product_id)
        first_seq, first_op = own_entries[0][0], own_entries[0][1]
        if first_op == "created":
            edits = [o for o in others if o[0] > first_seq]
            if any(op == "deleted" for _, op, _ in edits) or state is None:
                continue  # deleted since: nothing left to undo
            if edits:
                for seq, _op, changes in edits:
                    for key in changes:
                        result.skipped.append(
                            {
                                "sku": sku,
                                "field": key,
                                "reason": f"changed by a later write (seq {seq}); the product "
                                "it created is kept",
                            }
                        )
                continue
            targets.delete.add(product_id)
            continue
        # the value before this write's first change of each field, and its last change of it
        before: dict[str, Any] = {}
        last_touch: dict[str, int] = {}
        for seq, _op, changes in own_entries:
            for key, change in changes.items():
                before.setdefault(key, change["old"])
                last_touch[key] = seq
        if state is None and own_entries[-1][1] != "deleted":
            for key in before:
                result.skipped.append(
                    {"sku": sku, "field": key, "reason": "the product was deleted by a later write"}
                )
            continue
        changed_later: dict[str, int] = {}
        for seq, _op, changes in others:
            for key in changes:
                if key in last_touch and seq > last_touch[key]:
                    changed_later.setdefault(key, seq)
        target = dict(state) if state is not None else {}
        for key, old in before.items():
            if target.get(key) == old:
                continue  # already so (reverted before, or set back by hand)
            if key in changed_later:
                result.skipped.append(
                    {
                        "sku": sku,
                        "field": key,
                        "reason": f"changed by a later write (seq {changed_later[key]})",
                    }
                )
            elif old is None:
                target.pop(key, None)
            else:
                target[key] = old
        if state is None:
            if sku in taken_skus:
                result.skipped.append(
                    {"sku": sku, "field": "sku", "reason": "used by another product now"}
                )
            else:
                targets.create[product_id] = (sku, target)
        elif target != state:
            targets.update[product_id] = target
    await _write_targets(conn, tenant_id, targets)
    result.reverted = len(targets.update) + len(targets.create) + len(targets.delete)
    return result


# --- retention --------------------------------------------------------------------------------


async def prune_changes(conn, *, retention_days: int, batch: int = PRUNE_BATCH) -> int:
    """Delete up to `batch` entries older than the retention, remembering per tenant the highest
    seq deleted (a stream read from before it answers 410). `conn` is in a transaction."""
    return await conn.fetchval(
        all_tenants(  # retention: every tenant's old entries
            """WITH gone AS (
               DELETE FROM product_changes c USING (
                   SELECT tenant_id, seq FROM product_changes
                   WHERE at < now() - make_interval(days => $1) LIMIT $2
               ) old
               WHERE c.tenant_id = old.tenant_id AND c.seq = old.seq
               RETURNING c.tenant_id, c.seq
           ), through AS (
               SELECT tenant_id, max(seq) AS seq, count(*) AS n FROM gone GROUP BY tenant_id
           ), marked AS (
               UPDATE product_change_seqs s SET pruned_through = GREATEST(s.pruned_through, t.seq)
               FROM through t WHERE s.tenant_id = t.tenant_id
           )
           SELECT COALESCE(sum(n), 0)::bigint FROM through"""
        ),
        retention_days,
        batch,
    )


__all__ = [
    "CHANGES_CHANNEL",
    "ENTRY_COLUMNS",
    "RevertResult",
    "committed_through",
    "entry_of",
    "product_history",
    "prune_changes",
    "read_changes",
    "read_entry_rows",
    "revert_product",
    "revert_writes",
]
