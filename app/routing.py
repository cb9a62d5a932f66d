"""Routers and route classes. Every router is made by `api_router` (the app refuses to start with a
route that was not): its routes are GuardedRoutes, which authenticate, rate-limit and check the role
their dependencies require before the body is read, and (JsonRoute, the default) parse JSON bodies
with orjson."""

import json
import math
from collections.abc import Callable, Coroutine, Iterator
from enum import Enum
from typing import Any, ClassVar, TypeVar, get_args

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.routing import Match
from starlette.types import Scope

from app.auth.credentials import authenticate
from app.auth.service import Role
from app.deps import (
    EXITING_DEPENDENCIES,
    HEAVY_BODY_READ_DEPENDENCIES,
    HEAVY_READ_DEPENDENCIES,
    HEAVY_READS_REFUSED,
    REQUEST_EXITS,
    RoleRequirement,
    get_principal,
)
from app.errors import AppError, BadRequest, ErrorCode, Forbidden, TooManyRequests
from app.etags import tagged_row
from app.idempotency import KEY_HEADER, REPLAYED_HEADER, IdempotentCall, key_of
from app.models import RowVersion
from app.query.models import Group

# The OpenAPI extension that states each operation's role (docs/contract.md, "Tenants,
# authentication, roles"); the role-matrix test (tests/test_roles_all_routes.py) reads it.
ROLE_EXTENSION = "x-required-role"
# `openapi_extra={NO_IDEMPOTENCY_EXTENSION: True}`: a POST whose answer holds a secret, which is
# never stored, refuses Idempotency-Key (400) instead of honouring it (app/idempotency.py)
NO_IDEMPOTENCY_EXTENSION = "x-idempotency-key-refused"

IDEMPOTENCY_KEY_PARAMETER = {
    "name": KEY_HEADER,
    "in": "header",
    "required": False,
    "description": "Any unique token of yours (a UUID): a retry with the same key and request gets "
    f"the first answer again (`{REPLAYED_HEADER}: true`) instead of running twice; kept 24 h. "
    "The same key with another request is a `409 idempotency_key_reused`, a duplicate while the "
    "first runs a `409 idempotency_key_in_flight`.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "example": "5f8d0c3e-8b4a-4c55-9a57-3f1f7f0e2b6c",
}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def _depends_on(dependant: Dependant, call) -> bool:
    return any(found is call for found in _calls(dependant))


def required_role(dependant: Dependant) -> Role | None:
    """The highest role a route's dependencies ask for (its session type, `Reader`...), or None for
    a route without a caller."""
    roles = [call.role for call in _calls(dependant) if isinstance(call, RoleRequirement)]
    return max(roles, key=lambda role: role.rank, default=None)


def _carries_predicate(annotation: Any, seen: set[int] | None = None) -> bool:
    """Whether a body type holds a predicate of the DSL (a `Definition`) anywhere."""
    seen = set() if seen is None else seen
    if id(annotation) in seen:
        return False
    seen.add(id(annotation))
    if annotation is Group:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_carries_predicate(f.annotation, seen) for f in annotation.model_fields.values())
    return any(_carries_predicate(arg, seen) for arg in get_args(annotation))


def evaluates_client_predicate(dependant: Dependant) -> bool:
    """A read route that takes a predicate in its body evaluates it (writes store definitions, and
    the worker computes them under its own limits)."""
    return required_role(dependant) == Role.viewer and any(
        _carries_predicate(param.field_info.annotation) for param in dependant.body_params
    )


