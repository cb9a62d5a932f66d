"""The PIMS compatibility route, black-box through the API: the reference example rebuilt and compared
field by field, filters, ranges, sorting, paging, views, locales, every 400, 401, tenant isolation, and
a fixed number of SQL statements per request whatever the page size."""

import pytest

from app.errors import ErrorCode
from tests.pims.conftest import bulk, make_category, make_view, put_schema

ROD = ["1.66 in (4.22 cm)", "2.625 in (6.67 cm)", "2.875 in (7.3 cm)"]
REFERENCE_FIELDS = [
    {"name": "thumbnail", "type": "string", "label": "Thumbnail", "group": "media"},
    {
        "name": "price",
        "type": "number",
        "label": "Price",
        "labels": {"de-de": "Preis"},
        "description": "Net price",
    },
    {"name": "rod_diameter", "type": "enum", "label": "Rod diameter", "options": ROD},
]

# The example response of the reference document (shared/sources/pims-v-pc.md), verbatim in the parts that are data.
REFERENCE_ATTRIBUTES = {
    "sku": "Part-number00",
    "categories": ["Category-1 Name > Category-2 Name"],
    "status": "active",
    "thumbnail": "string",
    "title": "Title PART-number00",
    "price": "100.00",
    "rod_diameter": "2.875 in (7.3 cm)",
    "variation_attributes": ["rod_diameter"],
    "variation_of": None,
    "variation_skus": [["Part-number01", "Part-number02"]],
    "variation_matrix": {
        "Part-number01": {"rod_diameter": ["1.66 in (4.22 cm)"]},
        "Part-number02": {"rod_diameter": ["2.625 in (6.67 cm)"]},
        "Part-number00": {"rod_diameter": ["2.875 in (7.3 cm)"]},
    },
}
_BASIC = [
    "type",
    "collection",
    "isUnique",
    "label",
    "validation",
    "isSearchable",
    "isIndexable",
    "isFilterable",
    "group",
    "comment",
]
_EXTENDED = [*_BASIC, "dictionaryIsStatic", "value", "isSimpleType"]
REFERENCE_DEFINITION_KEYS = {
    "status": _BASIC,
    "sku": _BASIC,
    "title": _BASIC,
    "categories": _BASIC,
    "thumbnail": _BASIC,
    "variation_skus": _EXTENDED,
    "variation_attributes": _EXTENDED,
    "variation_of": _EXTENDED,
    "price": _EXTENDED,
    "rod_diameter": [*_EXTENDED, "dictionary"],
}
REFERENCE_DICTIONARY_KEYS = {
    "visible",
    "sortingMethod",
    "columns",
    "validation",
    "sorting",
    "unique",
    "data",
}


async def _reference_catalog(client, tenant):
    await put_schema(client, tenant, REFERENCE_FIELDS)
    cat1 = await make_category(client, tenant, "Category-1 Name")
    cat2 = await make_category(client, tenant, "Category-2 Name", cat1)
    await bulk(
        client,
        tenant,
        [
            {
                "sku": "Part-number00",
                "name": "Title PART-number00",
                "categories": [cat2],
                "thumbnail": "string",
                "price": "100.00",
                "rod_diameter": ROD[2],
                "variation_attributes": ["rod_diameter"],
            },
            {
                "sku": "Part-number01",
                "name": "Title PART-number01",
                "variation_of": "Part-number00",
                "rod_diameter": ROD[0],
            },
            {
                "sku": "Part-number02",
                "name": "Title PART-number02",
                "variation_of": "Part-number00",
                "rod_diameter": ROD[1],
            },
        ],
    )
    return cat1, cat2


async def _get(client, tenant, url, role="viewer", expect=200, headers=None, **params):
    response = await client.get(
        url, params=params, headers={**tenant.headers(role), **(headers or {})}
    )
    assert response.status_code == expect, response.text
    return response.json()


def _skus(body):
    return [p["sku"] for p in body["products"]]


