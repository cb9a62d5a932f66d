"""Unit tests of the row transforms of known export formats (app/imports/transforms.py)."""

from app.imports.transforms import MerchantPrices, restore_transform, transform_for

GMC = ["id", "title", "link", "availability", "price", "sale_price", "brand", "gtin"]


def test_merchant_center_price_splits_into_amount_and_currency():
    name, transform = transform_for(GMC)
    assert name == "google_merchant_center" and isinstance(transform, MerchantPrices)
    assert transform.headers(GMC) == [*GMC, "price_currency", "sale_price_currency"]
    row = [
        "A-1",
        "Shoe",
        "https://x.example/a",
        "in_stock",
        "15.00 USD",
        "",
        "Stride",
        "00012345678905",
    ]
    assert transform.apply(row) == [*row[:4], "15.00", "", *row[6:], "USD", ""]


def test_a_price_in_another_shape_is_left_for_the_value_core_to_judge():
    _, transform = transform_for(GMC)
    for cell in ("15.00", "USD 15.00", "15.00 usd", "15 €", "SKU-12 USD"):
        row = ["A-1", "Shoe", "", "", cell, "", "", ""]
        assert (
            transform.apply(row)[4] == cell
        )  # not reinterpreted: the number field reads it or rejects the row


def test_the_stored_headers_give_the_same_transform_back():
    _, transform = transform_for(GMC)
    again = restore_transform("google_merchant_center", transform.headers(GMC), None)
    assert again == transform
    shopify = ["Handle", "Title", "Variant SKU", "Variant Price"]
    name, variants = transform_for(shopify)
    assert name == "shopify"
    assert restore_transform("shopify", variants.headers(shopify), None).width == len(shopify)


def test_other_files_have_no_transform():
    assert transform_for(["sku", "name", "price"]) is None
    assert restore_transform(None, ["sku"], None) is None
