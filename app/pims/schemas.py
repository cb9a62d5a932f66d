"""Models of the PIMS compatibility route: its query parameters, response and error shapes.

The route parses its parameters itself (so that bad values are `400` in the PIMS error
shape rather than FastAPI's `422`); these models are the single source for both that
parsing and the parameters written into the OpenAPI document.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.bodies import ClosedModel
from app.errors import ErrorCode
from app.products.rules import ProductStatus

MAX_PAGE_SIZE = 200
MAX_PAGE_NUM = 10_000_000
SORT_PATTERN = r"^\w+\|(asc|desc)$"
LOCALE_PATTERN = r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$"


class PimsQuery(ClosedModel):
    """The control parameters; every other query parameter is an attribute filter named in `filters`."""

    filters: str | None = Field(
        default=None,
        max_length=4000,
        description="Comma-separated attribute names to filter by, e.g. `brand,price`. Each needs its own parameter: "
        "`brand=A|B` (any of the values) or `price=100.00;;1000.00` (inclusive numeric range, digits and periods only, "
        "either end may be empty). Names are schema fields or the built-ins `sku`, `title` (or `name`), `status`, "
        "`categories` (category paths such as `Men > Shoes`, descendants included) and `variation_of`. "
        "Products with status `deleted` are left out unless `status` is filtered.",
    )
    sort: str | None = Field(
        default=None,
        max_length=200,
        pattern=SORT_PATTERN,
        description="`<attribute>|asc` or `<attribute>|desc`, e.g. `sku|asc`; numbers and dates sort by value. "
        "Default: creation order.",
    )
    pageSize: int = Field(
        default=50, ge=1, le=MAX_PAGE_SIZE, description="Products per page (at most 200)"
    )
    pageNum: int = Field(default=1, ge=1, le=MAX_PAGE_NUM, description="Page number, from 1")


class PimsAttributes(BaseModel):
    """Values of one product: scalars are strings, multi-values arrays of strings."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "sku": "Part-number00",
                "categories": ["Category-1 Name > Category-2 Name"],
                "status": "active",
                "title": "Title PART-number00",
                "price": "100.00",
                "variation_attributes": ["rod_diameter"],
                "variation_of": None,
                "variation_skus": [["Part-number01", "Part-number02"]],
                "variation_matrix": {"Part-number01": {"rod_diameter": ["1.66 in (4.22 cm)"]}},
            }
        },
    )

    sku: str = Field(description="Unique product code")
    categories: list[str] = Field(description="Category paths, names joined with ` > `")
    status: ProductStatus
    title: str = Field(description="The product name")
    variation_attributes: list[str] | None = Field(
        default=None,
        description="Variation families only: the attributes in which the variations differ",
    )
    variation_of: str | None = Field(
        default=None, description="Variation families only: the parent's SKU (null on the parent)"
    )
    variation_skus: list[list[str]] | None = Field(
        default=None,
        description="Variation families only: one list holding the SKUs of the variations",
    )
    variation_matrix: dict[str, dict[str, list[str]]] | None = Field(
        default=None,
        description="Variation families only: variation SKU (and the product's own SKU) → {attribute: [values]}",
    )


class PimsProductData(BaseModel):
    attributes: PimsAttributes


class PimsProduct(BaseModel):
    data: PimsProductData
    sku: str


class PimsDictionary(BaseModel):
    """Allowed values of an `enum` attribute, as the one-column table PIMS uses."""

    visible: list[int]
    sortingMethod: str
    columns: list[str]
    validation: list[Any]
    sorting: list[Any]
    unique: list[int]
    data: list[str]


class PimsDefinition(BaseModel):
    """How one attribute is defined; flags are the strings "1" and "0"."""

    type: str
    collection: Literal["0", "1"]
    isUnique: Literal["0", "1"]
    label: dict[str, str] = Field(description="keyed by the request's locale")
    comment: dict[str, str] = Field(description="keyed by the request's locale")
    validation: str
    isSearchable: Literal["0", "1"]
    isIndexable: Literal["0", "1"]
    isFilterable: Literal["0", "1"]
    group: str
    isSimpleType: Literal["0", "1"] | None = None
    dictionaryIsStatic: Literal["0", "1"] | None = None
    value: str | None = None
    dictionary: PimsDictionary | None = None


class PimsProducts(BaseModel):
    products: list[PimsProduct]
    definition: dict[str, PimsDefinition]
    status: Literal["OK"]
    sku_count: int = Field(
        description="Number of products matching the category and filters (all pages)"
    )


class PimsError(BaseModel):
    status: Literal["ERROR"]
    detail: str
    code: ErrorCode = Field(description="the stable code of the API's other error answers")
