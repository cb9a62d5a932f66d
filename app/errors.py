"""Domain errors and the handlers that turn every error into `{"detail": ...}`."""

from typing import Any

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlAlchemyPoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from app.responses import OrjsonResponse

log = structlog.get_logger("pim.errors")


class ErrorBody(BaseModel):
    detail: str


class GoneBody(ErrorBody):
    code: str
    oldest_seq: int


class AppError(Exception):
    status_code = 400
    headers: dict[str, str] | None = None
    extra: dict[str, Any] | None = None  # more members of the body, beside `detail`

    def __init__(self, detail: str, *, status_code: int | None = None):
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401

    def __init__(self, detail: str = "Authentication required", *, scheme: str = "Bearer"):
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": f'{scheme} realm="pim"'}


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class PayloadTooLarge(AppError):
    status_code = 413


class Gone(AppError):
    status_code = 410

    def __init__(self, detail: str, *, code: str, **extra: Any):
        super().__init__(detail)
        self.extra = {"code": code, **extra}


class Unavailable(AppError):
    status_code = 503


class PoolExhausted(Unavailable):
    """Every database connection of this process stayed busy for PIM_DB_POOL_TIMEOUT_SECONDS."""

    def __init__(self, detail: str = "All database connections are busy; retry shortly"):
        super().__init__(detail)
        self.headers = {"Retry-After": "1"}


class ConnectionsRefused(PoolExhausted):
    """Postgres refused a new connection (CONNECTION_REFUSED_STATES): it is at a connection limit or
    not accepting connections yet; like our own pool exhausted, a retry shortly may pass."""

    def __init__(
        self, detail: str = "The database refuses new connections right now; retry shortly"
    ):
        super().__init__(detail)


