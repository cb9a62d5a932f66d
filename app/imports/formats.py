"""Pure: known export formats, recognised from a file's headers.

Shopify product CSV, WooCommerce product CSV, Akeneo product (and product model) CSV and
Google Merchant Center product feeds each have fixed column names. `detect_format` names the
format of a header row (or None); the format's column rules live here too, so that everything
this service knows about a format is in one place.
"""

import re

SHOPIFY = "shopify"
WOOCOMMERCE = "woocommerce"
AKENEO = "akeneo"
GOOGLE_MERCHANT_CENTER = "google_merchant_center"
FORMATS = (SHOPIFY, WOOCOMMERCE, AKENEO, GOOGLE_MERCHANT_CENTER)

# Shopify's classic headers ("Variant SKU") and those of its 2024 template ("URL handle", "SKU")
_SHOPIFY_KEYS = ("handle", "url handle")
_SHOPIFY_MARKERS = frozenset(
    {
        "title", "body (html)", "description", "vendor", "variant sku", "variant price", "variant grams",
        "variant barcode", "variant inventory qty", "option1 name", "option1 value", "image src", "product image url",
        "published on online store", "variant compare at price", "compare-at price", "gift card", "seo title",
    }
)
_WOO_MARKERS = frozenset(
    {
        "type", "published", "is featured?", "visibility in catalog", "short description", "in stock?",
        "backorders allowed?", "sold individually?", "allow customer reviews?", "tax status", "tax class", "sale price",
        "date sale price starts",
    }
)
_AKENEO_PROPERTIES = frozenset({"categories", "enabled", "family", "groups", "parent"})
# Google's attribute names; the feed specification also accepts them with spaces
_GMC_ATTRIBUTES = frozenset(
    {
        "link", "image_link", "additional_image_link", "availability", "availability_date", "price", "sale_price",
        "sale_price_effective_date", "google_product_category", "product_type", "brand", "gtin", "mpn",
        "identifier_exists", "condition", "item_group_id", "adult", "age_group", "gender", "color", "size", "material",
        "pattern", "shipping", "shipping_weight", "mobile_link", "custom_label_0", "product_detail", "product_highlight",
        "cost_of_goods_sold", "unit_pricing_measure", "multipack", "is_bundle", "size_type", "size_system",
    }
)
_AKENEO_LOCALE = re.compile(r"^[a-z]{2,3}_[A-Z][A-Za-z]{1,3}(?:_[A-Z]{2})?$")


def _folded(headers: list[str]) -> set[str]:
    return {" ".join(h.replace("\ufeff", "").split()).casefold() for h in headers}


def detect_format(headers: list[str]) -> str | None:
    """'shopify', 'woocommerce', 'akeneo', 'google_merchant_center', or None (a file of its own)."""
    folded = _folded(headers)
    if folded & set(_SHOPIFY_KEYS) and len(folded & _SHOPIFY_MARKERS) >= 3:
        return SHOPIFY
    if (
        "sku" in folded
        and "regular price" in folded
        and len(folded & _WOO_MARKERS) >= 2
    ):
        return WOOCOMMERCE
    exact = {h.strip() for h in headers}
    akeneo_key = "sku" in exact or {"code", "family_variant"} <= exact
    localized = any(
        len(parts) > 1 and _AKENEO_LOCALE.match(parts[1])
        for parts in (h.split("-") for h in exact)
    )
    if akeneo_key and (
        len(exact & _AKENEO_PROPERTIES) >= 3
        or (len(exact & _AKENEO_PROPERTIES) >= 2 and localized)
    ):
        return AKENEO
    underscored = {h.replace(" ", "_") for h in folded}
    if (
        "id" in underscored
        and "title" in underscored
        and len(underscored & _GMC_ATTRIBUTES) >= 3
    ):
        return GOOGLE_MERCHANT_CENTER
    return None
