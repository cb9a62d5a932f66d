"""Pure: a bounded sample of an uploaded CSV → encoding, dialect, column types and a mapping.

Everything here works on the first `SAMPLE_BYTES` of the file, so the suggestion
costs the same for a 1 KB and a 1 GB upload. `analyse_sample` reads the sample;
`suggest` proposes a field for every column (remembered choices first, then
built-ins and schema fields by name, label, multilingual synonyms and fuzzy
matching, then new snake_case fields); `merge_llm_answer` folds in an optional
LLM opinion.
"""

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import clevercsv
from rapidfuzz import fuzz, process

from app.catalog.fields import RESERVED_NAMES, FieldDef, FieldType, name_problem
from app.catalog.values import (
    read_date,
    read_datetime,
    read_integer,
    read_number,
    read_text,
)
from app.imports.conventions import Conventions, detect_conventions
from app.imports.records import Dialect, decode_line, iter_records
from app.imports.rows import BUILTIN_TARGETS, is_null_token, read_status

SAMPLE_BYTES = 1 << 20  # what the suggestion looks at
DIALECT_SAMPLE_CHARS = 64 * 1024  # clevercsv's cost grows with its input: measured ~0.1 s here
MAX_SAMPLE_ROWS = 5000
TYPE_SAMPLE_VALUES = 2000
MAX_COLUMNS = 1000
DELIMITERS = (",", ";", "\t", "|")
MAX_ENUM_OPTIONS = 20
SAMPLES_PER_COLUMN = 5


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


def _implausibility(text: str) -> int:
    """Signs of a wrong single-byte decoding: junk inside words, mixed scripts, all-accented words."""
    penalty = 0
    for word in re.findall(r"[^\W\d_][^\s\d,;|\t\"'()/.:-]*", text):
        non_ascii = [c for c in word if ord(c) > 127]
        if not non_ascii:
            continue
        if any(not c.isalpha() and ord(c) > 127 and a.isalpha() and b.isalpha() for a, c, b in zip(word, word[1:], word[2:])):
            penalty += 2  # "Krzes³o": a symbol between letters, where a letter belongs (not "3½", "½ Zoll")
        scripts = {unicodedata.name(c, "X").split(" ")[0] for c in word if c.isalpha()}
        if len(scripts) > 1:
            penalty += 2  # "Dйsignation": Latin and Cyrillic in one word
        if len(word) >= 3 and len(non_ascii) == len(word) and "LATIN" in scripts:
            penalty += 1  # "Àðòèêóë": Cyrillic read as Latin-1
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
        penalty = _implausibility(decoded)
        if best_penalty is None or penalty < best_penalty:
            best, best_penalty = encoding, penalty
    return best or "latin-1"


# --- dialect ---------------------------------------------------------------------------------

_SEP_LINE = re.compile(r'^"?sep=(.)"?\s*$', re.IGNORECASE)


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
    dialect = Dialect(delimiter=found.delimiter, quotechar=found.quotechar or None, escapechar=found.escapechar or None)
    if dialect.quotechar is None:
        # Standard CSV quotes with '"'; clevercsv says "no quotes" when a sample has few quoted fields
        # (or a quote inside an unquoted field). Keep '"' unless it makes the rows' widths less regular.
        quoted = Dialect(delimiter=dialect.delimiter, quotechar='"', escapechar=dialect.escapechar)
        if _regularity(cut, quoted) >= _regularity(cut, dialect):
            return quoted
    return dialect


def _regularity(text: str, dialect: Dialect) -> float:
    """Share of the first rows that have the most common number of cells."""
    widths = []
    for record in iter_records(text[:16384].encode("utf-8"), encoding="utf-8", dialect=dialect, complete=False):
        if record.cells:
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
    for record in iter_records(sample[start:], encoding=encoding, dialect=dialect, start_offset=start, complete=complete):
        record_number += 1
        if headers is None:
            if record.error or not any(c.strip() for c in record.cells):
                continue
            if len(record.cells) > MAX_COLUMNS:
                raise NotCsv(f"The header has {len(record.cells)} columns; at most {MAX_COLUMNS} are supported")
            headers = unique_headers(record.cells)
            header_row, data_offset = record_number, record.end_offset
            continue
        if record.error or not any(c.strip() for c in record.cells):
            continue
        sample_rows += 1
        end_offset = record.end_offset
        if len(rows) < MAX_SAMPLE_ROWS:
            rows.append(record.cells)
    if headers is None:
        raise NotCsv("The file has no header row")
    if not complete and rows:  # the last sampled row may have been cut by the sample's end
        rows.pop()
        sample_rows -= 1
    return SampleAnalysis(
        encoding=encoding,
        dialect=dialect,
        headers=headers,
        rows=rows,
        complete=complete,
        header_row=header_row,
        data_offset=data_offset,
        sample_end_offset=max(end_offset, data_offset),
        sample_rows=sample_rows,
    )


