"""Finding 5 of issue 13 (connections): a client that sends an upload slowly, or does not read an
errors CSV, holds no database connection; other tenants' writes go on."""

import asyncio
import socket
import time

import asyncpg
import httpx

from app.db import pg_dsn
from tests.hardening.live_server import live_server
from tests.imports.conftest import IMPORT

POOL = 2  # the server's whole pool: PIM_DB_POOL_SIZE, no overflow
STALLED = 3  # of each kind: together more than the pool


def stalled_upload(port: int, key: str) -> socket.socket:
    """A multipart upload announcing 10 MB that sends its first bytes and then nothing."""
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nsku,name\nA,a\n'
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /api/pim/import/csv/ HTTP/1.1\r\nHost: pim\r\nX-API-Key: " + key.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000\r\n\r\n" + head
    )
    return sock


def stalled_download(port: int, key: str, job_id: str) -> socket.socket:
    """A GET of the errors CSV whose client never reads the answer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET {IMPORT}/{job_id}/errors/ HTTP/1.1\r\nHost: pim\r\nX-API-Key: {key}\r\n\r\n".encode()
    )
    return sock


def answering(sock: socket.socket) -> bool:
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return False


async def test_slow_uploads_and_stalled_downloads_do_not_starve_other_tenants(
    make_tenant, settings, monkeypatch
):
    """Finding 5: 3 stalled uploads and 3 stalled errors-CSV downloads against a server whose pool
    holds 2 connections; another tenant's writes still answer 201 within seconds."""
    slow, normal = await make_tenant("slow"), await make_tenant("normal")
    monkeypatch.setenv("PIM_DB_POOL_SIZE", str(POOL))
    monkeypatch.setenv("PIM_DB_MAX_OVERFLOW", "0")
    sockets: list[socket.socket] = []
    with live_server() as server:
        port = int(server.url.rsplit(":", 1)[1])
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            made = await http.post(
                f"{IMPORT}/csv/",
                headers=slow.editor,
                files={"file": ("f.csv", b"sku,name\nA,a\n", "text/csv")},
            )
            assert made.status_code == 201, made.text
            job_id = made.json()["job_id"]
            # 40 MB of rejected rows (4 MB a page): more than the sockets' buffers hold
            conn = await asyncpg.connect(pg_dsn(settings.database_url))
            try:
                await conn.execute(
                    """INSERT INTO import_row_errors (job_id, row, sku, cells, detail)
                       SELECT $1::uuid, g, 'A', jsonb_build_array(repeat('x', 2000)), 'bad'
                       FROM generate_series(1, 20000) g""",
                    job_id,
                )
            finally:
                await conn.close()
            try:
                sockets += [stalled_upload(port, slow.keys["editor"]) for _ in range(STALLED)]
                sockets += [
                    stalled_download(port, slow.keys["viewer"], job_id) for _ in range(STALLED)
                ]
                deadline = time.monotonic() + 30
                while not all(
                    answering(s) for s in sockets[STALLED:]
                ):  # the downloads are streaming
                    assert time.monotonic() < deadline, "the errors CSV downloads did not start"
                    await asyncio.sleep(0.05)

                for i in range(
                    6
                ):  # (a request that waited for a pooled connection would fail after 30 s)
                    response = await http.post(
                        "/api/pim/products/",
                        headers=normal.editor,
                        json={"sku": f"N-{i}", "name": "normal"},
                        timeout=15,
                    )
                    assert response.status_code == 201, response.text
                # and the stalled clients are still there: nothing was answered or closed on them
                assert not any(answering(s) for s in sockets[:STALLED])
            finally:
                for sock in sockets:
                    sock.close()
        assert server.server_errors() == []
