"""The value core: the field types and how every write path turns a value into a field's value.

POST, PATCH, bulk and the CSV import all coerce with `coerce_value` (and the filters read
query strings with it). A text value is read under explicit `Conventions`: the JSON endpoints
use `DEFAULT_CONVENTIONS` (`.` decimal, no thousands separator, ISO dates, naive datetimes in
UTC, true/false/yes/no/1/0); an import passes its file's. What differs between the paths is
only those conventions, never the rules: a text that does not read under them is an error,
never reinterpreted (`3.700` is 3.7 under decimal `.`, 3700 under decimal `,` with thousands
`.`, and an error under decimal `,` without a thousands separator).

Pure functions. `app.catalog.fields` holds the field model and re-exports what callers use.
"""

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import re2

from app.imports.conventions import DEFAULT_CONVENTIONS, Conventions
from app.products.rules import INT64_MAX, INT64_MIN

if TYPE_CHECKING:
    from app.catalog.fields import FieldDef

# levels of objects/arrays in a value of a key that is not a schema field
MAX_NESTING = 32


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
# the types whose text depends on a file's conventions
TEXT_READ = NUMERIC | TEMPORAL | {FieldType.boolean}


class CoercionError(ValueError):
    """A value that cannot be coerced to its field's type; the message names the field."""


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is the client's error, reported to the client


@lru_cache(maxsize=1024)
def compiled_pattern(pattern: str) -> "re2._Regexp":
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


# --- text under conventions ------------------------------------------------------------------

# plain decimal notation only: ASCII digits, no `_` separators (which int() and float() accept)
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_DECIMAL_RE = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
# what a spreadsheet groups digits with, by the `thousands` convention that stands for them
_GROUP_CHARS = {" ": " \u00a0\u202f\u2009\u2007", "'": "'\u2019", ",": ",", ".": "."}


@lru_cache(maxsize=64)
def _grouped_re(thousands: str, decimal: str) -> "re.Pattern[str]":
    """A number whose whole part is grouped by threes with `thousands`: `1.234.567,5`."""
    sep = "[" + re.escape(_GROUP_CHARS[thousands]) + "]"
    return re.compile(
        rf"^[+-]?[0-9]{{1,3}}(?:{sep}[0-9]{{3}})+(?:{re.escape(decimal)}[0-9]*)?(?:[eE][+-]?[0-9]+)?$"
    )


def _plain_text(text: str, conventions: Conventions) -> str:
    """A number's (stripped) text in plain decimal notation (`.` decimal, no groups), or ValueError."""
    thousands = conventions.thousands
    if thousands is not None and any(c in _GROUP_CHARS[thousands] for c in text):
        if not _grouped_re(thousands, conventions.decimal).match(text):
            raise ValueError(f"not a number (digit groups of three with {thousands!r} expected)")
        text = "".join(c for c in text if c not in _GROUP_CHARS[thousands])
    if conventions.decimal == ",":
        if "." in text:
            raise ValueError("not a number (the decimal separator is ',')")
        text = text.replace(",", ".")
    return text


# `0123`, `00`, `-012.5`: a zero no number is written with marks a code (a ZIP code, a lot number);
# reading it as a number would drop the zero, so such text is refused, not reinterpreted
_LEADING_ZERO_RE = re.compile(r"^[+-]?0[0-9]")


def read_number(text: str, conventions: Conventions = DEFAULT_CONVENTIONS) -> int | float:
    """A number spelled in plain decimal notation with the conventions' separators."""
    plain = text.strip()
    if _LEADING_ZERO_RE.match(plain):
        raise ValueError("not a number: a leading zero marks a code (keep it in a text field)")
    if _INT_RE.match(plain):  # digits alone read the same under every convention
        return int(plain)
    if conventions.decimal != "." or conventions.thousands is not None:
        plain = _plain_text(plain, conventions)
        if _INT_RE.match(plain):
            return int(plain)
    if not _DECIMAL_RE.match(plain):
        raise ValueError("not a number")
    number = float(plain)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def read_integer(text: str, conventions: Conventions = DEFAULT_CONVENTIONS) -> int:
    return _integral(read_number(text, conventions))


def _integral(number: int | float) -> int:
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError("not an integer")
        number = int(number)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError("integer out of range")
    return number


def read_bool(text: str, conventions: Conventions = DEFAULT_CONVENTIONS) -> bool:
    word = text.strip().casefold()
    if word in conventions.true_words:
        return True
    if word in conventions.false_words:
        return False
    raise ValueError(
        f"not a boolean (use {'/'.join(conventions.true_words[:4])} or {'/'.join(conventions.false_words[:4])})"
    )


