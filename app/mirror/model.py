"""The read model's rows and its per-tenant state (DDL: `app/clickhouse.py`).

`products_mirror` is a CollapsingMergeTree: each product state is a row with `sign = 1`, and a
change writes a copy of the state it replaces with `sign = -1` beside the new state. So every
count is `sum(sign)` over the rows a filter matches (a state and its cancel row match alike and
cancel out), exact before and after merges, with no FINAL. `generation` is the tenant's build:
a rebuild writes the next one and then switches `mirror_state` to it.

Beside it, `mirror_entries` and `mirror_numbers` hold the generation's counts by `kv`/`ka` entry
and by number under each key, which ClickHouse's materialized views add up from every block
written to the model (DDL: `app/clickhouse.py`). A rebuild marks a generation whose counts are
complete (COUNTED_MARKER, written after its rows); a generation built before the views existed
has no mark, and its counts come from the model's rows.

The columns are built in Postgres from a product row (`ROW_SQL`), so that they are exactly the
values the Postgres compiler reads, over the `data` keys that can be a field's (`_FIELD_KEY`):
`kv` the keys with a JSON string (`key=value`) or boolean (`key:true`) up to MAX_KV_VALUE bytes,
`long_keys` the keys of longer strings, `ka` the distinct string elements of its arrays
(`key=element`), `nk`/`nv` its values that `pim_num` reads as numbers, `present` its keys that
are not JSON null, `filled` those that are not null, "" or [] either.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.clickhouse import ClickHouse
from app.db import tenant_is

TABLE = "products_mirror"
# String values longer than this (bytes) are left out of `kv` (descriptions would make it most of
# the table, and every equality filter reads it) and their keys listed in `long_keys`: an
# equality test on a longer value, and facets over such a field, are Postgres's.
MAX_KV_VALUE = 64
STATE_TABLE = "mirror_state"
ENTRY_TABLE = "mirror_entries"
NUMBER_TABLE = "mirror_numbers"
# the entry (in mirror_entries) and key (in mirror_numbers) of a rebuild's mark; no `kv`/`ka`
# entry and no field name is empty
COUNTED_MARKER = ""
# the columns of a state, in the order ROW_SQL selects them after the id
STATE_COLUMNS = (
    "sku",
    "name",
    "status",
    "variation_of",
    "categories",
    "present",
    "filled",
    "kv",
    "long_keys",
    "ka",
    "nk",
    "nv",
)
COLUMNS = ("tenant_id", "generation", "id", "version", "sign", *STATE_COLUMNS)

# numbers beyond float8's range are left out of nk/nv (a range filter on them answers from the
# values that fit; pim_num accepts exponents up to 999)
_FLOAT_SAFE = "1e300"

# Keys with '=' or ':', or starting with '[', are left out of the model: data may hold keys
# outside the schema (kept as given), and one such as `brand=a` holding "b" would make the entry
# of brand "a=b". No field name has them (FIELD_NAME_RE), and without them every entry reads one
# way. (Character tests: a regular expression per key made the rebuild 27 % slower.)
_FIELD_KEY = "strpos({0}key, '=') + strpos({0}key, ':') = 0 AND left({0}key, 1) <> '['"

# The read-model columns of products `p` (the tenant's, $1): append a WHERE condition on p.
# One pass over each product's keys (jsonb_each) builds every array but `ka`; `num` is
# `pim_num(value)` (migration 0001), spelt out so that it is computed once per value.
ROW_SQL = f"""
SELECT p.id, p.sku, p.name, p.status, p.variation_of, p.categories,
  COALESCE(d.present, '{{}}') AS present, COALESCE(d.filled, '{{}}') AS filled,
  COALESCE(d.kv, '{{}}') AS kv, COALESCE(d.long_keys, '{{}}') AS long_keys,
  ARRAY(SELECT DISTINCT a.key || '=' || (e #>> '{{}}') FROM jsonb_each(p.data) a
        CROSS JOIN LATERAL jsonb_array_elements(a.value) e
        WHERE {_FIELD_KEY.format("a.")} AND jsonb_typeof(a.value) = 'array' AND jsonb_typeof(e) = 'string'
        ORDER BY 1) AS ka,
  COALESCE(d.nk, '{{}}') AS nk, COALESCE(d.nv, '{{}}') AS nv
FROM products p
CROSS JOIN LATERAL (
  -- in jsonb_each's order (a jsonb object's keys are stored sorted): the same data, the same arrays
  SELECT array_agg(key) FILTER (WHERE t <> 'null') AS present,
         array_agg(key) FILTER (WHERE t <> 'null' AND value NOT IN ('""'::jsonb, '[]'::jsonb)) AS filled,
         array_agg(CASE WHEN t = 'string' THEN key || '=' || (value #>> '{{}}')
                        ELSE key || ':' || value::text END)
           FILTER (WHERE t = 'boolean' OR (t = 'string' AND octet_length(value #>> '{{}}') <= {MAX_KV_VALUE}))
           AS kv,
         array_agg(key) FILTER (WHERE t = 'string' AND octet_length(value #>> '{{}}') > {MAX_KV_VALUE})
           AS long_keys,
         array_agg(key) FILTER (WHERE abs(num) < {_FLOAT_SAFE}) AS nk,
         array_agg(num::float8) FILTER (WHERE abs(num) < {_FLOAT_SAFE}) AS nv
  FROM (
    SELECT key, value, t, CASE
        WHEN t = 'number' THEN value::numeric
        WHEN t = 'string' AND (value #>> '{{}}') ~ '^\\s*[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d{{1,3}})?\\s*$'
          THEN (value #>> '{{}}')::numeric
        END AS num
    FROM (SELECT key, value, jsonb_typeof(value) AS t FROM jsonb_each(p.data) WHERE {_FIELD_KEY.format("")}) typed
  ) x
) d
WHERE {tenant_is("p")}"""


def state_of(row: Any) -> tuple:
    """A Postgres row of ROW_SQL as the tuple of STATE_COLUMNS (asyncpg gives arrays as lists)."""
    return tuple(row)[1:]


@dataclass(frozen=True)
class State:
    generation: int
    seq: int  # the last change-log seq applied (-1: none yet)
    products: int  # the tenant's products in the model


# the tenant's state as one tuple (generation, seq, products, rows): a scalar subquery, so that
# a statement of the model reads the state it answers from (`WITH {STATE_TUPLE} AS state_`)
STATE_TUPLE = f"""(
SELECT (argMax(generation, version), argMax(seq, version), argMax(products, version), count())
FROM {STATE_TABLE} WHERE tenant_id = %(tenant_id)s)"""


def state_from(value: Sequence[Any]) -> State | None:
    """A STATE_TUPLE as read; None when the tenant has no state row."""
    generation, seq, products, rows = value
    return State(int(generation), int(seq), int(products)) if rows else None


async def read_state(clickhouse: ClickHouse, tenant_id: int) -> State | None:
    """The tenant's read-model state, or None when it has none (never built, or its database lost)."""
    rows = await clickhouse.fetch(f"SELECT {STATE_TUPLE}", {"tenant_id": tenant_id})
    return state_from(rows[0][0]) if rows else None


async def write_state(clickhouse: ClickHouse, tenant_id: int, state: State) -> None:
    await clickhouse.insert(
        STATE_TABLE,
        ("tenant_id", "generation", "seq", "products", "version"),
        [(tenant_id, state.generation, state.seq, state.products, time.time_ns())],
    )


async def mark_counted(clickhouse: ClickHouse, tenant_id: int, generation: int) -> None:
    """Mark the generation's counts complete: every row of it was written with the views in place."""
    await clickhouse.insert(
        ENTRY_TABLE,
        ("tenant_id", "generation", "entry", "n"),
        [(tenant_id, generation, COUNTED_MARKER, 1)],
    )
    await clickhouse.insert(
        NUMBER_TABLE,
        ("tenant_id", "generation", "key", "value", "n"),
        [(tenant_id, generation, COUNTED_MARKER, 0.0, 1)],
    )
