"""Product schema: field model, name rules, coercion on every write path, data kept across schema changes."""

import time

import pytest

from app.catalog.fields import CoercionError, FieldDef, coerce_data, coerce_value

SCHEMA = "/api/pim/schema/"
PRODUCTS = "/api/pim/products/"


def field(name, type_="string", **extra):
    return {"name": name, "type": type_, **extra}


async def test_schema_starts_empty_and_put_replaces(client, tenant):
    empty = (await client.get(SCHEMA, headers=tenant.viewer)).json()
    assert (
        empty["fields"] == []
        and empty["default_currency"] == "USD"
        and empty["default_locale"] == "en-us"
    )
    body = {
        "fields": [
            field("brand", label="Brand", labels={"de-de": "Marke"}),
            field("price", "number"),
        ],
        "default_currency": "EUR",
        "default_locale": "de-de",
    }
    saved = await client.put(SCHEMA, json=body, headers=tenant.editor)
    assert saved.status_code == 200
    out = saved.json()
    assert [f["name"] for f in out["fields"]] == ["brand", "price"]
    assert out["fields"][0]["labels"] == {"de-de": "Marke"}
    assert out["fields"][0]["filterable"] is True and out["fields"][0]["options"] is None
    assert (
        out["default_currency"] == "EUR"
        and out["default_locale"] == "de-de"
        and out["updated_at"].endswith("Z")
    )
    again = (await client.get(SCHEMA, headers=tenant.viewer)).json()
    assert again == out


@pytest.mark.parametrize(
    "bad",
    [
        [field("Brand")],
        [field("1brand")],
        [field("sku")],
        [field("page_size")],
        [field("sort")],
        [field("a" * 64)],
        [field("brand"), field("brand")],
        [field("color", "enum")],
        [field("color", "enum", options=[])],
        [field("code", validation="([a-z")],
        [field("x", "money")],
    ],
)
async def test_invalid_schemas_are_rejected(client, tenant, bad):
    response = await client.put(SCHEMA, json={"fields": bad}, headers=tenant.editor)
    assert response.status_code == 422, bad


async def test_values_are_coerced_on_create_patch_and_bulk(client, tenant):
    fields = [
        field("price", "number"),
        field("stock", "integer"),
        field("active", "boolean"),
        field("launch", "date"),
        field("seen", "datetime"),
        field("color", "enum", options=["red", "blue"]),
        field("tags", "array"),
        field("site", "url"),
        field("code", validation="^[A-Z]{3}-\\d+$"),
    ]
    assert (
        await client.put(SCHEMA, json={"fields": fields}, headers=tenant.editor)
    ).status_code == 200
    created = await client.post(
        PRODUCTS,
        headers=tenant.editor,
        json={
            "sku": "C1",
            "name": "Chair",
            "data": {
                "price": "12.50",
                "stock": "7",
                "active": "yes",
                "launch": "2026-01-31",
                "seen": "2026-01-31T10:00:00+02:00",
                "color": "red",
                "tags": "solo",
                "site": "https://example.com/c1",
                "code": "ABC-12",
                "extra": {"kept": [1, 2]},
            },
        },
    )
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert data == {
        "price": 12.5,
        "stock": 7,
        "active": True,
        "launch": "2026-01-31",
        "seen": "2026-01-31T08:00:00Z",
        "color": "red",
        "tags": ["solo"],
        "site": "https://example.com/c1",
        "code": "ABC-12",
        "extra": {"kept": [1, 2]},
    }
    pid = created.json()["id"]
    for bad in (
        {"price": "cheap"},
        {"stock": "1.5"},
        {"active": "maybe"},
        {"launch": "31.01.2026"},
        {"color": "green"},
        {"site": "not a url"},
        {"code": "abc-1"},
        {"price": "NaN"},
    ):
        response = await client.patch(
            f"{PRODUCTS}{pid}/", json={"data": bad}, headers=tenant.editor
        )
        assert response.status_code == 400, bad
        assert list(bad)[0] in response.json()["detail"]
    patched = await client.patch(
        f"{PRODUCTS}{pid}/", json={"data": {"active": "0", "price": 3}}, headers=tenant.editor
    )
    assert patched.json()["data"]["active"] is False and patched.json()["data"]["price"] == 3
    bulk = await client.post(
        f"{PRODUCTS}bulk/",
        headers=tenant.editor,
        json={
            "products": [
                {"sku": "C2", "price": "1e2", "active": "NO", "stock": 4.0},
                {"sku": "C3", "color": "green"},
            ]
        },
    )
    assert bulk.json()["created"] == 1 and bulk.json()["failed"] == 1
    c2 = (await client.get(PRODUCTS, params={"sku": "C2"}, headers=tenant.viewer)).json()[
        "results"
    ][0]
    assert c2["data"] == {"price": 100.0, "active": False, "stock": 4}
    assert c2["name"] == "C2"  # a new product without a name takes its SKU


