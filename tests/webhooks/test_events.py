"""Event ids and bodies built the fast way are those of the plain definitions, byte for byte."""

import uuid

from app.webhooks.events import _PRODUCT_EVENT_NAMESPACE, product_event_id


def test_product_event_id_is_uuid5_of_tenant_and_seq():
    for tenant_id in (1, 2, 17, 4096, 2**31 - 1, 2**63 - 1):
        for seq in [*range(0, 3000), 2**31, 2**53 + 1, 2**63 - 1]:
            expected = str(uuid.uuid5(_PRODUCT_EVENT_NAMESPACE, f"{tenant_id}:{seq}"))
            assert product_event_id(tenant_id, seq) == expected, (tenant_id, seq)
