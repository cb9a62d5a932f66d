"""Pure: one CSV row (a list of strings) → one upsert item (see `UpsertRow.of_valid_item`).

CSV cells are text written by spreadsheets in many locales. The parsers here turn
them into JSON values (`"1.234,56 €"` → 1234.56, `"ja"` → true, `"18.07.2023"` →
`"2023-07-18"`, `"a|b"` → ["a", "b"]); `coerce_value` then applies the schema's own
rules (enum options, regex, URL). Column-level hints found on the sample
(decimal separator, day/month order, list separator) settle ambiguous cells.
"""

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache, partial
from typing import Any

from app.catalog.fields import CoercionError, FieldDef, FieldType, coerce_value
from app.catalog.schemas import MAX_CATEGORY_DEPTH, MAX_CATEGORY_PATHS
from app.products.schemas import SKU_MAX

BUILTIN_TARGETS = ("sku", "name", "status", "categories", "variation_of")
STATUSES = ("active", "inactive", "deleted")
CATEGORY_NAME_MAX = 255
INT64_MAX = 2**63 - 1

# cells that mean "no value" in typed columns (a number column with "n/a" is not a bad row)
NULL_TOKENS = frozenset({"n/a", "na", "#n/a", "null", "none", "nil", "-", "--", "—", "–", "?", "nan"})
_NULL_TOKEN_MAX = max(map(len, NULL_TOKENS))

TRUE_WORDS = frozenset(
    ["true", "t", "yes", "y", "1", "on", "ja", "j", "oui", "si", "sí", "vrai", "wahr", "verdadero", "vero", "waar", "tak", "da", "enabled"]
)
FALSE_WORDS = frozenset(["false", "f", "no", "n", "0", "off", "nein", "non", "faux", "falsch", "falso", "nee", "nie", "disabled"])

_SPACES = " \u00a0\u202f\u2009\u2007"
_CURRENCY_SYMBOLS = "€$£¥₹₽₺₩₪฿₴₦"
_NUMBER_RE = re.compile(
    r"""^
    (?P<s1>[-+\u2212])?\s*
    (?:(?P<c1>[A-Z]{3}|CHF|Fr\.|kr|zł|R\$|US\$|[€$£¥₹₽₺₩₪฿₴₦])\s*)?
    (?P<s2>[-+\u2212])?\s*
    (?P<num>(?:\d[\d.,'’ \u00a0\u202f\u2009\u2007]*)?\d|[.,]\d+)
    (?P<exp>[eE][-+]?\d{1,3})?
    \s*(?P<c2>[A-Z]{3}|CHF|Fr\.?|kr|zł|[€$£¥₹₽₺₩₪฿₴₦%])?
    (?P<s3>-)?
    $""",
    re.VERBOSE,
)
_GROUPED = {sep: re.compile(rf"^\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+$") for sep in ".,"}
_PLAIN_INT = re.compile(r"^-?\d{1,18}$")
_PLAIN_DECIMAL = re.compile(r"^(-?\d{1,15})[.,](\d{1,15})$")
_SPACED = re.compile(r"['’ \u00a0\u202f\u2009\u2007]")
_GROUPED_SPACE = re.compile(r"^\d{1,3}(?: \d{3})+$")

_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_DMY_DATE = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?\s*(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE)
_SPLIT_DATETIME = re.compile(r"^(\S+?)(?:[T ]|\s+)(\d{1,2}:\d{2}.*)$")


# --- cell parsers ----------------------------------------------------------------------------


def is_null_token(text: str) -> bool:
    # lower() never shortens a string: a longer cell is no token, and need not be lowered
    return len(text) <= _NULL_TOKEN_MAX and text.lower() in NULL_TOKENS


