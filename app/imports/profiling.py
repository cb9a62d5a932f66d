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
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.catalog.fields import FieldType
from app.catalog.values import read_date, read_datetime, read_number, read_text
from app.imports.conventions import Conventions
from app.imports.headers import code_header
from app.imports.rows import is_error_value, is_null_token

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
    {
        "USD",
        "EUR",
        "GBP",
        "CHF",
        "JPY",
        "CNY",
        "CAD",
        "AUD",
        "NZD",
        "SEK",
        "NOK",
        "DKK",
        "ISK",
        "PLN",
        "CZK",
        "HUF",
        "RON",
        "BGN",
        "TRY",
        "RUB",
        "UAH",
        "INR",
        "BRL",
        "MXN",
        "ARS",
        "CLP",
        "COP",
        "PEN",
        "ZAR",
        "ILS",
        "AED",
        "SAR",
        "QAR",
        "SGD",
        "HKD",
        "KRW",
        "TWD",
        "THB",
        "MYR",
        "IDR",
        "PHP",
        "VND",
        "EGP",
        "NGN",
        "KES",
        "MAD",
    }
)
_DECORATED = re.compile(
    r"^(?:(?P<pre>[A-Z]{3}|US\$|R\$|Fr\.|[€$£¥₹₽₺₩₪฿₴₦])\s*)?"
    r"(?P<core>[-+\u2212]?\s*(?:\d[\d.,'’ \u00a0\u202f\u2009]*)?\d(?:[eE][-+]?\d+)?|[-+]?[.,]\d+)"
    r"\s*(?P<post>[A-Z]{3}|[€$£¥₹₽₺₩₪฿₴₦%])?$"
)
_AMBIGUOUS = re.compile(r"^[-+]?(\d{1,3})[.,]\d{3}$")
_LEADING_ZERO = re.compile(r"^[-+]?0\d")
_ALNUM_CODE = re.compile(r"^(?:[A-Za-z]{1,6}[-_ /.#]?\d[\d\-_/.]*|\d+[-_/]?[A-Za-z]{1,4}\d*)$")
_DOTTED = re.compile(r"^\d+(?:[.\-/_]\d+){2,}$")  # versions, not numbers
_LONG_DIGITS = re.compile(r"^\d{12,}$")  # EAN, UPC, GTIN-14: identifiers, not quantities
_LOCAL_DATE = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-]\d{4}\b")
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
    conventions: Conventions = field(
        default_factory=Conventions
    )  # the file's, which the import reads with
    currency: str | None = None  # the currency the values carry ("15.00 USD"), when they carry one
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


def readable(values: list[str], read) -> float:
    """Share of `values` that `read` reads (without a ValueError), whatever it returns (False too)."""
    if not values:
        return 1.0
    ok = 0
    for v in values:
        try:
            read(v)
            ok += 1
        except ValueError:
            pass
    return ok / len(values)


def count(n: int, what: str) -> str:
    return f"{n:,} {what}" if n == 1 else f"{n:,} {what}s"


# --- numbers ---------------------------------------------------------------------------------


def names_decimal(values: list[str]) -> bool:
    """Whether a cell shows which separator is the decimal one (`12.50`, `0,975`, `1.234,56`).

    Only for a warning: the separator itself is the file's `Conventions`; this tells whether they
    rest on evidence or on the defaults.
    """
    for v in values[:TYPE_SAMPLE_VALUES]:
        m = _DECORATED.match(v)
        core = m["core"].lstrip("+-\u2212 ") if m else ""
        if "," in core and "." in core:
            return True
        for sep in ".,":
            if core.count(sep) == 1:
                whole, frac = core.split(sep)
                if frac.isdigit() and (len(frac) != 3 or whole in ("", "0")):
                    return True
    return False