def estimate_rows(analysis: SampleAnalysis, stored_size: int) -> int:
    """Data rows in the whole file: exact for a complete sample, else scaled by bytes."""
    if analysis.complete or analysis.sample_rows <= 0:
        return analysis.sample_rows
    covered = analysis.sample_end_offset - analysis.data_offset
    if covered <= 0:
        return analysis.sample_rows
    return max(analysis.sample_rows, round(analysis.sample_rows * (stored_size - analysis.data_offset) / covered))


# --- column types ----------------------------------------------------------------------------

_CODE_RE = re.compile(r"^[\w\-./#:+]{1,64}$")
_URL_RE = re.compile(r"^(https?|ftp)://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_BOOLEAN_HEADER = re.compile(
    r"(^is |^has |active|enabled|available|in stock|flag|aktiv|verfugbar|lieferbar|disponible|actif|activo|attivo|published)"
)


@dataclass
class ColumnProfile:
    header: str
    values: list[str]  # non-empty stripped cells of the sample
    rows: int  # sampled rows
    type: FieldType = FieldType.string
    confidence: float = 0.5
    conventions: Conventions = field(default_factory=Conventions)
    options: list[str] | None = None
    samples: list[str] = field(default_factory=list)
    fill: float = 0.0  # share of rows with a value
    unique: float = 0.0  # distinct / non-empty
    code_like: float = 0.0
    with_spaces: float = 0.0


def _share(values: list[str], test, *, at_least: float = 0.0) -> float:
    """Share of `values` passing `test`; gives up early (returns 0) once `at_least` is out of reach."""
    if not values:
        return 0.0
    allowed_misses = len(values) - at_least * len(values)
    ok = misses = 0
    for v in values:
        try:
            if test(v) is not False:
                ok += 1
                continue
        except ValueError:
            pass
        misses += 1
        if misses > allowed_misses:
            return 0.0
    return ok / len(values)


_LEADING_ZERO = re.compile(r"^[-+]?0\d")


def _is_integer_cell(v: str, conventions: Conventions) -> bool:
    if _LEADING_ZERO.match(v) or (len(v) > 12 and sum(c.isdigit() for c in v) > 12):
        return False  # "00123", EANs: codes, not quantities
    read_integer(v, conventions)
    return True


