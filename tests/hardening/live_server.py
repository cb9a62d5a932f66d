"""A real `pim serve` process on a free port, for the tests that talk HTTP like an outside client
(schemathesis, the generated SDK). Its log goes to a file that a failing test can show."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.processes import die_with_parent

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    log: Path
    proc: subprocess.Popen

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def server_errors(self) -> list[str]:
        """Log lines of unhandled errors (a 500 the client may not have noticed)."""
        return [
            line[:2000]
            for line in self.log.read_text(errors="replace").splitlines()
            if "unhandled_error" in line
        ]


@contextlib.contextmanager
def live_server(timeout: float = 30.0) -> Iterator[LiveServer]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="pim-live-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    server = LiveServer(url=f"http://127.0.0.1:{port}", log=log, proc=proc)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"pim serve exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"pim serve did not answer within {timeout} s:\n{server.log_tail()}"
                )
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.unlink(missing_ok=True)
