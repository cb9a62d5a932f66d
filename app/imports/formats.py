"""Pure: known export formats, recognised from a file's headers.

Shopify product CSV, WooCommerce product CSV, Akeneo product (and product model) CSV, Google
Merchant Center product feeds, Magento 2 (Adobe Commerce), BigCommerce and Shopware 6 product
exports each have fixed column names. `detect_format` names the
format of a header row (or None); the format's column rules live here too, so that everything
this service knows about a format is in one place.
"""

import re
from dataclasses import dataclass, replace
from typing import Literal

from app.catalog.fields import FieldType

SHOPIFY = "shopify"
WOOCOMMERCE = "woocommerce"
AKENEO = "akeneo"
GOOGLE_MERCHANT_CENTER = "google_merchant_center"
MAGENTO = "magento"
BIGCOMMERCE = "bigcommerce"
SHOPWARE = "shopware"
# the formats a job can report (`format` of the upload answer and of the job)
ExportFormat = Literal[
    "shopify",
    "woocommerce",
    "akeneo",
    "google_merchant_center",
    "magento",
    "bigcommerce",
    "shopware",
]

# Shopify's classic headers ("Variant SKU") and those of its 2024 template ("URL handle", "SKU")
_SHOPIFY_KEYS = ("handle", "url handle")
_SHOPIFY_MARKERS = frozenset(
    {
        "title",
        "body (html)",
        "description",
        "vendor",
        "variant sku",
        "variant price",
        "variant grams",
        "variant barcode",
        "variant inventory qty",
        "option1 name",
        "option1 value",
        "image src",
        "product image url",
        "published on online store",
        "variant compare at price",
        "compare-at price",
        "gift card",
        "seo title",
    }
)
_WOO_MARKERS = frozenset(
    {
        "type",
        "published",
        "is featured?",
        "visibility in catalog",
        "short description",
        "in stock?",
        "backorders allowed?",
        "sold individually?",
        "allow customer reviews?",
        "tax status",
        "tax class",
        "sale price",
        "date sale price starts",
    }
)
_AKENEO_PROPERTIES = frozenset({"categories", "enabled", "family", "groups", "parent"})
# Google's attribute names; the feed specification also accepts them with spaces
_GMC_ATTRIBUTES = frozenset(
    {
        "link",
        "image_link",
        "additional_image_link",
        "availability",
        "availability_date",
        "price",
        "sale_price",
        "sale_price_effective_date",
        "google_product_category",
        "product_type",
        "brand",
        "gtin",
        "mpn",
        "identifier_exists",
        "condition",
        "item_group_id",
        "adult",
        "age_group",
        "gender",
        "color",
        "size",
        "material",
        "pattern",
        "shipping",
        "shipping_weight",
        "mobile_link",
        "custom_label_0",
        "product_detail",
        "product_highlight",
        "cost_of_goods_sold",
        "unit_pricing_measure",
        "multipack",
        "is_bundle",
        "size_type",
        "size_system",
    }
)
_AKENEO_LOCALE = re.compile(r"^[a-z]{2,3}_[A-Z][A-Za-z]{1,3}(?:_[A-Z]{2})?$")


# WooCommerce's exporter writes its column names in the admin's language; the German ones
# (WooCommerce's de_DE translation) → the English ones the rules below are written for
_WOO_GERMAN = {
    "typ": "type",
    "artikelnummer": "sku",
    "gtin, upc, ean oder isbn": "gtin, upc, ean, or isbn",
    "veröffentlicht": "published",
    "ist hervorgehoben?": "is featured?",
    "sichtbarkeit im katalog": "visibility in catalog",
    "kurzbeschreibung": "short description",
    "beschreibung": "description",
    "datum, an dem angebotspreis beginnt": "date sale price starts",
    "datum, an dem angebotspreis endet": "date sale price ends",
    "steuerstatus": "tax status",
    "steuerklasse": "tax class",
    "vorrätig?": "in stock?",
    "bestand": "stock",
    "lieferrückstande erlaubt?": "backorders allowed?",
    "nur einzeln verkaufen?": "sold individually?",
    "kundenrezensionen erlauben?": "allow customer reviews?",
    "angebotspreis": "sale price",
    "regulärer preis": "regular price",
    "kategorien": "categories",
    "schlagwörter": "tags",
    "bilder": "images",
    "übergeordnetes produkt": "parent",
}
_WOO_GERMAN_ATTRIBUTE = re.compile(r"^attribut (\d+) (name|wert\(e\)|sichtbar|global|standard)$")
_ATTRIBUTE_PARTS = {
    "name": "name",
    "wert(e)": "value(s)",
    "sichtbar": "visible",
    "global": "global",
    "standard": "default",
}