def profile_column(
    header: str, cells: list[str], *, conventions: Conventions, complete: bool, header_norm: str = ""
) -> ColumnProfile:
    values = [c.strip() for c in cells if c and c.strip()]
    prof = ColumnProfile(header=header, values=values, rows=len(cells), conventions=conventions)
    distinct = list(dict.fromkeys(values))
    prof.samples = [v[:200] for v in distinct[:SAMPLES_PER_COLUMN]]
    if not values:
        prof.confidence = 0.3
        return prof
    n = len(values)
    prof.fill = n / max(len(cells), 1)
    prof.unique = len(distinct) / n
    prof.code_like = _share(values, lambda v: bool(_CODE_RE.match(v)))
    prof.with_spaces = _share(values, lambda v: " " in v)
    # the type tests look at the first values only: 2,000 decide a type as well as 5,000, in less time
    typed = [v for v in values[:TYPE_SAMPLE_VALUES] if not is_null_token(v)] or values[:TYPE_SAMPLE_VALUES]
    size_factor = min(1.0, 0.6 + len(typed) / 50)

    def decide(ftype: FieldType, share: float) -> ColumnProfile:
        prof.type = ftype
        prof.confidence = round(share * size_factor, 2)
        return prof

    lowered = {v.lower() for v in typed}
    if len(lowered) <= 2 and lowered <= {*conventions.true_words, *conventions.false_words}:
        if not lowered <= {"0", "1"} or _BOOLEAN_HEADER.search(header_norm):
            return decide(FieldType.boolean, 1.0)
    for ftype, test, threshold in (
        # a few bad cells in a number column are rows to reject, not a reason to call it text
        (FieldType.integer, lambda v: _is_integer_cell(v, conventions), 0.8),
        (FieldType.number, lambda v: not _LEADING_ZERO.match(v) and read_number(v, conventions), 0.8),
        (FieldType.date, lambda v: read_date(v, conventions), 0.9),
        (FieldType.datetime, lambda v: ":" in v and read_datetime(v, conventions), 0.9),
        (FieldType.url, lambda v: bool(_URL_RE.match(v)), 0.9),
    ):
        share = _share(typed, test, at_least=threshold)
        if share >= threshold:
            return decide(ftype, share)
    lengths = [len(v) for v in values]
    multiline = any("\n" in v for v in values)
    sep = conventions.list_separator
    if any(sep in v for v in values) and not multiline:
        with_sep = [v for v in values if sep in v]
        items = [p.strip() for v in values for p in v.split(sep) if p.strip()]
        if len(with_sep) >= 0.3 * n and items and sum(map(len, items)) / len(items) <= 40 and max(lengths) <= 500:
            if not any(">" in v for v in with_sep):  # "A > B|C" is a category path list
                return decide(FieldType.array, 0.6 + 0.4 * len(with_sep) / n)
    if multiline or max(lengths) > 255 or sum(lengths) / n > 100:
        return decide(FieldType.text, 0.9)
    if (
        len(distinct) <= MAX_ENUM_OPTIONS
        and n >= 10
        and len(distinct) <= n / 3
        and max(lengths) <= 60
    ):
        prof.options = sorted(distinct)
        return decide(FieldType.enum, 0.9 if complete else 0.7)
    return decide(FieldType.string, 0.8)


# --- names -----------------------------------------------------------------------------------


def normalize_header(header: str) -> str:
    """'Prix TTC (€)' → 'prix ttc'; 'Artikel-Nr.' → 'artikel nr'."""
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", _fold(header))  # units in brackets
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return " ".join(text.split())


def _fold(text: str) -> str:
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.replace("ß", "ss").lower()


def header_key(header: str) -> str:
    """The key under which a tenant's confirmed choice for a header is remembered ('Farbe (2)' → 'farbe 2')."""
    return (" ".join(re.sub(r"[^a-z0-9]+", " ", _fold(header)).split()) or header.strip().lower())[:200]


# Names a new field is not given: the reserved ones, and `category`, a valid name whose exact filter
# (`category=`) is the product list's category-id filter.
_AVOIDED_NAMES = RESERVED_NAMES | {"category"}


def snake_name(header: str, *, taken: set[str]) -> str:
    """A valid, unused field name for a CSV header: 'Date de sortie' → 'date_de_sortie'."""
    base = re.sub(r"[^a-z0-9]+", "_", _fold(header))[:60].strip("_") or "field"
    if base[0].isdigit():
        base = f"f_{base}"[:60]
    if base in _AVOIDED_NAMES:
        base = f"{base}_value"
    name, n = base, 1
    while name in taken or name_problem(name):
        n += 1
        name = f"{base[:58].rstrip('_')}_{n}"
    return name


# canonical name → phrases (already normalised) in English, German, French, Spanish, Italian, Dutch, Polish
BUILTIN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "sku": (
        "sku", "sku code", "item code", "item no", "item number", "item id", "article number", "article no", "art no",
        "artikelnummer", "artikel nr", "artikelnr", "art nr", "artnr", "reference", "ref", "reference produit",
        "code article", "code produit", "product code", "product number", "product id", "product sku", "part number",
        "part no", "model number", "codigo", "codigo articulo", "referencia", "codice", "codice articolo",
        "artikelcode", "artikel code", "numer katalogowy", "indeks", "variant sku", "style number", "id",
    ),
    "name": (
        "name", "product name", "item name", "title", "product title", "article name", "designation", "libelle",
        "nom", "nom du produit", "nom produit", "bezeichnung", "artikelbezeichnung", "produktname", "artikelname",
        "produktbezeichnung", "nombre", "nombre del producto", "nome", "nome prodotto", "denominazione", "titel",
        "naam", "productnaam", "nazwa", "nazwa produktu", "titulo", "titolo",
    ),
    "status": (
        "status", "state", "product status", "statut", "estado", "stato", "active", "enabled", "aktiv", "actif",
        "activo", "attivo", "published", "online", "is active",
    ),
    "categories": (
        "categories", "category", "category path", "categories path", "kategorie", "kategorien", "warengruppe",
        "categorie", "categoria", "categorias", "categorie prodotto", "kategoria", "product category",
        "product categories", "breadcrumb", "taxonomy", "department", "rubrique",
    ),
    "variation_of": (
        "parent sku", "parent", "parent code", "parent id", "master sku", "variation of", "variant of", "parent item",
        "hauptartikel", "vaterartikel", "elternartikel", "article parent", "produit parent", "sku padre",
        "articulo padre", "model sku", "group sku",
    ),
}

