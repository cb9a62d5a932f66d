"""Pure: bytes of a stored CSV file, fed in pieces → CSV records with the byte offset after each.

The worker resumes an import at a byte offset, so every record must say where it ends
in the file. Python's C `csv.reader` does the parsing; it pulls physical lines from
`_Lines`, which counts their bytes. A record is only started when at least
`2 * max_record_bytes` are buffered (or the file is complete), and a record longer
than `max_record_bytes` is cut off the same way wherever the stream was resumed:
the records a file yields do not depend on how it was split into pieces.

An import reads with `width` (the header's cells) and strict quotes, so that a stray quote does
not merge rows silently (RFC 4180: a quote only opens a cell at the cell's start; `5" screen`
in mid-cell is text). A record is rejected (its first line, the rest read again as rows) when it
spans lines and its cells do not match the header, or one of its later lines holds a whole record
by itself (a quote opened in the first line closed in another row's cell); a cell that opens a
quote and closes it before the cell ends (`"Widget 5" screen`), or a quote that never closes before
the end of the file, rejects its first line too. A single-line record with fewer cells than the
header is not rejected (its missing cells are empty, as exports that drop trailing empty cells mean).
A quote left open past `max_record_bytes` is still skipped to where its quotes balance (above).
"""

import csv
from collections.abc import Iterator
from dataclasses import dataclass

MAX_RECORD_BYTES = 1 << 20
FALLBACK_ENCODINGS = ("cp1252", "latin-1")

# csv's default field limit (128 KiB) is below our record limit; raise it once for the process.
if csv.field_size_limit() < MAX_RECORD_BYTES:
    csv.field_size_limit(MAX_RECORD_BYTES)


@dataclass(slots=True)
class Record:
    cells: list[str]
    end_offset: int  # byte offset just after the record
    error: str | None = (
        None  # set for a record that could not be parsed; `cells` holds its first line
    )
    sku: str | None = None  # of a rejected record whose SKU is known (a row a transform refused)


class _TooLarge(Exception):
    pass


@dataclass(slots=True)
class _Skip:
    first_line: str
    inside: bool = False  # inside quotes after the lines counted so far
    lines: int = 0


def _inside_quotes_after(raw: bytes, inside: bool, quote: bytes, escape: bytes | None) -> bool:
    """Whether a record is still inside a quoted cell after `raw` (doubled quotes cancel out)."""
    if escape is not None:
        raw = raw.replace(escape + escape, b"").replace(escape + quote, b"")
    return inside ^ bool(raw.count(quote) % 2)


class _NeedMore(Exception):
    pass


@dataclass(slots=True)
class Dialect:
    delimiter: str = ","
    quotechar: str | None = '"'
    escapechar: str | None = None

    @classmethod
    def of_job(cls, delimiter: str | None, quotechar: str | None, parse_options: dict) -> "Dialect":
        """A job's stored dialect (its columns and parse options): a workbook has no delimiter,
        its rows are no CSV."""
        return cls(
            delimiter=delimiter or ",",
            quotechar=quotechar,
            escapechar=parse_options.get("escapechar"),
        )

    def reader_args(self, *, strict: bool = False) -> dict:
        args: dict = {"delimiter": self.delimiter, "strict": strict, "skipinitialspace": False}
        if self.quotechar:
            args.update(quotechar=self.quotechar, doublequote=True, quoting=csv.QUOTE_MINIMAL)
        else:
            args.update(quoting=csv.QUOTE_NONE)
        if self.escapechar:
            args["escapechar"] = self.escapechar
        return args


def _quote_problem(exc: csv.Error) -> str:
    """csv's strict-mode message, said for a person."""
    text = str(exc)
    if "unexpected end of data" in text:
        return "a quote opens a cell that never closes before the end of the file (a stray quote?)"
    if "expected after" in text:
        return (
            "a cell starts with a quote that closes before the cell ends (quote the whole cell "
            'and double its quotes: "Widget 5"" screen")'
        )
    return text


def decode_line(raw: bytes, encoding: str) -> str:
    """Decode one physical line; feeds mixing encodings fall back to cp1252, then latin-1."""
    try:
        text = raw.decode(encoding)
        # Postgres text and jsonb cannot hold NUL characters
        return text.replace("\x00", "") if "\x00" in text else text
    except UnicodeDecodeError:
        for fallback in FALLBACK_ENCODINGS:
            try:
                return raw.decode(fallback).replace("\x00", "")
            except UnicodeDecodeError:
                continue
        return raw.decode("latin-1", "replace").replace("\x00", "")


