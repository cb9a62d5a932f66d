from fastapi import Request, Response, status

from app.auth import service
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPage
from app.db import after_commit, tenant_of
from app.deps import AdminSession, ObjectId
from app.errors import AUTH_ERRORS, error_responses
from app.pagination import DEFAULT_LIMIT, Cursor, Limit, after_id, id_page
from app.routing import NO_IDEMPOTENCY_EXTENSION, api_router, set_location

router = api_router(prefix="/api/auth/api-keys", tags=["auth"], responses=AUTH_ERRORS)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    openapi_extra={NO_IDEMPOTENCY_EXTENSION: True},
)
async def create_api_key(
    body: ApiKeyCreate, session: AdminSession, request: Request, response: Response
):
    """A new key of the caller's tenant with the given role. The secret `api_key` is in this
    answer only (the service keeps its hash); `Location` is the URL that revokes it.
    Create an API key; `api_key` is in this answer only. `Idempotency-Key` is refused (`400`):
    the answer holds the secret, which is stored nowhere, so it could not be replayed."""
    row, key = await service.create_api_key(
        session, tenant_of(session), name=body.name, role=body.role
    )
    # a key has no read of its own: its URL is the one that revokes it
    set_location(request, response, "revoke_api_key", key_id=row.id)
    return ApiKeyCreated(
        id=row.id,
        name=row.name,
        role=row.role,
        prefix=row.prefix,
        created_at=row.created_at,
        api_key=key,
    )


@router.get("/", response_model=ApiKeyPage, responses=error_responses(400))
async def list_api_keys(session: AdminSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    """The tenant's keys that are not revoked, by id, a page at a time: `next_cursor` (opaque)
    fetches the next page and is `null` on the last one (keyset)."""
    after = after_id("api-keys", cursor)
    page = await service.list_api_keys(session, after=after, limit=limit + 1)
    return id_page("api-keys", page, limit)


@router.delete("/{key_id}/", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404))
async def revoke_api_key(key_id: ObjectId, session: AdminSession, request: Request) -> None:
    """Revoke the key: every API process refuses it from the commit on."""
    key_hash = await service.revoke_api_key(session, key_id)
    cache = request.app.state.principal_cache

    async def forget() -> None:  # before the commit a request could cache the key again
        cache.forget(key_hash)  # other processes drop it on the NOTIFY, delivered on commit

    after_commit(session, forget)