FIELD_CONCEPTS: dict[str, tuple[str, ...]] = {
    "price": (
        "price", "unit price", "retail price", "sales price", "sale price", "selling price", "list price", "msrp",
        "rrp", "uvp", "gross price", "price incl vat", "price gross", "preis", "verkaufspreis", "vk", "vk preis",
        "listenpreis", "bruttopreis", "prix", "prix ttc", "prix de vente", "prix public", "precio", "precio venta",
        "pvp", "prezzo", "prezzo vendita", "prijs", "verkoopprijs", "cena", "cena brutto",
    ),
    "net_price": ("net price", "price net", "price excl vat", "nettopreis", "prix ht", "precio neto", "prezzo netto"),
    "cost": (
        "cost", "purchase price", "cost price", "buying price", "einkaufspreis", "ek", "ek preis",
        "prix d achat", "prix achat", "precio de compra", "prezzo acquisto", "inkoopprijs",
    ),
    "currency": ("currency", "wahrung", "devise", "monnaie", "moneda", "valuta", "waluta"),
    "stock": (
        "stock", "stock level", "stock qty", "qty", "quantity", "inventory", "on hand", "qty on hand",
        "available quantity", "bestand", "lager", "lagerbestand", "menge", "stuckzahl", "quantite", "stock disponible",
        "existencias", "cantidad", "giacenza", "quantita", "voorraad", "aantal", "stan", "ilosc",
    ),
    "brand": (
        "brand", "manufacturer", "make", "brand name", "marke", "hersteller", "marque", "fabricant", "marca",
        "fabricante", "produttore", "merk", "fabrikant", "producent",
    ),
    "color": ("color", "colour", "farbe", "couleur", "colore", "kleur", "kolor", "colors", "colours"),
    "size": ("size", "grosse", "taille", "talla", "taglia", "maat", "rozmiar"),
    "material": (
        "material", "materials", "materialien", "werkstoff", "matiere", "materiau", "materiaux", "materiales",
        "materiale", "materiali", "materiaal", "composition",
    ),
    "weight": ("weight", "gewicht", "poids", "peso", "waga", "net weight", "gross weight"),
    "width": ("width", "breite", "largeur", "ancho", "larghezza", "breedte", "szerokosc"),
    "height": ("height", "hohe", "hauteur", "alto", "altura", "altezza", "hoogte", "wysokosc"),
    "length": ("length", "lange", "longueur", "largo", "longitud", "lunghezza", "lengte", "dlugosc"),
    "depth": ("depth", "tiefe", "profondeur", "profundidad", "profondita", "diepte", "glebokosc"),
    "description": (
        "description", "long description", "product description", "beschreibung", "produktbeschreibung",
        "langtext", "descriptif", "descriptif produit", "descripcion", "descrizione", "omschrijving",
        "beschrijving", "opis",
    ),
    "short_description": ("short description", "kurzbeschreibung", "kurztext", "description courte", "resumen"),
    "ean": ("ean", "ean13", "ean code", "gtin", "gtin13", "barcode", "upc", "strichcode", "code barre", "codigo de barras", "codice a barre"),
    "mpn": ("mpn", "manufacturer part number", "herstellernummer", "hersteller artikelnummer", "reference fabricant"),
    "image_url": (
        "image", "image url", "image link", "main image", "picture", "photo", "photo url", "bild", "bild url",
        "bildurl", "produktbild", "imagen", "immagine", "afbeelding", "zdjecie", "img",
    ),
    "url": ("url", "link", "product url", "product link", "deeplink", "produkt url", "lien", "enlace"),
    "available": (
        "available", "availability", "in stock", "verfugbar", "verfugbarkeit", "lieferbar", "disponible",
        "disponibilite", "disponibilidad", "disponibile", "disponibilita", "beschikbaar", "dostepny", "dostepnosc",
    ),
    "release_date": (
        "release date", "launch date", "date de sortie", "date de lancement", "erscheinungsdatum",
        "markteinfuhrung", "fecha de lanzamiento", "data di uscita", "data di lancio", "releasedatum",
    ),
    "tags": ("tags", "keywords", "schlagworter", "stichworter", "mots cles", "etiquetas", "parole chiave", "trefwoorden"),
    "tax_rate": ("vat", "vat rate", "tax", "tax rate", "mwst", "ust", "steuersatz", "tva", "taux tva", "iva", "btw"),
    "country_of_origin": ("origin", "country of origin", "herkunftsland", "ursprungsland", "pays d origine", "pais de origen", "paese di origine"),
    "model": ("model", "modell", "modele", "modelo", "modello"),
    "gender": ("gender", "geschlecht", "genre", "sexe", "genero", "genere"),
    "season": ("season", "saison", "temporada", "stagione"),
    "supplier": ("supplier", "vendor", "lieferant", "fournisseur", "proveedor", "fornitore", "leverancier", "dostawca"),
}