async def test_changing_the_schema_never_loses_data(client, tenant):
    await client.put(
        SCHEMA, json={"fields": [field("price", "number"), field("brand")]}, headers=tenant.editor
    )
    created = await client.post(
        PRODUCTS,
        json={"sku": "K1", "name": "Keep", "data": {"price": 9.5, "brand": "Acme"}},
        headers=tenant.editor,
    )
    pid = created.json()["id"]
    # drop brand, retype price to string: the stored values stay as they were
    await client.put(SCHEMA, json={"fields": [field("price")]}, headers=tenant.editor)
    assert (await client.get(f"{PRODUCTS}{pid}/", headers=tenant.viewer)).json()["data"] == {
        "price": 9.5,
        "brand": "Acme",
    }
    await client.put(SCHEMA, json={"fields": []}, headers=tenant.editor)
    assert (await client.get(f"{PRODUCTS}{pid}/", headers=tenant.viewer)).json()["data"] == {
        "price": 9.5,
        "brand": "Acme",
    }


async def test_required_fields(client, tenant):
    await client.put(
        SCHEMA, json={"fields": [field("brand", required=True)]}, headers=tenant.editor
    )
    missing = await client.post(PRODUCTS, json={"sku": "R1", "name": "R"}, headers=tenant.editor)
    assert missing.status_code == 400 and "brand" in missing.json()["detail"]
    ok = await client.post(
        PRODUCTS, json={"sku": "R1", "name": "R", "data": {"brand": "B"}}, headers=tenant.editor
    )
    assert ok.status_code == 201
    removed = await client.patch(
        f"{PRODUCTS}{ok.json()['id']}/", json={"data": {"brand": None}}, headers=tenant.editor
    )
    assert removed.status_code == 400
    bulk = await client.post(
        f"{PRODUCTS}bulk/",
        json={"products": [{"sku": "R1", "name": "renamed"}, {"sku": "R2"}]},
        headers=tenant.editor,
    )
    assert (
        bulk.json()["updated"] == 1
        and bulk.json()["failed"] == 1
        and bulk.json()["errors"][0]["sku"] == "R2"
    )


def test_coercion_unit():
    number = FieldDef(name="price", type="number")
    assert coerce_value(number, "12.50") == 12.5
    assert coerce_value(number, " 7 ") == 7
    with pytest.raises(CoercionError, match="price"):
        coerce_value(number, True)
    boolean = FieldDef(name="flag", type="boolean")
    assert [
        coerce_value(boolean, v) for v in ("true", "FALSE", "1", "0", "yes", "no", 1, False)
    ] == [True, False, True, False, True, False, True, False]
    assert coerce_value(FieldDef(name="d", type="date"), "2026-11-22") == "2026-11-22"
    assert (
        coerce_value(FieldDef(name="t", type="datetime"), "2026-11-22T13:42:00")
        == "2026-11-22T13:42:00Z"
    )
    with pytest.raises(CoercionError):
        coerce_value(FieldDef(name="i", type="integer"), "12.5")
    assert coerce_data(
        {"a": FieldDef(name="a", type="integer")}, {"a": "3", "zz": "kept", "n": None}
    ) == {"a": 3, "zz": "kept", "n": None}


