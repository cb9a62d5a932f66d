"""The product rules: limits, statuses and built-in checks that POST, PATCH, the bulk upsert and
the CSV import share, so that they accept and refuse the same products for the same reasons.

`app/products/schemas.py` builds the request models from these constants and checks; the bulk
upsert (`upsert.py`) and the import's row converter (`app/imports/rows.py`) call the checks. A
check returns the value to store or raises `RuleError` with `"<field>: <why>"`. Field values
(`data`) follow the value core, `app/catalog/values.py`, which takes its integer bounds and
boolean words from here.

A leaf module (it imports nothing from `app`): every layer may use it.
"""

from enum import StrEnum
from typing import Any

# Postgres bigint: ids and integer field values
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
SKU_MAX = 255  # characters, once surrounding whitespace is removed
NAME_MAX = 1000
MAX_CATEGORIES = 1000  # category ids of one product
MAX_VARIATION_ATTRIBUTES = 100
# the words a boolean value (or an import's status cell) may be spelt with, by default
TRUE_WORDS = ("1", "on", "t", "true", "y", "yes")
FALSE_WORDS = ("0", "f", "false", "n", "no", "off")


class RuleError(ValueError):
    """A product breaks a rule; `str()` is `"<field>: <why>"`."""


class ProductStatus(StrEnum):
    active = "active"
    inactive = "inactive"
    deleted = "deleted"


STATUSES: tuple[str, ...] = tuple(ProductStatus)
_STATUS_SET = frozenset(STATUSES)


def is_unicode(text: str) -> bool:
    """False for a string holding a lone surrogate (not encodable as UTF-8)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _storable(field: str, text: str) -> str:
    # Postgres text cannot hold NUL characters nor lone UTF-16 surrogates (which JSON escapes can spell)
    if "\x00" in text or not is_unicode(text):
        raise RuleError(f"{field}: NUL characters and lone surrogates are not allowed")
    return text


def check_sku(sku: str) -> str:
    """The SKU as stored: without surrounding whitespace (" A1 " and "A1" are one product)."""
    sku = sku.strip()
    if not sku:
        raise RuleError("sku: is required")
    if len(sku) > SKU_MAX:
        raise RuleError(f"sku: longer than {SKU_MAX} characters")
    return _storable("sku", sku)


def check_name(name: str) -> str:
    if len(name) > NAME_MAX:
        raise RuleError(f"name: longer than {NAME_MAX} characters")
    if not name.strip():
        raise RuleError("name: must be a non-empty string")
    return _storable("name", name)


def check_status(status: Any) -> str:
    if type(status) is not str or status not in _STATUS_SET:
        raise RuleError(f"status: must be one of {sorted(STATUSES)}")
    return status


def check_categories(categories: Any) -> list[int]:
    """Category ids, each once, in the order given (whether they exist is the database's to say)."""
    if not isinstance(categories, list) or not all(
        type(c) is int and 0 < c <= INT64_MAX for c in categories
    ):
        raise RuleError("categories: must be a list of category ids")
    if len(categories) > MAX_CATEGORIES:
        raise RuleError(f"categories: more than {MAX_CATEGORIES} category ids")
    return list(dict.fromkeys(categories))


def check_variation_of(sku: Any) -> str:
    if not isinstance(sku, str) or len(sku) > SKU_MAX:
        raise RuleError("variation_of: must be a SKU")
    return _storable("variation_of", sku)


def check_variation_attributes(names: Any) -> list[str]:
    if not isinstance(names, list) or not all(isinstance(a, str) for a in names):
        raise RuleError("variation_attributes: must be a list of field names")
    if len(names) > MAX_VARIATION_ATTRIBUTES:
        raise RuleError(f"variation_attributes: more than {MAX_VARIATION_ATTRIBUTES} names")
    for name in names:
        _storable("variation_attributes", name)
    return names


def data_too_large(data_json: str, max_bytes: int) -> str | None:
    """The error for a product whose `data` (as JSON text) is larger than `max_bytes`, else None."""
    # characters ≤ UTF-8 bytes ≤ 4 × characters: encode only when the count cannot decide
    if len(data_json) <= max_bytes // 4 or (
        len(data_json) <= max_bytes and len(data_json.encode()) <= max_bytes
    ):
        return None
    return f"data: larger than the limit of {max_bytes} bytes (as JSON)"
