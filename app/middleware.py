"""Pure ASGI middleware: optional trailing slash, request ids, rate-limit headers and access logs, body limits."""

import re
import time
import uuid

import orjson
import structlog
from starlette.exceptions import HTTPException

log = structlog.get_logger("pim.access")

# Paths whose canonical form has no trailing slash; every other route ends with "/".
NO_SLASH_PATHS = frozenset(
    {"/healthz", "/readyz", "/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"}
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def current_request_id() -> str | None:
    """The X-Request-ID of the request being served (bound by RequestContextMiddleware)."""
    return structlog.contextvars.get_contextvars().get("request_id")


class TrailingSlashMiddleware:
    """Serve every route with and without its trailing slash, without redirects."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope["path"]
            canonical = path
            if path != "/" and path.endswith("/") and path.rstrip("/") in NO_SLASH_PATHS:
                canonical = path.rstrip("/")
            elif not path.endswith("/") and path not in NO_SLASH_PATHS:
                canonical = path + "/"
            if canonical != path:
                scope = dict(scope, path=canonical, raw_path=canonical.encode())
        await self.app(scope, receive, send)


async def _send_json(send, status: int, detail: str, code: str, extra_headers=()) -> None:
    # the shape of app.errors.error_body (which imports this module)
    body = orjson.dumps(
        {"detail": detail, "code": code, "param": None, "request_id": current_request_id()}
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HeadMiddleware:
    """HEAD on every GET route: served as the GET (same status and headers, Content-Length
    included), without the body. (FastAPI routes answer only the methods they declare, and
    declaring HEAD would give every read a second OpenAPI operation.)"""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def send_without_body(message):
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the end of the body (more_body false) closes the answer
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app(dict(scope, method="GET"), receive, send_without_body)


class RequestContextMiddleware:
    """Accept or mint X-Request-ID, echo it back with the request's RateLimit-* headers, and write one
    access log line per request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID.match(candidate):
                    request_id = candidate
                break
        request_id = request_id or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = [500]
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = [*message.get("headers", []), header]
                quota = (scope.get("state") or {}).get("quota")
                if quota is not None:  # the rate limit that GuardedRoute applied (app/ratelimit.py)
                    headers += quota.headers()
                message = dict(message, headers=headers)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            state = scope.get("state") or {}
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status_holder[0],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                tenant_id=state.get("tenant_id"),
            )


class BodyLimitMiddleware:
    """413 for bodies over their route's limit: by Content-Length up front, or while streaming. The
    upload routes (method, path) get `upload_limit`, every other route `json_limit`.

    An answer sent before the body was read to its end (a 401, 413 or 429 from GuardedRoute) says
    `Connection: close`: the server then drops the connection instead of reading the rest of the
    body to reach the next request."""

    def __init__(
        self, app, *, json_limit: int, upload_limit: int, upload_routes: frozenset[tuple[str, str]]
    ):
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.upload_routes = upload_routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = (
            self.upload_limit
            if (scope["method"], scope["path"]) in self.upload_routes
            else self.json_limit
        )
        has_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _send_json(
                        send, 400, "Invalid Content-Length header", "bad_request", [_CLOSE]
                    )
                if declared > limit:
                    return await _send_json(
                        send,
                        413,
                        f"Request body is larger than {limit} bytes",
                        "payload_too_large",
                        [_CLOSE],
                    )
                has_body = has_body or declared > 0
            elif name == b"transfer-encoding":
                has_body = True
        received = 0
        body_done = not has_body

        async def limited_receive():
            nonlocal received, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"Request body is larger than {limit} bytes")
                body_done = body_done or not message.get("more_body", False)
            return message

        async def send_closing_early(message):
            if message["type"] == "http.response.start" and not body_done:
                message = dict(message, headers=[*message.get("headers", []), _CLOSE])
            await send(message)

        # Raised as an HTTPException so that FastAPI's body parsing re-raises it and
        # the error handlers turn it into a 413.
        await self.app(scope, limited_receive, send_closing_early)


_CLOSE = (b"connection", b"close")
