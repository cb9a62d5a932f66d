"""Pure: reading an uploaded CSV's bytes: encoding, dialect, header and data rows.

`analyse_sample` reads the first `SAMPLE_BYTES` of the file; `rows_in_window` reads
the whole records inside a window of bytes taken anywhere in the stored file (the middle
and the end of a large upload), so the suggestion sees the whole file at a bounded cost.
"""

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

import clevercsv

from app.imports.records import Dialect, decode_line, iter_records

SAMPLE_BYTES = 1 << 20  # what the suggestion looks at
DIALECT_SAMPLE_CHARS = 64 * 1024  # clevercsv's cost grows with its input: measured ~0.1 s here
MAX_SAMPLE_ROWS = 5000
MAX_COLUMNS = 1000
DELIMITERS = (",", ";", "\t", "|")


class NotCsv(ValueError):
    """The upload is not a text CSV file (binary, empty, no header)."""


# --- encoding --------------------------------------------------------------------------------

_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook?); export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office document; export the sheet as CSV"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BZh", "a bzip2 archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\x00\x00\xfe\xff", "UTF-32 text, which is not supported; save as UTF-8"),
    (b"\xff\xfe\x00\x00", "UTF-32 text, which is not supported; save as UTF-8"),
)
UTF8_BOM = b"\xef\xbb\xbf"


def utf16_variant(head: bytes) -> str | None:
    """'utf-16' for a UTF-16 file (with BOM, or plain text where every other byte is NUL)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and not head.startswith(b"\xff\xfe\x00\x00"):
        return "utf-16"
    probe = head[:4096]
    if len(probe) >= 8:
        even, odd = probe[0::2], probe[1::2]
        if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
            return "utf-16-be"
    return None


def binary_reason(head: bytes) -> str | None:
    """Why `head` (the first bytes, after any UTF-16 transcoding) is not CSV text, or None."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"The file is {what}, not CSV text"
    probe = head[:65536]
    if b"\x00" in probe:
        return "The file is binary (it contains NUL bytes), not CSV text"
    controls = sum(probe.count(bytes([c])) for c in range(32) if c not in (9, 10, 12, 13, 27))
    if probe and controls > 0.01 * len(probe):
        return "The file is binary (control characters), not CSV text"
    return None


_ENCODING_CANDIDATES = ("cp1252", "cp1250", "cp1251")

# the accented letters of the languages each single-byte code page is written in: a word whose
# accented letters no one of these languages has together ("Žehlièka", Czech "Žehlička" read as
# cp1252: ž is Finnish, è French) is a sign of the wrong code page
_LANGUAGE_LETTERS: dict[str, tuple[frozenset[str], ...]] = {
    "cp1252": tuple(
        frozenset(letters)
        for letters in (
            "àâäçéèêëîïôœùûüÿæ",  # French
            "äöüß",  # German
            "áéíóúñü",  # Spanish
            "àèéìíîòóùú",  # Italian
            "áâãàçéêíóôõúü",  # Portuguese
            "áéèëïóöüú",  # Dutch
            "àçéèíïòóúü",  # Catalan
            "æøåé",  # Danish, Norwegian
            "åäöé",  # Swedish
            "åäöšž",  # Finnish
            "áéíóúýþðæö",  # Icelandic
            "õäöüšž",  # Estonian
        )
    ),
    "cp1250": tuple(
        frozenset(letters)
        for letters in (
            "áčďéěíňóřšťúůýž",  # Czech
            "áäčďéíĺľňóôŕšťúýž",  # Slovak
            "ąćęłńóśźż",  # Polish
            "áéíóöőúüű",  # Hungarian
            "čćđšž",  # Slovene, Croatian, Bosnian
            "ăâîșțşţ",  # Romanian
            "äöüß",  # German
            "çë",  # Albanian
        )
    ),
}