_CONCEPT_OF: dict[str, str] = {phrase: concept for concept, phrases in FIELD_CONCEPTS.items() for phrase in phrases}


def _phrases_of_field(f: FieldDef) -> set[str]:
    phrases = {normalize_header(f.name), normalize_header(f.label)} | {normalize_header(v) for v in f.labels.values()}
    phrases.discard("")
    for phrase in list(phrases):
        concept = _CONCEPT_OF.get(phrase)
        if concept:
            phrases.update(FIELD_CONCEPTS[concept])
    return phrases


class _Matcher:
    """Scores a normalised header against targets' phrases: exact, fuzzy (typos), contained phrase."""

    def __init__(self, targets: dict[str, set[str]]) -> None:
        self.by_phrase: dict[str, set[str]] = {}
        for target, phrases in targets.items():
            for phrase in phrases:
                self.by_phrase.setdefault(phrase, set()).add(target)
        self.phrases = list(self.by_phrase)

    def scores(self, header_norm: str) -> dict[str, float]:
        out: dict[str, float] = {}
        if not header_norm:
            return out

        def offer(target: str, score: float) -> None:
            if score > out.get(target, 0.0):
                out[target] = score

        for target in self.by_phrase.get(header_norm, ()):
            offer(target, 1.0)
        for phrase, score, _ in process.extract(header_norm, self.phrases, scorer=fuzz.ratio, score_cutoff=86, limit=20):
            if len(phrase) >= 4 and len(header_norm) >= 4:
                for target in self.by_phrase[phrase]:
                    offer(target, round(0.92 * score / 100, 3))
        words = header_norm.split()
        if len(words) > 1:  # "unit price eur" contains "unit price"
            for size in range(min(3, len(words) - 1), 0, -1):
                for i in range(len(words) - size + 1):
                    phrase = " ".join(words[i : i + size])
                    if len(phrase) >= 3:
                        for target in self.by_phrase.get(phrase, ()):
                            offer(target, 0.7 + 0.05 * size)
        return out


# --- the suggestion --------------------------------------------------------------------------


@dataclass
class ColumnSuggestion:
    header: str
    samples: list[str]
    inferred_type: str
    suggested_field: str | None
    confidence: float
    source: str = "new"  # remembered | matched (by name) | profile (by the values) | new (header as name) | llm


@dataclass
class Suggestion:
    columns: list[ColumnSuggestion]
    new_fields: list[FieldDef]
    conventions: Conventions
    profiles: list[ColumnProfile]

    def mapping(self) -> dict[str, str | None]:
        return {c.header: c.suggested_field for c in self.columns}

    def schema(self, fields: list[FieldDef]) -> list[dict[str, Any]]:
        used = {c.suggested_field for c in self.columns}
        return [f.model_dump() for f in fields] + [f.model_dump() for f in self.new_fields if f.name in used]


def _fits(profile: ColumnProfile, ftype: FieldType) -> float:
    """Share of the sampled values that a field of `ftype` accepts."""
    if ftype in (FieldType.string, FieldType.text, FieldType.enum, FieldType.array) or not profile.values:
        return 1.0
    if ftype == FieldType.url:
        return _share(profile.values, lambda v: bool(_URL_RE.match(v)))
    typed = [v for v in profile.values if not is_null_token(v)]
    return _share(typed, lambda v: read_text(ftype, v, profile.conventions)) if typed else 1.0


