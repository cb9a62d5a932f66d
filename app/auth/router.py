from fastapi import Request, status

from app.auth import service
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.db import after_commit, tenant_of
from app.deps import AdminSession, ObjectId
from app.errors import AUTH_ERRORS, error_responses
from app.routing import api_router

router = api_router(prefix="/api/auth/api-keys", tags=["auth"], responses=AUTH_ERRORS)


@router.post("/", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_api_key(body: ApiKeyCreate, session: AdminSession):
    row, key = await service.create_api_key(
        session, tenant_of(session), name=body.name, role=body.role
    )
    return ApiKeyCreated(
        id=row.id,
        name=row.name,
        role=row.role,
        prefix=row.prefix,
        created_at=row.created_at,
        api_key=key,
    )


@router.get("/", response_model=list[ApiKeyOut])
async def list_api_keys(session: AdminSession):
    return await service.list_api_keys(session)


@router.delete("/{key_id}/", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404))
async def revoke_api_key(key_id: ObjectId, session: AdminSession, request: Request) -> None:
    key_hash = await service.revoke_api_key(session, key_id)
    cache = request.app.state.principal_cache

    async def forget() -> None:  # before the commit a request could cache the key again
        cache.forget(key_hash)  # other processes drop it on the NOTIFY, delivered on commit

    after_commit(session, forget)
