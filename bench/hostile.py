"""A hostile tenant beside a normal one (issue 13): does the normal tenant notice?

    .venv/bin/python bench/hostile.py                  # 60 s alone, then 60 s beside the hostile tenant
    .venv/bin/python bench/hostile.py --seconds 10     # the short version (tests/hardening/test_edge_hostile.py)

Starts `pim serve --workers N` on a free port against the databases of the environment, with rate
limits low enough that the hostile tenant's bursts go over them (PIM_RATE_LIMIT_* below), creates
two tenants and loads --products products into each (bench/load.py's catalog).

The normal tenant sends --rate requests a second, open loop (each request starts at its scheduled
time, and its latency counts from then, waiting for a free connection included): GET by id 50 %,
filtered lists 35 %, PATCH 15 %. It runs --seconds alone, then --seconds again while the hostile
tenant, from another client address (127.0.0.2), does all of this at once:

- slow uploads: --slow-uploads connections that announce a 100 MiB CSV and send 1 KiB a second,
  half of them with the tenant's editor key, half without credentials;
- huge headers: two connections that send 64 MiB headers, over and over;
- preview floods: 16 connections sending 200-condition segment previews as a viewer, back to back
  (a 429 is retried after 0.2 s, not after its Retry-After);
- bursts: every 5 s, 300 GETs as fast as 8 connections go, far above its key's bucket;
- wrong keys: 20 guesses a second.

Pass: the normal tenant gets no error and its p95 with the hostile tenant is at most 2x its p95
alone. The answers the hostile tenant got are counted by status.

--rounds R alternates R windows alone and R windows beside the hostile tenant (--seconds/R each,
the same totals): on a machine shared with other work, which comes and goes, both phases then see
it alike. Printed per phase: the CPU (in cores) the API processes, their Postgres backends, the
normal client, the hostile client and the whole machine used, and the load average. The hostile
client runs at normal priority; --attacker-nice N lowers it (its CPU is then less of the server's
to share, but on a busy machine it also sends fewer requests: compare its counts).

Measured 2026-12-07 with `--seconds 60 --rounds 4` (defaults otherwise), the code before the load
defences (rate-limit mirrors, weighted and time-boxed previews, tenant turns) and after,
alternating, on the 2-core machine shared with up to 8 other engineers' test runs (load average
9-13 throughout; the whole machine was 2.0 of 2 cores busy in every window):

    run     alone p95  beside p95  ratio   API cores   Postgres cores   hostile client cores
    before  64 ms      744 ms      11.6x   0.06/0.20   0.03/0.15        0.07
    after   83 ms      903 ms      10.9x   0.07/0.21   0.03/0.10        0.09
    before  60 ms      924 ms      15.4x   0.07/0.25   0.04/0.17        0.11
    after   55 ms      848 ms      15.4x   0.08/0.25   0.04/0.12        0.11
    without the bursts (--attacks "slow upload,huge header,preview,wrong key"):
    before  65 ms      703 ms      10.8x   0.07/0.23   0.03/0.18        0.12
    after   66 ms      854 ms      13.0x   0.08/0.26   0.04/0.13        0.13

(cores: alone/beside.) The defences took a third off the Postgres time the hostile tenant costs
(its successful 200-condition previews fell from 18-21 to 4-9 a minute, one statement each, and
those past 2 s were cancelled) and its 429s no longer cost a Redis round trip, but the ratio did
not move: it is set by the API processes' CPU. The hostile tenant sends about 130 requests a
second that are refused or allowed (431, 401, 429 and GETs within its limit), and each costs the
Python stack 0.4-1 ms of CPU on this machine (a new connection to /healthz: 1 ms; a 431: 0.4-0.7
ms), 0.13-0.18 cores in all, twice what the normal tenant's own requests need. With ten other
runnable processes the two API workers get about 0.1 core each; that extra work keeps them busy,
and every wake-up of a normal request waits behind other work for the CPU (p50 20 ms alone, 200-
300 ms beside). The pass mark needs either a machine whose cores the API does not share with a
dozen other processes, or refusals that cost no Python (a proxy in front doing header limits,
per-key rate limits and connection limits in C).

Measured again 2026-12-07 (h4_load), `--seconds 60` unless said, the machine's load average 2 for
the first run and 10-17 for the others (other engineers' test suites):

    code                                  alone p50/p95    beside p50/p95     ratio  errors
    c3bc10b (before), load 2              8 / 30 ms        283 / 626 ms       21.2   0 / 0
    1132664 (after), load 14              30 / 101 ms      513 / 1215 ms      12.0   0 / 0
    per attack, c3bc10b, --seconds 20:    preview 6.3, burst 2.7, wrong key 1.6,
                                          huge header 1.5, slow upload 0.9

Where the normal tenant's time went (the server's access log, `--seconds 30`): its requests'
own duration in the app was p50 75 ms / p95 1261 ms beside (23 / 35 ms alone), so the wait is in
the API processes, not in Postgres. Two causes were found and fixed: (1) the rate limiter's Redis
round trip timed out (1 s) on the overloaded event loop 46 times in 30 s, and each time the
process lifted every limit for 5 s (fail open): the hostile tenant's 200-condition previews ran 14
times where its heavy-read bucket allows 4, 1.3-3.3 s each. The limits are now enforced per
process while Redis cannot be asked. (2) A refused preview cost a Redis round trip and a parsed
20 kB body: it is now refused before both when the process can tell (heavy slots taken, or the
heavy-read bucket's mirror empty). What remains is CPU: the API used 0.19 cores beside against
0.07 alone (about 115 refused or legitimate hostile requests a second, the burst's 20-50 GET/s
being within its key's limit), on a machine whose two cores were busy throughout; fewer turns per
tenant (PIM_TENANT_REQUESTS_PER_PROCESS=2) made it worse (beside p50 2 s: the normal tenant's own
requests queued for their turns).

Measured on the idle machine (session 8, load average 0.4-1.6), `--seconds 60`: p95 alone 14.1 ms,
beside 39.0 ms, ratio 2.77 (`--attacker-nice 10`: 3.08); without the huge-header attack 13.6 /
15.0 ms, ratio 1.10. The huge heads were the cost: the attacker reconnected ~1,350 times a second
(68,627 resets and 12,290 431s a minute), and each connection cost uvicorn's Python work (API 0.75
cores beside, 0.24 without that attack). An address with 20 heads refused in 10 s now has its new
connections held unread until those 10 s end (app/server.py): ratio 1.15 (14.4 / 16.5 ms; the
attacker got 110 431s a minute), and 1.27 with `--rounds 2` (15.6 / 19.8 ms), 0 errors; API 0.13-0.14
cores beside.
"""