def woo_key(header: str) -> str:
    """A WooCommerce header as its rules name it: folded, and in English ('Regulärer Preis' →
    'regular price')."""
    key = " ".join(header.replace("\ufeff", "").split()).casefold()
    if key in _WOO_GERMAN:
        return _WOO_GERMAN[key]
    attribute = _WOO_GERMAN_ATTRIBUTE.match(key)
    if attribute:
        return f"attribute {attribute[1]} {_ATTRIBUTE_PARTS[attribute[2]]}"
    return key


def _folded(headers: list[str]) -> set[str]:
    return {" ".join(h.replace("\ufeff", "").split()).casefold() for h in headers}


def detect_format(headers: list[str]) -> str | None:
    """'shopify', 'woocommerce', 'akeneo', 'google_merchant_center', 'magento', 'bigcommerce',
    'shopware', or None (a file of its own)."""
    folded = _folded(headers)
    if folded & set(_SHOPIFY_KEYS) and len(folded & _SHOPIFY_MARKERS) >= 3:
        return SHOPIFY
    woo = {woo_key(h) for h in headers}
    if "sku" in woo and "regular price" in woo and len(woo & _WOO_MARKERS) >= 2:
        return WOOCOMMERCE
    # Magento's catalog_product export (Adobe Commerce "Product data attributes reference")
    if {"sku", "product_type", "attribute_set_code"} <= folded:
        return MAGENTO
    # BigCommerce's product export: one row per product ("Item Type" Product) or per SKU / rule
    if (
        "item type" in folded
        and ({"product code/sku", "code"} & folded)
        and ({"product name", "name"} & folded)
    ):
        return BIGCOMMERCE
    # Shopware 6's product profile: entity paths as headers (productNumber, translations.DEFAULT.name)
    if "productnumber" in folded and (
        "parentid" in folded or "translations.default.name" in folded
    ):
        return SHOPWARE
    exact = {h.strip() for h in headers}
    akeneo_key = "sku" in exact or {"code", "family_variant"} <= exact
    localized = any(
        len(parts) > 1 and _AKENEO_LOCALE.match(parts[1]) for parts in (h.split("-") for h in exact)
    )
    if akeneo_key and (
        len(exact & _AKENEO_PROPERTIES) >= 3 or (len(exact & _AKENEO_PROPERTIES) >= 2 and localized)
    ):
        return AKENEO
    underscored = {h.replace(" ", "_") for h in folded}
    if "id" in underscored and "title" in underscored and len(underscored & _GMC_ATTRIBUTES) >= 3:
        return GOOGLE_MERCHANT_CENTER
    return None


# The separators a format writes lists and category paths with (overriding the detected ones):
# the values of a format's status column and the status each means: such a column is the status
# whatever else it holds (another value rejects its row). Shopify's Status is active, draft or
# archived; WooCommerce's Published is 1 (published), 0 (private) or -1 (draft) (its product CSV
# import schema)
STATUS_VALUES: dict[str, dict[str, str]] = {
    SHOPIFY: {"draft": "inactive", "archived": "inactive"},
    WOOCOMMERCE: {"1": "active", "0": "inactive", "-1": "inactive"},
    MAGENTO: {"1": "active", "2": "inactive"},  # product_online: 1 enabled, 2 disabled
}