def number_kind(cell: str, conventions: Conventions) -> str:
    """How a cell reads as a number under the file's conventions.

    "int" or "frac" (it reads, without or with a fractional part); "code": an identifier a loose
    parser would have made a number of ("02134", "1E7", "SKU-12", "1.2.3", "4006381333931");
    "amount": a number with a currency or a percent sign ("15.00 USD", "19 %"), which a number
    field does not read; "bad": digits that do not read under the conventions ("1,5" with decimal
    "."); "text": anything else.
    """
    m = _DECORATED.match(cell)
    if m is None or (m["pre"] and len(m["pre"]) == 3 and m["pre"] not in _CURRENCY_CODES):
        if _ALNUM_CODE.match(cell) or _DOTTED.match(cell):
            return "code"
        return (
            "bad"
            if any(c.isdigit() for c in cell) and not any(c.isalpha() for c in cell)
            else "text"
        )
    post = m["post"]
    if post and len(post) == 3 and post not in _CURRENCY_CODES:
        return "code"
    core = m["core"].replace("\u2212", "-").strip()
    unsigned = core.lstrip("+-").strip()
    if (
        "e" in core.lower()
        or _LEADING_ZERO.match(core)
        or _LONG_DIGITS.match(unsigned)
        or _DOTTED.match(unsigned)
    ):
        return "code"
    try:
        read_number(cell, conventions)
    except ValueError:
        return "amount" if m["pre"] or post else "bad"
    return "frac" if conventions.decimal in unsigned else "int"


def ambiguous_number(cell: str) -> bool:
    """`3.700`, `1,250`: one separator before three digits, a decimal or a thousands group."""
    m = _AMBIGUOUS.match(cell)
    return m is not None and m[1] != "0"


# --- the type of a column --------------------------------------------------------------------


def _path_like(value: str, list_sep: str) -> bool:
    """'Men > Shoes', 'A > B|C > D': short segments, a few levels, no markup, no prose."""
    if len(value) > 500 or "\n" in value or "<" in value or ">" not in value:
        return False
    for path in value.split(list_sep):
        segments = [s.strip() for s in path.split(">")]
        if not 1 <= len(segments) <= 8:
            return False
        if any(not s or len(s) > 60 or len(s.split()) > 6 for s in segments):
            return False
    return True


def not_a_list(values: list[str], sep: str) -> str | None:
    """Why the column is not a list of items split by the file's list separator `sep` (None: it is).

    A list has short items that repeat across rows ("steel|brass", "S;M;L"); free text with a
    `;` ("Tisch mit Schublade; groß") has long, one-off parts.
    """
    with_sep = [v for v in values if sep in v]
    if not with_sep:
        return f"no {sep!r} in the values"
    items = [p.strip() for v in values for p in v.split(sep)]
    if any(not item for v in with_sep for item in (p.strip() for p in v.split(sep))):
        return f"empty items between {sep!r}"
    if len(with_sep) < 0.3 * len(values) and len(with_sep) < 3:
        return f"{sep!r} in few cells"
    if (
        max(map(len, items)) > 60
        or sum(map(len, items)) / len(items) > 30
        or max(len(i.split()) for i in items) > 4
    ):
        return f"the parts between {sep!r} are long: text, not a list"
    if len(items) >= 20 and len(set(items)) > 0.6 * len(items):
        return f"the parts between {sep!r} rarely repeat: text, not a list"
    if sep == "," and any(" " in item for item in items):
        return "commas between words: text, not a list of codes"
    if sep != "|":  # '|' is no punctuation of prose: "a|b" in every row is still a list
        cells_of: dict[str, set[str]] = {}
        for v in set(values):
            for item in v.split(sep):
                cells_of.setdefault(item.strip(), set()).add(v)
        if any(" " in item for item in cells_of) and all(len(c) == 1 for c in cells_of.values()):
            # "Packung à 100 Stück; verzinkt" in every other row: parts of words that never
            # occur apart are a phrase (codes such as "crewneck,short_sleeve" may still be a list)
            return f"the parts between {sep!r} never occur in another cell: a phrase, not a list"
    return None