def _foreign_letters(word: str, encoding: str) -> bool:
    """Whether no language of `encoding` writes the accented letters of `word` together."""
    languages = _LANGUAGE_LETTERS.get(encoding)
    if languages is None:
        return False
    accented = {c for c in word.lower() if ord(c) > 127 and c.isalpha()}
    return bool(accented) and not any(accented <= letters for letters in languages)


def _implausibility(text: str, encoding: str = "") -> int:
    """Signs of a wrong single-byte decoding: junk inside words, mixed scripts, all-accented words."""
    penalty = 0
    for word in re.findall(r"[^\W\d_][^\s\d,;|\t\"'()/.:-]*", text):
        non_ascii = [c for c in word if ord(c) > 127]
        if not non_ascii:
            continue
        if any(
            not c.isalpha() and ord(c) > 127 and a.isalpha() and b.isalpha()
            for a, c, b in zip(word, word[1:], word[2:])
        ):
            penalty += 2  # "Krzes³o": a symbol between letters, where a letter belongs (not "3½", "½ Zoll")
        scripts = {unicodedata.name(c, "X").split(" ")[0] for c in word if c.isalpha()}
        if len(scripts) > 1:
            penalty += 2  # "Dйsignation": Latin and Cyrillic in one word
        if len(word) >= 3 and len(non_ascii) == len(word) and "LATIN" in scripts:
            penalty += 1  # "Àðòèêóë": Cyrillic read as Latin-1
        elif _foreign_letters(word, encoding):
            penalty += 1  # "Kuchyòská": Czech "Kuchyňská" read as cp1252
    return penalty


def detect_encoding(sample: bytes, *, complete: bool) -> str:
    """'utf-8-sig', 'utf-8', or a single-byte Windows code page (cp1252 first), else 'latin-1'."""
    if sample.startswith(UTF8_BOM):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if not complete and exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"  # the sample cut a character in two
    text = sample.decode("utf-8", "replace")
    invalid = text.count("\ufffd")
    valid_non_ascii = sum(1 for c in text if ord(c) > 127) - invalid
    if valid_non_ascii >= 3 * invalid:
        return "utf-8"  # mostly UTF-8 with a few stray bytes: the reader falls back per line
    probe = sample[:262144]
    best, best_penalty = None, None
    for encoding in _ENCODING_CANDIDATES:
        try:
            decoded = probe.decode(encoding)
        except UnicodeDecodeError:
            continue
        penalty = _implausibility(decoded, encoding)
        if best_penalty is None or penalty < best_penalty:
            best, best_penalty = encoding, penalty
    return best or "latin-1"


# --- dialect ---------------------------------------------------------------------------------

_SEP_LINE = re.compile(r'^"?sep=(.)"?\s*$', re.IGNORECASE)
# Amazon's inventory file templates (flat files) start with a row "TemplateType=fptcustom",
# "Version=…", then a row of labels for people ("Seller SKU"), then the attribute names
# ("item_sku"): the third row is the header
_AMAZON_TEMPLATE_ROW = re.compile(r"^\s*templatetype\s*=", re.IGNORECASE)


