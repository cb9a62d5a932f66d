"""Private Redis, ClickHouse and Postgres instances that the fault tests may kill and restart.

They listen on free ports on 127.0.0.1 and live in temporary directories, so the
shared services in `.env` (which other test runs use) are never touched. A missing
server binary fails the test with the package to install, never a silent skip.
"""

import asyncio
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from fastapi import FastAPI

from app.auth.service import Role, create_api_key, create_tenant
from app.clickhouse import migrate_clickhouse
from app.main import create_app
from tests.conftest import TenantCtx

ROOT = Path(__file__).resolve().parents[2]
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(name: str, package: str) -> str:
    path = shutil.which(name, path=SBIN_PATH)
    if path is None:
        pytest.fail(
            f"{name} is not installed; the fault tests start private instances of it "
            f"(apt-get install {package}, or run `make services` once it installs it)",
            pytrace=False,
        )
    return path


def listening(proc: subprocess.Popen, port: int, what: str) -> bool:
    """True once `proc` itself listens on the port (another server that took the port does not count)."""
    if proc.poll() is not None:
        raise RuntimeError(f"{what} exited with {proc.returncode} (port {port} taken?)")
    try:
        sockets = psutil.Process(proc.pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in sockets)


def wait_until(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout} s")
        time.sleep(0.05)


def kill_process(proc: subprocess.Popen | None, sig: int = signal.SIGKILL) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)


# --- Redis ------------------------------------------------------------------------------------


class PrivateRedis:
    def __init__(self, workdir: Path):
        self.server = binary("redis-server", "redis-server")
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _ping(self) -> bool:
        if not listening(self.proc, self.port, "redis-server"):
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        if self.running:
            return
        self.proc = subprocess.Popen(
            [
                self.server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._ping, f"redis-server on port {self.port}", timeout=20)

    def kill(self) -> None:
        """SIGKILL: the server vanishes like a crashed one (its connections are reset)."""
        kill_process(self.proc)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# --- ClickHouse -------------------------------------------------------------------------------

_CLICKHOUSE_CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{dir}/data/server.log</log><errorlog>{dir}/data/server.err.log</errorlog></logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp}</tcp_port>
    <http_port>{http}</http_port>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>50</max_concurrent_queries>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mark_cache_size>67108864</mark_cache_size>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>{dir}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