def _cut(line: bytes, limit: int) -> list[bytes]:
    return [line[i : i + limit] for i in range(0, len(line), limit)]


class RecordStream:
    """Feed bytes with `feed()`, call `finish()` at the end; iterate `records()` in between."""

    def __init__(
        self,
        *,
        encoding: str,
        dialect: Dialect,
        start_offset: int = 0,
        max_record_bytes: int = MAX_RECORD_BYTES,
        width: int | None = None,
    ) -> None:
        """`width`: the header's cells, for an import's reading (strict quotes, records checked
        against the header); None for the suggestion's lenient reading of a sample."""
        self.encoding = (
            "utf-8" if encoding in ("utf-8-sig", "utf-16") else encoding
        )  # stored bytes are UTF-8 then
        self.dialect = dialect
        self.width = width
        self._reader_args = dialect.reader_args(strict=width is not None)
        self._line_args = dialect.reader_args()
        self.max_record_bytes = max_record_bytes
        self.offset = start_offset  # offset after the last line handed to csv
        self.eof = False
        self._lines: list[bytes] = []
        self._pos = 0
        self._end = start_offset  # offset after the last complete buffered line
        self._tail = b""
        self._record_start = start_offset
        self._skip: _Skip | None = None  # an over-long quoted record being skipped to its real end

    # --- input ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if not data:
            return
        data = self._tail + data if self._tail else data
        lines = data.splitlines(keepends=True)
        last = lines[-1]
        # an unterminated last line, or a "\r" that may be the first half of "\r\n", waits for more
        self._tail = b"" if last.endswith(b"\n") else lines.pop()
        limit = self.max_record_bytes
        if lines and max(map(len, lines)) > limit:
            # over-long lines are cut every `limit` bytes from their start: the same cuts however
            # the input was split, and memory stays bounded
            lines = [
                piece
                for line in lines
                for piece in ([line] if len(line) <= limit else _cut(line, limit))
            ]
        self._append(lines)
        if len(self._tail) > limit:
            cut = (len(self._tail) - 1) // limit * limit
            self._append(_cut(self._tail[:cut], limit))
            self._tail = self._tail[cut:]

    def finish(self, *, drop_partial: bool = False) -> None:
        """No more input. With `drop_partial` (a sample cut from a larger file) the unterminated last line is dropped."""
        if self._tail and not drop_partial:
            self._append([self._tail])
        self._tail = b""
        self.eof = True

    def _append(self, lines: list[bytes]) -> None:
        if self._pos and self._pos >= len(self._lines) // 2:  # drop consumed lines now and then
            del self._lines[: self._pos]
            self._pos = 0
        self._lines.extend(lines)
        self._end += sum(map(len, lines))

    @property
    def buffered(self) -> int:
        return self._end - self.offset

    # --- lines for csv.reader --------------------------------------------------------------

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.offset - self._record_start >= self.max_record_bytes:
            raise _TooLarge
        if self._pos >= len(self._lines):
            if self.eof:
                raise StopIteration
            raise _NeedMore
        raw = self._lines[self._pos]
        self._pos += 1
        self.offset += len(raw)
        return decode_line(raw, self.encoding)

    # --- output ----------------------------------------------------------------------------

    def _skip_lines(self) -> bool:
        """Consume the lines of the over-long record being skipped; True once its end is reached
        (a line that leaves its quotes closed, or the end of the file)."""
        skip = self._skip
        assert skip is not None and self.dialect.quotechar is not None
        quote = self.dialect.quotechar.encode()
        escape = self.dialect.escapechar.encode() if self.dialect.escapechar else None
        while self._pos < len(self._lines):
            raw = self._lines[self._pos]
            self._pos += 1
            self.offset += len(raw)
            skip.lines += 1
            skip.inside = _inside_quotes_after(raw, skip.inside, quote, escape)
            if not skip.inside:
                return True
        return self.eof

    def records(self) -> Iterator[Record]:
        """Yield every record that can be parsed with the input so far."""
        reader = csv.reader(self, **self._reader_args)
        lookahead = 2 * self.max_record_bytes
        while True:
            if self._skip is not None:
                if not self._skip_lines():
                    return  # the record goes on in input not fed yet
                skip, self._skip = self._skip, None
                yield Record(
                    [skip.first_line],
                    self.offset,
                    f"a quoted cell makes the record longer than {self.max_record_bytes} bytes: its {skip.lines:,} "
                    "lines were skipped (an unbalanced quote, or a cell too large)",
                )
                reader = csv.reader(self, **self._reader_args)
            if not (self.eof or self.buffered >= lookahead):
                return
            if self.eof and self._pos >= len(self._lines):
                return
            start_pos, start_offset = self._pos, self.offset
            self._record_start = start_offset
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (_TooLarge, _NeedMore, csv.Error) as exc:
                self._pos, self.offset = start_pos, start_offset
                too_large = not isinstance(exc, csv.Error) or "field larger" in str(exc)
                if too_large and self.dialect.quotechar:
                    # an over-long record is skipped to its real end (quotes closed): resuming after
                    # its first line would read the inside of a quoted cell as rows of their own
                    first = decode_line(self._lines[self._pos], self.encoding).rstrip("\r\n")[
                        :10_000
                    ]
                    self._skip = _Skip(first_line=first)
                    continue
                # give up on the record's first physical line only; parsing resumes after it
                raw = self._lines[self._pos]
                self._pos += 1
                self.offset += len(raw)
                why = (
                    f"the record is longer than {self.max_record_bytes} bytes"
                    if not isinstance(exc, csv.Error)
                    else f"unreadable CSV record: {_quote_problem(exc)}"
                )
                text = decode_line(raw, self.encoding).rstrip("\r\n")
                yield Record([text[:10_000]], self.offset, why)
                reader = csv.reader(self, **self._reader_args)
                continue
            # one line is one row (fewer cells: the missing ones are empty, as exports that drop
            # trailing empty cells mean; more: the row converter rejects those with values)
            mismatch = None if self._pos - start_pos == 1 else self._mismatch(cells, start_pos)
            if mismatch is None:
                yield Record(cells, self.offset)
                continue
            # lines merged by a stray quote: reject the first, read the others as rows again
            self._pos, self.offset = start_pos + 1, start_offset + len(self._lines[start_pos])
            first = decode_line(self._lines[start_pos], self.encoding).rstrip("\r\n")
            yield Record([first[:10_000]], self.offset, mismatch)
            reader = csv.reader(self, **self._reader_args)

    def _mismatch(self, cells: list[str], start_pos: int) -> str | None:
        """Why a record parsed from several lines, `start_pos` to `_pos`, is no row of the file
        (lines a stray quote merged), or None."""
        width = self.width
        if width is None:
            return None
        lines = self._pos - start_pos
        if len(cells) != width:
            return (
                f"a quote opens a cell that runs over {lines} lines, and the record has {len(cells)} "
                f"cells, the header {width}: a stray quote? The row is rejected and the lines after "
                "its first are read as rows"
            )
        quote = self.dialect.quotechar or ""
        for raw in self._lines[start_pos + 1 : self._pos]:
            line = decode_line(raw, self.encoding)
            if width <= 2 or (quote and quote in line):
                continue  # the line that closes the quote is no row by itself
            alone = next(csv.reader([line], **self._line_args), [])
            # a row of an export, not a line of prose: its cells do not start with a space
            if len(alone) == width and not any(c[:1].isspace() for c in alone[1:]):
                return (
                    f"a quote opens a cell that runs over {lines} lines, one of which is a whole "
                    "row by itself: a stray quote? The row is rejected and the lines after its "
                    "first are read as rows"
                )
        return None


def iter_records(
    data: bytes,
    *,
    encoding: str,
    dialect: Dialect,
    start_offset: int = 0,
    complete: bool = True,
    width: int | None = None,
) -> Iterator[Record]:
    """All records of an in-memory buffer (a sample, or a small file in tests); `width` as for
    `RecordStream`."""
    stream = RecordStream(
        encoding=encoding, dialect=dialect, start_offset=start_offset, width=width
    )
    stream.feed(data)
    stream.finish(drop_partial=not complete)
    yield from stream.records()
