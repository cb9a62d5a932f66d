"""The conventions of one CSV file: how its text cells spell numbers, dates, booleans and lists.

A spreadsheet cell is text; what `3.700` or `04/05/2024` means depends on the file, never on
the cell. `Conventions` says it once per file, explicitly: it is detected from the whole sample
(`detect_conventions`), shown in the job as `conventions`, overridable in `confirm`, and passed
to the value core (`app.catalog.values.coerce_text`), which applies the same rules as POST,
PATCH and bulk. A cell that does not read under its file's conventions rejects its row; it is
never reinterpreted.

`DEFAULT_CONVENTIONS` are the ones the JSON endpoints use for text values: `.` decimal, no
thousands separator, ISO dates, naive datetimes in UTC, true/false/yes/no/1/0.
"""

import re
from collections import Counter
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import Field, field_validator

from app.bodies import ClosedModel
from app.products.rules import FALSE_WORDS, TRUE_WORDS

DECIMAL_SEPARATORS = (".", ",")
# " " stands for every space a spreadsheet groups digits with (no-break, narrow no-break, thin)
THOUSANDS_SEPARATORS = (",", ".", " ", "'")
DATE_ORDERS = ("ymd", "dmy", "mdy")
LIST_SEPARATORS = ("|", ";", ",", "/")
CATEGORY_SEPARATORS = ("|", ";", ",")
DELIMITERS = (",", ";", "\t", "|")
Encoding = Literal[
    "utf-8",
    "utf-8-sig",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "cp1252",
    "cp1250",
    "cp1251",
    "latin-1",
    "iso-8859-15",
]
ENCODINGS: tuple[str, ...] = get_args(Encoding)

# what the JSON endpoints accept for a boolean field (and status: true → active, false → inactive)
DEFAULT_TRUE_WORDS = TRUE_WORDS
DEFAULT_FALSE_WORDS = FALSE_WORDS


