"""Webhook subscriptions through the API: CRUD, the secret shown once, the limit, the URL guard
(SSRF), filters checked against the schema, ping, rotate-secret, replay's checks."""

import asyncio
import threading
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.webhooks.receiver import Receiver

URL = "https://hooks.example.com/pim"


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


async def _create(client, tenant, **body):
    payload = {"url": URL, "events": ["product.created"], **body}
    return await client.post("/api/pim/webhooks/", json=payload, headers=tenant.admin)


async def test_crud_and_secret_shown_once(client, tenant):
    created = await _create(client, tenant, events=["product.updated", "product.created"])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["active"] is True
    assert body["events"] == ["product.created", "product.updated"]
    assert created.headers["location"].endswith(f"/api/pim/webhooks/{body['id']}/")
    one = (await client.get(f"/api/pim/webhooks/{body['id']}/", headers=tenant.admin)).json()
    assert "secret" not in one and one["url"] == URL
    listed = (await client.get("/api/pim/webhooks/", headers=tenant.admin)).json()
    assert [w["id"] for w in listed["results"]] == [body["id"]]
    assert listed["next_cursor"] is None and "secret" not in listed["results"][0]
    patched = await client.patch(
        f"/api/pim/webhooks/{body['id']}/", json={"active": False}, headers=tenant.admin
    )
    assert patched.status_code == 200 and patched.json()["active"] is False
    rotated = await client.post(
        f"/api/pim/webhooks/{body['id']}/rotate-secret/", headers=tenant.admin
    )
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in (body["secret"], None)
    deleted = await client.delete(f"/api/pim/webhooks/{body['id']}/", headers=tenant.admin)
    assert deleted.status_code == 204
    gone = await client.get(f"/api/pim/webhooks/{body['id']}/", headers=tenant.admin)
    assert gone.status_code == 404


async def test_list_pages_with_cursor(client, tenant):
    ids = [(await _create(client, tenant)).json()["id"] for _ in range(3)]
    first = (await client.get("/api/pim/webhooks/?limit=2", headers=tenant.admin)).json()
    assert [w["id"] for w in first["results"]] == ids[:2]
    second = (
        await client.get(
            f"/api/pim/webhooks/?limit=2&cursor={first['next_cursor']}", headers=tenant.admin
        )
    ).json()
    assert [w["id"] for w in second["results"]] == ids[2:] and second["next_cursor"] is None


async def test_at_most_twenty_per_tenant(client, tenant):
    for _ in range(20):
        assert (await _create(client, tenant)).status_code == 201
    refused = await _create(client, tenant)
    assert refused.status_code == 409
    assert refused.json()["code"] == "webhook_limit_reached"


async def test_admin_only(client, tenant):
    for role in ("viewer", "editor"):
        answer = await client.get("/api/pim/webhooks/", headers=tenant.headers(role))
        assert answer.status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://127.0.0.1/",
        "http://localhost:8080/x",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "https://metadata.localhost/",
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
    ],
)
async def test_ssrf_urls_are_refused(client, tenant, app, monkeypatch, url):
    monkeypatch.setattr(app.state.settings, "webhook_allow_private", False)
    refused = await _create(client, tenant, url=url)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "webhook_url_refused" and refused.json()["param"] == "url"
    # and on PATCH
    monkeypatch.setattr(app.state.settings, "webhook_allow_private", True)
    webhook = (await _create(client, tenant, url="http://127.0.0.1:9/")).json()
    monkeypatch.setattr(app.state.settings, "webhook_allow_private", False)
    patched = await client.patch(
        f"/api/pim/webhooks/{webhook['id']}/", json={"url": url}, headers=tenant.admin
    )
    assert patched.status_code == 400 and patched.json()["code"] == "webhook_url_refused"
    stored = (await client.get(f"/api/pim/webhooks/{webhook['id']}/", headers=tenant.admin)).json()
    assert stored["url"] == "http://127.0.0.1:9/"


async def test_filter_checked_against_the_schema(client, tenant):
    await client.put("/api/pim/schema/", json={"fields": [{"name": "brand"}]}, headers=tenant.admin)
    bad = await _create(
        client,
        tenant,
        filter={"match": "all", "conditions": [{"field": "nope", "op": "eq", "value": 1}]},
    )
    assert bad.status_code == 400 and bad.json()["param"] == "filter"
    good = await _create(
        client,
        tenant,
        filter={"match": "all", "conditions": [{"field": "brand", "op": "eq", "value": "Nike"}]},
    )
    assert good.status_code == 201 and good.json()["filter"]["conditions"][0]["field"] == "brand"