import argparse
import asyncio
import multiprocessing
import os
import random
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import create_tenant, free_port, pct, start_server, stop_server
from bench.load import (
    BRANDS,
    COLORS,
    Connection,
    HttpError,
    backend_cpu,
    product_ids,
    seed,
    tree_cpu,
    wait_up,
)

HOSTILE_ADDRESS = "127.0.0.2"
ATTACKS = ("slow upload", "huge header", "preview", "burst", "wrong key")
# the server's limits for the run: the normal tenant's --rate stays well under its key's, the
# hostile tenant's bursts do not
LIMITS = {
    "PIM_RATE_LIMIT_KEY_PER_SECOND": "50",
    "PIM_RATE_LIMIT_KEY_BURST": "100",
    "PIM_RATE_LIMIT_TENANT_PER_SECOND": "100",
    "PIM_RATE_LIMIT_TENANT_BURST": "200",
    # a 200-condition preview costs about a second of CPU (API process and Postgres) on this 2-core
    # machine shared with other work: a tenant gets one every 5 s, one at a time per process
    "PIM_HEAVY_READS_PER_TENANT": "1",
    "PIM_HEAVY_READS_PER_SECOND": "0.2",
    "PIM_HEAVY_READS_BURST": "2",
}


class HostileConnection(Connection):
    """A connection from another client address, so that the two tenants' clients are told apart."""

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, local_addr=(HOSTILE_ADDRESS, 0)
            )
        return await super().request(method, path, body)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)

    def count(self, status) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


# --- the normal tenant -------------------------------------------------------------------------