async def test_reference_example_rebuilt_field_by_field(client, tenant):
    cat1, _cat2 = await _reference_catalog(client, tenant)
    # the reference's request shape: a category (here the parent of the product's one) plus a price range
    body = await _get(
        client,
        tenant,
        f"/api/en-us/v/pc/{cat1}/",
        filters="price",
        price="100.00;;1000.00",
        pageSize=2,
        pageNum=1,
    )

    assert list(body) == ["products", "definition", "status", "sku_count"]
    assert body["status"] == "OK" and body["sku_count"] == 1
    [product] = body["products"]
    assert list(product) == ["data", "sku"] and list(product["data"]) == ["attributes"]
    assert product["sku"] == "Part-number00"
    attributes = product["data"]["attributes"]
    assert set(attributes) == set(REFERENCE_ATTRIBUTES)
    for key, expected in REFERENCE_ATTRIBUTES.items():
        assert attributes[key] == expected, key
    assert list(attributes["variation_matrix"]) == [
        "Part-number01",
        "Part-number02",
        "Part-number00",
    ]

    definition = body["definition"]
    assert set(REFERENCE_DEFINITION_KEYS) <= set(definition)
    assert set(definition) - set(REFERENCE_DEFINITION_KEYS) == {
        "variation_matrix"
    }  # defined too: it is returned
    for name, keys in REFERENCE_DEFINITION_KEYS.items():
        assert set(keys) <= set(definition[name]), name
        for key in keys:
            value = definition[name][key]
            if key in ("label", "comment"):
                assert list(value) == ["en-us"] and isinstance(value["en-us"], str), (name, key)
            elif key == "dictionary":
                assert set(value) == REFERENCE_DICTIONARY_KEYS
            else:
                assert isinstance(value, str), (name, key)
        for flag in ("collection", "isUnique", "isSearchable", "isIndexable", "isFilterable"):
            assert definition[name][flag] in ("0", "1"), (name, flag)
    rod = definition["rod_diameter"]
    assert (
        rod["type"] == "enum"
        and rod["dictionaryIsStatic"] == "1"
        and rod["label"] == {"en-us": "Rod diameter"}
    )
    assert rod["dictionary"]["data"] == ROD and rod["dictionary"]["columns"] == ["value"]
    assert rod["dictionary"]["visible"] == [1] and rod["dictionary"]["unique"] == [1]
    assert definition["price"]["type"] == "number" and definition["price"]["comment"] == {
        "en-us": "Net price"
    }
    assert (
        definition["sku"]["isUnique"] == "1"
        and definition["status"]["validation"] == "^(active|inactive|deleted)$"
    )
    assert (
        definition["categories"]["collection"] == "1"
        and definition["variation_skus"]["collection"] == "1"
    )
    assert definition["thumbnail"]["group"] == "media" and definition["sku"]["group"] == "system"

    # the whole catalog: the variations are products too; each points to its parent
    everything = await _get(client, tenant, "/api/en-us/v/pc/0/", sort="sku|asc")
    assert _skus(everything) == ["Part-number00", "Part-number01", "Part-number02"]
    child = everything["products"][1]["data"]["attributes"]
    assert child["variation_of"] == "Part-number00" and child["variation_attributes"] == [
        "rod_diameter"
    ]
    assert child["variation_skus"] == [[]] and child["variation_matrix"] == {
        "Part-number01": {"rod_diameter": [ROD[0]]}
    }
    assert child["categories"] == [] and child["price"] is None and child["thumbnail"] is None


async def test_variations_are_always_current(client, tenant):
    await _reference_catalog(client, tenant)
    url = "/v/pc/0/"
    params = {"filters": "sku", "sku": "Part-number00"}
    await bulk(
        client,
        tenant,
        [
            {
                "sku": "Part-number03",
                "name": "t3",
                "variation_of": "Part-number00",
                "rod_diameter": ROD[0],
            }
        ],
    )
    attributes = (await _get(client, tenant, url, **params))["products"][0]["data"]["attributes"]
    assert attributes["variation_skus"] == [["Part-number01", "Part-number02", "Part-number03"]]
    assert attributes["variation_matrix"]["Part-number03"] == {"rod_diameter": [ROD[0]]}
    # a deleted variation leaves the family; a changed value shows at once
    await bulk(
        client,
        tenant,
        [
            {"sku": "Part-number01", "status": "deleted"},
            {"sku": "Part-number02", "rod_diameter": ROD[2]},
        ],
    )
    attributes = (await _get(client, tenant, url, **params))["products"][0]["data"]["attributes"]
    assert attributes["variation_skus"] == [["Part-number02", "Part-number03"]]
    assert attributes["variation_matrix"]["Part-number02"] == {"rod_diameter": [ROD[2]]}
    # a product outside any family has no variation keys
    await bulk(client, tenant, [{"sku": "Plain", "name": "plain"}])
    plain = (await _get(client, tenant, url, filters="sku", sku="Plain"))["products"][0]["data"][
        "attributes"
    ]
    assert not any(key.startswith("variation_") for key in plain)


