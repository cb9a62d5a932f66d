"""The webhook benchmark's receiver (bench/webhooks.py), a process of its own:

    .venv/bin/python -m bench.hook_receiver --port 8123

A minimal HTTP/1.1 server (asyncio streams, keep-alive, Content-Length bodies) that answers
every POST 200 at once. It finds each product event's id and seq with one regular expression over
the raw body (the body is not parsed: its events start `{"id":"…","type":"product.…","seq":N,`),
counts them and keeps them; `GET /check?tenant=T` then checks every id kept against the id the
event's seq must have (`product_event_id`), after the timed phases. `GET /stats`: events and
POSTs so far; `GET /arrived?seq=N`: when the event of seq N arrived (`time.time()`; among the
latest 100,000 events at least), or null.

In a process of its own, its work does not take the GIL from the benchmark's loads and bare
reads (in a thread of the benchmark it did), and it costs about 1 µs an event.
"""

import argparse
import asyncio
import re
import sys
import time
from array import array
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.webhooks.events import product_event_id

_PRODUCT_EVENT = re.compile(rb'\{"id":"([0-9a-f-]{36})","type":"product\.[a-z]+","seq":(\d+),')
_ID_BYTES = 36
_RECENT = 100_000


class Kept:
    def __init__(self) -> None:
        self.posts = 0
        self.ids = bytearray()  # 36 bytes an event
        self.seqs = array("q")
        # seq -> arrival, for the latest events (two generations of up to _RECENT each)
        self.recent: dict[int, float] = {}
        self.older: dict[int, float] = {}
        self.unmatched = 0  # product events the expression did not take apart

    def add(self, body: bytes) -> None:
        now = time.time()
        found = _PRODUCT_EVENT.findall(body)
        self.unmatched += body.count(b'","type":"product.') - len(found)
        if len(self.recent) > _RECENT:
            self.older, self.recent = self.recent, {}
        for event_id, seq in found:
            self.ids += event_id
            self.seqs.append(int(seq))
            self.recent.setdefault(int(seq), now)
        self.posts += 1

    def arrived(self, seq: int) -> float | None:
        """When the event of `seq` arrived, if it is among the latest ones (those asked for)."""
        return self.recent.get(seq, self.older.get(seq))

    def check(self, tenant_id: int) -> dict[str, int]:
        bad = 0
        for i, seq in enumerate(self.seqs):
            got = self.ids[i * _ID_BYTES : (i + 1) * _ID_BYTES].decode()
            bad += got != product_event_id(tenant_id, seq)
        return {
            "checked": len(self.seqs),
            "bad": bad,
            "distinct_seqs": len(set(self.seqs)),
            "unmatched": self.unmatched,
        }


def _answer(body: bytes, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    kept = Kept()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.split(b"\r\n")
                method, target, _ = request_line.split(b" ", 2)
                length = 0
                for line in header_lines:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                url = urlsplit(target.decode())
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if method == b"POST":
                    kept.add(body)
                    writer.write(_answer(b"ok"))
                elif url.path == "/stats":
                    stats = {"events": len(kept.seqs), "posts": kept.posts}
                    writer.write(_answer(orjson.dumps(stats)))
                elif url.path == "/arrived":
                    writer.write(_answer(orjson.dumps({"at": kept.arrived(int(query["seq"]))})))
                elif url.path == "/check":
                    writer.write(_answer(orjson.dumps(kept.check(int(query["tenant"])))))
                else:
                    writer.write(_answer(b"{}", "404 Not Found"))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", args.port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