async def test_unique_fields_reject_a_second_owner(client, tenant):
    await client.put(
        SCHEMA, json={"fields": [field("ean", unique=True), field("brand")]}, headers=tenant.editor
    )
    first = await client.post(
        PRODUCTS, json={"sku": "U1", "name": "u", "data": {"ean": "400"}}, headers=tenant.editor
    )
    assert first.status_code == 201
    clash = await client.post(
        PRODUCTS, json={"sku": "U2", "name": "u", "data": {"ean": "400"}}, headers=tenant.editor
    )
    assert clash.status_code == 409 and "ean" in clash.json()["detail"]
    second = await client.post(
        PRODUCTS, json={"sku": "U2", "name": "u", "data": {"ean": "401"}}, headers=tenant.editor
    )
    patched = await client.patch(
        f"{PRODUCTS}{second.json()['id']}/", json={"data": {"ean": "400"}}, headers=tenant.editor
    )
    assert patched.status_code == 409
    # the owner may re-send its own value; a bulk batch may not hand one value to two SKUs
    bulk = await client.post(
        f"{PRODUCTS}bulk/",
        headers=tenant.editor,
        json={
            "products": [
                {"sku": "U1", "ean": "400", "brand": "b"},
                {"sku": "U3", "ean": "400"},
                {"sku": "U4", "ean": "500"},
                {"sku": "U5", "ean": "500"},
            ]
        },
    )
    body = bulk.json()
    assert (body["created"], body["updated"], body["failed"]) == (1, 1, 2)
    assert sorted(e["sku"] for e in body["errors"]) == ["U3", "U5"]
    # the stored owner in the same batch without the field keeps its value: still a conflict
    bulk = await client.post(
        f"{PRODUCTS}bulk/",
        headers=tenant.editor,
        json={"products": [{"sku": "U1", "brand": "c"}, {"sku": "U6", "ean": "400"}]},
    )
    assert [e["sku"] for e in bulk.json()["errors"]] == ["U6"]
    # but a value its owner gives up in the same batch may move
    bulk = await client.post(
        f"{PRODUCTS}bulk/",
        headers=tenant.editor,
        json={"products": [{"sku": "U1", "ean": "999"}, {"sku": "U6", "ean": "400"}]},
    )
    assert bulk.json()["failed"] == 0


# --- values that cannot be represented are a 400, never a 500 ----------------------------------

OUT_OF_RANGE_DATETIMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"]


async def test_out_of_range_datetimes_are_a_400_on_every_path(client, tenant):
    await client.put(SCHEMA, json={"fields": [field("seen_at", "datetime")]}, headers=tenant.editor)
    ok = await client.post(
        PRODUCTS,
        json={"sku": "D0", "name": "d", "data": {"seen_at": "2026-01-01T00:00:00Z"}},
        headers=tenant.editor,
    )
    pid = ok.json()["id"]
    for value in OUT_OF_RANGE_DATETIMES:
        created = await client.post(
            PRODUCTS,
            json={"sku": "D1", "name": "d", "data": {"seen_at": value}},
            headers=tenant.editor,
        )
        assert created.status_code == 400 and "seen_at" in created.json()["detail"], created.text
        patched = await client.patch(
            f"{PRODUCTS}{pid}/", json={"data": {"seen_at": value}}, headers=tenant.editor
        )
        assert patched.status_code == 400 and "seen_at" in patched.json()["detail"], patched.text
        bulk = await client.post(
            f"{PRODUCTS}bulk/",
            headers=tenant.editor,
            json={
                "products": [
                    {"sku": "D2", "seen_at": value},
                    {"sku": "D3", "seen_at": "2026-01-01"},
                ]
            },
        )
        assert bulk.status_code == 200, bulk.text
        assert bulk.json()["failed"] == 1 and bulk.json()["errors"][0]["sku"] == "D2"
        assert "seen_at" in bulk.json()["errors"][0]["detail"]
        for path, param in (
            (PRODUCTS, "seen_at"),
            (PRODUCTS, "seen_at__gt"),
            ("/api/pim/facets/", "seen_at__lt"),
        ):
            listed = await client.get(path, params={param: value}, headers=tenant.viewer)
            assert listed.status_code == 400, (path, param, listed.text)
    # the edges that UTC can hold are fine
    edge = await client.patch(
        f"{PRODUCTS}{pid}/",
        json={"data": {"seen_at": "0001-01-01T00:00:00-01:00"}},
        headers=tenant.editor,
    )
    assert edge.status_code == 200 and edge.json()["data"]["seen_at"] == "0001-01-01T01:00:00Z"