# WooCommerce and Akeneo separate tags, images, multi-select values and categories with ",";
# Shopify's tags and Google's additional_image_link are comma-separated too.
FORMAT_CONVENTIONS: dict[str, dict[str, str]] = {
    SHOPIFY: {"list_separator": ","},
    WOOCOMMERCE: {"list_separator": ",", "category_separator": ","},
    AKENEO: {"list_separator": ",", "category_separator": ","},
    GOOGLE_MERCHANT_CENTER: {"list_separator": ","},
    # their category cells are rewritten as "A > B|C" (CATEGORY_COLUMNS)
    MAGENTO: {"category_separator": "|"},
    BIGCOMMERCE: {"category_separator": "|"},
}


# --- column rules ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnRule:
    """What a format says about one of its columns; unset parts are left to the general inference."""

    reason: str
    builtin: str | None = (
        None  # sku, name, status (when the values allow), categories, variation_of
    )
    skip: bool = False
    name: str | None = (
        None  # a new field's name when no field of the tenant matches (None: the header's)
    )
    type: FieldType | None = None  # a new field's type (None: inferred from the values)


def _rule_table(fmt: str, rules: dict[str, ColumnRule]) -> dict[str, ColumnRule]:
    return {
        key.casefold(): replace(rule, reason=f"{_TITLES[fmt]}: {rule.reason}")
        for key, rule in rules.items()
    }


_TITLES = {
    SHOPIFY: "Shopify export",
    WOOCOMMERCE: "WooCommerce export",
    AKENEO: "Akeneo export",
    GOOGLE_MERCHANT_CENTER: "Google Merchant Center feed",
    MAGENTO: "Magento export",
    BIGCOMMERCE: "BigCommerce export",
    SHOPWARE: "Shopware export",
}

# A format's categories column: its paths are separated by the first separator and its levels by
# the second ("Default Category/Gear,Default Category/Gear/Bags"; "Shop All/Garden;Sale"). The
# import rewrites them as the catalog's paths (`transforms.CategoryPaths`).
CATEGORY_COLUMNS: dict[str, tuple[str, str, str]] = {
    MAGENTO: ("categories", ",", "/"),
    BIGCOMMERCE: ("category", ";", "/"),
}

_SHOPIFY_RULES = _rule_table(
    SHOPIFY,
    {
        "Variant SKU": ColumnRule("'Variant SKU' is the SKU (one row per variant)", builtin="sku"),
        "SKU": ColumnRule("'SKU' is the variant's SKU (one row per variant)", builtin="sku"),
        "Handle": ColumnRule(
            "'Handle' names the product its variant rows share, not a SKU",
            name="handle",
            type=FieldType.string,
        ),
        "URL handle": ColumnRule(
            "'URL handle' names the product its variant rows share, not a SKU",
            name="handle",
            type=FieldType.string,
        ),
        "Title": ColumnRule("'Title' is the product name", builtin="name"),
        "Body (HTML)": ColumnRule("'Body (HTML)' is the HTML description", type=FieldType.text),
        "Description": ColumnRule("'Description' is the HTML description", type=FieldType.text),
        "Product Category": ColumnRule(
            "'Product Category' is a category path ('A > B > C')", builtin="categories"
        ),
        "Tags": ColumnRule("'Tags' is a comma-separated list", type=FieldType.array),
        "Published": ColumnRule("'Published' is TRUE or FALSE", type=FieldType.boolean),
        "Published on online store": ColumnRule(
            "'Published on online store' is TRUE or FALSE", type=FieldType.boolean
        ),
        "Status": ColumnRule(
            "'Status' is active, draft or archived: the status (draft and archived are inactive)",
            builtin="status",
        ),
        "Images": ColumnRule(
            "'Images' (added by the import) lists the product's image URLs: its Image Src and "
            "those of its image-only rows",
            name="images",
            type=FieldType.array,
        ),
        "Variant Barcode": ColumnRule("'Variant Barcode' is a code", type=FieldType.string),
        "Barcode": ColumnRule("'Barcode' is a code", type=FieldType.string),
        "Gift Card": ColumnRule("'Gift Card' is TRUE or FALSE", type=FieldType.boolean),
        "Gift card": ColumnRule("'Gift card' is TRUE or FALSE", type=FieldType.boolean),
    },
)

