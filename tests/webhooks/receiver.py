"""A real HTTP receiver on 127.0.0.1 for the webhook tests: `http.server` in a thread, which
keeps every POST (raw body, headers), can be switched to failing (`status`) or taken down
(`stop`) and brought back on the same port (`start`)."""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from app.webhooks.events import verify


@dataclass
class Delivery:
    body: bytes
    signature: str

    @property
    def events(self) -> list[dict[str, Any]]:
        return orjson.loads(self.body)["events"]


@dataclass
class Receiver:
    port: int = 0
    status: int = 200
    delay: float = 0.0  # seconds each answer takes
    hold: threading.Event | None = None  # when set: each answer waits for the event
    in_flight: int = 0
    max_in_flight: int = 0  # the most requests it was answering at once
    deliveries: list[Delivery] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                with receiver._lock:
                    receiver.in_flight -= 1
                status = receiver.status
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.deliveries.append(
                            Delivery(body, self.headers.get("PIM-Signature", ""))
                        )
                answer = b"ok" if status < 300 else b"x" * 5000  # kept to 1 KB by the service
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e for d in self.deliveries for e in d.events]

    def all_signed_by(self, secret: str) -> bool:
        with self._lock:
            return all(verify(secret, d.body, d.signature) for d in self.deliveries)
