"""Streaming multipart/form-data: the `file` part's bytes as they arrive, never spooled to disk.

Starlette's `request.form()` would first copy a 1 GB upload into a temporary file;
here python-multipart's push parser runs over `request.stream()` and the file's
bytes go straight on to the chunk store.
"""

import os
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.errors import BadRequest


def _missing_file() -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": "missing",
                "loc": ["body", "file"],
                "msg": "Field required (multipart/form-data with a `file` part)",
                "input": None,
            }
        ]
    )


class MultipartFile:
    """Iterate `pieces()` for the file's bytes; `filename` is known once the first piece arrives."""

    def __init__(self, request: Request, *, field_name: str = "file") -> None:
        self.request = request
        self.field_name = field_name
        self.filename: str = ""
        self.found = False

    async def pieces(self) -> AsyncIterator[bytes]:
        content_type = self.request.headers.get("content-type", "")
        kind, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise _missing_file()

        pending: list[bytes] = []
        header_name = bytearray()
        header_value = bytearray()
        part_headers: dict[bytes, bytes] = {}
        state = {"in_file": False, "done_file": False}

        def on_part_begin() -> None:
            part_headers.clear()
            state["in_file"] = False

        def on_header_field(data: bytes, start: int, end: int) -> None:
            header_name.extend(data[start:end])

        def on_header_value(data: bytes, start: int, end: int) -> None:
            header_value.extend(data[start:end])

        def on_header_end() -> None:
            part_headers[bytes(header_name).lower()] = bytes(header_value)
            header_name.clear()
            header_value.clear()

        def on_headers_finished() -> None:
            _disposition, options = parse_options_header(
                part_headers.get(b"content-disposition", b"")
            )
            name = options.get(b"name", b"").decode("utf-8", "replace")
            if name == self.field_name and not state["done_file"]:
                state["in_file"] = True
                self.found = True
                raw = options.get(b"filename", b"").decode("utf-8", "replace")
                self.filename = os.path.basename(raw.replace("\\", "/"))[:255]

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if state["in_file"]:
                pending.append(data[start:end])

        def on_part_end() -> None:
            if state["in_file"]:
                state["in_file"] = False
                state["done_file"] = True

        try:
            parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": on_part_begin,
                    "on_header_field": on_header_field,
                    "on_header_value": on_header_value,
                    "on_header_end": on_header_end,
                    "on_headers_finished": on_headers_finished,
                    "on_part_data": on_part_data,
                    "on_part_end": on_part_end,
                },
            )
        except ValueError as exc:  # an unusable boundary
            raise BadRequest(f"Malformed multipart body: {exc}") from None

        try:
            async for body in self.request.stream():
                parser.write(body)
                if pending:
                    piece = pending[0] if len(pending) == 1 else b"".join(pending)
                    pending.clear()
                    yield piece
            parser.finalize()
        except (MultipartParseError, ValueError) as exc:
            raise BadRequest(f"Malformed multipart body: {exc}") from None
        if pending:
            yield b"".join(pending)
        if not self.found:
            raise _missing_file()
