"""A real client: generate a Python SDK from the live `/openapi.json` with openapi-python-client and use it.

The generator must not warn (unique operation ids, names and schemas make a clean SDK). The generated
package is imported from a temporary directory and drives a real `pim serve` process: schema,
product creation, a list with dynamic filters, facets, a segment preview and the PIMS route.
"""

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.hardening.live_server import LiveServer, live_server

PACKAGE = "pim_client"


@pytest.fixture(scope="module")
def server():
    with live_server() as running:
        yield running


@pytest.fixture(scope="module")
async def sdk_tenant(make_tenant):
    return await make_tenant("sdk")


@pytest.fixture(scope="module")
def sdk(server: LiveServer, tmp_path_factory):
    """Generate the client from the served document (with the default ruff post-hooks) and import it."""
    workdir = tmp_path_factory.mktemp("sdk")
    spec = workdir / "openapi.json"
    spec.write_text(json.dumps(httpx.get(f"{server.url}/openapi.json", timeout=10).json()))
    bin_dir = str(
        Path(sys.executable).parent
    )  # openapi-python-client and ruff live beside the interpreter
    done = subprocess.run(
        [
            os.path.join(bin_dir, "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(workdir / PACKAGE),
            "--meta",
            "none",
            "--fail-on-warning",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert not re.search(r"warning|error", output, re.IGNORECASE), output
    sys.path.insert(0, str(workdir))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(workdir))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_generated_sdk_drives_the_api(sdk, server: LiveServer, sdk_tenant):
    from pim_client import AuthenticatedClient
    from pim_client.api.categories import create_category
    from pim_client.api.pims import get_pims_products, get_pims_products_localized
    from pim_client.api.products import create_product, get_facets, list_products
    from pim_client.api.schema import replace_product_schema
    from pim_client.api.segments import preview_segment
    from pim_client.models import (
        CategoryIn,
        GetFacetsFieldFilters,
        GetPimsProductsAttributeFilters,
        GetPimsProductsLocalizedAttributeFilters,
        Group,
        ListProductsFieldFilters,
        PimsProducts,
        Preview,
        ProductIn,
        ProductOut,
        ProductPage,
        SchemaIn,
    )

    client = AuthenticatedClient(
        base_url=server.url,
        token=sdk_tenant.keys["editor"],
        prefix="",
        auth_header_name="X-API-Key",
        raise_on_unexpected_status=True,
        timeout=httpx.Timeout(30),
    )
    with client:
        schema = replace_product_schema.sync_detailed(
            client=client,
            body=SchemaIn.from_dict(
                {
                    "fields": [
                        {"name": "brand", "type": "string", "labels": {"de-de": "Marke"}},
                        {"name": "price", "type": "number"},
                        {"name": "tags", "type": "array"},
                    ]
                }
            ),
        )
        assert schema.status_code == 200, schema.content
        shoes = create_category.sync(client=client, body=CategoryIn(name="Shoes"))
        assert shoes.path == "Shoes"

        created = create_product.sync_detailed(
            client=client,
            body=ProductIn.from_dict(
                {
                    "sku": "NK-AM90",
                    "name": "Air Max 90",
                    "categories": [shoes.id],
                    "data": {"brand": "Nike", "price": "129.90", "tags": ["running"]},
                }
            ),
        )
        assert created.status_code == 201, created.content
        product = created.parsed
        assert isinstance(product, ProductOut)
        assert product.sku == "NK-AM90" and product.data["price"] == 129.9
        for sku, brand, price in (("AD-SAMBA", "Adidas", 99), ("NK-PEG", "Nike", 89.5)):
            assert (
                create_product.sync_detailed(
                    client=client,
                    body=ProductIn.from_dict(
                        {"sku": sku, "name": sku.title(), "data": {"brand": brand, "price": price}}
                    ),
                ).status_code
                == 201
            )
        assert (
            create_product.sync_detailed(
                client=client, body=ProductIn.from_dict({"sku": "NK-AM90", "name": "again"})
            ).status_code
            == 409
        )  # a declared error, parsed as such

        # dynamic filters travel as the exploded `fieldFilters` object
        page = list_products.sync(
            client=client,
            ordering="-price",
            field_filters=ListProductsFieldFilters.from_dict({"brand": "Nike", "price__gte": "80"}),
        )
        assert isinstance(page, ProductPage)
        assert page.count == 2 and [p.sku for p in page.results] == ["NK-AM90", "NK-PEG"]
        facets = get_facets.sync(
            client=client, field_filters=GetFacetsFieldFilters.from_dict({"tags": "running"})
        )
        assert facets.total == 1
        assert [(v.value, v.count) for v in facets.facets["brand"]] == [("Nike", 1)]

        preview = preview_segment.sync(
            client=client,
            body=Group.from_dict(
                {
                    "match": "all",
                    "conditions": [
                        {"field": "brand", "op": "eq", "value": "Nike"},
                        {"field": "price", "op": "between", "value": [100, 200]},
                    ],
                }
            ),
        )
        assert isinstance(preview, Preview)
        assert preview.count == 1 and preview.skus == ["NK-AM90"]

        pims = get_pims_products_localized.sync_detailed(
            "de-de",
            shoes.id,
            client=client,
            filters="brand",
            attribute_filters=GetPimsProductsLocalizedAttributeFilters.from_dict(
                {"brand": "Nike|Puma"}
            ),
        )
        assert pims.status_code == 200, pims.content
        assert isinstance(pims.parsed, PimsProducts)
        assert pims.parsed.sku_count == 1
        attributes = pims.parsed.products[0].data.attributes.to_dict()
        assert attributes["sku"] == "NK-AM90" and attributes["price"] == "129.90"
        assert attributes["categories"] == ["Shoes"]
        assert pims.parsed.definition.to_dict()["brand"]["label"] == {"de-de": "Marke"}

        everything = get_pims_products.sync(
            0,
            client=client,
            sort="sku|asc",
            filters="price",
            attribute_filters=GetPimsProductsAttributeFilters.from_dict({"price": "90;;"}),
        )
        assert [p.sku for p in everything.products] == ["AD-SAMBA", "NK-AM90"]

        bad = get_pims_products.sync_detailed(0, client=client, sort="sideways")
        assert bad.status_code == 400 and bad.parsed.status == "ERROR"
    assert server.server_errors() == []
