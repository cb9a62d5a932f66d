"""The tenant's field model and type-aware validation/coercion of product values.

Pure functions: used by every write path (create, patch, bulk, CSV import) and by
the filters, which coerce query-string values with the same rules.
"""

import math
import re
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BUILTIN_NAMES = frozenset(
    "id sku name status categories variation_of variation_attributes created_at updated_at".split()
)
RESERVED_QUERY_NAMES = frozenset("q page page_size ordering cursor limit filters pageSize pageNum sort".split())
RESERVED_NAMES = BUILTIN_NAMES | RESERVED_QUERY_NAMES
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Keys that are not schema fields may still be filtered on; they must look like a plain key.
DATA_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
MAX_FIELDS = 500
# levels of objects/arrays in a value of a key that is not a schema field
MAX_NESTING = 32
MAX_PATTERN = 1000


class FieldType(StrEnum):
    string = "string"
    text = "text"
    number = "number"
    integer = "integer"
    boolean = "boolean"
    date = "date"
    datetime = "datetime"
    url = "url"
    enum = "enum"
    array = "array"


STRING_LIKE = frozenset({FieldType.string, FieldType.text, FieldType.url, FieldType.enum})
# the types whose values (an array's items) are matched against the field's `validation`
VALIDATED = STRING_LIKE | {FieldType.array}
NUMERIC = frozenset({FieldType.number, FieldType.integer})
TEMPORAL = frozenset({FieldType.date, FieldType.datetime})
FACETED = frozenset({FieldType.string, FieldType.enum, FieldType.array})


class FieldDef(BaseModel):
    """A field of the product schema.

    The model's own checks are the ones every stored schema passes; a schema a client sends is
    also checked by `check_schema_fields` (reserved names, RE2 syntax, options that have an effect),
    so that a schema stored before one of those rules existed still loads.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="`^[a-z][a-z0-9_]{0,62}$`; not a built-in name nor a query parameter the API reserves: "
        f"{', '.join(sorted(RESERVED_NAMES))}. A name may contain `__`: a list filter key equal to a field's "
        "name is that field's exact filter, otherwise the operator is what follows the last `__`."
    )
    type: FieldType = FieldType.string
    label: str = ""
    labels: dict[str, str] = Field(default_factory=dict, description="label per locale, e.g. {\"de-de\": \"Marke\"}")
    description: str = ""
    group: str = "general"
    required: bool = False
    unique: bool = Field(default=False, description="no two products may have the same value; not for `array` fields")
    filterable: bool = True
    searchable: bool = False
    options: list[str] | None = Field(
        default=None, description="allowed values of an `enum` field: non-empty, distinct strings"
    )
    validation: str | None = Field(
        default=None,
        description="a regular expression that values of a `string`, `text`, `url` or `enum` field, and each item "
        "of an `array` field, must contain a match of (anchor it with `^...$` to match the whole value); other "
        "types take none. RE2 syntax (https://github.com/google/re2/wiki/Syntax), matched in linear time: no "
        "backreferences or lookaround, `\\z` ends the text (not `\\Z`), `\\d` `\\w` `\\s` `\\b` are ASCII-only "
        "(use `\\p{L}`, `\\p{N}` for letters and digits of every script), `$` matches only at the end of the text. "
        "At most 1,000 characters; `\"\"` is the same as null.",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not FIELD_NAME_RE.match(name):
            raise ValueError("must match ^[a-z][a-z0-9_]{0,62}$")
        return name

    @field_validator("validation")
    @classmethod
    def _check_regex(cls, pattern: str | None) -> str | None:
        if pattern in (None, ""):
            return None
        if len(pattern) > MAX_PATTERN:
            raise ValueError("regular expression is too long")
        return pattern

    @model_validator(mode="after")
    def _check_options(self) -> "FieldDef":
        if self.type == FieldType.enum:
            if not self.options:
                raise ValueError("an enum field needs a non-empty `options` list")
            if len(set(self.options)) != len(self.options):
                raise ValueError("enum options must be unique")
        return self


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a new field (None: it can)."""
    if not FIELD_NAME_RE.match(name):
        return "must match ^[a-z][a-z0-9_]{0,62}$"
    if name in RESERVED_NAMES:
        return f"{name!r} is a reserved name"
    return None


