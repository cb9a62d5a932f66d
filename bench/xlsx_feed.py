"""A supplier-style .xlsx feed written the way Excel writes one (shared strings, typed number,
boolean and date cells), fast: the XML is formatted directly. Used by bench/import.py --xlsx and
bench/xlsx_readers.py. The rows match bench/import.py's CSV feed (same seed and columns), plus a
text ZIP code with leading zeros and a description; 200,000 rows make about 20 MB.
"""

import random
import zipfile
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

BRANDS = [
    "Fermob",
    "Tolix",
    "Hay",
    "Müller & Söhne",
    "Artemide",
    "Flos",
    "Ikea",
    "Vitra",
    "Kartell",
    "Muuto",
]
COLORS = ["rot", "blau", "grün", "weiß", "schwarz"]
CATEGORIES = ["Möbel > Stühle", "Möbel > Tische", "Leuchten > Steh", "Leuchten > Tisch", "Outdoor"]
HEADER = [
    "Artikelnummer", "Bezeichnung", "Marke", "Preis", "Lagerbestand", "Aktiv", "Farbe", "Kategorie", "Bild",
    "Erscheinungsdatum", "Material", "PLZ", "Beschreibung",
]  # fmt: skip
EXCEL_EPOCH = date(1899, 12, 30)

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_STYLES = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><styleSheet {_NS}>'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="dd.mm.yyyy"/></numFmts>'
    '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="164" applyNumberFormat="1"/></cellXfs></styleSheet>'
)


def _col(i: int) -> str:
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i]


def description(i: int) -> str:
    return (
        f"Stapelstuhl {i} von {BRANDS[i % 10]} aus Holz und Stahl, {COLORS[i % 5]}, für innen und außen, "
        f"Sitzhöhe {40 + i % 11} cm, Artikel {i * 7919 % 1000003}"
    )


def write_xlsx_feed(path: Path, rows: int) -> int:
    """Write `rows` data rows (sheet "Artikel") and return the file's size."""
    rnd = random.Random(42)
    strings: dict[str, int] = {}

    def s(text: str) -> str:
        index = strings.setdefault(text, len(strings))
        return f't="s"><v>{index}</v>'

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet {_NS}>'.encode()
            )
            f.write(f'<dimension ref="A1:M{rows + 1}"/><sheetData>'.encode())
            f.write(
                (
                    '<row r="1">'
                    + "".join(f'<c r="{_col(i)}1" {s(h)}</c>' for i, h in enumerate(HEADER))
                    + "</row>"
                ).encode()
            )
            out: list[str] = []
            for i in range(rows):
                r = i + 2
                price = rnd.randint(1, 2999) + rnd.randint(0, 99) / 100
                stock = rnd.randint(0, 500)
                released = date(2000 + rnd.randint(10, 24), rnd.randint(1, 12), rnd.randint(1, 28))
                cats = CATEGORIES[i % 5] + ("|Outdoor" if i % 7 == 0 else "")
                out.append(
                    f'<row r="{r}"><c r="A{r}" {s(f"SKU-{i:08d}")}</c><c r="B{r}" {s(f"Stuhl Modell {i}, stapelbar")}</c>'
                    f'<c r="C{r}" {s(BRANDS[i % 10])}</c><c r="D{r}"><v>{price!r}</v></c><c r="E{r}"><v>{stock}</v></c>'
                    f'<c r="F{r}" t="b"><v>{1 if i % 3 else 0}</v></c><c r="G{r}" {s(COLORS[i % 5])}</c>'
                    f'<c r="H{r}" {s(cats)}</c><c r="I{r}" {s(f"https://img.example.org/{i}.jpg")}</c>'
                    f'<c r="J{r}" s="1"><v>{(released - EXCEL_EPOCH).days}</v></c><c r="K{r}" {s("Holz|Stahl")}</c>'
                    f'<c r="L{r}" {s(f"{rnd.randint(0, 99999):05d}")}</c>'
                    f'<c r="M{r}" {s(description(i))}</c></row>'
                )
                if len(out) >= 5000:
                    f.write("".join(out).encode())
                    out.clear()
            f.write(("".join(out) + "</sheetData></worksheet>").encode())
        with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
            f.write(
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst {_NS} uniqueCount="{len(strings)}">'.encode()
            )
            batch: list[str] = []
            for text in strings:
                batch.append(f"<si><t>{escape(text)}</t></si>")
                if len(batch) >= 10000:
                    f.write("".join(batch).encode())
                    batch.clear()
            f.write(("".join(batch) + "</sst>").encode())
        z.writestr("xl/styles.xml", _STYLES)
        z.writestr(
            "xl/workbook.xml",
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook {_NS} xmlns:r="{_REL}">'
            '<sheets><sheet name="Artikel" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
            f'<Relationship Id="rId3" Type="{_REL}/styles" Target="styles.xml"/></Relationships>',
        )
        z.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        z.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
            '<Override PartName="/xl/styles.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>',
        )
    return path.stat().st_size