_LOCAL_DATE = re.compile(r"^([0-9]{1,2})([./-])([0-9]{1,2})\2([0-9]{4})$")
_LOCAL_DATETIME = re.compile(r"^([0-9]{1,2}([./-])[0-9]{1,2}\2[0-9]{4})(?:[T ]|\s+)([0-9].*)$")
# the time after a local date: `9:05`, `10:30:15`, `10:30:15,5`, `10:30 +02:00`
_LOCAL_TIME = re.compile(
    r"^([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,6}))?)?\s*(Z|[+-][0-9]{2}:?[0-9]{2})?$",
    re.IGNORECASE,
)
_DATE_FORMATS = {
    "ymd": "YYYY-MM-DD",
    "dmy": "DD.MM.YYYY or YYYY-MM-DD",
    "mdy": "MM/DD/YYYY or YYYY-MM-DD",
}


def _local_date(text: str, order: str) -> date | None:
    """`31.12.2024` (dmy) or `12/31/2024` (mdy) as a date; None if `text` is not spelled so."""
    m = _LOCAL_DATE.match(text)
    if m is None:
        return None
    first, second = int(m[1]), int(m[3])
    day, month = (first, second) if order == "dmy" else (second, first)
    try:
        return date(int(m[4]), month, day)
    except ValueError:
        raise ValueError("not a valid date") from None


def read_date(text: str, conventions: Conventions = DEFAULT_CONVENTIONS) -> str:
    text = text.strip()
    if conventions.date_order != "ymd":
        local = _local_date(text, conventions.date_order)
        if local is not None:
            return local.isoformat()
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"not a date ({_DATE_FORMATS[conventions.date_order]})") from None


@lru_cache(maxsize=64)
def _zone(name: str):
    return UTC if name == "UTC" else ZoneInfo(name)


def read_datetime(text: str, conventions: Conventions = DEFAULT_CONVENTIONS) -> str:
    """An ISO 8601 datetime (or `31.12.2024 10:30` under dmy/mdy) as UTC text `...Z`.

    Without an offset the time is local to the conventions' `time_zone`."""
    text = text.strip()
    if conventions.date_order != "ymd":
        m = _LOCAL_DATETIME.match(text)
        if m is not None:
            local = _local_date(m[1], conventions.date_order)
            assert local is not None  # m[1] is spelled as _LOCAL_DATE by construction
            t = _LOCAL_TIME.match(m[3])
            if t is None:
                raise ValueError(
                    f"not a datetime ({_DATE_FORMATS[conventions.date_order]}, then HH:MM[:SS])"
                )
            hour, minute, second, fraction, offset = t.groups()
            text = f"{local.isoformat()}T{int(hour):02d}:{minute}:{second or '00'}{'.' + fraction if fraction else ''}{offset or ''}"
        else:
            local = _local_date(text, conventions.date_order)
            if local is not None:
                text = local.isoformat()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ValueError(
            "not an ISO 8601 datetime"
            if conventions.date_order == "ymd"
            else f"not a datetime ({_DATE_FORMATS[conventions.date_order]}, then HH:MM[:SS])"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(conventions.time_zone))
    try:
        in_utc = parsed.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00:00+01:00" is before year 1 in UTC
        raise ValueError("datetime out of range (years 1 to 9999 in UTC)") from None
    return in_utc.isoformat().replace("+00:00", "Z")


def split_list(text: str, conventions: Conventions = DEFAULT_CONVENTIONS) -> list[str]:
    """An `array` cell's items: split on the list separator, trimmed, empty ones dropped."""
    return [item for item in map(str.strip, text.split(conventions.list_separator)) if item]


_TEXT_READERS = {
    FieldType.number: read_number,
    FieldType.integer: read_integer,
    FieldType.boolean: read_bool,
    FieldType.date: read_date,
    FieldType.datetime: read_datetime,
}


def read_text(ftype: FieldType, text: str, conventions: Conventions) -> Any:
    """`text` as a value of a number, integer, boolean, date or datetime field (ValueError if it is
    not one under `conventions`); the text itself for other types."""
    reader = _TEXT_READERS.get(ftype)
    return text if reader is None else reader(text, conventions)


# --- JSON values -----------------------------------------------------------------------------


def _as_number(value: Any, conventions: Conventions) -> int | float:
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    if isinstance(value, str):
        return read_number(value, conventions)
    raise ValueError("not a number")


def plain_number(text: str) -> int | float | None:
    """The finite number `text` spells in plain decimal notation (as number fields read it), else None."""
    try:
        return read_number(text)
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


def _check_pattern(field: "FieldDef", text: str) -> None:
    if field.validation:
        try:
            pattern = compiled_pattern(field.validation)
        except ValueError:  # a schema saved before patterns had to be RE2
            raise ValueError(
                "the field's validation pattern is not RE2 syntax; the schema must be updated"
            ) from None
        if not pattern.search(text):
            raise ValueError(f"does not match {field.validation}")