_WOO_YES_NO = (
    "Is featured?",
    "Sold individually?",
    "Allow customer reviews?",
    "Attribute 1 visible",
    "Attribute 1 global",
)
_WOO_LISTS = ("Tags", "Images", "Upsells", "Cross-sells", "Grouped products", "Brands")
_WOOCOMMERCE_RULES = _rule_table(
    WOOCOMMERCE,
    {
        "ID": ColumnRule(
            "'ID' is the WordPress post id, not the SKU", name="post_id", type=FieldType.string
        ),
        "SKU": ColumnRule("'SKU' is the SKU", builtin="sku"),
        "Name": ColumnRule("'Name' is the product name", builtin="name"),
        "Parent": ColumnRule(
            "'Parent' is the parent product's SKU (or id:<post id>)", builtin="variation_of"
        ),
        "Published": ColumnRule(
            "'Published' is 1 (published), 0 (private) or -1 (draft): the status (0 and -1 are "
            "inactive)",
            builtin="status",
        ),
        "Categories": ColumnRule(
            "'Categories' is a comma-separated list of 'A > B' paths", builtin="categories"
        ),
        "Description": ColumnRule("'Description' is the HTML description", type=FieldType.text),
        "Short description": ColumnRule("'Short description' is HTML text", type=FieldType.text),
        "In stock?": ColumnRule(
            "'In stock?' holds 1, 0 or 'backorder': kept as text", type=FieldType.string
        ),
        "Backorders allowed?": ColumnRule(
            "'Backorders allowed?' holds 1, 0 or 'notify': kept as text", type=FieldType.string
        ),
        "GTIN, UPC, EAN, or ISBN": ColumnRule(
            "'GTIN, UPC, EAN, or ISBN' is a code", name="gtin", type=FieldType.string
        ),
        **{h: ColumnRule(f"'{h}' is 1 or 0", type=FieldType.boolean) for h in _WOO_YES_NO},
        **{
            h: ColumnRule(f"'{h}' is a comma-separated list", type=FieldType.array)
            for h in _WOO_LISTS
        },
        "Attribute 1 value(s)": ColumnRule(
            "attribute values are a comma-separated list", type=FieldType.array
        ),
    },
)

_MAGENTO_RULES = _rule_table(
    MAGENTO,
    {
        "sku": ColumnRule("'sku' is the SKU", builtin="sku"),
        "name": ColumnRule("'name' is the product name", builtin="name"),
        "categories": ColumnRule(
            "'categories' lists paths separated by ',' with levels separated by '/'",
            builtin="categories",
        ),
        "product_online": ColumnRule(
            "'product_online' is the status: 1 enabled, 2 disabled", builtin="status"
        ),
        "description": ColumnRule("'description' is HTML", type=FieldType.text),
        "short_description": ColumnRule("'short_description' is HTML", type=FieldType.text),
        "store_view_code": ColumnRule(
            "'store_view_code' names a store view's row (its translations): only the default "
            "rows, with it empty, are imported",
            skip=True,
        ),
    },
)

_BIGCOMMERCE_RULES = _rule_table(
    BIGCOMMERCE,
    {
        "product code/sku": ColumnRule("'Product Code/SKU' is the SKU", builtin="sku"),
        "code": ColumnRule("'Code' is the SKU", builtin="sku"),
        "product name": ColumnRule("'Product Name' is the product name", builtin="name"),
        "name": ColumnRule("'Name' is the product name", builtin="name"),
        "category": ColumnRule(
            "'Category' lists paths separated by ';' with levels separated by '/'",
            builtin="categories",
        ),
        "product id": ColumnRule(
            "'Product ID' is BigCommerce's id, not the SKU",
            name="product_id",
            type=FieldType.string,
        ),
    },
)

