"""A confirmed import's plan: how its stored file is read and how each of its rows converts.

Confirming a job fixes both: the file is read in the encoding it was stored in, with its CSV
dialect (or from its workbook sheet) and its format's row transform; a row converts with the
headers, the mapping, the conventions and the value mapping. The dry run (in the request) and
the import task (in the worker) take the plan as one object, built from the job the same way,
so that both read and convert the file alike.
"""

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from app.catalog.fields import FieldDef
from app.imports.conventions import Conventions
from app.imports.records import Dialect, Record
from app.imports.rows import RowConverter
from app.imports.sources import stored_records
from app.imports.transforms import RowTransform, restore_transform


@dataclass(frozen=True, slots=True)
class ImportPlan:
    headers: list[str]  # the file's headers, then the columns its row transform adds
    mapping: dict[str, str | None]
    conventions: Conventions
    value_mapping: dict[str, dict[str, Any]]
    encoding: str  # the stored file's
    dialect: Dialect
    xlsx: dict[str, Any] | None  # a workbook: its sheet; a resume offset is then a sheet row
    row_transform: str | None  # a known format's (see `transforms`)

    @classmethod
    def of_job(
        cls,
        delimiter: str | None,
        quotechar: str | None,
        parse_options: dict[str, Any],
        *,
        headers: list[str],
        mapping: dict[str, str | None],
        conventions: Conventions,
        value_mapping: dict[str, dict[str, Any]],
    ) -> "ImportPlan":
        """The confirmed mapping, conventions and value mapping, with the reading a job stored
        (its delimiter and quotechar columns and its parse options)."""
        return cls(
            headers,
            mapping,
            conventions,
            value_mapping,
            encoding=parse_options.get("stored_encoding", "utf-8"),
            dialect=Dialect.of_job(delimiter, quotechar, parse_options),
            xlsx=parse_options.get("xlsx"),
            row_transform=parse_options.get("row_transform"),
        )

    def converter(self, fields: dict[str, FieldDef]) -> RowConverter:
        """The rows' converter under the schema's `fields`; ValueError when the mapping does not
        fit them."""
        return RowConverter(
            headers=self.headers,
            mapping=self.mapping,
            fields=fields,
            conventions=self.conventions,
            value_mapping=self.value_mapping,
        )

    def transform(self, state: dict[str, Any] | None = None) -> RowTransform | None:
        """The row transform (None: the rows are whole as they are), from its saved `state`."""
        return restore_transform(self.row_transform, self.headers, state)

    def width(self, transform: RowTransform | None) -> int:
        """The file's own columns: the headers but those the transform adds."""
        return len(self.headers) - (transform.added if transform else 0)

    def records(
        self, conn, job_id, *, start_offset: int, transform: RowTransform | None
    ) -> AsyncIterator[Iterable[Record]]:
        """The stored file's records from `start_offset`, in steps (see `stored_records`); the
        transform is not applied to them."""
        return stored_records(
            conn,
            job_id,
            xlsx=self.xlsx,
            encoding=self.encoding,
            dialect=self.dialect,
            start_offset=start_offset,
            width=self.width(transform),
        )
