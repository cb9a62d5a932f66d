"""Pure: a known export format's rows made whole before the import reads them.

A transform sees each data row (a list of cells) in file order and returns it completed, with
columns of its own appended after the file's; the suggestion, the dry run and the worker all
read rows through the same transform, so what the user confirms is what gets imported.

- Shopify (`variants.ShopifyVariants`): variant rows inherit their handle's product cells and
  get a `Variation Of` column.
- WooCommerce (`WooParents`): a `Parent` cell `id:101` names the parent by its post ID (the
  product CSV import schema: "id:100 or SKU"); it becomes the SKU of the file's row whose `ID` is
  101, so that `variation_of` holds a SKU. A reference no earlier row answers rejects its row
  (WooCommerce exports write a variable product before its variations).
- Magento and BigCommerce (`CategoryPaths`): a categories cell lists paths with levels separated
  by `/` (`Default Category/Gear,Default Category/Gear/Bags`; BigCommerce: `Shop All/Garden;Sale`);
  it becomes the catalog's `Default Category > Gear|Default Category > Gear > Bags`. A Magento
  row of a store view (`store_view_code` set) holds that view's translations of a product the file
  already has: it is rejected with that reason, never imported over the product's own values.
- Google Merchant Center (`MerchantPrices`): a price cell is an amount and a currency
  (`15.00 USD`, the product data specification's format); the amount stays in its column and
  the currency goes to a `<column>_currency` column. A cell in another shape is left as it is,
  so the value core reads it or rejects its row: nothing is guessed.
"""

import re
from dataclasses import dataclass
from typing import Any, Protocol

from app.imports.formats import (
    BIGCOMMERCE,
    CATEGORY_COLUMNS,
    GOOGLE_MERCHANT_CENTER,
    MAGENTO,
    WOOCOMMERCE,
    detect_format,
    woo_key,
)
from app.imports.variants import ShopifyVariants


class TransformError(ValueError):
    """The row cannot be made whole (an unresolvable reference): it is rejected with this reason."""

    def __init__(self, message: str, *, sku: str | None = None) -> None:
        super().__init__(message)
        self.sku = sku


class RowTransform(Protocol):
    added: int  # columns appended after the file's own

    def headers(self, headers: list[str]) -> list[str]: ...
    def apply(self, cells: list[str]) -> list[str]: ...
    def state(self) -> dict[str, Any] | None: ...
    def restore(self, state: dict[str, Any] | None) -> None: ...


# Merchant Center's price attributes ("price", "sale_price"; feeds also write them with spaces)
_PRICE_HEADERS = frozenset(
    {"price", "sale_price", "sale price", "cost_of_goods_sold", "cost of goods sold"}
)
_AMOUNT_AND_CURRENCY = re.compile(r"^\s*(?P<amount>[0-9][0-9.,]*)\s+(?P<currency>[A-Z]{3})\s*$")


@dataclass
class MerchantPrices:
    width: int
    columns: list[int]  # the price columns
    added: int = 0

    @classmethod
    def for_headers(cls, headers: list[str]) -> "MerchantPrices | None":
        if detect_format(headers) != GOOGLE_MERCHANT_CENTER:
            return None
        columns = [
            i for i, h in enumerate(headers) if " ".join(h.split()).casefold() in _PRICE_HEADERS
        ]
        if not columns or any(h.endswith("_currency") for h in headers):
            return None
        return cls(width=len(headers), columns=columns, added=len(columns))

    def headers(self, headers: list[str]) -> list[str]:
        return [*headers, *(f"{'_'.join(headers[i].split())}_currency" for i in self.columns)]

    def apply(self, cells: list[str]) -> list[str]:
        if not any(str(c).strip() for c in cells):
            return cells
        row = list(cells[: self.width]) + [""] * (self.width - len(cells))
        extra = list(cells[self.width :])  # cells beyond the header: the import reports the row
        currencies = []
        for i in self.columns:
            match = _AMOUNT_AND_CURRENCY.match(str(row[i]))
            if match:
                row[i] = match["amount"]
            currencies.append(match["currency"] if match else "")
        return [*row, *currencies, *extra]

    def state(self) -> None:
        return None

    def restore(self, state: dict[str, Any] | None) -> None:
        pass


