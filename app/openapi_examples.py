"""The OpenAPI document's tour: servers, tags, a summary and examples on every operation, and the
links from create responses to their reads.

The examples are one story that works on a fresh tenant when sent in order (each operation's
`x-example-order`): the schema, then creates, reads, updates, an import, reverts, and deletes at
the end. An id an operation needs comes from an earlier response through the create response's
OpenAPI `links` (`$response.body#/id`), so a client that follows them (the Postman collection,
`scripts/postman.py`; the walk in `tests/test_openapi_examples.py`) sends the examples as they
are. `x-example-wait` names a read to poll until a background job (a segment compute, an import)
has finished. The response examples (`openapi_responses.json` beside this module) are answers
recorded from that walk (`PIM_RECORD_EXAMPLES=1 pytest tests/test_openapi_examples.py`).

One place for the story, rather than an example per route, because the examples only work
together: the categories a product names, the fields a view lists and the SKUs a segment matches
are those the earlier steps made.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from app.config import Settings
from app.products.schemas import BulkItem

ORDER_EXTENSION = "x-example-order"
WAIT_EXTENSION = "x-example-wait"
RESPONSES_FILE = Path(__file__).with_name("openapi_responses.json")

TAGS = [
    {"name": "health", "description": "Liveness and readiness of the API and its dependencies."},
    {
        "name": "auth",
        "description": "API keys of the caller's tenant (admin). A key is sent as `X-API-Key`; a "
        "signed JWT as `Authorization: Bearer`.",
    },
    {
        "name": "schema",
        "description": "The tenant's product schema: the typed fields of `data`, with labels per "
        "locale. Values are checked and coerced by their field's type on every write path.",
    },
    {
        "name": "categories",
        "description": "The category tree: products name category ids; paths (`Men > Shoes`) are "
        "built from the names.",
    },
    {
        "name": "products",
        "description": "Products by SKU with built-ins and typed `data`: create, read, merge-patch, "
        "bulk upsert by SKU, lists with dynamic filters and cursors, searches in the predicate DSL, "
        "and facet counts.",
    },
    {"name": "views", "description": "Named attribute lists (which fields a channel shows)."},
    {
        "name": "segments",
        "description": "Saved product predicates (the segment DSL): preview them, compute their "
        "membership in the background and page through the members.",
    },
    {
        "name": "imports",
        "description": "CSV and XLSX imports: upload (the answer suggests a mapping and a schema), "
        "dry-run or confirm, follow the job, download the rejected rows.",
    },
    {
        "name": "changes",
        "description": "The change log of every product write, a product's history, and reverts "
        "(of a product, an import or a bulk request).",
    },
    {
        "name": "webhooks",
        "description": "Signed, at-least-once deliveries of product, import and segment events to "
        "a receiver's URL, from the change log (admin).",
    },
    {
        "name": "pims",
        "description": "The PIMS compatibility routes: products of a category in the PIMS format "
        "(its own error shape, `{status, detail, code}`).",
    },
]

CSV_EXAMPLE = "sku,name,brand,price,color\nPU-SUEDE,Suede Classic,Puma,75.00,black\n"

DEFINITION = {
    "match": "all",
    "conditions": [
        {"field": "brand", "op": "eq", "value": "Nike"},
        {"field": "price", "op": "between", "value": [100, 200]},
    ],
}
WHERE = {
    "match": "any",
    "conditions": [
        {"field": "brand", "op": "eq", "value": "Nike"},
        {"not": {"field": "price", "op": "gte", "value": 100}},
    ],
}


@dataclass(frozen=True)
class Step:
    """One operation of the tour: its summary, request example and query parameter examples."""

    operation: str
    summary: str
    body: Any = None
    query: dict[str, Any] = field(default_factory=dict)
    body_help: str = ""  # the body's description, where its schema has none
    # poll this read (same path parameters) until its `field` is one of `values` before sending
    wait: tuple[str, str, tuple[str, ...]] | None = None


TOUR: list[Step] = [
    Step("healthz", "Liveness"),
    Step("readyz", "Readiness of each dependency"),
    Step(
        "replace_product_schema",
        "Replace the product schema",
        body={
            "fields": [
                {"name": "brand", "type": "string", "labels": {"de-de": "Marke"}},
                {"name": "price", "type": "number", "labels": {"de-de": "Preis"}},
                {"name": "color", "type": "enum", "options": ["red", "blue", "black"]},
                {"name": "tags", "type": "array"},
                {"name": "launched", "type": "date"},
            ],
            "default_currency": "EUR",
            "default_locale": "en-us",
        },
    ),
    Step("get_product_schema", "Read the product schema"),
    Step(
        "create_category",
        "Create a category",
        body={"name": "Shoes", "labels": {"de-de": "Schuhe"}, "position": 1},
    ),
    Step("list_categories", "List categories", query={"limit": 50}),
    Step("get_category", "Read a category"),
    Step(
        "update_category",
        "Update a category",
        body={"labels": {"de-de": "Schuhe", "fr-fr": "Chaussures"}, "position": 2},
    ),
    Step(
        "create_product",
        "Create a product",
        body={
            "sku": "NK-AM90",
            "name": "Air Max 90",
            "status": "active",
            "variation_attributes": ["color"],
            "data": {
                "brand": "Nike",
                "price": 129.9,
                "color": "red",
                "tags": ["running", "retro"],
                "launched": "2024-03-01",
            },
        },
    ),
    Step("get_product", "Read a product"),
    Step(
        "update_product",
        "Update a product (merge patch of `data`)",
        body={"name": "Air Max 90 Essential", "data": {"price": 119.9, "tags": ["running"]}},
    ),
    Step(
        "bulk_upsert_products",
        "Create or update up to 10,000 products by SKU",
        body={
            "products": [
                {
                    "sku": "NK-AM90-BLUE",
                    "name": "Air Max 90 blue",
                    "variation_of": "NK-AM90",
                    "brand": "Nike",
                    "price": 129.9,
                    "color": "blue",
                },
                {
                    "sku": "AD-SAMBA",
                    "name": "Samba OG",
                    "status": "active",
                    "brand": "Adidas",
                    "price": 99.0,
                    "color": "black",
                    "tags": ["street"],
                },
            ]
        },
    ),
    Step(
        "list_products",
        "List products, filtered by data fields",
        query={"ordering": "-price", "page_size": 50},
    ),
    Step(
        "search_products",
        "Search products with a predicate",
        body={"where": WHERE, "ordering": "-price", "page_size": 50},
    ),
    Step("get_facets", "Facet counts of the filtered products"),
    Step(
        "search_facets", "Facet counts of the products a predicate matches", body={"where": WHERE}
    ),
    Step(
        "create_view",
        "Create a view",
        body={"name": "Web shop", "attributes": ["brand", "price", "color"], "is_default": True},
    ),
    Step("list_views", "List views", query={"limit": 50}),
    Step("get_view", "Read a view"),
    Step(
        "update_view",
        "Update a view",
        body={"attributes": ["brand", "price", "color", "tags"]},
    ),
    Step(
        "preview_segment",
        "Count the products a definition matches",
        body=DEFINITION,
        body_help="A definition in the segment DSL, as a segment's `definition`.",
    ),
    Step(
        "create_segment",
        "Create a segment",
        body={
            "name": "Nike from 100 to 200",
            "description": "Nike products priced 100 to 200",
            "definition": DEFINITION,
        },
    ),
    Step("list_segments", "List segments", query={"limit": 50}),
    Step("get_segment", "Read a segment"),
    Step(
        "update_segment",
        "Update a segment",
        body={"description": "Nike products priced 100 to 200, for the running newsletter"},
    ),
    Step("compute_segment", "Compute a segment's membership"),
    Step(
        "upload_import_csv",
        "Upload a CSV file or an XLSX workbook",
        body=CSV_EXAMPLE,
        body_help="The file as the multipart/form-data part `file`.",
    ),
    Step("list_import_jobs", "List import jobs", query={"limit": 50}),
    Step("get_import_job", "Read an import job"),
    Step(
        "confirm_import_job",
        "Confirm an import (or dry-run it)",
        body={
            "mapping": {
                "sku": "sku",
                "name": "name",
                "brand": "brand",
                "price": "price",
                "color": "color",
            }
        },
    ),
    Step("list_changes", "The tenant's change stream", query={"after": 0, "limit": 100}),
    Step("product_history", "A product's change history", query={"limit": 100}),
    Step("revert_product", "Revert a product to one of its changes", body={"seq": 1}),
    Step(
        "get_pims_products",
        "Products of a category (PIMS format)",
        query={"pageNum": 1, "sort": "sku|asc", "filters": "brand,price"},
    ),
    Step(
        "get_pims_products_localized",
        "Products of a category (PIMS format), labels in a locale",
        query={"pageNum": 1, "filters": "brand,price"},
    ),
    Step(
        "list_segment_members",
        "List a segment's members",
        query={"limit": 50},
        wait=("get_segment", "status", ("ready", "failed")),
    ),
    Step(
        "revert_import",
        "Undo an import",
        wait=("get_import_job", "status", ("done", "failed")),
    ),
    Step("download_import_errors", "Download an import's rejected rows (CSV)"),
    Step("revert_bulk", "Undo a bulk upsert"),
    Step(
        "create_webhook",
        "Subscribe a receiver to product events",
        body={
            # a receiver on this host answers nothing: the tour runs without network; a real
            # subscription names a public https URL (private ones need PIM_WEBHOOK_ALLOW_PRIVATE)
            "url": "http://127.0.0.1:9/pim-events",
            "events": ["product.created", "product.updated", "product.deleted"],
            "filter": {"field": "brand", "op": "eq", "value": "Nike"},
        },
    ),
    Step("list_webhooks", "List webhooks", query={"limit": 50}),
    Step("get_webhook", "Read a webhook"),
    Step("update_webhook", "Update a webhook", body={"events": ["product.updated"]}),
    Step("rotate_secret", "Rotate a webhook's signing secret"),
    Step("ping", "Deliver a ping event now"),
    Step("list_deliveries", "A webhook's delivery attempts", query={"limit": 50}),
    Step("replay", "Deliver again every event after a seq", body={"after": 0}),
    Step("create_api_key", "Create an API key", body={"name": "CI read-only", "role": "viewer"}),
    Step("list_api_keys", "List API keys", query={"limit": 50}),
    Step("revoke_api_key", "Revoke an API key"),
    Step("delete_webhook", "Delete a webhook"),
    Step("delete_view", "Delete a view"),
    Step("delete_segment", "Delete a segment"),
    Step("delete_import_job", "Delete an import job"),
    Step("delete_product", "Delete a product"),
    Step("delete_category", "Delete a category"),
]


def _taking(parameter: str, pointer: str, *operations: str) -> dict[str, tuple[str, str]]:
    """Each of `operations` takes the response body's `pointer` as its path parameter `parameter`."""
    return {operation: (parameter, pointer) for operation in operations}


