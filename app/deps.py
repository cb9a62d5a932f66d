"""Shared, typed dependencies. A route gets its tenant's session, and states its role, through
`ViewerSession`, `EditorSession` or `AdminSession` (or `Reader`, a viewer's lean reads)."""

import math
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.service import Principal, Role
from app.changes.context import CONTEXT_KEY, request_context
from app.config import Settings
from app.db import TenantReader, tenant_of
from app.errors import Forbidden, TooManyRequests
from app.products.rules import INT64_MAX
from app.query.parsing import condition_count
from app.query.querystring import CONTROL_PARAMS

# the scope key of `request_exits`
REQUEST_EXITS = "pim.request_exits"

api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKeyAuth",
    description="An API key created with `pim apikey create` or POST /api/auth/api-keys/",
)
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerAuth",
    bearerFormat="JWT",
    description="A JWT with `tenant_id`, `role` and `exp` claims",
)

ObjectId = Annotated[int, Path(ge=1, le=INT64_MAX, description="Object id")]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def _db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session and transaction per request: commit on success, roll back on error."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


RawSession = Annotated[AsyncSession, Depends(_db_session, scope="function")]


async def get_principal(
    request: Request,
    _api_key: Annotated[str | None, Depends(api_key_scheme)],
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller. GuardedRoute (app/routing.py) authenticated it from the headers before the body was
    read; the two security schemes are declared here for the OpenAPI document."""
    return request.state.principal


class RoleRequirement:
    """The caller, who must hold at least `role`. The role-carrying types below depend on it;
    GuardedRoute (app/routing.py) finds the highest requirement among a route's dependencies,
    refuses a lower role with a 403 right after authentication (before the body is read) and
    publishes it as the operation's `x-required-role`."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(self, principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        # GuardedRoute refused a lower role before the body was read; checked again here as a
        # second line, should a route ever run this dependency without that guard
        if principal.role.rank < self.role.rank:
            raise Forbidden(f"This action needs the {self.role.value} role")
        return principal


CALLER = {role: RoleRequirement(role) for role in Role}


def _tenant_session(role: Role):
    async def tenant_session(
        session: RawSession, principal: Annotated[Principal, Depends(CALLER[role])]
    ) -> AsyncSession:
        # scopes every ORM statement of this request
        session.info["tenant_id"] = principal.tenant_id
        if role is not Role.viewer:  # who the change log says wrote; a viewer's session never
            # writes, so its reads are spared the statement that sets it
            session.info[CONTEXT_KEY] = request_context(principal)
        return session

    return tenant_session


# The request's session, bound to the caller's tenant, for a caller holding at least that role:
# a route's role is the type of its session (viewer reads, editor writes, admin manages).
ViewerSession = Annotated[AsyncSession, Depends(_tenant_session(Role.viewer))]
EditorSession = Annotated[AsyncSession, Depends(_tenant_session(Role.editor))]
AdminSession = Annotated[AsyncSession, Depends(_tenant_session(Role.admin))]


async def _tenant_reader(
    request: Request, principal: Annotated[Principal, Depends(CALLER[Role.viewer])]
) -> TenantReader:
    return TenantReader(principal.tenant_id, request.app.state.lean_pool)


# For hot read routes: the viewer's tenant and pooled raw connections, no session or transaction.
Reader = Annotated[TenantReader, Depends(_tenant_reader)]


@dataclass(frozen=True, slots=True)
class HeavyRead:
    """A read that evaluates a predicate the client supplied, under its time budget: a statement
    running longer than `timeout_ms` is cancelled, and the error handlers (app/errors.py) answer
    the 503 that names `what` was cut short."""

    what: str
    timeout_ms: int


HEAVY_READS_REFUSED = (
    "Too many heavy reads (previews, searches, lists with many filters) for this tenant; "
    "retry later"
)


@asynccontextmanager
async def _heavy_read(
    request: Request, tenant_id: int, *, conditions: int, what: str
) -> AsyncIterator[HeavyRead]:
    """A slot among the tenant's heavy reads of this process and its tokens (one per
    PIM_HEAVY_READ_CONDITIONS_PER_TOKEN conditions, at least one) from the tenant's heavy-read
    bucket; more are a 429."""
    settings = request.app.state.settings
    with request.app.state.heavy_reads.slot(tenant_id):
        cost = max(1, math.ceil(conditions / settings.heavy_read_conditions_per_token))
        quota = await request.app.state.rate_limiter.take_heavy(tenant_id, cost)
        if quota is not None and not quota.allowed:
            raise TooManyRequests(HEAVY_READS_REFUSED, retry_after=quota.retry_after_seconds)
        heavy = HeavyRead(what, settings.heavy_read_timeout_ms)
        request.state.heavy_read = heavy  # how the error handlers name a cancelled statement
        yield heavy


async def _body_conditions(request: Request) -> int:
    # the body is already read (FastAPI does that before the dependencies), not yet checked;
    # a body FastAPI does not read as JSON is refused later, and counts as no condition
    try:
        return condition_count(await request.json()) if await request.body() else 0
    except ValueError:
        return 0


def _query_conditions(request: Request) -> int:
    return sum(1 for key, _value in request.query_params.multi_items() if key not in CONTROL_PARAMS)


async def _search_reader(request: Request, reader: Reader) -> AsyncIterator[TenantReader]:
    conditions = await _body_conditions(request)
    async with _heavy_read(
        request, reader.tenant_id, conditions=conditions, what="search"
    ) as heavy:
        yield replace(reader, timeout_ms=heavy.timeout_ms)


async def _definition_session(
    request: Request, session: ViewerSession
) -> AsyncIterator[AsyncSession]:
    conditions = await _body_conditions(request)
    tenant_id = tenant_of(session)
    async with _heavy_read(request, tenant_id, conditions=conditions, what="preview") as heavy:
        # for the rest of this transaction only (the request's session commits at the end)
        await session.execute(
            select(func.set_config("statement_timeout", str(heavy.timeout_ms), True))
        )
        yield session


def request_exits(request: Request) -> AsyncExitStack:
    """What a dependency holds until the route's handler has returned (a heavy read's slot), for
    dependencies that only sometimes hold something: GuardedRoute closes the stack after the
    handler. (A `yield` dependency costs FastAPI an exit stack and a shielded cancel scope on every
    request, a tenth of a list's CPU, even when it holds nothing.)"""
    exits = request.scope.get(REQUEST_EXITS)
    if exits is None:
        exits = request.scope[REQUEST_EXITS] = AsyncExitStack()
    return exits


async def _filter_reader(request: Request, reader: Reader) -> TenantReader:
    conditions = _query_conditions(request)
    if conditions <= request.app.state.settings.heavy_read_conditions_per_token:
        return reader  # a plain list: as cheap as the hot path must stay
    heavy = await request_exits(request).enter_async_context(
        _heavy_read(request, reader.tenant_id, conditions=conditions, what="filtered read")
    )
    return replace(reader, timeout_ms=heavy.timeout_ms)


# Every route that evaluates a predicate the client supplied (a definition in its body, or many
# filters in its query string) reads through one of these: it is a heavy read. At most
# PIM_HEAVY_READS_PER_TENANT of a tenant's run at once in a process, each takes one token per
# PIM_HEAVY_READ_CONDITIONS_PER_TOKEN conditions (at least one) from the tenant's heavy-read bucket
# (PIM_HEAVY_READS_PER_SECOND / _BURST), more are a 429, and its statements are cancelled after
# PIM_HEAVY_READ_TIMEOUT_MS, a 503. `check_routes_guarded` (app/routing.py) refuses to start with a
# viewer route taking a definition that does not.
PreviewSession = Annotated[AsyncSession, Depends(_definition_session)]
SearchReader = Annotated[TenantReader, Depends(_search_reader)]
# A list's query-string filters: up to PIM_HEAVY_READ_CONDITIONS_PER_TOKEN (20) are a plain read,
# more a heavy one.
FilterReader = Annotated[TenantReader, Depends(_filter_reader)]
HEAVY_READ_DEPENDENCIES = (_definition_session, _search_reader, _filter_reader)
# those that may enter `request_exits`
EXITING_DEPENDENCIES = (_filter_reader,)
# those whose predicate is in the body: GuardedRoute refuses them before reading it when it can
HEAVY_BODY_READ_DEPENDENCIES = (_definition_session, _search_reader)


def get_arq(request: Request) -> ArqRedis:
    return request.app.state.arq


Arq = Annotated[ArqRedis, Depends(get_arq)]