FIELDS = [
    {"name": "brand", "type": "string"},
    {"name": "price", "type": "number"},
    {"name": "stock", "type": "integer"},
    {"name": "size", "type": "string"},
    {"name": "tags", "type": "array"},
    {"name": "color", "type": "enum", "options": ["red", "green", "blue"]},
    {"name": "launch", "type": "date"},
    {"name": "eco", "type": "boolean"},
]


async def _filter_catalog(client, tenant):
    await put_schema(client, tenant, FIELDS)
    men = await make_category(client, tenant, "Men")
    shoes = await make_category(client, tenant, "Shoes", men)
    women = await make_category(client, tenant, "Women")
    await bulk(
        client,
        tenant,
        [
            {
                "sku": "A",
                "name": "Alpha",
                "brand": "Nike",
                "price": 9,
                "stock": 5,
                "size": "9",
                "tags": ["run", "road"],
                "color": "red",
                "launch": "2024-01-05",
                "eco": True,
                "categories": [shoes],
            },
            {
                "sku": "B",
                "name": "Bravo",
                "brand": "Adidas",
                "price": 100,
                "stock": 0,
                "size": "10",
                "tags": ["trail"],
                "color": "green",
                "launch": "2024-03-01",
                "eco": False,
                "categories": [men],
            },
            {
                "sku": "C",
                "name": "Charlie",
                "brand": "Puma",
                "price": 12.5,
                "size": "L",
                "tags": ["run"],
                "color": "blue",
                "categories": [women],
            },
            {
                "sku": "D",
                "name": "Delta",
                "brand": "Nike",
                "price": 1000.0,
                "stock": 12,
                "categories": [women, shoes],
            },
            {"sku": "E", "name": "Echo", "brand": "Nike", "price": 50, "status": "deleted"},
            {"sku": "F", "name": "Foxtrot", "brand": "Asics", "status": "inactive"},
        ],
    )
    return men, shoes, women


