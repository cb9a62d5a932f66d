"""Authentication, roles, tenancy and the error contract, against the real app and databases."""

import asyncio
import json
import secrets
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt

from app.auth.service import hash_key
from app.main import create_app
from tests.conftest import ROOT, wait_for


def _token(
    settings,
    tenant_id: int,
    role: str = "viewer",
    ttl: int = 300,
    key: str | None = None,
    alg: str = "HS256",
    **extra,
):
    claims = {
        "tenant_id": tenant_id,
        "role": role,
        "sub": "test",
        "exp": int(time.time()) + ttl,
        **extra,
    }
    return jwt.encode(claims, key or settings.jwt_secret, algorithm=alg)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def app_client(settings, **overrides):
    """A second app instance with changed settings (audience, public key, a dead Redis...)."""
    app = create_app(settings.model_copy(update=overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://pim.test") as http:
            yield http


KEYS_URL = "/api/auth/api-keys/"


async def test_missing_and_bad_api_key_are_401_with_challenge(client):
    response = await client.get(KEYS_URL)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    assert "detail" in response.json()
    for bad in ("nope", "pim_deadbeef_" + "x" * 43, "pim_" + "a" * 500):
        response = await client.get(KEYS_URL, headers={"X-API-Key": bad})
        assert response.status_code == 401, bad
        assert "WWW-Authenticate" in response.headers


async def test_api_key_lifecycle_and_immediate_revocation(client, tenant):
    created = await client.post(
        KEYS_URL, json={"name": "ci", "role": "editor"}, headers=tenant.admin
    )
    assert created.status_code == 201
    body = created.json()
    assert body["api_key"].startswith(body["prefix"] + "_")
    assert body["role"] == "editor"
    new_key = {"X-API-Key": body["api_key"]}

    listed = await client.get(KEYS_URL, headers=tenant.admin)
    assert listed.status_code == 200
    assert body["id"] in [k["id"] for k in listed.json()["results"]]
    assert all("api_key" not in k for k in listed.json()["results"])

    assert (await client.get("/api/pim/schema/", headers=new_key)).status_code == 200
    assert (
        await client.delete(f"{KEYS_URL}{body['id']}/", headers=tenant.admin)
    ).status_code == 204
    assert (await client.get("/api/pim/schema/", headers=new_key)).status_code == 401
    assert (
        await client.delete(f"{KEYS_URL}{body['id']}/", headers=tenant.admin)
    ).status_code == 404


@asynccontextmanager
async def second_process(settings):
    """Another API process: its own app, principal cache and NOTIFY listener (same event loop)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await wait_for(lambda: _true(app.state.principal_cache.active), timeout=10, interval=0.02)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://pim.test") as http:
            yield app, http


async def _true(value):
    return value


async def test_revocation_reaches_other_processes_caches_at_once(client, settings, tenant):
    created = (
        await client.post(KEYS_URL, json={"name": "cached", "role": "viewer"}, headers=tenant.admin)
    ).json()
    key = {"X-API-Key": created["api_key"]}
    async with second_process(settings) as (other, http):
        assert (await http.get("/api/pim/schema/", headers=key)).status_code == 200
        assert (
            other.state.principal_cache.get(hash_key(created["api_key"])) is not None
        )  # served from its cache now
        assert (
            await client.delete(f"{KEYS_URL}{created['id']}/", headers=tenant.admin)
        ).status_code == 204
        await asyncio.sleep(
            0.05
        )  # the NOTIFY is on its way before the 204 is sent; no TTL could expire this soon
        assert (await http.get("/api/pim/schema/", headers=key)).status_code == 401


async def test_principal_cache_is_bypassed_while_its_listener_is_down(client, settings, tenant):
    created = (
        await client.post(
            KEYS_URL, json={"name": "unheard", "role": "viewer"}, headers=tenant.admin
        )
    ).json()
    key = {"X-API-Key": created["api_key"]}
    async with second_process(settings) as (other, http):
        assert (await http.get("/api/pim/schema/", headers=key)).status_code == 200
        cache = other.state.principal_cache
        async with other.state.read_pool.acquire() as conn:
            await conn.execute("SELECT pg_terminate_backend($1)", cache._listener.get_server_pid())
            await wait_for(lambda: _true(not cache.active), timeout=5, interval=0.01)
            # revoked behind the service's back: no NOTIFY, and nobody listening anyway
            await conn.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE id = $1", created["id"]
            )
        assert (await http.get("/api/pim/schema/", headers=key)).status_code == 401
        await wait_for(
            lambda: _true(cache.active), timeout=10, interval=0.05
        )  # the listener comes back


async def test_key_management_needs_admin(client, tenant):
    for role in ("viewer", "editor"):
        assert (await client.get(KEYS_URL, headers=tenant.headers(role))).status_code == 403
        response = await client.post(
            KEYS_URL, json={"name": "x", "role": "admin"}, headers=tenant.headers(role)
        )
        assert response.status_code == 403


async def test_viewer_cannot_write(client, tenant):
    response = await client.put("/api/pim/schema/", json={"fields": []}, headers=tenant.viewer)
    assert response.status_code == 403
    response = await client.post(
        "/api/pim/products/", json={"sku": "A", "name": "A"}, headers=tenant.viewer
    )
    assert response.status_code == 403


async def test_other_tenants_key_is_404(client, tenant, other_tenant):
    created = await client.post(
        KEYS_URL, json={"name": "mine", "role": "viewer"}, headers=tenant.admin
    )
    key_id = created.json()["id"]
    assert (
        await client.delete(f"{KEYS_URL}{key_id}/", headers=other_tenant.admin)
    ).status_code == 404
    assert key_id not in [
        k["id"] for k in (await client.get(KEYS_URL, headers=other_tenant.admin)).json()["results"]
    ]
    # still working for its owner
    assert (
        await client.get("/api/pim/schema/", headers={"X-API-Key": created.json()["api_key"]})
    ).status_code == 200


async def test_jwt_hs256_roles_and_rejections(client, settings, tenant):
    ok = _token(settings, tenant.id, role="editor")
    assert (await client.get("/api/pim/schema/", headers=_bearer(ok))).status_code == 200
    assert (
        await client.put("/api/pim/schema/", json={"fields": []}, headers=_bearer(ok))
    ).status_code == 200
    viewer = _token(settings, tenant.id)  # role defaults to viewer
    assert (
        await client.put("/api/pim/schema/", json={"fields": []}, headers=_bearer(viewer))
    ).status_code == 403

    expired = _token(settings, tenant.id, ttl=-60)
    wrong_secret = _token(settings, tenant.id, key="not-the-secret-" + secrets.token_hex(16))
    no_exp = jwt.encode(
        {"tenant_id": tenant.id, "role": "admin"}, settings.jwt_secret, algorithm="HS256"
    )
    unknown_tenant = _token(settings, 2**62)
    bad_role = _token(settings, tenant.id, role="root")
    no_tenant = jwt.encode(
        {"role": "admin", "exp": int(time.time()) + 60}, settings.jwt_secret, algorithm="HS256"
    )
    header = jwt.get_unverified_header(ok)
    assert header["alg"] == "HS256"
    # alg=none: header and claims without a signature
    import base64

    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    alg_none = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'tenant_id': tenant.id, 'role': 'admin', 'exp': int(time.time()) + 60})}."
    for token in (
        expired,
        wrong_secret,
        no_exp,
        unknown_tenant,
        bad_role,
        no_tenant,
        alg_none,
        "garbage",
        ok + "x",
    ):
        response = await client.get("/api/pim/schema/", headers=_bearer(token))
        assert response.status_code == 401, token
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="pim", error="invalid_token"'), challenge
        assert 'error_description="' in challenge


async def test_jwt_audience_and_issuer_are_checked_when_configured(settings, tenant):
    async with app_client(
        settings, jwt_audience="pim-api", jwt_issuer="https://issuer.test"
    ) as http:
        good = _token(settings, tenant.id, aud="pim-api", iss="https://issuer.test")
        assert (await http.get("/api/pim/schema/", headers=_bearer(good))).status_code == 200
        for bad in (
            _token(settings, tenant.id, aud="someone-else", iss="https://issuer.test"),
            _token(settings, tenant.id, iss="https://issuer.test"),  # no aud at all
            _token(settings, tenant.id, aud="pim-api", iss="https://evil.test"),
            _token(settings, tenant.id, aud="pim-api"),  # no iss
        ):
            assert (await http.get("/api/pim/schema/", headers=_bearer(bad))).status_code == 401


@pytest.mark.parametrize("kind", ["rsa", "ec"])
async def test_asymmetric_jwt_and_no_algorithm_confusion(settings, tenant, kind):
    if kind == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        alg = "RS256"
    else:
        private = ec.generate_private_key(ec.SECP256R1())
        alg = "ES256"
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    async with app_client(settings, jwt_public_key=public_pem, jwt_algorithm=alg) as http:
        good = _token(settings, tenant.id, key=private_pem, alg=alg)
        assert (await http.get("/api/pim/schema/", headers=_bearer(good))).status_code == 200
        # HS256 signed with the public key as the HMAC secret must not pass
        import base64
        import hashlib
        import hmac

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64(
            json.dumps(
                {"tenant_id": tenant.id, "role": "admin", "exp": int(time.time()) + 60}
            ).encode()
        )
        sig = b64(hmac.new(public_pem.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
        confused = f"{head}.{body}.{sig}"
        assert (await http.get("/api/pim/schema/", headers=_bearer(confused))).status_code == 401
        # and the shared secret is not accepted either once a public key is configured
        hs = _token(settings, tenant.id)
        assert (await http.get("/api/pim/schema/", headers=_bearer(hs))).status_code == 401


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_readyz_reports_each_dependency(client, settings, worker):
    # issue 13 added the `worker` entry (a heartbeat); the session's worker sends one every 5 s
    async def ready_with_worker():
        r = await client.get("/readyz")
        return r if r.json()["checks"]["worker"]["status"] == "up" else None

    ready = await wait_for(ready_with_worker, timeout=30)
    assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
    assert {k: v["status"] for k, v in ready.json()["checks"].items()} == {
        "postgres": "up",
        "redis": "up",
        "clickhouse": "up",
        "worker": "up",
    }
    async with app_client(settings, redis_url=f"redis://127.0.0.1:{_closed_port()}/0") as http:
        response = await http.get("/readyz")
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["redis"]["status"] == "down"
        assert checks["postgres"]["status"] == "up"
        assert (await http.get("/healthz")).status_code == 200


async def test_client_errors_are_never_500(client, tenant):
    h = {**tenant.admin, "content-type": "application/json"}
    assert (await client.post(KEYS_URL, content=b'{"name": ', headers=h)).status_code == 422
    assert (await client.post(KEYS_URL, content=b"\xff\xfe", headers=h)).status_code in (400, 422)
    assert (
        await client.post(KEYS_URL, json={"name": "x", "role": "god"}, headers=tenant.admin)
    ).status_code == 422
    assert (
        await client.post(KEYS_URL, json=["not", "an", "object"], headers=tenant.admin)
    ).status_code == 422
    assert (await client.delete(f"{KEYS_URL}{10**30}/", headers=tenant.admin)).status_code == 422
    assert (await client.delete(f"{KEYS_URL}abc/", headers=tenant.admin)).status_code == 422
    assert (
        await client.get(f"/api/pim/products/{2**63}/", headers=tenant.admin)
    ).status_code == 422
    assert (await client.get("/api/pim/nothing-here/", headers=tenant.admin)).status_code == 404
    response = await client.post(
        "/api/pim/products/", content=b"x" * 100, headers={**h, "content-length": str(10**12)}
    )
    assert response.status_code == 413


async def test_trailing_slash_is_optional_without_redirect(client, tenant):
    for path in ("/api/pim/schema/", "/api/pim/schema", "/healthz", "/healthz/", "/openapi.json"):
        response = await client.get(path, headers=tenant.viewer, follow_redirects=False)
        assert response.status_code == 200, path


async def test_request_id_is_echoed_or_minted(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    minted = (await client.get("/healthz")).headers["X-Request-ID"]
    assert len(minted) == 32


async def test_openapi_declares_security_and_unique_operation_ids(client):
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert (
        schemes["ApiKeyAuth"]["type"] == "apiKey" and schemes["ApiKeyAuth"]["name"] == "X-API-Key"
    )
    assert schemes["BearerAuth"]["scheme"] == "bearer"
    operation_ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))
    create_key = spec["paths"]["/api/auth/api-keys/"]["post"]
    assert {"401", "403", "422"} <= set(create_key["responses"])
    assert (await client.get("/docs")).status_code == 200


def _pim(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    return json.loads(lines[0])


async def test_cli_prints_one_json_object(client):
    slug = f"cli-{secrets.token_hex(4)}"
    created = _pim("tenant", "create", slug)
    assert created["slug"] == slug and created["api_key"].startswith("pim_")
    viewer = _pim("apikey", "create", "--tenant", slug, "--role", "viewer", "--name", "reader")
    token = _pim("token", "--tenant", slug, "--role", "editor", "--ttl", "120")["token"]
    assert (
        await client.get("/api/pim/schema/", headers={"X-API-Key": viewer["api_key"]})
    ).status_code == 200
    assert (
        await client.put(
            "/api/pim/schema/", json={"fields": []}, headers={"X-API-Key": viewer["api_key"]}
        )
    ).status_code == 403
    assert (
        await client.put("/api/pim/schema/", json={"fields": []}, headers=_bearer(token))
    ).status_code == 200
    assert (
        await client.get(KEYS_URL, headers={"X-API-Key": created["api_key"]})
    ).status_code == 200


async def test_lone_surrogates_in_bodies_are_not_500(client, tenant):
    body = b'{"sku": "\\ud800", "name": 5}'
    response = await client.post(
        "/api/pim/products/",
        content=body,
        headers={**tenant.editor, "content-type": "application/json"},
    )
    assert response.status_code in (400, 422)


async def test_no_credentials_is_a_challenge_without_an_error(client):
    # RFC 6750 3.1: a request that sent no credentials gets no `error` attribute
    response = await client.get("/api/pim/schema/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="pim"'


async def test_an_api_key_and_a_bearer_token_together_are_ambiguous(
    client, settings, tenant, other_tenant
):
    token = _token(settings, other_tenant.id, role="admin")
    for key in (tenant.viewer["X-API-Key"], "not-a-key"):
        response = await client.post(
            "/api/pim/categories/",
            json={"name": "Shoes"},
            headers={"X-API-Key": key, **_bearer(token)},
        )
        assert response.status_code == 400
        assert response.json()["code"] == "ambiguous_credentials"
        assert response.json()["param"] == "Authorization"
    # nothing was written in either tenant
    for ctx in (tenant, other_tenant):
        listed = await client.get("/api/pim/categories/", headers=ctx.viewer)
        assert listed.json()["results"] == []
    # each credential alone still works
    assert (await client.get("/api/pim/schema/", headers=tenant.viewer)).status_code == 200
    assert (await client.get("/api/pim/schema/", headers=_bearer(token))).status_code == 200
