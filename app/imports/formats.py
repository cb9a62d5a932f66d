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
from app.imports.rows import BUILTIN_TARGETS

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
# the parts of an attribute's header that German names otherwise ("name" and "global" are the same)
_GERMAN_ATTRIBUTE_PARTS = {"wert(e)": "value(s)", "sichtbar": "visible", "standard": "default"}


def woo_key(header: str) -> str:
    """A WooCommerce header as its rules name it: folded, and in English ('Regulärer Preis' →
    'regular price')."""
    key = " ".join(header.replace("\ufeff", "").split()).casefold()
    if key in _WOO_GERMAN:
        return _WOO_GERMAN[key]
    attribute = _WOO_GERMAN_ATTRIBUTE.match(key)
    if attribute:
        part = attribute[2]
        return f"attribute {attribute[1]} {_GERMAN_ATTRIBUTE_PARTS.get(part, part)}"
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


def _rule_table(fmt: str, table: str) -> dict[str, ColumnRule]:
    """A format's rules by case-folded header, read from its table: a line per column,
    `header | what | reason`. What the column is: a built-in target (sku, name, status,
    categories, variation_of), `skip`, or a field as `name: type` (an empty name is the header's,
    an empty type is inferred from the values). The reason is said as the format's."""
    rules = {}
    for line in table.strip().splitlines():
        header, what, reason = (part.strip() for part in line.split("|", 2))
        reason = f"{_TITLES[fmt]}: {reason}"
        if what == "skip":
            rule = ColumnRule(reason, skip=True)
        elif ":" in what:
            name, _, type_ = (part.strip() for part in what.partition(":"))
            rule = ColumnRule(reason, name=name or None, type=FieldType(type_) if type_ else None)
        elif what in BUILTIN_TARGETS:
            rule = ColumnRule(reason, builtin=what)
        else:
            raise ValueError(f"{fmt} rule of {header!r}: {what!r} is no built-in target")
        rules[header.casefold()] = rule
    return rules


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

# each format's columns, a line per header: `header | what the column is | why` (`_rule_table`)
_SHOPIFY_RULES = _rule_table(
    SHOPIFY,
    """
    Variant SKU               | sku            | 'Variant SKU' is the SKU (one row per variant)
    SKU                       | sku            | 'SKU' is the variant's SKU (one row per variant)
    Handle                    | handle: string | 'Handle' names the product its variant rows share, not a SKU
    URL handle                | handle: string | 'URL handle' names the product its variant rows share, not a SKU
    Title                     | name           | 'Title' is the product name
    Body (HTML)               | : text         | 'Body (HTML)' is the HTML description
    Description               | : text         | 'Description' is the HTML description
    Product Category          | categories     | 'Product Category' is a category path ('A > B > C')
    Tags                      | : array        | 'Tags' is a comma-separated list
    Published                 | : boolean      | 'Published' is TRUE or FALSE
    Published on online store | : boolean      | 'Published on online store' is TRUE or FALSE
    Status                    | status         | 'Status' is active, draft or archived: the status (draft and archived are inactive)
    Images                    | images: array  | 'Images' (added by the import) lists the product's image URLs: its Image Src and those of its image-only rows
    Variant Barcode           | : string       | 'Variant Barcode' is a code
    Barcode                   | : string       | 'Barcode' is a code
    Gift Card                 | : boolean      | 'Gift Card' is TRUE or FALSE
    Gift card                 | : boolean      | 'Gift card' is TRUE or FALSE
    """,
)

