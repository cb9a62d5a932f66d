"""Unit tests of the pure sample analysis and suggestion, and of the record stream (no database)."""

import time

import pytest

from app.catalog.fields import FieldDef
from app.imports.headers import header_key, snake_name
from app.imports.inference import suggest
from app.imports.llm import merge_llm_answer
from app.imports.records import Dialect, RecordStream, iter_records
from app.imports.sniffing import (
    SAMPLE_BYTES,
    NotCsv,
    analyse_sample,
    detect_encoding,
    estimate_rows,
    unique_headers,
    utf16_variant,
)


def run(text: str | bytes, fields=(), remembered=None, encoding="utf-8"):
    data = text.encode(encoding) if isinstance(text, str) else text
    analysis = analyse_sample(data, complete=True)
    return analysis, suggest(analysis, fields=list(fields), remembered=remembered)


def test_encodings():
    assert detect_encoding(b"\xef\xbb\xbfa,b\n", complete=True) == "utf-8-sig"
    assert detect_encoding("Größe,Preis\n".encode(), complete=True) == "utf-8"
    assert detect_encoding("Größe,Preis\n".encode("cp1252"), complete=True) == "cp1252"
    assert detect_encoding("prix 9€ Référence\n".encode("cp1252"), complete=True) == "cp1252"
    assert (
        detect_encoding("Цена;Название\nстул;12\n".encode("cp1251") * 5, complete=True) == "cp1251"
    )
    assert detect_encoding("Krzesło dębowe;żółty\n".encode("cp1250") * 5, complete=True) == "cp1250"
    # every byte of Czech cp1250 text is also a cp1252 letter ("Žehlièka"); the letters no
    # Western language writes together tell the code page
    czech = "Žehlička parní;Kuchyňská váha;Čistič oken;Rychlovarná konvice\n"
    assert detect_encoding(czech.encode("cp1250") * 3, complete=True) == "cp1250"
    # and Western text whose bytes are also cp1250 letters stays cp1252
    for western in ("Blåbær;Smørbrød;Æble\n", "città;perché;più;Caffè\n", "façade;garçon\n"):
        assert detect_encoding(western.encode("cp1252") * 3, complete=True) == "cp1252"
    cut = "abc é".encode()[:-1]  # a sample that ends inside a character
    assert detect_encoding(cut, complete=False) == "utf-8"
    mostly = ("Größe Grün Schön " * 10).encode() + "Größe".encode("cp1252")
    assert (
        detect_encoding(mostly, complete=True) == "utf-8"
    )  # stray bytes: decoded per line with a fallback
    assert utf16_variant("a,b\n".encode("utf-16")) == "utf-16"
    assert utf16_variant("sku,name\nA,B\n".encode("utf-16-le")) == "utf-16-le"
    assert utf16_variant(b"sku,name\n") is None


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_dialects_and_quoted_newlines(delimiter):
    d = delimiter
    text = f'sku{d}name{d}price\nA-1{d}"Two\nlines, ""quoted"""{d}1.5\nA-2{d}Plain{d}2\nA-3{d}"With {d} inside"{d}3\n'
    analysis, _ = run(text)
    assert analysis.dialect.delimiter == d
    assert analysis.headers == ["sku", "name", "price"]
    assert analysis.rows[0] == ["A-1", 'Two\nlines, "quoted"', "1.5"]
    assert analysis.rows[2][1] == f"With {d} inside"
    assert analysis.sample_rows == 3 and analysis.header_row == 1


def test_excel_sep_line_blank_lines_and_headers():
    analysis, _ = run("sep=;\n\n\nID;Name;;Name\n1;a;b;c\n\n2;d;e;f\n")
    assert analysis.dialect.delimiter == ";"
    assert analysis.header_row == 4 and analysis.headers == ["ID", "Name", "Column 3", "Name (2)"]
    assert analysis.sample_rows == 2
    assert unique_headers([" a ", "A", "", "a (2)"]) == ["a", "A (2)", "Column 3", "a (2) (2)"]


def test_not_csv():
    for data in (b"", b"\n\n", b"\x89PNG\r\n\x1a\n" + bytes(100), b"PK\x03\x04abc"):
        with pytest.raises(NotCsv):
            analyse_sample(data, complete=True)


def test_column_types():
    rows = []
    for i in range(40):
        rows.append(
            f"S-{i};Item {i};{i},5;{i};{'ja' if i % 2 else 'nein'};{i % 28 + 1:02d}.03.2024;2024-03-01 10:{i % 60:02d};"
            f"https://x.org/{i};a|b;{['rot', 'grün', 'blau'][i % 3]};{'lang ' * 60};{'0' * 3}{i};Y"
        )
    text = (
        "sku;name;preis;menge;aktiv;datum;zeit;link;tags;farbe;text;ean;flag\n"
        + "\n".join(rows)
        + "\n"
    )
    _, s = run(text)
    types = {c.header: c.inferred_type for c in s.columns}
    assert types == {
        "sku": "string",
        "name": "string",
        "preis": "number",
        "menge": "integer",
        "aktiv": "boolean",
        "datum": "date",
        "zeit": "datetime",
        "link": "url",
        "tags": "array",
        "farbe": "enum",
        "text": "text",
        "ean": "string",
        "flag": "boolean",
    }
    assert s.conventions.decimal == "," and s.conventions.date_order == "dmy"
    farbe = next(
        f for f in s.new_fields if f.name == "farbe"
    )  # named after the header: the tenant has no `color`
    assert farbe.options == ["blau", "grün", "rot"]


