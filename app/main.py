"""Application factory: lifespan opens Postgres, Redis (arq) and ClickHouse; routers; errors."""

import gc
from contextlib import asynccontextmanager
from typing import Any

from arq.connections import ArqRedis
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from app.auth.cache import PrincipalCache
from app.auth.router import router as auth_router
from app.auth.service import Role
from app.catalog.router import categories_router, schema_router, views_router
from app.changes.router import router as changes_router
from app.clickhouse import ClickHouse
from app.config import Settings, get_settings
from app.db import create_engine, create_read_pool, create_sessionmaker
from app.errors import ValidationErrorBody, install_error_handlers
from app.health import router as health_router
from app.idempotency import KEY_HEADER, REPLAYED_HEADER
from app.imports.router import router as imports_router
from app.log import configure_logging
from app.middleware import (
    BodyLimitMiddleware,
    HeadMiddleware,
    RequestContextMiddleware,
    TrailingSlashMiddleware,
)
from app.mirror.reads import Mirror
from app.openapi_examples import document_tour
from app.pims.router import router as pims_router
from app.products.router import facets_router
from app.products.router import router as products_router
from app.products.rules import INT64_MAX, INT64_MIN
from app.ratelimit import ConcurrencyLimiter, RateLimiter, TenantTurns
from app.replicas import create_replica_router
from app.routing import ROLE_EXTENSION, check_routes_guarded
from app.segments.router import router as segments_router
from app.webhooks.router import router as webhooks_router


def _operation_id(route: APIRoute) -> str:
    # SDK method names: the endpoint function's name, unique across the app
    return route.name


def _integer_bounds(node: Any) -> None:
    """Integer limits as integers. FastAPI's OpenAPI model holds `minimum`/`maximum` as floats, which
    turned 1 into 1.0 and the int64 limit 2**63 - 1 into 9.223372036854776e+18 (2**63, out of range
    for the SDKs' int64)."""
    if isinstance(node, list):
        for item in node:
            _integer_bounds(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "integer":
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            value = node.get(key)
            if isinstance(value, float) and value.is_integer():
                node[key] = max(INT64_MIN, min(int(value), INT64_MAX))
    for value in node.values():
        _integer_bounds(value)


CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "X-Request-ID",
    "ApiView",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
]
CORS_EXPOSED_HEADERS = [
    "Location",
    "X-Request-ID",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "ETag",
    "Server-Timing",
    "Idempotent-Replayed",
]
LOCATION_HEADER = {
    "Location": {
        "description": "the path of the created object (no host)",
        "schema": {"type": "string"},
    }
}

RATE_LIMITED = (
    "Rate limit exceeded (the API key's or the tenant's token bucket is empty, or too many failed "
    "authentications from this address), or too many concurrent heavy requests: retry after `Retry-After` seconds"
)
RATE_LIMIT_HEADERS = {
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}},
    "RateLimit-Limit": {"description": "the bucket's size (burst)", "schema": {"type": "integer"}},
    "RateLimit-Remaining": {
        "description": "requests left in the bucket now",
        "schema": {"type": "integer"},
    },
    "RateLimit-Reset": {
        "description": "seconds until the bucket is full again",
        "schema": {"type": "integer"},
    },
}
DESCRIPTION = """Multi-tenant Product Information Management API. Authenticate with `X-API-Key` or a Bearer JWT.

Limits that apply to every route:
- Credentials are checked from the headers before a body is read: a 401 (or 413 for a body over the
  route's limit, or 429) arrives while a large body is still being sent, with `Connection: close`.
  Bodies: `PIM_MAX_UPLOAD_BYTES` (1 GiB) for the CSV upload, `PIM_MAX_JSON_BODY_BYTES` (32 MiB) elsewhere.
- The request line and headers together may hold `PIM_MAX_REQUEST_HEAD_BYTES` (64 KiB): more is a 431.
- Rate limits (token buckets per API key or JWT subject, and per tenant): every answer of an authenticated
  route carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (of the tighter bucket); an
  empty bucket is a 429 with `Retry-After`. Failed authentications are limited per client address.
- A unique value taken by a concurrent request is a 409; a database pool that stays busy for
  `PIM_DB_POOL_TIMEOUT_SECONDS` is a 503 with `Retry-After`.
"""


