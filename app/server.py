"""The HTTP protocol `pim serve` runs: uvicorn's httptools protocol with a cap on the request head.

httptools (llhttp) sets no limit on the request line and headers, and the parser's callbacks gather
a long header by concatenation: a 256 MiB header cost 96 s of CPU, and two 64 MiB headers stalled
every other request of the process for seconds. Here the bytes of a request head are counted as
they arrive, and past PIM_MAX_REQUEST_HEAD_BYTES the client gets a 431 and the connection is
closed, before the parser sees more of it. An address that keeps sending huge heads has its next
connections held unread for a while (HUGE_HEADS_PER_WINDOW).
"""

import asyncio
import time

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import get_settings

# An address whose huge heads were refused this often within the window is hostile: its new
# connections are held open unread (a tarpit) until the window ends, instead of each costing the
# accept, the parse and the answer while the client reconnects as fast as it can (~1,400 a second).
# Per process; at most HELD_MAX connections are held, beyond that they are dropped at once.
HUGE_HEADS_PER_WINDOW = 20
HUGE_HEAD_WINDOW_S = 10.0
HELD_MAX = 256
# refusals are logged once a second at most, with their count: a client sending huge heads over
# and over would otherwise make the log (and its formatting) a cost of its own
REPORT_EVERY_S = 1.0


class _HugeHeadRefusals:
    """The process's refused huge heads: per client address in windows of HUGE_HEAD_WINDOW_S (to
    hold its next connections), and in all since the last log line."""

    def __init__(self) -> None:
        self.windows: dict[str, tuple[float, int]] = {}  # address: (window start, refusals)
        self.held = 0
        self.unreported = 0
        self.reported_at = float("-inf")

    def refused(self, address: str | None) -> int:
        """Count a refusal; the refusals to log now (0: not yet)."""
        now = time.monotonic()
        if address is not None:
            start, count = self.windows.get(address, (now, 0))
            if now - start > HUGE_HEAD_WINDOW_S:
                start, count = now, 0
            if len(self.windows) >= 10_000 and address not in self.windows:
                self.windows.clear()  # bounded: a flood from many addresses only resets the counts
            self.windows[address] = (start, count + 1)
        self.unreported += 1
        if now - self.reported_at < REPORT_EVERY_S:
            return 0
        report, self.unreported, self.reported_at = self.unreported, 0, now
        return report

    def hold_for(self, address: str) -> float:
        """Seconds to hold a new connection from `address` (0: serve it)."""
        start, count = self.windows.get(address, (0.0, 0))
        if count < HUGE_HEADS_PER_WINDOW:
            return 0.0
        return max(0.0, start + HUGE_HEAD_WINDOW_S - time.monotonic())


_refusals = _HugeHeadRefusals()


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
        self._release: asyncio.TimerHandle | None = None  # a held connection's end

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        hold = _refusals.hold_for(self.client[0]) if self.client else 0.0
        if hold:
            if _refusals.held >= HELD_MAX:
                transport.abort()
                return
            _refusals.held += 1
            self._release = self.loop.call_later(hold, transport.abort)
            # (uvloop starts reading once connection_made has returned: pausing here would not last)
            self.loop.call_soon(self._stop_reading)

    def _stop_reading(self) -> None:
        if not self.transport.is_closing():
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._release is not None:
            self._release.cancel()
            self._release = None
            _refusals.held -= 1
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._release is not None:  # held: what it sends is not read
            self._stop_reading()
            return
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
        report = _refusals.refused(self.client[0] if self.client else None)
        if report:
            self.logger.warning(
                "Request heads larger than %d bytes refused: %d since the last report.",
                self.max_head_bytes,
                report,
            )
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
