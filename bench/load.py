"""Mixed read/write load: GET by id, filtered lists, facets, bulk upserts of 50, PATCH; 64 connections, 60 s.

    .venv/bin/python bench/load.py                       # start `pim serve --workers 2`, fresh tenant + 20k products
    .venv/bin/python bench/load.py --workers 1,2,3       # the same data, one run per worker count
    .venv/bin/python bench/load.py --base-url http://127.0.0.1:8000 --api-key KEY   # a running API (editor key)

Without --base-url it starts `pim serve --port <free> --workers N` against the
databases in `.env`, creates a tenant with `pim tenant create`, sets a schema and
loads --products products through the bulk endpoint, then runs the load (before
each further run it deletes the products the previous run's bulks created, so
that every run starts on the same catalog). Every
connection is a keep-alive HTTP/1.1 connection (a small asyncio client on uvloop,
so that the generator costs little CPU) that sends one request after another
until the deadline; in-flight requests get --timeout seconds, then everything
stops. An error is any status >= 400 or a failed/timed-out request. Printed per
kind and overall: requests, errors, req/s, p50 and p99 latency (ms), plus the CPU
used by the generator, by the API processes and by their Postgres backends, and
how busy the whole machine was (everything shares its cores).

The mix (weights, --mix to change): get 40, list 25 (brand=, price range,
color= with ordering=-price, q=), facets 10 (half unfiltered from the kept
counts, half with a brand filter), patch 15 (stock, and half of the time the
faceted color), bulk 10 (50 items: 25 new SKUs, 25 updates of existing products).

Worker count, measured with `--workers 1,2,3,3,2,1` (each count twice, in mirrored
order, so that drift cancels), 64 connections x 60 s, 20,000 products. The machine
(2 cores) was shared with Postgres and with other engineers' test runs: load
average 5-9 during the runs, and the API plus its Postgres backends got only
0.8-0.9 of the 2 cores, so absolute figures are low; "req/core-s" (requests per
CPU-second of the API and its backends) is the comparable one:

    workers  req/s      p50 ms     p99 ms      req/core-s   GET p50 ms  bulk p50 ms
    1        93, 86     582, 638   2378, 2397  108, 107     452, 512    1093, 1380
    2        85, 76     399, 431   4145, 5124  109,  86     291, 148    2438, 2744
    3        92, 86     317, 398   4579, 4431  108, 106     220, 291    2366, 2446

Throughput is the same within the noise (the work per request does not change);
more workers answer reads faster (GET p50 -40 %) while bulk writes, which a
tenant's batches take turns at (app/products/upsert.py), wait longer behind each
other. Two workers (the default of `make run`) are the better choice here: reads
as fast as with three, with fewer processes competing with Postgres for the cores.
Roughly one worker per core that Postgres does not need.
"""

import argparse
import asyncio
import os
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import asyncpg
import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import tenant_is
from bench.common import free_port, pct, start_server, stop_server

KINDS = ("get", "list", "facets", "patch", "bulk")
DEFAULT_MIX = "get=40,list=25,facets=10,patch=15,bulk=10"
BRANDS = [f"Brand{i:02d}" for i in range(40)]
COLORS = ["red", "green", "blue", "black", "white", "navy"]
TAGS = [f"tag{i}" for i in range(12)]
WORDS = [
    "steel",
    "chair",
    "lamp",
    "table",
    "oak",
    "linen",
    "cotton",
    "classic",
    "modern",
    "compact",
    "deluxe",
    "outdoor",
    "travel",
    "smart",
    "eco",
]
SCHEMA = [
    {"name": "brand", "type": "string"},
    {"name": "color", "type": "enum", "options": COLORS},
    {"name": "price", "type": "number"},
    {"name": "stock", "type": "integer"},
    {"name": "tags", "type": "array"},
]


def make_product(sku: str, rng: random.Random) -> dict:
    return {
        "sku": sku,
        "name": " ".join(rng.choice(WORDS) for _ in range(3)).title(),
        "brand": rng.choice(BRANDS),
        "color": rng.choice(COLORS),
        "price": round(rng.uniform(1, 2000), 2),
        "stock": rng.randint(0, 500),
        "tags": rng.sample(TAGS, 2),
    }


# --- a minimal keep-alive HTTP/1.1 client ---------------------------------------------------


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive connection; requests are sent one after another (no pipelining)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]):
        self.host, self.port = host, port
        self.fixed = "".join(
            f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items()
        )
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\n{self.fixed}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            raise HttpError(f"connection closed: {exc!r}") from None
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            payload = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            payload = b"".join(p[:-2] for p in parts)
        else:
            payload = b""
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, payload


# --- the load ------------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    statuses: dict[int | str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)


