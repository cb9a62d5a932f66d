"""Schemathesis over every operation of `/openapi.json`, against a real `pim serve` process.

The caller is an admin of a fresh tenant that has a schema, categories, products, a view, a
segment and an uploaded import job, so that generated requests reach the code behind the checks:
path parameters are either generated or one of those real objects, and the product list and facets
get generated dynamic filters on the tenant's real fields. Every response must be a declared
status code, not a 5xx, and match its declared schema. The budget is bounded (examples, coverage
and fuzzing phases, `MAX_EXAMPLES` a phase, no stateful phase) so the test takes about a minute.
"""

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app
from tests.hardening.live_server import LiveServer, live_server

# Raise it for a deeper run: PIM_FUZZ_MAX_EXAMPLES=200 pytest tests/hardening/test_fuzz.py
MAX_EXAMPLES = int(os.environ.get("PIM_FUZZ_MAX_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]
FIELDS = [
    {"name": "brand", "type": "string"},
    {"name": "price", "type": "number"},
    {"name": "stock", "type": "integer"},
    {"name": "tags", "type": "array"},
    {"name": "color", "type": "enum", "options": ["red", "blue"]},
    {"name": "launched", "type": "date"},
    {"name": "updated", "type": "datetime"},
    {"name": "organic", "type": "boolean"},
]
FILTER_OPS = [
    "",
    "__ne",
    "__in",
    "__gt",
    "__gte",
    "__lt",
    "__lte",
    "__contains",
    "__icontains",
    "__exists",
    "__bogus",
]
# Operations whose free-form query parameters are dynamic filters on data fields.
FILTERED_OPERATIONS = {"list_products", "get_facets"}

cases_run = {"count": 0}


@pytest.fixture(scope="module")
def server():
    with live_server() as running:
        yield running


@pytest.fixture(scope="module")
async def fuzz_tenant(server: LiveServer, make_tenant):
    """A tenant with one of everything; returns (admin headers, {path parameter: real value})."""
    tenant = await make_tenant("fuzz")
    headers = tenant.admin
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:

        async def ok(response: httpx.Response) -> dict:
            assert response.status_code < 300, (
                response.request.url,
                response.status_code,
                response.text,
            )
            return response.json() if response.content else {}

        await ok(await http.put("/api/pim/schema/", json={"fields": FIELDS}))
        men = await ok(await http.post("/api/pim/categories/", json={"name": "Men"}))
        shoes = await ok(
            await http.post("/api/pim/categories/", json={"name": "Shoes", "parent_id": men["id"]})
        )
        products = [
            {
                "sku": "NK-1",
                "name": "Air Max",
                "brand": "Nike",
                "price": "129.90",
                "stock": 3,
                "tags": ["running"],
                "color": "red",
                "launched": "2024-03-01",
                "organic": True,
                "categories": [shoes["id"]],
                "variation_attributes": ["color"],
            },
            {
                "sku": "NK-1-B",
                "name": "Air Max blue",
                "brand": "Nike",
                "color": "blue",
                "variation_of": "NK-1",
                "categories": [shoes["id"]],
            },
            {
                "sku": "AD-1",
                "name": "Samba",
                "brand": "Adidas",
                "price": 99,
                "tags": ["street", "retro"],
                "categories": [men["id"]],
            },
        ]
        bulk = await ok(await http.post("/api/pim/products/bulk/", json={"products": products}))
        assert bulk["failed"] == 0, bulk
        product = (await ok(await http.get("/api/pim/products/", params={"sku": "NK-1"})))[
            "results"
        ][0]
        view = await ok(
            await http.post(
                "/api/pim/views/",
                json={"name": "basic", "attributes": ["brand", "price"], "is_default": True},
            )
        )
        segment = await ok(
            await http.post(
                "/api/product-segments/",
                json={
                    "name": "nike",
                    "definition": {
                        "match": "all",
                        "conditions": [{"field": "brand", "op": "eq", "value": "Nike"}],
                    },
                },
            )
        )
        throwaway_key = await ok(
            await http.post("/api/auth/api-keys/", json={"name": "to revoke", "role": "viewer"})
        )
        job = await ok(
            await http.post(
                "/api/pim/import/csv/",
                files={"file": ("feed.csv", b"sku,name,brand\nX-1,Shirt,Acme\n", "text/csv")},
            )
        )
    real = {
        "product_id": product["id"],
        "category_id": shoes["id"],
        "categoryId": men["id"],
        "view_id": view["id"],
        "segment_id": segment["id"],
        "key_id": throwaway_key["id"],  # never the admin key the fuzzer authenticates with
        "job_id": job["job_id"],
        "locale": "de-de",
    }
    REAL.update(real)
    return headers, real


def _load_schema() -> schemathesis.schemas.BaseSchema:
    # Loaded at collection time from the app itself (no services needed to build the document);
    # the requests go to the live server. (`schemathesis.pytest.from_fixture` would load it from a
    # fixture, but its lazy loader does not run on pytest 9.)
    config = SchemathesisConfig.from_dict(
        {
            "generation": {"max-examples": MAX_EXAMPLES, "mode": "all"},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
        }
    )
    return schemathesis.openapi.from_dict(create_app().openapi(), config=config)


schema = _load_schema()
# The fuzz tenant's objects by path parameter name, filled in by the `fuzz_tenant` fixture.
REAL: dict[str, object] = {}


@schema.hook
def flatmap_path_parameters(_context, path_parameters):
    known = {name: REAL[name] for name in (path_parameters or {}) if name in REAL}
    if not known:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **known}])


@schema.hook
def flatmap_query(context, query):
    if (
        context.operation is None
        or context.operation.definition.raw.get("operationId") not in FILTERED_OPERATIONS
    ):
        return st.just(query)
    names = [f["name"] for f in FIELDS] + ["unknown_field"]
    value = st.one_of(
        st.text(max_size=12),
        st.sampled_from(
            [
                "1",
                "-5.5",
                "2024-01-01",
                "true",
                "a,b",
                "1e400",
                "99999999999999999999999",
                "2024-13-45T99:00",
            ]
        ),
    )
    filters = st.dictionaries(
        st.builds(lambda n, op: n + op, st.sampled_from(names), st.sampled_from(FILTER_OPS)),
        value,
        max_size=3,
    )
    return filters.map(lambda extra: {**(query or {}), **extra})


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, server: LiveServer, fuzz_tenant):
    headers, _real = fuzz_tenant
    cases_run["count"] += 1
    case.call_and_validate(base_url=server.url, headers=headers, checks=CHECKS, timeout=30)


def test_fuzzing_left_no_server_errors(server: LiveServer):
    """A 500 that reached the log (say, from a response the checks could not see) fails too."""
    print(f"schemathesis: {cases_run['count']} cases run")
    assert server.server_errors() == []
