"""Issue 13, the HTTP edge against a real `pim serve` (uvicorn) on 127.0.0.1: bodies are not read
before authentication, body limits per route, request heads are capped, client disconnects are no
500s. Raw sockets, because these are about what the server does while a client is still sending."""

import socket
import threading
import time

import httpx
import psutil
import pytest

from app.server import HUGE_HEADS_PER_WINDOW
from tests.hardening.live_server import LiveServer, live_server

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server():
    with live_server() as live:
        yield live


def _connect(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    return sock


def _send_in_background(sock: socket.socket, head: bytes, body_chunks) -> threading.Thread:
    """Send the head, then the body chunks until they run out or the server closes the connection."""

    def run():
        try:
            sock.sendall(head)
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError:  # the server answered and closed: that is the point
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _read_status(sock: socket.socket, timeout: float) -> tuple[int, bytes]:
    """The status code and head of the first answer on the socket, waiting at most `timeout` seconds."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    except TimeoutError:
        pytest.fail(f"no answer within {timeout} s (got {data[:200]!r})")
    except ConnectionResetError:
        if not data:
            raise
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data[9:12]), data.split(b"\r\n\r\n", 1)[0]


def _rss(server: LiveServer) -> int:
    return psutil.Process(server.proc.pid).memory_info().rss


def _chunks(total: int, size: int = MIB):
    piece = b" " * size
    for _ in range(total // size):
        yield piece


def _chunked(total: int, size: int = MIB):
    piece = b"%x\r\n" % size + b" " * size + b"\r\n"
    for _ in range(total // size):
        yield piece


def test_unauthenticated_large_body_gets_its_401_while_it_is_still_being_sent(server):
    """Finding 3: an unauthenticated 1 GiB JSON body to /api/pim/import/x/confirm/ is answered 401
    from the headers, while the client is still sending, and the body is not buffered (the process
    does not grow). Both with a Content-Length and chunked."""
    before = _rss(server)
    for framing, chunks, expected in (
        (b"content-length: 1073741824", _chunks(256 * MIB), {401, 413}),
        (b"content-length: 31457280", _chunks(30 * MIB), {401}),
        (b"transfer-encoding: chunked", _chunked(256 * MIB), {401}),
    ):
        sock = _connect(server)
        started = time.monotonic()
        head = (
            b"POST /api/pim/import/x/confirm/ HTTP/1.1\r\nhost: pim\r\ncontent-type: application/json\r\n"
            + framing
            + b"\r\n\r\n"
        )
        sender = _send_in_background(sock, head, chunks)
        status, response_head = _read_status(sock, timeout=10)
        assert status in expected, response_head
        assert time.monotonic() - started < 5
        assert (
            b"connection: close" in response_head.lower()
        )  # the rest of the body is not read either
        sock.close()
        sender.join(timeout=30)
    assert _rss(server) - before < 64 * MIB, "the server buffered the body"


def test_body_limit_is_the_json_limit_except_for_the_upload(server, tenant):
    """Finding 3: the 1 GiB limit is the CSV upload's only; another route under /api/pim/import/
    refuses a body over the JSON limit (32 MiB) at once by its Content-Length, and while streaming
    when it is chunked."""
    key = tenant.editor["X-API-Key"].encode()
    sock = _connect(server)
    sock.sendall(
        b"POST /api/pim/import/x/confirm/ HTTP/1.1\r\nhost: pim\r\ncontent-type: application/json\r\n"
        b"x-api-key: " + key + b"\r\ncontent-length: 104857600\r\n\r\n"
    )
    status, head = _read_status(sock, timeout=5)
    assert status == 413, head
    sock.close()

    sock = _connect(server)
    head = (
        b"POST /api/pim/import/x/confirm/ HTTP/1.1\r\nhost: pim\r\ncontent-type: application/json\r\n"
        b"x-api-key: " + key + b"\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    sender = _send_in_background(sock, head, _chunked(48 * MIB))
    status, head = _read_status(sock, timeout=30)
    assert status == 413, head
    sock.close()
    sender.join(timeout=30)

    # the upload itself still takes a body larger than the JSON limit (refused later, by its content)
    sock = _connect(server)
    sock.sendall(
        b"POST /api/pim/import/csv/ HTTP/1.1\r\nhost: pim\r\ncontent-type: multipart/form-data; boundary=b\r\n"
        b"x-api-key: " + key + b"\r\ncontent-length: 104857600\r\n\r\n"
    )
    sock.settimeout(1)
    with pytest.raises(TimeoutError):  # no 413: the server waits for the body
        sock.recv(100)
    sock.close()


def test_a_huge_request_header_is_a_431_at_once(server):
    """Finding 4: a 1 MiB header is answered 431 at once."""
    sock = _connect(server)
    started = time.monotonic()
    sender = _send_in_background(
        sock, b"GET /healthz HTTP/1.1\r\nhost: pim\r\nx-big: ", [b"a" * MIB, b"\r\n\r\n"]
    )
    status, head = _read_status(sock, timeout=5)
    assert status == 431, head
    assert time.monotonic() - started < 2
    sock.close()
    sender.join(timeout=10)
    # a head within the limit is served as before
    assert httpx.get(f"{server.url}/healthz", headers={"x-fine": "a" * 60_000}).status_code == 200


def test_a_head_within_the_limit_is_served_whatever_follows_it_in_the_same_bytes(server):
    """A head under the limit whose bytes arrive with a body that takes them over the limit, or
    whose blank line is split between two sends, is read as a request, not refused as a huge head
    (huge heads are refused before parsing once the limit is passed without a blank line)."""
    limit = 64 * 1024
    padding = b"a" * (limit - 200)
    for first, second in (
        (b"x-pad: " + padding + b"\r\ncontent-length: 200000\r\n\r\n" + b"{" * 100_000, b""),
        (b"x-pad: " + padding + b"\r\ncontent-length: 200000\r\n\r", b"\n" + b"{" * 100_000),
    ):
        sock = _connect(server)
        try:  # the 401 may come (and the connection close) before the whole body is sent
            sock.sendall(b"POST /api/pim/products/bulk/ HTTP/1.1\r\nhost: pim\r\n" + first)
            if second:
                time.sleep(0.05)  # most likely two reads on the server's side
                sock.sendall(second)
            sock.sendall(b"{" * (200_000 - 100_000))
        except OSError:
            pass
        status, head = _read_status(sock, timeout=10)
        assert status == 401, head  # no credentials: the request was read
        sock.close()


def test_an_address_that_keeps_sending_huge_heads_is_held_while_others_are_served(server):
    """The hostile load test's huge-header attack: a client reconnecting as fast as it can with
    64 MiB heads cost the server ~1,400 accepts, parses and answers a second. Once an address has
    had HUGE_HEADS_PER_WINDOW heads refused, its next connections are held unread (one process:
    `pim serve` with one worker); another address is served as before."""
    host, port = server.url.removeprefix("http://").split(":")
    hostile = ("127.0.0.2", 0)
    for _ in range(HUGE_HEADS_PER_WINDOW):
        sock = socket.create_connection((host, int(port)), timeout=10, source_address=hostile)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: pim\r\nx-big: " + b"a" * (100 * 1024))
        except OSError:
            pass  # refused before all of it was sent
        status, head = _read_status(sock, timeout=5)
        assert status == 431, head
        sock.close()
    held = socket.create_connection((host, int(port)), timeout=10, source_address=hostile)
    held.sendall(b"GET /healthz HTTP/1.1\r\nhost: pim\r\n\r\n")
    held.settimeout(1.0)
    with pytest.raises(TimeoutError):  # held: no answer, not even a refusal
        held.recv(100)
    held.close()
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_a_request_the_parser_cannot_read_gets_a_json_400(server):
    """A request line with control characters (schemathesis sent one) is a 400 in the API's JSON
    error shape, as the OpenAPI document declares, not uvicorn's plain text."""
    sock = _connect(server)
    sock.sendall(b"GET /api/pim/categories/?x=\x01\x1b HTTP/1.1\r\nhost: pim\r\n\r\n")
    status, head = _read_status(sock, timeout=5)
    assert status == 400 and b"content-type: application/json" in head.lower(), head
    sock.close()


def test_two_64_mib_headers_do_not_stall_other_requests(server):
    """Finding 4: while two clients send 64 MiB headers, /healthz keeps answering quickly."""
    socks = [_connect(server) for _ in range(2)]
    senders = [
        _send_in_background(
            sock, b"GET /healthz HTTP/1.1\r\nhost: pim\r\nx-big: ", _chunks(64 * MIB)
        )
        for sock in socks
    ]
    latencies = []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(25):  # about a second of probes while the big heads arrive
            started = time.monotonic()
            assert http.get("/healthz").status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.03)
    for sock in socks:
        status, head = _read_status(sock, timeout=30)
        assert status == 431, head
        sock.close()
    for sender in senders:
        sender.join(timeout=30)
    assert max(latencies) < 0.5, sorted(latencies)[-5:]


def test_a_client_that_disconnects_mid_body_is_not_an_unhandled_500(server, tenant):
    """Finding 11: a client that goes away while sending its upload is logged as a disconnect, not as
    an unhandled 500."""
    key = tenant.editor["X-API-Key"].encode()
    for _ in range(3):
        sock = _connect(server)
        sock.sendall(
            b"POST /api/pim/import/csv/ HTTP/1.1\r\nhost: pim\r\n"
            b"content-type: multipart/form-data; boundary=XyZ\r\nx-api-key: "
            + key
            + b'\r\ncontent-length: 10485760\r\n\r\n--XyZ\r\ncontent-disposition: form-data; name="file"; '
            b'filename="a.csv"\r\ncontent-type: text/csv\r\n\r\nsku,name\r\n' + b"a,b\r\n" * 20_000
        )
        sock.close()
    deadline = time.monotonic() + 10
    while "client_disconnected" not in server.log_tail(200_000) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.server_errors() == []
    assert "client_disconnected" in server.log_tail(200_000)
