"""Route classes. GuardedRoute: authentication and rate limits before the body is read. JsonRoute
(every JSON API router): that, and request bodies parsed with orjson."""

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.auth.credentials import authenticate
from app.deps import get_principal
from app.errors import TooManyRequests


def _depends_on(dependant: Dependant, call) -> bool:
    return any(dep.call is call or _depends_on(dep, call) for dep in dependant.dependencies)


class GuardedRoute(APIRoute):
    """A route that needs a caller authenticates it from the headers and takes its rate-limit token
    before FastAPI reads the body: an unauthenticated or throttled client gets its 401/429 while it
    is still sending, and its body is never buffered or parsed (`get_principal` returns the caller
    found here). The quota goes to `request.state.quota`, whose RateLimit-* headers the
    RequestContextMiddleware adds to the answer, whatever it is. Then the body is read and the
    request waits its tenant's turn (`TenantTurns`: at most PIM_TENANT_REQUESTS_PER_PROCESS of a
    tenant run at once); routes that stream their body (uploads) set `takes_turns = False`."""

    takes_turns = True

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not _depends_on(self.dependant, get_principal):
            return handler

        async def guarded(request: Request) -> Response:
            principal = await authenticate(request)
            request.state.principal = principal
            request.state.tenant_id = principal.tenant_id
            quota = await request.app.state.rate_limiter.take(
                principal.tenant_id, principal.subject
            )
            if quota is not None:
                request.state.quota = quota
                if not quota.allowed:
                    raise TooManyRequests(
                        "Rate limit exceeded for this API key or tenant",
                        retry_after=quota.retry_after_seconds,
                    )
            if not self.takes_turns:
                return await handler(request)
            # the body is read before the turn, so that a slow sender does not keep one
            await request.body()
            async with request.app.state.tenant_turns.turn(principal.tenant_id):
                return await handler(request)

        return guarded


def check_routes_guarded(app: FastAPI) -> None:
    """Every route that needs a caller must authenticate before reading its body: fail at startup otherwise."""
    for route in app.routes:
        if (
            isinstance(route, APIRoute)
            and not isinstance(route, GuardedRoute)
            and _depends_on(route.dependant, get_principal)
        ):
            raise RuntimeError(
                f"{route.path} needs a caller but is not a GuardedRoute (route_class=JsonRoute)"
            )


class StreamingRoute(GuardedRoute):
    """A guarded route that reads its body as a stream (an upload of up to 1 GiB): it is not
    buffered for the tenant's turn, and takes none."""

    takes_turns = False


class JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                # several times faster than json.loads: a 10,000-item bulk body is megabytes
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                # what orjson refuses but the JSON grammar allows (integers beyond 64 bits, lone
                # surrogate escapes) is parsed as before; invalid JSON raises json.JSONDecodeError,
                # which FastAPI answers with a 422 `json_invalid`
                try:
                    self._json = json.loads(
                        body, parse_constant=_not_json, parse_float=_finite_float
                    )
                except RecursionError:
                    raise json.JSONDecodeError("nested too deeply", "", 0) from None
        return self._json


def _finite_float(text: str) -> float:
    # 1e400 is valid JSON, but no double holds it: json.loads would make it inf (stored as null)
    number = float(text)
    if not math.isfinite(number):
        raise json.JSONDecodeError(f"the number {text[:40]} is out of range", "", 0)
    return number


def _not_json(constant: str) -> Any:
    # json.loads accepts NaN, Infinity and -Infinity, which are not JSON (orjson refuses them too)
    raise json.JSONDecodeError(f"{constant} is not a JSON value", "", 0)


class JsonRoute(GuardedRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parse_with_orjson(request: Request) -> Response:
            return await handler(JsonRequest(request.scope, request.receive))

        return parse_with_orjson