async def test_a_webhook_deleted_while_its_ping_is_out(client, tenant, receiver):
    """The ping's attempt has no log left to go to: a 404, not a server error (the fuzzer's
    concurrent DELETE found it)."""
    created = (await _create(client, tenant, url=receiver.url)).json()
    receiver.hold = threading.Event()
    try:
        ping = asyncio.create_task(
            client.post(f"/api/pim/webhooks/{created['id']}/ping/", headers=tenant.admin)
        )

        async def out() -> bool:
            return receiver.in_flight == 1

        await wait_for(out, timeout=10, interval=0.01)
        deleted = await client.delete(f"/api/pim/webhooks/{created['id']}/", headers=tenant.admin)
        assert deleted.status_code == 204
    finally:
        receiver.hold.set()
    pinged = await ping
    assert pinged.status_code == 404, pinged.text
    assert pinged.json()["code"] == "not_found"


async def test_ping_is_signed_and_logged(client, tenant, receiver):
    created = (await _create(client, tenant, url=receiver.url)).json()
    pinged = await client.post(f"/api/pim/webhooks/{created['id']}/ping/", headers=tenant.admin)
    assert pinged.status_code == 200, pinged.text
    attempt = pinged.json()
    assert attempt["succeeded"] and attempt["status_code"] == 200 and attempt["ping"]
    [event] = receiver.events()
    assert (
        event["type"] == "ping" and event["seq"] is None and attempt["event_ids"] == [event["id"]]
    )
    assert receiver.all_signed_by(created["secret"])
    assert not receiver.all_signed_by(created["secret"] + "x")
    receiver.status = 500
    failed = (
        await client.post(f"/api/pim/webhooks/{created['id']}/ping/", headers=tenant.admin)
    ).json()
    assert failed["succeeded"] is False and failed["status_code"] == 500
    assert failed["error"] == "HTTP 500" and len(failed["response_body"]) == 1024
    log = (
        await client.get(
            f"/api/pim/webhooks/{created['id']}/deliveries/?limit=1", headers=tenant.admin
        )
    ).json()
    assert [d["id"] for d in log["results"]] == [failed["id"]] and log["next_cursor"]
    older = (
        await client.get(
            f"/api/pim/webhooks/{created['id']}/deliveries/?cursor={log['next_cursor']}",
            headers=tenant.admin,
        )
    ).json()
    assert [d["id"] for d in older["results"]] == [attempt["id"]]


async def test_replay_checks_its_seq(client, tenant):
    created = (await _create(client, tenant)).json()
    ahead = await client.post(
        f"/api/pim/webhooks/{created['id']}/replay/", json={"after": 10**6}, headers=tenant.admin
    )
    assert ahead.status_code == 400 and ahead.json()["param"] == "after"
    ok = await client.post(
        f"/api/pim/webhooks/{created['id']}/replay/", json={"after": 0}, headers=tenant.admin
    )
    assert ok.status_code == 200 and ok.json()["cursor_seq"] == 0


def _contract_snippet():
    """The `verify` function of docs/contract.md's webhook section, as documented."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "contract.md").read_text()
    section = text[text.index("## Webhooks") :]
    code = section[section.index("```python") + len("```python") : section.index("```\n")]
    namespace: dict = {}
    exec(code, namespace)
    return namespace["verify"]


async def test_the_documented_snippet_verifies_a_delivery(client, tenant, receiver):
    verify = _contract_snippet()
    created = (await _create(client, tenant, url=receiver.url)).json()
    await client.post(f"/api/pim/webhooks/{created['id']}/ping/", headers=tenant.admin)
    [delivery] = receiver.deliveries
    assert verify(created["secret"], delivery.body, delivery.signature)
    assert not verify(created["secret"], delivery.body + b" ", delivery.signature)
    assert not verify("whsec_other", delivery.body, delivery.signature)
    # after a rotation, the next attempt is signed with the new secret
    rotated = (
        await client.post(f"/api/pim/webhooks/{created['id']}/rotate-secret/", headers=tenant.admin)
    ).json()
    await client.post(f"/api/pim/webhooks/{created['id']}/ping/", headers=tenant.admin)
    later = receiver.deliveries[1]
    assert verify(rotated["secret"], later.body, later.signature)
    assert not verify(created["secret"], later.body, later.signature)