def _fallback_dialect(text: str) -> Dialect:
    """The delimiter whose count per line is the most consistent (clevercsv found nothing)."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    best, best_score = ",", 0.0
    for delim in DELIMITERS:
        counts = [line.count(delim) for line in lines]
        if not counts or not counts[0]:
            continue
        common, freq = Counter(counts).most_common(1)[0]
        score = freq / len(counts) * (1 + min(common, 20) / 20)
        if common and score > best_score:
            best, best_score = delim, score
    return Dialect(delimiter=best, quotechar='"')


def detect_dialect(text: str) -> Dialect:
    """Delimiter, quote and escape character of a sample (clevercsv on a bounded prefix)."""
    cut = text[:DIALECT_SAMPLE_CHARS]
    if len(text) > DIALECT_SAMPLE_CHARS and "\n" in cut:
        cut = cut[: cut.rindex("\n") + 1]
    try:
        found = clevercsv.Detector().detect(cut, delimiters=list(DELIMITERS))
    except Exception:  # the detector is a heuristic; a crash in it must not fail the upload
        found = None
    if found is None or found.delimiter not in DELIMITERS:
        return _fallback_dialect(cut)
    dialect = Dialect(
        delimiter=found.delimiter,
        quotechar=found.quotechar or None,
        escapechar=found.escapechar or None,
    )
    if dialect.quotechar is None:
        # Standard CSV quotes with '"'; clevercsv says "no quotes" when a sample has few quoted fields
        # (or a quote inside an unquoted field). Keep '"' unless it makes the rows' widths less regular.
        quoted = Dialect(delimiter=dialect.delimiter, quotechar='"', escapechar=dialect.escapechar)
        if _regularity(cut, quoted) >= _regularity(cut, dialect):
            return quoted
    return dialect


def _regularity(text: str, dialect: Dialect) -> float:
    """Share of the first rows that have the most common number of cells, read as the import reads
    them: a stray quote costs its own row, not every row it would swallow."""
    head = text[:16384].encode("utf-8")
    first = next(iter_records(head, encoding="utf-8", dialect=dialect, complete=False), None)
    if first is None:
        return 0.0
    widths = []
    for record in iter_records(
        head, encoding="utf-8", dialect=dialect, complete=False, width=len(first.cells)
    ):
        if record.error:
            widths.append(-1)
        elif record.cells:
            widths.append(len(record.cells))
        if len(widths) >= 200:
            break
    if not widths:
        return 0.0
    return Counter(widths).most_common(1)[0][1] / len(widths)


# --- reading the sample ----------------------------------------------------------------------


@dataclass
class SampleAnalysis:
    encoding: str
    dialect: Dialect
    headers: list[str]  # unique, non-empty
    rows: list[list[str]]  # data rows of the sample (blank rows left out)
    complete: bool  # the sample is the whole file
    header_row: int  # the header's record number (1-based)
    data_offset: int  # byte offset where the data rows start
    sample_end_offset: int  # byte offset after the last sampled row
    sample_rows: int  # non-blank data rows in the sample

    @classmethod
    def of_sheet(
        cls, headers: list[str], rows: list[list[str]], *, complete: bool, header_row: int
    ) -> "SampleAnalysis":
        """A workbook sheet's first rows (see `sources.analyse_xlsx`): its cells need no decoding
        and no splitting, and its offsets are sheet rows, all the header's (a workbook is read
        again from its start, never from a byte)."""
        return cls(
            encoding="utf-8",
            dialect=Dialect(delimiter=","),
            header_row=header_row,
            headers=headers,
            data_offset=header_row,
            sample_end_offset=header_row,
            rows=rows,
            sample_rows=len(rows),
            complete=complete,
        )


def unique_headers(raw: list[str]) -> list[str]:
    """Trimmed headers; empty ones become "Column N", repeated ones get " (2)", " (3)"."""
    seen: Counter[str] = Counter()
    taken = set()
    out = []
    for index, header in enumerate(raw):
        name = " ".join(header.replace("\ufeff", "").split())[:200] or f"Column {index + 1}"
        base, n = name, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base} ({n})"
        seen[base] += 1
        taken.add(name.casefold())
        out.append(name)
    return out


def analyse_sample(
    sample: bytes, *, complete: bool, encoding: str | None = None, delimiter: str | None = None
) -> SampleAnalysis:
    """Read the sample: encoding, dialect, header and up to `MAX_SAMPLE_ROWS` data rows.

    `encoding` and `delimiter` are the client's, when it overrides the detected ones."""
    if not sample.strip():
        raise NotCsv("The file is empty")
    reason = binary_reason(sample)
    if reason:
        raise NotCsv(reason)
    encoding = encoding or detect_encoding(sample, complete=complete)
    start = len(UTF8_BOM) if sample.startswith(UTF8_BOM) else 0
    probe = sample[start : start + 4 * DIALECT_SAMPLE_CHARS]
    text = decode_line(probe, "utf-8" if encoding == "utf-8-sig" else encoding)
    first_line_end = sample.find(b"\n", start)
    first_line = text.split("\n", 1)[0]
    sep = _SEP_LINE.match(first_line.strip())
    if sep and first_line_end != -1:  # Excel's "sep=;" line names the delimiter
        dialect = Dialect(delimiter=sep.group(1), quotechar='"')
        start = first_line_end + 1
        record_number = 1
    else:
        dialect = detect_dialect(text)
        record_number = 0
    if delimiter is not None and delimiter != dialect.delimiter:
        dialect = Dialect(delimiter=delimiter, quotechar='"')
    headers: list[str] | None = None
    rows: list[list[str]] = []
    header_row, data_offset, end_offset, sample_rows = 0, start, start, 0
    skip = 0  # preamble rows still to pass over
    for record in iter_records(
        sample[start:], encoding=encoding, dialect=dialect, start_offset=start, complete=complete
    ):
        record_number += 1
        if record.error or not any(c.strip() for c in record.cells):
            continue
        if skip:
            skip -= 1
            continue
        if _AMAZON_TEMPLATE_ROW.match(record.cells[0]):
            skip = 1  # then the row of labels; the attribute names follow
            continue
        if len(record.cells) > MAX_COLUMNS:
            raise NotCsv(
                f"The header has {len(record.cells)} columns; at most {MAX_COLUMNS} are supported"
            )
        headers = unique_headers(record.cells)
        header_row, data_offset = record_number, record.end_offset
        break
    if headers is None:
        raise NotCsv("The file has no header row")
    # the data rows as the import reads them (a stray quote costs its own row only)
    for record in iter_records(
        sample[data_offset:],
        encoding=encoding,
        dialect=dialect,
        start_offset=data_offset,
        complete=complete,
        width=len(headers),
    ):
        if record.error or not any(c.strip() for c in record.cells):
            continue
        sample_rows += 1
        end_offset = record.end_offset
        if len(rows) < MAX_SAMPLE_ROWS:
            rows.append(record.cells)
    if not complete and rows:  # the last sampled row may have been cut by the sample's end
        rows.pop()
        sample_rows -= 1
    return SampleAnalysis(
        encoding=encoding,
        dialect=dialect,
        header_row=header_row,
        headers=headers,
        data_offset=data_offset,
        sample_end_offset=max(end_offset, data_offset),
        rows=rows,
        sample_rows=sample_rows,
        complete=complete,
    )