class Mix:
    def __init__(self, ids: list[int], seed: int, prefix: str):
        self.ids = ids
        self.rng = random.Random(seed)
        self.prefix = prefix
        self.counter = 0

    def next(self, kind: str) -> tuple[str, str, bytes | None]:
        rng = self.rng
        if kind == "get":
            return "GET", f"/api/pim/products/{rng.choice(self.ids)}/", None
        if kind == "list":
            choice = rng.randrange(4)
            if choice == 0:
                query = f"brand={rng.choice(BRANDS)}"
            elif choice == 1:
                low = rng.randint(1, 1900)
                query = f"price__gte={low}&price__lte={low + 50}"
            elif choice == 2:
                query = f"color={rng.choice(COLORS)}&ordering=-price"
            else:
                query = "q=" + quote(f"{rng.choice(WORDS)} {rng.choice(WORDS)}")
            return "GET", f"/api/pim/products/?{query}&page_size=50", None
        if kind == "facets":
            if rng.random() < 0.5:
                return "GET", "/api/pim/facets/", None
            return "GET", f"/api/pim/facets/?brand={rng.choice(BRANDS)}", None
        if kind == "patch":
            data = {"stock": rng.randint(0, 500)}
            if rng.random() < 0.5:  # a faceted field too: its counters change
                data["color"] = rng.choice(COLORS)
            body = orjson.dumps({"data": data})
            return "PATCH", f"/api/pim/products/{rng.choice(self.ids)}/", body
        self.counter += 1
        existing = [f"LOAD-{i:08d}" for i in rng.sample(range(len(self.ids)), 25)]
        new = [f"{self.prefix}-{self.counter}-{i}" for i in range(25)]
        body = orjson.dumps({"products": [make_product(sku, rng) for sku in existing + new]})
        return "POST", "/api/pim/products/bulk/", body


def tree_cpu(pid: int | None) -> float:
    """CPU seconds used so far by a process and its children (the uvicorn workers)."""
    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0


async def backend_cpu(server_pid: int | None) -> float:
    """CPU seconds used so far by the Postgres backends serving the API's pooled connections."""
    if server_pid is None:
        return 0.0
    from app.config import get_settings

    url = urlsplit(get_settings().database_url)
    try:
        procs = [psutil.Process(server_pid), *psutil.Process(server_pid).children(recursive=True)]
        ports = [
            c.laddr.port
            for p in procs
            for c in p.net_connections(kind="tcp")
            if c.raddr and c.raddr.port == (url.port or 5432)
        ]
        conn = await asyncpg.connect(url._replace(scheme="postgresql").geturl())
        try:
            pids = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])", ports
            )
        finally:
            await conn.close()
        total = 0.0
        for row in pids:
            times = psutil.Process(row["pid"]).cpu_times()
            total += times.user + times.system
        return total
    except (psutil.Error, OSError, asyncpg.PostgresError):
        return 0.0


@dataclass
class Machine:
    """How busy the whole machine was during a run, and how much of it the API (and its Postgres backends) took."""

    api_cores: float
    postgres_cores: float
    busy_cores: float
    load_average: float


async def run_load(
    base: str,
    key: str,
    ids: list[int],
    *,
    connections: int,
    seconds: float,
    timeout: float,
    weights: dict[str, int],
    tag: str,
    server_pid: int | None = None,
) -> tuple[Stats, float, float, Machine]:
    parts = urlsplit(base)
    kinds = [k for k in KINDS if weights.get(k)]
    stats = Stats()
    deadline = time.monotonic() + seconds

    async def client(n: int) -> None:
        conn = Connection(parts.hostname, parts.port or 80, {"X-API-Key": key})
        mix = Mix(ids, seed=n, prefix=f"NEW-{tag}-{n}")
        rng = random.Random(1000 + n)
        try:
            while time.monotonic() < deadline:
                kind = rng.choices(kinds, weights=[weights[k] for k in kinds])[0]
                method, path, body = mix.next(kind)
                started = time.perf_counter()
                try:
                    status, payload = await asyncio.wait_for(
                        conn.request(method, path, body), timeout
                    )
                except (TimeoutError, OSError, HttpError, ValueError) as exc:
                    await conn.close()
                    status, payload = type(exc).__name__, b""
                stats.latencies[kind].append((time.perf_counter() - started) * 1000)
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
                if not isinstance(status, int) or status >= 400:
                    stats.errors[kind] += 1
                    if len(stats.samples) < 5:
                        stats.samples.append(f"{method} {path[:80]} -> {status} {payload[:200]!r}")
        finally:
            await conn.close()

    cpu = resource.getrusage(resource.RUSAGE_SELF)
    api_before, pg_before, system_before = (
        tree_cpu(server_pid),
        await backend_cpu(server_pid),
        psutil.cpu_times(),
    )
    started = time.monotonic()
    # bounded: every client stops issuing at the deadline; a stuck request is cut at `timeout`
    await asyncio.wait_for(
        asyncio.gather(*(client(n) for n in range(connections))), seconds + timeout + 10
    )
    elapsed = time.monotonic() - started
    after, system_after = resource.getrusage(resource.RUSAGE_SELF), psutil.cpu_times()
    api_after, pg_after = tree_cpu(server_pid), await backend_cpu(server_pid)
    client_cpu = (after.ru_utime - cpu.ru_utime + after.ru_stime - cpu.ru_stime) / elapsed
    idle = (system_after.idle + getattr(system_after, "iowait", 0)) - (
        system_before.idle + getattr(system_before, "iowait", 0)
    )
    machine = Machine(
        api_cores=(api_after - api_before) / elapsed,
        postgres_cores=max(0.0, pg_after - pg_before) / elapsed,
        busy_cores=(os.cpu_count() or 1) - idle / elapsed,
        load_average=os.getloadavg()[0],
    )
    return stats, elapsed, client_cpu, machine


