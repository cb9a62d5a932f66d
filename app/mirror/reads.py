"""The API's side of the read model: when it may answer, and its queries.

Read-your-writes: a request may read the model only when the model's watermark has reached the
tenant's `last_seq` as Postgres shows it when the request asks (so every write committed before
the request started is in it). Behind, it waits up to PIM_MIRROR_WAIT_MS, polling, and then
answers from Postgres (as do the tenant's requests of the next second, without waiting). Postgres also answers when the tenant has fewer than
PIM_MIRROR_MIN_PRODUCTS products in the model (or none: the worker builds a model only for a
tenant of that size), when ClickHouse fails (after which it is left alone for
PIM_MIRROR_RETRY_SECONDS), and for a filter the model cannot answer exactly (`Unsupported`).
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import structlog
from asynch.errors import ClickHouseException, ServerException

from app.catalog.fields import FieldDef, FieldType
from app.clickhouse import ClickHouse
from app.config import Settings
from app.db import tenant_is
from app.errors import Unavailable
from app.mirror.model import COUNTED_MARKER, STATE_TUPLE, TABLE, State, read_state, state_from
from app.query.clickhouse import Counted, Unsupported, compile_count, compile_predicate
from app.query.models import Clause

log = structlog.get_logger("pim.mirror")

FACET_LIMIT = 100
# a tenant found without a model big enough is not asked about again for this long
SKIP_SECONDS = 5.0
# a tenant whose model stayed behind for the whole wait is not asked about again for this long
BEHIND_SKIP_SECONDS = 1.0
_POLL_S = 0.02
_LAST_SEQ_SQL = f"SELECT last_seq FROM product_change_seqs WHERE {tenant_is('product_change_seqs')}"
_FAILURES = (Unavailable, ClickHouseException, OSError, TimeoutError, EOFError)
# A page in id order whose matches are common is read from Postgres, walking the id index, when
# it takes at most this many rows (by the model's count); otherwise its ids come from the model.
MIRROR_PROBE_ROWS = 20_000


class Mirror:
    """The API process's handle on the read model (`app.state.mirror`)."""

    def __init__(self, clickhouse: ClickHouse, settings: Settings):
        self.clickhouse = clickhouse
        self.enabled = settings.mirror_enabled
        self.min_products = settings.mirror_min_products
        self.wait_s = settings.mirror_wait_ms / 1000
        self.retry_s = settings.mirror_retry_seconds
        self._down_until = 0.0
        self.answers = 0  # queries the model was fresh for (a figure for tests and benchmarks)
        self.counted = 0  # counts read from the count tables (the same)
        # tenants without a model of PIM_MIRROR_MIN_PRODUCTS products: until when not to ask
        self._skip: dict[int, float] = {}
        self._modelled: set[int] = set()  # tenants last seen with a model big enough

    def failed(self, exc: BaseException) -> None:
        """ClickHouse failed a statement: Postgres answers the request. The server's own refusal
        of that one statement (ServerException: a memory limit, say) leaves ClickHouse in use;
        anything else (no connection, a timeout) leaves it alone for PIM_MIRROR_RETRY_SECONDS."""
        error = f"{type(exc).__name__}: {exc}"[:300]
        if isinstance(exc, ServerException):
            log.warning("mirror_statement_refused", error=error)
            return
        log.warning("mirror_unavailable", error=error)
        self._down_until = time.monotonic() + self.retry_s

    async def query(
        self,
        conn,
        tenant_id: int,
        clause: Clause | None,
        *,
        faceted: list[FieldDef] | None = None,
    ) -> "MirrorQuery | None":
        """A query of the model for this clause, when the model may answer it (see the module's
        docstring); `conn` is the request's Postgres connection. None: answer from Postgres.

        Its count (with `faceted`, its facets and count) is read at once, beside the tenant's
        last seq in Postgres: one round trip to each store when the model is current."""
        now = time.monotonic()
        if not self.enabled or clause is None or now < self._down_until:
            return None
        if now < self._skip.get(tenant_id, 0.0):
            return None
        try:
            where, params = compile_predicate(clause)
        except Unsupported:
            return None
        query = MirrorQuery(self, tenant_id, where, params, compile_count(clause))
        try:
            first = asyncio.ensure_future(query.first(faceted))
            last: int | None = None
            try:
                # Postgres is asked at the same time only for a tenant seen with a model (most
                # tenants never have one)
                if tenant_id in self._modelled:
                    last = await conn.fetchval(_LAST_SEQ_SQL, tenant_id) or 0
            finally:
                state = await first
            if state is None:  # no model, or facets without a row that says which state
                state = await read_state(self.clickhouse, tenant_id)
            if state is None or state.seq < 0 or state.products < self.min_products:
                if len(self._skip) > 100_000:
                    self._skip.clear()
                self._skip[tenant_id] = time.monotonic() + SKIP_SECONDS
                self._modelled.discard(tenant_id)
                return None
            if last is None:
                if len(self._modelled) > 100_000:
                    self._modelled.clear()
                self._modelled.add(tenant_id)
                last = await conn.fetchval(_LAST_SEQ_SQL, tenant_id) or 0
            deadline = time.monotonic() + self.wait_s
            while state.seq < last:
                if time.monotonic() >= deadline:
                    # behind (a worker down or busy): the tenant's next requests go to Postgres
                    # at once for a while, rather than each waiting again
                    self._skip[tenant_id] = time.monotonic() + BEHIND_SKIP_SECONDS
                    return None
                await asyncio.sleep(_POLL_S)
                state = await read_state(self.clickhouse, tenant_id)
                if state is None:
                    return None
        except _FAILURES as exc:
            self.failed(exc)
            return None
        query.fresh(last, state)
        self.answers += 1
        return query