def normal_request(rng: random.Random, ids: list[int]) -> tuple[str, str, bytes | None]:
    roll = rng.random()
    if roll < 0.50:
        return "GET", f"/api/pim/products/{rng.choice(ids)}/", None
    if roll < 0.85:
        if rng.random() < 0.5:
            return "GET", f"/api/pim/products/?brand={rng.choice(BRANDS)}&page_size=20", None
        low = rng.randint(1, 1900)
        return (
            "GET",
            f"/api/pim/products/?price__gte={low}&price__lte={low + 100}&page_size=20",
            None,
        )
    data = {"stock": rng.randint(0, 500), "color": rng.choice(COLORS)}
    return "PATCH", f"/api/pim/products/{rng.choice(ids)}/", orjson.dumps({"data": data})


async def normal_load(
    host: str,
    port: int,
    key: str,
    ids: list[int],
    *,
    rate: float,
    seconds: float,
    tally: Tally,
    seed: int = 7,
    connections: int = 24,
    timeout: float = 30,
) -> Tally:
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(Connection(host, port, {"X-API-Key": key}))
    rng = random.Random(seed)
    started = time.monotonic()

    async def one(scheduled: float, method: str, path: str, body: bytes | None) -> None:
        conn = await idle.get()
        try:
            status, payload = await asyncio.wait_for(conn.request(method, path, body), timeout)
        except (TimeoutError, OSError, HttpError, ValueError) as exc:
            await conn.close()
            status, payload = type(exc).__name__, b""
        finally:
            idle.put_nowait(conn)
        tally.latencies.append((time.monotonic() - scheduled) * 1000)
        tally.count(status)
        if not isinstance(status, int) or status >= 400:
            tally.errors += 1
            if len(tally.samples) < 5:
                tally.samples.append(f"{method} {path[:80]} -> {status} {payload[:200]!r}")

    tasks = []
    for n in range(int(rate * seconds)):
        scheduled = started + n / rate
        await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
        tasks.append(asyncio.create_task(one(scheduled, *normal_request(rng, ids))))
    await asyncio.gather(*tasks)
    while not idle.empty():
        await idle.get_nowait().close()
    return tally


# --- the hostile tenant ------------------------------------------------------------------------


def preview_definition(rng: random.Random) -> bytes:
    conditions = []
    for n in range(200):
        if n % 2:
            conditions.append({"field": "brand", "op": "eq", "value": f"{rng.choice(BRANDS)}-{n}"})
        else:
            low = rng.randint(1, 1900)
            conditions.append({"field": "price", "op": "between", "value": [low, low + 3]})
    return orjson.dumps({"match": "any", "conditions": conditions})


