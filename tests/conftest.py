"""Shared fixtures. Tests talk to the real Postgres, Redis and ClickHouse named in `.env`,
but never to the databases `make run` uses: see `tests/databases.py`.

Each test makes its own tenant(s) with `make_tenant`, so tests never see each
other's data and tenant isolation is exercised everywhere.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from jose import jwt

from tests.databases import create_test_databases, drop_test_databases, use_test_databases
from tests.processes import die_with_parent

use_test_databases()  # before anything reads the settings: every process the tests start inherits them
# webhooks: test receivers listen on 127.0.0.1 (the SSRF tests turn this off for their requests),
# and retries and the disabling of a failing receiver take seconds, not hours and days
for _name, _value in {
    "PIM_WEBHOOK_ALLOW_PRIVATE": "true",
    "PIM_WEBHOOK_RETRY_BASE_SECONDS": "0.1",
    "PIM_WEBHOOK_RETRY_MAX_SECONDS": "0.5",
    "PIM_WEBHOOK_DISABLE_AFTER_SECONDS": "8",
}.items():
    os.environ.setdefault(_name, _value)

from app.auth.service import Role, create_api_key, create_tenant  # noqa: E402
from app.config import Settings, get_settings  # noqa: E402
from app.main import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class TenantCtx:
    id: int
    slug: str
    keys: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}

    @property
    def admin(self) -> dict[str, str]:
        return self.headers("admin")

    @property
    def editor(self) -> dict[str, str]:
        return self.headers("editor")

    @property
    def viewer(self) -> dict[str, str]:
        return self.headers("viewer")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
async def app(settings):
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://pim.test", timeout=120
    ) as http:
        yield http


@pytest.fixture(scope="session")
def make_tenant(app):
    """Create a tenant with an API key per role: `t = await make_tenant(); client.get(url, headers=t.editor)`."""

    async def _make(prefix: str = "t") -> TenantCtx:
        slug = f"{prefix}-{secrets.token_hex(6)}"
        async with app.state.sessionmaker() as session, session.begin():
            tenant = await create_tenant(session, slug=slug)
            ctx = TenantCtx(id=tenant.id, slug=slug)
            for role in Role:
                _row, key = await create_api_key(session, tenant.id, name=role.value, role=role)
                ctx.keys[role.value] = key
        return ctx

    return _make


def jwt_headers(settings: Settings, tenant_id: int, role: str, ttl: int = 300) -> dict[str, str]:
    """`Authorization: Bearer` with an HS256 JWT for the tenant and role, signed with `PIM_JWT_SECRET`."""
    now = int(time.time())
    claims = {
        "tenant_id": tenant_id,
        "role": role,
        "sub": f"test-{role}",
        "iat": now,
        "exp": now + ttl,
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, settings.jwt_secret, algorithm='HS256')}"}


@pytest.fixture
async def tenant(make_tenant) -> TenantCtx:
    return await make_tenant()


@pytest.fixture
async def other_tenant(make_tenant) -> TenantCtx:
    return await make_tenant("other")


def _worker_log():
    path = os.environ.get("PIM_TEST_WORKER_LOG")
    return open(path, "ab") if path else None


def start_worker(extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, **(extra_env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=ROOT,
        env=env,
        # PIM_TEST_WORKER_LOG=<file>: the workers' output goes there (debugging)
        stdout=log if (log := _worker_log()) else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


def stop_worker(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def worker():
    """A real arq worker process for the whole session (imports, segment computes)."""
    proc = start_worker()
    time.sleep(1.5)
    assert proc.poll() is None, "the worker did not start"
    yield proc
    stop_worker(proc)


async def wait_for(predicate, timeout: float = 60.0, interval: float = 0.2):
    """Poll an async predicate until it returns a truthy value; return that value."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def pytest_sessionstart(session):
    # `--collect-only` runs no test: it must not drop the databases of a suite running beside it
    if not session.config.option.collectonly:
        create_test_databases()


def pytest_sessionfinish(session, exitstatus):
    if not session.config.option.collectonly:
        drop_test_databases()