def test_coercers_raise_only_coercion_errors(monkeypatch):
    seen = FieldDef(name="seen_at", type="datetime")
    for value in OUT_OF_RANGE_DATETIMES:
        with pytest.raises(CoercionError, match="seen_at: .*out of range"):
            coerce_value(seen, value)
    # whatever else a coercer trips over is the value's fault too, reported the same way
    from app.catalog import values as values_module

    for exc in (OverflowError("x"), TypeError("x"), RecursionError("x"), ZeroDivisionError("x")):

        def boom(_field, _value, _conventions, exc=exc):
            raise exc

        monkeypatch.setitem(values_module._COERCERS, values_module.FieldType.date, boom)
        with pytest.raises(CoercionError, match="^d: "):
            coerce_value(FieldDef(name="d", type="date"), "2026-01-01")


# --- numbers: plain decimal notation -------------------------------------------------------------


async def test_numbers_are_plain_decimal_notation(client, tenant):
    await client.put(
        SCHEMA,
        json={"fields": [field("price", "number"), field("qty", "integer")]},
        headers=tenant.editor,
    )
    for data in (
        {"price": "1_000"},
        {"price": "１２"},
        {"price": "١٢"},
        {"price": "1 000"},
        {"price": "0x10"},
        {"price": "inf"},
        {"qty": "1_0"},
        {"qty": "１２"},
        {"qty": "٣"},
        {"qty": "1_0.0"},
    ):
        response = await client.post(
            PRODUCTS, json={"sku": "N1", "name": "n", "data": data}, headers=tenant.editor
        )
        assert response.status_code == 400, data
        assert list(data)[0] in response.json()["detail"]
        listed = await client.get(PRODUCTS, params=data, headers=tenant.viewer)
        assert listed.status_code == 400, data
    ok = await client.post(
        PRODUCTS,
        headers=tenant.editor,
        json={"sku": "N1", "name": "n", "data": {"price": " -12.50 ", "qty": "+7"}},
    )
    assert ok.status_code == 201 and ok.json()["data"] == {"price": -12.5, "qty": 7}


def test_number_parsing_unit():
    number, integer = FieldDef(name="price", type="number"), FieldDef(name="qty", type="integer")
    for text, expected in (
        ("12.50", 12.5),
        ("7", 7),
        ("-3", -3),
        ("+.5", 0.5),
        ("5.", 5.0),
        ("1e2", 100.0),
        ("2.5E-1", 0.25),
        (" 3 ", 3),
        ("\t-0.0\n", -0.0),
    ):
        assert coerce_value(number, text) == expected, text
    for text in (
        "1_000",
        "１２",
        "٣",
        "1e",
        "e3",
        ".",
        "+-1",
        "1.2.3",
        "nan",
        "Infinity",
        "1e400",
        "",
        " ",
        "1 2",
    ):
        with pytest.raises(CoercionError, match="^price: "):
            coerce_value(number, text)
    assert coerce_value(integer, "1e3") == 1000 and coerce_value(integer, "-4.0") == -4
    for text in ("1_0", "１", "9" * 30, "1.5"):
        with pytest.raises(CoercionError, match="^qty: "):
            coerce_value(integer, text)


