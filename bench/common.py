"""Helpers shared by the HTTP benchmarks: a free port, an API server subprocess, a tenant, timings."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process (a server, a worker, a Postgres backend) has used so
    far: a figure the other load of a shared machine inflates far less than wall time."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def create_tenant(slug: str) -> dict:
    """`pim tenant create SLUG` → {"tenant_id", "slug", "api_key"}."""
    created = subprocess.run(
        [sys.executable, "-m", "app.cli", "tenant", "create", slug],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return orjson.loads(created.stdout)


def start_server(port: int, workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


async def wait_up(base: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):  # a loaded machine can take a minute to start two workers
            try:
                if (await http.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the API did not start")


async def timed_http(
    http: httpx.AsyncClient, url: str, params: dict, headers: dict, runs: int
) -> list[float]:
    """Milliseconds of `runs` sequential GETs."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await http.get(url, params=params, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times
