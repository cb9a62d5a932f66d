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
from asynch.errors import ClickHouseException

from app.catalog.fields import FieldDef, FieldType
from app.clickhouse import ClickHouse
from app.config import Settings
from app.db import tenant_is
from app.errors import Unavailable
from app.mirror.model import TABLE, State, read_state
from app.query.clickhouse import Unsupported, compile_predicate
from app.query.models import Clause

log = structlog.get_logger("pim.mirror")

FACET_LIMIT = 100
# a tenant found without a model big enough is not asked about again for this long
SKIP_SECONDS = 5.0
# a tenant whose model stayed behind for the whole wait is not asked about again for this long
BEHIND_SKIP_SECONDS = 1.0
_POLL_S = 0.02
_FAILURES = (Unavailable, ClickHouseException, OSError, TimeoutError, EOFError)


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
        # tenants without a model of PIM_MIRROR_MIN_PRODUCTS products: until when not to ask
        self._skip: dict[int, float] = {}

    def failed(self, exc: BaseException) -> None:
        log.warning("mirror_unavailable", error=f"{type(exc).__name__}: {exc}"[:300])
        self._down_until = time.monotonic() + self.retry_s

    async def query(self, conn, tenant_id: int, clause: Clause | None) -> "MirrorQuery | None":
        """A query of the model for this clause, when the model may answer it (see the module's
        docstring); `conn` is the request's Postgres connection. None: answer from Postgres."""
        now = time.monotonic()
        if not self.enabled or clause is None or now < self._down_until:
            return None
        if now < self._skip.get(tenant_id, 0.0):
            return None
        try:
            where, params = compile_predicate(clause)
        except Unsupported:
            return None
        try:
            state = await read_state(self.clickhouse, tenant_id)
            if state is None or state.seq < 0 or state.products < self.min_products:
                if len(self._skip) > 100_000:
                    self._skip.clear()
                self._skip[tenant_id] = time.monotonic() + SKIP_SECONDS
                return None
            # the model holds every write committed before now once its watermark reaches this
            last = await conn.fetchval(
                "SELECT last_seq FROM product_change_seqs "
                f"WHERE {tenant_is('product_change_seqs')}",
                tenant_id,
            )
            deadline = time.monotonic() + self.wait_s
            while state.seq < (last or 0):
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
        self.answers += 1
        return MirrorQuery(self, tenant_id, state, where, params)


@dataclass
class MirrorQuery:
    """One filter over one fresh state of the model; each method answers None when ClickHouse
    failed (the caller then answers from Postgres)."""

    mirror: Mirror
    tenant_id: int
    state: State
    where: str
    params: dict[str, Any]

    def _params(self, **more: Any) -> dict[str, Any]:
        return {
            **self.params,
            "tenant_id": self.tenant_id,
            "generation": self.state.generation,
            **more,
        }

    @property
    def _scope(self) -> str:
        return "tenant_id = %(tenant_id)s AND generation = %(generation)s"

    async def _fetch(self, sql: str, params: dict[str, Any]) -> list[tuple] | None:
        try:
            return await self.mirror.clickhouse.fetch(sql, params)
        except _FAILURES as exc:
            self.mirror.failed(exc)
            return None

    async def count(self) -> int | None:
        rows = await self._fetch(
            f"SELECT sum(sign) FROM {TABLE} WHERE {self._scope} AND ({self.where})",
            self._params(),
        )
        return None if rows is None else int(rows[0][0] or 0)

    async def ids(self, *, limit: int, offset: int, descending: bool = False) -> list[int] | None:
        """The ids of a page of the matches in id order."""
        rows = await self._fetch(
            f"SELECT id FROM {TABLE} WHERE {self._scope} AND ({self.where}) "
            f"GROUP BY id HAVING sum(sign) > 0 ORDER BY id {'DESC' if descending else 'ASC'} "
            "LIMIT %(offset)s, %(limit)s",
            self._params(limit=int(limit), offset=int(offset)),
        )
        return None if rows is None else [int(r[0]) for r in rows]

    async def facets(self, faceted: list[FieldDef]) -> dict[str, list[dict[str, Any]]] | None:
        """The facet values of the matches (strings: `kv`, arrays: their elements in `ka`), the
        FACET_LIMIT most frequent of each field, as `service.facets` gives them."""
        strings = [f.name for f in faceted if f.type != FieldType.array]
        arrays = [f.name for f in faceted if f.type == FieldType.array]
        result: dict[str, list[dict[str, Any]]] = {f.name: [] for f in faceted}
        if not faceted:
            return result
        long_values = await self._fetch(
            f"SELECT count() FROM {TABLE} WHERE {self._scope} AND hasAny(long_keys, %(fs)s) "
            f"AND ({self.where})",
            self._params(fs=strings or [""]),
        )
        if long_values is None or long_values[0][0]:
            return None  # values the model does not keep: Postgres counts them
        field_of = (
            "position(entry_, '=') > 0 AND has({}, substring(entry_, 1, position(entry_, '=') - 1))"
        )
        rows = await self._fetch(
            f"""SELECT facet_field, facet_value, facet_n FROM (
                    SELECT substring(facet_entry, 1, position(facet_entry, '=') - 1) AS facet_field,
                           substring(facet_entry, position(facet_entry, '=') + 1, length(facet_entry))
                               AS facet_value,
                           sum(sign) AS facet_n
                    FROM {TABLE}
                    ARRAY JOIN arrayConcat(
                        arrayFilter(entry_ -> {field_of.format("%(fs)s")}, kv),
                        arrayFilter(entry_ -> {field_of.format("%(fa)s")}, ka)) AS facet_entry
                    WHERE {self._scope} AND ({self.where})
                    GROUP BY facet_field, facet_value HAVING facet_n > 0
                ) ORDER BY facet_field, facet_n DESC, facet_value LIMIT {FACET_LIMIT} BY facet_field""",
            self._params(fs=strings or [""], fa=arrays or [""]),
        )
        if rows is None:
            return None
        for name, value, n in rows:
            if name in result:
                result[name].append({"value": value, "count": int(n)})
        return result