class TooManyRequests(AppError):
    status_code = 429

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, retry_after))}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the OpenAPI document."""
    descriptions = {
        400: "Bad request",
        401: "Missing or invalid credentials",
        403: "Not allowed for this role",
        404: "Not found for this tenant",
        409: "Conflict",
        410: "No longer kept",
        413: "Payload too large",
        415: "Unsupported file type",
        429: "Rate limit or concurrency limit exceeded: retry after `Retry-After` seconds",
        503: "A backing service is unavailable",
    }
    return {
        code: {"model": GoneBody if code == 410 else ErrorBody, "description": descriptions[code]}
        for code in codes
    }


AUTH_ERRORS = error_responses(401, 403)

# nginx's status for a request whose client went away: only the access log ever sees it
CLIENT_CLOSED_REQUEST = 499

# What FastAPI raises (as a 400) when a request body cannot be decoded at all.
FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"


# a statement cancelled, by statement_timeout most often
QUERY_CANCELED = "57014"


# Postgres refusing a new connection: 53300 too_many_connections (max_connections, or a role's or
# database's CONNECTION LIMIT), 53400 configuration_limit_exceeded, 57P03 cannot_connect_now
# (starting up, shutting down, in recovery)
CONNECTION_REFUSED_STATES = frozenset({"53300", "53400", "57P03"})


def sqlstate_of(exc: DBAPIError) -> str:
    """The SQLSTATE of a database error SQLAlchemy wrapped ("" when there is none)."""
    orig = getattr(exc, "orig", None)
    if "QueryCanceled" in type(orig).__name__:
        return QUERY_CANCELED
    return (
        getattr(orig, "sqlstate", None)
        or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
        or ""
    )


def _json(
    status: int,
    detail: Any,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> OrjsonResponse:
    return OrjsonResponse({"detail": detail, **(extra or {})}, status_code=status, headers=headers)


# deadlock_detected, serialization_failure: Postgres aborted the transaction for a concurrent one;
# nothing was written and the same request can simply be sent again
_CONCURRENCY_STATES = frozenset({"40P01", "40001"})


def _concurrent_write(exc: Exception) -> OrjsonResponse:
    log.warning("concurrent_write_conflict", error=str(exc)[:300])
    return _json(
        503,
        "The database aborted this request to resolve a conflict with a concurrent write; "
        "nothing was written, retry it",
        {"Retry-After": "1"},
    )


MAX_ECHOED_CHARS = 1000


def _short_input(value: Any) -> Any:
    """A validation error's `input`, unless it is large (a 10,001-item bulk body, a megabyte string
    deep inside an object): then a short description of it."""
    if isinstance(value, str):
        return value if len(value) <= MAX_ECHOED_CHARS else value[:MAX_ECHOED_CHARS] + "…"
    if not isinstance(value, (list, tuple, dict)):
        return value
    try:
        size = len(orjson.dumps(value, default=str))
    except TypeError:  # integers beyond 64 bits, lone surrogates, deep nesting
        size = None
    if size is not None and size <= MAX_ECHOED_CHARS:
        return value
    kind = "object with" if isinstance(value, dict) else "list of"
    return f"<{kind} {len(value)} items>"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError):
        return _json(exc.status_code, exc.detail, exc.headers, exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR:
            # A JSON body that is not UTF-8 text: malformed JSON like any other (FastAPI answers 422
            # `json_invalid` for bad syntax but a bare 400 for bad encoding).
            return _json(
                422,
                [
                    {
                        "type": "json_invalid",
                        "loc": ["body"],
                        "msg": "JSON decode error",
                        "input": None,
                        "ctx": {"error": "the body is not valid UTF-8"},
                    }
                ],
            )
        return _json(exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError):
        errors = []
        for err in exc.errors():
            err = dict(err)
            err.pop("url", None)
            ctx = err.get("ctx")
            if ctx:
                err["ctx"] = {
                    k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
                    for k, v in ctx.items()
                }
            if isinstance(err.get("input"), (bytes, bytearray)):
                err["input"] = err["input"].decode("utf-8", "replace")
            err["input"] = _short_input(err.get("input"))
            errors.append(err)
        return _json(422, errors)

    def _database_error(
        request: Request, exc: Exception, sqlstate: str, *, unavailable: bool = False
    ):
        if sqlstate == QUERY_CANCELED:
            heavy = getattr(request.state, "heavy_read", None)  # app/deps.py, HeavyRead
            if heavy is not None:
                return _json(
                    503,
                    f"The {heavy.what} took longer than {heavy.timeout_ms} ms and was cancelled: "
                    "narrow it (fewer or simpler conditions), or retry later",
                )
            return _json(
                503,
                "The database statement took too long and was cancelled: narrow the filters, or retry a write later",
            )
        if sqlstate in _CONCURRENCY_STATES:
            return _concurrent_write(exc)
        if sqlstate in CONNECTION_REFUSED_STATES:
            log.warning("database_refused_connection", path=request.url.path, sqlstate=sqlstate)
            refused = ConnectionsRefused()
            return _json(refused.status_code, refused.detail, refused.headers)
        if unavailable or sqlstate.startswith(("08", "57P")):
            log.warning("database_unavailable", path=request.url.path, error=str(exc)[:300])
            return _json(503, "The database is unavailable")
        if sqlstate.startswith("22"):
            return _json(400, "A value is out of range or malformed")
        if sqlstate == "23505":
            # a unique constraint: a concurrent request created the same name, SKU or slug first
            return _json(409, "An object with this unique value already exists")
        log.exception("database_error", path=request.url.path)
        return _json(500, "Internal server error")

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError):
        return _database_error(
            request,
            exc,
            sqlstate_of(exc),
            unavailable=isinstance(exc, (OperationalError, InterfaceError)),
        )

    @app.exception_handler(asyncpg.PostgresError)
    async def _asyncpg_error(request: Request, exc: asyncpg.PostgresError):
        return _database_error(request, exc, getattr(exc, "sqlstate", "") or "")

    @app.exception_handler(asyncpg.InterfaceError)
    async def _asyncpg_interface_error(request: Request, exc: asyncpg.InterfaceError):
        log.warning("database_unavailable", path=request.url.path, error=str(exc)[:300])
        return _json(503, "The database is unavailable")

    @app.exception_handler(SqlAlchemyPoolTimeout)
    async def _pool_timeout(request: Request, exc: SqlAlchemyPoolTimeout):
        log.warning("database_pool_exhausted", path=request.url.path)
        error = PoolExhausted()
        return _json(error.status_code, error.detail, error.headers)

    @app.exception_handler(ClientDisconnect)
    async def _client_disconnect(request: Request, _exc: ClientDisconnect):
        # the client went away while sending its body: nobody reads this answer, and it is no server error
        log.info("client_disconnected", path=request.url.path)
        return _json(CLIENT_CLOSED_REQUEST, "Client closed the request")

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError):
        log.warning("backend_unreachable", path=request.url.path, error=str(exc)[:300])
        return _json(503, "A backing service is unavailable")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        if isinstance(exc, RecursionError) or isinstance(
            getattr(exc, "orig", None), RecursionError
        ):
            # a value nested deeper than some code path can walk (the API refuses most of them earlier)
            log.warning("recursion_limit", path=request.url.path)
            return _json(400, "A value is nested too deeply")
        log.exception("unhandled_error", path=request.url.path)
        return _json(500, "Internal server error")