async def test_filters_ranges_sort_and_paging(client, tenant):
    men, shoes, women = await _filter_catalog(client, tenant)

    async def skus(url="/v/pc/0/", **params):
        return _skus(await _get(client, tenant, url, **params))

    assert await skus() == ["A", "B", "C", "D", "F"]  # deleted left out
    assert await skus(filters="brand", brand="Nike|Puma") == ["A", "C", "D"]
    assert await skus(filters="brand,price", brand="Nike|Puma", price="10;;1000") == ["C", "D"]
    assert await skus(filters="price", price="12.5;;100") == [
        "B",
        "C",
    ]  # inclusive, numbers as numbers
    assert await skus(filters="price", price=";;12.50") == ["A", "C"]
    assert await skus(filters="price", price="100.00;;") == ["B", "D"]
    assert await skus(filters="price", price="100|9") == [
        "A",
        "B",
    ]  # any-of on a number compares numbers
    assert await skus(filters="stock", stock=".5;;12") == ["A", "D"]
    assert await skus(filters="size", size="9;;10") == [
        "A",
        "B",
    ]  # numeric text in a string field compares as a number
    assert await skus(filters="tags", tags="run") == ["A", "C"]
    assert await skus(filters="tags", tags="trail|road") == ["A", "B"]
    assert await skus(filters="color", color="green|blue") == ["B", "C"]
    assert await skus(filters="launch", launch="2024-03-01") == ["B"]
    assert await skus(filters="eco", eco="1") == ["A"] and await skus(
        filters="eco", eco="false"
    ) == ["B"]
    assert await skus(filters="sku", sku="A|D|Z") == ["A", "D"]
    assert await skus(filters="title", title="Bravo|Delta") == ["B", "D"]
    assert await skus(filters="name", name="Bravo") == ["B"]
    assert await skus(filters="status", status="deleted|inactive") == [
        "E",
        "F",
    ]  # explicit status: deleted included
    assert await skus(filters="status", status="active") == ["A", "B", "C", "D"]
    assert await skus(filters="categories", categories="Men") == [
        "A",
        "B",
        "D",
    ]  # a path and its descendants
    assert await skus(filters="categories", categories="Men > Shoes|Women") == ["A", "C", "D"]
    assert await skus(filters="brand", brand="nobody") == []

    # the category path parameter: the category and its descendants
    assert await skus(f"/v/pc/{men}/") == ["A", "B", "D"]
    assert await skus(f"/v/pc/{shoes}/") == ["A", "D"]
    assert await skus(f"/v/pc/{women}/", filters="brand", brand="Nike") == ["D"]

    # sorting: type-aware, missing values last, ties by creation order
    assert await skus(sort="price|desc") == ["D", "B", "C", "A", "F"]
    assert await skus(sort="price|asc") == ["A", "C", "B", "D", "F"]
    assert await skus(sort="title|desc") == ["F", "D", "C", "B", "A"]
    assert await skus(sort="launch|asc") == ["A", "B", "C", "D", "F"]
    assert await skus(sort="brand|asc", filters="brand", brand="Nike|Adidas") == ["B", "A", "D"]

    # paging: sku_count counts every match
    page = await _get(client, tenant, "/v/pc/0/", sort="sku|desc", pageSize=2, pageNum=2)
    assert _skus(page) == ["C", "B"] and page["sku_count"] == 5
    page = await _get(client, tenant, "/v/pc/0/", pageSize=2, pageNum=3)
    assert _skus(page) == ["F"] and page["sku_count"] == 5
    past = await _get(client, tenant, "/v/pc/0/", pageSize=2, pageNum=4)
    assert past["products"] == [] and past["sku_count"] == 5
    assert len((await _get(client, tenant, "/v/pc/0/"))["products"]) == 5  # default page size 50
    # the path without its trailing slash is served too
    assert _skus(await _get(client, tenant, "/v/pc/0", filters="sku", sku="A")) == ["A"]


async def test_values_are_strings(client, tenant):
    await _filter_catalog(client, tenant)
    body = await _get(client, tenant, "/v/pc/0/", sort="sku|asc")
    by_sku = {p["sku"]: p["data"]["attributes"] for p in body["products"]}
    a, c, d = by_sku["A"], by_sku["C"], by_sku["D"]
    assert a["price"] == "9.00" and c["price"] == "12.50" and d["price"] == "1000.00"
    assert a["stock"] == "5" and by_sku["B"]["stock"] == "0" and c["stock"] is None
    assert a["eco"] == "1" and by_sku["B"]["eco"] == "0"
    assert a["tags"] == ["run", "road"] and d["tags"] == []
    assert a["launch"] == "2024-01-05" and a["color"] == "red" and a["size"] == "9"
    assert d["categories"] == ["Women", "Men > Shoes"]
    assert set(a) == {"sku", "categories", "status", "title", *(f["name"] for f in FIELDS)}


async def test_schema_fields_named_like_builtins_are_shadowed(client, tenant):
    await put_schema(
        client,
        tenant,
        [{"name": "title", "type": "string"}, {"name": "variation_matrix"}, {"name": "brand"}],
    )
    await bulk(
        client,
        tenant,
        [
            {
                "sku": "S1",
                "name": "The name",
                "title": "A data title",
                "variation_matrix": "x",
                "brand": "B",
            }
        ],
    )
    body = await _get(client, tenant, "/v/pc/0/")
    attributes = body["products"][0]["data"]["attributes"]
    assert attributes == {
        "sku": "S1",
        "categories": [],
        "status": "active",
        "title": "The name",
        "brand": "B",
    }
    assert body["definition"]["title"]["group"] == "system"
    assert _skus(await _get(client, tenant, "/v/pc/0/", filters="title", title="The name")) == [
        "S1"
    ]
    await _get(
        client, tenant, "/v/pc/0/", expect=400, filters="variation_matrix", variation_matrix="x"
    )