def estimate_rows(analysis: SampleAnalysis, stored_size: int) -> int:
    """Data rows in the whole file: exact for a complete sample, else scaled by bytes."""
    if analysis.complete or analysis.sample_rows <= 0:
        return analysis.sample_rows
    covered = analysis.sample_end_offset - analysis.data_offset
    if covered <= 0:
        return analysis.sample_rows
    return max(
        analysis.sample_rows,
        round(analysis.sample_rows * (stored_size - analysis.data_offset) / covered),
    )


def rows_in_window(
    window: bytes, *, encoding: str, dialect: Dialect, width: int, at_end: bool
) -> list[list[str]]:
    """The whole data rows of a window cut anywhere from a file (bytes at an arbitrary offset).

    The window may start inside a record, even inside a quoted cell that spans lines: the rows
    are read from each of the first few line starts, and the start whose records most often
    have the header's width wins. The first and (unless `at_end`) the last partial records
    are dropped; rows of another width are left out.
    """
    best: list[list[str]] = []
    start = 0
    for _ in range(3):
        newline = window.find(b"\n", start)
        if newline == -1:
            break
        start = newline + 1
        records = list(
            iter_records(
                window[start:], encoding=encoding, dialect=dialect, complete=at_end, width=width
            )
        )
        if records and not at_end:
            records.pop()
        rows = [
            r.cells
            for r in records
            if not r.error and len(r.cells) == width and any(c.strip() for c in r.cells)
        ]
        if len(rows) > len(best):
            best = rows
        if records and len(rows) >= 0.9 * len(records):
            break
    return best
