"""Pure: one CSV row (a list of text cells) → one upsert item (see `UpsertRow.of_valid_item`).

A cell is read by the value core (`app.catalog.values.coerce_text`) under the file's explicit
`Conventions`: the same rules as POST, PATCH and bulk, with the file's separators, date order
and words. A cell that does not read under them rejects its row (the column and the cell are
named); it is never reinterpreted. Before that, a column's `value_mapping` (status, enum and
boolean targets) replaces the cells it lists.

What only a file has: empty cells and null words (`n/a`, `-`, ...) in typed columns leave the
value unset, an `enum` cell may differ from its option in case only, a `status` cell may be an
option in any case or a true/false word, and `categories` cells are paths (`A > B`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from app.catalog.fields import CoercionError, FieldDef, FieldType
from app.catalog.schemas import CATEGORY_NAME_MAX, MAX_CATEGORY_DEPTH, MAX_CATEGORY_PATHS
from app.catalog.values import TEXT_READ, coerce_value, text_reader
from app.imports.conventions import DEFAULT_CONVENTIONS, Conventions
from app.imports.xlsx import TypedCell
from app.products.rules import (
    STATUSES,
    ProductStatus,
    RuleError,
    check_name,
    check_sku,
    check_variation_of,
)

BUILTIN_TARGETS = ("sku", "name", "status", "categories", "variation_of")
# the targets whose cells a `value_mapping` may replace (and the field types among them)
VALUE_MAPPED_TYPES = frozenset({FieldType.enum, FieldType.boolean})

# cells that mean "no value" in typed columns (a number column with "n/a" is not a bad row)
NULL_TOKENS = frozenset({"n/a", "na", "null", "none", "nil", "-", "--", "—", "–", "?"})
_NULL_TOKEN_MAX = max(map(len, NULL_TOKENS))
# a spreadsheet's error values and a float's NaN are not "no value": the formula or the export that
# wrote them failed, so a typed column rejects their row (the value core reads none of them)
ERROR_VALUES = frozenset(
    {
        "#n/a",
        "#value!",
        "#ref!",
        "#div/0!",
        "#num!",
        "#name?",
        "#null!",
        "#spill!",
        "#calc!",
        "#getting_data",
        "nan",
    }
)
_ERROR_VALUE_MAX = max(map(len, ERROR_VALUES))


def is_null_token(text: str) -> bool:
    # lower() never shortens a string: a longer cell is no token, and need not be lowered
    return len(text) <= _NULL_TOKEN_MAX and text.lower() in NULL_TOKENS


def is_error_value(text: str) -> bool:
    return len(text) <= _ERROR_VALUE_MAX and text.lower() in ERROR_VALUES


@lru_cache(maxsize=4096)  # category cells repeat across rows
def parse_category_paths(text: str, separator: str = "|") -> tuple[str, ...]:
    """`"Men > Shoes|Sale"` → ("Men > Shoes", "Sale") (normalised like `ensure_category_paths`).

    With the separator `,` (WooCommerce: `A > B, C > D`) a cell splits only when every part is a
    path, or every part is a code without spaces (Akeneo: `goodies,tshirts`), so that a category
    named `Tables, Chairs` stays one. At most MAX_CATEGORY_PATHS paths of at most
    MAX_CATEGORY_DEPTH levels: a longer cell is an error."""
    raws = text.split(separator)
    if separator == "," and not all(">" in raw for raw in raws) and any(c.isspace() for c in text):
        raws = [text]
    paths: dict[str, None] = {}
    for raw in raws:
        parts = [p.strip() for p in raw.split(">") if p.strip()]
        if not parts:
            continue
        if len(parts) > MAX_CATEGORY_DEPTH:
            raise ValueError(
                f"a category path is {len(parts)} levels deep; at most {MAX_CATEGORY_DEPTH} levels are allowed"
            )
        if any(len(p) > CATEGORY_NAME_MAX for p in parts):
            raise ValueError(f"a category name is longer than {CATEGORY_NAME_MAX} characters")
        paths[" > ".join(parts)] = None
        if len(paths) > MAX_CATEGORY_PATHS:
            raise ValueError(f"more than {MAX_CATEGORY_PATHS} category paths in one cell")
    return tuple(paths)


# words other systems write for a product's status, and the status each means here: a column of
# them targets `status` with these shown as its suggested `value_mapping` (Shopify: active, draft,
# archived; shops and ERPs: enabled/disabled, published, online/offline, ...)
STATUS_WORDS = {
    "draft": "inactive",
    "archived": "inactive",
    "disabled": "inactive",
    "unpublished": "inactive",
    "hidden": "inactive",
    "offline": "inactive",
    "discontinued": "inactive",
    "private": "inactive",
    "enabled": "active",
    "published": "active",
    "online": "active",
    "visible": "active",
}


def read_status(text: str, conventions: Conventions = DEFAULT_CONVENTIONS) -> str:
    """A status cell: `active`, `inactive`, `deleted` in any case, or a true/false word of the file."""
    word = text.strip().casefold()
    if word in STATUSES:
        return word
    if word in conventions.true_words:
        return ProductStatus.active.value
    if word in conventions.false_words:
        return ProductStatus.inactive.value
    raise ValueError(
        f"not a status ({', '.join(STATUSES)}, or a true/false word); map other words with value_mapping"
    )


# --- row conversion --------------------------------------------------------------------------


class RowError(ValueError):
    """The row is rejected; the message says why (prefixed with the target field)."""


@dataclass(slots=True)
class ConvertedRow:
    item: dict[str, Any]
    category_paths: tuple[str, ...] | None  # None: the row does not set categories


def _field_reader(field: FieldDef, conventions: Conventions) -> Callable[[Any], Any]:
    """Cell (or mapped value) → the field's value, by the value core under the file's conventions."""
    if field.type == FieldType.enum:
        # "bleu" for the option "Bleu": spreadsheets are not careful about case (when only one option fits)
        folded: dict[str, list[str]] = {}
        for option in field.options or ():
            folded.setdefault(option.casefold(), []).append(option)
        options = {key: found[0] for key, found in folded.items() if len(found) == 1}

        def read_option(value: Any) -> str:
            option = options.get(value.casefold()) if type(value) is str else None
            if option is not None and field.validation is None:
                return option  # an option as it is: what coerce_value would return
            return coerce_value(field, value if option is None else option, conventions)

        return read_option
    return text_reader(field, conventions)


_UNMAPPED = object()


def _mapped(
    reader: Callable[[Any], Any], value_map: dict[str, Any], *, null_tokens: bool
) -> Callable[[str], Any]:
    """A reader that first replaces the cells `value_map` lists (exact text, else ignoring case); the
    user's mapping wins over the null tokens (`-` may mean false)."""
    folded = {key.strip().casefold(): value for key, value in value_map.items()}

    def read(cell: str) -> Any:
        value = value_map.get(cell, _UNMAPPED)
        if value is _UNMAPPED:
            value = folded.get(cell.casefold(), _UNMAPPED)
        if value is _UNMAPPED:
            return None if null_tokens and is_null_token(cell) else reader(cell)
        return None if value is None else reader(value)

    return read


