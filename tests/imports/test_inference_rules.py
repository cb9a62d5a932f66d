"""Unit tests of the inference rules of issue 12 (pure: no database).

Identifiers stay text, integers have no fractional part, an enum needs the whole file, lists need
short repeating items, categories need paths, every suggestion has a reason and warnings, thin or
mixed evidence gives a low confidence, new fields are named after their headers, and the known
export formats are recognised from their headers.
"""

import pytest

from app.catalog.fields import FieldDef
from app.imports.conventions import Conventions
from app.imports.formats import column_rules, detect_format
from app.imports.headers import code_header, normalize_header
from app.imports.inference import suggest
from app.imports.profiling import number_kind
from app.imports.records import Dialect
from app.imports.rows import parse_category_paths
from app.imports.sniffing import analyse_sample, rows_in_window


def run(text: str, fields=(), *, windows=None, complete=True, **kwargs):
    analysis = analyse_sample(text.encode(), complete=complete)
    return suggest(analysis, fields=list(fields), windows=windows, **kwargs)


def col(suggestion, header):
    return next(c for c in suggestion.columns if c.header == header)


DOT = Conventions(decimal=".")
COMMA = Conventions(decimal=",", thousands=".")


@pytest.mark.parametrize(
    ("cell", "conventions", "kind"),
    [
        ("02134", DOT, "code"),  # a ZIP code's leading zero
        ("1E7", DOT, "code"),  # a part number, not 10,000,000
        ("SKU-12", DOT, "code"),  # not -12
        ("XYZ-2024", DOT, "code"),
        ("ABC 5", DOT, "code"),  # not 5
        ("1.2.3", DOT, "code"),
        ("4006381333931", DOT, "code"),  # an EAN
        ("12.50", DOT, "frac"),
        ("3.700", DOT, "frac"),  # 3.7 in a file whose decimal separator is "."
        ("3.700", COMMA, "int"),  # 3700 where "." groups thousands
        ("1,5", DOT, "bad"),  # the other convention: the row would be rejected
        ("15.00 USD", DOT, "amount"),  # a number field does not read it
        ("19 %", DOT, "amount"),
        ("-5", DOT, "int"),
        ("Holz", DOT, "text"),
    ],
)
def test_number_kinds(cell, conventions, kind):
    assert number_kind(cell, conventions) == kind


@pytest.mark.parametrize(
    "header",
    [
        "EAN",
        "GTIN-13",
        "UPC",
        "ISBN",
        "MPN",
        "Part",
        "Article",
        "Artikelnummer",
        "Art.-Nr.",
        "Lieferantennummer",
        "ZIP",
        "Postcode",
        "PLZ",
        "Code postal",
        "Código postal",
        "Version",
        "Firmware",
        "Item No.",
        "Model number",
        "Référence fabricant",
        "Handle",
    ],
)
def test_headers_that_name_codes(header):
    assert code_header(normalize_header(header)), header


@pytest.mark.parametrize(
    "header",
    ["Price", "Part price", "Stock", "Weight kg", "Release date", "Name", "Style", "Model year"],
)
def test_headers_that_do_not_name_codes(header):
    assert code_header(normalize_header(header)) is None, header


def test_identifiers_stay_text_whatever_they_look_like():
    s = run(
        "sku,code,zip,part,firmware,qty\n"
        "A1,SKU-12,02134,1E7,1.20,5\nA2,XYZ-2024,10001,2E5,1.3,7\nA3,ABC 5,94105,77,2.0,9\n"
    )
    types = {c.header: c.inferred_type for c in s.columns}
    assert (types["code"], types["zip"], types["part"], types["firmware"]) == ("string",) * 4
    assert types["qty"] == "integer"
    assert "code" in col(s, "code").reason and "'zip'" in col(s, "zip").reason


def test_never_integer_when_a_value_has_a_fractional_part():
    # the case: 3.700, 6.257, 0.975 beside prices that read 12.50
    s = run("sku,price,weight_kg\nA,12.50,3.700\nB,9.99,6.257\nC,4.00,0.975\n")
    weight = col(s, "weight_kg")
    assert weight.inferred_type == "number" and s.conventions.decimal == "."
    assert "fractional" in weight.reason


def test_ambiguous_numbers_without_evidence_stay_text_with_a_warning():
    s = run("sku,weight\nA,3.700\nB,6.257\nC,1.250\n")
    weight = col(s, "weight")
    assert weight.inferred_type == "string" and weight.confidence < 0.6
    assert any("two ways" in w for w in weight.warnings)


