"""Pure rendering of the PIMS shape: attribute values as strings, attribute definitions.

Value rendering (stable, documented in the route description):
- strings (string, text, url, enum, date, datetime fields) are returned as stored;
- `number` fields: fixed-point decimal with at least two decimals and as many more as the
  stored value needs, never an exponent: 100 → "100.00", 12.5 → "12.50", 2.875 → "2.875";
- `integer` fields: plain digits ("42"); other numbers: fixed-point without padding;
- booleans: "1" / "0" (like the definition flags);
- `array` fields and other multi-values: arrays of strings, rendered element by element;
- an object stored under a key: its compact JSON text;
- a missing value: null (an empty array for `array` fields).
"""

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from app.catalog.fields import FieldDef, FieldType
from app.products.rules import STATUSES

ON, OFF = "1", "0"
STATUS_VALIDATION = f"^({'|'.join(STATUSES)})$"
VARIATION_KEYS = ("variation_attributes", "variation_of", "variation_skus", "variation_matrix")


def _flag(value: bool) -> str:
    return ON if value else OFF


def _fixed(number: int | float | Decimal) -> str:
    if isinstance(number, float):
        number = Decimal(
            repr(number)
        )  # the shortest text that round-trips: 2.875, not 2.87499999...
    elif isinstance(number, int):
        return str(number)
    try:
        text = format(number, "f")
    except (InvalidOperation, ValueError):
        return str(number)
    if "." in text:
        text = text.rstrip("0").rstrip(".") or "0"
    return "0" if text == "-0" else text


def render_number(number: int | float | Decimal, *, min_decimals: int = 0) -> str:
    text = _fixed(number)
    if min_decimals:
        whole, _, frac = text.partition(".")
        if len(frac) < min_decimals:
            text = f"{whole}.{frac.ljust(min_decimals, '0')}"
    return text


def render_scalar(value: Any, field_type: FieldType | None = None) -> str | None:
    """One value as a string (None stays None)."""
    if type(value) is str:  # the common case first
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return _flag(value)
    if isinstance(value, (int, float, Decimal)):
        if field_type == FieldType.number:
            return render_number(value, min_decimals=2)
        return render_number(value)
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()  # an object (or anything else) kept as given


def render_multi(value: Any, field_type: FieldType | None = None) -> list[str]:
    """A value as an array of strings: a list element by element, a scalar as one element."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [text for item in items if (text := render_scalar(item, field_type)) is not None]


def render_value(field: FieldDef | None, value: Any) -> str | list[str] | None:
    """An attribute's value in the PIMS shape, by its schema field (None: not a schema field)."""
    field_type = field.type if field is not None else None
    if field_type == FieldType.array or isinstance(value, list):
        return render_multi(value, field_type)
    return render_scalar(value, field_type)


# --- definitions ------------------------------------------------------------------------------


def localized_label(field: FieldDef, locale: str) -> str:
    """The label for `locale`, then for its language (`de` for `de-at`), then the default label, then the name."""
    labels = field.labels
    if locale in labels:
        return labels[locale]
    language = locale.split("-", 1)[0]
    for key in (language, *(k for k in labels if k.split("-", 1)[0] == language)):
        if key in labels:
            return labels[key]
    return field.label or field.name


def enum_dictionary(options: list[str]) -> dict[str, Any]:
    """An enum's allowed values as the one-column dictionary table of the PIMS format."""
    return {
        "visible": [1],
        "sortingMethod": "manual",
        "columns": ["value"],
        "validation": [None],
        "sorting": [None],
        "unique": [1],
        "data": list(options),
    }


def field_definition(field: FieldDef, locale: str) -> dict[str, Any]:
    """The definition of a schema attribute.

    `array` fields are `string` with `collection` "1"; `isIndexable` follows `filterable`
    (filterable attributes are the indexed ones); `value` (a default) is always empty.
    """
    is_array = field.type == FieldType.array
    definition: dict[str, Any] = {
        "type": FieldType.string.value if is_array else field.type.value,
        "collection": _flag(is_array),
        "isUnique": _flag(field.unique),
        "label": {locale: localized_label(field, locale)},
        "comment": {locale: field.description},
        "validation": field.validation or "",
        "isSearchable": _flag(field.searchable),
        "isIndexable": _flag(field.filterable),
        "isFilterable": _flag(field.filterable),
        "group": field.group,
        "isSimpleType": _flag(not is_array and field.type != FieldType.enum),
        "dictionaryIsStatic": _flag(field.type == FieldType.enum),
        "value": "",
    }
    if field.type == FieldType.enum:
        definition["dictionary"] = enum_dictionary(field.options or [])
    return definition


def _builtin(
    label: str,
    comment: str,
    *,
    type_: str = "string",
    collection: bool = False,
    unique: bool = False,
    searchable: bool = False,
    filterable: bool = True,
    validation: str = "",
) -> dict[str, Any]:
    return {
        "type": type_,
        "collection": _flag(collection),
        "isUnique": _flag(unique),
        "label": label,
        "comment": comment,
        "validation": validation,
        "isSearchable": _flag(searchable),
        "isIndexable": _flag(filterable),
        "isFilterable": _flag(filterable),
        "group": "system",
    }