# One coercer per field type. Each returns a value that already has its type as it is (the
# bulk endpoint's common case) before trying conversions; `validation` only applies to text.


def _coerce_number(_field: "FieldDef", value: Any, conventions: Conventions) -> int | float:
    vtype = type(value)
    if vtype is int or (vtype is float and math.isfinite(value)):
        return value
    return _as_number(value, conventions)


def _coerce_integer(_field: "FieldDef", value: Any, conventions: Conventions) -> int:
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return value
    return _integral(_as_number(value, conventions))


def _coerce_boolean(_field: "FieldDef", value: Any, conventions: Conventions) -> bool:
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return read_bool(value, conventions)
    raise ValueError("not a boolean (use true/false, 1/0, yes/no)")


def _coerce_date(_field: "FieldDef", value: Any, conventions: Conventions) -> str:
    if isinstance(value, str):
        return read_date(value, conventions)
    raise ValueError("not an ISO date (YYYY-MM-DD)")


def _coerce_datetime(_field: "FieldDef", value: Any, conventions: Conventions) -> str:
    if isinstance(value, str):
        return read_datetime(value, conventions)
    raise ValueError("not an ISO 8601 datetime")


def _coerce_array(field: "FieldDef", value: Any, _conventions: Conventions) -> list[str]:
    if (
        field.validation is None
        and type(value) is list
        and all(type(item) is str for item in value)
    ):
        return value
    items = value if isinstance(value, list) else [value]
    result = [_as_string(item) for item in items if item is not None]
    for item in result:
        _check_pattern(field, item)
    return result


def _coerce_url(field: "FieldDef", value: Any, _conventions: Conventions) -> str:
    text = _as_url(value)
    _check_pattern(field, text)
    return text


def _coerce_enum(field: "FieldDef", value: Any, _conventions: Conventions) -> str:
    text = _as_string(value)
    if text not in (field.options or ()):
        raise ValueError(f"{text!r} is not one of {field.options}")
    _check_pattern(field, text)
    return text


def _coerce_string(field: "FieldDef", value: Any, _conventions: Conventions) -> str:
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


def coerce_value(
    field: "FieldDef", value: Any, conventions: Conventions = DEFAULT_CONVENTIONS
) -> Any:
    """Return `value` converted to the field's type, or raise CoercionError("<field>: <why>").

    Text is read under `conventions` (an import's file conventions; the defaults for JSON)."""
    try:
        return _COERCERS.get(field.type, _coerce_string)(field, value, conventions)
    except ValueError as exc:
        raise CoercionError(f"{field.name}: {exc}") from None
    except ArithmeticError:  # OverflowError and the like: a value no type can hold
        raise CoercionError(f"{field.name}: out of range for a {field.type} field") from None
    except (TypeError, RecursionError):
        raise CoercionError(f"{field.name}: not a valid {field.type} value") from None


def coerce_text(field: "FieldDef", text: Any, conventions: Conventions) -> Any:
    """A file's cell (non-empty text, or a value a value mapping put there) → the field's value: an
    `array` cell is split on the list separator first; then `coerce_value` under the file's
    conventions, the rules of every write."""
    if field.type == FieldType.array and type(text) is str:
        text = split_list(text, conventions)
    return coerce_value(field, text, conventions)


def text_reader(field: "FieldDef", conventions: Conventions) -> Callable[[Any], Any]:
    """`coerce_text(field, ·, conventions)` with the type's dispatch done once, for an import's hot
    path: the same functions, but errors are plain ValueErrors (the caller names the field)."""
    reader = _TEXT_READERS.get(field.type)
    if reader is not None:
        if field.type == FieldType.boolean:  # a value mapping may give it a bool rather than text
            return lambda text: (
                reader(text, conventions)
                if type(text) is str
                else coerce_value(field, text, conventions)
            )
        return partial(reader, conventions=conventions)
    if field.validation is None:
        if field.type in (FieldType.string, FieldType.text):
            return lambda text: text
        if field.type == FieldType.url:
            return _as_url
        if field.type == FieldType.array:  # a list of text is an array field's value as it is
            return partial(split_list, conventions=conventions)
    return partial(coerce_text, field, conventions=conventions)


def is_empty(value: Any) -> bool:
    """No value for a required field: null, a blank string or an empty list (after coercion)."""
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def coerce_data(
    fields: dict[str, "FieldDef"], data: dict[str, Any], *, partial: bool = True
) -> dict[str, Any]:
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


def check_required(
    fields: dict[str, "FieldDef"], data: dict[str, Any], *, partial: bool = False
) -> None:
    """Every required field must have a value (`is_empty`): in a new product's data, or, with
    `partial` (data merged into a product), among the fields `data` sets."""
    for name, field in fields.items():
        if field.required and (name in data or not partial) and is_empty(data.get(name)):
            raise CoercionError(f"{name}: is required")