@dataclass(frozen=True, slots=True)
class Conventions:
    """How the text cells of one file spell values. Frozen: one instance per import, shared by its rows.

    - `decimal`: the decimal separator, `.` or `,`. A number cell reads with exactly this one.
    - `thousands`: the digit-group separator (`,` `.` `'` or `" "` for any space), or None: then
      a cell with one is not a number. Groups are checked (`1,234,567`; `1,23,4` is rejected).
    - `date_order`: `ymd` (ISO 8601 only, as the JSON endpoints), `dmy` (`31.12.2024`,
      `31/12/2024`, `31-12-2024`) or `mdy` (`12/31/2024`). ISO dates read under every order.
      Four-digit years only.
    - `list_separator`: what splits an `array` cell into items (`a|b`).
    - `category_separator`: what splits a `categories` cell into paths (`A > B|C`). With `,`
      (WooCommerce: `A > B, C > D`) the cell splits only when every part is a path (holds `>`),
      so a category named `Tables, Chairs` survives.
    - `true_words` / `false_words`: the words of a boolean cell (case-insensitive); also
      `active`/`inactive` for the `status` column.
    - `time_zone`: IANA name; a datetime cell without an offset is a local time in this zone,
      converted to UTC (it is not stored as if it were UTC).
    - `encoding`, `delimiter`: how the file's bytes are decoded and split into cells.
    """

    decimal: str = "."
    thousands: str | None = None
    date_order: str = "ymd"
    list_separator: str = "|"
    category_separator: str = "|"
    true_words: tuple[str, ...] = DEFAULT_TRUE_WORDS
    false_words: tuple[str, ...] = DEFAULT_FALSE_WORDS
    time_zone: str = "UTC"
    encoding: str = "utf-8"
    delimiter: str = ","

    def __post_init__(self) -> None:
        object.__setattr__(self, "true_words", _words(self.true_words))
        object.__setattr__(self, "false_words", _words(self.false_words))
        problem = conventions_problem(self)
        if problem:
            raise ValueError(problem)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["true_words"], out["false_words"] = list(self.true_words), list(self.false_words)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "Conventions":
        """From `to_json` output (unknown keys ignored: stored jobs outlive code versions)."""
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in (data or {}).items() if k in names}
        for key in ("true_words", "false_words"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def updated(self, changes: dict[str, Any]) -> "Conventions":
        """These conventions with some of them replaced (a client's partial override). A null
        `thousands` means none; any other null overrides nothing (the detected one stays)."""
        words = ("true_words", "false_words")
        changes = {
            k: tuple(v) if k in words else v
            for k, v in changes.items()
            if v is not None or k == "thousands"
        }
        return replace(self, **changes)


def _words(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({w.strip().casefold() for w in words if w.strip()}))


def conventions_problem(c: Conventions) -> str | None:
    """Why a set of conventions cannot work (None: it can)."""
    if c.decimal not in DECIMAL_SEPARATORS:
        return f"decimal: must be one of {list(DECIMAL_SEPARATORS)}"
    if c.thousands is not None and c.thousands not in THOUSANDS_SEPARATORS:
        return f"thousands: must be null or one of {list(THOUSANDS_SEPARATORS)}"
    if c.thousands == c.decimal:
        return "thousands: must differ from decimal"
    if c.date_order not in DATE_ORDERS:
        return f"date_order: must be one of {list(DATE_ORDERS)}"
    if c.list_separator not in LIST_SEPARATORS:
        return f"list_separator: must be one of {list(LIST_SEPARATORS)}"
    if c.category_separator not in CATEGORY_SEPARATORS:
        return f"category_separator: must be one of {list(CATEGORY_SEPARATORS)}"
    if not c.true_words or not c.false_words:
        return "true_words, false_words: each needs at least one word"
    if set(c.true_words) & set(c.false_words):
        return f"true_words and false_words share {sorted(set(c.true_words) & set(c.false_words))}"
    if c.time_zone != "UTC":
        try:
            ZoneInfo(c.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            return f"time_zone: {c.time_zone[:64]!r} is not an IANA time zone name (e.g. Europe/Berlin)"
    if c.encoding not in ENCODINGS:
        return f"encoding: must be one of {list(ENCODINGS)}"
    if c.delimiter not in DELIMITERS:
        return f"delimiter: must be one of {[d for d in DELIMITERS]}"
    return None


DEFAULT_CONVENTIONS = Conventions()


# --- the API's view --------------------------------------------------------------------------


class ConventionsModel(ClosedModel):
    """The conventions of a file, as the job shows them (every key) and `confirm` accepts them (any
    subset: a key left out or null keeps the detected value; `thousands: null` means none)."""

    decimal: Literal[".", ","] | None = Field(default=None, description="decimal separator")
    thousands: Literal[",", ".", " ", "'"] | None = Field(
        default=None,
        description='digit-group separator, or null for none (then `1,234` is not a number). `" "` stands for '
        "every space (also no-break and narrow no-break). Groups are checked: `1,23,4` is rejected",
    )
    date_order: Literal["ymd", "dmy", "mdy"] | None = Field(
        default=None,
        description="`ymd`: ISO 8601 only (as POST/PATCH/bulk); `dmy`: 31.12.2024, 31/12/2024, 31-12-2024; "
        "`mdy`: 12/31/2024. ISO dates read under every order; years have four digits",
    )
    list_separator: Literal["|", ";", ",", "/"] | None = Field(
        default=None, description="splits `array` cells into items"
    )
    category_separator: Literal["|", ";", ","] | None = Field(
        default=None,
        description="splits a `categories` cell into paths (`A > B|C`); with `,` (WooCommerce: `A > B, C > D`) only "
        "when every part is a path (holds `>`)",
    )
    true_words: list[str] | None = Field(
        default=None,
        max_length=50,
        description="words of a true boolean cell (case-insensitive); status: `active`",
    )
    false_words: list[str] | None = Field(
        default=None,
        max_length=50,
        description="words of a false boolean cell (case-insensitive); status: `inactive`",
    )
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="IANA time zone of datetimes without an offset (e.g. `Europe/Berlin`); they are converted to UTC",
    )
    encoding: Encoding | None = Field(default=None, description="how the file's bytes are decoded")
    delimiter: Literal[",", ";", "\t", "|"] | None = Field(
        default=None, description="the cell delimiter"
    )

    @field_validator("true_words", "false_words")
    @classmethod
    def _check_words(cls, words: list[str] | None) -> list[str] | None:
        if words is not None and any(len(w) > 32 for w in words):
            raise ValueError("a word has at most 32 characters")
        return words

    @field_validator("time_zone")
    @classmethod
    def _check_zone(cls, zone: str | None) -> str | None:
        if zone is not None and zone != "UTC" and zone not in _zones():
            raise ValueError("not an IANA time zone name (e.g. Europe/Berlin)")
        return zone

    def changes(self) -> dict[str, Any]:
        """The conventions the client set (a partial override)."""
        return self.model_dump(exclude_unset=True)


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


# --- detection -------------------------------------------------------------------------------

# "active" and "inactive" in the words shops use; a status column may be named by one of them too
# (app/imports/headers.py)
ACTIVE_WORDS = ("enabled", "aktiv", "actif", "activo", "attivo", "published", "online")
INACTIVE_WORDS = (
    "disabled",
    "inaktiv",
    "inactif",
    "inactivo",
    "inattivo",
    "unpublished",
    "offline",
)

# boolean words a file may use, beyond the defaults; a pair joins the file's words only when a
# whole column is made of them
KNOWN_TRUE_WORDS = frozenset(
    [
        *TRUE_WORDS,
        "ja",  # German, Dutch, Swedish, Danish, Norwegian
        "j",
        "oui",
        "si",
        "sí",  # Spanish
        "sì",  # Italian
        "sim",  # Portuguese
        "vrai",
        "wahr",
        "verdadero",
        "vero",
        "waar",
        "tak",  # Polish
        "ano",  # Czech
        "áno",  # Slovak
        "kyllä",  # Finnish
        "igen",  # Hungarian
        *ACTIVE_WORDS,
    ]
)
KNOWN_FALSE_WORDS = frozenset(
    [
        *FALSE_WORDS,
        "nein",
        "non",
        "faux",
        "falsch",
        "falso",
        "nee",
        "nie",
        "nej",  # Swedish, Danish
        "nei",  # Norwegian
        "ei",  # Finnish
        "ne",  # Czech, Slovak
        "não",  # Portuguese
        "nem",  # Hungarian
        *INACTIVE_WORDS,
    ]
)
_SAMPLE_CELLS = 10_000  # cells looked at per convention: plenty to decide, bounded in time

# a cell that is a number but for its separators, with an optional currency or percent around it
_NUMBER_CELL = re.compile(
    r"^[+-]?\s*(?:[€$£¥]|[A-Z]{3})?\s*([0-9](?:[0-9.,'\u2019 \u00a0\u202f\u2009]*[0-9])?)\s*(?:[€$£¥%]|[A-Z]{3})?$"
)
_GROUPS = {
    sep: re.compile(rf"^[0-9]{{1,3}}(?:{re.escape(sep)}[0-9]{{3}})+$")
    for sep in (",", ".", " ", "'")
}
_LOCAL_DATE = re.compile(r"^([0-9]{1,2})([./-])([0-9]{1,2})\2[0-9]{4}(?:$|[T ])")


def _number_votes(cells: list[str]) -> tuple[Counter, Counter, list[str]]:
    """Votes for the decimal separator, evidence of thousands separators, and the ambiguous numbers."""
    decimal: Counter[str] = Counter()
    thousands: Counter[str] = Counter()
    ambiguous: list[str] = []
    for cell in cells:
        m = _NUMBER_CELL.match(cell)
        if m is None:
            continue
        num = m[1].replace("\u2019", "'")
        for space in "\u00a0\u202f\u2009":
            num = num.replace(space, " ")
        for group in (" ", "'"):
            if group in num:
                whole = re.split(r"[.,]", num, maxsplit=1)[0]
                if not _GROUPS[group].match(whole):
                    break
                thousands[group] += 1
                rest = num[len(whole) :]
                num = whole.replace(group, "") + rest
        else:
            dots, commas = num.count("."), num.count(",")
            if dots and commas:
                sep = "." if num.rfind(".") > num.rfind(",") else ","
                other = "," if sep == "." else "."
                whole, _, _frac = num.rpartition(sep)
                if _GROUPS[other].match(whole):
                    decimal[sep] += 1
                    thousands[other] += 1
            elif dots + commas == 1:
                sep = "." if dots else ","
                whole, _, frac = num.partition(sep)
                if len(frac) != 3 or whole == "0" or len(whole) > 3:
                    decimal[sep] += 1  # a group has three digits and never follows a lone 0
                else:
                    ambiguous.append(
                        num
                    )  # "3.700": a decimal or a thousands group; the file decides
            elif dots + commas > 1:
                sep = "." if dots else ","
                if _GROUPS[sep].match(num):
                    thousands[sep] += 1
                    decimal["," if sep == "." else "."] += 1
    return decimal, thousands, ambiguous


def _date_order(cells: list[str], decimal: str) -> str:
    day_first = month_first = 0
    separators: Counter[str] = Counter()
    for cell in cells:
        m = _LOCAL_DATE.match(cell)
        if m is None:
            continue
        separators[m[2]] += 1
        first, second = int(m[1]), int(m[3])
        day_first += first > 12 >= second
        month_first += second > 12 >= first
    if not separators:
        return "ymd"
    if day_first != month_first:
        return "dmy" if day_first > month_first else "mdy"
    # nothing tells: "31.12." with dots is European; with slashes, the number convention decides
    return "mdy" if separators.most_common(1)[0][0] == "/" and decimal == "." else "dmy"


def _separators(cells: list[str], delimiter: str) -> tuple[str, str]:
    """The list separator (arrays) and the category separator (paths)."""
    short = [c for c in cells if len(c) <= 200]
    listy = [c for c in short if ">" not in c]  # category paths have a separator of their own
    with_pipe = any("|" in c for c in listy)
    with_semicolon = delimiter != ";" and any(";" in c and "&" not in c for c in listy)
    list_separator = "|" if with_pipe or not with_semicolon else ";"
    category_separator = "|"
    pathy = [c for c in short if ">" in c and "<" not in c]
    if pathy and not any("|" in c for c in pathy):
        for sep in (",", ";"):
            split = [c for c in pathy if sep in c]
            if split and all(">" in part for c in split for part in c.split(sep)):
                category_separator = sep
                break
    return list_separator, category_separator


def _bool_words(columns: list[list[str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    true_words, false_words = set(DEFAULT_TRUE_WORDS), set(DEFAULT_FALSE_WORDS)
    for cells in columns:
        words = {c.casefold() for c in cells[:_SAMPLE_CELLS] if c}
        if 0 < len(words) <= 2 and words <= KNOWN_TRUE_WORDS | KNOWN_FALSE_WORDS:
            true_words |= words & KNOWN_TRUE_WORDS
            false_words |= words & KNOWN_FALSE_WORDS
    return tuple(true_words), tuple(false_words)


def detect_conventions(rows: list[list[str]], *, encoding: str, delimiter: str) -> Conventions:
    """The conventions of a file, from the cells of its sampled rows, all columns together.

    A file where any number reads `12.50` uses `.` as its decimal separator, so a column of
    `3.700, 6.257` in it is decimal too; `1.234,56` says decimal `,` with thousands `.`. Cells
    that read either way (`3.700` alone) decide nothing; without any evidence the JSON
    conventions hold (`.` decimal, no thousands separator, ISO dates).
    """
    width = max((len(r) for r in rows), default=0)
    columns = [[r[i].strip() for r in rows if i < len(r) and r[i].strip()] for i in range(width)]
    step = max(1, width)
    cells = [c for column in columns for c in column[: max(500, _SAMPLE_CELLS // step)]]
    decimal_votes, thousands_votes, ambiguous = _number_votes(cells)
    decimal = "," if decimal_votes[","] > decimal_votes["."] else "."
    thousands = next((sep for sep, _ in thousands_votes.most_common() if sep != decimal), None)
    if thousands is None and ambiguous and decimal_votes:
        # once the decimal separator is known, "1,234" under decimal `.` can only be a group
        # (and "1.234" under decimal `,`); without that evidence such a cell stays unreadable
        other = "," if decimal == "." else "."
        if any(other in num for num in ambiguous):
            thousands = other
    list_separator, category_separator = _separators(cells, delimiter)
    true_words, false_words = _bool_words(columns)
    return Conventions(
        decimal=decimal,
        thousands=thousands,
        date_order=_date_order(cells, decimal),
        list_separator=list_separator if list_separator != delimiter else "|",
        category_separator=category_separator,
        true_words=true_words,
        false_words=false_words,
        encoding=encoding if encoding in ENCODINGS else "utf-8",
        delimiter=delimiter if delimiter in DELIMITERS else ",",
    )