def report(stats: Stats, elapsed: float, client_cpu: float, machine: Machine, title: str) -> dict:
    print(f"\n{title}")
    print(f"{'kind':8} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    every: list[float] = []
    rows = {}
    for kind in KINDS:
        lat = stats.latencies[kind]
        if not lat:
            continue
        every += lat
        rows[kind] = (
            len(lat),
            stats.errors[kind],
            len(lat) / elapsed,
            pct(lat, 0.5),
            pct(lat, 0.99),
        )
    rows["overall"] = (
        len(every),
        sum(stats.errors.values()),
        len(every) / elapsed,
        pct(every, 0.5),
        pct(every, 0.99),
    )
    for kind, (n, errors, rate, p50, p99) in rows.items():
        print(f"{kind:8} {n:9d} {errors:7d} {rate:8.1f} {p50:8.1f} {p99:8.1f}")
    print(f"statuses: {dict(sorted(stats.statuses.items(), key=str))}")
    api = (
        f"API processes {machine.api_cores:.2f} cores, their Postgres backends {machine.postgres_cores:.2f}, "
        if machine.api_cores
        else ""
    )
    print(
        f"CPU: {api}load generator {client_cpu:.2f} cores; whole machine busy {machine.busy_cores:.2f} of "
        f"{os.cpu_count()} cores, load average {machine.load_average:.1f} (other work on the machine counts too)"
    )
    for sample in stats.samples:
        print(f"  error sample: {sample}")
    return rows


# --- setup ---------------------------------------------------------------------------------


async def wait_up(base: str, proc: subprocess.Popen | None) -> None:
    parts = urlsplit(base)
    for _ in range(600):  # up to 2 minutes: a busy machine starts uvicorn workers slowly
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}")
        try:
            conn = Connection(parts.hostname, parts.port or 80, {})
            status, _ = await conn.request("GET", "/healthz")
            await conn.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the API did not start")


async def seed(base: str, key: str, n: int) -> None:
    parts = urlsplit(base)
    conn = Connection(parts.hostname, parts.port or 80, {"X-API-Key": key})
    status, body = await conn.request("PUT", "/api/pim/schema/", orjson.dumps({"fields": SCHEMA}))
    assert status == 200, body
    rng = random.Random(42)
    for start in range(0, n, 5000):
        items = [make_product(f"LOAD-{i:08d}", rng) for i in range(start, min(n, start + 5000))]
        status, body = await conn.request(
            "POST", "/api/pim/products/bulk/", orjson.dumps({"products": items})
        )
        assert status == 200 and orjson.loads(body)["failed"] == 0, body[:300]
    await conn.close()


async def product_ids(base: str, key: str, n: int) -> list[int]:
    """Ids of the LOAD-* products (the bulk kind updates those SKUs), by SKU order."""
    parts = urlsplit(base)
    conn = Connection(parts.hostname, parts.port or 80, {"X-API-Key": key})
    ids: list[int] = []
    for start in range(0, n, 200):
        skus = ",".join(f"LOAD-{i:08d}" for i in range(start, min(n, start + 200)))
        status, body = await conn.request(
            "GET", f"/api/pim/products/?sku__in={skus}&page_size=200&ordering=sku"
        )
        assert status == 200, body[:300]
        ids += [p["id"] for p in orjson.loads(body)["results"]]
    await conn.close()
    return ids