# Create responses → the operations that take the created object, with the path parameter each
# one reads from the response body.
LINKS: dict[str, dict[str, tuple[str, str]]] = {
    "create_category": {
        **_taking("category_id", "id", "get_category", "update_category", "delete_category"),
        **_taking("categoryId", "id", "get_pims_products", "get_pims_products_localized"),
    },
    "create_product": _taking(
        "product_id",
        "id",
        "get_product",
        "update_product",
        "delete_product",
        "product_history",
        "revert_product",
    ),
    "bulk_upsert_products": _taking("request_id", "request_id", "revert_bulk"),
    "create_view": _taking("view_id", "id", "get_view", "update_view", "delete_view"),
    "create_segment": _taking(
        "segment_id",
        "id",
        "get_segment",
        "update_segment",
        "delete_segment",
        "compute_segment",
        "list_segment_members",
    ),
    "upload_import_csv": _taking(
        "job_id",
        "job_id",
        "get_import_job",
        "confirm_import_job",
        "delete_import_job",
        "download_import_errors",
        "revert_import",
    ),
    "create_api_key": _taking("key_id", "id", "revoke_api_key"),
    "create_webhook": _taking(
        "webhook_id",
        "id",
        "get_webhook",
        "update_webhook",
        "delete_webhook",
        "rotate_secret",
        "ping",
        "list_deliveries",
        "replay",
    ),
}