def _builtin_score(target: str, name_score: float, p: ColumnProfile) -> float:
    if target == "sku":
        profile_ok = p.fill >= 0.95 and p.unique >= 0.95 and p.code_like >= 0.9
        if name_score:
            return name_score if p.unique >= 0.5 and p.code_like >= 0.5 else name_score * 0.6
        return 0.6 if profile_ok and p.values else 0.0
    if target == "name":
        if name_score:
            return name_score
        textual = p.type in (FieldType.string, FieldType.text) and p.with_spaces >= 0.5 and p.unique >= 0.8
        return 0.55 if textual and p.values else 0.0
    if target == "status":
        return name_score if name_score >= 0.85 and p.values and _share(p.values, lambda v: read_status(v, p.conventions)) >= 0.95 else 0.0
    if target == "categories":
        pathy = _share(p.values, lambda v: ">" in v) if p.values else 0.0
        if name_score:
            return name_score
        return 0.7 if pathy >= 0.5 else 0.0
    if target == "variation_of":
        return name_score if name_score and p.code_like >= 0.8 else 0.0
    return 0.0


def suggest(
    analysis: SampleAnalysis,
    *,
    fields: list[FieldDef],
    remembered: dict[str, str | None] | None = None,
    conventions: Conventions | None = None,
) -> Suggestion:
    """Suggest a field for every column; see the module docstring for the order of preference.

    Values are read under the file's `conventions` (detected from the sample when not given)."""
    remembered = remembered or {}
    if conventions is None:
        conventions = detect_conventions(analysis.rows, encoding=analysis.encoding, delimiter=analysis.dialect.delimiter)
    headers = analysis.headers
    norms = [normalize_header(h) for h in headers]
    profiles = [
        profile_column(
            h,
            [row[i] if i < len(row) else "" for row in analysis.rows],
            conventions=conventions,
            complete=analysis.complete,
            header_norm=norms[i],
        )
        for i, h in enumerate(headers)
    ]
    field_map = {f.name: f for f in fields}
    chosen: dict[int, tuple[str | None, float, str]] = {}
    used: set[str] = set()
    new_names: dict[int, str] = {}

    # 1. what the tenant confirmed before for the same header
    for i, h in enumerate(headers):
        key = header_key(h)
        if key not in remembered:
            continue
        target = remembered[key]
        if target is None:
            chosen[i] = (None, 1.0, "remembered")
        elif target in used:
            continue
        elif target in BUILTIN_TARGETS or target in field_map:
            chosen[i] = (target, 1.0, "remembered")
            used.add(target)
        elif not name_problem(target):
            chosen[i] = (target, 1.0, "remembered")
            new_names[i] = target
            used.add(target)

    # 2. built-ins and schema fields by name, label and synonyms
    matcher = _Matcher(
        {**{t: set(BUILTIN_SYNONYMS[t]) for t in BUILTIN_TARGETS}, **{name: _phrases_of_field(f) for name, f in field_map.items()}}
    )
    candidates: list[tuple[float, int, str]] = []
    for i, p in enumerate(profiles):
        if i in chosen:
            continue
        scores = matcher.scores(norms[i])
        for target in BUILTIN_TARGETS:
            score = _builtin_score(target, scores.get(target, 0.0), p)
            if score >= 0.55:
                candidates.append((score, -i, target))
        for target, score in scores.items():
            if target in field_map and score >= 0.75:
                fit = _fits(p, field_map[target].type)
                score = score if fit >= 0.9 else score * 0.6
                if score >= 0.75:
                    candidates.append((score, -i, target))
    for score, neg_i, target in sorted(candidates, reverse=True):
        i = -neg_i
        if i in chosen or target in used:
            continue
        by_name = target not in BUILTIN_TARGETS or matcher.scores(norms[i]).get(target, 0.0) > 0
        chosen[i] = (target, round(min(score, 0.99), 2), "matched" if by_name else "profile")
        used.add(target)

    # 3. the rest become new fields: a known concept's English name, else the header in snake_case
    taken = set(field_map) | used | set(BUILTIN_TARGETS)
    new_fields: list[FieldDef] = []
    for i, p in enumerate(profiles):
        if i in chosen and i not in new_names:
            continue
        if i in new_names:
            name = new_names[i]
        else:
            if not p.values and analysis.complete:
                chosen[i] = (None, 0.5, "new")  # an empty column: nothing to import
                continue
            concept = _CONCEPT_OF.get(norms[i])
            if concept and concept not in taken:
                chosen[i] = (concept, p.confidence, "matched")
                name = concept
            else:
                name = snake_name(headers[i], taken=taken)
                chosen[i] = (name, p.confidence, "new")
        taken.add(name)
        new_fields.append(_field_for(name, headers[i], p))

    columns = [
        ColumnSuggestion(
            header=h,
            samples=profiles[i].samples,
            inferred_type=profiles[i].type.value,
            suggested_field=chosen[i][0],
            confidence=chosen[i][1],
            source=chosen[i][2],
        )
        for i, h in enumerate(headers)
    ]
    return Suggestion(columns=columns, new_fields=new_fields, conventions=conventions, profiles=profiles)