def create_tenant() -> tuple[str, str, int]:
    slug = f"load-{int(time.time())}-{os.getpid()}"
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "tenant", "create", slug],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(
        x for x in reversed(done.stdout.splitlines()) if x.startswith("{") and "api_key" in x
    )
    created = orjson.loads(line)
    return slug, created["api_key"], created["tenant_id"]


async def drop_created_products(tenant_id: int) -> int:
    """Delete the products earlier runs' bulk requests created, so that every run starts on the same catalog."""
    from app.config import get_settings

    conn = await asyncpg.connect(
        urlsplit(get_settings().database_url)._replace(scheme="postgresql").geturl()
    )
    try:
        status = await conn.execute(
            f"DELETE FROM products WHERE {tenant_is('products')} AND sku LIKE 'NEW-%'", tenant_id
        )
        await conn.execute("ANALYZE products")
    finally:
        await conn.close()
    return int(status.split()[-1])


def parse_mix(text: str) -> dict[str, int]:
    weights = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in KINDS:
            raise SystemExit(f"--mix: unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
        weights[kind.strip()] = int(weight)
    return weights


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--base-url", help="a running API (then --api-key, an editor or admin key, is required)"
    )
    parser.add_argument("--api-key")
    parser.add_argument(
        "--workers",
        default="2",
        help="uvicorn workers of the API we start; a list like 1,2,3 (or 1,2,3,1,2,3) runs each in turn",
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--timeout", type=float, default=30, help="per request")
    parser.add_argument(
        "--products", type=int, default=20_000, help="products loaded first (LOAD-00000000...)"
    )
    parser.add_argument("--mix", default=DEFAULT_MIX)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    weights = parse_mix(args.mix)

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    results = {}
    if args.base_url:
        if not args.api_key:
            raise SystemExit("--base-url needs --api-key")
        base, key = args.base_url.rstrip("/"), args.api_key
        await wait_up(base, None)
        ids = await product_ids(base, key, args.products)
        if len(ids) < args.products:
            print(f"# loading {args.products:,} products LOAD-* into the tenant of the key")
            await seed(base, key, args.products)
            ids = await product_ids(base, key, args.products)
        print(f"# {base}: {args.connections} connections, {args.seconds:.0f} s, mix {args.mix}")
        stats, elapsed, cpu, machine = await run_load(
            base,
            key,
            ids,
            connections=args.connections,
            seconds=args.seconds,
            timeout=args.timeout,
            weights=weights,
            tag=str(int(time.time())),
        )
        results["external"] = {
            "kinds": report(stats, elapsed, cpu, machine, f"{base}"),
            "machine": machine.__dict__,
        }
    else:
        worker_counts = [int(w) for w in args.workers.split(",")]
        slug, key, tenant_id = create_tenant()
        print(
            f"# tenant {slug}; {args.products:,} products; {args.connections} connections x {args.seconds:.0f} s; "
            f"mix {args.mix}; {os.cpu_count()} CPUs (shared with Postgres and this generator)"
        )
        ids: list[int] = []
        summary = []
        for run, workers in enumerate(worker_counts, start=1):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            server = start_server(port, workers)
            try:
                await wait_up(base, server)
                if not ids:
                    started = time.monotonic()
                    await seed(base, key, args.products)
                    ids = await product_ids(base, key, args.products)
                    print(f"# loaded {len(ids):,} products in {time.monotonic() - started:.1f} s")
                else:
                    await drop_created_products(tenant_id)
                stats, elapsed, cpu, machine = await run_load(
                    base,
                    key,
                    ids,
                    connections=args.connections,
                    seconds=args.seconds,
                    timeout=args.timeout,
                    weights=weights,
                    tag=f"r{run}w{workers}",
                    server_pid=server.pid,
                )
                rows = report(
                    stats, elapsed, cpu, machine, f"run {run}: pim serve --workers {workers}"
                )
                results[f"run{run}:workers={workers}"] = {
                    "kinds": rows,
                    "machine": machine.__dict__,
                }
                summary.append((workers, rows["overall"], machine))
            finally:
                stop_server(server)
        if len(worker_counts) > 1:
            # req/s per core the API and its Postgres backends got: comparable even when other work
            # on the machine takes a varying share of it
            print(
                f"\n{'workers':8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'API+PG cores':>13} "
                f"{'req/core-s':>11} {'load avg':>9}"
            )
            for workers, (_n, errors, rate, p50, p99), machine in summary:
                cores = machine.api_cores + machine.postgres_cores
                print(
                    f"{workers:<8} {rate:8.1f} {p50:8.1f} {p99:8.1f} {errors:7d} {cores:13.2f} "
                    f"{rate / cores if cores else float('nan'):11.1f} {machine.load_average:9.1f}"
                )
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    asyncio.run(main())