async def test_api_view_and_locale(client, tenant):
    await _reference_catalog(client, tenant)
    await make_view(client, tenant, "prices", ["price", "sku", "nonexistent"])
    body = await _get(
        client,
        tenant,
        "/v/pc/0/",
        headers={"ApiView": "prices"},
        filters="sku",
        sku="Part-number00",
    )
    attributes = body["products"][0]["data"]["attributes"]
    assert set(attributes) == {
        "sku",
        "categories",
        "status",
        "title",
        "price",
        "variation_attributes",
        "variation_of",
        "variation_skus",
        "variation_matrix",
    }
    # the matrix still describes the family by its variation attributes
    assert attributes["variation_matrix"]["Part-number00"] == {"rod_diameter": [ROD[2]]}
    assert set(body["definition"]) == {
        "sku",
        "categories",
        "status",
        "title",
        "price",
        "variation_attributes",
        "variation_of",
        "variation_skus",
        "variation_matrix",
    }

    # without the header: every attribute, until a default view exists
    everything = (await _get(client, tenant, "/v/pc/0/"))["products"][0]["data"]["attributes"]
    assert {"thumbnail", "price", "rod_diameter"} <= set(everything)
    await make_view(client, tenant, "thumbs", ["thumbnail"], is_default=True)
    default = (await _get(client, tenant, "/v/pc/0/"))["products"][0]["data"]["attributes"]
    assert "thumbnail" in default and "price" not in default and "rod_diameter" not in default
    explicit = (await _get(client, tenant, "/v/pc/0/", headers={"ApiView": "prices"}))["products"][
        0
    ]["data"]["attributes"]
    assert "price" in explicit and "thumbnail" not in explicit

    # labels in the path's locale, with fallback to the default label; /v/pc uses the tenant's default locale
    localized = await _get(client, tenant, "/api/de-de/v/pc/0/", headers={"ApiView": "prices"})
    assert localized["definition"]["price"]["label"] == {"de-de": "Preis"}
    assert localized["definition"]["sku"]["label"] == {"de-de": "SKU"}
    assert (await _get(client, tenant, "/api/fr-fr/v/pc/0/", headers={"ApiView": "prices"}))[
        "definition"
    ]["price"]["label"] == {"fr-fr": "Price"}
    assert (await _get(client, tenant, "/api/DE-DE/v/pc/0/", headers={"ApiView": "prices"}))[
        "definition"
    ]["price"]["label"] == {"de-de": "Preis"}
    assert (await _get(client, tenant, "/v/pc/0/", headers={"ApiView": "prices"}))["definition"][
        "price"
    ]["label"] == {"en-us": "Price"}
    await put_schema(client, tenant, REFERENCE_FIELDS, default_locale="de-de")
    assert (await _get(client, tenant, "/v/pc/0/", headers={"ApiView": "prices"}))["definition"][
        "price"
    ]["label"] == {"de-de": "Preis"}