"""
_CLICKHOUSE_USERS = """<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
        <profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"""


class PrivateClickHouse:
    """A clickhouse-server (18.16 here, like scripts/services.sh starts) with its data in a temporary directory."""

    def __init__(self, workdir: Path):
        self.server = binary("clickhouse-server", "clickhouse-server")
        self.dir = workdir
        self.port = free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen | None = None
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "config.xml").write_text(
            _CLICKHOUSE_CONFIG.format(dir=self.dir, tcp=self.port, http=self.http_port)
        )
        (self.dir / "users.xml").write_text(_CLICKHOUSE_USERS)

    @property
    def url(self) -> str:
        return f"clickhouse://default:@127.0.0.1:{self.port}/pim"

    def start(self) -> None:
        if self.running:
            return
        self.proc = subprocess.Popen(
            [self.server, f"--config-file={self.dir / 'config.xml'}"],
            cwd=self.dir / "data",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        what = f"clickhouse-server (logs in {self.dir}/data)"
        wait_until(
            lambda: listening(self.proc, self.port, what),
            f"clickhouse-server on port {self.port}",
            timeout=60,
        )

    def kill(self) -> None:
        kill_process(self.proc)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# --- Postgres ---------------------------------------------------------------------------------


def _pg_bin_dir() -> Path:
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
    )
    if versions:
        return Path(versions[-1]).parent
    return Path(binary("initdb", "postgresql")).parent


class PrivatePostgres:
    """initdb into a temporary directory (as the `postgres` OS user when we are root), pg_ctl start/restart/stop."""

    def __init__(self):
        self.bin = _pg_bin_dir()
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(
                    "initdb refuses root and there is no `postgres` OS user to run it as "
                    "(useradd --system postgres, or install postgresql)",
                    pytrace=False,
                )
        self.dir = Path(tempfile.mkdtemp(prefix="pim-faults-pg-"))
        self.data = self.dir / "data"
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.options = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/pim"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(
            command, cwd="/", capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr or done.stdout}")

    def _pg_ctl(self, action: str, *extra: str) -> list[str]:
        command = [
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.data / "server.log"),
            "-w",
            "-t",
            "60",
            *extra,
            action,
        ]
        if action in ("start", "restart"):
            command[-1:-1] = ["-o", self.options]
        return (["runuser", "-u", "postgres", "--"] if self.as_root else []) + command

    async def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "-N",
        )
        await self.start()
        conn = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres"
        )
        try:
            await conn.execute("CREATE DATABASE pim")
        finally:
            await conn.close()
        migrate = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "alembic",
            "upgrade",
            "head",
            cwd=ROOT,
            env={**os.environ, "PIM_DATABASE_URL": self.url},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await migrate.communicate()
        if migrate.returncode:
            raise RuntimeError(
                f"alembic upgrade head failed on the private Postgres: {err.decode()[-2000:]}"
            )

    async def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart -m fast` without blocking the event loop (the app's pooled sockets see the close)."""
        proc = await asyncio.create_subprocess_exec(
            *self._pg_ctl("restart", "-m", mode),
            cwd="/",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"pg_ctl restart failed: {err.decode()}")

    async def stop(self, mode: str = "fast") -> None:
        proc = await asyncio.create_subprocess_exec(
            *self._pg_ctl("stop", "-m", mode),
            cwd="/",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()

    async def start(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self._pg_ctl("start"),
            cwd="/",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"pg_ctl start failed: {err.decode()}")

    def destroy(self) -> None:
        subprocess.run(
            self._pg_ctl("stop", "-m", "immediate"),
            cwd="/",
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory):
    redis = PrivateRedis(tmp_path_factory.mktemp("redis"))
    redis.start()
    yield redis
    redis.kill()


@pytest.fixture
def redis_up(private_redis):
    """The private Redis, (re)started if an earlier test left it down."""
    private_redis.start()
    return private_redis


@pytest.fixture(scope="module")
async def private_clickhouse(settings):
    workdir = Path(tempfile.mkdtemp(prefix="pim-faults-ch-"))
    clickhouse = PrivateClickHouse(workdir)
    try:
        clickhouse.start()
        await migrate_clickhouse(settings.model_copy(update={"clickhouse_url": clickhouse.url}))
        yield clickhouse
    finally:
        clickhouse.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def clickhouse_up(private_clickhouse):
    private_clickhouse.start()
    return private_clickhouse


@pytest.fixture(scope="module")
async def private_postgres():
    postgres = PrivatePostgres()
    try:
        await postgres.init()
        yield postgres
    finally:
        postgres.destroy()


@dataclass
class AppClient:
    app: FastAPI
    http: httpx.AsyncClient


@pytest.fixture
async def app_with(settings):
    """`api = await app_with(redis_url=...)`: an app (with its lifespan) on other settings, and a client for it."""
    stack = contextlib.AsyncExitStack()

    async def make(**overrides) -> AppClient:
        application = create_app(settings.model_copy(update=overrides))
        await stack.enter_async_context(application.router.lifespan_context(application))
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://pim.test", timeout=60)
        )
        return AppClient(application, http)

    yield make
    await stack.aclose()


async def tenant_in(application: FastAPI, prefix: str = "faults") -> TenantCtx:
    """A fresh tenant with a key per role in the database of `application` (which may be a private Postgres)."""
    slug = f"{prefix}-{secrets.token_hex(6)}"
    async with application.state.sessionmaker() as session, session.begin():
        tenant = await create_tenant(session, slug=slug)
        ctx = TenantCtx(id=tenant.id, slug=slug)
        for role in Role:
            _row, key = await create_api_key(session, tenant.id, name=role.value, role=role)
            ctx.keys[role.value] = key
    return ctx
