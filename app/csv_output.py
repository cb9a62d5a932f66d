"""CSV that we produce for people to open in spreadsheets: formula-safe cells.

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a formula by
Excel, LibreOffice and Google Sheets (`=HYPERLINK(...)`, `+cmd|...`, `@SUM(...)`). As OWASP
advises (CSV injection), such a cell gets a leading `'`, which spreadsheets show as text and
do not evaluate. Every CSV the service writes goes through `csv_writer`, header row included.
"""

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: Any) -> Any:
    """The cell as a spreadsheet shows it as text; non-strings (row numbers) are left alone."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _FormulaSafeWriter:
    def __init__(self, writer):
        self._writer = writer

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([formula_safe(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(buffer, **options) -> _FormulaSafeWriter:
    """`csv.writer(buffer, lineterminator="\\r\\n", **options)` whose every cell is formula-safe."""
    return _FormulaSafeWriter(csv.writer(buffer, **{"lineterminator": "\r\n", **options}))
