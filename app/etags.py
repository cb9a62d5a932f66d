"""Strong ETags and conditional requests (docs/contract.md, "ETags and conditional requests").

An object's ETag is its row version, Postgres' `xmin`: the transaction that wrote the row last
(every write makes a new row version, so every write changes it; a category's path rewritten by a
move of its parent and a product's categories cleared by a category delete are writes of that
row too). The representations of products, categories, views, segments and the schema are built
from their row alone, so one version is one representation: a strong ETag. The schema of a
tenant that never wrote one has the version 0 (no transaction has that id).

- `If-None-Match` on a GET: `304` (no body, the `ETag`) when it names the current version (or `*`).
- `If-Match` on PATCH, PUT and DELETE: `412 precondition_failed` unless it names the current
  version (or is `*`). The services compare it with the version of the row they hold locked
  (`SELECT ... FOR UPDATE`, or the schema's lock), so of two writes sent with the same `If-Match`
  one wins and the other gets its 412.
"""

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request, Response

from app.errors import AppError, ErrorCode, error_responses
from app.models import RowVersion

IF_MATCH_HELP = (
    "Write only if the object's current `ETag` is one of these (or `*`): otherwise `412` "
    "`precondition_failed`, and nothing changes. Guards against lost updates."
)
IF_NONE_MATCH_HELP = (
    "The `ETag`(s) of the copy you hold: `304 Not Modified` (no body) while it is current."
)


async def _if_match(
    request: Request,
    if_match: Annotated[str | None, Header(alias="If-Match", description=IF_MATCH_HELP)] = None,
) -> str | None:
    """The write's If-Match; with PIM_REQUIRE_IF_MATCH, a write without one is a 428."""
    if if_match is None and request.app.state.settings.require_if_match:
        raise AppError(
            "This write needs an If-Match header with the object's ETag (read it first): "
            "PIM_REQUIRE_IF_MATCH is on",
            status_code=428,
            code=ErrorCode.precondition_required,
            param="If-Match",
        )
    return if_match


IfMatch = Annotated[str | None, Depends(_if_match)]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match", description=IF_NONE_MATCH_HELP)]

ETAG_HEADER = {
    "ETag": {
        "description": "the object's version (a strong entity tag): send it back in `If-Match` "
        "to write only that version, or in `If-None-Match` to read only a newer one",
        "schema": {"type": "string"},
    }
}
# `openapi_extra` of a route whose answer carries the ETag
TAGGED = {"responses": {"200": {"headers": ETAG_HEADER}}}
TAGGED_CREATE = {"responses": {"201": {"headers": ETAG_HEADER}}}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: `If-None-Match` names the current version"}
}
# the route options of a GET of one object by id: its 404, its 304, and the ETag of its answer
TAGGED_READ: dict[str, Any] = {
    "responses": {**error_responses(404), **NOT_MODIFIED},
    "openapi_extra": TAGGED,
}
PRECONDITION_FAILED = 412


def tagged_create(*errors: int) -> dict[str, Any]:
    """The route options of a create answered with its object (`routing.created`): the `201`,
    its `errors`, and the ETag of its answer."""
    return {
        "status_code": 201,
        "responses": error_responses(*errors),
        "openapi_extra": TAGGED_CREATE,
    }


def tagged_write(*errors: int) -> dict[str, Any]:
    """The route options of a write of one object under `If-Match`: its `errors`, then the `412`
    and `428` of the precondition, and the ETag of its answer."""
    return {
        "responses": error_responses(*errors, PRECONDITION_FAILED, 428),
        "openapi_extra": TAGGED,
    }


class PreconditionFailed(AppError):
    status_code = PRECONDITION_FAILED
    code = ErrorCode.precondition_failed

    def __init__(self, current: str):
        super().__init__(
            f"If-Match does not name the current version ({current}): read the object again",
            param="If-Match",
        )
        self.headers = {"ETag": current}


def etag(version: int | None) -> str:
    """The strong ETag of a row version (`xmin`), `"0"` for an object without a row."""
    return f'"{version or 0}"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def check_if_match(if_match: str | None, version: int | None) -> None:
    """Refuse (412) a write whose `If-Match` does not name `version`, the version of the row the
    caller holds locked. Strong comparison: a weak tag (`W/"..."`) never matches."""
    if if_match is None:
        return
    current = etag(version)
    tags = _tags(if_match)
    if "*" in tags or current in tags:
        return
    raise PreconditionFailed(current)


_Body = TypeVar("_Body")
_Versioned = TypeVar("_Versioned", bound=RowVersion)


def not_modified(if_none_match: str | None, version: int | None) -> Response | None:
    """The `304` for a GET whose `If-None-Match` names the current version (weak comparison, as
    RFC 9110 says for this header), else None."""
    if if_none_match is None:
        return None
    current = etag(version)
    tags = {tag.removeprefix("W/") for tag in _tags(if_none_match)}
    if "*" in tags or current in tags:
        return Response(status_code=304, headers={"ETag": current})
    return None


def tagged(response: Response, version: int | None) -> Response:
    """`response` with the `ETag` of `version`."""
    response.headers["ETag"] = etag(version)
    return response


@dataclass(slots=True)
class _ConditionalGet:
    """A GET of one object: the `If-None-Match` it was sent with and the response whose `ETag`
    the answer sets."""

    response: Response
    if_none_match: IfNoneMatch = None

    def answer(self, version: int | None, body: _Body) -> _Body | Response:
        """The `304` when `If-None-Match` names `version`, else `body`, with the `ETag` of
        `version`."""
        if (unchanged := not_modified(self.if_none_match, version)) is not None:
            return unchanged
        tagged(self.response, version)
        return body


@dataclass(slots=True)
class _ConditionalWrite:
    """A write of one object: its `If-Match` (for the service to check against the row it locks)
    and the response whose `ETag` the answer sets."""

    response: Response
    if_match: IfMatch

    def answer(self, version: int | None, body: _Body) -> _Body:
        """`body`, the answer of the write, with the `ETag` of the version it wrote."""
        tagged(self.response, version)
        return body


# route parameters: a GET or write of one object answered with its ETag
ConditionalGet = Annotated[_ConditionalGet, Depends()]
ConditionalWrite = Annotated[_ConditionalWrite, Depends()]


def tagged_row(response: Response, row: _Versioned) -> _Versioned:
    """`row`, the answer of a write, with its `ETag` set on `response`."""
    tagged(response, row.version)
    return row