# the matches of a filter in the state the statement reads (WITH ... AS state_); `{where}` is the
# compiled filter
_MATCHES = f"""WITH {STATE_TUPLE} AS state_
SELECT state_, {{columns}} FROM {TABLE}
WHERE tenant_id = %(tenant_id)s AND generation = tupleElement(state_, 1) AND ({{where}})"""

# the facet entries of a match: `key=value` entries of the faceted fields (kv: strings, ka:
# array elements), '' once (so the total is a group too, and any match gives a row that says its
# state) and ':' when a faceted string is too long for kv (neither can be an entry: no field name
# is empty)
_FIELD_OF = "position(entry_, '=') > 0 AND has({}, substring(entry_, 1, position(entry_, '=') - 1))"
_FACET_ENTRIES = f"""arrayConcat([''],
    if(hasAny(long_keys, %(fs)s), [':'], emptyArrayString()),
    arrayFilter(entry_ -> {_FIELD_OF.format("%(fs)s")}, kv),
    arrayFilter(entry_ -> {_FIELD_OF.format("%(fa)s")}, ka))"""
# The filter is a PREWHERE, tested before the ARRAY JOIN with the other columns read for the
# matches only (18.16 moves no condition with a lambda there, such as a number comparison: as a
# WHERE, facets of price >= 1800 took twice as long at 1M products), and the state is a constant
# of the grouped query rather than an aggregate over every entry (with the ARRAY JOIN over the
# table itself, ~13 % off the statement for a brand filter).
_FACETS_SQL = f"""SELECT facet_state, facet_field,
       substring(facet_entry, length(facet_field) + 2, length(facet_entry)) AS facet_value, facet_n
FROM (
    WITH {STATE_TUPLE} AS state_
    SELECT state_ AS facet_state, facet_entry,
           if(position(facet_entry, '=') > 0,
              substring(facet_entry, 1, position(facet_entry, '=') - 1), facet_entry) AS facet_field,
           sum(sign) AS facet_n
    FROM {TABLE} ARRAY JOIN {_FACET_ENTRIES} AS facet_entry
    PREWHERE {{where}}
    WHERE tenant_id = %(tenant_id)s AND generation = tupleElement(state_, 1)
    GROUP BY facet_entry HAVING facet_n > 0
) ORDER BY facet_field, facet_n DESC, facet_value LIMIT {FACET_LIMIT} BY facet_field"""
# the count of a filter the count tables answer (`Counted`), and their mark (0: the generation's
# counts are incomplete, its rows answer)
_COUNTED_SQL = f"""WITH {STATE_TUPLE} AS state_
SELECT state_, sumIf(n, {{marker}} = '{COUNTED_MARKER}'), sumIf(n, {{marker}} != '{COUNTED_MARKER}')
FROM {{table}}
WHERE tenant_id = %(tenant_id)s AND generation = tupleElement(state_, 1)
  AND ({{marker}} = '{COUNTED_MARKER}' OR ({{condition}}))"""
_IDS_SQL = f"""SELECT any(state_), id FROM ({_MATCHES.format(columns="id, sign", where="{where}")})
GROUP BY id HAVING sum(sign) > 0 ORDER BY id {{direction}} LIMIT %(offset)s, %(limit)s"""
_TOTAL, _LONG = "", ":"
# Decompressed blocks are cached (the server's uncompressed_cache_size): a model read decompresses
# every row of the tenant's filter columns, and that was a third of its CPU at 1M products (a
# tenant's read of up to this many rows uses the cache)
_SETTINGS = " SETTINGS use_uncompressed_cache = 1, merge_tree_max_rows_to_use_cache = 20000000"