def test_mixed_numbers_warn_and_lower_the_confidence():
    rows = "".join(f"S{i},{i},{i}.5\n" for i in range(98)) + "S98,7,teuer\nS99,8,n/v\n"
    s = run("sku,qty,price\n" + rows)
    price = col(s, "price")
    assert price.inferred_type == "number" and price.confidence < 0.6
    assert price.warnings == [
        "2 of 100 sampled values are not numbers under decimal '.' (e.g. 'teuer'): those rows would be rejected"
    ]
    assert col(s, "qty").confidence >= 0.9 and col(s, "qty").warnings == []


def test_thin_evidence_gives_a_low_confidence():
    s = run("sku,price\nA,1.50\nB,2.50\n")
    assert col(s, "price").confidence < 0.6 and any("only 2" in w for w in col(s, "price").warnings)


def _brand_rows(brands, start, n):
    return [[f"S{start + i}", brands[i % len(brands)]] for i in range(n)]


def test_enum_only_when_the_start_middle_and_end_agree():
    head = "sku,brand\n" + "".join(
        f"{sku},{brand}\n" for sku, brand in _brand_rows(["Hay", "Vitra", "Muuto"], 0, 60)
    )
    same = _brand_rows(["Hay", "Vitra", "Muuto"], 60, 60)
    later = _brand_rows(["Hay", "Vitra", "Muuto", "Kartell"], 60, 60)
    assert col(run(head), "brand").inferred_type == "enum"  # the whole file was seen
    partial = run(head, complete=False)
    assert col(partial, "brand").inferred_type == "string"  # the start alone proves nothing
    assert col(run(head, complete=False, windows=same), "brand").inferred_type == "enum"
    brand = col(run(head, complete=False, windows=later), "brand")
    assert brand.inferred_type == "string" and "new ones" in brand.reason


def test_lists_need_a_consistent_separator_in_short_repeating_items():
    rows = [f"S{i},steel|brass,Tisch mit Schublade; groß und schön Nummer {i}\n" for i in range(30)]
    s = run("sku,materials,note\n" + "".join(rows))
    assert col(s, "materials").inferred_type == "array"
    assert col(s, "note").inferred_type == "string"  # free text with ';' is not a list


def test_categories_only_from_paths_never_from_html():
    html = '"<p>Sturdy chair &gt; better than the rest</p><ul><li>oak</li></ul>"'
    s = run(
        "sku,description,category\n"
        f"A,{html},Furniture > Chairs\nB,{html},Furniture > Tables\nC,{html},Outdoor\n"
    )
    assert s.mapping()["category"] == "categories" and s.mapping()["description"] == "description"
    assert col(s, "description").inferred_type == "text" and "HTML" in col(s, "description").reason
    # without any category column, the HTML is still not taken for one
    s = run(f"sku,body\nA,{html}\nB,{html}\n")
    assert s.mapping()["body"] == "body" and col(s, "body").inferred_type == "text"


def test_comma_separated_paths_split_and_category_codes():
    s = run('sku,category\nA,"Clothing > Tshirts, Clothing > Men"\nB,Clothing > Tshirts\n')
    assert s.conventions.category_separator == ","
    assert parse_category_paths("Clothing > Tshirts, Clothing > Men", ",") == (
        "Clothing > Tshirts",
        "Clothing > Men",
    )
    assert parse_category_paths("goodies,tshirts", ",") == ("goodies", "tshirts")
    assert parse_category_paths("Tables, Chairs", ",") == ("Tables, Chairs",)


def test_new_fields_are_named_after_their_headers():
    text = "sku,in_stock,gtin,link,Preis\nA,yes,4006381333931,https://x.org/a,1.50\nB,no,4006381333948,https://x.org/b,2.50\n"
    s = run(text)
    assert s.mapping() == {
        "sku": "sku",
        "in_stock": "in_stock",
        "gtin": "gtin",
        "link": "link",
        "Preis": "preis",
    }
    assert "named after the header" in col(s, "gtin").reason
    # synonyms find the fields the tenant has
    fields = [
        FieldDef(name="available", type="boolean"),
        FieldDef(name="ean"),
        FieldDef(name="url", type="url"),
    ]
    s = run(text, fields)
    assert (s.mapping()["in_stock"], s.mapping()["gtin"], s.mapping()["link"]) == (
        "available",
        "ean",
        "url",
    )
    assert "the field 'ean'" in col(s, "gtin").reason


def test_sku_beats_a_weak_synonym_and_the_reason_names_it():
    s = run("ID,SKU,Title\n1,A-1,Chair\n2,A-2,Table\n")
    assert (
        s.mapping()["SKU"] == "sku"
        and s.mapping()["Title"] == "name"
        and s.mapping()["ID"] == "id_value"
    )
    assert "'sku'" in col(s, "SKU").reason