# --- required fields cannot be emptied ---------------------------------------------------------


async def test_required_fields_cannot_be_emptied_by_patch_or_bulk(client, tenant):
    await client.put(
        SCHEMA,
        json={
            "fields": [
                field("mpn", required=True),
                field("tags", "array", required=True),
                field("note"),
            ]
        },
        headers=tenant.editor,
    )
    for blank in ("", "   "):
        response = await client.post(
            PRODUCTS,
            json={"sku": "R1", "name": "r", "data": {"mpn": blank, "tags": ["t"]}},
            headers=tenant.editor,
        )
        assert response.status_code == 400 and "mpn" in response.json()["detail"]
    created = await client.post(
        PRODUCTS,
        json={"sku": "R1", "name": "r", "data": {"mpn": "M1", "tags": ["t"]}},
        headers=tenant.editor,
    )
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    for data in (
        {"mpn": ""},
        {"mpn": " \t"},
        {"mpn": None},
        {"tags": []},
        {"tags": None},
        {"tags": [None]},
    ):
        response = await client.patch(
            f"{PRODUCTS}{pid}/", json={"data": data}, headers=tenant.editor
        )
        assert response.status_code == 400, data
        assert f"{list(data)[0]}: is required" in response.json()["detail"]
        bulk = await client.post(
            f"{PRODUCTS}bulk/", json={"products": [{"sku": "R1", **data}]}, headers=tenant.editor
        )
        assert bulk.json()["failed"] == 1 and "is required" in bulk.json()["errors"][0]["detail"], (
            data
        )
    assert (await client.get(f"{PRODUCTS}{pid}/", headers=tenant.viewer)).json()["data"] == {
        "mpn": "M1",
        "tags": ["t"],
    }
    # a partial write that leaves the required fields out is fine
    ok = await client.patch(f"{PRODUCTS}{pid}/", json={"data": {"note": ""}}, headers=tenant.editor)
    assert ok.status_code == 200
    bulk = await client.post(
        f"{PRODUCTS}bulk/", json={"products": [{"sku": "R1", "note": "n"}]}, headers=tenant.editor
    )
    assert bulk.json()["updated"] == 1


# --- field names -------------------------------------------------------------------------------


async def test_names_the_contract_allows_can_be_filtered_on(client, tenant):
    """The contract's name rule allows `category` and names with `__`: a filter key that is a field's
    name is that field's exact match, otherwise the operator follows the last `__`."""
    fields = [field("category"), field("size__eu", "integer"), field("size"), field("a__b__c")]
    response = await client.put(SCHEMA, json={"fields": fields}, headers=tenant.editor)
    assert response.status_code == 200, response.text
    for sku, data in (
        ("C1", {"category": "shoes", "size__eu": 42, "size": "L", "a__b__c": "x"}),
        ("C2", {"category": "hats", "size__eu": 38, "size": "M"}),
    ):
        r = await client.post(
            PRODUCTS, json={"sku": sku, "name": sku, "data": data}, headers=tenant.editor
        )
        assert r.status_code == 201, r.text

    async def skus(**params):
        r = await client.get(PRODUCTS, params=params, headers=tenant.viewer)
        assert r.status_code == 200, r.text
        return sorted(p["sku"] for p in r.json()["results"])

    assert await skus(size__eu="42") == ["C1"]
    assert await skus(size__eu__gte="40") == ["C1"] and await skus(size__eu__lt="40") == ["C2"]
    assert await skus(size="M") == ["C2"] and await skus(size__in="L,M") == ["C1", "C2"]
    assert await skus(a__b__c="x") == ["C1"] and await skus(a__b__c__exists="false") == ["C2"]
    assert await skus(category__in="shoes") == ["C1"] and await skus(category__ne="shoes") == ["C2"]
    # `category=` itself stays the built-in category-id filter
    assert (
        await client.get(PRODUCTS, params={"category": "shoes"}, headers=tenant.viewer)
    ).status_code == 422