async def raw_exchange(
    host: str, port: int, head: bytes, body_pieces, pause: float, deadline: float
) -> int | str:
    """Send a head, then body pieces `pause` seconds apart, until the deadline or an answer; the status."""
    try:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(HOSTILE_ADDRESS, 0))
    except OSError as exc:
        return type(exc).__name__
    answer = asyncio.create_task(reader.readuntil(b"\r\n\r\n"))
    try:
        writer.write(head)
        for piece in body_pieces:
            if answer.done() or time.monotonic() > deadline:
                break
            writer.write(piece)
            await writer.drain()
            if pause:
                await asyncio.wait([answer], timeout=pause)
        try:
            raw = await asyncio.wait_for(answer, max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            return "still sending"
        return int(raw.split(b" ", 2)[1])
    except (OSError, asyncio.IncompleteReadError) as exc:
        if answer.done() and not answer.cancelled() and answer.exception() is None:
            return int(answer.result().split(b" ", 2)[1])
        return type(exc).__name__
    finally:
        answer.cancel()
        writer.close()


async def hostile_load(
    host: str,
    port: int,
    keys: dict[str, str],
    ids: list[int],
    *,
    seconds: float,
    slow_uploads: int,
    kinds: list[str],
) -> dict[str, Tally]:
    deadline = time.monotonic() + seconds
    tallies = {kind: Tally() for kind in ATTACKS}

    async def slow_upload(n: int) -> None:
        key = f"x-api-key: {keys['editor']}\r\n" if n % 2 == 0 else ""
        head = (
            f"POST /api/pim/import/csv/ HTTP/1.1\r\nhost: pim\r\n{key}content-type: multipart/form-data; boundary=B\r\n"
            f'content-length: {100 * 1024 * 1024}\r\n\r\n--B\r\ncontent-disposition: form-data; name="file"; '
            f'filename="slow.csv"\r\ncontent-type: text/csv\r\n\r\nsku,name\r\n'
        ).encode()
        while time.monotonic() < deadline:
            pieces = (b"SLOW-%d,slow\r\n" % i + b"x" * 1000 for i in range(10**9))
            tallies["slow upload"].count(
                await raw_exchange(host, port, head, pieces, 1.0, deadline)
            )
            await asyncio.sleep(1.0)  # a slow client: refused, it tries again a second later

    async def huge_headers() -> None:
        head = b"GET /api/pim/products/ HTTP/1.1\r\nhost: pim\r\nx-big: "
        while time.monotonic() < deadline:
            pieces = (b"a" * 65536 for _ in range(1024))  # 64 MiB
            tallies["huge header"].count(await raw_exchange(host, port, head, pieces, 0, deadline))

    async def previews(n: int) -> None:
        conn = HostileConnection(host, port, {"X-API-Key": keys["viewer"]})
        rng = random.Random(n)
        while time.monotonic() < deadline:
            try:
                status, _ = await asyncio.wait_for(
                    conn.request("POST", "/api/product-segments/preview/", preview_definition(rng)),
                    30,
                )
            except (TimeoutError, OSError, HttpError) as exc:
                await conn.close()
                status = type(exc).__name__
            tallies["preview"].count(status)
            if status == 429:
                await asyncio.sleep(0.2)
        await conn.close()

    async def bursts() -> None:
        while time.monotonic() < deadline:
            next_burst = time.monotonic() + 5
            remaining = [300]

            async def burst_client() -> None:
                conn = HostileConnection(host, port, {"X-API-Key": keys["admin"]})
                while remaining[0] > 0 and time.monotonic() < deadline:
                    remaining[0] -= 1
                    try:
                        status, _ = await asyncio.wait_for(
                            conn.request("GET", f"/api/pim/products/{random.choice(ids)}/"), 30
                        )
                    except (TimeoutError, OSError, HttpError) as exc:
                        await conn.close()
                        status = type(exc).__name__
                    tallies["burst"].count(status)
                await conn.close()

            await asyncio.gather(*(burst_client() for _ in range(8)))
            await asyncio.sleep(max(0.0, min(next_burst, deadline) - time.monotonic()))

    async def wrong_keys() -> None:
        n = 0
        while time.monotonic() < deadline:
            conn = HostileConnection(host, port, {"X-API-Key": f"pim_{n:08x}_" + "w" * 43})
            try:
                status, _ = await asyncio.wait_for(conn.request("GET", "/api/pim/products/"), 30)
            except (TimeoutError, OSError, HttpError) as exc:
                status = type(exc).__name__
            await conn.close()
            tallies["wrong key"].count(status)
            n += 1
            await asyncio.sleep(0.05)

    attacks = {
        "slow upload": [slow_upload(n) for n in range(slow_uploads)],
        "huge header": [huge_headers(), huge_headers()],
        "preview": [previews(n) for n in range(16)],
        "burst": [bursts()],
        "wrong key": [wrong_keys()],
    }
    for kind, coroutines in attacks.items():
        if kind not in kinds:
            for coroutine in coroutines:
                coroutine.close()
            del tallies[kind]
    await asyncio.gather(*(c for kind in kinds for c in attacks[kind]))
    return tallies


def attacker_priority(niceness: int) -> None:
    """The attacker process's scheduling priority (`--attacker-nice`), set once when it starts."""
    os.setpriority(os.PRIO_PROCESS, 0, niceness)


def run_hostile(
    host: str,
    port: int,
    keys: dict[str, str],
    ids: list[int],
    seconds: float,
    slow_uploads: int,
    kinds: list[str],
) -> tuple[dict[str, Tally], float]:
    """The hostile tenant's tallies and the CPU seconds its client used."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    tallies = asyncio.run(
        hostile_load(host, port, keys, ids, seconds=seconds, slow_uploads=slow_uploads, kinds=kinds)
    )
    after = resource.getrusage(resource.RUSAGE_SELF)
    return tallies, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Usage:
    """CPU seconds each party used during one kind of phase, and the wall time of those phases."""

    seconds: float = 0.0
    api: float = 0.0
    postgres: float = 0.0
    normal_client: float = 0.0
    attacker: float = 0.0
    machine_busy: float = 0.0
    load_averages: list[float] = field(default_factory=list)

    def cores(self) -> dict:
        per = max(self.seconds, 0.001)
        return {
            "api": round(self.api / per, 2),
            "postgres_backends": round(self.postgres / per, 2),
            "normal_client": round(self.normal_client / per, 2),
            "attacker": round(self.attacker / per, 2),
            "whole_machine_busy": round(self.machine_busy / per, 2),
            "load_average_at_start": [round(x, 1) for x in self.load_averages],
        }


async def measured(usage: Usage, server_pid: int, work):
    """Await `work`, adding the CPU the API, its Postgres backends, this client and the whole
    machine used meanwhile to `usage`."""
    usage.load_averages.append(os.getloadavg()[0])
    own, api, postgres = resource.getrusage(resource.RUSAGE_SELF), tree_cpu(server_pid), 0.0
    postgres = await backend_cpu(server_pid)
    machine, started = psutil.cpu_times(), time.monotonic()
    result = await work
    elapsed = time.monotonic() - started
    own_after, machine_after = resource.getrusage(resource.RUSAGE_SELF), psutil.cpu_times()
    usage.seconds += elapsed
    usage.api += tree_cpu(server_pid) - api
    usage.postgres += max(0.0, await backend_cpu(server_pid) - postgres)
    usage.normal_client += own_after.ru_utime - own.ru_utime + own_after.ru_stime - own.ru_stime
    idle = (machine_after.idle + getattr(machine_after, "iowait", 0)) - (
        machine.idle + getattr(machine, "iowait", 0)
    )
    usage.machine_busy += (os.cpu_count() or 1) * elapsed - idle
    return result


def summary(tally: Tally) -> dict:
    lat = tally.latencies
    return {
        "requests": len(lat),
        "errors": tally.errors,
        "p50_ms": round(pct(lat, 0.5), 1),
        "p95_ms": round(pct(lat, 0.95), 1),
        "p99_ms": round(pct(lat, 0.99), 1),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items(), key=str)},
        "error_samples": tally.samples,
    }


async def run(args) -> dict:
    for name, value in LIMITS.items():  # the environment may set other limits for the run
        os.environ.setdefault(name, value)
        LIMITS[name] = os.environ[name]
    port = free_port()
    server = start_server(port, args.workers)
    base = f"http://127.0.0.1:{port}"
    kinds = args.attacks.split(",")
    window = args.seconds / args.rounds
    alone, beside = Tally(), Tally()
    usage = {"alone": Usage(), "beside": Usage()}
    hostile = {kind: Tally() for kind in kinds}
    try:
        await wait_up(base, server)
        run_id = f"{int(time.time())}-{os.getpid()}"
        normal_key = create_tenant(f"normal-{run_id}")["api_key"]
        hostile_slug = f"hostile-{run_id}"
        hostile_key = create_tenant(hostile_slug)["api_key"]
        hostile_keys = {"admin": hostile_key}
        for role in ("editor", "viewer"):
            hostile_keys[role] = create_key(hostile_slug, role)
        await seed(base, normal_key, args.products)
        await seed(base, hostile_key, args.products)
        normal_ids = await product_ids(base, normal_key, args.products)
        hostile_ids = await product_ids(base, hostile_key, args.products)
        host, port_ = urlsplit(base).hostname, urlsplit(base).port
        loop = asyncio.get_running_loop()
        # the hostile tenant's client in a process of its own: on the normal client's event loop, its
        # work would show up as the normal tenant's latency
        with ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=attacker_priority,
            initargs=(args.attacker_nice,),
        ) as pool:
            await loop.run_in_executor(pool, os.getpid)  # started before the first window
            # alone and beside alternate (--rounds), so that other work on a shared machine, which
            # comes and goes, weighs on both alike
            for n in range(args.rounds):
                await measured(
                    usage["alone"],
                    server.pid,
                    normal_load(
                        host,
                        port_,
                        normal_key,
                        normal_ids,
                        rate=args.rate,
                        seconds=window,
                        tally=alone,
                        seed=7 + n,
                    ),
                )
                attack = loop.run_in_executor(
                    pool,
                    run_hostile,
                    host,
                    port_,
                    hostile_keys,
                    hostile_ids,
                    window,
                    args.slow_uploads,
                    kinds,
                )
                await measured(
                    usage["beside"],
                    server.pid,
                    normal_load(
                        host,
                        port_,
                        normal_key,
                        normal_ids,
                        rate=args.rate,
                        seconds=window,
                        tally=beside,
                        seed=1007 + n,
                    ),
                )
                tallies, attacker_cpu = await attack
                usage["beside"].attacker += attacker_cpu
                for kind, tally in tallies.items():
                    for status, count in tally.statuses.items():
                        hostile[kind].statuses[status] = (
                            hostile[kind].statuses.get(status, 0) + count
                        )
    finally:
        stop_server(server)
    figures = {
        "settings": {
            "workers": args.workers,
            "rate": args.rate,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "attacker_nice": args.attacker_nice,
            "products": args.products,
            "slow_uploads": args.slow_uploads,
            "attacks": args.attacks,
            **LIMITS,
        },
        "normal_alone": summary(alone),
        "normal_beside_hostile": summary(beside),
        "hostile": {
            kind: {str(k): v for k, v in sorted(t.statuses.items(), key=str)}
            for kind, t in hostile.items()
        },
        "cpu_cores": {phase: u.cores() for phase, u in usage.items()},
    }
    ratio = figures["normal_beside_hostile"]["p95_ms"] / max(
        figures["normal_alone"]["p95_ms"], 0.001
    )
    figures["p95_ratio"] = round(ratio, 2)
    figures["passed"] = (
        figures["normal_beside_hostile"]["errors"] == 0 and alone.errors == 0 and ratio <= 2.0
    )
    return figures


def create_key(slug: str, role: str) -> str:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "apikey", "create", "--tenant", slug, "--role", role],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(
        x for x in reversed(done.stdout.splitlines()) if x.startswith("{") and "api_key" in x
    )
    return orjson.loads(line)["api_key"]


def print_figures(figures: dict) -> None:
    print(f"settings: {figures['settings']}")
    for name in ("normal_alone", "normal_beside_hostile"):
        f = figures[name]
        print(
            f"{name:22} requests {f['requests']:6d}  errors {f['errors']:4d}  p50 {f['p50_ms']:7.1f} ms  "
            f"p95 {f['p95_ms']:7.1f} ms  p99 {f['p99_ms']:7.1f} ms  statuses {f['statuses']}"
        )
        for sample in f["error_samples"]:
            print(f"  error sample: {sample}")
    for kind, statuses in figures["hostile"].items():
        print(f"hostile {kind:12} {statuses}")
    for phase, cores in figures["cpu_cores"].items():
        print(f"CPU cores used, {phase:6}: {cores}")
    print(
        f"p95 beside / alone: {figures['p95_ratio']}  ->  {'PASS' if figures['passed'] else 'FAIL'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=60, help="of each phase (alone, then beside)"
    )
    parser.add_argument(
        "--rate", type=float, default=20, help="the normal tenant's requests a second"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternate this many alone and beside windows of --seconds/--rounds each",
    )
    parser.add_argument(
        "--attacker-nice",
        type=int,
        default=0,
        help="niceness of the hostile client's process (an attacker's own CPU is not the server's)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--products", type=int, default=5000, help="products of each tenant")
    parser.add_argument("--slow-uploads", type=int, default=40)
    parser.add_argument(
        "--attacks", default=",".join(ATTACKS), help="comma-separated, of: " + ", ".join(ATTACKS)
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    print_figures(figures)
    if args.json:
        Path(args.json).write_text(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    sys.exit(0 if figures["passed"] else 1)


if __name__ == "__main__":
    main()