def _field_problem(f: FieldDef) -> str | None:
    """Why a field a client sends is refused, beyond the model's own checks (None: it is fine)."""
    problem = name_problem(f.name)
    if problem:
        return f"name: {problem}"
    if f.unique and f.type == FieldType.array:
        return "unique: uniqueness is not checked for array fields"
    if f.validation is not None:
        if f.type not in VALIDATED:
            return f"validation: {f.type.value} fields take no validation pattern (only string, text, url, enum, array)"
        try:
            _regex(f.validation)
        except ValueError as exc:
            return f"validation: {exc}"
    if f.type == FieldType.enum and any(not option.strip() for option in f.options or ()):
        return "options: an enum option must not be empty"
    return None


def check_schema_fields(fields: list[FieldDef]) -> list[FieldDef]:
    """The rules of a schema a client sends (PUT /schema/, an import's confirmation)."""
    if len(fields) > MAX_FIELDS:
        raise ValueError(f"a schema has at most {MAX_FIELDS} fields")
    seen: set[str] = set()
    for f in fields:
        if f.name in seen:
            raise ValueError(f"field {f.name!r} appears more than once")
        seen.add(f.name)
        problem = _field_problem(f)
        if problem:
            raise ValueError(f"field {f.name!r}: {problem}")
    return fields


class CoercionError(ValueError):
    """A value that cannot be coerced to its field's type; the message names the field."""


_TRUE = frozenset({"true", "t", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "f", "0", "no", "n", "off"})
# plain decimal notation only: ASCII digits, no `_` separators (which int() and float() accept)
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_DECIMAL_RE = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is the client's error, reported to the client


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> "re2._Regexp":
    """A field's `validation` compiled with RE2 (linear-time matching: a pattern like `^(a+)+$` cannot
    stall the process); ValueError if RE2 cannot compile it."""
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else ""
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"not a valid RE2 regular expression: {reason}") from None
    except UnicodeError:
        raise ValueError("not a valid RE2 regular expression: not valid Unicode") from None


def _as_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    if isinstance(value, str):
        text = value.strip()
        if _INT_RE.match(text):
            return int(text)
        if not _DECIMAL_RE.match(text):
            raise ValueError("not a number")
        number = float(text)
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        return number
    raise ValueError("not a number")


def plain_number(text: str) -> int | float | None:
    """The finite number `text` spells in plain decimal notation (as number fields read it), else None."""
    try:
        return _as_number(text)
    except ValueError:
        return None


