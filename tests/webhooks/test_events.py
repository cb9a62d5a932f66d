"""Event ids and bodies built the fast way are those of the plain definitions, byte for byte."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson

from app.webhooks.events import (
    _PRODUCT_EVENT_NAMESPACE,
    body_from,
    body_of,
    event_json,
    other_event,
    product_event_id,
)


def test_product_event_id_is_uuid5_of_tenant_and_seq():
    for tenant_id in (1, 2, 17, 4096, 2**31 - 1, 2**63 - 1):
        for seq in [*range(0, 3000), 2**31, 2**53 + 1, 2**63 - 1]:
            expected = str(uuid.uuid5(_PRODUCT_EVENT_NAMESPACE, f"{tenant_id}:{seq}"))
            assert product_event_id(tenant_id, seq) == expected, (tenant_id, seq)


def test_body_from_events_serialised_one_by_one_is_body_of():
    at = datetime(2026, 12, 7, 17, 10, 55, 249559, tzinfo=UTC)
    events = [
        {
            "id": product_event_id(1, 1),
            "type": "product.created",
            "seq": 1,
            "created_at": at,
            "data": {
                "seq": 1,
                "changes": {
                    "näme": {"old": None, "new": 'Schuh \u00fc \U0001f45f \u2028 "q" \\'},
                    "nested": {"old": None, "new": {"a": [1, [2, {"b": None}]], "c": {}}},
                    "big": {"old": None, "new": 2**63 - 1},
                    "neg": {"old": None, "new": -(2**63)},
                    "float": {"old": 0.1, "new": 1.8446744073709552e19},
                },
                "actor": orjson.Fragment(b'{"id": 3, "name": null, "type": "api_key"}'),
                "at": at,
            },
        },
        {
            "id": product_event_id(1, 2),
            "type": "product.deleted",
            "seq": 2,
            "created_at": at.replace(microsecond=0),  # no fraction: none written
            "data": {"at": at.astimezone(timezone(timedelta(hours=2)))},
        },
        other_event(str(uuid.uuid4()), "import.finished", at, orjson.Fragment(b'{"x": [1]}')),
    ]
    assert body_from(event_json(e) for e in events) == body_of(events)
    assert body_from([]) == body_of([]) == b'{"events":[]}'