@dataclass
class MirrorQuery:
    """One filter over the model; each method answers None when ClickHouse failed or read a
    state behind the one the request needs (the caller then answers from Postgres)."""

    mirror: Mirror
    tenant_id: int
    where: str
    params: dict[str, Any]
    counted: Counted | None = None  # the filter over the count tables, when they answer it
    last: int | None = None  # the watermark an answer's state must have reached (`fresh`)
    state: State | None = None  # the state the first statement read
    _total: int | None = None
    _facets: list[tuple[str, str, int]] | None = None  # (field, value, n), totals included

    def fresh(self, last: int, state: State) -> None:
        """Answers must come from a state with this watermark (`state` has it); those read
        before are kept when theirs has it."""
        self.last = last
        if self.state is None or self.state.seq < last:
            self._total = self._facets = None
            self.state = state

    @property
    def products(self) -> int:
        """The tenant's products in the model."""
        return self.state.products if self.state is not None else 0

    def id_walk(self, wanted: int, matches: int) -> int | None:
        """How many of the tenant's first products (in id order) Postgres walks, filtering, to
        find the first `wanted` of the `matches` matches: the model's estimate doubled and a
        margin, at most MIRROR_PROBE_ROWS; None when the estimate alone is past it (the model's
        ids serve instead)."""
        walk = wanted * self.products // max(matches, 1)
        if walk > MIRROR_PROBE_ROWS:
            return None
        return min(MIRROR_PROBE_ROWS, 2 * walk + 1_000)

    async def first(self, faceted: list[FieldDef] | None) -> State | None:
        """The count, or with `faceted` the facets (and the count, when anything matches), and
        the state they were read from (None: no model, or no facet row said)."""
        if faceted:
            sql, params = self._facet_query(faceted)
            rows = await self.mirror.clickhouse.fetch(sql + _SETTINGS, params)
            if rows:
                self.state = state_from(rows[0][0])
                self._facets = [tuple(r[1:]) for r in rows]
                self._total = next((r[3] for r in rows if r[1] == _TOTAL), 0)
            return self.state
        while True:
            sql, params = self._count_query()
            rows = await self.mirror.clickhouse.fetch(sql + _SETTINGS, params)
            self.state = state_from(rows[0][0])
            if self.state is None:
                return None
            self._total = self._count_of(rows)
            if self._total is not None:
                return self.state

    def _count_query(self) -> tuple[str, dict[str, Any]]:
        """The count statement: of the count tables for a `counted` filter, else of the rows."""
        if self.counted is not None:
            counted = self.counted
            sql = _COUNTED_SQL.format(
                table=counted.table, marker=counted.marker, condition=counted.condition
            )
            return sql, {**counted.params, "tenant_id": self.tenant_id}
        return _MATCHES.format(columns="sum(sign)", where=self.where), self._params()

    def _count_of(self, rows: list[tuple]) -> int | None:
        """The count a `_count_query` read; None when it read count tables the state's generation
        has not all of (then `counted` is dropped, and the next count reads the rows)."""
        if self.counted is None:
            return int(rows[0][1] or 0)
        if not rows[0][1]:
            self.counted = None
            return None
        self.mirror.counted += 1
        return int(rows[0][2] or 0)

    def _params(self, **more: Any) -> dict[str, Any]:
        return {**self.params, "tenant_id": self.tenant_id, **more}

    async def _fetch(self, sql: str, params: dict[str, Any]) -> list[tuple] | None:
        """Rows whose first column is the state they were read from; None when that state is
        behind `last` (or there is no row to say)."""
        try:
            rows = await self.mirror.clickhouse.fetch(sql + _SETTINGS, params)
        except _FAILURES as exc:
            self.mirror.failed(exc)
            return None
        state = state_from(rows[0][0]) if rows else None
        if state is None or self.last is None or state.seq < self.last:
            return None
        return rows

    async def count(self) -> int | None:
        while self._total is None:
            rows = await self._fetch(*self._count_query())
            if rows is None:
                return None
            self._total = self._count_of(rows)
        return self._total

    async def ids(self, *, limit: int, offset: int, descending: bool = False) -> list[int] | None:
        """The ids of a page of the matches in id order."""
        rows = await self._fetch(
            _IDS_SQL.format(where=self.where, direction="DESC" if descending else "ASC"),
            self._params(limit=int(limit), offset=int(offset)),
        )
        return None if rows is None else [int(r[1]) for r in rows]

    def _facet_query(self, faceted: list[FieldDef]) -> tuple[str, dict[str, Any]]:
        strings = [f.name for f in faceted if f.type != FieldType.array]
        arrays = [f.name for f in faceted if f.type == FieldType.array]
        return _FACETS_SQL.format(where=self.where), self._params(
            fs=strings or [""], fa=arrays or [""]
        )

    async def facets(self, faceted: list[FieldDef]) -> dict[str, list[dict[str, Any]]] | None:
        """The facet values of the matches (strings: `kv`, arrays: their elements in `ka`), the
        FACET_LIMIT most frequent of each field, as `service.facets` gives them."""
        result: dict[str, list[dict[str, Any]]] = {f.name: [] for f in faceted}
        if not faceted:
            return result
        if self._facets is None:
            if await self.count() == 0:
                return result
            rows = await self._fetch(*self._facet_query(faceted))
            if rows is None:
                return None
            self._facets = [tuple(r[1:]) for r in rows]
        if any(field == _LONG for field, _value, _n in self._facets):
            return None  # values the model does not keep: Postgres counts them
        for name, value, n in self._facets:
            if name in result:
                result[name].append({"value": value, "count": int(n)})
        return result