_SHOPWARE_RULES = _rule_table(
    SHOPWARE,
    {
        "productnumber": ColumnRule("'productNumber' is the SKU", builtin="sku"),
        "translations.default.name": ColumnRule(
            "'translations.DEFAULT.name' is the name in the shop's default language", builtin="name"
        ),
        "active": ColumnRule("'active' is the status (1 active, 0 inactive)", builtin="status"),
        "id": ColumnRule(
            "'id' is Shopware's product id (a UUID), not the SKU",
            name="shopware_id",
            type=FieldType.string,
        ),
        "parentid": ColumnRule(
            "'parentId' is the parent's Shopware id, not its SKU: kept as a field (variation_of "
            "holds a SKU)",
            name="shopware_parent_id",
            type=FieldType.string,
        ),
        "categories": ColumnRule(
            "'categories' lists Shopware category ids separated by '|', not category paths",
            name="category_ids",
            type=FieldType.array,
        ),
    },
)

_GMC_RULES = _rule_table(
    GOOGLE_MERCHANT_CENTER,
    {
        "id": ColumnRule("'id' is the item's identifier, its SKU", builtin="sku"),
        "title": ColumnRule("'title' is the product name", builtin="name"),
        "description": ColumnRule("'description' is text", type=FieldType.text),
        "google_product_category": ColumnRule(
            "'google_product_category' is Google's taxonomy, not the catalog's categories: kept under its name",
            name="google_product_category",
            type=FieldType.string,
        ),
        "product_type": ColumnRule(
            "'product_type' is kept under its attribute name",
            name="product_type",
            type=FieldType.string,
        ),
        "item_group_id": ColumnRule(
            "'item_group_id' groups variants: a code", name="item_group_id", type=FieldType.string
        ),
        "identifier_exists": ColumnRule("'identifier_exists' is yes or no", type=FieldType.boolean),
        "size": ColumnRule(
            "'size' is a label ('M', '8.5', '40-42'), not a quantity", type=FieldType.string
        ),
        "additional_image_link": ColumnRule(
            "'additional_image_link' is a comma-separated list of URLs", type=FieldType.array
        ),
    },
)

_AKENEO_SUFFIX = re.compile(r"^(?P<attr>[A-Za-z0-9_]+)-(?P<rest>.+)$")
_CURRENCY_SUFFIX = re.compile(r"^[A-Z]{3}$")
_ASSOCIATION = re.compile(r"^[A-Za-z0-9_]+-(?:groups|products|product_models)$")
PREFERRED_CHANNEL = "ecommerce"


def _akeneo_locale(locale: str) -> str:
    """The tenant's 'en-us' as Akeneo writes it: 'en_US'."""
    language, _, region = locale.partition("-")
    return f"{language}_{region.upper()}" if region else language