def _field_for(name: str, header: str, p: ColumnProfile, ftype: FieldType | None = None) -> FieldDef:
    ftype = ftype or p.type
    return FieldDef(
        name=name,
        type=ftype,
        label=header[:200],
        options=p.options if ftype == FieldType.enum else None,
        searchable=ftype in (FieldType.string, FieldType.text),
    )


# --- optional LLM opinion --------------------------------------------------------------------


def llm_request_payload(suggestion: Suggestion, fields: list[FieldDef]) -> dict[str, Any]:
    """What the model sees: headers, a few samples, our guess, the schema and the allowed targets."""
    return {
        "builtin_targets": list(BUILTIN_TARGETS),
        "field_types": [t.value for t in FieldType],
        "schema": [{"name": f.name, "type": f.type.value, "label": f.label} for f in fields],
        "columns": [
            {
                "header": c.header,
                "samples": c.samples[:3],
                "inferred_type": c.inferred_type,
                "local_suggestion": c.suggested_field,
                "local_confidence": c.confidence,
            }
            for c in suggestion.columns
        ],
    }


LLM_ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["columns"],
    "properties": {
        "columns": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["header", "field", "type", "confidence"],
                "properties": {
                    "header": {"type": "string"},
                    "field": {"type": ["string", "null"]},
                    "type": {"type": "string", "enum": [t.value for t in FieldType]},
                    "confidence": {"type": "number"},
                },
            },
        }
    },
}

LOCAL_CONFIDENCE_KEPT = 0.9  # name matches at least this sure (and remembered choices) are not overridden


def merge_llm_answer(suggestion: Suggestion, answer: Any, *, fields: list[FieldDef]) -> int:
    """Fold a model's answer into `suggestion` in place; returns how many columns changed.

    The answer is untrusted: unknown headers, invalid names and taken targets are ignored.
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("columns"), list):
        return 0
    field_map = {f.name: f for f in fields}
    by_header = {c.header: (i, c) for i, c in enumerate(suggestion.columns)}
    profiles = {p.header: p for p in suggestion.profiles}
    changed = 0
    for entry in answer["columns"]:
        if not isinstance(entry, dict) or entry.get("header") not in by_header:
            continue
        _, col = by_header[entry["header"]]
        target = entry.get("field")
        try:
            confidence = max(0.0, min(float(entry.get("confidence", 0.7)), 0.95))
        except (TypeError, ValueError):
            confidence = 0.7
        sure = col.source == "remembered" or (col.source == "matched" and col.confidence >= LOCAL_CONFIDENCE_KEPT)
        if sure or target == col.suggested_field:
            continue
        if target is not None and not isinstance(target, str):
            continue
        in_use = {c.suggested_field for c in suggestion.columns if c is not col}
        is_new = target is not None and target not in BUILTIN_TARGETS and target not in field_map
        if target is not None:
            if target in in_use:
                continue
            if is_new and name_problem(target):
                continue
        old = col.suggested_field
        col.suggested_field, col.confidence, col.source = target, round(max(confidence, 0.5), 2), "llm"
        suggestion.new_fields = [f for f in suggestion.new_fields if f.name != old]
        if is_new:
            try:
                ftype = FieldType(entry.get("type"))
            except ValueError:
                ftype = None
            profile = profiles[col.header]
            if ftype is not None and _fits(profile, ftype) < 0.9:
                ftype = None  # the model's type does not fit the sampled values; keep ours
            if ftype == FieldType.enum and not profile.options:
                ftype = None
            suggestion.new_fields.append(_field_for(target, col.header, profile, ftype))
        changed += 1
    return changed
