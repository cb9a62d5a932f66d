"""The catalog's hot paths, this checkout against another (a baseline commit), same data, same run.

    git worktree add /tmp/base 00a55ef && (cd /tmp/base && cp ../this/.env . && make install)
    .venv/bin/python bench/catalog_compare.py --baseline /tmp/base            # 100,000 products
    .venv/bin/python bench/catalog_compare.py --baseline /tmp/base --n 20000 --runs 60

Starts `pim serve` from this checkout and from the baseline checkout (each with its own .venv),
on the same database (this checkout's `.env`, already migrated: the baseline reads the same
tables), loads --n products (bench/catalog.py's catalog) through this checkout's bulk endpoint,
then times each hot path against both servers, interleaved request by request (which server goes
first alternates), so that whatever else the machine does weighs on both alike: the five list
queries of bench/catalog.py, GET by id, facets, and a bulk upsert of unchanged rows. Prints the
median and p95 of each side and the ratio of the medians (now / baseline).

Measured 2026-12-07 against 00a55ef, `--runs 60`, twice, the machine's load average 10-16 (p50 ms,
baseline / now = ratio): list brand 39.7/42.7 = 1.08 and 37.8/43.9 = 1.16; price range 432/414 =
0.96 and 663/680 = 1.03; q 36.0/34.7 = 0.97 and 33.6/38.9 = 1.16; page 100 69.0/67.4 = 0.98 and
228/243 = 1.07; color + -price 72.9/74.9 = 1.03 and 136/129 = 0.95; first page 39.6/40.4 = 1.02
and 316/315 = 1.00; GET by id 14.6/15.2 = 1.04 and 17.5/18.9 = 1.08; facets 0.96 and 1.02; bulk
1.04 and 0.90. A third run, `--runs 100`: brand 18.8/20.0 = 1.07, range 0.99, q 0.96, page 100
0.97, color + -price 1.07, first page 0.92, GET by id 7.46/7.92 = 1.06, facets 1.07, bulk 1.11.
The brand list was over 5 % in all three runs (1.08, 1.16, 1.07) and GET by id in two (1.04,
1.08, 1.06); the p95s went either way (brand 66/80, 66/59, 34/38). Both checkouts send the
same two statements for the brand list (counted in process) and the same one for GET by id. The
list statements are the same text with the same parameters in both checkouts, and the API's CPU
per request (in process, 3 alternating rounds) is the same within 1 % (brand 2.88 / 2.89 ms, q
2.68 / 2.69, GET by id 1.48 / 1.50) but for page 100 (3.35 / 3.63 ms: the cursor of every page,
0.3 ms of an 80 ms request).

2026-12-07, session 9, the machine idle (load 1.1-1.3), `--runs 200` twice (ratio of the p50s, now /
00a55ef): brand 1.007 / 0.998, price range 1.004 / 1.023, q 0.984 / 0.996, page 100 1.017 / 1.019,
color + -price 1.003 / 0.989, first page 1.013 / 1.005, GET by id 2.60/2.72 = 1.045 and 1.91/1.98 =
1.039, facets 1.005 / 1.022, bulk 100 unchanged 0.995 / 1.006. What closed the gap: the list's
filter dependency without `yield` (FastAPI's exit stack and shielded cancel scope per request), one
filter dependency per route instead of the reader named beside it (FastAPI walks a named
dependency's subtree again, cached or not), class-based context managers for the read pool's
checkout and the tenant turn, page links without Starlette's URL API, and no upkeep notice for a
bulk that rewrote nothing.
"""

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import get_settings
from app.db import pg_dsn, tenant_is
from bench.catalog import bulk_bodies, catalog_shape, load_bulk
from bench.common import create_tenant, free_port, pct, stop_server, wait_up


