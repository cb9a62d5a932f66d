"""Who is calling: the one place that turns a request's credential headers into a Principal.

It reads headers only, so that it runs before a route reads its body (app/routing.py: GuardedRoute)
and an unauthenticated client cannot make us read, buffer or parse a large body. An API key is
served from the per-process cache when it can be; a wrong key is remembered (`PrincipalCache.reject`)
so that repeating it costs no lookup, and every failure takes a token from the client IP's bucket:
while that bucket is empty, a key that needs a lookup is a 429 (app/ratelimit.py).
"""

from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from app.auth.cache import look_up_api_key
from app.auth.service import Principal, hash_key, principal_from_token
from app.errors import BadRequest, ErrorCode, TooManyRequests, Unauthorized
from app.ratelimit import Quota


def client_ip(request: HTTPConnection) -> str:
    return request.client.host if request.client else "unknown"


async def authenticate(request: HTTPConnection) -> Principal:
    """The caller's principal, from `X-API-Key` or `Authorization: Bearer <JWT>`: one of them (both
    are a 400 `ambiguous_credentials`, since they may name different tenants or roles)."""
    state = request.app.state
    api_key = request.headers.get("x-api-key")
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer":
        token = ""
    if not api_key and not token:
        raise Unauthorized("Send an API key in X-API-Key or a JWT in Authorization: Bearer")
    if api_key and token:
        raise BadRequest(
            "Send one credential: an API key in X-API-Key or a JWT in Authorization: Bearer, "
            "not both",
            code=ErrorCode.ambiguous_credentials,
            param="Authorization",
        )
    try:
        if api_key:
            return await _from_api_key(request, api_key)
        try:
            # a pooled raw connection (only for a tenant this process has not seen): lean read
            # routes have no session
            return await principal_from_token(
                state.read_pool, state.settings, token, state.known_tenants
            )
        except Unauthorized as exc:
            raise exc.invalid_token() from None
    except Unauthorized:
        _answer_with(request, await state.rate_limiter.credentials_failed(client_ip(request)))
        raise


async def _from_api_key(request: HTTPConnection, api_key: str) -> Principal:
    state = request.app.state
    cache = state.principal_cache
    key_hash = hash_key(api_key)
    principal = cache.get(key_hash)
    if principal is not None:
        return principal
    if cache.rejected(key_hash):
        raise Unauthorized("Invalid or revoked API key", scheme="ApiKey")
    quota = await state.rate_limiter.may_look_up_credentials(client_ip(request))
    _answer_with(request, quota)
    if quota is not None and not quota.allowed:
        raise TooManyRequests(
            "Too many failed authentications from this address",
            retry_after=quota.retry_after_seconds,
        )
    return await look_up_api_key(cache, state.read_pool, api_key, key_hash)


def _answer_with(request: HTTPConnection, quota: Quota | None) -> None:
    """The IP bucket's figures for the RateLimit-* headers of this (failing) request's answer."""
    if quota is not None:
        request.state.quota = quota
