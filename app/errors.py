"""Domain errors and the handlers that turn every error into
`{"detail", "code", "param", "request_id"}` (docs/contract.md, "Errors")."""

from enum import StrEnum
from typing import Any

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlAlchemyPoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from app.middleware import current_request_id
from app.responses import OrjsonResponse

log = structlog.get_logger("pim.errors")


class ErrorCode(StrEnum):
    """Every error answer's `code`: stable, machine-readable (new codes may be added, none is
    renamed). Documented in the OpenAPI document (ErrorBody.code) and docs/contract.md."""

    bad_request = "bad_request"
    unknown_filter = "unknown_filter"
    invalid_filter = "invalid_filter"
    validation_error = "validation_error"
    value_out_of_range = "value_out_of_range"
    nested_too_deeply = "nested_too_deeply"
    unauthorized = "unauthorized"
    ambiguous_credentials = "ambiguous_credentials"
    forbidden = "forbidden"
    not_found = "not_found"
    method_not_allowed = "method_not_allowed"
    conflict = "conflict"
    already_exists = "already_exists"
    changes_pruned = "changes_pruned"
    webhook_url_refused = "webhook_url_refused"
    webhook_limit_reached = "webhook_limit_reached"
    payload_too_large = "payload_too_large"
    headers_too_large = "headers_too_large"
    unsupported_media_type = "unsupported_media_type"
    rate_limited = "rate_limited"
    client_closed_request = "client_closed_request"
    internal_error = "internal_error"
    unavailable = "unavailable"
    database_busy = "database_busy"
    query_timeout = "query_timeout"
    concurrent_write = "concurrent_write"
    idempotency_key_reused = "idempotency_key_reused"
    idempotency_key_in_flight = "idempotency_key_in_flight"
    precondition_failed = "precondition_failed"
    precondition_required = "precondition_required"


class ErrorBody(BaseModel):
    detail: str = Field(description="a human-readable message")
    code: ErrorCode = Field(description="a stable, machine-readable code")
    param: str | None = Field(
        default=None,
        description="the offending parameter or field (a filter name, a body field), when known",
    )
    request_id: str | None = Field(
        default=None, description="the request's X-Request-ID (also in the response header)"
    )


class ValidationErrorBody(ErrorBody):
    errors: list[dict[str, Any]] = Field(
        description="FastAPI's list of validation errors (`type`, `loc`, `msg`, `input`, `ctx`)"
    )


class GoneBody(ErrorBody):
    oldest_seq: int


# status -> the code of an error raised without one of its own (HTTPException, AppError(status=))
_STATUS_CODES = {
    400: ErrorCode.bad_request,
    401: ErrorCode.unauthorized,
    403: ErrorCode.forbidden,
    404: ErrorCode.not_found,
    405: ErrorCode.method_not_allowed,
    409: ErrorCode.conflict,
    413: ErrorCode.payload_too_large,
    415: ErrorCode.unsupported_media_type,
    422: ErrorCode.validation_error,
    429: ErrorCode.rate_limited,
    499: ErrorCode.client_closed_request,
    503: ErrorCode.unavailable,
}


def code_for_status(status: int) -> ErrorCode:
    default = ErrorCode.internal_error if status >= 500 else ErrorCode.bad_request
    return _STATUS_CODES.get(status, default)