def _decide_numbers(prof: ColumnProfile, typed: list[str], *, decimal_evidence: bool) -> bool:
    """Type the column `integer` or `number` when its values are numbers (or `string` when they are
    identifiers or amounts with a currency); True when decided."""
    conventions = prof.conventions
    kinds: Counter[str] = Counter()
    examples: dict[str, str] = {}
    currencies: Counter[str] = Counter()
    ambiguous = 0
    allowed_text = 0.2 * len(typed)
    for v in typed:
        kind = number_kind(v, conventions)
        if kind == "text":
            allowed_text -= 1
            if allowed_text < 0:
                return False  # not numbers: no need to look further
        kinds[kind] += 1
        examples.setdefault(kind, v)
        if kind in ("int", "frac") and ambiguous_number(v):
            ambiguous += 1
            examples.setdefault("ambiguous", v)
        if kind == "amount":
            m = _DECORATED.match(v)
            assert m is not None  # "amount" is the kind of exactly these values
            currencies[m["pre"] or m["post"]] += 1
    total = len(typed)
    numeric = kinds["int"] + kinds["frac"]
    if numeric + kinds["code"] + kinds["amount"] + kinds["bad"] < 0.8 * total:
        return False
    prof.type = FieldType.string
    if kinds["code"]:
        prof.code_reason = f"values like {examples['code'][:40]!r} are codes, not quantities"
        prof.reason = f"type string: {prof.code_reason}"
        prof.confidence = 0.85
        return True
    if kinds["amount"] >= 0.5 * total:
        signs = ", ".join(c for c, _ in currencies.most_common(3))
        if len(currencies) == 1 and signs != "%":
            prof.currency = signs
        prof.reason = (
            f"type string: the values are amounts with {'a unit' if signs == '%' else 'a currency'} "
            f"({examples['amount'][:40]!r}); a number field does not read them, so they are kept as written"
        )
        prof.confidence = 0.7
        return True
    if numeric < 0.8 * total:
        return False
    if ambiguous and not decimal_evidence:
        # "1.234" beside "15": the whole numbers do not tell whether the dot is a decimal point or
        # a thousands group (a German quantity 1234, or 1.234 kg); kept as written, never guessed
        prof.reason = (
            f"type string: {examples['ambiguous']!r} reads as a decimal or as a thousands group, and nothing "
            "in the file shows which separator is the decimal one"
        )
        prof.warnings.append(
            f"{count(ambiguous, 'sampled value')} like {examples['ambiguous']!r} could be read two ways: kept as "
            "text; to import numbers, set conventions.decimal (and thousands) and map the column to a number field"
        )
        prof.confidence = 0.4
        return True
    separators = f"decimal {conventions.decimal!r}" + (
        f", thousands {conventions.thousands!r}" if conventions.thousands else ""
    )
    if kinds["frac"]:
        prof.type = FieldType.number
        prof.reason = f"type number: values have a fractional part ({examples['frac'][:40]!r} under {separators})"
    else:
        prof.type = FieldType.integer
        prof.reason = f"type integer: {'the sampled value is a whole number' if numeric == 1 else f'all {numeric:,} numbers are whole'} (under {separators})"
    failed = total - numeric
    ratio = numeric / total
    prof.confidence = round(0.95 if ratio == 1 else min(LOW, ratio), 2)
    if failed:
        example = examples.get("bad") or examples.get("amount") or examples.get("text") or ""
        prof.warnings.append(
            f"{failed:,} of {total:,} sampled values are not numbers under {separators} (e.g. {example[:40]!r}): "
            "those rows would be rejected"
        )
    return True


def _decide_dates(prof: ColumnProfile, typed: list[str]) -> bool:
    conventions = prof.conventions
    total = len(typed)
    dates = share(typed, lambda v: read_date(v, conventions), at_least=0.9)
    if dates >= 0.9:
        prof.type = FieldType.date
        prof.reason = "type date: the values are dates"
    else:
        datetimes = share(typed, lambda v: ":" in v and read_datetime(v, conventions), at_least=0.9)
        if datetimes < 0.9:
            return False
        prof.type = FieldType.datetime
        prof.reason = "type datetime: the values are dates with a time"
        naive = sum(1 for v in typed if not _OFFSET.search(v))
        if naive:
            prof.warnings.append(
                f"{naive:,} of {total:,} sampled values have no UTC offset: they are read as local times in "
                f"{conventions.time_zone} (conventions.time_zone) and stored in UTC"
            )
        dates = datetimes
    prof.confidence = round(0.95 if dates == 1 else min(LOW, dates), 2)
    local = [m for m in map(_LOCAL_DATE.match, typed[:TYPE_SAMPLE_VALUES]) if m]
    if local and not any(int(m[1]) > 12 or int(m[2]) > 12 for m in local):
        order = "day first" if conventions.date_order == "dmy" else "month first"
        prof.warnings.append(
            f"no value here shows the order of day and month (e.g. {local[0][0]!r}): read {order}, as the file's "
            f"conventions.date_order ({conventions.date_order}) says"
        )
        prof.confidence = min(prof.confidence, LOW)
    if dates < 1:
        prof.warnings.append(
            f"{round(total * (1 - dates)):,} of {total:,} sampled values are not {prof.type.value}s: those rows would be rejected"
        )
    return True


