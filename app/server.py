"""The HTTP protocol `pim serve` runs: uvicorn's httptools protocol with a cap on the request head.

httptools (llhttp) sets no limit on the request line and headers, and the parser's callbacks gather
a long header by concatenation: a 256 MiB header cost 96 s of CPU, and two 64 MiB headers stalled
every other request of the process for seconds. Here the bytes of a request head are counted as
they arrive, and past PIM_MAX_REQUEST_HEAD_BYTES the client gets a 431 and the connection is
closed, before the parser sees more of it.
"""

import time

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import get_settings

_refused_unlogged = 0
_refusals_logged_at = float("-inf")


def _may_end_head(data: bytes) -> bool:
    """Whether the head may end in this chunk: a blank line in it, or a line break in its first
    bytes (the blank line may straddle the previous chunk and this one)."""
    return b"\r\n\r\n" in data or b"\n\n" in data or b"\n" in data[:3]


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_head_bytes = get_settings().max_request_head_bytes
        self._in_head = True  # between requests, and until a request's headers are complete
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes and not _may_end_head(data):
                # past the limit and the head goes on: refused before the parser reads the chunk
                # (a flood of huge heads then costs the accept and the answer, little else)
                if not self.transport.is_closing():
                    self._refuse_head()
                return
        super().data_received(data)
        # checked after parsing: a chunk that ends the head may also carry the start of a large body
        if (
            self._in_head
            and self._head_bytes > self.max_head_bytes
            and not self.transport.is_closing()
        ):
            self._refuse_head()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def send_400_response(self, msg: str) -> None:
        """A request the parser cannot read gets the API's JSON error shape, not uvicorn's plain text."""
        # no request (nor request id) was read: the shape of app.errors.error_body
        body = orjson.dumps(
            {"detail": msg, "code": "bad_request", "param": None, "request_id": None}
        )
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
        )
        self.transport.close()

    def _refuse_head(self) -> None:
        global _refused_unlogged, _refusals_logged_at
        # one line a second at most: a client sending huge heads over and over would otherwise
        # make the log (and its formatting) a cost of its own
        _refused_unlogged += 1
        now = time.monotonic()
        if now - _refusals_logged_at >= 1.0:
            self.logger.warning(
                "Request heads larger than %d bytes refused: %d since the last report.",
                self.max_head_bytes,
                _refused_unlogged,
            )
            _refused_unlogged, _refusals_logged_at = 0, now
        if self.cycle is not None and not self.cycle.response_complete:
            # a pipelined head behind a request still being answered: no answer can go between
            self.transport.close()
            return
        body = orjson.dumps(
            {
                "detail": f"The request line and headers are larger than {self.max_head_bytes} bytes",
                "code": "headers_too_large",
                "param": None,
                "request_id": None,
            }
        )
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
        )
        self.transport.close()