async def test_names_with_single_underscores_are_fine(client, tenant):
    names = ["a_b", "category_id", "x_", "categories_main", "size_in"]
    response = await client.put(
        SCHEMA, json={"fields": [field(n) for n in names]}, headers=tenant.editor
    )
    assert response.status_code == 200, response.text


# --- options that would have no effect -----------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (field("gtins", "array", unique=True), "unique"),
        *[
            (field("x", t, validation="^a"), "validation")
            for t in ("number", "integer", "boolean", "date", "datetime")
        ],
        (field("x", "enum", options=["a", ""]), "empty"),
        (field("x", "enum", options=["a", "  "]), "empty"),
    ],
)
async def test_options_without_effect_are_refused(client, tenant, bad, words):
    response = await client.put(SCHEMA, json={"fields": [field("ok"), bad]}, headers=tenant.editor)
    assert response.status_code == 422
    message = str(response.json()["detail"])
    assert f"'{bad['name']}'" in message and words in message


async def test_options_that_have_an_effect_are_accepted(client, tenant):
    fields = [field(f"v_{t}", t, validation="^a") for t in ("string", "text", "url", "array")]
    fields += [
        field("e", "enum", options=["a"], validation="^a"),
        field("n", "number", validation=""),
        field("u", unique=True),
        field("s", options=["ignored"]),
    ]
    response = await client.put(SCHEMA, json={"fields": fields}, headers=tenant.editor)
    assert response.status_code == 200, response.text
    assert [f["validation"] for f in response.json()["fields"]][
        -3
    ] is None  # "" is the same as null


# --- validation patterns: RE2 ------------------------------------------------------------------


async def test_validation_patterns_run_in_linear_time(client, tenant):
    """`^(a+)+$` backtracks exponentially in Python's `re` (40 characters: hours); RE2 is linear."""
    saved = await client.put(
        SCHEMA,
        json={
            "fields": [
                field("rx", validation="^(a+)+$"),
                field("tags", "array", validation="^(a+)+$"),
            ]
        },
        headers=tenant.editor,
    )
    assert saved.status_code == 200, saved.text
    evil = "a" * 40 + "b"
    items = [{"sku": f"RX{i}", "rx": evil} for i in range(50)] + [
        {"sku": f"RY{i}", "tags": [evil]} for i in range(50)
    ]
    started = time.monotonic()
    bulk = await client.post(f"{PRODUCTS}bulk/", json={"products": items}, headers=tenant.editor)
    assert time.monotonic() - started < 1.0
    assert bulk.json()["failed"] == 100 and "does not match" in bulk.json()["errors"][0]["detail"]
    good = await client.post(
        PRODUCTS, json={"sku": "RX", "name": "r", "data": {"rx": "a" * 40}}, headers=tenant.editor
    )
    assert good.status_code == 201


async def test_validation_patterns_keep_search_semantics(client, tenant):
    """A pattern must match somewhere in the value (like `re.search`): anchor it to match the whole."""
    await client.put(
        SCHEMA,
        json={
            "fields": [
                field("code", validation="[A-Z]{3}-\\d+"),
                field("exact", validation="^\\p{Lu}{2}\\z"),
            ]
        },
        headers=tenant.editor,
    )
    ok = await client.post(
        PRODUCTS,
        json={"sku": "S1", "name": "s", "data": {"code": "x ABC-12 y", "exact": "ÄB"}},
        headers=tenant.editor,
    )
    assert ok.status_code == 201, ok.text
    for bad in ({"code": "abc-12"}, {"exact": "ABC"}, {"exact": "AB\n"}):
        response = await client.post(
            PRODUCTS, json={"sku": "S2", "name": "s", "data": bad}, headers=tenant.editor
        )
        assert response.status_code == 400, bad