def test_rows_in_a_window_cut_inside_a_quoted_multiline_cell():
    rows = "".join(f'S{i},"line one\nline two, {i}",{i}.5\n' for i in range(200))
    data = ("sku,text,price\n" + rows).encode()
    start = data.index(b"line two, 100")  # inside a quoted cell
    got = rows_in_window(
        data[start : start + 2000], encoding="utf-8", dialect=Dialect(), width=3, at_end=False
    )
    assert got and all(r[0].startswith("S") and r[1].startswith("line one\n") for r in got)
    assert got[0][0] in ("S101", "S102")


def test_known_formats_from_headers():
    assert (
        detect_format(["Handle", "Title", "Body (HTML)", "Vendor", "Variant SKU", "Variant Price"])
        == "shopify"
    )
    assert (
        detect_format(["ID", "Type", "SKU", "Name", "Published", "Regular price", "Categories"])
        == "woocommerce"
    )
    assert detect_format(["sku", "categories", "enabled", "family", "name-en_US"]) == "akeneo"
    assert (
        detect_format(["id", "title", "description", "link", "image_link", "price", "availability"])
        == "google_merchant_center"
    )
    assert detect_format(["sku", "name", "price", "category"]) is None


def test_akeneo_takes_the_tenants_locale_or_the_closest():
    headers = [
        "sku",
        "name-de_DE",
        "name-en_GB",
        "description-de_DE-print",
        "description-de_DE-ecommerce",
        "price-EUR",
    ]
    rules = column_rules("akeneo", headers, locale="de-de", currency="EUR")
    assert rules["name-de_DE"].builtin == "name" and rules["name-en_GB"].skip
    assert (
        rules["description-de_DE-ecommerce"].name == "description"
        and rules["description-de_DE-print"].skip
    )
    assert rules["price-EUR"].name == "price"
    rules = column_rules("akeneo", headers, locale="en-us", currency="USD")
    assert rules["name-en_GB"].builtin == "name" and "closest" in rules["name-en_GB"].reason
    assert rules["price-EUR"].name == "price_eur"


def test_woocommerce_id_is_not_the_sku():
    s = run(
        'ID,Type,SKU,Name,Published,Regular price,Categories\n12,simple,W-1,Beanie,1,20,"Clothing > Hats, Sale > Hats"\n'
    )
    assert (
        s.format == "woocommerce" and s.mapping()["ID"] == "post_id" and s.mapping()["SKU"] == "sku"
    )
    assert s.conventions.category_separator == ","


def test_a_header_naming_another_concept_is_no_typo_of_a_field():
    # the tenant's `price` is the regular price; "Sale price" is not a misspelt "sales price"
    fields = [FieldDef(name="price", type="number")]
    s = run("SKU,Name,Regular price,Sale price\nA,Chair,20,18\nB,Table,30,\n", fields)
    assert s.mapping()["Regular price"] == "price" and s.mapping()["Sale price"] == "sale_price"
    s = run("SKU,Name,Sale price\nA,Chair,18\n", [FieldDef(name="sale_price", type="number")])
    assert s.mapping()["Sale price"] == "sale_price"


def test_sku_and_name_headers_of_real_feeds():
    for sku_header, name_header in (
        ("Bestellnummer", "Kurzbezeichnung"),
        ("Art.-Nr.", "Artikelbezeichnung"),
        ("Référence article", "Libellé article"),
        ("Item SKU", "Item Title"),
        ("Codice prodotto", "Nome prodotto"),
        ("Variant SKU", "Title"),
    ):
        s = run(f"{sku_header};{name_header};Preis\nX-1;Stuhl;1,50\nX-2;Tisch;2,50\n")
        assert (s.mapping()[sku_header], s.mapping()[name_header]) == ("sku", "name"), (
            sku_header,
            name_header,
        )


def test_woocommerce_published_is_the_status_with_its_values_mapped():
    """1 published, 0 private, -1 draft (WooCommerce's product CSV import schema): a draft is no
    longer a reason to make the column a field of its own."""
    head = "ID,Type,SKU,Name,Published,Regular price\n"
    woo_values = {"1": "active", "0": "inactive", "-1": "inactive"}
    for rows in (
        "1,simple,A,Chair,1,20\n2,simple,B,Table,0,30\n",
        "1,simple,A,Chair,1,20\n2,simple,B,Table,-1,30\n",
    ):
        s = run(head + rows)
        assert s.mapping()["Published"] == "status", rows
        assert s.value_mapping == {"Published": woo_values}, rows
        assert not col(s, "Published").warnings, rows
