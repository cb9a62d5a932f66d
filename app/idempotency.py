"""`Idempotency-Key` on every POST (Stripe's semantics; docs/contract.md, "Idempotent retries").

A POST sent with the header is run at most once per key, tenant and credential:

- the key is claimed (`INSERT ... ON CONFLICT`, a statement of its own on a pooled connection)
  before the route runs; a duplicate sent while it runs finds the claim in flight: `409
  idempotency_key_in_flight`;
- once the route's transaction has committed, its answer (status, body, `Location`, `ETag`,
  `Content-Type`) is stored in the row; the same key with the same request (method, path and
  query, body) gets that answer again, with `Idempotent-Replayed: true`; with another request it
  is a `409 idempotency_key_reused`;
- a route that fails (any error answer: nothing was committed, or the commit failed) deletes
  its claim, so that a retry runs again;
- a row older than PIM_IDEMPOTENCY_KEY_HOURS (24) is taken over by a new claim, and the worker's
  maintenance deletes it; so is a claim in flight for PIM_IDEMPOTENCY_IN_FLIGHT_SECONDS (3600),
  which a process that died mid-request left behind.

A JSON body is hashed once read (before the tenant's turn); an upload's body is hashed as it
streams (`BodyHasher`, bounded memory), and its fingerprint is only known once the route has
read it: the claim is taken without one, and a replay drains the body to compare.
"""

import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from fastapi import Request, Response
from starlette.types import Message, Receive

from app.auth.service import Principal
from app.db import all_tenants, tenant_is
from app.errors import AppError, BadRequest, ErrorCode

log = structlog.get_logger("pim.idempotency")

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX = 255
_KEY = re.compile(r"[\x21-\x7e]{1,255}\Z")  # visible ASCII: a UUID, a ULID, any client token
# the headers of an answer that a replay repeats (the request id, rate-limit headers and
# `Idempotent-Replayed` are the replay's own)
KEPT_HEADERS = ("content-type", "location", "etag")

PRUNE_BATCH = 10_000


class IdempotencyConflict(AppError):
    status_code = 409

    def __init__(self, detail: str, *, code: ErrorCode):
        super().__init__(detail, code=code, param=KEY_HEADER)
        if code is ErrorCode.idempotency_key_in_flight:
            self.headers = {"Retry-After": "1"}


def key_of(request: Request) -> str | None:
    """The request's Idempotency-Key, checked (400 for one that is no visible-ASCII token of at
    most 255 characters); None without one."""
    key = request.headers.get(KEY_HEADER)
    if key is None:
        return None
    if not _KEY.match(key):
        raise BadRequest(
            f"{KEY_HEADER} must be 1 to {KEY_MAX} visible ASCII characters (a UUID, say)",
            param=KEY_HEADER,
        )
    return key


class BodyHasher:
    """SHA-256 of a request: method, path, query and body. A multipart body is hashed without its
    boundary, which a client picks at random for each send of the same file."""

    def __init__(self, request: Request) -> None:
        self._hash = hashlib.sha256()
        query = request.url.query
        self._hash.update(f"{request.method} {request.url.path}?{query}\n".encode())
        boundary = _boundary(request.headers.get("content-type", ""))
        self._boundary = boundary.encode("latin-1") if boundary else b""
        self._carry = b""
        self.complete = False

    def update(self, chunk: bytes) -> None:
        if not self._boundary:
            self._hash.update(chunk)
            return
        # the boundary may straddle two chunks: keep back what could be its start
        data = (self._carry + chunk).replace(self._boundary, b"")
        keep = len(self._boundary) - 1
        self._carry = data[-keep:] if keep else b""
        self._hash.update(data[: len(data) - len(self._carry)])

    def hexdigest(self) -> str:
        self._hash.update(self._carry)
        self._carry = b""
        return self._hash.hexdigest()

    def receive(self, receive: Receive) -> Receive:
        """`receive` that hashes the body as it passes."""

        async def hashing() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.update(message.get("body", b""))
                if not message.get("more_body", False):
                    self.complete = True
            return message

        return hashing


def _boundary(content_type: str) -> str | None:
    media_type, _, params = content_type.partition(";")
    if media_type.strip().lower() != "multipart/form-data":
        return None
    match = re.search(r'boundary="?([^";]+)"?', params, re.IGNORECASE)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class _Stored:
    method: str
    path: str
    fingerprint: str | None
    status_code: int | None
    headers: dict[str, str] | None
    body: bytes | None


_CLAIM = """
    INSERT INTO idempotency_keys AS k (tenant_id, credential, key, claim, method, path, fingerprint)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (tenant_id, credential, key) DO UPDATE
       SET claim = EXCLUDED.claim, method = EXCLUDED.method, path = EXCLUDED.path,
           fingerprint = EXCLUDED.fingerprint, status_code = NULL, headers = NULL, body = NULL,
           created_at = now(), completed_at = NULL
     WHERE k.created_at < now() - make_interval(hours => $8)
        -- a claim still in flight this long was left by a process that died mid-request
        OR (k.status_code IS NULL AND k.created_at < now() - make_interval(secs => $9))
    RETURNING k.claim
"""
_READ = f"""
    SELECT method, path, fingerprint, status_code, headers, body FROM idempotency_keys k
    WHERE {tenant_is("k")} AND k.credential = $2 AND k.key = $3
"""
_FINISH = f"""
    UPDATE idempotency_keys k
       SET status_code = $5, headers = $6, body = $7, fingerprint = $8, completed_at = now()
     WHERE {tenant_is("k")} AND k.credential = $2 AND k.key = $3 AND k.claim = $4
"""
_RELEASE = f"""
    DELETE FROM idempotency_keys k
    WHERE {tenant_is("k")} AND k.credential = $2 AND k.key = $3 AND k.claim = $4
      AND k.status_code IS NULL
"""


