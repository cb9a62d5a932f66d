"""The `pim` console script. Commands that report something print one JSON object."""

import argparse
import asyncio
import sys
from pathlib import Path

import orjson

from app.config import get_settings

ROOT = Path(__file__).resolve().parent.parent


def _print(obj: dict) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


async def _with_session(fn):
    from app.db import create_engine, create_sessionmaker

    engine = create_engine(get_settings(), pool_size=1, max_overflow=0)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await fn(session)
    finally:
        await engine.dispose()


def cmd_tenant_create(args) -> int:
    from app.auth.service import Role, create_api_key, create_tenant

    async def run(session):
        tenant = await create_tenant(session, slug=args.slug)
        _key, secret = await create_api_key(
            session, tenant.id, name=f"{args.slug} admin", role=Role.admin
        )
        return {"tenant_id": tenant.id, "slug": tenant.slug, "api_key": secret}

    _print(asyncio.run(_with_session(run)))
    return 0


def cmd_apikey_create(args) -> int:
    from app.auth.service import Role, create_api_key, get_tenant_by_slug

    async def run(session):
        tenant = await get_tenant_by_slug(session, args.tenant)
        row, secret = await create_api_key(
            session, tenant.id, name=args.name or f"{args.role} key", role=Role(args.role)
        )
        return {"id": row.id, "api_key": secret, "role": row.role, "tenant_id": tenant.id}

    _print(asyncio.run(_with_session(run)))
    return 0


def cmd_token(args) -> int:
    from app.auth.service import Role, get_tenant_by_slug, issue_token

    async def run(session):
        tenant = await get_tenant_by_slug(session, args.tenant)
        return {
            "token": issue_token(
                get_settings(), tenant_id=tenant.id, role=Role(args.role), ttl=args.ttl
            )
        }

    _print(asyncio.run(_with_session(run)))
    return 0


def cmd_demo_load(args) -> int:
    from dataclasses import asdict

    from app.auth.service import get_tenant_by_slug
    from app.demo import load_demo_catalog

    async def run(session):
        tenant = await get_tenant_by_slug(session, args.tenant)
        session.info["tenant_id"] = tenant.id  # every statement below is the tenant's
        loaded = await load_demo_catalog(
            session, max_data_bytes=get_settings().max_product_data_bytes
        )
        return {"tenant_id": tenant.id, **asdict(loaded)}

    _print(asyncio.run(_with_session(run)))
    return 0


def cmd_migrate(_args) -> int:
    from alembic import command
    from alembic.config import Config

    from app.clickhouse import migrate_clickhouse

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    command.upgrade(config, "head")
    applied = asyncio.run(migrate_clickhouse(get_settings()))
    _print({"postgres": "head", "clickhouse": len(applied)})
    return 0


def cmd_mirror_rebuild(args) -> int:
    """Rebuild the read model of one tenant (by slug) or of every tenant from Postgres."""
    from app.clickhouse import ClickHouse
    from app.db import all_tenants, pg_dsn
    from app.mirror.apply import catch_up, rebuild

    settings = get_settings()

    async def run() -> list[dict]:
        import asyncpg

        conn = await asyncpg.connect(pg_dsn(settings.database_url))
        clickhouse = ClickHouse(settings)
        try:
            if args.all:
                tenants = await conn.fetch(
                    all_tenants(
                        "SELECT id, slug FROM tenants ORDER BY id"
                    )  # every tenant, on purpose
                )
            else:
                tenants = await conn.fetch(
                    all_tenants("SELECT id, slug FROM tenants WHERE slug = $1"),  # by its slug
                    args.tenant,
                )
                if not tenants:
                    raise SystemExit(f"unknown tenant {args.tenant!r}")
            done = []
            for tenant_id, slug in tenants:
                state = await rebuild(conn, clickhouse, tenant_id)
                await catch_up(conn, clickhouse, tenant_id, batch=settings.mirror_batch)
                done.append({"tenant": slug, "products": state.products, "seq": state.seq})
            return done
        finally:
            await clickhouse.close()
            await conn.close()

    _print({"rebuilt": asyncio.run(run())})
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="app.server:HeadLimitedHttpToolsProtocol",  # httptools with a cap on the request head
        access_log=False,
        proxy_headers=True,
    )
    return 0


def cmd_worker(_args) -> int:
    from workers.main import run

    run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pim", description="PIM service command line")
    sub = parser.add_subparsers(dest="command", required=True)

    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(
        dest="action", required=True
    )
    create = tenant.add_parser("create", help="create a tenant and an admin API key")
    create.add_argument("slug")
    create.set_defaults(func=cmd_tenant_create)

    apikey = sub.add_parser("apikey", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    key_create = apikey.add_parser("create", help="create an API key")
    key_create.add_argument("--tenant", required=True, help="tenant slug")
    key_create.add_argument("--role", required=True, choices=["viewer", "editor", "admin"])
    key_create.add_argument("--name")
    key_create.set_defaults(func=cmd_apikey_create)

    token = sub.add_parser("token", help="sign a JWT with the configured key")
    token.add_argument("--tenant", required=True, help="tenant slug")
    token.add_argument("--role", required=True, choices=["viewer", "editor", "admin"])
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.set_defaults(func=cmd_token)

    demo = sub.add_parser("demo", help="the demo catalog").add_subparsers(
        dest="action", required=True
    )
    demo_load = demo.add_parser(
        "load",
        help="load the demo catalog (schema, categories, 300 products, a view, a segment) into a "
        "tenant; loading it again changes nothing",
    )
    demo_load.add_argument("--tenant", required=True, help="tenant slug")
    demo_load.set_defaults(func=cmd_demo_load)

    sub.add_parser("migrate", help="apply Postgres and ClickHouse migrations").set_defaults(
        func=cmd_migrate
    )

    serve = sub.add_parser("serve", help="run the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("worker", help="run the arq worker").set_defaults(func=cmd_worker)

    mirror = sub.add_parser("mirror", help="the ClickHouse read model").add_subparsers(
        dest="action", required=True
    )
    mirror_rebuild = mirror.add_parser(
        "rebuild", help="rebuild the read model from Postgres (a missing or stale model)"
    )
    which = mirror_rebuild.add_mutually_exclusive_group(required=True)
    which.add_argument("--tenant", help="tenant slug")
    which.add_argument("--all", action="store_true", help="every tenant")
    mirror_rebuild.set_defaults(func=cmd_mirror_rebuild)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from app.errors import AppError

    try:
        return args.func(args)
    except AppError as exc:
        _print({"error": exc.detail})
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