REPLAYED = {
    REPLAYED_HEADER: {
        "description": "`true` on the stored answer of an earlier request with the same "
        "`Idempotency-Key`",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def _document_idempotency(responses: dict[str, Any], error: dict[str, Any]) -> None:
    """A POST taking Idempotency-Key: its successes may be replays, and its 409s include the key's."""
    for status, response in responses.items():
        if status.startswith("2"):
            response.setdefault("headers", {}).update(REPLAYED)
    conflict = responses.setdefault("409", {"description": "Conflict", "content": error})
    conflict["description"] += (
        "; or `idempotency_key_reused` (the Idempotency-Key was sent with another request), "
        "`idempotency_key_in_flight` (a request with it still runs: retry after `Retry-After`)"
    )


def _document_common_errors(app: FastAPI) -> None:
    """Add to the OpenAPI document the errors any route can answer outside its own code. Every request
    body: 400 for a value the database refuses (a NUL character in a string, say) and 413 from the body
    limit. Every authenticated route: 503 when the database is down or a query times out, and 403
    (below its `x-required-role`) unless that is viewer, which every caller holds. A route that
    declares the code itself keeps its own description, except 403's."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
            invalid = {
                "application/json": {"schema": {"$ref": "#/components/schemas/ValidationErrorBody"}}
            }
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            validation_body = ValidationErrorBody.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components.update(validation_body.pop("$defs", {}))
            components["ValidationErrorBody"] = validation_body
            for operations in schema["paths"].values():
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    if "201" in responses:
                        responses["201"].setdefault("headers", {}).update(LOCATION_HEADER)
                    if "422" in responses:
                        # FastAPI's HTTPValidationError: the errors' shape is ValidationErrorBody
                        responses["422"]["content"] = invalid
                    if "requestBody" in operation or operation.get("parameters"):
                        # a value the database refuses (a NUL character) in a body or parameter
                        responses.setdefault(
                            "400", {"description": "Bad request", "content": error}
                        )
                    if "requestBody" in operation:
                        responses.setdefault(
                            "409",
                            {
                                "description": "A unique value (name, SKU, slug) is already taken, "
                                "possibly by a concurrent request",
                                "content": error,
                            },
                        )
                        responses.setdefault(
                            "413", {"description": "Payload too large", "content": error}
                        )
                        if "application/json" in operation["requestBody"].get("content", {}):
                            responses.setdefault(
                                "415",
                                {
                                    "description": "The body is not declared JSON "
                                    "(`Content-Type: application/json`)",
                                    "content": error,
                                },
                            )
                    if any(p.get("name") == KEY_HEADER for p in operation.get("parameters", ())):
                        _document_idempotency(responses, error)
                    # any request: its line and headers past PIM_MAX_REQUEST_HEAD_BYTES (a long
                    # query string: a declared maximum length counts characters, sent as up to 12
                    # bytes each when percent-encoded)
                    responses.setdefault(
                        "431",
                        {
                            "description": "The request line and headers are larger than "
                            "`PIM_MAX_REQUEST_HEAD_BYTES` (64 KiB)",
                            "content": error,
                        },
                    )
                    role = operation.get(ROLE_EXTENSION)
                    if role == Role.viewer:
                        responses.pop("403", None)  # every caller holds at least the viewer role
                    elif role is not None:
                        responses["403"] = {
                            "description": f"The caller's role is below `{role}`",
                            "content": error,
                        }
                    if operation.get("security"):
                        responses.setdefault(
                            "429",
                            {
                                "description": RATE_LIMITED,
                                "content": error,
                                "headers": RATE_LIMIT_HEADERS,
                            },
                        )
                        responses.setdefault(
                            "503",
                            {
                                "description": "A backing service is unavailable, or every "
                                "database connection stayed busy or Postgres refused a new "
                                "one (with `Retry-After`), or a heavy read passed its time "
                                "budget",
                                "content": error,
                            },
                        )
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            document_tour(schema, app.state.settings)
            _integer_bounds(schema)
        return app.openapi_schema  # type: ignore[return-value]  # set above

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.engine = create_engine(settings)
        app.state.sessionmaker = create_sessionmaker(app.state.engine)
        app.state.read_pool = await create_read_pool(settings)
        # the tenants' lean reads: on a fresh-enough replica when PIM_DATABASE_REPLICA_URLS has one
        app.state.lean_pool = await create_replica_router(settings, app.state.read_pool)
        # Built without a ping so that the API starts (and /readyz reports) while Redis is down.
        app.state.arq = ArqRedis.from_url(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=5
        )
        app.state.clickhouse = ClickHouse(settings)
        app.state.mirror = Mirror(app.state.clickhouse, settings)
        app.state.rate_limiter = RateLimiter(app.state.arq, settings)
        app.state.heavy_reads = ConcurrencyLimiter(settings.heavy_reads_per_tenant)
        app.state.tenant_turns = TenantTurns(settings.tenant_requests_per_process)
        app.state.principal_cache = PrincipalCache(settings.api_key_cache_seconds)
        await app.state.principal_cache.start(settings.database_url)
        # The loaded app (~150k objects) lives as long as the process: frozen, it is left out of
        # the full collections that a bulk request's 10,000 items trigger (as in the worker).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.principal_cache.close()
            await app.state.clickhouse.close()
            await app.state.arq.aclose()
            await app.state.lean_pool.close()
            await app.state.read_pool.close()
            await app.state.engine.dispose()

    app = FastAPI(
        title="PIM service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
        generate_unique_id_function=_operation_id,
    )
    app.state.settings = settings
    app.state.known_tenants = set()
    install_error_handlers(app)

    # routes are matched in order: the hot product reads first
    app.include_router(products_router)
    app.include_router(facets_router)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(schema_router)
    app.include_router(categories_router)
    app.include_router(views_router)
    app.include_router(imports_router)
    app.include_router(segments_router)
    app.include_router(pims_router)
    app.include_router(changes_router)
    app.include_router(webhooks_router)
    _document_common_errors(app)
    check_routes_guarded(app)

    app.add_middleware(
        BodyLimitMiddleware,
        json_limit=settings.max_json_body_bytes,
        upload_limit=settings.max_upload_bytes,
        upload_routes=frozenset({("POST", app.url_path_for("upload_import_csv"))}),
    )
    app.add_middleware(HeadMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(TrailingSlashMiddleware)
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    if origins:  # outermost: a preflight is answered before any other middleware
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    return app