class GuardedRoute(APIRoute):
    """A route that needs a caller authenticates it from the headers, takes its rate-limit token and
    checks its role before FastAPI reads the body: an unauthenticated, throttled or underprivileged
    client gets its 401/429/403 while it is still sending, and its body is never buffered, parsed or
    validated (`get_principal` returns the caller found here). The quota goes to
    `request.state.quota`, whose RateLimit-* headers the RequestContextMiddleware adds to the answer,
    whatever it is. The role is the one its dependencies carry (`required_role`), published as the
    operation's `x-required-role`. Then the body is read and the request waits its tenant's turn
    (`TenantTurns`: at most PIM_TENANT_REQUESTS_PER_PROCESS of a tenant run at once); routes that
    stream their body (uploads) set `takes_turns = False`. A POST with an `Idempotency-Key` is
    claimed before its turn, and replayed or refused (409) without running (app/idempotency.py)."""

    takes_turns = True
    # the literal segments of every route's path (`bulk`, `search`, `csv`...): an id parameter (an
    # integer, or a `*_id` such as an import's UUID) never takes one, so that `GET /products/bulk/`
    # is the bulk route's 405, not a 422 for an id, and `PUT /import/csv/` a 405 whose `Allow` is
    # the upload's POST alone, not the job routes' GET and DELETE too
    fixed_words: ClassVar[set[str]] = set()

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        GuardedRoute.fixed_words.update(
            part for part in path.split("/") if part and not part.startswith("{")
        )
        self._id_params = frozenset(
            param.name
            for param in self.dependant.path_params
            if _is_int(param.field_info) or param.name.endswith("_id")
        )
        if not self._id_params:  # every request tries the routes in turn: no override to pass
            self.matches = super().matches  # type: ignore[method-assign]
        self._json_body = self.body_field is not None and not _is_form(self.body_field)
        # a heavy read whose predicate comes in the body (a preview, a search): refused early
        self._heavy_body_read = any(
            _depends_on(self.dependant, call) for call in HEAVY_BODY_READ_DEPENDENCIES
        )
        self.required_role = required_role(self.dependant)
        # a POST honours Idempotency-Key, unless it says it refuses one; other methods ignore it
        # (GET, PUT, PATCH and DELETE are idempotent by definition)
        post = self.required_role is not None and "POST" in (self.methods or ())
        self._refuses_key = post and bool((self.openapi_extra or {}).get(NO_IDEMPOTENCY_EXTENSION))
        self.idempotent = post and not self._refuses_key
        if self.required_role is not None:
            # a new dict: `openapi_extra` objects are shared between routes
            extra = self.openapi_extra or {}
            self.openapi_extra = {**extra, ROLE_EXTENSION: self.required_role.value}
            if self.idempotent:
                self.openapi_extra["parameters"] = [
                    *extra.get("parameters", []),
                    IDEMPOTENCY_KEY_PARAMETER,
                ]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match != Match.NONE:
            values = child.get("path_params", {})
            if any(values.get(name) in GuardedRoute.fixed_words for name in self._id_params):
                return Match.NONE, {}
        return match, child

    def _check_content_type(self, request: Request) -> None:
        """415 for a JSON body route sent a body (or none where one is required) without a JSON
        content type: from the headers, before the body is read."""
        if not self._json_body:
            return
        headers = request.headers
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        if not has_body and not self.body_field.field_info.is_required():  # type: ignore[union-attr]
            return
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json" and not (
            media_type.startswith("application/") and media_type.endswith("+json")
        ):
            raise AppError(
                "Send the body as JSON with `Content-Type: application/json`"
                + (f", not {media_type!r}" if media_type else ""),
                status_code=415,
                code=ErrorCode.unsupported_media_type,
                param="Content-Type",
            )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if any(_depends_on(self.dependant, call) for call in EXITING_DEPENDENCIES):
            handler = _closing_request_exits(handler)
        # called by APIRoute.__init__, before `self.required_role` is set
        role = required_role(self.dependant)
        if role is None:
            return handler

        async def guarded(request: Request) -> Response:
            principal = await authenticate(request)
            request.state.principal = principal
            request.state.tenant_id = principal.tenant_id
            if self._heavy_body_read:
                _refuse_heavy_read_early(request, principal.tenant_id)
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
            if principal.role.rank < role.rank:
                raise Forbidden(f"This action needs the {role.value} role")
            if self._heavy_body_read:  # every heavy slot of the tenant taken: before the body
                request.app.state.heavy_reads.check_free(principal.tenant_id)
            self._check_content_type(request)
            key = key_of(request) if self.idempotent else None
            if self._refuses_key and KEY_HEADER in request.headers:
                raise BadRequest(
                    f"This route does not take an {KEY_HEADER}: its answer holds a secret, "
                    "which is never stored",
                    param=KEY_HEADER,
                )
            if key is None:
                if not self.takes_turns:
                    return await handler(request)
                # the body is read before the turn, so that a slow sender does not keep one (a
                # GET's body is never read)
                if request.scope["method"] != "GET":
                    await request.body()
                async with request.app.state.tenant_turns.turn(principal.tenant_id):
                    return await handler(request)
            call = IdempotentCall(request, principal, key)
            replay = await call.begin(streaming=not self.takes_turns)
            if replay is not None:
                return replay
            if not self.takes_turns:
                return await call.run(handler, call.streaming_request())
            async with request.app.state.tenant_turns.turn(principal.tenant_id):
                return await call.run(handler, request)

        return guarded


