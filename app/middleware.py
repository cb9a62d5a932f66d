"""Pure ASGI middleware: optional trailing slash, request ids and access logs, body limits."""

import re
import time
import uuid

import orjson
from starlette.exceptions import HTTPException
import structlog

log = structlog.get_logger("pim.access")

# Paths whose canonical form has no trailing slash; every other route ends with "/".
NO_SLASH_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


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


async def _send_json(send, status: int, detail: str, extra_headers=()) -> None:
    body = orjson.dumps({"detail": detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Accept or mint X-Request-ID, echo it back, and write one access log line per request."""

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
                message = dict(message, headers=[*message.get("headers", []), header])
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
    """413 for bodies over the limit: by Content-Length up front, or while streaming."""

    def __init__(self, app, *, json_limit: int, upload_limit: int, upload_prefix: str = "/api/pim/import/"):
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.upload_prefix = upload_prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = self.upload_limit if scope["path"].startswith(self.upload_prefix) else self.json_limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _send_json(send, 400, "Invalid Content-Length header")
                if declared > limit:
                    return await _send_json(send, 413, f"Request body is larger than {limit} bytes")
                break
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"Request body is larger than {limit} bytes")
            return message

        # Raised as an HTTPException so that FastAPI's body parsing re-raises it and
        # the error handlers turn it into a 413.
        await self.app(scope, limited_receive, send)