def parse_number(text: str, *, decimal: str | None = None, integer: bool = False) -> int | float:
    """`"1.234,56 €"`, `"$1,234.56"`, `"CHF 1'234.50"`, `"(12.50)"`, `"12,5%"` → a number.

    `decimal` ("," or ".") is the column's decimal separator when known; it only decides
    cells like `"1,234"` that read either way. With `integer`, such a cell is a thousands group.
    """
    cell = text.strip()
    if _PLAIN_INT.match(cell):  # fast paths for the common plain cells
        return int(cell)
    plain = _PLAIN_DECIMAL.match(cell)
    if plain and (len(plain[2]) != 3 or (not integer and decimal in (None, cell[len(plain[1])]))):
        value = float(plain[1] + "." + plain[2])
        if integer:
            if not value.is_integer():
                raise ValueError("not an integer")
            return int(value)
        return value
    negative = False
    if len(cell) > 2 and cell[0] == "(" and cell[-1] == ")":  # accounting style negative
        negative, cell = True, cell[1:-1].strip()
    m = _NUMBER_RE.match(cell)
    if not m:
        raise ValueError("not a number")
    signs = [s for s in (m["s1"], m["s2"], m["s3"]) if s]
    if len(signs) > 1:
        raise ValueError("not a number")
    if signs and signs[0] in "-\u2212":
        negative = not negative
    num = m["num"]
    spaced = _SPACED.sub(" ", num)
    if " " in spaced:  # spaces and apostrophes only ever group thousands: "1 234,56", "1'234.50"
        whole, _, frac = spaced.partition("," if "," in spaced and "." not in spaced else ".")
        if not _GROUPED_SPACE.match(whole) or " " in frac:
            raise ValueError("not a number")
        num = spaced.replace(" ", "")
    dots, commas = num.count("."), num.count(",")
    if dots and commas:
        dec = "." if num.rfind(".") > num.rfind(",") else ","
        thousands = "," if dec == "." else "."
        whole, _, frac = num.rpartition(dec)
        if not _GROUPED[thousands].match(whole) and not whole.isdigit():
            raise ValueError("not a number")
        num = whole.replace(thousands, "") + "." + frac
    elif dots or commas:
        sep = "." if dots else ","
        if dots + commas > 1:
            if not _GROUPED[sep].match(num):
                raise ValueError("not a number")
            num = num.replace(sep, "")
        else:
            whole, _, frac = num.partition(sep)
            ambiguous = len(frac) == 3 and 1 <= len(whole) <= 3 and whole != "0"
            grouped = ambiguous and (integer or (decimal is not None and decimal != sep))
            num = whole + frac if grouped else (whole or "0") + "." + frac
    if m["exp"]:
        num += m["exp"]
    if "." in num or "e" in num.lower():
        value: int | float = float(num)
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        if integer:
            if not value.is_integer():
                raise ValueError("not an integer")
            value = int(value)
            if value > INT64_MAX:  # "1e30": integer fields hold 64 bits, like `coerce_value` checks
                raise ValueError("integer out of range")
    else:
        value = int(num)
        if value > INT64_MAX:  # JSON numbers beyond 64 bits do not survive the round trip
            if integer:
                raise ValueError("integer out of range")
            value = float(value)
    return -value if negative else value


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("not a boolean (use true/false, yes/no, ja/nein, oui/non, 1/0)")


def _make_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError("not a valid date") from None


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        year += 2000 if year < 70 else 1900
    return year


def parse_date(text: str, *, order: str | None = None) -> str:
    """ISO `2024-12-04`, `04.12.2024`, `04/12/2024`, `12/04/2024` (with order "mdy") → `"2024-12-04"`."""
    cell = text.strip()
    m = _ISO_DATE.match(cell)
    if m:
        return _make_date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    m = _DMY_DATE.match(cell)
    if m:
        first, second, year = int(m[1]), int(m[3]), _year(m[4])
        if order == "mdy" or (order is None and first <= 12 < second):
            month, day = first, second
        else:
            day, month = first, second
        return _make_date(year, month, day).isoformat()
    dt = _split_datetime(cell, order)
    if dt is not None and dt.time() == time(0) and dt.utcoffset() in (None, timedelta(0)):
        return dt.date().isoformat()
    raise ValueError("not a date (YYYY-MM-DD, DD.MM.YYYY or DD/MM/YYYY)")


