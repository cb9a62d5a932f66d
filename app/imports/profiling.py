"""Pure: the sampled values of one CSV column → its type, why, and what would go wrong.

The values come from the start of the file and from windows in its middle and end (see
`sniffing.rows_in_window`). A type is only suggested when the values support it without
changing any of them: identifiers (leading zeros, letter+digit codes, `1E7`, headers that
name codes) stay text; a column is `integer` only when no value has a fractional part; an
`enum` only when the whole file shows a closed set; a list only with one separator in short,
repetitive items; a category path only in short `A > B` cells without markup. Every decision
leaves a `reason`, and every value the import would reject a `warning`.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.catalog.fields import FieldType
from app.imports.headers import code_header
from app.imports.rows import (
    FALSE_WORDS,
    TRUE_WORDS,
    is_null_token,
    parse_cell,
    parse_date,
    parse_datetime,
    parse_number,
)

TYPE_SAMPLE_VALUES = 2000  # values the type tests look at: the first ones, then the windows'
MAX_ENUM_OPTIONS = 20
SAMPLES_PER_COLUMN = 5
THIN = 10  # fewer values than this are thin evidence: the confidence stays below 0.6
LOW = 0.59

_CODE_RE = re.compile(r"^[\w\-./#:+]{1,64}$")
URL_RE = re.compile(r"^(https?|ftp)://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_HTML_RE = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>|&(?:[a-z]{2,8}|#\d{2,5});")
_BOOLEAN_HEADER = re.compile(
    r"(^is |^has |active|enabled|available|in stock|flag|aktiv|verfugbar|lieferbar|disponible|actif|activo|attivo|published)"
)
_CURRENCY_CODES = frozenset(
    "USD EUR GBP CHF JPY CNY CAD AUD NZD SEK NOK DKK ISK PLN CZK HUF RON BGN TRY RUB UAH INR BRL MXN ARS CLP COP "
    "PEN ZAR ILS AED SAR QAR SGD HKD KRW TWD THB MYR IDR PHP VND EGP NGN KES MAD".split()
)
_DECORATED = re.compile(
    r"^(?:(?P<pre>[A-Z]{3}|US\$|R\$|Fr\.|[€$£¥₹₽₺₩₪฿₴₦])\s*)?"
    r"(?P<core>[-+\u2212]?\s*(?:\d[\d.,'’ \u00a0\u202f\u2009]*)?\d(?:[eE][-+]?\d+)?|[-+]?[.,]\d+)"
    r"\s*(?P<post>[A-Z]{3}|[€$£¥₹₽₺₩₪฿₴₦%])?$"
)
_GROUPED = {sep: re.compile(rf"^[1-9]\d{{0,2}}(?:{re.escape(sep)}\d{{3}})+$") for sep in ".,"}
_LEADING_ZERO = re.compile(r"^[-+]?0\d")
_ALNUM_CODE = re.compile(r"^(?:[A-Za-z]{1,6}[-_ /.#]?\d[\d\-_/.]*|\d+[-_/]?[A-Za-z]{1,4}\d*)$")
_DOTTED = re.compile(r"^\d+(?:[.\-/_]\d+){2,}$")  # versions, not numbers
_LONG_DIGITS = re.compile(r"^\d{12,}$")  # EAN, UPC, GTIN-14: identifiers, not quantities
_DMY_SLASH = re.compile(r"^(\d{1,2})/(\d{1,2})/\d{2,4}\b")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


@dataclass
class ColumnProfile:
    header: str
    values: list[str]  # non-empty stripped cells: the start of the file, then the windows'
    rows: int  # sampled rows
    head_values: int = 0  # how many of `values` come from the start of the file
    type: FieldType = FieldType.string
    confidence: float = 0.5
    reason: str = ""  # why this type
    warnings: list[str] = field(default_factory=list)
    hints: dict[str, Any] = field(default_factory=dict)
    options: list[str] | None = None
    samples: list[str] = field(default_factory=list)
    fill: float = 0.0  # share of rows with a value
    unique: float = 0.0  # distinct / non-empty
    code_like: float = 0.0
    with_spaces: float = 0.0
    markup: bool = False  # HTML in the values
    path_like: float = 0.0  # share of values that read as category paths ("A > B", "A > B, C > D")
    code_reason: str | None = None  # why the values are identifiers, when they are


def share(values: list[str], test, *, at_least: float = 0.0) -> float:
    """Share of `values` passing `test`; gives up early (returns 0) once `at_least` is out of reach."""
    if not values:
        return 0.0
    allowed_misses = len(values) - at_least * len(values)
    ok = misses = 0
    for v in values:
        try:
            if test(v) is not False:
                ok += 1
                continue
        except ValueError:
            pass
        misses += 1
        if misses > allowed_misses:
            return 0.0
    return ok / len(values)


def count(n: int, what: str) -> str:
    return f"{n:,} {what}" if n == 1 else f"{n:,} {what}s"


# --- numbers ---------------------------------------------------------------------------------


def decimal_votes(values: list[str]) -> Counter[str]:
    """Cells that can only be read one way: `12.50`, `0,975`, `1.234,56` name their decimal separator."""
    votes: Counter[str] = Counter()
    for v in values[:TYPE_SAMPLE_VALUES]:
        m = _DECORATED.match(v)
        if not m:
            continue
        core = m["core"].lstrip("+-\u2212 ")
        if "," in core and "." in core:
            votes["." if core.rfind(".") > core.rfind(",") else ","] += 1
            continue
        for sep in ".,":
            if core.count(sep) == 1:
                whole, frac = core.split(sep)
                if frac.isdigit() and (len(frac) != 3 or whole in ("", "0")):
                    votes[sep] += 1
    return votes


def number_kind(cell: str, decimal: str | None) -> tuple[str, str | None]:
    """How a cell reads as a number: ("int" | "frac" | "ambiguous" | "code" | "bad" | "text", currency).

    "code" is an identifier that a loose parser would turn into a number ("02134", "1E7",
    "SKU-12", "4006381333931"); "ambiguous" is "3.700" while the decimal separator is unknown;
    "bad" is a number written with the other convention ("1,5" where "." is the decimal).
    """
    m = _DECORATED.match(cell)
    if m is None or (m["pre"] and len(m["pre"]) == 3 and m["pre"] not in _CURRENCY_CODES):
        if _ALNUM_CODE.match(cell) or _DOTTED.match(cell):
            return "code", None  # "SKU-12", "ABC 5", "1.2.3": a loose number parser reads -12, 5, 1.2
        return ("bad" if any(c.isdigit() for c in cell) and not any(c.isalpha() for c in cell) else "text"), None
    post = m["post"]
    if post and len(post) == 3 and post not in _CURRENCY_CODES:
        return "code", None
    currency = m["pre"] or (post if post != "%" else None)
    core = m["core"].replace("\u2212", "-").strip()
    unsigned = core.lstrip("+-").strip()
    if "e" in core.lower() or _LEADING_ZERO.match(core) or _LONG_DIGITS.match(unsigned):
        return "code", None
    try:
        parse_number(cell, decimal=decimal)
    except ValueError:
        return ("code" if _DOTTED.match(unsigned) else "bad"), currency
    seps = [c for c in unsigned if c in ".,"]
    if not seps:
        return "int", currency
    if decimal:
        thousands = "," if decimal == "." else "."
        if unsigned.count(decimal) > 1:
            return "bad", currency
        whole, _, frac = unsigned.rpartition(decimal) if decimal in unsigned else (unsigned, "", "")
        if thousands in frac or (thousands in whole and not _GROUPED[thousands].match(whole)):
            return "bad", currency
        return ("frac" if decimal in unsigned else "int"), currency
    if len(set(seps)) == 2:
        return "frac", currency
    if len(seps) > 1:
        return "int", currency  # 1.234.567
    whole, frac = re.split(r"[.,]", unsigned)
    if len(frac) == 3 and whole not in ("", "0"):
        return "ambiguous", currency
    return "frac", currency


# --- the type of a column --------------------------------------------------------------------


def _path_like(value: str, list_sep: str | None) -> bool:
    """'Men > Shoes', 'A > B|C > D': short segments, a few levels, no markup, no prose."""
    if len(value) > 500 or "\n" in value or "<" in value or ">" not in value:
        return False
    for path in value.split(list_sep) if list_sep else [value]:
        segments = [s.strip() for s in path.split(">")]
        if not 1 <= len(segments) <= 8:
            return False
        if any(not s or len(s) > 60 or len(s.split()) > 6 for s in segments):
            return False
    return True


def category_separator(values: list[str]) -> str | None:
    """How several paths share a cell: '|' (ours), or ',' / ';' when every part is itself a path."""
    for sep in ("|", ",", ";"):
        cells = [v for v in values if sep in v]
        if cells and all(all(">" in part for part in v.split(sep) if part.strip()) for v in cells):
            return sep
        if sep == "|" and cells:
            return sep
    return None


_LIST_SEPARATORS = ("|", ";", ",")


def list_separator(values: list[str], *, delimiter: str, allowed: tuple[str, ...] = ("|", ";")) -> tuple[str | None, str]:
    """The separator of a list column, or None and why not.

    A list has short items that repeat across rows ("steel|brass", "S;M;L"); free text with a
    `;` ("Tisch mit Schublade; groß") has long, one-off parts.
    """
    present = [s for s in allowed if s != delimiter and any(s in v for v in values)]
    if not present:
        return None, "no list separator"
    if len(present) > 1:
        return None, f"several separators ({' '.join(present)}) in the cells"
    sep = present[0]
    with_sep = [v for v in values if sep in v]
    items = [p.strip() for v in values for p in v.split(sep)]
    if any(not item for v in with_sep for item in (p.strip() for p in v.split(sep))):
        return None, f"empty items between {sep!r}"
    if len(with_sep) < 0.3 * len(values) and len(with_sep) < 3:
        return None, f"{sep!r} in few cells"
    if max(map(len, items)) > 60 or sum(map(len, items)) / len(items) > 30 or max(len(i.split()) for i in items) > 4:
        return None, f"the parts between {sep!r} are long: text, not a list"
    if len(items) >= 20 and len(set(items)) > 0.6 * len(items):
        return None, f"the parts between {sep!r} rarely repeat: text, not a list"
    return sep, f"short items separated by {sep!r}"


def _decide_numbers(prof: ColumnProfile, typed: list[str], decimal: str | None) -> bool:
    """Type the column `integer` or `number` when its values are numbers; True when decided."""
    kinds: Counter[str] = Counter()
    currencies: Counter[str] = Counter()
    examples: dict[str, str] = {}
    column_decimal = decimal
    if column_decimal is None:
        votes = decimal_votes(typed)
        if len(votes) == 1:
            column_decimal = next(iter(votes))
    for v in typed:
        kind, currency = number_kind(v, column_decimal)
        kinds[kind] += 1
        examples.setdefault(kind, v)
        if currency:
            currencies[currency] += 1
    total = len(typed)
    numeric = kinds["int"] + kinds["frac"] + kinds["ambiguous"]
    if numeric + kinds["code"] + kinds["bad"] < 0.8 * total:
        return False
    if kinds["code"]:
        prof.type = FieldType.string
        prof.code_reason = f"values like {examples['code'][:40]!r} are codes, not quantities"
        prof.reason = f"type string: {prof.code_reason}"
        prof.confidence = 0.85
        return True
    if numeric < 0.8 * total:
        return False
    if kinds["ambiguous"] and column_decimal is None:
        prof.type = FieldType.string
        prof.reason = (
            f"type string: {examples['ambiguous']!r} reads as a decimal or as thousands, and the file never says "
            "which separator is the decimal one"
        )
        prof.warnings.append(
            f"{count(kinds['ambiguous'], 'sampled value')} like {examples['ambiguous']!r} could be read two ways: "
            "kept as text; map the column to a number field and set the decimal separator to import numbers"
        )
        prof.confidence = 0.4
        return True
    if len(currencies) > 1:
        prof.type = FieldType.string
        names = ", ".join(c for c, _ in currencies.most_common(4))
        prof.reason = f"type string: the values carry different currencies ({names}); a number would lose them"
        prof.confidence = 0.6
        return True
    fractional = kinds["frac"] or (kinds["ambiguous"] and column_decimal == ".")
    prof.type = FieldType.number if fractional else FieldType.integer
    if column_decimal:
        prof.hints["decimal"] = column_decimal
    if prof.type == FieldType.integer:
        prof.reason = f"type integer: {count(numeric, 'sampled value')} {'is a whole number' if numeric == 1 else 'are whole numbers'}"
    else:
        example = examples.get("frac") or examples.get("ambiguous")
        prof.reason = f"type number: values have a fractional part ({example!r}, decimal separator {column_decimal or '.'!r})"
    if currencies:
        currency = next(iter(currencies))
        prof.hints["currency"] = currency
        prof.reason += f"; the values carry the currency {currency}, the number is stored"
    failed = total - numeric
    ratio = numeric / total
    prof.confidence = round(min(0.95, ratio) if ratio >= 0.98 else min(LOW, ratio), 2)
    if failed:
        under = f" under decimal {column_decimal!r}" if column_decimal else ""
        example = examples.get("bad") or examples.get("text")
        prof.warnings.append(
            f"{failed:,} of {total:,} sampled values are not numbers{under} (e.g. {example[:40]!r}): those rows would be rejected"
        )
    return True


def _decide_dates(prof: ColumnProfile, typed: list[str], date_order: str | None) -> bool:
    total = len(typed)
    dates = share(typed, lambda v: parse_date(v, order=date_order), at_least=0.9)
    if dates >= 0.9:
        prof.type = FieldType.date
        prof.reason = "type date: the values are dates"
    else:
        datetimes = share(typed, lambda v: ":" in v and parse_datetime(v, order=date_order), at_least=0.9)
        if datetimes < 0.9:
            return False
        prof.type = FieldType.datetime
        prof.reason = "type datetime: the values are dates with a time"
        naive = sum(1 for v in typed if not _OFFSET.search(v))
        if naive:
            prof.warnings.append(
                f"{naive:,} of {total:,} sampled values have no UTC offset: they are read in the file's time zone"
            )
        dates = datetimes
    prof.confidence = round(min(0.95, dates) if dates >= 0.98 else min(LOW, dates), 2)
    slashed = [m for m in map(_DMY_SLASH.match, typed[:TYPE_SAMPLE_VALUES]) if m]
    if slashed and date_order is None and not any(int(m[1]) > 12 or int(m[2]) > 12 for m in slashed):
        prof.warnings.append(
            f"day and month order cannot be told from the values (e.g. {slashed[0][0]!r}): read as day first"
        )
        prof.confidence = min(prof.confidence, 0.5)
    if dates < 1:
        prof.warnings.append(
            f"{round(total * (1 - dates)):,} of {total:,} sampled values are not {prof.type.value}s: those rows would be rejected"
        )
    if date_order:
        prof.hints["date_order"] = date_order
    return True


def _date_order(values: list[str]) -> str | None:
    day_first = month_first = False
    for v in values[:TYPE_SAMPLE_VALUES]:
        m = re.match(r"^(\d{1,2})[./-](\d{1,2})[./-]\d{2,4}\b", v)
        if m:
            a, b = int(m[1]), int(m[2])
            day_first |= a > 12
            month_first |= b > 12
    if day_first != month_first:
        return "dmy" if day_first else "mdy"
    return None


def profile_column(
    header: str,
    cells: list[str],
    *,
    window_cells: list[str] = (),
    delimiter: str,
    complete: bool,
    header_norm: str = "",
    decimal: str | None = None,
    list_separators: tuple[str, ...] = ("|", ";"),
) -> ColumnProfile:
    """Profile one column from its cells at the start of the file and in the later windows.

    `decimal` is the file's decimal separator when known; `list_separators` the separators a
    list may use in this file (a known export format allows ',').
    """
    head = [c.strip() for c in cells if c and c.strip()]
    later = [c.strip() for c in window_cells if c and c.strip()]
    values = head + later
    prof = ColumnProfile(header=header, values=values, rows=len(cells) + len(window_cells), head_values=len(head))
    distinct = list(dict.fromkeys(values))
    prof.samples = [v[:200] for v in distinct[:SAMPLES_PER_COLUMN]]
    if not values:
        prof.confidence = 0.3
        prof.reason = "type string: no values in the sample"
        return prof
    n = len(values)
    prof.fill = n / max(prof.rows, 1)
    prof.unique = len(distinct) / n
    prof.code_like = share(values, lambda v: bool(_CODE_RE.match(v)))
    prof.with_spaces = share(values, lambda v: " " in v)
    prof.markup = any(_HTML_RE.search(v) for v in values[:TYPE_SAMPLE_VALUES])
    category_sep = category_separator(values) if any(">" in v for v in values) and not prof.markup else None
    prof.path_like = 0.0 if prof.markup else share(values, lambda v: _path_like(v, category_sep))
    if category_sep:
        prof.hints["category_sep"] = category_sep
    # the type tests look at a bounded number of values, taken from the start and from the windows
    half = TYPE_SAMPLE_VALUES // 2
    pool = head[: TYPE_SAMPLE_VALUES - min(len(later), half)] + later[:half]
    typed = [v for v in pool if not is_null_token(v)] or pool
    thin = len(typed) < THIN

    def done() -> ColumnProfile:
        if thin:
            prof.confidence = min(prof.confidence, 0.55)
            prof.warnings.append(f"only {count(len(typed), 'value')} to judge the type by")
        return prof

    code_word = code_header(header_norm)
    if code_word:
        prof.code_reason = f"the header names a code ({code_word!r})"
        prof.type = FieldType.text if any("\n" in v or len(v) > 255 for v in values) else FieldType.string
        prof.reason = f"type {prof.type.value}: {prof.code_reason}; codes stay text"
        prof.confidence = 0.9
        return done()

    lowered = {v.lower() for v in typed}
    if len(lowered) <= 2 and lowered <= (TRUE_WORDS | FALSE_WORDS):
        if not lowered <= {"0", "1"} or _BOOLEAN_HEADER.search(header_norm):
            prof.type = FieldType.boolean
            prof.reason = f"type boolean: the values are {' / '.join(sorted(lowered))}"
            prof.confidence = 0.9
            return done()
    # dates first: "01.02.2024" would read as a code (a leading zero) and "2024-01-05" as nothing else
    if _decide_dates(prof, typed, _date_order(typed)):
        return done()
    if _decide_numbers(prof, typed, decimal):
        return done()
    urls = share(typed, lambda v: bool(URL_RE.match(v)), at_least=0.9)
    if urls >= 0.9:
        prof.type = FieldType.url
        prof.reason = "type url: the values are web addresses"
        prof.confidence = round(min(0.95, urls) if urls >= 0.98 else min(LOW, urls), 2)
        if urls < 1:
            prof.warnings.append(f"{round(len(typed) * (1 - urls)):,} of {len(typed):,} sampled values are not URLs")
        return done()

    lengths = [len(v) for v in values]
    multiline = any("\n" in v for v in values)
    long_text = multiline or max(lengths) > 255 or sum(lengths) / n > 100
    if prof.markup:
        prof.type, prof.reason, prof.confidence = FieldType.text, "type text: the values contain HTML", 0.9
        return done()
    if long_text:
        prof.type, prof.reason, prof.confidence = FieldType.text, "type text: long or multi-line values", 0.9
        return done()
    if prof.path_like < 0.5:
        sep, why = list_separator(values, delimiter=delimiter, allowed=list_separators)
        if sep:
            prof.type = FieldType.array
            prof.hints["array_sep"] = sep
            prof.reason = f"type array: {why}"
            with_sep = sum(1 for v in values if sep in v)
            prof.confidence = round(0.6 + 0.35 * with_sep / n, 2)
            return done()
    return _decide_enum(prof, values, later, distinct, complete=complete, lengths=lengths, done=done)


def _decide_enum(prof, values, later, distinct, *, complete, lengths, done) -> ColumnProfile:
    n = len(values)
    closed_set = len(distinct) <= MAX_ENUM_OPTIONS and n >= 10 and len(distinct) <= n / 3 and max(lengths) <= 60
    if not closed_set:
        prof.type, prof.reason, prof.confidence = FieldType.string, "type string: short text", 0.8
        return done()
    seen_first = set(values[: prof.head_values])
    new_later = {v for v in later if v not in seen_first}
    if complete or (len(later) >= 20 and not new_later):
        prof.type = FieldType.enum
        prof.options = sorted(distinct)
        where = "the whole file" if complete else "the start, middle and end of the file"
        prof.reason = f"type enum: {len(distinct)} distinct values repeat throughout {where}"
        prof.confidence = 0.85 if complete else 0.7
        return done()
    prof.type, prof.confidence = FieldType.string, 0.7
    if new_later:
        prof.reason = "type string: few distinct values, but later parts of the file bring new ones (an enum would reject them)"
    else:
        prof.reason = "type string: few distinct values at the start, too few rows later in the file to call it a closed set"
    return done()


def force_type(prof: ColumnProfile, ftype: FieldType, reason: str, *, list_sep: str | None = None) -> None:
    """Give the column a type a known format prescribes; warn about sampled values it would reject."""
    if list_sep and ftype == FieldType.array:
        prof.hints["array_sep"] = list_sep
    prof.type, prof.options = ftype, None
    prof.reason = f"type {ftype.value}: {reason}"
    prof.confidence = max(prof.confidence, 0.9)
    if ftype in (FieldType.boolean, FieldType.number, FieldType.integer, FieldType.date, FieldType.datetime):
        typed = [v for v in prof.values[:TYPE_SAMPLE_VALUES] if not is_null_token(v)]
        fits = share(typed, lambda v: parse_cell(ftype, v, prof.hints)) if typed else 1.0
        if fits < 1:
            prof.confidence = LOW
            prof.warnings.append(
                f"{round(len(typed) * (1 - fits)):,} of {len(typed):,} sampled values are not {ftype.value}s: "
                "those rows would be rejected"
            )