def test_mapping_to_existing_fields_labels_and_fuzzy():
    fields = [
        FieldDef(name="brand", type="string"),
        FieldDef(name="preis", type="number", label="Price"),
        FieldDef(name="farbton", type="string", labels={"fr-fr": "Couleur"}),
        FieldDef(name="manufacturer_code", type="string"),
    ]
    text = "Référence;Nom du produit;Marque;Prix TTC;Couleur;Manufaturer Code;Poids (kg)\nR-1;Chaise;Hay;12,5;Bleu;M1;1,2\n"
    _, s = run(text, fields)
    m = s.mapping()
    assert m == {
        "Référence": "sku",
        "Nom du produit": "name",
        "Marque": "brand",
        "Prix TTC": "preis",
        "Couleur": "farbton",
        "Manufaturer Code": "manufacturer_code",
        "Poids (kg)": "poids_kg",  # no `weight` field: named after the header
    }
    assert [f["name"] for f in s.schema(fields)] == [
        "brand",
        "preis",
        "farbton",
        "manufacturer_code",
        "poids_kg",
    ]


def test_sku_and_name_by_profile_and_reserved_names():
    text = "Artikel;Beschreibung kurz;Page;Limit\n" + "".join(
        f"X{i:04d};Ein schöner Stuhl {i};{i};{i}\n" for i in range(20)
    )
    _, s = run(text)
    m = s.mapping()
    assert m["Artikel"] == "sku" and m["Beschreibung kurz"] == "name"
    assert m["Page"] == "page_value" and m["Limit"] == "limit_value"  # reserved words get a suffix
    assert snake_name("2024 Preis", taken=set()) == "f_2024_preis"
    assert snake_name("Größe", taken={"grosse"}) == "grosse_2"
    assert snake_name("Category", taken=set()) == "category_value"  # the list's category-id filter
    # a name cut where a separator was: the suffix never makes a "__" (a name the schema refuses)
    long = "a" * 57 + " b" + "c" * 10
    assert snake_name(long, taken={snake_name(long, taken=set())}) == "a" * 57 + "_2"
    assert header_key("  Prix TTC (€) ") == header_key("prix ttc") != header_key("Prix TTC (2)")


def test_remembered_choices_win():
    text = "Code;Label;Extra\nA;b;c\n"
    _, s = run(text, remembered={"code": "sku", "label": "name", "extra": None})
    assert s.mapping() == {"Code": "sku", "Label": "name", "Extra": None}
    assert {c.confidence for c in s.columns} == {1.0}


def test_merge_llm_answer_validates():
    fields = [FieldDef(name="quantity", type="integer")]
    _, s = run("sku;zzq;wgt;abc\nA;1;2,5;x\nB;2;3,5;y\n", fields)
    assert s.mapping()["zzq"] == "zzq"
    changed = merge_llm_answer(
        s,
        {
            "columns": [
                {
                    "header": "zzq",
                    "field": "quantity",
                    "type": "integer",
                    "confidence": 0.8,
                },  # the tenant's field
                {
                    "header": "wgt",
                    "field": "sku",
                    "type": "string",
                    "confidence": 0.9,
                },  # taken: ignored
                {
                    "header": "abc",
                    "field": "alphabet",
                    "type": "string",
                    "confidence": 0.9,
                },  # a new name: ignored
                {"header": "nope", "field": "x", "type": "string", "confidence": 0.9},
                "junk",
            ]
        },
        fields=fields,
    )
    assert changed == 1 and s.mapping() == {
        "sku": "sku",
        "zzq": "quantity",
        "wgt": "wgt",
        "abc": "abc",
    }
    assert [f.name for f in s.new_fields] == ["wgt", "abc"]
    assert s.columns[1].source == "llm" and "language model" in s.columns[1].reason
    assert merge_llm_answer(s, "not json", fields=fields) == 0


def test_estimate_rows_and_incomplete_sample():
    line = "A-{i},Name {i},{i}.5\n"
    data = ("sku,name,price\n" + "".join(line.format(i=i) for i in range(100_000))).encode()
    sample = data[:SAMPLE_BYTES]
    analysis = analyse_sample(sample, complete=False)
    estimate = estimate_rows(analysis, len(data))
    assert abs(estimate - 100_000) < 2_000
    assert analysis.rows[-1] == analysis.rows[-1][:3] and len(analysis.rows[-1]) == 3  # no half row


