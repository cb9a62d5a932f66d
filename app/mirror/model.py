"""The read model's rows and its per-tenant state (DDL: `app/clickhouse.py`).

`products_mirror` is a CollapsingMergeTree: each product state is a row with `sign = 1`, and a
change writes a copy of the state it replaces with `sign = -1` beside the new state. So every
count is `sum(sign)` over the rows a filter matches (a state and its cancel row match alike and
cancel out), exact before and after merges, with no FINAL. `generation` is the tenant's build:
a rebuild writes the next one and then switches `mirror_state` to it.

The columns are built in Postgres from a product row (`ROW_SQL`), so that they are exactly the
values the Postgres compiler reads: `kv` the `data` keys with a JSON string (`key=value`) or
boolean (`key:true`), `ka` the distinct string elements of its arrays (`key=element`), `nk`/`nv`
its values that `pim_num` reads as numbers, `present` its keys that are not JSON null, `filled`
those that are not null, "" or [] either.
"""

import time
from dataclasses import dataclass
from typing import Any

from app.clickhouse import ClickHouse
from app.db import tenant_is

TABLE = "products_mirror"
STATE_TABLE = "mirror_state"
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
    "ka",
    "nk",
    "nv",
)
COLUMNS = ("tenant_id", "generation", "id", "version", "sign", *STATE_COLUMNS)

# numbers beyond float8's range are left out of nk/nv (a range filter on them answers from the
# values that fit; pim_num accepts exponents up to 999)
_FLOAT_SAFE = "1e300"

# The read-model columns of products `p` (the tenant's, $1): append a WHERE condition on p.
ROW_SQL = f"""
SELECT p.id, p.sku, p.name, p.status, p.variation_of, p.categories,
  ARRAY(SELECT key FROM jsonb_each(p.data) WHERE value <> 'null'::jsonb ORDER BY key) AS present,
  ARRAY(SELECT key FROM jsonb_each(p.data)
        WHERE value NOT IN ('null'::jsonb, '""'::jsonb, '[]'::jsonb) ORDER BY key) AS filled,
  ARRAY(SELECT CASE WHEN jsonb_typeof(value) = 'string' THEN key || '=' || (value #>> '{{}}')
                    ELSE key || ':' || value::text END
        FROM jsonb_each(p.data) WHERE jsonb_typeof(value) IN ('string', 'boolean') ORDER BY 1) AS kv,
  ARRAY(SELECT DISTINCT d.key || '=' || (e #>> '{{}}') FROM jsonb_each(p.data) d
        CROSS JOIN LATERAL jsonb_array_elements(
            CASE WHEN jsonb_typeof(d.value) = 'array' THEN d.value ELSE '[]'::jsonb END) e
        WHERE jsonb_typeof(e) = 'string' ORDER BY 1) AS ka,
  n.keys AS nk, n.vals AS nv
FROM products p
CROSS JOIN LATERAL (
  SELECT COALESCE(array_agg(key ORDER BY key), '{{}}') AS keys,
         COALESCE(array_agg(v::float8 ORDER BY key), '{{}}') AS vals
  FROM (SELECT key, pim_num(value) AS v FROM jsonb_each(p.data)) x
  WHERE v IS NOT NULL AND abs(v) < {_FLOAT_SAFE}
) n
WHERE {tenant_is("p")}"""


def state_of(row: Any) -> tuple:
    """A Postgres row of ROW_SQL as the tuple of STATE_COLUMNS (lists and None as ClickHouse takes them)."""
    return (
        row["sku"],
        row["name"],
        row["status"],
        row["variation_of"],
        list(row["categories"]),
        list(row["present"]),
        list(row["filled"]),
        list(row["kv"]),
        list(row["ka"]),
        list(row["nk"]),
        [float(v) for v in row["nv"]],
    )


@dataclass(frozen=True)
class State:
    generation: int
    seq: int  # the last change-log seq applied (-1: none yet)
    products: int  # the tenant's products in the model


_STATE_SQL = f"""
SELECT argMax(generation, version), argMax(seq, version), argMax(products, version), count()
FROM {STATE_TABLE} WHERE tenant_id = %(tenant_id)s
"""


async def read_state(clickhouse: ClickHouse, tenant_id: int) -> State | None:
    """The tenant's read-model state, or None when it has none (never built, or its database lost)."""
    rows = await clickhouse.fetch(_STATE_SQL, {"tenant_id": tenant_id})
    if not rows or not rows[0][3]:
        return None
    generation, seq, products, _n = rows[0]
    return State(int(generation), int(seq), int(products))


async def write_state(clickhouse: ClickHouse, tenant_id: int, state: State) -> None:
    await clickhouse.insert(
        STATE_TABLE,
        ("tenant_id", "generation", "seq", "products", "version"),
        [(tenant_id, state.generation, state.seq, state.products, time.time_ns())],
    )
