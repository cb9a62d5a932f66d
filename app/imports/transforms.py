"""Pure: a known export format's rows made whole before the import reads them.

A transform sees each data row (a list of cells) in file order and returns it completed, with
columns of its own appended after the file's; the suggestion, the dry run and the worker all
read rows through the same transform, so what the user confirms is what gets imported.

- Shopify (`variants.ShopifyVariants`): variant rows inherit their handle's product cells and
  get a `Variation Of` column.
- Google Merchant Center (`MerchantPrices`): a price cell is an amount and a currency
  (`15.00 USD`, the product data specification's format); the amount stays in its column and
  the currency goes to a `<column>_currency` column. A cell in another shape is left as it is,
  so the value core reads it or rejects its row: nothing is guessed.
"""

import re
from dataclasses import dataclass
from typing import Any, Protocol

from app.imports.formats import GOOGLE_MERCHANT_CENTER, detect_format
from app.imports.variants import ShopifyVariants


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


_TRANSFORMS: dict[str, Any] = {"shopify": ShopifyVariants, GOOGLE_MERCHANT_CENTER: MerchantPrices}


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