BAD_REQUESTS = [
    ("/v/pc/0/", {"filters": "brand"}, {}),  # listed without its parameter
    ("/v/pc/0/", {"filters": "nope", "nope": "1"}, {}),  # unknown attribute
    ("/v/pc/0/", {"filters": "pageSize", "pageSize": "1"}, {}),
    ("/v/pc/0/", {"filters": "brand,", "brand": "x"}, {}),  # empty name
    ("/v/pc/0/", {"brand": "Nike"}, {}),  # not listed in filters
    ("/v/pc/0/", {"filters": "price", "price": "abc;;1"}, {}),
    ("/v/pc/0/", {"filters": "price", "price": "-1;;5"}, {}),
    ("/v/pc/0/", {"filters": "price", "price": "1.2.3;;"}, {}),
    ("/v/pc/0/", {"filters": "price", "price": "1;;2;;3"}, {}),
    ("/v/pc/0/", {"filters": "price", "price": ";;"}, {}),
    ("/v/pc/0/", {"filters": "price", "price": "5;;1"}, {}),
    ("/v/pc/0/", {"filters": "price", "price": "1e3;;"}, {}),
    ("/v/pc/0/", {"filters": "price", "price": "cheap"}, {}),  # any-of on a number must be numbers
    ("/v/pc/0/", {"filters": "brand", "brand": "A||B"}, {}),
    ("/v/pc/0/", {"filters": "brand", "brand": ""}, {}),
    ("/v/pc/0/", {"filters": "color", "color": "purple"}, {}),
    ("/v/pc/0/", {"filters": "launch", "launch": "1;;2"}, {}),  # ranges are numeric
    ("/v/pc/0/", {"filters": "launch", "launch": "soon"}, {}),
    ("/v/pc/0/", {"filters": "sku", "sku": "1;;2"}, {}),
    ("/v/pc/0/", {"filters": "status", "status": "gone"}, {}),
    ("/v/pc/0/", {"filters": "eco", "eco": "maybe"}, {}),
    ("/v/pc/0/", {"sort": "sku"}, {}),
    ("/v/pc/0/", {"sort": "sku|up"}, {}),
    ("/v/pc/0/", {"sort": "sku|ASC"}, {}),
    ("/v/pc/0/", {"sort": "sku|asc\n"}, {}),
    ("/v/pc/0/", {"sort": "nope|asc"}, {}),
    ("/v/pc/0/", {"sort": "categories|asc"}, {}),
    ("/v/pc/0/", {"pageSize": "0"}, {}),
    ("/v/pc/0/", {"pageSize": "201"}, {}),
    ("/v/pc/0/", {"pageSize": "ten"}, {}),
    ("/v/pc/0/", {"pageNum": "0"}, {}),
    ("/v/pc/0/", {"pageNum": "99999999999999999999999"}, {}),
    ("/v/pc/abc/", {}, {}),
    ("/v/pc/-1/", {}, {}),
    ("/v/pc/99999999999999999999/", {}, {}),
    ("/api/e/v/pc/0/", {}, {}),  # a malformed locale
    ("/api/en_us!/v/pc/0/", {}, {}),
    ("/v/pc/0/", {}, {"ApiView": "no such view"}),
    ("/v/pc/0/", {}, {"ApiView": "x" * 300}),
]


async def test_every_bad_request_is_400_in_the_pims_shape(client, tenant):
    await put_schema(client, tenant, FIELDS)
    for url, params, headers in BAD_REQUESTS:
        response = await client.get(url, params=params, headers={**tenant.viewer, **headers})
        assert response.status_code == 400, (
            url,
            params,
            headers,
            response.status_code,
            response.text,
        )
        body = response.json()
        assert body["status"] == "ERROR" and isinstance(body["detail"], str) and body["detail"], (
            body
        )
        assert set(body) == {"status", "detail", "code"}
        assert body["code"] in {code.value for code in ErrorCode}, body
    # a repeated parameter is ambiguous
    response = await client.get("/v/pc/0/?filters=brand&brand=a&brand=b", headers=tenant.viewer)
    assert response.status_code == 400 and response.json()["status"] == "ERROR"