def test_suggestion_is_fast_on_a_full_sample():
    row = "IC-{i},Desk Lamp {i},Flos,{i}.50,{i},true,white,Lighting > Desk,https://img.example.org/{i}.png,2024-12-04,steel;brass\n"
    data = (
        "Item Code,Item Name,Manufacturer,Unit Price,Stock Level,Active,Color,Categories,Image URL,Created,Materials\n"
        + "".join(row.format(i=i) for i in range(20_000))
    ).encode()[:SAMPLE_BYTES]
    started = time.perf_counter()
    analysis = analyse_sample(data, complete=False)
    suggest(analysis, fields=[])
    assert time.perf_counter() - started < 1.5


def test_record_stream_same_records_for_any_split_and_resume():
    data = (
        'h1,h2\n"a\r\nb",1\r\nc,2\n\n"'
        + "x" * 500
        + "\n"
        + "d,3\n" * 50
        + 'e,"unterminated\n'
        + "f,4\n" * 5
    ).encode()
    reference = [
        (r.cells, r.end_offset, r.error)
        for r in iter_records(data, encoding="utf-8", dialect=Dialect(), complete=True)
    ]
    for max_record in (64, 256, 4096):
        ref = [(r.cells, r.end_offset, r.error) for r in _stream(data, 1 << 20, max_record)]
        for step in (1, 3, 17, 200, 5000):
            assert [
                (r.cells, r.end_offset, r.error) for r in _stream(data, step, max_record)
            ] == ref
        # resuming at any record boundary yields the rest unchanged
        for _cells, end, _ in ref[::7]:
            rest = [
                (r.cells, r.end_offset, r.error)
                for r in _stream(data[end:], 13, max_record, start=end)
            ]
            assert rest == [x for x in ref if x[1] > end]
    assert any(err for _, _, err in _stream_tuples(data, 64)) and reference[1][0] == ["a\r\nb", "1"]


def _stream(data: bytes, step: int, max_record: int, start: int = 0):
    stream = RecordStream(
        encoding="utf-8", dialect=Dialect(), start_offset=start, max_record_bytes=max_record
    )
    out = []
    for i in range(0, len(data), step):
        stream.feed(data[i : i + step])
        out.extend(stream.records())
    stream.finish()
    out.extend(stream.records())
    return out


def _stream_tuples(data, max_record):
    return [(r.cells, r.end_offset, r.error) for r in _stream(data, 100, max_record)]


def test_record_stream_long_line_and_nul_bytes():
    data = b"a,b\n" + b"x" * 5000 + b"\nc,\x00d\n"
    records = _stream(data, 100, 1024)
    assert records[-1].cells == ["c", "d"]  # NUL dropped: Postgres text cannot hold it
    assert records[-1].end_offset == len(data)
    assert max(len(",".join(r.cells)) for r in records) <= 1024
    mixed = "x,Größe\n".encode() + "y,Größe\n".encode("cp1252")
    cells = [r.cells for r in iter_records(mixed, encoding="utf-8", dialect=Dialect())]
    assert cells == [["x", "Größe"], ["y", "Größe"]]  # a cp1252 line in a UTF-8 file


def test_record_stream_stray_quotes_do_not_depend_on_the_pieces():
    """A stray quote rejects its first line and the lines after it are rows again, however the
    file is split into pieces; a record's end offset lets the worker resume after it."""
    data = (
        b"sku,name,price\n"
        b'S-1,Widget 5" screen,1.50\n'
        b'S-2,"Gadget 7,9.99\n'
        b"S-3,Thing,4.00\n"
        b'S-4,Other 5",5.00\n'
        b'S-5,"Lamp\nwith shade",7.00\n'
        b'S-6,"never closed,1\n'
        b"S-7,Last,2\n"
    )

    def read(step: int) -> list[tuple]:
        stream = RecordStream(encoding="utf-8", dialect=Dialect(), width=3)
        out = []
        for i in range(0, len(data), step):
            stream.feed(data[i : i + step])
            out.extend(stream.records())
        stream.finish()
        out.extend(stream.records())
        return [(r.cells, r.end_offset, r.error is not None) for r in out]

    whole = read(len(data))
    assert [cells[0].split(",")[0] for cells, _, _ in whole] == [
        "sku",
        "S-1",
        "S-2",
        "S-3",
        "S-4",
        "S-5",
        "S-6",
        "S-7",
    ]
    assert [bad for _, _, bad in whole] == [False, False, True, False, False, False, True, False]
    assert whole[1][0] == ["S-1", 'Widget 5" screen', "1.50"]
    assert whole[5][0] == ["S-5", "Lamp\nwith shade", "7.00"]
    assert whole[-1] == (["S-7", "Last", "2"], len(data), False)
    assert read(1) == whole and read(7) == whole