def _too_deep(value: Any) -> bool:
    """Whether a value nests objects/arrays more than MAX_NESTING levels (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def _as_integer(value: Any) -> int:
    number = _as_number(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError("not an integer")
        number = int(number)
    if not -(2**63) <= number < 2**63:
        raise ValueError("integer out of range")
    return number


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError("not a boolean (use true/false, 1/0, yes/no)")


def _as_date(value: Any) -> str:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise ValueError("not an ISO date (YYYY-MM-DD)")


def _as_datetime(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise ValueError("not an ISO 8601 datetime") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            in_utc = parsed.astimezone(UTC)
        except OverflowError:  # "0001-01-01T00:00:00+01:00" is before year 1 in UTC
            raise ValueError("datetime out of range (years 1 to 9999 in UTC)") from None
        return in_utc.isoformat().replace("+00:00", "Z")
    raise ValueError("not an ISO 8601 datetime")


def _as_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise ValueError("not a string")


# A URL `urlsplit` accepts, checked without its cost: an http(s)/ftp scheme, then a host of plain
# ASCII URL characters (no brackets, spaces or controls, which urlsplit treats specially) up to
# the path, query, fragment or end. Anything else goes through urlsplit.
_PLAIN_URL = re.compile(r"(?:https?|ftp)://[A-Za-z0-9\-._~%!$&'()*+,;=:@]+(?:[/?#]|\Z)")


def _as_url(value: Any) -> str:
    text = _as_string(value).strip()
    if _PLAIN_URL.match(text):
        return text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https", "ftp") or not parts.netloc:
        raise ValueError("not an absolute http(s) URL")
    return text


def _check_pattern(field: FieldDef, text: str) -> None:
    if field.validation:
        try:
            pattern = _regex(field.validation)
        except ValueError:  # a schema saved before patterns had to be RE2
            raise ValueError("the field's validation pattern is not RE2 syntax; the schema must be updated") from None
        if not pattern.search(text):
            raise ValueError(f"does not match {field.validation}")


# One coercer per field type. Each returns a value that already has its type as it is (the
# bulk endpoint's common case) before trying conversions; `validation` only applies to text.


def _coerce_number(_field: FieldDef, value: Any) -> int | float:
    vtype = type(value)
    if vtype is int or (vtype is float and math.isfinite(value)):
        return value
    return _as_number(value)


def _coerce_integer(_field: FieldDef, value: Any) -> int:
    if type(value) is int and -(2**63) <= value < 2**63:
        return value
    return _as_integer(value)


def _coerce_boolean(_field: FieldDef, value: Any) -> bool:
    return value if type(value) is bool else _as_bool(value)


def _coerce_date(_field: FieldDef, value: Any) -> str:
    return _as_date(value)


def _coerce_datetime(_field: FieldDef, value: Any) -> str:
    return _as_datetime(value)


def _coerce_array(field: FieldDef, value: Any) -> list[str]:
    if field.validation is None and type(value) is list and all(type(item) is str for item in value):
        return value
    items = value if isinstance(value, list) else [value]
    result = [_as_string(item) for item in items if item is not None]
    for item in result:
        _check_pattern(field, item)
    return result


def _coerce_url(field: FieldDef, value: Any) -> str:
    text = _as_url(value)
    _check_pattern(field, text)
    return text


def _coerce_enum(field: FieldDef, value: Any) -> str:
    text = _as_string(value)
    if text not in (field.options or ()):
        raise ValueError(f"{text!r} is not one of {field.options}")
    _check_pattern(field, text)
    return text


def _coerce_string(field: FieldDef, value: Any) -> str:
    if field.validation is None and type(value) is str:
        return value
    text = _as_string(value)
    _check_pattern(field, text)
    return text


_COERCERS = {
    FieldType.string: _coerce_string,
    FieldType.text: _coerce_string,
    FieldType.number: _coerce_number,
    FieldType.integer: _coerce_integer,
    FieldType.boolean: _coerce_boolean,
    FieldType.date: _coerce_date,
    FieldType.datetime: _coerce_datetime,
    FieldType.url: _coerce_url,
    FieldType.enum: _coerce_enum,
    FieldType.array: _coerce_array,
}


def coerce_value(field: FieldDef, value: Any) -> Any:
    """Return `value` converted to the field's type, or raise CoercionError("<field>: <why>")."""
    try:
        return _COERCERS.get(field.type, _coerce_string)(field, value)
    except ValueError as exc:
        raise CoercionError(f"{field.name}: {exc}") from None
    except ArithmeticError:  # OverflowError and the like: a value no type can hold
        raise CoercionError(f"{field.name}: out of range for a {field.type} field") from None
    except (TypeError, RecursionError):
        raise CoercionError(f"{field.name}: not a valid {field.type} value") from None


def is_empty(value: Any) -> bool:
    """No value for a required field: null, a blank string or an empty list (after coercion)."""
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def coerce_data(fields: dict[str, FieldDef], data: dict[str, Any], *, partial: bool = True) -> dict[str, Any]:
    """Coerce every schema field present in `data`; other keys are kept as given.

    `None` values are kept (they mean "remove" in a merge patch). A required field
    present in `data` must not be empty (`is_empty`), on every write; with
    `partial=False` (a new product), required fields must be present too.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            # kept as given; deep nesting is refused here, before anything recurses into it
            if isinstance(value, (dict, list)) and _too_deep(value):
                raise CoercionError(f"{key}: nested more than {MAX_NESTING} levels deep")
            out[key] = value
            continue
        coerced = None if value is None else coerce_value(field, value)
        if field.required and is_empty(coerced):
            raise CoercionError(f"{key}: is required")
        out[key] = coerced
    if not partial:
        check_required(fields, out)
    return out


def check_required(fields: dict[str, FieldDef], data: dict[str, Any], *, partial: bool = False) -> None:
    """Every required field must have a value (`is_empty`): in a new product's data, or, with
    `partial` (data merged into a product), among the fields `data` sets."""
    for name, field in fields.items():
        if field.required and (name in data or not partial) and is_empty(data.get(name)):
            raise CoercionError(f"{name}: is required")
