"""Request and response models of the catalog: product schema, categories, views."""

from datetime import datetime
from typing import Annotated

from pydantic import MISSING, BaseModel, ConfigDict, Field, field_validator

from app.bodies import ClosedModel
from app.catalog.fields import FieldDef, check_schema_fields
from app.pagination import NextCursor
from app.products.rules import INT64_MAX

LOCALE_PATTERN = r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$"


class SchemaIn(ClosedModel):
    """The whole field list (it replaces the stored one), and the default currency and locale."""

    fields: list[FieldDef] = Field(default_factory=list)
    default_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    default_locale: str | None = Field(default=None, pattern=LOCALE_PATTERN)
    updated_at: datetime | None = Field(
        default=None,
        exclude=True,
        description="read-only, ignored: the body of `GET` can be sent back as it is",
    )

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, fields: list[FieldDef]) -> list[FieldDef]:
        return check_schema_fields(fields)


class SchemaOut(BaseModel):
    fields: list[FieldDef]
    default_currency: str
    default_locale: str
    updated_at: datetime | None


CATEGORY_NAME_SEPARATORS = (">", "|")
# a category is at most this many levels deep (a root is level 1), through the API and the import
MAX_CATEGORY_DEPTH = 20
# category paths in one CSV cell
MAX_CATEGORY_PATHS = 100
CATEGORY_NAME_MAX = 255
# documents what `_category_name` checks: something besides whitespace, and no separator
CATEGORY_NAME_PATTERN = r"^[^>|]*[^\s>|][^>|]*$"
CategoryName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=CATEGORY_NAME_MAX,
        json_schema_extra={"pattern": CATEGORY_NAME_PATTERN},
        description="no `>` or `|` (they separate paths); surrounding whitespace is removed",
    ),
]


def _category_name(cls: type, name: str | None) -> str | None:
    if name is None:
        return None
    # stripped, and free of what splits paths: the CSV import and the PIMS `categories` filter
    # cut a list of paths at "|" and a path at ">", stripping each name (see parse_category_paths)
    name = name.strip()
    if not name or any(sep in name for sep in CATEGORY_NAME_SEPARATORS):
        raise ValueError("a category name must not be empty or contain '>' or '|'")
    return name


class CategoryIn(ClosedModel):
    """A new category: its name, parent (none: a root), labels per locale and position among its siblings."""

    name: CategoryName
    parent_id: int | None = Field(default=None, ge=1, le=INT64_MAX)
    labels: dict[str, str] = Field(default_factory=dict)
    position: int = Field(default=0, ge=-(2**31), le=2**31 - 1)

    _no_separator = field_validator("name")(_category_name)


class CategoryPatch(ClosedModel):
    """A partial update: an absent field is unchanged; `parent_id: null` makes the category a
    root; null for any other field is a 422 (docs/contract.md, "PATCH and null")."""

    name: CategoryName | MISSING = MISSING
    parent_id: Annotated[int, Field(ge=1, le=INT64_MAX)] | MISSING | None = Field(
        default=MISSING, description="the new parent's id; null: a root category"
    )
    labels: dict[str, str] | MISSING = MISSING
    position: Annotated[int, Field(ge=-(2**31), le=2**31 - 1)] | MISSING = MISSING

    _no_separator = field_validator("name")(_category_name)


class CategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    parent_id: int | None
    labels: dict[str, str]
    path: str
    position: int


class CategoryPage(BaseModel):
    results: list[CategoryOut]
    next_cursor: NextCursor


class ViewIn(ClosedModel):
    """A new view: its name and the attributes it shows, in order."""

    name: str = Field(min_length=1, max_length=255)
    attributes: list[str] = Field(default_factory=list, max_length=500)
    is_default: bool = False


class ViewPatch(ClosedModel):
    """A partial update: an absent field is unchanged; no field is nullable (null is a 422)."""

    name: Annotated[str, Field(min_length=1, max_length=255)] | MISSING = MISSING
    attributes: Annotated[list[str], Field(max_length=500)] | MISSING = MISSING
    is_default: bool | MISSING = MISSING


class ViewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    attributes: list[str]
    is_default: bool


class ViewPage(BaseModel):
    results: list[ViewOut]
    next_cursor: NextCursor