def _split_datetime(cell: str, order: str | None) -> datetime | None:
    m = _SPLIT_DATETIME.match(cell)
    if not m:
        return None
    try:
        day = date.fromisoformat(parse_date(m[1], order=order))
    except ValueError:
        return None
    t = _TIME.match(m[2].strip())
    if not t:
        return None
    hour, minute, second = int(t[1]), int(t[2]), int(t[3] or 0)
    micro = int((t[4] or "0").ljust(6, "0"))
    tz = None
    if t[5]:
        if t[5].upper() == "Z":
            tz = UTC
        else:
            sign = 1 if t[5][0] == "+" else -1
            digits = t[5][1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime.combine(day, time(hour, minute, second, micro), tz)
    except ValueError:
        return None


def parse_datetime(text: str, *, order: str | None = None) -> str:
    """ISO 8601, `2024-12-04 10:30`, `04.12.2024 10:30:00` → an ISO string (UTC when no offset is given)."""
    cell = text.strip()
    try:
        datetime.fromisoformat(cell[:-1] + "+00:00" if cell.endswith(("Z", "z")) else cell)
        return cell
    except ValueError:
        pass
    dt = _split_datetime(cell, order)
    if dt is None:
        if _ISO_DATE.match(cell) or _DMY_DATE.match(cell):
            return parse_date(cell, order=order) + "T00:00:00"
        raise ValueError("not a datetime (ISO 8601 or DD.MM.YYYY HH:MM)")
    return dt.isoformat()


def split_array(text: str, *, sep: str | None = None) -> list[str]:
    """`"a|b"`, `"a; b"` → ["a", "b"]; `sep` is the column's separator when known."""
    if sep is None:
        sep = "|" if "|" in text else ";" if ";" in text else None
    parts = text.split(sep) if sep else [text]
    return [p.strip() for p in parts if p.strip()]


@lru_cache(maxsize=4096)  # category cells repeat across rows
def parse_category_paths(text: str) -> tuple[str, ...]:
    """`"Men > Shoes|Sale"` → ("Men > Shoes", "Sale") (normalised like `ensure_category_paths`).

    At most MAX_CATEGORY_PATHS paths of at most MAX_CATEGORY_DEPTH levels: a longer cell is an error."""
    paths: dict[str, None] = {}
    for raw in text.split("|"):
        parts = [p.strip() for p in raw.split(">") if p.strip()]
        if not parts:
            continue
        if len(parts) > MAX_CATEGORY_DEPTH:
            raise ValueError(f"a category path is {len(parts)} levels deep; at most {MAX_CATEGORY_DEPTH} levels are allowed")
        if any(len(p) > CATEGORY_NAME_MAX for p in parts):
            raise ValueError(f"a category name is longer than {CATEGORY_NAME_MAX} characters")
        paths[" > ".join(parts)] = None
        if len(paths) > MAX_CATEGORY_PATHS:
            raise ValueError(f"more than {MAX_CATEGORY_PATHS} category paths in one cell")
    return tuple(paths)


def parse_status(text: str) -> str:
    word = text.strip().lower()
    if word in STATUSES:
        return word
    if word in TRUE_WORDS or word in ("aktiv", "actif", "activo", "attivo", "published", "online"):
        return "active"
    if word in FALSE_WORDS or word in ("inaktiv", "inactif", "inactivo", "inattivo", "unpublished", "offline", "disabled"):
        return "inactive"
    if word in ("deleted", "gelöscht", "supprimé", "eliminado", "archived"):
        return "deleted"
    raise ValueError(f"not a status ({', '.join(STATUSES)}, or a yes/no value)")


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def parse_cell(ftype: FieldType, cell: str, hints: dict[str, Any]) -> Any:
    """A non-empty, stripped cell → the JSON value for a field of type `ftype` (None: a null token)."""
    if ftype in (FieldType.string, FieldType.text, FieldType.url):
        return cell
    if ftype == FieldType.enum:
        options = hints.get("options")
        return options.get(cell.casefold(), cell) if options else cell
    if is_null_token(cell):
        return None
    parse = typed_parser(ftype, hints)
    return cell if parse is None else parse(cell)


def typed_parser(ftype: FieldType, hints: dict[str, Any]) -> Callable[[str], Any] | None:
    """The spreadsheet-cell parser of a number, integer, boolean, date, datetime or array column
    (None for other types: their text is the value), with the column's hints applied."""
    match ftype:
        case FieldType.number:
            return partial(parse_number, decimal=hints.get("decimal"))
        case FieldType.integer:
            return partial(parse_number, decimal=hints.get("decimal"), integer=True)
        case FieldType.boolean:
            return parse_bool
        case FieldType.date:
            return partial(parse_date, order=hints.get("date_order"))
        case FieldType.datetime:
            return partial(parse_datetime, order=hints.get("date_order"))
        case FieldType.array:
            return partial(split_array, sep=hints.get("array_sep"))
    return None


# --- row conversion --------------------------------------------------------------------------


class RowError(ValueError):
    """The row is rejected; the message says why (prefixed with the target field)."""


@dataclass(slots=True)
class ConvertedRow:
    item: dict[str, Any]
    category_paths: tuple[str, ...] | None  # None: the row does not set categories


def _check_sku_length(cell: str) -> str:
    if len(cell) > SKU_MAX:
        raise ValueError(f"longer than {SKU_MAX} characters")
    return cell


def _cell_parser(target: str, field: FieldDef | None, hints: dict[str, Any]) -> Callable[[str], Any] | None:
    """The function that turns a stripped, non-empty cell into the item's value (None: the text as is)."""
    if field is None:
        return {"name": None, "status": parse_status, "variation_of": _check_sku_length}[target]
    if field.type == FieldType.enum:
        # "bleu" for the option "Bleu": spreadsheets are not careful about case
        options = {o.casefold(): o for o in field.options or ()}

        def parse_option(cell: str) -> str:
            option = options.get(cell.casefold())
            return option if option is not None else coerce_value(field, cell)  # not an option: its error

        return parse_option
    return typed_parser(field.type, hints)


# typed columns read null tokens ("n/a", "-", ...) as no value
_NULL_TOKEN_TYPES = frozenset({FieldType.number, FieldType.integer, FieldType.boolean, FieldType.date, FieldType.datetime})
# the parsers already give these types their canonical JSON value; others need coerce_value too
_CANONICAL_AFTER_PARSE = frozenset(
    {FieldType.number, FieldType.integer, FieldType.boolean, FieldType.date, FieldType.array, FieldType.enum}
)


class RowConverter:
    """Built once per import from the confirmed mapping and schema; `convert()` per row.

    A row's cells are parsed (spreadsheet formats) and then coerced with the schema's
    own rules (`coerce_value`: enum options, regex, URL, UTC datetimes), so a bad cell
    rejects exactly its row, with the column named in the message.
    """

    def __init__(
        self,
        *,
        headers: list[str],
        mapping: dict[str, str | None],
        fields: dict[str, FieldDef],
        hints: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        hints = hints or {}
        self.width = len(headers)
        self.fields = fields
        self.sku_index: int | None = None
        self.category_column: tuple[int, str] | None = None
        # per mapped column: cell index, target, parser or None, whether null tokens mean no value,
        # field to coerce with or None, header
        self.columns: list[tuple[int, str, Callable[[str], Any] | None, bool, FieldDef | None, str]] = []
        for index, header in enumerate(headers):
            target = mapping.get(header)
            if not target:
                continue
            if target == "sku":
                self.sku_index = index
            elif target == "categories":
                self.category_column = (index, header)
            elif target in BUILTIN_TARGETS:
                self.columns.append((index, target, _cell_parser(target, None, {}), False, None, header))
            elif target in fields:
                field = fields[target]
                parse = _cell_parser(target, field, hints.get(header, {}))
                coerce = field if field.type not in _CANONICAL_AFTER_PARSE or field.validation else None
                self.columns.append((index, target, parse, field.type in _NULL_TOKEN_TYPES, coerce, header))
            else:
                raise ValueError(f"{target!r} is not a field of the schema")
        if self.sku_index is None:
            raise ValueError("no column maps to sku")

    def sku_of(self, cells: list[str]) -> str | None:
        if self.sku_index is not None and self.sku_index < len(cells):
            return cells[self.sku_index].strip() or None
        return None

    def convert(self, cells: list[str]) -> ConvertedRow:
        n = len(cells)
        if n > self.width and any(c.strip() for c in cells[self.width :]):
            raise RowError(f"the row has {n} cells, the header has {self.width}")
        sku = cells[self.sku_index].strip() if self.sku_index < n else ""
        if not sku:
            raise RowError("sku: is required (the SKU cell is empty)")
        if len(sku) > SKU_MAX:
            raise RowError(f"sku: longer than {SKU_MAX} characters")
        item: dict[str, Any] = {"sku": sku}
        for index, target, parse, skips_null_tokens, field, header in self.columns:
            if index >= n:
                continue
            cell = cells[index].strip()
            if not cell or (skips_null_tokens and is_null_token(cell)):
                continue  # an empty cell, or "n/a" in a typed column, leaves the value unset
            try:
                value = cell if parse is None else parse(cell)
                item[target] = value if field is None else coerce_value(field, value)
            except CoercionError as exc:
                raise RowError(f"{exc} (column {header!r})") from None
            except ValueError as exc:
                raise RowError(f"{target}: {exc} (column {header!r}: {cell[:60]!r})") from None
        paths = None
        if self.category_column is not None and self.category_column[0] < n:
            cell = cells[self.category_column[0]].strip()
            if cell:
                try:
                    paths = parse_category_paths(cell)
                except ValueError as exc:
                    raise RowError(f"categories: {exc} (column {self.category_column[1]!r})") from None
        return ConvertedRow(item, paths)


def merge_items(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """Two rows of one SKU in one batch: the same result as applying them one after the other."""
    return {**earlier, **later}
