"""Shared, typed dependencies: every route gets its tenant's session through `Session`."""

from collections.abc import AsyncIterator
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.cache import authenticate_api_key
from app.auth.service import Principal, Role, principal_from_token
from app.config import Settings
from app.db import TenantReader
from app.errors import Forbidden, Unauthorized

api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKeyAuth",
                              description="An API key created with `pim apikey create` or POST /api/auth/api-keys/")
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="BearerAuth", bearerFormat="JWT",
                           description="A JWT with `tenant_id`, `role` and `exp` claims")

PG_BIGINT_MAX = 2**63 - 1
ObjectId = Annotated[int, Path(ge=1, le=PG_BIGINT_MAX, description="Object id")]


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
    api_key: Annotated[str | None, Depends(api_key_scheme)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    if not api_key and not (bearer and bearer.credentials):
        raise Unauthorized("Send an API key in X-API-Key or a JWT in Authorization: Bearer")
    state = request.app.state
    if api_key:
        principal = await authenticate_api_key(state.principal_cache, state.read_pool, api_key)
    else:
        # a pooled raw connection, not the request's session: lean read routes have no session
        async with state.read_pool.acquire() as conn:
            principal = await principal_from_token(conn, state.settings, bearer.credentials, state.known_tenants)
    request.state.tenant_id = principal.tenant_id
    return principal


def require_role(minimum: Role):
    async def _check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role.rank < minimum.rank:
            raise Forbidden(f"This action needs the {minimum.value} role")
        return principal

    return _check


Viewer = Annotated[Principal, Depends(require_role(Role.viewer))]
Editor = Annotated[Principal, Depends(require_role(Role.editor))]
Admin = Annotated[Principal, Depends(require_role(Role.admin))]


async def _tenant_session(session: RawSession, principal: Annotated[Principal, Depends(get_principal)]) -> AsyncSession:
    session.info["tenant_id"] = principal.tenant_id  # scopes every ORM statement of this request
    return session


# The request's session, already bound to the caller's tenant.
Session = Annotated[AsyncSession, Depends(_tenant_session)]


async def _tenant_reader(request: Request, principal: Annotated[Principal, Depends(require_role(Role.viewer))]) -> TenantReader:
    return TenantReader(principal.tenant_id, request.app.state.read_pool)


# For hot read routes: the viewer's tenant and pooled raw connections, no session or transaction.
Reader = Annotated[TenantReader, Depends(_tenant_reader)]


def get_arq(request: Request) -> ArqRedis:
    return request.app.state.arq


Arq = Annotated[ArqRedis, Depends(get_arq)]
