"""The predicate tree: the DSL clients write, and the checked tree every filter syntax becomes.

A client's definition is a tree of `Group` (`all`/`any`), `Negation` and `Condition`
(field, op, value). Checked against a schema (`parsing.resolve`), it becomes the tree the
compiler reads: `Junction`, `Not` and `Test` leaves, each a test of one kind on a `Target`
with values already in their SQL type. The list's query-string filters and the PIMS filters
parse into the same checked tree.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, SkipValidation

from app.bodies import ClosedModel
from app.products.rules import STATUSES

MAX_DEPTH = 8  # nested groups / negations
MAX_CONDITIONS = (
    200  # leaf conditions; groups and negations are limited separately to the same number
)
MAX_LIST_VALUES = 1000
MAX_TEXT_VALUE = 1000
MAX_FIELD_NAME = 100


class DefinitionError(ValueError):
    """A definition that does not fit the DSL or the schema; `str()` is `"<place>: <why>"`."""

    def __init__(self, place: str, message: str):
        super().__init__(f"{place}: {message}")
        self.place = place
        self.message = message


# --- the DSL as Pydantic models ---------------------------------------------------------------


class Op(StrEnum):
    eq = "eq"
    ne = "ne"
    in_ = "in"
    not_in = "not_in"
    is_empty = "is_empty"
    is_not_empty = "is_not_empty"
    contains = "contains"
    not_contains = "not_contains"
    icontains = "icontains"
    starts_with = "starts_with"
    ends_with = "ends_with"
    gt = "gt"
    gte = "gte"
    lt = "lt"
    lte = "lte"
    between = "between"
    contains_any = "contains_any"
    contains_all = "contains_all"
    in_category = "in_category"


# What a condition compares with: a value of the field's type (text, number, boolean; dates and
# datetimes as ISO 8601 text), a list of them, or nothing. Documents the DSL (requests are checked
# by `parsing.parse_definition`) and types a definition read back (`SegmentOut.definition`).
Scalar = bool | int | float | str
ConditionValue = Scalar | list[Scalar | None] | None


class Condition(ClosedModel):
    """One test on a field: `{"field": "price", "op": "between", "value": [50, 150]}`."""

    field: str = Field(
        description="a schema field or a built-in: sku, name, status, category, variation_of, "
        "created_at, updated_at"
    )
    op: Op = Field(
        description="every type: eq ne in not_in is_empty is_not_empty; text-like: contains "
        "not_contains icontains starts_with ends_with; numbers and dates: gt gte lt lte "
        "between; array: contains contains_any contains_all; category: in_category"
    )
    value: ConditionValue = Field(
        default=None,
        description="a value of the field's type; a list for in, not_in, "
        "contains_any, contains_all and between ([low, high], inclusive); "
        "absent for is_empty and is_not_empty; a category id (or a list "
        "of ids) for the category built-in",
    )


class Group(ClosedModel):
    """`all` (AND) or `any` (OR) of its conditions; an empty `all` matches every product."""

    match: Literal["all", "any"]
    conditions: list["Node"] = Field(default_factory=list)


class Negation(ClosedModel):
    """`{"not": node}`: the products the node does not match."""

    model_config = ConfigDict(populate_by_name=True)

    not_: "Node" = Field(alias="not")


Node = Annotated[
    Group | Negation | Condition, Field(description="a group, a negation or a condition")
]
Group.model_rebuild()
Negation.model_rebuild()

DEFINITION_HELP = (
    'A tree of groups `{"match": "all"|"any", "conditions": [...]}`, negations `{"not": node}` and '
    'conditions `{"field", "op", "value"}`; at most 8 nested levels and 200 conditions.'
)
# Documented with the models but checked by `parsing.parse_definition` and `parsing.resolve`
# (SkipValidation), so that a bad definition is a 400 whose message names the place
# (`conditions[1].conditions[0].value: ...`) rather than a 422.
Definition = Annotated[SkipValidation[Node], Field(description=DEFINITION_HELP)]
# what a route that takes a definition says of its 400
DEFINITION_ERRORS = (
    "A definition that does not fit the schema (unknown field, operator not for the field's type, value of the wrong "
    "type, more than 8 levels or 200 conditions) is a `400` whose `detail` names the place, "
    "e.g. `conditions[1].conditions[0].value: must be a number`."
)


def dump_definition(node: Group | Negation | Condition) -> dict[str, Any]:
    """The normalised JSON form of a parsed definition (what is stored and returned)."""
    if isinstance(node, Group):
        return {"match": node.match, "conditions": [dump_definition(c) for c in node.conditions]}
    if isinstance(node, Negation):
        return {"not": dump_definition(node.not_)}
    out: dict[str, Any] = {"field": node.field, "op": node.op.value}
    if node.value is not None:
        out["value"] = node.value
    return out


# --- what a field is ------------------------------------------------------------------------------


class Kind(StrEnum):
    """How a field's values compare: the SQL type of its typed value expression."""

    text = "text"
    number = "number"
    date = "date"
    datetime = "datetime"
    boolean = "boolean"
    array = "array"
    category = "category"


@dataclass(frozen=True)
class Target:
    """What a test reads: a built-in column (`column`) or a key of `data`, and how its values compare."""

    name: str
    kind: Kind
    column: str | None = None  # the products column of a built-in; None for a data field
    nullable: bool = False
    options: tuple[str, ...] | None = None


BUILTINS: dict[str, Target] = {
    "sku": Target("sku", Kind.text, "sku"),
    "name": Target("name", Kind.text, "name"),
    "status": Target("status", Kind.text, "status", options=STATUSES),
    "variation_of": Target("variation_of", Kind.text, "variation_of", nullable=True),
    "created_at": Target("created_at", Kind.datetime, "created_at"),
    "updated_at": Target("updated_at", Kind.datetime, "updated_at"),
    "category": Target("category", Kind.category, "categories"),
}


# --- the checked tree the compiler reads ---------------------------------------------------------


class Check(StrEnum):
    """The tests a leaf can make; `Test.value` is what each one takes."""

    equals = "equals"  # typed value = value
    one_of = "one_of"  # typed value = any of values (a list)
    compare = "compare"  # typed value <op> value; `Test.op` is one of > >= < <=
    between = "between"  # typed value between value[0] and value[1], both included
    like = "like"  # text LIKE pattern (`Test.op` "LIKE" or "ILIKE"); the pattern is escaped already
    is_empty = (
        "is_empty"  # missing, JSON null, "" or []; a built-in: NULL (text: or ""), no categories
    )
    has_value = "has_value"  # the key is present and not JSON null
    contains_json = (
        "contains_json"  # data contains any of these documents (GIN index); value: list of dicts
    )
    any_element = "any_element"  # a list with any of these strings as an element
    same_elements = "same_elements"  # a list with exactly these elements, in any order
    element_like = "element_like"  # a list with an element ILIKE pattern
    categories_contain = "categories_contain"  # in every one of these category ids
    categories_overlap = "categories_overlap"  # in any of these category ids
    category_paths = (
        "category_paths"  # in a category with one of these paths (value[0]) or under one (value[1])
    )


@dataclass(frozen=True)
class Test:
    check: Check
    target: Target
    value: Any = None
    op: str = ""


@dataclass(frozen=True)
class Junction:
    """`all` (AND) or `any` (OR) of its parts; no parts: every product / none."""

    match: Literal["all", "any"]
    parts: tuple["Clause", ...]


@dataclass(frozen=True)
class Not:
    part: "Clause"


Clause = Junction | Not | Test
