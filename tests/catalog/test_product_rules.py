"""One set of product rules (issue 14, item 2): POST, PATCH, the bulk upsert and the CSV import
accept and refuse the same products, for the same reason (the field the error names).

Black-box: each case goes through every write path that can express it (PATCH cannot change a
SKU; an import has no lists of ids or names, and an empty cell means "no value"), each path in a
tenant of its own; then the stored products are read back.
"""

import csv
import io
from dataclasses import dataclass
from typing import Any

from app.products.rules import (
    MAX_CATEGORIES,
    MAX_VARIATION_ATTRIBUTES,
    NAME_MAX,
    SKU_MAX,
)
from tests.imports.conftest import IMPORT, upload, wait_done

PRODUCTS = "/api/pim/products/"
POST, PATCH, BULK, IMPORT_PATH = "post", "patch", "bulk", "import"
ALL = frozenset({POST, PATCH, BULK, IMPORT_PATH})
JSON_ONLY = frozenset({POST, PATCH, BULK})  # lists, and values an empty CSV cell cannot spell
NO_PATCH = frozenset({POST, BULK, IMPORT_PATH})  # the SKU
CATEGORY = "<category id>"  # replaced by a category of the tenant


@dataclass(frozen=True)
class Case:
    label: str
    product: dict[str, Any]  # built-ins; `sku` added when absent
    refused_for: str | None  # the field the error names, or None: stored as given
    paths: frozenset[str] = ALL


CASES = [
    Case("name at the limit", {"name": "n" * NAME_MAX}, None),
    Case("name over the limit", {"name": "n" * (NAME_MAX + 1)}, "name"),
    Case("a 5,000-character name", {"name": "n" * 5000}, "name"),
    Case("blank name", {"name": "   "}, "name", JSON_ONLY),
    Case("status deleted", {"status": "deleted"}, None),
    Case("unknown status", {"status": "archived"}, "status"),
    Case("sku at the limit", {"sku": "s" * SKU_MAX}, None, NO_PATCH),
    Case("sku over the limit", {"sku": "t" * (SKU_MAX + 1)}, "sku", NO_PATCH),
    Case("sku at the limit once stripped", {"sku": f" {'u' * SKU_MAX} "}, None, NO_PATCH),
    Case("variation_of at the limit", {"variation_of": "p" * SKU_MAX}, None),
    Case("variation_of over the limit", {"variation_of": "p" * (SKU_MAX + 1)}, "variation_of"),
    Case(
        "variation_attributes at the limit",
        {"variation_attributes": [f"a{i}" for i in range(MAX_VARIATION_ATTRIBUTES)]},
        None,
        JSON_ONLY,
    ),
    Case(
        "variation_attributes over the limit",
        {"variation_attributes": [f"a{i}" for i in range(MAX_VARIATION_ATTRIBUTES + 1)]},
        "variation_attributes",
        JSON_ONLY,
    ),
    Case(
        "500 variation_attributes",
        {"variation_attributes": [f"a{i}" for i in range(500)]},
        "variation_attributes",
        JSON_ONLY,
    ),
    Case("categories at the limit", {"categories": [CATEGORY] * MAX_CATEGORIES}, None, JSON_ONLY),
    Case(
        "categories over the limit",
        {"categories": [CATEGORY] * (MAX_CATEGORIES + 1)},
        "categories",
        JSON_ONLY,
    ),
    Case("category id 0", {"categories": [0]}, "categories", JSON_ONLY),
    Case("category id beyond 64 bits", {"categories": [2**63]}, "categories", JSON_ONLY),
    Case("unknown category id", {"categories": [2**63 - 1]}, "categories", JSON_ONLY),
    # Postgres text holds no NUL (an import drops them from its cells, as it reads the file)
    Case("NUL in the name", {"name": "a\x00b"}, "name", JSON_ONLY),
    Case("NUL in the sku", {"sku": "s\x00"}, "sku", JSON_ONLY & NO_PATCH),
    Case("NUL in variation_of", {"variation_of": "p\x00"}, "variation_of", JSON_ONLY),
    Case(
        "NUL in variation_attributes",
        {"variation_attributes": ["a\x00"]},
        "variation_attributes",
        JSON_ONLY,
    ),
]


def _product(case: Case, k: int, category: int) -> dict[str, Any]:
    product = {"sku": f"R-{k}", "name": f"Product {k}", **case.product}
    if "categories" in product:
        product["categories"] = [category if c == CATEGORY else c for c in product["categories"]]
    return product


def _refused_for(response) -> str:
    """The field a refused POST or PATCH names: the 422's location, or the 400's prefix."""
    body = response.json()
    if response.status_code == 422:
        fields = {str(part) for err in body["errors"] for part in err["loc"][1:2]}
        assert len(fields) == 1, body
        return fields.pop()
    assert response.status_code == 400, response.text
    return body["detail"].split(":", 1)[0]


