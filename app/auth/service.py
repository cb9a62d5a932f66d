"""Tenants, API keys (random, prefix shown, only a hash stored) and JWTs."""

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import asyncpg
from jose import JWTError, jwt
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import ReadPool, all_tenants, one_or_not_found, page_after_id
from app.errors import BadRequest, Conflict, NotFound, Unauthorized
from app.models import ApiKey, Tenant
from app.products.rules import INT64_MAX

KEY_PREFIX = "pim"
REVOKED_CHANNEL = "pim_api_key_revoked"  # NOTIFY payload: the revoked key's hash
JWT_LEEWAY_SECONDS = 60  # clock skew allowed for `iat`


class Role(StrEnum):
    viewer = "viewer"
    editor = "editor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Role.viewer: 0, Role.editor: 1, Role.admin: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: int
    role: Role
    subject: str
    api_key_id: int | None = None


def hash_key(api_key: str) -> str:
    # keys carry 256 bits of randomness, so a plain SHA-256 (no salt, no KDF) is enough
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> tuple[str, str]:
    """Return (prefix, key); the prefix is the key's visible, non-secret start."""
    prefix = f"{KEY_PREFIX}_{secrets.token_hex(4)}"
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


async def create_tenant(session: AsyncSession, *, slug: str) -> Tenant:
    tenant = Tenant(slug=slug)
    session.add(tenant)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"Tenant {slug!r} already exists") from None
    return tenant


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant:
    return await one_or_not_found(
        session, select(Tenant).where(Tenant.slug == slug), f"Tenant {slug!r} not found"
    )


async def create_api_key(
    session: AsyncSession, tenant_id: int, *, name: str, role: Role
) -> tuple[ApiKey, str]:
    prefix, key = new_api_key()
    row = ApiKey(
        tenant_id=tenant_id, name=name, role=role.value, prefix=prefix, key_hash=hash_key(key)
    )
    session.add(row)
    await session.flush()
    await session.refresh(row, ["created_at"])
    return row, key


async def list_api_keys(session: AsyncSession, *, after: int | None, limit: int) -> list[ApiKey]:
    """Up to `limit` keys that are not revoked, after the id `after`, by id (keyset)."""
    return await page_after_id(
        session, ApiKey, ApiKey.revoked_at.is_(None), after=after, limit=limit
    )


async def revoke_api_key(session: AsyncSession, key_id: int) -> str:
    """Revoke a key and tell every API process (NOTIFY, delivered on commit) to drop it from its
    cache of principals; returns its hash so the caller can drop it locally after the commit."""
    key_hash = await session.scalar(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(ApiKey.key_hash)
        .execution_options(synchronize_session=False)
    )
    if key_hash is None:
        raise NotFound("API key not found")
    await session.execute(select(func.pg_notify(REVOKED_CHANNEL, key_hash)))
    return key_hash


async def principal_from_api_key(conn: asyncpg.Connection, api_key: str) -> Principal:
    if not api_key.startswith(KEY_PREFIX + "_") or len(api_key) > 200:
        raise Unauthorized("Invalid API key", scheme="ApiKey")
    # every request runs this: one indexed lookup on a raw pooled connection, no ORM
    row = await conn.fetchrow(
        all_tenants(  # the key names its tenant
            "SELECT id, tenant_id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        ),
        hash_key(api_key),
    )
    if row is None:
        raise Unauthorized("Invalid or revoked API key", scheme="ApiKey")
    return Principal(
        tenant_id=row["tenant_id"],
        role=Role(row["role"]),
        subject=f"api-key:{row['id']}",
        api_key_id=row["id"],
    )


def _verification_key(settings: Settings) -> tuple[str, tuple[str, ...]]:
    # One key type, one family of algorithms: a public key is never used as an HMAC secret.
    if settings.jwt_public_key:
        return settings.jwt_public_key, ("RS256", "ES256")
    return settings.jwt_secret, ("HS256",)


def decode_token(settings: Settings, token: str) -> dict:
    key, allowed = _verification_key(settings)
    try:
        header = jwt.get_unverified_header(token)
    except JWTError:
        raise Unauthorized("Malformed token") from None
    algorithm = header.get("alg")
    if algorithm not in allowed:
        raise Unauthorized("Token algorithm not allowed")
    if "crit" in header:
        # RFC 7515 4.1.11: a recipient must refuse extensions it does not understand, and we understand none
        raise Unauthorized("Token has a crit header")
    options = {
        "require_exp": True,
        "verify_aud": settings.jwt_audience is not None,
        "require_aud": settings.jwt_audience is not None,
        "require_iss": settings.jwt_issuer is not None,
    }
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options=options,
        )
    except JWTError as exc:
        raise Unauthorized(f"Invalid token: {exc}") from None
    _check_lifetime(settings, claims)
    return claims


