"""One pagination style for the lists: `limit` and an opaque `cursor` in, `{"results", "next_cursor"}`
out, `next` links relative (path and query: an SDK behind a proxy cannot follow a URL built from
the Host header).

A cursor is base64url JSON naming its list (`"l"`), so that a cursor of one list sent to another
is a 400 rather than a silently wrong page; what else it holds is the list's business (the last
key of the page, for a keyset read). It is not signed: a client that edits one only reads another
page of its own tenant, and every value is checked before it reaches SQL.
"""

import base64
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import Query, Request
from pydantic import Field

from app.errors import BadRequest
from app.products.rules import INT64_MAX

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR = 8192

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"items per page (at most {MAX_LIMIT})")
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR,
        description="`next_cursor` of the previous page, as it was; absent: the first page",
    ),
]
NextCursor = Annotated[
    str | None,
    Field(description="pass as `cursor` for the next page (opaque); `null` on the last page"),
]
BAD_CURSOR = "cursor: not a cursor of this list (send `next_cursor` back as it is)"


def checked_page_size(maximum: int, description: str, **bounds: Any) -> Any:
    """The `Query` of a page size that the route checks itself, so that a larger value is a 400
    naming the maximum (not a 422): `maximum` is declared in the OpenAPI document only."""
    return Query(ge=1, **bounds, json_schema_extra={"maximum": maximum}, description=description)


def encode_cursor(list_name: str, payload: dict[str, Any]) -> str:
    raw = orjson.dumps({"l": list_name, **payload})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(list_name: str, cursor: str) -> dict[str, Any]:
    """The payload of a cursor of this list; a 400 for anything else."""
    try:
        payload = orjson.loads(
            base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
        )
    except (ValueError, UnicodeError, orjson.JSONDecodeError):
        raise BadRequest(BAD_CURSOR, param="cursor") from None
    if not isinstance(payload, dict) or payload.get("l") != list_name:
        raise BadRequest(BAD_CURSOR, param="cursor")
    return payload


def after_id(list_name: str, cursor: str | None) -> int | None:
    """The id a keyset page by id starts after: None for the first page."""
    if cursor is None:
        return None
    last = decode_cursor(list_name, cursor).get("id")
    if type(last) is not int or not 0 <= last <= INT64_MAX:
        raise BadRequest(BAD_CURSOR, param="cursor")
    return last


def id_page(list_name: str, items: list[Any], limit: int) -> dict[str, Any]:
    """`{"results", "next_cursor"}` from up to `limit + 1` items read in id order after the cursor."""
    results = items[:limit]
    more = len(items) > limit
    return {
        "results": results,
        "next_cursor": encode_cursor(list_name, {"id": results[-1].id}) if more else None,
    }


def neighbour_pages(page: int, page_size: int, count: int) -> tuple[int | None, int | None]:
    """The numbers of the next and previous pages of a list paged by number (None: there is
    none); past the end, "previous" is the last page that has results."""
    next_page = page + 1 if page * page_size < count else None
    previous_page = min(page - 1, max(1, -(-count // page_size))) if page > 1 else None
    return next_page, previous_page


def relative_url(request: Request, **params: Any) -> str:
    """The request's path and query with these parameters set (None removes one): no scheme, no
    host. The parameters set go last, as Starlette's `include_query_params` puts them; built from
    the parsed query once (that URL API parses and re-encodes the whole URL per call: a tenth of a
    list request's CPU)."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in params]
    items += [(k, str(v)) for k, v in params.items() if v is not None]
    path = request.url.path
    return f"{path}?{urlencode(items)}" if items else path