def error_body(
    status: int,
    detail: str,
    *,
    code: ErrorCode | None = None,
    param: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The body of every error answer (`extra`: more members, such as a 410's `oldest_seq`)."""
    return {
        "detail": detail,
        "code": code or code_for_status(status),
        "param": param,
        "request_id": current_request_id(),
        **extra,
    }


class AppError(Exception):
    status_code = 400
    # None: the status's code (`code_for_status`), which is what the classes below answer with
    # unless they name another
    code: ErrorCode | None = None
    headers: dict[str, str] | None = None
    extra: dict[str, Any] | None = None  # more members of the body, beside the common ones

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        code: ErrorCode | None = None,
        param: str | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.param = param
        if status_code is not None:
            self.status_code = status_code
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(
            self.status_code, self.detail, code=self.code, param=self.param, **(self.extra or {})
        )


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401

    def __init__(self, detail: str = "Authentication required", *, scheme: str = "Bearer"):
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": f'{scheme} realm="pim"'}

    def invalid_token(self) -> "Unauthorized":
        """This 401 as RFC 6750 says a refused Bearer token is answered (section 3.1):
        `error="invalid_token"` and the reason in `error_description`."""
        # a quoted-string may hold any visible ASCII but `"` and `\\`
        reason = "".join(c for c in self.detail if " " <= c <= "~" and c not in '"\\')[:200]
        self.headers = {
            "WWW-Authenticate": f'Bearer realm="pim", error="invalid_token", '
            f'error_description="{reason}"'
        }
        return self


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

    def __init__(self, detail: str, *, code: ErrorCode, **extra: Any):
        super().__init__(detail, code=code)
        self.extra = extra


class Unavailable(AppError):
    status_code = 503


class PoolExhausted(Unavailable):
    """Every database connection of this process stayed busy for PIM_DB_POOL_TIMEOUT_SECONDS."""

    code = ErrorCode.database_busy

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
        412: "`If-Match` does not name the current version (`precondition_failed`, with the "
        "current `ETag`): nothing changed",
        428: "No `If-Match`, and `PIM_REQUIRE_IF_MATCH` is on (`precondition_required`)",
        413: "Payload too large",
        415: "Unsupported media type",
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
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    code: ErrorCode | None = None,
    **extra: Any,
) -> OrjsonResponse:
    return OrjsonResponse(
        error_body(status, detail, code=code, **extra), status_code=status, headers=headers
    )


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
        code=ErrorCode.concurrent_write,
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


def _param_of(error: dict[str, Any]) -> str | None:
    """The dotted name of the field or parameter a validation error is about (`price`,
    `items.3.sku`), without its location (`body`, `query`...)."""
    if error.get("type") == "json_invalid":  # its `loc` is a position in the body
        return None
    loc = [str(part) for part in error.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]
    return ".".join(loc) or None


def validation_summary(errors: list[dict[str, Any]]) -> str:
    """One line for a 422's `detail`: the first error, and how many more there are."""
    if not errors:
        return "Request validation failed"
    first = errors[0]
    where = _param_of(first)
    where = where or ("body" if first.get("type") == "json_invalid" else None)
    message = f"{where}: {first.get('msg', 'invalid value')}" if where else str(first.get("msg"))
    more = len(errors) - 1
    return message + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError):
        return OrjsonResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    def _method_not_allowed(request: Request) -> OrjsonResponse:
        from app.routing import allowed_methods  # app.routing raises these errors

        allow = allowed_methods(request)
        if not allow:
            return _json(404, "Not Found")
        return _json(
            405,
            f"Method {request.method} is not allowed here: use {allow}",
            {"Allow": allow},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 405:
            # Starlette's Allow names the methods of the first route of the path only
            return _method_not_allowed(request)
        if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR:
            # A JSON body that is not UTF-8 text: malformed JSON like any other (FastAPI answers 422
            # `json_invalid` for bad syntax but a bare 400 for bad encoding).
            return _json(
                422,
                "body: JSON decode error (the body is not valid UTF-8)",
                code=ErrorCode.validation_error,
                errors=[
                    {
                        "type": "json_invalid",
                        "loc": ["body"],
                        "msg": "JSON decode error",
                        "input": None,
                        "ctx": {"error": "the body is not valid UTF-8"},
                    }
                ],
            )
        return _json(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        from app.routing import took_a_fixed_word

        if took_a_fixed_word(request):
            return _method_not_allowed(request)
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
        return _json(
            422,
            validation_summary(errors),
            code=ErrorCode.validation_error,
            param=_param_of(errors[0]) if errors else None,
            errors=errors,
        )

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
                    code=ErrorCode.query_timeout,
                )
            return _json(
                503,
                "The database statement took too long and was cancelled: narrow the filters, or retry a write later",
                code=ErrorCode.query_timeout,
            )
        if sqlstate in _CONCURRENCY_STATES:
            return _concurrent_write(exc)
        if sqlstate in CONNECTION_REFUSED_STATES:
            log.warning("database_refused_connection", path=request.url.path, sqlstate=sqlstate)
            refused = ConnectionsRefused()
            return OrjsonResponse(
                refused.body(), status_code=refused.status_code, headers=refused.headers
            )
        if unavailable or sqlstate.startswith(("08", "57P")):
            log.warning("database_unavailable", path=request.url.path, error=str(exc)[:300])
            return _json(503, "The database is unavailable")
        if sqlstate.startswith("22"):
            return _json(
                400, "A value is out of range or malformed", code=ErrorCode.value_out_of_range
            )
        if sqlstate == "23505":
            # a unique constraint: a concurrent request created the same name, SKU or slug first
            return _json(
                409,
                "An object with this unique value already exists",
                code=ErrorCode.already_exists,
            )
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
        return OrjsonResponse(error.body(), status_code=error.status_code, headers=error.headers)

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
            return _json(400, "A value is nested too deeply", code=ErrorCode.nested_too_deeply)
        log.exception("unhandled_error", path=request.url.path)
        return _json(500, "Internal server error")