async def test_unknown_category_is_404_and_credentials_are_required(client, tenant):
    response = await client.get("/v/pc/987654321/", headers=tenant.viewer)
    assert response.status_code == 404
    assert response.json() == {
        "status": "ERROR",
        "detail": "Category 987654321 not found",
        "code": "not_found",
    }
    for headers in ({}, {"X-API-Key": "pim_not-a-real-key"}, {"Authorization": "Bearer not.a.jwt"}):
        response = await client.get("/api/en-us/v/pc/0/", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["status"] == "ERROR" and response.json()["detail"]
        assert "www-authenticate" in response.headers
    # every role may read it: a viewer key is PIMS's "Data Viewer"
    for role in ("viewer", "editor", "admin"):
        assert (await client.get("/v/pc/0/", headers=tenant.headers(role))).status_code == 200


async def test_another_tenant_sees_nothing(client, tenant, other_tenant):
    cat1, cat2 = await _reference_catalog(client, tenant)
    await put_schema(client, other_tenant, REFERENCE_FIELDS)
    for category in (cat1, cat2):
        response = await client.get(f"/v/pc/{category}/", headers=other_tenant.viewer)
        assert response.status_code == 404 and response.json()["status"] == "ERROR"
    body = await _get(client, other_tenant, "/api/en-us/v/pc/0/")
    assert body["products"] == [] and body["sku_count"] == 0
    body = await _get(client, other_tenant, "/v/pc/0/", filters="sku", sku="Part-number00")
    assert body["products"] == []
    # the other tenant's view names are not visible either
    await make_view(client, tenant, "mine", ["price"])
    response = await client.get("/v/pc/0/", headers={**other_tenant.viewer, "ApiView": "mine"})
    assert response.status_code == 400
    # its own products with the same SKU do not join the first tenant's family
    await bulk(
        client,
        other_tenant,
        [{"sku": "Part-number09", "name": "x", "variation_of": "Part-number00"}],
    )
    mine = await _get(client, tenant, "/v/pc/0/", filters="sku", sku="Part-number00")
    assert mine["products"][0]["data"]["attributes"]["variation_skus"] == [
        ["Part-number01", "Part-number02"]
    ]


@pytest.mark.parametrize("families", [60])
async def test_statements_per_request_do_not_depend_on_page_size(
    client, tenant, statements, families
):
    await put_schema(client, tenant, REFERENCE_FIELDS)
    category = await make_category(client, tenant, "Rods")
    products = []
    for i in range(families):
        products.append(
            {
                "sku": f"P{i:03}",
                "name": f"Parent {i}",
                "price": i,
                "rod_diameter": ROD[0],
                "variation_attributes": ["rod_diameter"],
                "categories": [category],
            }
        )
        products += [
            {
                "sku": f"P{i:03}-{j}",
                "name": f"Variation {i}/{j}",
                "variation_of": f"P{i:03}",
                "rod_diameter": ROD[j],
                "categories": [category],
            }
            for j in (1, 2)
        ]
    await bulk(client, tenant, products)
    url = f"/api/en-us/v/pc/{category}/"
    params = {
        "filters": "rod_diameter,price",
        "rod_diameter": ROD[0],
        "price": "0;;1000",
        "sort": "price|asc",
    }

    counts = {}
    for page_size in (1, 50):
        statements.clear()
        body = await _get(client, tenant, url, pageSize=page_size, **params)
        await statements.settle()
        assert len(body["products"]) == page_size and body["sku_count"] == families
        assert all(len(p["data"]["attributes"]["variation_skus"][0]) == 2 for p in body["products"])
        counts[page_size] = (
            len(statements.orm),
            len(statements.driver),
            len(statements.data_statements),
        )
    print(f"\nSQL statements per request (SQLAlchemy, asyncpg, data statements): {counts}")
    assert counts[1] == counts[50]
    # context, count and page (the API key was looked up once and is cached); nothing per product
    assert counts[50][2] == 3, statements.orm + statements.driver


async def test_openapi_declares_the_route(client):
    spec = (await client.get("/openapi.json")).json()
    for path, operation_id in (
        ("/api/{locale}/v/pc/{categoryId}/", "get_pims_products_localized"),
        ("/v/pc/{categoryId}/", "get_pims_products"),
    ):
        operation = spec["paths"][path]["get"]
        assert operation["operationId"] == operation_id
        # no 422: parameter problems are 400 (429 and 503: rate limits and the database being down,
        # declared for every authenticated route; 431: request headers too large, for every route)
        assert set(operation["responses"]) == {"200", "400", "401", "404", "429", "431", "503"}
        assert operation["responses"]["429"]["content"]["application/json"]["schema"][
            "$ref"
        ].endswith("/PimsError")
        assert operation["responses"]["200"]["content"]["application/json"]["schema"][
            "$ref"
        ].endswith("/PimsProducts")
        assert operation["responses"]["400"]["content"]["application/json"]["schema"][
            "$ref"
        ].endswith("/PimsError")
        names = {p["name"] for p in operation["parameters"]}
        assert {"categoryId", "filters", "sort", "pageSize", "pageNum", "ApiView"} <= names
        assert operation["security"]
    assert "locale" in {
        p["name"] for p in spec["paths"]["/api/{locale}/v/pc/{categoryId}/"]["get"]["parameters"]
    }
