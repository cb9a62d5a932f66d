"""The PIMS compatibility route: `GET /api/{locale}/v/pc/{categoryId}/` and `GET /v/pc/{categoryId}/`.

Its parameters are parsed here rather than by FastAPI so that every problem is a `400`
in the PIMS error shape `{"status": "ERROR", "detail": ..., "code": ...}` (not a `422`); the OpenAPI
parameters are generated from the same models. Authentication errors get the same shape
(with `WWW-Authenticate`), as PIMS clients read `status` on every response.
"""

import re
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import Response

from app.deps import ViewerSession
from app.errors import AppError, BadRequest, ErrorCode, code_for_status
from app.pims import service
from app.pims.filters import CONTROL_PARAMS
from app.pims.schemas import LOCALE_PATTERN, PimsError, PimsProducts, PimsQuery
from app.products.rules import INT64_MAX
from app.responses import dumps, json_bytes_response
from app.routing import GuardedRoute, api_router

_LOCALE_RE = re.compile(LOCALE_PATTERN)
_CATEGORY_ID_RE = re.compile(r"^\d{1,19}$")


def pims_error(
    status_code: int, detail: Any, code: str, headers: dict[str, str] | None = None
) -> Response:
    response = json_bytes_response(
        dumps({"status": "ERROR", "detail": detail, "code": code}), status_code=status_code
    )
    if headers:
        response.headers.update(headers)
    return response