@dataclass
class CategoryPaths:
    """A format's categories cells (paths split by one separator, levels by another) → the
    catalog's `A > B|C` (the job's category separator for these formats is `|`)."""

    column: int
    path_separator: str
    level_separator: str
    store_view_column: int | None
    added: int = 0

    @classmethod
    def for_headers(cls, headers: list[str]) -> "CategoryPaths | None":
        fmt = detect_format(headers)
        if fmt not in (MAGENTO, BIGCOMMERCE):
            return None
        header, paths, levels = CATEGORY_COLUMNS[fmt]
        folded = [" ".join(h.split()).casefold() for h in headers]
        if header not in folded:
            return None
        store_view = "store_view_code" if fmt == MAGENTO else None
        return cls(
            column=folded.index(header),
            path_separator=paths,
            level_separator=levels,
            store_view_column=folded.index(store_view) if store_view in folded else None,
        )

    def headers(self, headers: list[str]) -> list[str]:
        return headers

    def apply(self, cells: list[str]) -> list[str]:
        if self.store_view_column is not None and self.store_view_column < len(cells):
            view = str(cells[self.store_view_column]).strip()
            if view:
                raise TransformError(
                    f"a row of the store view {view[:40]!r} (column 'store_view_code') holds that "
                    "view's translations: only the default rows (store_view_code empty) are imported"
                )
        if self.column >= len(cells) or not str(cells[self.column]).strip():
            return cells
        paths = []
        for path in str(cells[self.column]).split(self.path_separator):
            levels = [level.strip() for level in path.split(self.level_separator)]
            if any(levels):
                paths.append(" > ".join(level for level in levels if level))
        row = list(cells)
        row[self.column] = "|".join(paths)
        return row

    def state(self) -> None:
        return None

    def restore(self, state: dict[str, Any] | None) -> None:
        pass


_POST_ID_REFERENCE = re.compile(r"^\s*id\s*:\s*(\d+)\s*$", re.IGNORECASE)


@dataclass
class WooParents:
    """WooCommerce's `Parent` cells `id:<post id>` → the parent row's SKU.

    Only the post IDs of rows that can be parents (Type `variable`, or every row of a file without
    a Type column) are kept, with their SKU: memory is one entry per variable product."""

    id_column: int
    sku_column: int
    parent_column: int
    type_column: int | None
    parents: dict[str, str]
    added: int = 0

    @classmethod
    def for_headers(cls, headers: list[str]) -> "WooParents | None":
        if detect_format(headers) != WOOCOMMERCE:
            return None
        folded = [woo_key(h) for h in headers]  # English or German column names
        if not {"id", "sku", "parent"} <= set(folded):
            return None
        return cls(
            id_column=folded.index("id"),
            sku_column=folded.index("sku"),
            parent_column=folded.index("parent"),
            type_column=folded.index("type") if "type" in folded else None,
            parents={},
        )

    def headers(self, headers: list[str]) -> list[str]:
        return headers

    def _cell(self, cells: list[str], index: int) -> str:
        return str(cells[index]).strip() if index < len(cells) else ""

    def apply(self, cells: list[str]) -> list[str]:
        post_id, sku = self._cell(cells, self.id_column), self._cell(cells, self.sku_column)
        kind = "" if self.type_column is None else self._cell(cells, self.type_column).casefold()
        if post_id and sku and (self.type_column is None or "variable" in kind):
            self.parents[post_id] = sku
        reference = _POST_ID_REFERENCE.match(self._cell(cells, self.parent_column))
        if reference is None:
            return cells
        parent = self.parents.get(reference[1])
        if parent is None:
            raise TransformError(
                f"variation_of: the parent id:{reference[1]} is the post ID of no earlier variable "
                "product row of the file (column 'Parent')",
                sku=sku or None,
            )
        row = list(cells)
        row[self.parent_column] = parent
        return row

    def state(self) -> dict[str, Any]:
        return {"parents": dict(self.parents)}  # a copy: the batch keeps it while parsing goes on

    def restore(self, state: dict[str, Any] | None) -> None:
        self.parents = dict((state or {}).get("parents") or {})


_TRANSFORMS: dict[str, Any] = {
    "shopify": ShopifyVariants,
    GOOGLE_MERCHANT_CENTER: MerchantPrices,
    WOOCOMMERCE: WooParents,
    "category_paths": CategoryPaths,  # Magento and BigCommerce
}


def apply_leniently(transform: RowTransform, cells: list[str]) -> list[str]:
    """The transformed row, or the row as it is when it cannot be made whole (for the suggestion,
    which reads rows out of their file order)."""
    try:
        return transform.apply(cells)
    except TransformError:
        return cells


def transform_for(headers: list[str]) -> tuple[str, RowTransform] | None:
    """The transform a file's header row calls for, with its name (stored on the job), or None."""
    for name, kind in _TRANSFORMS.items():
        transform = kind.for_headers(headers)
        if transform is not None:
            return name, transform
    return None


def restore_transform(
    name: str | None, headers: list[str], state: dict[str, Any] | None
) -> RowTransform | None:
    """The job's transform again, from its stored name, its headers (the transform's columns
    included) and the state saved with the last committed batch."""
    if name is None:
        return None
    kind = _TRANSFORMS[name]
    for added in range(len(headers) + 1):  # the file's own headers are the first ones
        transform = kind.for_headers(headers[: len(headers) - added])
        if transform is not None and transform.added == added:
            transform.restore(state)
            return transform
    raise ValueError(f"the stored headers do not fit the {name!r} transform")