def serve(root: Path, port: int, workers: int) -> subprocess.Popen:
    """`pim serve` of the checkout at `root`, with its own interpreter, on this checkout's .env."""
    python = root / ".venv" / "bin" / "python"
    return subprocess.Popen(
        [str(python), "-m", "app.cli", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )


async def timed(http: httpx.AsyncClient, method: str, url: str, **kwargs) -> float:
    started = time.perf_counter()
    response = await http.request(method, url, **kwargs)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed


async def interleaved(http, bases: dict[str, str], runs: int, request) -> dict[str, list[float]]:
    """`runs` timings of `request(base)` on each server, alternating which one goes first."""
    times: dict[str, list[float]] = {name: [] for name in bases}
    names = list(bases)
    for name in names:  # warm up
        for _ in range(3):
            await request(bases[name])
    for run in range(runs):
        for name in names if run % 2 == 0 else reversed(names):
            times[name].append(await request(bases[name]))
    return times


def row(label: str, times: dict[str, list[float]]) -> str:
    base, now = times["baseline"], times["now"]
    return (
        f"{label:30} {statistics.median(base):9.2f} {statistics.median(now):9.2f} "
        f"{statistics.median(now) / statistics.median(base):7.3f} "
        f"{pct(base, 0.95):9.2f} {pct(now, 0.95):9.2f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="the baseline checkout (with its .venv)")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of each server")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--categories", type=int, default=20)
    args = parser.parse_args()

    settings = get_settings()
    slug = f"compare-{int(time.time())}"
    tenant = create_tenant(slug)
    headers = {"X-API-Key": tenant["api_key"]}
    ports = {"baseline": free_port(), "now": free_port()}
    servers = {
        "baseline": serve(Path(args.baseline).resolve(), ports["baseline"], args.workers),
        "now": serve(ROOT, ports["now"], args.workers),
    }
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        for base in bases.values():
            await wait_up(base)
        now = bases["now"]
        category_ids = await catalog_shape(now, headers, args.categories)
        bodies = list(bulk_bodies(args.n, args.batch, category_ids))  # the first is sent again
        await load_bulk(now, headers, bodies, 2)
        await conn.execute("VACUUM ANALYZE products")
        unchanged = bodies[0]
        del bodies
        ids = [
            r[0]
            for r in await conn.fetch(
                f"SELECT id FROM products WHERE {tenant_is('products')} ORDER BY random() LIMIT 2000",
                tenant["tenant_id"],
            )
        ]
        print(
            f"# {args.n:,} products, tenant {slug}, {args.workers} workers each, {args.runs} "
            f"interleaved runs a case; baseline {args.baseline}"
        )
        print(
            f"{'case':30} {'base p50':>9} {'now p50':>9} {'ratio':>7} {'base p95':>9} {'now p95':>9}"
        )
        last_page = max(1, min(100, args.n // 50))
        cases = {
            "list brand=Brand07": {"brand": "Brand07"},
            "list price 100..120": {"price__gte": "100", "price__lte": "120"},
            "list q='deluxe oak 4'": {"q": "deluxe oak 4"},
            f"list page {last_page}": {"page": str(last_page)},
            "list color=navy -price": {"color": "navy", "ordering": "-price"},
            "list first page": {},
        }
        rng = random.Random(3)
        async with httpx.AsyncClient(timeout=120) as http:
            for label, params in cases.items():
                times = await interleaved(
                    http,
                    bases,
                    args.runs,
                    lambda base, p=params: timed(
                        http, "GET", f"{base}/api/pim/products/", params=p, headers=headers
                    ),
                )
                print(row(label, times), flush=True)
            times = await interleaved(
                http,
                bases,
                args.runs * 4,
                lambda base: timed(
                    http, "GET", f"{base}/api/pim/products/{rng.choice(ids)}/", headers=headers
                ),
            )
            print(row("GET by id", times), flush=True)
            times = await interleaved(
                http,
                bases,
                max(10, args.runs // 3),
                lambda base: timed(http, "GET", f"{base}/api/pim/facets/", headers=headers),
            )
            print(row("facets (all)", times), flush=True)
            one_hundred = orjson.dumps({"products": orjson.loads(unchanged)["products"][:100]})
            times = await interleaved(
                http,
                bases,
                max(10, args.runs // 3),
                lambda base: timed(
                    http,
                    "POST",
                    f"{base}/api/pim/products/bulk/",
                    content=one_hundred,
                    headers={**headers, "content-type": "application/json"},
                ),
            )
            print(row("bulk 100 unchanged", times), flush=True)
    finally:
        await conn.close()
        for server in servers.values():
            stop_server(server)


if __name__ == "__main__":
    asyncio.run(main())