class IdempotentCall:
    """One POST sent with an Idempotency-Key, from its claim to its stored answer."""

    def __init__(self, request: Request, principal: Principal, key: str) -> None:
        self.request = request
        self.ids = (principal.tenant_id, principal.subject, key)
        self.claim = uuid.uuid4()
        self.hasher = BodyHasher(request)
        self.response: Response | None = None
        settings = request.app.state.settings
        self._ttl_hours = settings.idempotency_key_hours
        self._in_flight_seconds = float(settings.idempotency_in_flight_seconds)

    async def begin(self, *, streaming: bool) -> Response | None:
        """Claim the key: None when this request runs, else the answer to give (a replay); a
        `409` for a key in flight or used for another request. A JSON body is read here."""
        fingerprint = None
        if not streaming:
            self.hasher.update(await self.request.body())
            self.hasher.complete = True
            fingerprint = self.hasher.hexdigest()
        for _attempt in range(3):  # a claim released between our INSERT and SELECT: again
            async with self.request.app.state.read_pool.acquire() as conn:
                claimed = await conn.fetchval(
                    _CLAIM,
                    *self.ids,
                    self.claim,
                    self.request.method,
                    self.request.url.path,
                    fingerprint,
                    self._ttl_hours,
                    self._in_flight_seconds,
                )
                if claimed is not None:
                    return None
                row = await conn.fetchrow(_READ, *self.ids)
            if row is not None:
                stored = _Stored(**dict(row))
                if stored.status_code is None:
                    raise IdempotencyConflict(
                        f"A request with this {KEY_HEADER} is still being processed; retry "
                        "after it has finished to get its answer",
                        code=ErrorCode.idempotency_key_in_flight,
                    )
                if fingerprint is None:  # an upload's: read and hash the whole body to compare
                    async for chunk in self.request.stream():
                        self.hasher.update(chunk)
                    fingerprint = self.hasher.hexdigest()
                return self._replay(stored, fingerprint)
        raise IdempotencyConflict(
            f"This {KEY_HEADER} is being claimed and released by concurrent requests; retry",
            code=ErrorCode.idempotency_key_in_flight,
        )

    def _replay(self, stored: _Stored, fingerprint: str) -> Response:
        if (
            stored.method != self.request.method
            or stored.path != self.request.url.path
            or stored.fingerprint != fingerprint
        ):
            raise IdempotencyConflict(
                f"This {KEY_HEADER} was used for another request (method, path, query or body "
                "differ): use a new key for a new request",
                code=ErrorCode.idempotency_key_reused,
            )
        headers = orjson.loads(stored.headers) if isinstance(stored.headers, str) else {}
        headers[REPLAYED_HEADER] = "true"
        return Response(
            content=stored.body or b"", status_code=stored.status_code or 200, headers=headers
        )

    def streaming_request(self) -> Request:
        """The request the route gets, whose body is hashed as the route reads it."""
        return type(self.request)(self.request.scope, self.hasher.receive(self.request.receive))

    async def run(self, handler: Callable[[Request], Awaitable[Response]], request: Request):
        """Run the route; its answer is stored (or the claim released) once the route's
        dependencies have closed, that is after the request's session committed: the exit is
        pushed on FastAPI's per-call stack before the session is, so it runs after it."""
        stack = request.scope.get("fastapi_function_astack")
        if stack is None:  # not run by FastAPI's route handler: nothing closes after us
            try:
                self.response = await handler(request)
            except BaseException:
                await self._release()
                raise
            await self._finish()
            return self.response
        stack.push_async_exit(self._exit)
        self.response = await handler(request)
        return self.response

    async def _exit(self, exc_type: Any, _exc: Any, _tb: Any) -> bool:
        if exc_type is None and self.response is not None:
            await self._finish()
        else:
            await self._release()
        return False

    async def _finish(self) -> None:
        response = self.response
        body = getattr(response, "body", None)
        if (
            response is None
            or response.status_code >= 400
            or not isinstance(body, bytes)
            or not self.hasher.complete  # the route did not read the whole body
        ):
            await self._release()
            return
        headers = {
            name: response.headers[name] for name in KEPT_HEADERS if name in response.headers
        }
        try:
            async with self.request.app.state.read_pool.acquire() as conn:
                await conn.execute(
                    _FINISH,
                    *self.ids,
                    self.claim,
                    response.status_code,
                    orjson.dumps(headers).decode(),
                    body,
                    self.hasher.hexdigest(),
                )
        except Exception as exc:  # the answer is sent all the same; a retry finds the key in flight
            log.warning("idempotency_store_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    async def _release(self) -> None:
        try:
            async with self.request.app.state.read_pool.acquire() as conn:
                await conn.execute(_RELEASE, *self.ids, self.claim)
        except Exception as exc:
            log.warning("idempotency_release_failed", error=f"{type(exc).__name__}: {exc}"[:300])


async def prune_idempotency_keys(conn, *, hours: int, batch: int = PRUNE_BATCH) -> int:
    """Delete up to `batch` keys older than `hours` (every tenant's: the worker's maintenance)."""
    result = await conn.execute(
        all_tenants(
            """DELETE FROM idempotency_keys WHERE ctid IN (
                   SELECT ctid FROM idempotency_keys
                   WHERE created_at < now() - make_interval(hours => $1) LIMIT $2)"""
        ),
        hours,
        batch,
    )
    return int(result.split()[-1])