def profile_column(
    header: str,
    cells: list[str],
    *,
    window_cells: Sequence[str] = (),
    conventions: Conventions,
    complete: bool,
    header_norm: str = "",
    decimal_evidence: bool = True,
) -> ColumnProfile:
    """Profile one column from its cells at the start of the file and in the later windows.

    Values are read under the file's `conventions`, as the import will read them;
    `decimal_evidence` says whether any cell of the file shows its decimal separator.
    """
    head = [c.strip() for c in cells if c and c.strip()]
    later = [c.strip() for c in window_cells if c and c.strip()]
    values = head + later
    prof = ColumnProfile(
        header=header,
        values=values,
        rows=len(cells) + len(window_cells),
        head_values=len(head),
        conventions=conventions,
    )
    distinct = list(dict.fromkeys(values))
    prof.samples = [v[:200] for v in distinct[:SAMPLES_PER_COLUMN]]
    if not values:
        prof.confidence = 0.3
        prof.reason = "type string: no values in the sample"
        return prof
    n = len(values)
    prof.fill = n / max(prof.rows, 1)
    prof.unique = len(distinct) / n
    # the tests of the values look at a bounded number of them, from the start and from the windows
    half = TYPE_SAMPLE_VALUES // 2
    pool = head[: TYPE_SAMPLE_VALUES - min(len(later), half)] + later[:half]
    typed = [v for v in pool if not is_null_token(v) and not is_error_value(v)] or pool
    errors = [v for v in pool if is_error_value(v)]
    prof.code_like = share(pool, lambda v: bool(_CODE_RE.match(v)))
    prof.with_spaces = share(pool, lambda v: " " in v)
    prof.markup = any(_HTML_RE.search(v) for v in pool)
    if not prof.markup and any(">" in v for v in pool):
        prof.path_like = share(pool, lambda v: _path_like(v, conventions.category_separator))

    code_word = code_header(header_norm)
    if code_word:
        prof.code_reason = f"the header names a code ({code_word!r})"
        prof.type = (
            FieldType.text if any("\n" in v or len(v) > 255 for v in values) else FieldType.string
        )
        prof.reason = f"type {prof.type.value}: {prof.code_reason}; codes stay text"
        prof.confidence = 0.9
    else:
        _decide_type(
            prof,
            typed,
            later,
            distinct,
            complete=complete,
            header_norm=header_norm,
            decimal_evidence=decimal_evidence,
        )
    if errors and prof.type in _REJECTS_ERROR_VALUES:
        prof.confidence = min(prof.confidence, LOW)
        prof.warnings.append(
            f"{len(errors):,} of {len(pool):,} sampled values are spreadsheet error values or NaN "
            f"(e.g. {errors[0]!r}): those rows would be rejected"
        )
    if len(typed) < THIN:
        prof.confidence = min(prof.confidence, 0.55)
        prof.warnings.append(f"only {count(len(typed), 'value')} to judge the type by")
    return prof


_REJECTS_ERROR_VALUES = frozenset(
    {FieldType.number, FieldType.integer, FieldType.boolean, FieldType.date, FieldType.datetime}
)


