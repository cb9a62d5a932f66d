"""Delivery by a real worker process to a real receiver on 127.0.0.1: signed, complete, in order
per product, through a receiver outage, a worker SIGKILLed mid-delivery, disabling, replay,
filters, and the import and segment events."""

import os
import signal
from collections import defaultdict

import pytest

from tests.conftest import start_worker, stop_worker, wait_for
from tests.imports.conftest import confirm_suggestion, wait_done
from tests.webhooks.receiver import Receiver

PRODUCT_EVENTS = ["product.created", "product.updated", "product.deleted"]


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def hook_worker():
    proc = start_worker()
    yield proc
    stop_worker(proc)


async def _subscribe(client, tenant, receiver, events=PRODUCT_EVENTS, **extra) -> dict:
    answer = await client.post(
        "/api/pim/webhooks/",
        json={"url": receiver.url, "events": events, **extra},
        headers=tenant.admin,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def _bulk(client, tenant, products: list[dict]) -> None:
    for start in range(0, len(products), 5000):
        answer = await client.post(
            "/api/pim/products/bulk/",
            json={"products": products[start : start + 5000]},
            headers=tenant.editor,
        )
        assert answer.status_code == 200, answer.text


async def _received(receiver, count: int, timeout: float = 120) -> list[dict]:
    """The distinct events once `count` of them have arrived (by id; duplicates allowed)."""

    async def enough():
        distinct = {e["id"]: e for e in receiver.events()}
        return list(distinct.values()) if len(distinct) >= count else None

    return await wait_for(enough, timeout=timeout, interval=0.1)


def _assert_ordered_per_product(events: list[dict]) -> dict[int, list[str]]:
    """Each product's events arrived in seq order (first arrival of each id); its types by product."""
    seen: set[str] = set()
    by_product: dict[int, list[dict]] = defaultdict(list)
    for event in events:
        if event["id"] in seen or event["seq"] is None:
            continue
        seen.add(event["id"])
        by_product[event["data"]["product_id"]].append(event)
    for product_events in by_product.values():
        seqs = [e["seq"] for e in product_events]
        assert seqs == sorted(seqs), seqs
    return {pid: [e["type"] for e in evs] for pid, evs in by_product.items()}


async def test_events_arrive_signed_complete_and_in_order(client, tenant, receiver, hook_worker):
    hook = await _subscribe(client, tenant, receiver)
    n = 12_000
    await _bulk(client, tenant, [{"sku": f"S{i}", "name": f"n{i}"} for i in range(n)])
    await _bulk(client, tenant, [{"sku": f"S{i}", "name": f"m{i}"} for i in range(0, n, 3)])
    listed = (await client.get("/api/pim/products/?sku=S5", headers=tenant.viewer)).json()
    doomed = listed["results"][0]["id"]
    assert (
        await client.delete(f"/api/pim/products/{doomed}/", headers=tenant.editor)
    ).status_code == 204
    expected = n + n // 3 + 1
    events = await _received(receiver, expected)
    assert len(events) == expected
    assert receiver.all_signed_by(hook["secret"])
    # every delivery at most 1,000 events, ascending seq within and across deliveries
    arrived = [e["seq"] for e in receiver.events()]
    assert max(len(d.events) for d in receiver.deliveries) <= 1000
    assert arrived == sorted(arrived)
    types = _assert_ordered_per_product(receiver.events())
    assert types[doomed] == ["product.created", "product.deleted"]
    assert sum(t == ["product.created", "product.updated"] for t in types.values()) == n // 3
    # an event's data is the change log's entry
    first = min(events, key=lambda e: e["seq"])
    logged = (
        await client.get(
            f"/api/pim/changes/?after={first['seq'] - 1}&limit=1", headers=tenant.viewer
        )
    ).json()["results"][0]
    assert first["data"] == logged and first["type"] == "product.created"
    # the delivery log: every attempt succeeded, the event ids are the delivered ones
    log = (
        await client.get(
            f"/api/pim/webhooks/{hook['id']}/deliveries/?limit=200", headers=tenant.admin
        )
    ).json()
    logged_ids = {i for d in log["results"] for i in d["event_ids"]}
    assert all(d["succeeded"] and d["status_code"] == 200 for d in log["results"])
    assert logged_ids == {e["id"] for e in events}
    state = (await client.get(f"/api/pim/webhooks/{hook['id']}/", headers=tenant.admin)).json()
    assert state["cursor_seq"] == max(e["seq"] for e in events)


async def test_receiver_down_then_up_gets_everything(client, tenant, receiver, hook_worker):
    hook = await _subscribe(client, tenant, receiver)
    receiver.stop()
    await _bulk(client, tenant, [{"sku": f"D{i}", "name": "x"} for i in range(3000)])

    async def failed_twice():
        log = (
            await client.get(f"/api/pim/webhooks/{hook['id']}/deliveries/", headers=tenant.admin)
        ).json()["results"]
        return len([d for d in log if not d["succeeded"]]) >= 2 and log

    log = await wait_for(failed_twice, timeout=90)
    assert log[0]["status_code"] is None and log[0]["error"]
    receiver.start()  # the same port
    events = await _received(receiver, 3000)
    assert {e["data"]["sku"] for e in events} == {f"D{i}" for i in range(3000)}
    state = (await client.get(f"/api/pim/webhooks/{hook['id']}/", headers=tenant.admin)).json()
    assert state["active"] and state["failures"] == 0 and state["failing_since"] is None


async def test_worker_killed_mid_delivery_loses_nothing(client, tenant, receiver):
    receiver.delay = 0.2  # deliveries take a while: the kill lands in the middle of them
    hook = await _subscribe(client, tenant, receiver)
    n = 12_000
    await _bulk(client, tenant, [{"sku": f"K{i}", "name": "x"} for i in range(n)])
    first = start_worker()
    try:  # (a worker can take many seconds to start on a loaded machine)
        await wait_for(lambda: _at_least(receiver, 3), timeout=120, interval=0.05)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        before = len({e["id"] for e in receiver.events()})
        assert before < n, "everything arrived before the kill: the test proves nothing"
    finally:
        stop_worker(first, signal.SIGKILL)
    receiver.delay = 0
    second = start_worker()
    try:
        events = await _received(receiver, n, timeout=180)
    finally:
        stop_worker(second)
    assert {e["data"]["sku"] for e in events} == {f"K{i}" for i in range(n)}
    # a duplicate is the same event: same id, same seq
    by_id: dict[str, set[int]] = defaultdict(set)
    for event in receiver.events():
        by_id[event["id"]].add(event["seq"])
    assert all(len(seqs) == 1 for seqs in by_id.values())
    assert receiver.all_signed_by(hook["secret"])


async def _at_least(receiver, deliveries: int) -> bool:
    return len(receiver.deliveries) >= deliveries


async def test_disabled_after_failing_for_the_window(client, tenant, receiver, hook_worker):
    receiver.status = 500
    hook = await _subscribe(client, tenant, receiver)
    await _bulk(client, tenant, [{"sku": "F1", "name": "x"}])

    async def disabled():
        state = (await client.get(f"/api/pim/webhooks/{hook['id']}/", headers=tenant.admin)).json()
        return state if not state["active"] else None

    # PIM_WEBHOOK_DISABLE_AFTER_SECONDS=8 in the tests (3 days by default)
    state = await wait_for(disabled, timeout=90)
    assert (
        state["disabled_reason"].startswith("failing since ")
        and "HTTP 500" in state["disabled_reason"]
    )
    assert state["failures"] >= 3
    attempts = (
        await client.get(f"/api/pim/webhooks/{hook['id']}/deliveries/", headers=tenant.admin)
    ).json()["results"]
    assert all(a["status_code"] == 500 and len(a["response_body"]) == 1024 for a in attempts)
    # re-enabled, the receiver healthy: the pending event arrives
    receiver.status = 200
    patched = await client.patch(
        f"/api/pim/webhooks/{hook['id']}/", json={"active": True}, headers=tenant.admin
    )
    assert patched.json()["disabled_reason"] is None
    [event] = await _received(receiver, 1)
    assert event["data"]["sku"] == "F1"


async def test_replay_delivers_again_with_the_same_ids(client, tenant, receiver, hook_worker):
    hook = await _subscribe(client, tenant, receiver)
    await _bulk(client, tenant, [{"sku": f"R{i}", "name": "x"} for i in range(10)])
    events = sorted(await _received(receiver, 10), key=lambda e: e["seq"])
    after = events[3]["seq"]
    replayed = await client.post(
        f"/api/pim/webhooks/{hook['id']}/replay/", json={"after": after}, headers=tenant.admin
    )
    assert replayed.status_code == 200 and replayed.json()["cursor_seq"] == after

    async def replayed_all():
        return len(receiver.events()) >= 16

    await wait_for(replayed_all, timeout=60)
    again = receiver.events()[10:]
    assert [(e["id"], e["seq"]) for e in again] == [(e["id"], e["seq"]) for e in events[4:]]


async def test_filter_delivers_matching_products_only(client, tenant, receiver, hook_worker):
    await client.put("/api/pim/schema/", json={"fields": [{"name": "brand"}]}, headers=tenant.admin)
    definition = {"match": "all", "conditions": [{"field": "brand", "op": "eq", "value": "Nike"}]}
    await _subscribe(client, tenant, receiver, filter=definition)
    await _bulk(
        client,
        tenant,
        [{"sku": f"N{i}", "name": "x", "data": {"brand": "Nike"}} for i in range(5)]
        + [{"sku": f"A{i}", "name": "x", "data": {"brand": "Adidas"}} for i in range(5)],
    )
    nike = (await client.get("/api/pim/products/?sku=N0", headers=tenant.viewer)).json()
    adidas = (await client.get("/api/pim/products/?sku=A0", headers=tenant.viewer)).json()
    for product in (nike["results"][0], adidas["results"][0]):
        deleted = await client.delete(f"/api/pim/products/{product['id']}/", headers=tenant.editor)
        assert deleted.status_code == 204
    events = await _received(receiver, 6)
    await _bulk(client, tenant, [{"sku": "N-last", "name": "x", "data": {"brand": "Nike"}}])
    events = await _received(receiver, 7)  # anything else would have arrived before it
    assert sorted(e["data"]["sku"] for e in events) == sorted(
        [f"N{i}" for i in range(5)] + ["N0", "N-last"]
    )
    assert [e["type"] for e in events if e["data"]["sku"] == "N0"] == [
        "product.created",
        "product.deleted",
    ]


@pytest.mark.parametrize(
    "rows",
    [
        7_000,
        pytest.param(
            200_000,
            marks=pytest.mark.skipif(
                os.environ.get("PIM_TEST_BENCH") != "1",
                reason="the 200,000-row import takes minutes: PIM_TEST_BENCH=1",
            ),
        ),
    ],
)
async def test_import_arrives_complete_in_order_then_finished(
    client, tenant, receiver, hook_worker, rows
):
    await _subscribe(
        client, tenant, receiver, events=["product.created", "product.updated", "import.finished"]
    )
    # every 10th SKU twice: its second row updates what its first created, in the same import
    lines = [f"I{i},name {i}\n" for i in range(rows)] + [
        f"I{i},renamed {i}\n" for i in range(0, rows, 10)
    ]
    job_id = await confirm_suggestion(client, tenant.editor, f"sku,name\n{''.join(lines)}".encode())
    done = await wait_done(client, tenant.editor, job_id, timeout=max(60, rows / 200))
    assert done["status"] == "done" and done["created"] == rows, done

    async def finished_arrived():
        return any(e["type"] == "import.finished" for e in receiver.events())

    await wait_for(finished_arrived, timeout=max(120, rows / 500), interval=0.2)
    arrived = receiver.events()
    events = list({e["id"]: e for e in arrived}.values())
    finished = [i for i, e in enumerate(arrived) if e["type"] == "import.finished"]
    assert len(finished) == 1 and finished[0] == len(arrived) - 1, "after its products"
    data = arrived[finished[0]]["data"]
    assert data["import_job_id"] == done["job_id"] and data["created"] == rows
    assert data["status"] == "done" and arrived[finished[0]]["seq"] is None
    assert {e["data"]["sku"] for e in events if e["seq"] is not None} == {
        f"I{i}" for i in range(rows)
    }
    # the tenant's whole change log (a fresh tenant: seqs 1..N), nothing missing
    seqs = sorted(e["seq"] for e in events if e["seq"] is not None)
    assert seqs == list(range(1, seqs[-1] + 1))
    types = _assert_ordered_per_product(arrived)
    assert all(t[0] == "product.created" for t in types.values())
    assert any(t == ["product.created", "product.updated"] for t in types.values())


async def test_segment_events_carry_the_membership_change(client, tenant, receiver, hook_worker):
    await client.put("/api/pim/schema/", json={"fields": [{"name": "brand"}]}, headers=tenant.admin)
    await _subscribe(
        client, tenant, receiver, events=["segment.computed", "segment.membership_changed"]
    )
    await _bulk(
        client,
        tenant,
        [{"sku": f"G{i}", "name": "x", "data": {"brand": "Nike"}} for i in range(4)],
    )
    segment = (
        await client.post(
            "/api/product-segments/",
            json={
                "name": "nike",
                "definition": {
                    "match": "all",
                    "conditions": [{"field": "brand", "op": "eq", "value": "Nike"}],
                },
            },
            headers=tenant.editor,
        )
    ).json()
    compute = f"/api/product-segments/{segment['id']}/compute/"
    assert (await client.post(compute, headers=tenant.editor)).status_code == 200
    first = await _received(receiver, 2)
    changed = next(e for e in first if e["type"] == "segment.membership_changed")
    assert sorted(changed["data"]["entered"]) == ["G0", "G1", "G2", "G3"]
    assert changed["data"]["left"] == [] and changed["data"]["previous_generation"] is None
    await _bulk(
        client,
        tenant,
        [
            {"sku": "G0", "name": "x", "data": {"brand": "Adidas"}},
            {"sku": "G9", "name": "x", "data": {"brand": "Nike"}},
        ],
    )

    async def computed_again():
        segment_now = await client.get(
            f"/api/product-segments/{segment['id']}/", headers=tenant.viewer
        )
        return segment_now.json()["status"] == "ready"

    await wait_for(computed_again, timeout=60)
    assert (await client.post(compute, headers=tenant.editor)).status_code == 200
    events = await _received(receiver, 4)
    second = [
        e for e in events if e["type"] == "segment.membership_changed" and e["id"] != changed["id"]
    ]
    assert len(second) == 1
    assert second[0]["data"]["entered"] == ["G9"] and second[0]["data"]["left"] == ["G0"]
    computed = [e for e in events if e["type"] == "segment.computed"]
    assert sorted(e["data"]["count"] for e in computed) == [4, 4]


async def test_two_workers_never_deliver_to_one_webhook_at_once(client, tenant, receiver):
    receiver.delay = 0.05
    await _subscribe(client, tenant, receiver)
    workers = [start_worker(), start_worker()]
    try:
        for part in range(3):
            await _bulk(client, tenant, [{"sku": f"W{part}-{i}", "name": "x"} for i in range(2000)])
        events = await _received(receiver, 6000)
    finally:
        for proc in workers:
            stop_worker(proc)
    assert len(events) == 6000
    assert receiver.max_in_flight == 1  # one delivery at a time (the lease)
    arrived = [e["seq"] for e in receiver.events()]
    assert arrived == sorted(arrived) and len(arrived) == len(set(arrived))