_WOOCOMMERCE_RULES = _rule_table(
    WOOCOMMERCE,
    """
    ID                      | post_id: string | 'ID' is the WordPress post id, not the SKU
    SKU                     | sku             | 'SKU' is the SKU
    Name                    | name            | 'Name' is the product name
    Parent                  | variation_of    | 'Parent' is the parent product's SKU (or id:<post id>)
    Published               | status          | 'Published' is 1 (published), 0 (private) or -1 (draft): the status (0 and -1 are inactive)
    Categories              | categories      | 'Categories' is a comma-separated list of 'A > B' paths
    Description             | : text          | 'Description' is the HTML description
    Short description       | : text          | 'Short description' is HTML text
    In stock?               | : string        | 'In stock?' holds 1, 0 or 'backorder': kept as text
    Backorders allowed?     | : string        | 'Backorders allowed?' holds 1, 0 or 'notify': kept as text
    GTIN, UPC, EAN, or ISBN | gtin: string    | 'GTIN, UPC, EAN, or ISBN' is a code
    Is featured?            | : boolean       | 'Is featured?' is 1 or 0
    Sold individually?      | : boolean       | 'Sold individually?' is 1 or 0
    Allow customer reviews? | : boolean       | 'Allow customer reviews?' is 1 or 0
    Attribute 1 visible     | : boolean       | 'Attribute 1 visible' is 1 or 0
    Attribute 1 global      | : boolean       | 'Attribute 1 global' is 1 or 0
    Tags                    | : array         | 'Tags' is a comma-separated list
    Images                  | : array         | 'Images' is a comma-separated list
    Upsells                 | : array         | 'Upsells' is a comma-separated list
    Cross-sells             | : array         | 'Cross-sells' is a comma-separated list
    Grouped products        | : array         | 'Grouped products' is a comma-separated list
    Brands                  | : array         | 'Brands' is a comma-separated list
    Attribute 1 value(s)    | : array         | attribute values are a comma-separated list
    """,
)

_MAGENTO_RULES = _rule_table(
    MAGENTO,
    """
    sku               | sku        | 'sku' is the SKU
    name              | name       | 'name' is the product name
    categories        | categories | 'categories' lists paths separated by ',' with levels separated by '/'
    product_online    | status     | 'product_online' is the status: 1 enabled, 2 disabled
    description       | : text     | 'description' is HTML
    short_description | : text     | 'short_description' is HTML
    store_view_code   | skip       | 'store_view_code' names a store view's row (its translations): only the default rows, with it empty, are imported
    """,
)

_BIGCOMMERCE_RULES = _rule_table(
    BIGCOMMERCE,
    """
    product code/sku | sku                | 'Product Code/SKU' is the SKU
    code             | sku                | 'Code' is the SKU
    product name     | name               | 'Product Name' is the product name
    name             | name               | 'Name' is the product name
    category         | categories         | 'Category' lists paths separated by ';' with levels separated by '/'
    product id       | product_id: string | 'Product ID' is BigCommerce's id, not the SKU
    """,
)

_SHOPWARE_RULES = _rule_table(
    SHOPWARE,
    """
    productnumber             | sku                        | 'productNumber' is the SKU
    translations.default.name | name                       | 'translations.DEFAULT.name' is the name in the shop's default language
    active                    | status                     | 'active' is the status (1 active, 0 inactive)
    id                        | shopware_id: string        | 'id' is Shopware's product id (a UUID), not the SKU
    parentid                  | shopware_parent_id: string | 'parentId' is the parent's Shopware id, not its SKU: kept as a field (variation_of holds a SKU)
    categories                | category_ids: array        | 'categories' lists Shopware category ids separated by '|', not category paths
    """,
)

_GMC_RULES = _rule_table(
    GOOGLE_MERCHANT_CENTER,
    """
    id                      | sku                             | 'id' is the item's identifier, its SKU
    title                   | name                            | 'title' is the product name
    description             | : text                          | 'description' is text
    google_product_category | google_product_category: string | 'google_product_category' is Google's taxonomy, not the catalog's categories: kept under its name
    product_type            | product_type: string            | 'product_type' is kept under its attribute name
    item_group_id           | item_group_id: string           | 'item_group_id' groups variants: a code
    identifier_exists       | : boolean                       | 'identifier_exists' is yes or no
    size                    | : string                        | 'size' is a label ('M', '8.5', '40-42'), not a quantity
    additional_image_link   | : array                         | 'additional_image_link' is a comma-separated list of URLs
    """,
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