def _decide_type(prof, typed, later, distinct, *, complete, header_norm, decimal_evidence) -> None:
    conventions = prof.conventions
    values = prof.values
    lowered = {v.casefold() for v in typed}
    words = {*conventions.true_words, *conventions.false_words}
    if (
        len(lowered) <= 2
        and lowered <= words
        and (not lowered <= {"0", "1"} or _BOOLEAN_HEADER.search(header_norm))
    ):
        prof.type = FieldType.boolean
        prof.reason = f"type boolean: the values are {' / '.join(sorted(lowered))}"
        prof.confidence = 0.9
        return
    # dates first: "01.02.2024" would read as a code (a leading zero) and "2024-01-05" as nothing else
    if _decide_dates(prof, typed) or _decide_numbers(
        prof, typed, decimal_evidence=decimal_evidence
    ):
        return
    urls = share(typed, lambda v: bool(URL_RE.match(v)), at_least=0.9)
    if urls >= 0.9:
        prof.type = FieldType.url
        prof.reason = "type url: the values are web addresses"
        prof.confidence = round(0.95 if urls == 1 else min(LOW, urls), 2)
        if urls < 1:
            prof.warnings.append(
                f"{round(len(typed) * (1 - urls)):,} of {len(typed):,} sampled values are not URLs"
            )
        return
    lengths = [len(v) for v in values]
    if prof.markup:
        prof.type, prof.reason, prof.confidence = (
            FieldType.text,
            "type text: the values contain HTML",
            0.9,
        )
        return
    if any("\n" in v for v in values) or max(lengths) > 255 or sum(lengths) / len(values) > 100:
        prof.type, prof.reason, prof.confidence = (
            FieldType.text,
            "type text: long or multi-line values",
            0.9,
        )
        return
    sep = conventions.list_separator
    if prof.path_like < 0.5 and not_a_list(values, sep) is None:
        prof.type = FieldType.array
        prof.reason = f"type array: short items separated by {sep!r} (conventions.list_separator)"
        prof.confidence = round(0.6 + 0.35 * sum(1 for v in values if sep in v) / len(values), 2)
        return
    _decide_enum(prof, later, distinct, complete=complete, lengths=lengths)


def _decide_enum(
    prof: ColumnProfile,
    later: list[str],
    distinct: list[str],
    *,
    complete: bool,
    lengths: list[int],
) -> None:
    values = prof.values
    n = len(values)
    closed_set = (
        len(distinct) <= MAX_ENUM_OPTIONS
        and n >= 10
        and len(distinct) <= n / 3
        and max(lengths) <= 60
    )
    prof.type = FieldType.string
    if not closed_set:
        prof.reason, prof.confidence = "type string: short text", 0.8
        return
    seen_first = set(values[: prof.head_values])
    new_later = {v for v in later if v not in seen_first}
    if complete or (len(later) >= 20 and not new_later):
        prof.type = FieldType.enum
        prof.options = sorted(distinct)
        where = "the whole file" if complete else "the start, middle and end of the file"
        prof.reason = f"type enum: {len(distinct)} distinct values repeat throughout {where}"
        prof.confidence = 0.85 if complete else 0.7
        return
    prof.confidence = 0.7
    if new_later:
        prof.reason = "type string: few distinct values, but later parts of the file bring new ones (an enum would reject them)"
    else:
        prof.reason = "type string: few distinct values at the start, too few rows later in the file to call it a closed set"


def force_type(prof: ColumnProfile, ftype: FieldType) -> None:
    """Give the column the type its known format defines; warn about sampled values it would reject."""
    prof.type, prof.options = ftype, None
    prof.reason = f"type {ftype.value}, as the format defines the column"
    prof.confidence, prof.warnings = 0.9, []
    if ftype in (
        FieldType.boolean,
        FieldType.number,
        FieldType.integer,
        FieldType.date,
        FieldType.datetime,
    ):
        typed = [v for v in prof.values[:TYPE_SAMPLE_VALUES] if not is_null_token(v)]
        fits = readable(typed, lambda v: read_text(ftype, v, prof.conventions))
        if fits < 1:
            prof.confidence = LOW
            prof.warnings.append(
                f"{round(len(typed) * (1 - fits)):,} of {len(typed):,} sampled values are not {ftype.value}s: "
                "those rows would be rejected"
            )
