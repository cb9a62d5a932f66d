"""Every flow of the API through the Python SDK that openapi-python-client generates (`pim_client`),
with its typed models only: no `from_dict` on a hand-written dict, every answer narrowed to its
model. `tests/hardening/test_sdk.py` runs `run()` against a live server and checks this file with
`mypy --strict` against the generated package, so a document change that makes the SDK untyped or
wrong fails there.

    run(base_url, admin_api_key)
"""

import io
import time
from typing import Any, TypeVar

import httpx
from pim_client import AuthenticatedClient
from pim_client.api.auth import create_api_key, list_api_keys, revoke_api_key
from pim_client.api.categories import (
    create_category,
    get_category,
    list_categories,
    update_category,
)
from pim_client.api.changes import (
    list_changes,
    product_history,
    revert_bulk,
    revert_import,
    revert_product,
)
from pim_client.api.imports import (
    confirm_import_job,
    get_import_job,
    list_import_jobs,
    upload_import_csv,
)
from pim_client.api.pims import get_pims_products, get_pims_products_localized
from pim_client.api.products import (
    bulk_upsert_products,
    create_product,
    get_facets,
    get_product,
    list_products,
    search_products,
    update_product,
)
from pim_client.api.schema import replace_product_schema
from pim_client.api.segments import (
    compute_segment,
    create_segment,
    get_segment,
    list_segment_members,
    preview_segment,
    update_segment,
)
from pim_client.api.views import create_view, get_view, update_view
from pim_client.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPage,
    BulkIn,
    BulkItem,
    BulkResponse,
    CategoryIn,
    CategoryInLabels,
    CategoryOut,
    CategoryPage,
    CategoryPatch,
    ChangeOp,
    ChangesPage,
    ComputeQueued,
    Condition,
    ConfirmIn,
    ConfirmInMappingType0,
    ErrorBody,
    Facets,
    FieldDef,
    FieldDefLabels,
    FieldType,
    GetFacetsFieldFilters,
    GetPimsProductsAttributeFilters,
    Group,
    GroupMatch,
    HistoryPage,
    ImportJobOut,
    ImportJobPage,
    ImportStatus,
    ListProductsFieldFilters,
    MembersPage,
    Negation,
    Op,
    PimsProducts,
    Preview,
    ProductIn,
    ProductInData,
    ProductOut,
    ProductPage,
    ProductPatch,
    ProductPatchData,
    ProductSearchIn,
    ProductSearchPage,
    ProductStatus,
    RevertIn,
    RevertOut,
    Role,
    SchemaIn,
    SchemaOut,
    SegmentIn,
    SegmentOut,
    SegmentPatch,
    SegmentStatus,
    UploadImportCsvBody,
    ViewIn,
    ViewOut,
    ViewPatch,
)
from pim_client.types import File

T = TypeVar("T")


def ok(answer: object, model: type[T]) -> T:
    """The answer as its success model (an error model or None fails with what it says)."""
    assert isinstance(answer, model), answer
    return answer


def labels(**by_locale: str) -> FieldDefLabels:
    made = FieldDefLabels()
    for locale, text in by_locale.items():
        made[locale.replace("_", "-")] = text
    return made


def wait_until(read: Any, done: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.2)


