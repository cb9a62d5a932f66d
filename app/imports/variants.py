"""Pure: Shopify's variant rows → one complete row per variant.

In Shopify's product CSV (help.shopify.com, "Using CSV files to import and export products")
a product with variants takes one row per variant, all with the product's `Handle`
(`URL handle` in the 2024 template). Product-level columns (Title, Body (HTML), Vendor,
Type, Tags, Published, Status, SEO…, OptionN Name) are filled on the handle's first row
only and left empty on the others; variant columns (Variant SKU, OptionN Value, Variant
Price…) are filled on every row. A product's images (`Image Src`, in `Image Position` order) are
written one per row of its handle: on its variant rows, then on rows with only the handle and
image columns.

`ShopifyVariants.apply` gives each variant row the empty product-level cells of its
handle's first row, and a last cell, "Variation Of", with the SKU of the handle's first
variant: the first variant stands for the product (the contract's `variation_of` is a
parent's SKU, and a Shopify product has no SKU of its own), the others are its variations.
A last cell, "Images", holds the handle's image URLs seen so far (commas inside a URL escaped as
%2C, the list separator being `,`): on the handle's first row its own image; an image-only row
becomes a row of the first variant's SKU with only the handle and "Images" (every image of the
handle up to that row), which the import merges into that product. So the product (its first
variant) gets every image that an image-only row or its own row lists; an image written on a
later variant row only reaches it when an image-only row follows (Shopify writes images past the
variant rows that way).

Shopify writes a handle's rows one after the other, so only the current handle's first row
is kept: memory is one row. `state()` / `restore()` carry it across the import's batches.
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar

from app.imports.formats import SHOPIFY, detect_format

VARIATION_HEADER = "Variation Of"
IMAGES_HEADER = "Images"

_HANDLES = ("handle", "url handle")
_SKUS = ("variant sku", "sku")
# product-level columns of both templates (classic / 2024)
_PRODUCT_LEVEL = frozenset(
    {
        "title",
        "body (html)",
        "description",
        "vendor",
        "product category",
        "type",
        "tags",
        "published",
        "published on online store",
        "status",
        "gift card",
        "seo title",
        "seo description",
        "option1 name",
        "option2 name",
        "option3 name",
    }
)
_PRODUCT_LEVEL_PREFIXES = ("google shopping /",)
_IMAGE_COLUMNS = frozenset({"image src", "image position", "image alt text", "product image url"})
_IMAGE_URLS = ("image src", "product image url")


def _fold(header: str) -> str:
    return " ".join(header.replace("\ufeff", "").split()).casefold()


def _is_product_level(folded: str) -> bool:
    return (
        folded in _PRODUCT_LEVEL
        or folded.startswith(_PRODUCT_LEVEL_PREFIXES)
        or "(product.metafields." in folded
    )


@dataclass
class ShopifyVariants:
    added: ClassVar[int] = 2  # the "Variation Of" and "Images" columns
    width: int  # the file's own columns; the variation cell goes after them
    handle: int
    sku: int | None
    inherited: list[int]  # product-level columns
    variant_level: list[int]  # columns that make a row more than an image row
    image: int | None = None  # the image URL column
    current: str | None = None
    first: list[str] = field(default_factory=list)
    parent_sku: str = ""
    images: list[str] = field(default_factory=list)  # the current handle's image URLs so far

    @classmethod
    def for_headers(cls, headers: list[str]) -> "ShopifyVariants | None":
        """The transform for a Shopify header row, or None for another format."""
        if (
            detect_format(headers) != SHOPIFY
            or VARIATION_HEADER in headers
            or IMAGES_HEADER in headers
        ):
            return None
        folded = [_fold(h) for h in headers]
        handle = next((i for i, h in enumerate(folded) if h in _HANDLES), None)
        if handle is None:
            return None
        sku = next((i for name in _SKUS for i, h in enumerate(folded) if h == name), None)
        inherited = [i for i, h in enumerate(folded) if _is_product_level(h)]
        variant_level = [
            i
            for i, h in enumerate(folded)
            if i != handle and not _is_product_level(h) and h not in _IMAGE_COLUMNS
        ]
        image = next((i for name in _IMAGE_URLS for i, h in enumerate(folded) if h == name), None)
        return cls(
            width=len(headers),
            handle=handle,
            sku=sku,
            inherited=inherited,
            variant_level=variant_level,
            image=image,
        )

    def headers(self, headers: list[str]) -> list[str]:
        return [*headers, VARIATION_HEADER, IMAGES_HEADER]

    def _add_image(self, row: list[str]) -> None:
        url = str(row[self.image]).strip().replace(",", "%2C") if self.image is not None else ""
        if url and url not in self.images:
            self.images.append(url)

    def apply(self, cells: list[str]) -> list[str]:
        """The row with its handle's product-level cells and its parent's SKU (blank for an image row)."""
        if not any(str(c).strip() for c in cells):
            return cells
        row = list(cells[: self.width]) + [""] * (self.width - len(cells))
        extra = list(cells[self.width :])  # cells beyond the header: the import reports the row
        handle = str(row[self.handle]).strip()
        if not handle or handle != self.current:
            self.current = handle or None
            self.first = [row[i] for i in self.inherited]
            self.parent_sku = str(row[self.sku]).strip() if self.sku is not None and handle else ""
            self.images = []
            self._add_image(row)
            return [*row, "", ",".join(self.images), *extra]
        self._add_image(row)
        if not any(str(row[i]).strip() for i in self.variant_level) and not extra:
            # another image of the product: the product (its first variant) gets all of them so far
            if self.sku is None or not self.parent_sku or not self.images:
                return []
            update = [""] * self.width
            update[self.handle] = row[self.handle]
            update[self.sku] = self.parent_sku
            return [*update, "", ",".join(self.images)]
        for i, value in zip(self.inherited, self.first):
            if not str(row[i]).strip():
                row[i] = value
        sku = str(row[self.sku]).strip() if self.sku is not None else ""
        return [*row, self.parent_sku if sku != self.parent_sku else "", "", *extra]

    def state(self) -> dict[str, Any]:
        return {
            "handle": self.current,
            "first": [str(c) for c in self.first],
            "parent_sku": self.parent_sku,
            "images": list(self.images),
        }

    def restore(self, state: dict[str, Any] | None) -> None:
        if state:
            self.current = state.get("handle")
            self.first = list(state.get("first") or [])
            self.parent_sku = state.get("parent_sku") or ""
            self.images = list(state.get("images") or [])