@pytest.mark.parametrize(
    "pattern", ["(a)\\1", "(?=a)b", "(?<!x)y", "a\\Z", "(?P<n>a)(?P=n)", "([a-z"]
)
async def test_patterns_re2_cannot_compile_are_refused(client, tenant, pattern):
    response = await client.put(
        SCHEMA,
        json={"fields": [field("ok"), field("code", validation=pattern)]},
        headers=tenant.editor,
    )
    assert response.status_code == 422
    message = str(response.json()["detail"])
    assert "'code'" in message and "RE2" in message


async def test_a_schema_stored_before_the_new_rules_still_works(app, client, tenant):
    """Rules added later (RE2 syntax, no `unique` arrays, ...) apply to what clients send; a
    schema saved before them still loads, and a pattern RE2 cannot run is a 400, not a 500."""
    import orjson
    from sqlalchemy import text

    await client.put(SCHEMA, json={"fields": [field("brand")]}, headers=tenant.editor)
    legacy = [
        field("code", validation="^(\\w)\\1$"),
        field("gtins", "array", unique=True),
        field("qty", "integer", validation="^1"),
        field("color", "enum", options=["red", ""]),
    ]
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE product_schemas SET fields = CAST(:f AS jsonb) WHERE tenant_id = :t"),
            {"f": orjson.dumps(legacy).decode(), "t": tenant.id},
        )
    got = await client.get(SCHEMA, headers=tenant.viewer)
    assert got.status_code == 200 and [f["name"] for f in got.json()["fields"]] == [
        f["name"] for f in legacy
    ]
    created = await client.post(
        PRODUCTS,
        headers=tenant.editor,
        json={"sku": "L1", "name": "l", "data": {"gtins": ["1"], "qty": 5, "color": ""}},
    )
    assert created.status_code == 201, created.text
    bad = await client.post(
        PRODUCTS, json={"sku": "L2", "name": "l", "data": {"code": "aa"}}, headers=tenant.editor
    )
    assert (
        bad.status_code == 400 and "code" in bad.json()["detail"] and "RE2" in bad.json()["detail"]
    )
    # sending it back points at what must change
    again = await client.put(SCHEMA, json=got.json(), headers=tenant.editor)
    assert again.status_code == 422 and "'code'" in str(again.json()["errors"])


# --- GET → PUT round trip ----------------------------------------------------------------------


async def test_the_schema_round_trips(client, tenant, make_tenant):
    fields = [
        field(
            "brand",
            label="Brand",
            labels={"de-de": "Marke"},
            description="maker",
            group="main",
            required=True,
            unique=True,
            filterable=False,
            searchable=True,
            validation="^\\p{L}",
        ),
        field("body", "text", validation="\\S"),
        field("price", "number", unique=True),
        field("stock", "integer"),
        field("active", "boolean"),
        field("launch", "date"),
        field("seen", "datetime"),
        field("site", "url", validation="^https://"),
        field("color", "enum", options=["red", "blue"], validation="^r"),
        field("tags", "array", validation="^[a-z]+$"),
        field("plain", options=["kept"]),
    ]
    put = await client.put(
        SCHEMA, json={"fields": fields, "default_currency": "EUR"}, headers=tenant.editor
    )
    assert put.status_code == 200, put.text
    got = (await client.get(SCHEMA, headers=tenant.viewer)).json()
    again = await client.put(SCHEMA, json=got, headers=tenant.editor)
    assert again.status_code == 200, again.text
    assert again.json()["fields"] == got["fields"] and again.json()["default_currency"] == "EUR"
    for one in got["fields"]:  # and each field object on its own
        assert (
            await client.put(SCHEMA, json={"fields": [one]}, headers=tenant.editor)
        ).status_code == 200, one
    fresh = await make_tenant()
    empty = (await client.get(SCHEMA, headers=fresh.viewer)).json()
    assert empty["updated_at"] is None
    assert (await client.put(SCHEMA, json=empty, headers=fresh.editor)).status_code == 200
    unknown = await client.put(SCHEMA, json={**got, "version": 2}, headers=tenant.editor)
    assert unknown.status_code == 422
