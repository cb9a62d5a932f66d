"""orjson-backed JSON responses; hot read paths build their bytes directly."""

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse, Response


def json_text(value: Any) -> str:
    """JSON text of user data; falls back to the stdlib for integers beyond 64 bits, which orjson refuses."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, ensure_ascii=True, allow_nan=False, default=str)


def dumps(content: Any) -> bytes:
    try:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
    except (
        TypeError
    ):  # a client's 100-digit integer or lone surrogate echoed back in a validation error
        return json.dumps(content, ensure_ascii=True, default=str).encode()


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)


def json_bytes_response(body: bytes, status_code: int = 200) -> Response:
    return Response(content=body, status_code=status_code, media_type="application/json")
