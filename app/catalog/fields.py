"""The tenant's field model: field definitions and the rules of a schema a client sends.

How values are coerced to a field's type is the value core, `app.catalog.values`; its names
are re-exported here for the callers that import them with the field model.
"""

import re

from pydantic import Field, field_validator, model_validator

from app.bodies import ClosedModel
from app.catalog.values import (  # noqa: F401 (re-exported)
    FACETED,
    MAX_NESTING,
    NUMERIC,
    STRING_LIKE,
    TEMPORAL,
    VALIDATED,
    CoercionError,
    FieldType,
    check_required,
    coerce_data,
    coerce_value,
    compiled_pattern,
    is_empty,
    plain_number,
)

BUILTIN_NAMES = frozenset(
    [
        "id",
        "sku",
        "name",
        "status",
        "categories",
        "variation_of",
        "variation_attributes",
        "created_at",
        "updated_at",
    ]
)
RESERVED_QUERY_NAMES = frozenset(
    [
        "q",
        "page",
        "page_size",
        "ordering",
        "cursor",
        "limit",
        "filters",
        "pageSize",
        "pageNum",
        "sort",
    ]
)
RESERVED_NAMES = BUILTIN_NAMES | RESERVED_QUERY_NAMES
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Keys that are not schema fields may still be filtered on; they must look like a plain key.
DATA_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
MAX_FIELDS = 500
MAX_PATTERN = 1000


class FieldDef(ClosedModel):
    """A field of the product schema.

    The model's own checks are the ones every stored schema passes; a schema a client sends is
    also checked by `check_schema_fields` (reserved names, RE2 syntax, options that have an effect),
    so that a schema stored before one of those rules existed still loads.
    """

    name: str = Field(
        json_schema_extra={"pattern": FIELD_NAME_RE.pattern},
        description="`^[a-z][a-z0-9_]{0,62}$`; not a built-in name nor a query parameter the API reserves: "
        f"{', '.join(sorted(RESERVED_NAMES))}. A name may contain `__`: a list filter key equal to a field's "
        "name is that field's exact filter, otherwise the operator is what follows the last `__`.",
    )
    type: FieldType = FieldType.string
    label: str = ""
    labels: dict[str, str] = Field(
        default_factory=dict, description='label per locale, e.g. {"de-de": "Marke"}'
    )
    description: str = ""
    group: str = "general"
    required: bool = False
    unique: bool = Field(
        default=False, description="no two products may have the same value; not for `array` fields"
    )
    filterable: bool = True
    searchable: bool = False
    options: list[str] | None = Field(
        default=None, description="allowed values of an `enum` field: non-empty, distinct strings"
    )
    validation: str | None = Field(
        default=None,
        description="a regular expression that values of a `string`, `text`, `url` or `enum` field, and each item "
        "of an `array` field, must contain a match of (anchor it with `^...$` to match the whole value); other "
        "types take none. RE2 syntax (https://github.com/google/re2/wiki/Syntax), matched in linear time: no "
        "backreferences or lookaround, `\\z` ends the text (not `\\Z`), `\\d` `\\w` `\\s` `\\b` are ASCII-only "
        "(use `\\p{L}`, `\\p{N}` for letters and digits of every script), `$` matches only at the end of the text. "
        'At most 1,000 characters; `""` is the same as null.',
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not FIELD_NAME_RE.match(name):
            raise ValueError("must match ^[a-z][a-z0-9_]{0,62}$")
        return name

    @field_validator("validation")
    @classmethod
    def _check_regex(cls, pattern: str | None) -> str | None:
        if pattern in (None, ""):
            return None
        if len(pattern) > MAX_PATTERN:
            raise ValueError("regular expression is too long")
        return pattern

    @model_validator(mode="after")
    def _check_options(self) -> "FieldDef":
        if self.type == FieldType.enum:
            if not self.options:
                raise ValueError("an enum field needs a non-empty `options` list")
            if len(set(self.options)) != len(self.options):
                raise ValueError("enum options must be unique")
        return self


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a new field (None: it can)."""
    if not FIELD_NAME_RE.match(name):
        return "must match ^[a-z][a-z0-9_]{0,62}$"
    if name in RESERVED_NAMES:
        return f"{name!r} is a reserved name"
    return None


def _field_problem(f: FieldDef) -> str | None:
    """Why a field a client sends is refused, beyond the model's own checks (None: it is fine)."""
    problem = name_problem(f.name)
    if problem:
        return f"name: {problem}"
    if f.unique and f.type == FieldType.array:
        return "unique: uniqueness is not checked for array fields"
    if f.validation is not None:
        if f.type not in VALIDATED:
            return f"validation: {f.type.value} fields take no validation pattern (only string, text, url, enum, array)"
        try:
            compiled_pattern(f.validation)
        except ValueError as exc:
            return f"validation: {exc}"
    if f.type == FieldType.enum and any(not option.strip() for option in f.options or ()):
        return "options: an enum option must not be empty"
    return None


def check_schema_fields(fields: list[FieldDef]) -> list[FieldDef]:
    """The rules of a schema a client sends (PUT /schema/, an import's confirmation)."""
    if len(fields) > MAX_FIELDS:
        raise ValueError(f"a schema has at most {MAX_FIELDS} fields")
    seen: set[str] = set()
    for f in fields:
        if f.name in seen:
            raise ValueError(f"field {f.name!r} appears more than once")
        seen.add(f.name)
        problem = _field_problem(f)
        if problem:
            raise ValueError(f"field {f.name!r}: {problem}")
    return fields