# Example values of path parameters that no link fills (and illustrative ones for those a link does).
PATH_EXAMPLES = {
    "locale": "de-de",
    "category_id": 1,
    "categoryId": 1,
    "product_id": 1,
    "view_id": 1,
    "segment_id": 1,
    "key_id": 1,
    "webhook_id": 1,
    "job_id": "0b5f3b3e-7c1e-4f38-9d3c-5a4f2c1d9e10",
    "request_id": "6f1c2d3e4b5a69788796a5b4c3d2e1f0",
}


# Models the document names that no route's signature carries (a body documented but checked by
# hand): added to the components.
DOCUMENTED_MODELS: list[type[BaseModel]] = [BulkItem]


def _add_components(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    for model in DOCUMENTED_MODELS:
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema


def _merge_io_twins(schema: dict[str, Any]) -> None:
    """One component for a recursive model whose `-Input` and `-Output` schemas (pydantic splits the
    models of a recursive type used in requests and answers) differ only in those names: the
    segment DSL's `Group` and `Negation`, so that a definition read back is the type sent."""
    components = schema["components"]["schemas"]
    twins = [name[: -len("-Input")] for name in components if name.endswith("-Input")]

    def renamed(node: Any, suffix: str) -> Any:
        text = json.dumps(node)
        for name in twins:
            text = text.replace(
                f'"#/components/schemas/{name}{suffix}"', f'"#/components/schemas/{name}"'
            )
        return json.loads(text)

    mergeable = [
        name
        for name in twins
        if renamed(components[f"{name}-Input"], "-Input")
        == renamed(components.get(f"{name}-Output"), "-Output")
    ]
    if len(mergeable) != len(twins):
        return  # a real difference: keep both
    for name in twins:
        components[name] = renamed(components.pop(f"{name}-Input"), "-Input")
        del components[f"{name}-Output"]
    for suffix in ("-Input", "-Output"):
        schema["paths"] = renamed(schema["paths"], suffix)
        schema["components"] = renamed(schema["components"], suffix)


def _recorded_responses() -> dict[str, dict[str, Any]]:
    try:
        return json.loads(RESPONSES_FILE.read_text())
    except FileNotFoundError:
        return {}


def _auto_summary(operation_id: str) -> str:
    return operation_id.replace("_", " ").title()


def document_tour(schema: dict[str, Any], settings: Settings) -> None:
    """Add servers, tags, summaries, examples, the tour's order and links to a built document."""
    servers = [{"url": "/", "description": "the host serving this document"}]
    if settings.public_url:
        servers.append({"url": settings.public_url.rstrip("/"), "description": "public URL"})
    schema["servers"] = servers
    schema["tags"] = TAGS
    _add_components(schema)
    _merge_io_twins(schema)
    operations = {
        operation["operationId"]: operation
        for path_item in schema["paths"].values()
        for operation in path_item.values()
    }
    recorded = _recorded_responses()
    for order, step in enumerate(TOUR, start=1):
        operation = operations[step.operation]
        operation[ORDER_EXTENSION] = order
        if operation.get("summary") in (None, _auto_summary(step.operation)):
            operation["summary"] = step.summary
        if step.wait is not None:
            target, name, values = step.wait
            operation[WAIT_EXTENSION] = {"operationId": target, "field": name, "in": list(values)}
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] in PATH_EXAMPLES:
                parameter["example"] = PATH_EXAMPLES[parameter["name"]]
            elif parameter["in"] == "query" and parameter["name"] in step.query:
                parameter["example"] = step.query[parameter["name"]]
        if step.body is not None:
            body = operation["requestBody"]
            if not body.get("description"):
                media = next(iter(body["content"].values()))
                ref = media.get("schema", {}).get("$ref", "")
                model = schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
                body["description"] = (
                    model.get("description") or f"{step.summary}: see the example."
                )
            content = body["content"]
            if "multipart/form-data" in content:
                content["multipart/form-data"]["example"] = {"file": step.body}
            else:
                content["application/json"]["example"] = step.body
        for status, example in recorded.get(step.operation, {}).items():
            media = operation["responses"].get(status, {}).get("content", {})
            for media_type in media:
                if media_type.startswith("application/json") or media_type == "text/csv":
                    media[media_type]["example"] = example
    for source, targets in LINKS.items():
        created = next(
            response
            for status, response in operations[source]["responses"].items()
            if status.startswith("2")
        )
        created["links"] = {
            target: {
                "operationId": target,
                "parameters": {parameter: f"$response.body#/{pointer}"},
                "description": f"`{pointer}` of the answer is `{parameter}` of `{target}`",
            }
            for target, (parameter, pointer) in targets.items()
        }