def _closing_request_exits(
    handler: Callable[[Request], Coroutine[Any, Any, Response]],
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """The handler, then what its dependencies entered in `request_exits` is exited."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        finally:
            exits = request.scope.get(REQUEST_EXITS)
            if exits is not None:
                await exits.aclose()

    return run


def _refuse_heavy_read_early(request: Request, tenant_id: int) -> None:
    """A heavy read's 429 when this process's mirror of the tenant's heavy-read bucket shows it
    empty: answered before the request takes a token of its key's bucket (a Redis round trip) or
    has its body read and parsed, with the heavy-read bucket's RateLimit-* headers. A tenant
    flooding previews then costs the API next to nothing per refusal. (Its heavy slots all taken
    is refused after the key's token, for that bucket's headers, still before the body.) What
    cannot be told yet is decided after the body (app/deps.py: `_heavy_read`), as before."""
    quota = request.app.state.rate_limiter.heavy_refused_now(tenant_id)
    if quota is not None:
        request.state.quota = quota
        raise TooManyRequests(HEAVY_READS_REFUSED, retry_after=quota.retry_after_seconds)


def _is_int(field_info: Any) -> bool:
    return getattr(field_info, "annotation", None) is int


def _is_form(body_field: Any) -> bool:
    from fastapi.params import File, Form

    return isinstance(body_field.field_info, (File, Form))


def allowed_methods(request: Request) -> str:
    """The `Allow` of a 405: the methods of every route whose path matches the request's (an id
    parameter never matching a fixed word), HEAD with GET; "" when none does."""
    scope = {**request.scope, "path_params": {}}
    methods: set[str] = set()
    for context in iter_route_contexts(request.app.routes):
        route = context.original_route
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(scope)[0] != Match.NONE:
            methods |= route_methods
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def took_a_fixed_word(request: Request) -> bool:
    """Whether the request's route took a fixed word (`bulk`) as an integer id: such a request is
    answered as if that route did not match (405 or 404), not with a 422 for the id."""
    route = request.scope.get("route")
    if not isinstance(route, GuardedRoute) or not route._id_params:
        return False
    values = request.scope.get("path_params", {})
    return any(str(values.get(name)) in GuardedRoute.fixed_words for name in route._id_params)


def set_location(request: Request, response: Response, route_name: str, **path_params: Any) -> None:
    """`Location` of a 201: the path (no host, as the pagination links) of the created object's
    route `route_name`."""
    params = {name: str(value) for name, value in path_params.items()}
    response.headers["Location"] = str(request.app.url_path_for(route_name, **params))


_Created = TypeVar("_Created", bound=RowVersion)


def created(
    request: Request, response: Response, row: _Created, route_name: str, **path_params: Any
) -> _Created:
    """The answer of a create: `row`, with its `Location` (`set_location`) and its `ETag`."""
    set_location(request, response, route_name, **path_params)
    return tagged_row(response, row)


def check_routes_guarded(app: FastAPI) -> None:
    """Refuse to start with a route not made by `api_router`, one that needs a caller without
    saying which role, or one that evaluates a client's predicate outside the heavy-read budget. (`app.routes` holds the included routers; `iter_route_contexts` walks their
    routes, as the OpenAPI generator does.)"""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        if not isinstance(route, GuardedRoute):
            raise RuntimeError(f"{context.path}: make its router with app.routing.api_router")
        role = required_role(context.dependant)
        if role is None and _depends_on(context.dependant, get_principal):
            raise RuntimeError(
                f"{context.path} needs a caller but states no role: take a ViewerSession, "
                "EditorSession or AdminSession (app/deps.py)"
            )
        if evaluates_client_predicate(context.dependant) and not any(
            _depends_on(context.dependant, call) for call in HEAVY_READ_DEPENDENCIES
        ):
            raise RuntimeError(
                f"{context.path} evaluates a predicate the client supplied: read through "
                "PreviewSession or SearchReader (app/deps.py), a heavy read"
            )
        if role != route.required_role:
            # the guard and `x-required-role` read the route's own dependencies
            raise RuntimeError(
                f"{context.path}: state its role in its own parameters, not in "
                "include_router(dependencies=...)"
            )


# orjson reads an integer beyond 64 bits as a float, its precision lost without a word; the
# stdlib keeps it exact. A body with a run of 19 or more digits anywhere (a string's too: a
# false alarm only costs the slower parse) goes to the stdlib: every digit mapped to "0" and
# everything else to ".", then one search, ~1 ms a megabyte.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2E for b in range(256))
_LONG_DIGIT_RUN = b"0" * 19


def _may_hold_a_long_integer(body: bytes) -> bool:
    return body.translate(_DIGITS_ONLY).find(_LONG_DIGIT_RUN) != -1


class JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                if _may_hold_a_long_integer(body):
                    raise orjson.JSONDecodeError("may hold an integer beyond 64 bits", "", 0)
                # several times faster than json.loads: a 10,000-item bulk body is megabytes
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                # what orjson refuses or would change but the JSON grammar allows (integers beyond
                # 64 bits, lone surrogate escapes) is parsed by the stdlib; invalid JSON raises
                # json.JSONDecodeError, which FastAPI answers with a 422 `json_invalid`
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


class StreamingRoute(JsonRoute):
    """A route that reads its body as a stream (an upload of up to 1 GiB) or streams its answer:
    its body is not buffered for the tenant's turn, and it takes none."""

    takes_turns = False


def api_router(
    *,
    tags: list[str | Enum],
    prefix: str = "",
    responses: dict[int | str, dict[str, Any]] | None = None,
    route_class: type[GuardedRoute] = JsonRoute,
) -> APIRouter:
    """The one way to make a router (`check_routes_guarded` refuses any other route at startup):
    its routes check credentials, rate limits and roles before the body is read."""
    return APIRouter(prefix=prefix, tags=tags, responses=responses, route_class=route_class)