def _akeneo_rules(headers: list[str], *, locale: str, currency: str) -> dict[str, ColumnRule]:
    """Per header: the plain attribute for the tenant's locale, channel and currency; other variants skipped."""
    rules: dict[str, ColumnRule] = {}
    localized: dict[
        str, list[tuple[str, str | None, str]]
    ] = {}  # attribute → (locale, channel, header)
    scoped: dict[str, list[tuple[str, str]]] = {}  # attribute → (channel, header)
    for header in headers:
        h = header.strip()
        if h in ("sku", "code"):
            rules[header] = ColumnRule(f"'{h}' is the identifier", builtin="sku")
        elif h == "categories":
            rules[header] = ColumnRule(
                "'categories' is a comma-separated list of category codes", builtin="categories"
            )
        elif h == "enabled":
            rules[header] = ColumnRule("'enabled' (1 or 0) is the status", builtin="status")
        elif h == "parent":
            rules[header] = ColumnRule(
                "'parent' is the product model's code", builtin="variation_of"
            )
        elif h == "groups" or _ASSOCIATION.match(h):
            rules[header] = ColumnRule(
                f"'{h}' is a comma-separated list of codes", type=FieldType.array
            )
        elif m := _AKENEO_SUFFIX.match(h):
            attr, parts = m["attr"], m["rest"].split("-")
            if parts == ["unit"]:
                rules[header] = ColumnRule(
                    f"'{h}' is the unit of '{attr}'", name=f"{attr}_unit", type=FieldType.string
                )
            elif len(parts) == 1 and _CURRENCY_SUFFIX.match(parts[0]):
                code = parts[0]
                name = attr if code == currency else f"{attr}_{code.lower()}"
                why = "the tenant's currency" if code == currency else f"a price in {code}"
                rules[header] = ColumnRule(f"'{h}' is {why}", name=name)
            elif _AKENEO_LOCALE.match(parts[0]):
                localized.setdefault(attr, []).append(
                    (parts[0], parts[1] if len(parts) > 1 else None, header)
                )
            elif len(parts) == 1:
                scoped.setdefault(attr, []).append((parts[0], header))
    wanted = _akeneo_locale(locale)
    for attr, variants in localized.items():
        locales = list(dict.fromkeys(loc for loc, _, _ in variants))
        chosen_locale = (
            wanted
            if wanted in locales
            else next(
                (loc for loc in locales if loc.split("_")[0] == wanted.split("_")[0]), locales[0]
            )
        )
        channels = [ch for loc, ch, _ in variants if loc == chosen_locale]
        chosen_channel = PREFERRED_CHANNEL if PREFERRED_CHANNEL in channels else channels[0]
        for loc, channel, header in variants:
            if (loc, channel) == (chosen_locale, chosen_channel):
                why = (
                    "the tenant's locale"
                    if loc == wanted
                    else f"the file has no {wanted}: the closest locale"
                )
                where = f", channel {channel}" if channel else ""
                reason = f"'{header}' is '{attr}' in {loc} ({why}{where})"
                rules[header] = (
                    ColumnRule(reason, builtin="name")
                    if attr == "name"
                    else ColumnRule(reason, name=attr)
                )
            else:
                rules[header] = ColumnRule(
                    f"'{header}' is '{attr}' in another locale or channel than {chosen_locale}"
                    f"{'-' + chosen_channel if chosen_channel else ''}: skipped",
                    skip=True,
                )
    for attr, per_channel in scoped.items():
        channels = [ch for ch, _ in per_channel]
        chosen = PREFERRED_CHANNEL if PREFERRED_CHANNEL in channels else channels[0]
        for channel, header in per_channel:
            if channel == chosen:
                rules[header] = ColumnRule(
                    f"'{header}' is '{attr}' for the channel {channel}", name=attr
                )
            else:
                rules[header] = ColumnRule(
                    f"'{header}' is '{attr}' for another channel than {chosen}: skipped", skip=True
                )
    return {h: replace(r, reason=f"{_TITLES[AKENEO]}: {r.reason}") for h, r in rules.items()}


def column_rules(
    fmt: str | None, headers: list[str], *, locale: str, currency: str
) -> dict[str, ColumnRule]:
    """The format's rule for each header it knows (headers as in the file); {} for no format.

    `locale` ('en-us') and `currency` ('EUR') are the tenant's defaults: Akeneo's localised,
    scoped and price columns are taken in them.
    """
    if fmt == AKENEO:
        return _akeneo_rules(headers, locale=locale, currency=currency)
    table = {
        SHOPIFY: _SHOPIFY_RULES,
        WOOCOMMERCE: _WOOCOMMERCE_RULES,
        GOOGLE_MERCHANT_CENTER: _GMC_RULES,
        MAGENTO: _MAGENTO_RULES,
        BIGCOMMERCE: _BIGCOMMERCE_RULES,
        SHOPWARE: _SHOPWARE_RULES,
    }.get(fmt or "")
    if not table:
        return {}
    out = {}
    for header in headers:
        key = woo_key(header) if fmt == WOOCOMMERCE else " ".join(header.split()).casefold()
        rule = table.get(key) or (
            table.get(key.replace(" ", "_")) if fmt == GOOGLE_MERCHANT_CENTER else None
        )
        if rule is None and fmt == WOOCOMMERCE and re.match(r"^attribute \d+ value\(s\)$", key):
            rule = table["attribute 1 value(s)"]
        if (
            rule is None
            and fmt == WOOCOMMERCE
            and re.match(r"^attribute \d+ (visible|global)$", key)
        ):
            rule = table["attribute 1 visible"]
        if rule is not None:
            out[header] = rule
    return out