def _check_lifetime(settings: Settings, claims: dict) -> None:
    """A stolen token must not be good forever: `exp` at most PIM_JWT_MAX_LIFETIME_SECONDS after
    `iat` (after now when there is no `iat`), and `iat` not in the future."""
    now = time.time()
    issued_at = claims.get("iat")
    if issued_at is not None:
        if not isinstance(issued_at, (int, float)) or isinstance(issued_at, bool):
            raise Unauthorized("Invalid token: iat must be a number")
        if issued_at > now + JWT_LEEWAY_SECONDS:
            raise Unauthorized("Invalid token: issued in the future (iat)")
    # jose has checked that exp is a number in the future
    if (
        claims["exp"] - (issued_at if issued_at is not None else now)
        > settings.jwt_max_lifetime_seconds
    ):
        raise Unauthorized(
            f"Invalid token: lives longer than {settings.jwt_max_lifetime_seconds} s (exp - iat)"
        )


async def principal_from_token(
    pool: ReadPool, settings: Settings, token: str, known_tenants: set[int]
) -> Principal:
    claims = decode_token(settings, token)
    tenant_id = claims.get("tenant_id")
    # ASCII digits only: str.isdigit() is also true for "²" (which int() refuses) and "٢" (which it reads as 2)
    if isinstance(tenant_id, str) and tenant_id.isascii() and tenant_id.isdigit():
        tenant_id = int(tenant_id)
    if (
        not isinstance(tenant_id, int)
        or isinstance(tenant_id, bool)
        or not 0 < tenant_id <= INT64_MAX
    ):
        raise Unauthorized("Token has no valid tenant_id claim")
    try:
        role = Role(claims.get("role", Role.viewer))
    except ValueError:
        raise Unauthorized("Token has an unknown role") from None
    if tenant_id not in known_tenants:
        async with pool.acquire() as conn:
            if await conn.fetchval("SELECT id FROM tenants WHERE id = $1", tenant_id) is None:
                raise Unauthorized("Unknown tenant")
        known_tenants.add(
            tenant_id
        )  # tenants are never deleted, so a positive answer can be cached
    return Principal(
        tenant_id=tenant_id, role=role, subject=str(claims.get("sub") or f"tenant:{tenant_id}")
    )


def issue_token(
    settings: Settings, *, tenant_id: int, role: Role, ttl: int = 3600, subject: str | None = None
) -> str:
    if not 0 < ttl <= settings.jwt_max_lifetime_seconds:
        raise BadRequest(
            f"ttl must be between 1 and {settings.jwt_max_lifetime_seconds} s (PIM_JWT_MAX_LIFETIME_SECONDS)"
        )
    now = int(time.time())
    claims = {
        "tenant_id": tenant_id,
        "role": role.value,
        "sub": subject or f"cli:{tenant_id}",
        "iat": now,
        "exp": now + ttl,
    }
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_public_key:
        if not settings.jwt_private_key:
            raise BadRequest("PIM_JWT_PRIVATE_KEY is needed to sign RS256/ES256 tokens")
        return jwt.encode(claims, settings.jwt_private_key, algorithm=settings.jwt_algorithm)
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