_TYPED_CELL_TYPES = frozenset({FieldType.number, FieldType.integer, FieldType.boolean})


class RowConverter:
    """Built once per import from the confirmed mapping, schema and conventions; `convert()` per row.

    A bad cell rejects exactly its row, with the column and the cell in the message.
    """

    def __init__(
        self,
        *,
        headers: list[str],
        mapping: dict[str, str | None],
        fields: dict[str, FieldDef],
        conventions: Conventions = DEFAULT_CONVENTIONS,
        value_mapping: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        value_mapping = value_mapping or {}
        self.width = len(headers)
        self.fields = fields
        self.conventions = conventions
        self.category_separator = conventions.category_separator
        self.sku_index: int | None = None
        self.category_column: tuple[int, str] | None = None
        # per mapped column: cell index, target, reader or None (the text as is), whether null
        # tokens mean no value, header
        self.columns: list[tuple[int, str, Callable[[str], Any] | None, bool, str]] = []
        for index, header in enumerate(headers):
            target = mapping.get(header)
            if not target:
                continue
            reader: Callable[[Any], Any] | None
            if target == "sku":
                self.sku_index = index
                continue
            if target == "categories":
                self.category_column = (index, header)
                continue
            if target in BUILTIN_TARGETS:
                reader = {
                    "name": check_name,
                    "status": lambda v: read_status(v, conventions),
                    "variation_of": check_variation_of,
                }[target]
                skips_null_tokens = False
            elif target in fields:
                field = fields[target]
                reader = _field_reader(field, conventions)
                skips_null_tokens = field.type in TEXT_READ
            else:
                raise ValueError(f"{target!r} is not a field of the schema")
            if header in value_mapping and reader is not None:
                reader = _mapped(reader, value_mapping[header], null_tokens=skips_null_tokens)
                skips_null_tokens = False
            self.columns.append((index, target, reader, skips_null_tokens, header))
        if self.sku_index is None:
            raise ValueError("no column maps to sku")
        self.sku_column: int = self.sku_index
        # a workbook's number and boolean cells skip text parsing: their value goes to coerce_value as
        # a JSON value in a bulk request would (3.7 is 3.7 under any conventions)
        self.typed_fields = {
            index: fields[target]
            for index, header in enumerate(headers)
            if (target := mapping.get(header)) in fields
            and fields[target].type in _TYPED_CELL_TYPES
        }

    def sku_of(self, cells: list[str]) -> str | None:
        if self.sku_index is not None and self.sku_index < len(cells):
            return cells[self.sku_index].strip() or None
        return None

    def convert(self, cells: list[str]) -> ConvertedRow:
        n = len(cells)
        if n > self.width and any(c.strip() for c in cells[self.width :]):
            raise RowError(f"the row has {n} cells, the header has {self.width}")
        sku = cells[self.sku_column].strip() if self.sku_column < n else ""
        if not sku:
            raise RowError("sku: is required (the SKU cell is empty)")
        try:
            sku = check_sku(sku)
        except RuleError as exc:
            raise RowError(str(exc)) from None
        item: dict[str, Any] = {"sku": sku}
        for index, target, read, skips_null_tokens, header in self.columns:
            if index >= n:
                continue
            cell = cells[index]
            if isinstance(cell, TypedCell) and index in self.typed_fields:
                try:
                    item[target] = coerce_value(self.typed_fields[index], cell.value)
                except CoercionError as exc:
                    raise RowError(f"{exc} (column {header!r}: {cells[index]!s})") from None
                continue
            cell = cell.strip()
            if not cell or (skips_null_tokens and is_null_token(cell)):
                continue  # an empty cell, or "n/a" in a typed column, leaves the value unset
            if read is None:
                item[target] = cell
                continue
            try:
                value = read(cell)
            except (CoercionError, RuleError) as exc:  # the message names the field
                if is_error_value(cell):
                    raise RowError(
                        f"{target}: {cell!r} is a spreadsheet error value or NaN, not a value: the "
                        f"formula or export that wrote it failed (column {header!r})"
                    ) from None
                raise RowError(f"{exc} (column {header!r}: {cell[:60]!r})") from None
            except ValueError as exc:
                raise RowError(f"{target}: {exc} (column {header!r}: {cell[:60]!r})") from None
            if value is not None:  # a value_mapping to null leaves the value unset
                item[target] = value
        paths = None
        if self.category_column is not None and self.category_column[0] < n:
            cell = cells[self.category_column[0]].strip()
            if cell:
                try:
                    paths = parse_category_paths(cell, self.category_separator)
                except ValueError as exc:
                    raise RowError(
                        f"categories: {exc} (column {self.category_column[1]!r})"
                    ) from None
        return ConvertedRow(item, paths)


def merge_items(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """Two rows of one SKU in one batch: the same result as applying them one after the other."""
    return {**earlier, **later}
