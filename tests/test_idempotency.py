"""Idempotency-Key on POST (app/idempotency.py): replays, reuse with another request, concurrent
duplicates, uploads, release on failure, expiry and pruning, against the real app and Postgres."""

import asyncio
import uuid

import asyncpg
import pytest

from app.db import pg_dsn
from app.idempotency import prune_idempotency_keys
from tests.conftest import jwt_headers

PRODUCTS = "/api/pim/products/"
UPLOAD = "/api/pim/import/csv/"
CSV = b"sku,name,price\nA-1,Lamp,10.5\nA-2,Chair,20\n"


def key() -> str:
    return str(uuid.uuid4())


async def skus(client, headers) -> list[str]:
    response = await client.get(PRODUCTS, headers=headers, params={"page_size": 200})
    assert response.status_code == 200, response.text
    return [product["sku"] for product in response.json()["results"]]


async def import_jobs(client, headers) -> list[dict]:
    response = await client.get("/api/pim/import/", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def test_a_retry_with_the_same_key_replays_the_first_answer(client, tenant):
    headers = {**tenant.editor, "Idempotency-Key": key()}
    body = {"sku": "IDEM-1", "name": "Lamp", "data": {}}
    first = await client.post(PRODUCTS, headers=headers, json=body)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = await client.post(PRODUCTS, headers=headers, json=body)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert await skus(client, tenant.viewer) == ["IDEM-1"]


async def test_the_same_key_with_another_request_is_a_409(client, tenant):
    headers = {**tenant.editor, "Idempotency-Key": key()}
    assert (
        await client.post(PRODUCTS, headers=headers, json={"sku": "R-1", "name": "Lamp"})
    ).status_code == 201
    for method, path, body in (
        ("POST", PRODUCTS, {"sku": "R-1", "name": "Other lamp"}),
        ("POST", PRODUCTS + "?x=1", {"sku": "R-1", "name": "Lamp"}),
        ("POST", "/api/pim/categories/", {"name": "Lamps"}),
    ):
        response = await client.request(method, path, headers=headers, json=body)
        assert response.status_code == 409, (path, response.text)
        assert response.json()["code"] == "idempotency_key_reused"
        assert response.json()["param"] == "Idempotency-Key"
    assert await skus(client, tenant.viewer) == ["R-1"]
    categories = await client.get("/api/pim/categories/", headers=tenant.viewer)
    assert categories.json()["results"] == []


async def test_a_key_belongs_to_its_tenant_and_credential(client, settings, tenant, other_tenant):
    same = key()
    body = {"sku": "K-1", "name": "Lamp"}
    for who, headers in (
        ("editor", tenant.editor),
        ("admin", tenant.admin),
        ("other tenant", other_tenant.editor),
    ):
        response = await client.post(
            PRODUCTS, headers={**headers, "Idempotency-Key": same}, json=body
        )
        if who == "admin":  # another credential of the same tenant: runs, and the SKU is taken
            assert response.status_code == 409, response.text
            assert response.json()["code"] == "conflict"
        else:
            assert response.status_code == 201, response.text
            assert "Idempotent-Replayed" not in response.headers
    token = jwt_headers(settings, tenant.id, "editor")
    response = await client.post(
        PRODUCTS, headers={**token, "Idempotency-Key": same}, json={"sku": "K-2", "name": "Lamp"}
    )
    assert response.status_code == 201
    assert await skus(client, tenant.viewer) == ["K-1", "K-2"]
    assert await skus(client, other_tenant.viewer) == ["K-1"]


async def test_concurrent_duplicates_run_the_route_once(client, tenant):
    headers = {**tenant.editor, "Idempotency-Key": key()}
    body = {"sku": "C-1", "name": "Lamp"}
    answers = await asyncio.gather(
        *(client.post(PRODUCTS, headers=headers, json=body) for _ in range(12))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {201, 409}, statuses
    created = [a for a in answers if a.status_code == 201]
    fresh = [a for a in created if "Idempotent-Replayed" not in a.headers]
    assert len(fresh) == 1, statuses
    assert all(a.json() == fresh[0].json() for a in created)
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["code"] == "idempotency_key_in_flight"
            assert answer.headers["Retry-After"] == "1"
    assert await skus(client, tenant.viewer) == ["C-1"]
    # once the first has finished, every retry is its replay
    again = await client.post(PRODUCTS, headers=headers, json=body)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"


async def test_a_failed_request_releases_its_key(client, tenant):
    headers = {**tenant.editor, "Idempotency-Key": key()}
    refused = await client.post(
        PRODUCTS, headers=headers, json={"sku": "F-1", "name": "Lamp", "categories": [987654]}
    )
    assert refused.status_code == 400, refused.text
    invalid = await client.post(PRODUCTS, headers=headers, json={"sku": "F-1"})
    assert invalid.status_code == 422
    created = await client.post(PRODUCTS, headers=headers, json={"sku": "F-1", "name": "Lamp"})
    assert created.status_code == 201, created.text
    assert "Idempotent-Replayed" not in created.headers
    assert await skus(client, tenant.viewer) == ["F-1"]


async def test_bad_keys_and_the_api_key_route_are_400(client, tenant):
    for bad in ("", "x" * 256, "has space", "é".encode()):
        response = await client.post(
            PRODUCTS,
            headers={**tenant.editor, "Idempotency-Key": bad},
            json={"sku": "B-1", "name": "Lamp"},
        )
        assert response.status_code == 400, bad
        assert response.json()["param"] == "Idempotency-Key"
    response = await client.post(
        "/api/auth/api-keys/",
        headers={**tenant.admin, "Idempotency-Key": key()},
        json={"name": "ci", "role": "viewer"},
    )
    assert response.status_code == 400
    assert await skus(client, tenant.viewer) == []
    # other methods ignore the header: they are idempotent by definition
    listed = await client.get(PRODUCTS, headers={**tenant.viewer, "Idempotency-Key": "has space"})
    assert listed.status_code == 200
    keys = await client.get("/api/auth/api-keys/", headers=tenant.admin)
    assert "ci" not in [k["name"] for k in keys.json()["results"]]


async def test_an_upload_is_replayed_whatever_its_multipart_boundary(client, tenant):
    headers = {**tenant.editor, "Idempotency-Key": key()}

    async def send(content: bytes, boundary: str):
        body = (
            (
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="file"; filename="feed.csv"\r\n'
                "Content-Type: text/csv\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return await client.post(
            UPLOAD,
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            content=body,
        )

    first = await send(CSV, "boundary-one")
    assert first.status_code == 201, first.text
    again = await send(CSV, "another-boundary-2")
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    other = await send(CSV + b"A-3,Desk,30\n", "boundary-one")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert [job["job_id"] for job in await import_jobs(client, tenant.viewer)] == [
        first.json()["job_id"]
    ]


async def test_concurrent_uploads_with_one_key_make_one_job(client, tenant):
    headers = {**tenant.editor, "Idempotency-Key": key()}
    answers = await asyncio.gather(
        *(
            client.post(UPLOAD, headers=headers, files={"file": ("feed.csv", CSV, "text/csv")})
            for _ in range(6)
        )
    )
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {201, 409}, statuses
    assert (
        len([a for a in answers if a.status_code == 201 and "Idempotent-Replayed" not in a.headers])
        == 1
    )
    assert len(await import_jobs(client, tenant.viewer)) == 1


async def test_an_expired_key_runs_again_and_the_worker_prunes_it(client, settings, tenant):
    same = key()
    headers = {**tenant.editor, "Idempotency-Key": same}
    assert (
        await client.post(PRODUCTS, headers=headers, json={"sku": "E-1", "name": "Lamp"})
    ).status_code == 201
    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        age = "now() - make_interval(hours => $3 + 1)"
        await conn.execute(
            f"UPDATE idempotency_keys SET created_at = {age} WHERE tenant_id = $1 AND key = $2",
            tenant.id,
            same,
            settings.idempotency_key_hours,
        )
        # older than its time: the key is free again, for any request
        response = await client.post(PRODUCTS, headers=headers, json={"sku": "E-2", "name": "Lamp"})
        assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
        await conn.execute(
            f"UPDATE idempotency_keys SET created_at = {age} WHERE tenant_id = $1 AND key = $2",
            tenant.id,
            same,
            settings.idempotency_key_hours,
        )
        assert await prune_idempotency_keys(conn, hours=settings.idempotency_key_hours) >= 1
        left = await conn.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1", tenant.id
        )
        assert left == 0
    finally:
        await conn.close()
    assert await skus(client, tenant.viewer) == ["E-1", "E-2"]


@pytest.mark.parametrize("path", ["/api/pim/categories/", "/api/product-segments/"])
async def test_other_creates_replay_too(client, tenant, path):
    body = (
        {"name": "Lamps"}
        if "categories" in path
        else {"name": "All", "definition": {"match": "all", "conditions": []}}
    )
    headers = {**tenant.editor, "Idempotency-Key": key()}
    first = await client.post(path, headers=headers, json=body)
    assert first.status_code == 201, first.text
    again = await client.post(path, headers=headers, json=body)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    listed = await client.get(path, headers=tenant.viewer)
    assert len(listed.json()["results"]) == 1


async def test_a_claim_left_in_flight_by_a_dead_process_is_taken_over(client, settings, tenant):
    same = key()
    headers = {**tenant.editor, "Idempotency-Key": same}
    conn = await asyncpg.connect(pg_dsn(settings.database_url))
    try:
        # what an API process that died between the claim and the answer leaves behind
        await conn.execute(
            """INSERT INTO idempotency_keys (tenant_id, credential, key, claim, method, path)
               VALUES ($1, $2, $3, gen_random_uuid(), 'POST', '/api/pim/products/')""",
            tenant.id,
            f"api-key:{await conn.fetchval('SELECT id FROM api_keys WHERE tenant_id = $1 AND role = $2', tenant.id, 'editor')}",
            same,
        )
        body = {"sku": "D-1", "name": "Lamp"}
        busy = await client.post(PRODUCTS, headers=headers, json=body)
        assert busy.status_code == 409
        assert busy.json()["code"] == "idempotency_key_in_flight"
        await conn.execute(
            """UPDATE idempotency_keys SET created_at = now() - make_interval(secs => $3 + 1)
               WHERE tenant_id = $1 AND key = $2""",
            tenant.id,
            same,
            float(settings.idempotency_in_flight_seconds),
        )
        taken = await client.post(PRODUCTS, headers=headers, json=body)
        assert taken.status_code == 201, taken.text
        replay = await client.post(PRODUCTS, headers=headers, json=body)
        assert replay.headers["Idempotent-Replayed"] == "true"
    finally:
        await conn.close()
    assert await skus(client, tenant.viewer) == ["D-1"]


def test_every_post_documents_the_header(app):
    spec = app.openapi()
    posts = {
        path: operations["post"]
        for path, operations in spec["paths"].items()
        if "post" in operations
    }
    assert len(posts) > 10
    for path, operation in posts.items():
        names = [p["name"] for p in operation.get("parameters", [])]
        if path == "/api/auth/api-keys/":
            assert "Idempotency-Key" not in names
            assert operation["x-idempotency-key-refused"] is True
            continue
        assert names.count("Idempotency-Key") == 1, path
        assert "idempotency_key_reused" in operation["responses"]["409"]["description"], path
        success = [code for code in operation["responses"] if code.startswith("2")]
        for code in success:
            assert "Idempotent-Replayed" in operation["responses"][code]["headers"], path