def run(base_url: str, api_key: str) -> dict[str, int]:
    client = AuthenticatedClient(
        base_url=base_url,
        token=api_key,
        prefix="",
        auth_header_name="X-API-Key",
        raise_on_unexpected_status=True,
        timeout=httpx.Timeout(30),
    )
    with client:
        # the schema
        schema = replace_product_schema.sync(
            client=client,
            body=SchemaIn(
                fields=[
                    FieldDef(name="brand", type_=FieldType.STRING, labels=labels(de_de="Marke")),
                    FieldDef(name="price", type_=FieldType.NUMBER),
                    FieldDef(name="color", type_=FieldType.ENUM, options=["red", "blue"]),
                    FieldDef(name="tags", type_=FieldType.ARRAY),
                ],
                default_locale="en-us",
            ),
        )
        assert [f.name for f in ok(schema, SchemaOut).fields] == ["brand", "price", "color", "tags"]

        # categories
        shoe_labels = CategoryInLabels()
        shoe_labels["de-de"] = "Schuhe"
        shoes = ok(
            create_category.sync(client=client, body=CategoryIn(name="Shoes", labels=shoe_labels)),
            CategoryOut,
        )
        running = ok(
            create_category.sync(
                client=client, body=CategoryIn(name="Running", parent_id=shoes.id)
            ),
            CategoryOut,
        )
        assert running.path == "Shoes > Running"
        renamed = ok(
            update_category.sync(running.id, client=client, body=CategoryPatch(position=3)),
            CategoryOut,
        )
        assert renamed.position == 3
        assert (
            ok(get_category.sync(shoes.id, client=client), CategoryOut).labels["de-de"] == "Schuhe"
        )
        assert {
            c.id for c in ok(list_categories.sync(client=client, limit=10), CategoryPage).results
        } == {
            shoes.id,
            running.id,
        }

        # products: create (typed data), read, merge-patch, bulk (typed items)
        data = ProductInData()
        data["brand"] = "Nike"
        data["price"] = "129.90"  # coerced to the field's type
        data["color"] = "red"
        data["tags"] = ["running"]
        created = create_product.sync_detailed(
            client=client,
            body=ProductIn(sku="NK-AM90", name="Air Max 90", categories=[running.id], data=data),
        )
        assert created.status_code == 201 and created.headers["Location"].endswith("/")
        product = ok(created.parsed, ProductOut)
        assert product.data["price"] == 129.9 and product.status == ProductStatus.ACTIVE
        again = create_product.sync(client=client, body=ProductIn(sku="NK-AM90", name="again"))
        assert isinstance(again, ErrorBody) and again.code == "conflict"
        patch = ProductPatchData()
        patch["price"] = 119.9
        patched = ok(
            update_product.sync(product.id, client=client, body=ProductPatch(data=patch)),
            ProductOut,
        )
        assert patched.data["price"] == 119.9
        items = []
        for sku, brand, price in (("AD-SAMBA", "Adidas", 99), ("NK-PEG", "Nike", 89.5)):
            item = BulkItem(sku=sku, name=sku.title(), status=ProductStatus.ACTIVE)
            item["brand"] = brand
            item["price"] = price
            items.append(item)
        bulk = ok(
            bulk_upsert_products.sync(client=client, body=BulkIn(products=items)), BulkResponse
        )
        assert (bulk.created, bulk.failed) == (2, 0) and isinstance(bulk.request_id, str)
        assert ok(get_product.sync(product.id, client=client), ProductOut).sku == "NK-AM90"

        # lists: dynamic filters (an exploded object), cursors, a search in the DSL, facets
        filters = ListProductsFieldFilters()
        filters["brand"] = "Nike"
        page = ok(
            list_products.sync(client=client, ordering="-price", field_filters=filters), ProductPage
        )
        assert page.count == 2 and [p.sku for p in page.results] == ["NK-AM90", "NK-PEG"]
        first = ok(list_products.sync(client=client, ordering="sku", limit=2), ProductPage)
        assert isinstance(first.next_cursor, str)
        rest = ok(
            list_products.sync(client=client, ordering="sku", cursor=first.next_cursor), ProductPage
        )
        assert [p.sku for p in first.results + rest.results] == ["AD-SAMBA", "NK-AM90", "NK-PEG"]
        nike_or_cheap = Group(
            match=GroupMatch.ANY,
            conditions=[
                Condition(field="brand", op=Op.EQ, value="Adidas"),
                Negation(not_=Condition(field="price", op=Op.GTE, value=100)),
            ],
        )
        found = ok(
            search_products.sync(
                client=client, body=ProductSearchIn(where=nike_or_cheap, ordering="sku")
            ),
            ProductSearchPage,
        )
        assert [p.sku for p in found.results] == ["AD-SAMBA", "NK-PEG"]
        tagged = GetFacetsFieldFilters()
        tagged["tags"] = "running"
        facets = ok(get_facets.sync(client=client, field_filters=tagged), Facets)
        assert facets.total == 1 and [(v.value, v.count) for v in facets.facets["brand"]] == [
            ("Nike", 1)
        ]

        # views
        view = ok(
            create_view.sync(client=client, body=ViewIn(name="web", attributes=["brand"])), ViewOut
        )
        update_view.sync(view.id, client=client, body=ViewPatch(attributes=["brand", "price"]))
        assert ok(get_view.sync(view.id, client=client), ViewOut).attributes == ["brand", "price"]

        # segments: preview, create, read back and send the definition back typed, compute, members
        definition = Group(
            match=GroupMatch.ALL,
            conditions=[
                Condition(field="brand", op=Op.EQ, value="Nike"),
                Condition(field="price", op=Op.BETWEEN, value=[100, 200]),
            ],
        )
        preview = ok(preview_segment.sync(client=client, body=definition), Preview)
        assert preview.count == 1 and preview.skus == ["NK-AM90"]
        segment = ok(
            create_segment.sync(client=client, body=SegmentIn(name="nike", definition=definition)),
            SegmentOut,
        )
        read_back = ok(get_segment.sync(segment.id, client=client), SegmentOut)
        assert isinstance(read_back.definition, Group)
        sent_back = ok(
            update_segment.sync(
                segment.id, client=client, body=SegmentPatch(definition=read_back.definition)
            ),
            SegmentOut,
        )
        assert sent_back.definition.to_dict() == read_back.definition.to_dict()
        ok(compute_segment.sync(segment.id, client=client), ComputeQueued)
        wait_until(
            lambda: ok(get_segment.sync(segment.id, client=client), SegmentOut).status,
            lambda status: status == SegmentStatus.READY,
        )
        members = ok(list_segment_members.sync(segment.id, client=client, limit=10), MembersPage)
        assert members.count == 1 and [p.sku for p in members.results] == ["NK-AM90"]

        # an import: upload, confirm the mapping, follow the job, undo it
        csv = b"sku,name,brand,price\nPU-SUEDE,Suede,Puma,75\n"
        job = ok(
            upload_import_csv.sync(
                client=client,
                body=UploadImportCsvBody(
                    file=File(payload=io.BytesIO(csv), file_name="feed.csv", mime_type="text/csv")
                ),
            ),
            ImportJobOut,
        )
        assert job.status == ImportStatus.MAPPING
        mapping = ConfirmInMappingType0()
        for header in ("sku", "name", "brand", "price"):
            mapping[header] = header
        job_id = str(job.job_id)
        ok(
            confirm_import_job.sync(job_id, client=client, body=ConfirmIn(mapping=mapping)),
            ImportJobOut,
        )
        done = wait_until(
            lambda: ok(get_import_job.sync(job_id, client=client), ImportJobOut),
            lambda job: job.status in (ImportStatus.DONE, ImportStatus.FAILED),
        )
        assert done.status == ImportStatus.DONE and done.created == 1
        assert [
            j.job_id for j in ok(list_import_jobs.sync(client=client), ImportJobPage).results
        ] == [job.job_id]

        # PIMS
        pims_filters = GetPimsProductsAttributeFilters()
        pims_filters["brand"] = "Nike|Puma"
        pims = ok(
            get_pims_products.sync(
                0, client=client, sort="sku|asc", filters="brand", attribute_filters=pims_filters
            ),
            PimsProducts,
        )
        assert [p.sku for p in pims.products] == ["NK-AM90", "NK-PEG", "PU-SUEDE"]
        localized = ok(
            get_pims_products_localized.sync("de-de", shoes.id, client=client), PimsProducts
        )
        assert localized.sku_count == 1

        # the change log and reverts
        changes = ok(list_changes.sync(client=client, op=ChangeOp.CREATED), ChangesPage)
        assert {c.sku for c in changes.results} == {"NK-AM90", "AD-SAMBA", "NK-PEG", "PU-SUEDE"}
        history = ok(product_history.sync(product.id, client=client), HistoryPage)
        first_seq = history.results[-1].seq
        reverted = ok(
            revert_product.sync(product.id, client=client, body=RevertIn(seq=first_seq)), ProductOut
        )
        assert reverted.data["price"] == 129.9
        assert ok(revert_import.sync(job.job_id, client=client), RevertOut).reverted == 1
        assert ok(revert_bulk.sync(bulk.request_id, client=client), RevertOut).reverted == 2

        # API keys
        key = ok(
            create_api_key.sync(client=client, body=ApiKeyCreate(name="ci", role=Role.VIEWER)),
            ApiKeyCreated,
        )
        assert key.id in {k.id for k in ok(list_api_keys.sync(client=client), ApiKeyPage).results}
        assert revoke_api_key.sync_detailed(key.id, client=client).status_code == 204
        return {"products": len(ok(list_products.sync(client=client), ProductPage).results)}