async def _category(client, tenant) -> int:
    r = await client.post("/api/pim/categories/", headers=tenant.editor, json={"name": "C"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _stored(client, tenant) -> dict[str, dict]:
    out, page = {}, 1
    while True:
        r = await client.get(
            PRODUCTS, headers=tenant.viewer, params={"page": page, "page_size": 200}
        )
        assert r.status_code == 200, r.text
        out.update({p["sku"]: p for p in r.json()["results"]})
        if not r.json()["next"]:
            return out
        page += 1


async def _through_post(client, tenant, products) -> dict[int, str | None]:
    outcome = {}
    for k, product in products.items():
        r = await client.post(PRODUCTS, headers=tenant.editor, json=product)
        outcome[k] = None if r.status_code == 201 else _refused_for(r)
    return outcome


async def _through_patch(client, tenant, products) -> dict[int, str | None]:
    outcome = {}
    for k, product in products.items():
        r = await client.post(
            PRODUCTS, headers=tenant.editor, json={"sku": product["sku"], "name": "before"}
        )
        assert r.status_code == 201, r.text
        changes = {key: value for key, value in product.items() if key != "sku"}
        r = await client.patch(f"{PRODUCTS}{r.json()['id']}/", headers=tenant.editor, json=changes)
        outcome[k] = None if r.status_code == 200 else _refused_for(r)
    return outcome


async def _through_bulk(client, tenant, products) -> dict[int, str | None]:
    keys = list(products)
    r = await client.post(
        f"{PRODUCTS}bulk/", headers=tenant.editor, json={"products": list(products.values())}
    )
    assert r.status_code == 200, r.text
    outcome: dict[int, str | None] = dict.fromkeys(keys)
    for err in r.json()["errors"]:
        outcome[keys[err["index"]]] = err["detail"].split(":", 1)[0]
    return outcome


async def _through_import(client, tenant, products) -> dict[int, str | None]:
    columns = ["sku", "name", "status", "variation_of"]
    keys = list(products)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[products[k].get(c, "") for c in columns] for k in keys])
    r = await upload(client, tenant.editor, buffer.getvalue().encode())
    assert r.status_code == 201, r.text
    job_id = r.json()["job_id"]
    # an empty value mapping for status: the suggestion's (draft/archived -> inactive) is a
    # mapping the user accepts, not a rule; the rules are compared without one
    body = {"mapping": {c: c for c in columns}, "schema": [], "value_mapping": {"status": {}}}
    r = await client.post(f"{IMPORT}/{job_id}/confirm/", headers=tenant.editor, json=body)
    assert r.status_code == 202, r.text
    done = await wait_done(client, tenant.editor, job_id)
    assert done["status"] == "done", done
    outcome: dict[int, str | None] = dict.fromkeys(keys)
    for err in done["errors"]:  # row 1 is the header
        outcome[keys[err["row"] - 2]] = err["detail"].split(":", 1)[0]
    return outcome


WRITERS = {
    POST: _through_post,
    PATCH: _through_patch,
    BULK: _through_bulk,
    IMPORT_PATH: _through_import,
}


async def test_every_write_path_accepts_and_refuses_the_same_products(client, make_tenant, worker):
    for path, write in WRITERS.items():
        tenant = await make_tenant(path)
        category = await _category(client, tenant)
        products = {
            k: _product(case, k, category) for k, case in enumerate(CASES) if path in case.paths
        }
        outcome = await write(client, tenant, products)
        stored = await _stored(client, tenant)
        for k, product in products.items():
            case = CASES[k]
            assert outcome[k] == case.refused_for, (path, case.label, outcome[k])
            sku = product["sku"].strip()
            if case.refused_for is not None:
                if path != PATCH:
                    assert sku not in stored, (path, case.label)
                else:  # the product keeps what it had
                    assert stored[sku]["name"] == "before", (path, case.label)
                continue
            found = stored[sku]
            for key, value in product.items():
                if key == "categories":
                    value = list(dict.fromkeys(value))
                if key != "sku":
                    assert found[key] == value, (path, case.label, key)


async def test_integers_beyond_64_bits_are_stored_exactly_on_every_write_path(client, tenant):
    """A JSON integer beyond 64 bits (the grammar allows it) in a number field or a free data key
    is stored as sent: orjson would read it as a float and silently round it."""
    await client.put(
        "/api/pim/schema/",
        headers=tenant.editor,
        json={"fields": [{"name": "n", "type": "number"}, {"name": "i", "type": "integer"}]},
    )
    big = 123456789012345678901234567890
    created = await client.post(
        "/api/pim/products/",
        headers=tenant.editor,
        json={"sku": "A", "name": "a", "data": {"n": big, "free": -big}},
    )
    assert created.status_code == 201, created.text
    bulk = await client.post(
        "/api/pim/products/bulk/",
        headers=tenant.editor,
        json={"products": [{"sku": "B", "name": "b", "n": big + 1}]},
    )
    assert bulk.json()["created"] == 1, bulk.text
    patched = await client.patch(
        created.headers["Location"], headers=tenant.editor, json={"data": {"free": big + 2}}
    )
    assert patched.status_code == 200, patched.text
    stored = {
        p["sku"]: p["data"]
        for p in (await client.get("/api/pim/products/", headers=tenant.viewer)).json()["results"]
    }
    assert stored == {"A": {"n": big, "free": big + 2}, "B": {"n": big + 1}}
    # an integer field keeps its 64-bit range: beyond it is refused, not rounded
    refused = await client.post(
        "/api/pim/products/",
        headers=tenant.editor,
        json={"sku": "C", "name": "c", "data": {"i": big}},
    )
    assert refused.status_code == 400 and refused.json()["param"] == "i"