BUILTIN_DEFINITIONS: dict[str, dict[str, Any]] = {
    "sku": _builtin("SKU", "Unique product code", unique=True, searchable=True),
    "categories": _builtin(
        "Categories", "Category paths, names joined with ' > '", collection=True
    ),
    "status": _builtin(
        "Status", f"{', '.join(STATUSES[:-1])} or {STATUSES[-1]}", validation=STATUS_VALIDATION
    ),
    "title": _builtin("Title", "The product name", searchable=True),
}
VARIATION_DEFINITIONS: dict[str, dict[str, Any]] = {
    "variation_attributes": _builtin(
        "Variation attributes",
        "Attributes in which the variations of the product differ",
        collection=True,
        filterable=False,
    ),
    "variation_of": _builtin("Variation of", "SKU of the product this one is a variation of"),
    "variation_skus": _builtin(
        "Variation SKUs",
        "SKUs of the variations of the product, maintained automatically",
        collection=True,
        filterable=False,
    ),
    "variation_matrix": _builtin(
        "Variation matrix",
        "Variation SKU → {attribute: [values]}, the product itself included",
        type_="object",
        filterable=False,
    ),
}
BUILTIN_ATTRIBUTES = frozenset(BUILTIN_DEFINITIONS) | frozenset(VARIATION_DEFINITIONS)
# the reference gives the variation attributes these extra keys too
_VARIATION_EXTRAS = {"isSimpleType": OFF, "dictionaryIsStatic": OFF, "value": ""}


def builtin_definition(name: str, locale: str) -> dict[str, Any]:
    base = BUILTIN_DEFINITIONS.get(name) or VARIATION_DEFINITIONS[name]
    definition = {**base, "label": {locale: base["label"]}, "comment": {locale: base["comment"]}}
    if name in VARIATION_DEFINITIONS:
        definition.update(_VARIATION_EXTRAS, isSimpleType=_flag(name == "variation_of"))
    return definition


def definitions(view_fields: list[FieldDef], locale: str) -> dict[str, dict[str, Any]]:
    """Definitions of every attribute the response can hold for this view (stable for a view, whatever the page)."""
    result = {name: builtin_definition(name, locale) for name in BUILTIN_DEFINITIONS}
    for field in view_fields:
        result[field.name] = field_definition(field, locale)
    for name in VARIATION_DEFINITIONS:
        result[name] = builtin_definition(name, locale)
    return result


# --- products ---------------------------------------------------------------------------------


# 16+ digits in a row: maybe a number that a float would round (orjson parses big integers as floats)
_LONG_DIGITS = re.compile(r"\d{16,}")


def _loads(text: str) -> Any:
    if _LONG_DIGITS.search(text):
        return json.loads(
            text, parse_float=Decimal
        )  # exact, and only for the rare documents that need it
    return orjson.loads(text)


def parse_data(text: str | None) -> dict[str, Any]:
    """A product's `data` JSON text as a dict."""
    data = _loads(text) if text else None
    return data if isinstance(data, dict) else {}


def parse_variations(text: str | None) -> list[tuple[str, dict[str, Any] | None]]:
    """`[[sku, {attribute: value}], ...]` JSON text (null: no variations) as a list of pairs."""
    items = _loads(text) if text else None
    return [(sku, values) for sku, values in items] if isinstance(items, list) else []


def matrix_entry(
    values: dict[str, Any] | None, attributes: list[str], fields: dict[str, FieldDef]
) -> dict[str, list[str]]:
    values = values or {}
    entry = {}
    for name in attributes:
        field = fields.get(name)
        entry[name] = render_multi(values.get(name), field.type if field else None)
    return entry


def product_attributes(
    row: dict[str, Any],
    *,
    view_fields: list[FieldDef],
    fields: dict[str, FieldDef],
) -> dict[str, Any]:
    """The `attributes` object of one product.

    `row` holds: sku, name, status, category_paths, variation_of, variation_attributes, data
    (parsed), children ([[sku, {attribute: value}], ...] or None) and parent_variation_attributes.
    A parent (variation attributes or variations) and a variation (`variation_of`) get the four
    variation keys; a variation's `variation_attributes` are its parent's, its `variation_skus`
    is `[[]]` and its matrix holds only itself.
    """
    data = row["data"]
    attributes: dict[str, Any] = {
        "sku": row["sku"],
        "categories": list(row["category_paths"] or []),
        "status": row["status"],
        "title": row["name"],
    }
    for field in view_fields:
        attributes[field.name] = render_value(field, data.get(field.name))
    children = row.get("children") or []
    own_attributes = list(row["variation_attributes"] or [])
    if children or own_attributes or row["variation_of"] is not None:
        variation_attributes = own_attributes or list(row.get("parent_variation_attributes") or [])
        matrix = {
            sku: matrix_entry(values, variation_attributes, fields) for sku, values in children
        }
        matrix[row["sku"]] = matrix_entry(
            data, variation_attributes, fields
        )  # the product itself, last as in PIMS
        attributes["variation_attributes"] = variation_attributes
        attributes["variation_of"] = row["variation_of"]
        attributes["variation_skus"] = [[sku for sku, _values in children]]
        attributes["variation_matrix"] = matrix
    return attributes