class PimsRoute(GuardedRoute):
    """Turns this route's errors (authentication included) into the PIMS error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def pims_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except AppError as exc:
                code = exc.code or code_for_status(exc.status_code)
                return pims_error(exc.status_code, exc.detail, code, exc.headers)
            except RequestValidationError as exc:
                return pims_error(400, _validation_detail(exc.errors()), ErrorCode.validation_error)
            except Exception as exc:
                # database and backend failures: the app's own handler decides the status
                # (503, 400, ...); PIMS clients get it in their error shape
                app_handler = _app_handler_for(request, exc)
                if app_handler is None:
                    raise
                response = await app_handler(request, exc)
                body = orjson.loads(response.body)
                kept = {
                    k: v
                    for k, v in response.headers.items()
                    if k.lower() in ("retry-after", "www-authenticate")
                }
                return pims_error(response.status_code, body["detail"], body["code"], kept or None)

        return pims_handler


def _app_handler_for(request: Request, exc: Exception):
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


def _validation_detail(errors) -> str:
    first = errors[0] if errors else {}
    where = ".".join(
        str(part) for part in first.get("loc", ()) if part not in ("query", "path", "header")
    )
    return (
        f"{where}: {first.get('msg', 'invalid value')}"
        if where
        else str(first.get("msg", "invalid value"))
    )


def _category_id(raw: str) -> int:
    if not _CATEGORY_ID_RE.match(raw) or int(raw) > INT64_MAX:
        raise BadRequest("categoryId must be 0 (every product) or a category id")
    return int(raw)


def _locale(raw: str) -> str:
    locale = raw.lower()
    if not _LOCALE_RE.match(locale) or len(locale) > 35:
        raise BadRequest(f"Invalid locale {raw[:40]!r}: use a language tag such as en-us")
    return locale


def _view_name(request: Request) -> str | None:
    """The ApiView header as UTF-8 text (Starlette decodes header values as Latin-1, which made
    non-ASCII view names unmatchable)."""
    raw = request.headers.get("apiview")
    if raw is None:
        return None
    try:
        name = raw.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("ApiView header: the view name must be UTF-8 text") from None
    return name.strip() or None


async def _respond(request: Request, session, locale: str | None) -> Response:
    category_id = _category_id(request.path_params["categoryId"])
    params = list(request.query_params.multi_items())
    try:
        query = PimsQuery.model_validate({k: v for k, v in params if k in CONTROL_PARAMS})
    except ValidationError as exc:
        raise BadRequest(_validation_detail(exc.errors())) from None
    view_name = _view_name(request)
    body = await service.pims_products(
        session,
        category_id=category_id,
        locale=locale,
        view_name=view_name,
        filters=query.filters,
        sort=query.sort,
        page_size=query.pageSize,
        page_num=query.pageNum,
        params=params,
        mirror=request.app.state.mirror,
    )
    return json_bytes_response(dumps(body))


# --- OpenAPI --------------------------------------------------------------------------------------


def _query_parameters() -> list[dict[str, Any]]:
    schema = PimsQuery.model_json_schema()
    parameters = []
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k not in ("title", "description")}
        if "anyOf" in prop:  # `str | None`: a query parameter is absent rather than null
            prop = {**next(s for s in prop.pop("anyOf") if s.get("type") != "null"), **prop}
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": schema["properties"][name].get("description", ""),
                "schema": prop,
            }
        )
    parameters.append(
        {
            "name": "attributeFilters",
            "in": "query",
            "required": False,
            "style": "form",
            "explode": True,
            "description": "One parameter per attribute named in `filters`: `brand=A|B` (any of) or "
            "`price=100.00;;1000.00` (inclusive range; digits and periods only; either end may be empty). "
            "Any other parameter is a 400.",
            "schema": {"type": "object", "additionalProperties": {"type": "string"}},
            "example": {"brand": "YourBrand1|YourBrand2", "price": "100.00;;1000.00"},
        }
    )
    parameters.append(
        {
            "name": "ApiView",
            "in": "header",
            "required": False,
            "description": "Name of a view (`/api/pim/views/`): only its attributes are returned. Without it the "
            "tenant's default view, or every attribute. An unknown view is a 400.",
            "schema": {"type": "string", "maxLength": service.MAX_VIEW_NAME},
        }
    )
    return parameters


CATEGORY_PARAMETER = {
    "name": "categoryId",
    "in": "path",
    "required": True,
    "description": "A category id (the category and its descendants), or 0 for every product",
    "schema": {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
}
LOCALE_PARAMETER = {
    "name": "locale",
    "in": "path",
    "required": True,
    "description": "Locale of the definitions' labels and comments, e.g. `en-us`",
    "schema": {"type": "string", "pattern": LOCALE_PATTERN, "maxLength": 35},
}
DESCRIPTION = """Products of a category (or every product, with `categoryId` 0) in the PIMS format, filtered,
sorted and paged. Requires any role (a viewer key is PIMS's "Data Viewer").

Each product's `attributes` hold `sku`, `categories` (paths), `status`, `title` (the name), every schema
attribute of the view, and for variation families (a parent listing `variation_attributes`, or a product with
`variation_of`) `variation_attributes`, `variation_of`, `variation_skus` (`[[variation SKUs]]`, by SKU, deleted
variations left out, at most 1000) and `variation_matrix` (variation SKU and the product's own SKU → {attribute: [values]}).

Values are strings: `number` fields as fixed-point decimals with at least two decimals (`"100.00"`, `"2.875"`),
`integer` fields as digits, booleans as `"1"`/`"0"`, text and dates as stored; multi-values (arrays, categories)
are arrays of strings; a missing value is null (`[]` for an array field). `definition` describes every attribute
the view can return; its flags are `"1"`/`"0"`. `sku_count` counts every matching product.

Errors are `{"status": "ERROR", "detail": "...", "code": "..."}` (`code` as in every other error): 400 for any bad parameter or unknown view, 401 without
valid credentials, 404 for a category that is not this tenant's."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": PimsError, "description": "A bad parameter, filter, sort or unknown view"},
    401: {"model": PimsError, "description": "Missing or invalid credentials"},
    404: {"model": PimsError, "description": "The category does not exist for this tenant"},
    429: {
        "model": PimsError,
        "description": "Rate limit exceeded: retry after `Retry-After` seconds",
    },
}

router = api_router(tags=["pims"], route_class=PimsRoute)


@router.get(
    "/api/{locale}/v/pc/{categoryId}/",
    response_model=PimsProducts,
    responses=_ERRORS,
    description=DESCRIPTION,
    summary="Products of a category in the PIMS format, labels in the given locale",
    openapi_extra={"parameters": [LOCALE_PARAMETER, CATEGORY_PARAMETER, *_query_parameters()]},
)
async def get_pims_products_localized(request: Request, session: ViewerSession) -> Response:
    return await _respond(request, session, _locale(request.path_params["locale"]))


@router.get(
    "/v/pc/{categoryId}/",
    response_model=PimsProducts,
    responses=_ERRORS,
    description=DESCRIPTION,
    summary="Products of a category in the PIMS format, labels in the tenant's default locale",
    openapi_extra={"parameters": [CATEGORY_PARAMETER, *_query_parameters()]},
)
async def get_pims_products(request: Request, session: ViewerSession) -> Response:
    return await _respond(request, session, None)
