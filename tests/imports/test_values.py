"""Unit tests of the value core under explicit conventions, and of detecting a file's conventions (no database)."""

import pytest

from app.catalog.fields import CoercionError, FieldDef, coerce_value
from app.catalog.values import (
    read_bool,
    read_date,
    read_datetime,
    read_number,
    split_list,
)
from app.imports.conventions import (
    DEFAULT_CONVENTIONS,
    Conventions,
    ConventionsModel,
    detect_conventions,
)
from app.imports.sniffing import detect_encoding

GERMAN = Conventions(decimal=",", thousands=".", date_order="dmy")
US = Conventions(decimal=".", thousands=",", date_order="mdy")
SWISS = Conventions(decimal=".", thousands="'")
FRENCH = Conventions(decimal=",", thousands=" ", date_order="dmy")
NUMBER, INTEGER = FieldDef(name="n", type="number"), FieldDef(name="i", type="integer")


@pytest.mark.parametrize(
    "text, conventions, expected",
    [
        ("12.50", DEFAULT_CONVENTIONS, 12.5),
        ("3.700", DEFAULT_CONVENTIONS, 3.7),
        ("0.975", DEFAULT_CONVENTIONS, 0.975),
        (" 7 ", DEFAULT_CONVENTIONS, 7),
        (
            "1E7",
            DEFAULT_CONVENTIONS,
            1e7,
        ),  # scientific notation is plain decimal notation for every path
        ("3.700", GERMAN, 3700),
        ("1.234,56", GERMAN, 1234.56),
        ("1.234.567", GERMAN, 1234567),
        ("12,5", GERMAN, 12.5),
        ("-0,5", GERMAN, -0.5),
        ("1234,56", GERMAN, 1234.56),  # groups are optional
        ("1,234.56", US, 1234.56),
        ("1,234", US, 1234),
        ("1'234.50", SWISS, 1234.5),
        ("1\u2019234.50", SWISS, 1234.5),
        ("1 234,56", FRENCH, 1234.56),
        ("1\u00a0234,56", FRENCH, 1234.56),
        ("1\u202f234,56", FRENCH, 1234.56),
    ],
)
def test_read_number(text, conventions, expected):
    assert read_number(text, conventions) == expected
    assert coerce_value(NUMBER, text, conventions) == expected  # the same rules through the coercer


@pytest.mark.parametrize(
    "text, conventions",
    [
        ("SKU-12", DEFAULT_CONVENTIONS),
        ("XYZ-2024", DEFAULT_CONVENTIONS),
        ("ABC 5", DEFAULT_CONVENTIONS),
        ("1_000", DEFAULT_CONVENTIONS),
        ("１２", DEFAULT_CONVENTIONS),
        ("1,234", DEFAULT_CONVENTIONS),  # no thousands separator in the defaults: never guessed
        ("12,50", DEFAULT_CONVENTIONS),
        ("€12", DEFAULT_CONVENTIONS),
        ("12 €", GERMAN),
        ("(12.50)", DEFAULT_CONVENTIONS),
        ("12-", DEFAULT_CONVENTIONS),
        ("3.700", Conventions(decimal=",")),  # decimal ',' without thousands: '.' is nothing
        ("12.50", GERMAN),  # '.' groups by three under GERMAN: '12.50' is no grouping
        ("1.23.456", GERMAN),
        ("1,23,456", US),
        ("12 34", FRENCH),
        ("1.234,56", US),
        ("nan", DEFAULT_CONVENTIONS),
        ("1e400", DEFAULT_CONVENTIONS),
    ],
)
def test_read_number_rejects(text, conventions):
    with pytest.raises(ValueError):
        read_number(text, conventions)
    with pytest.raises(CoercionError, match="^n: "):
        coerce_value(NUMBER, text, conventions)


def test_integers_are_never_reinterpreted():
    assert coerce_value(INTEGER, "3.700", GERMAN) == 3700
    assert coerce_value(INTEGER, "1e3") == 1000 and coerce_value(INTEGER, "12,0", GERMAN) == 12
    for text, conventions in (
        ("3.700", DEFAULT_CONVENTIONS),
        ("0.975", DEFAULT_CONVENTIONS),
        ("12,5", GERMAN),
        ("9" * 30, DEFAULT_CONVENTIONS),
    ):
        with pytest.raises(CoercionError, match="^i: "):
            coerce_value(INTEGER, text, conventions)


def test_booleans_dates_lists():
    german = Conventions(true_words=("ja", "1"), false_words=("nein", "0"), date_order="dmy")
    assert [read_bool(w, german) for w in ("ja", "JA", " nein ", "1")] == [True, True, False, True]
    for word in ("yes", "maybe"):
        with pytest.raises(ValueError):
            read_bool(word, german)
    assert [read_bool(w) for w in ("true", "Yes", "on", "0", "n")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    with pytest.raises(ValueError):
        read_bool("ja")

    assert (
        read_date("04.12.2024", german) == "2024-12-04"
        and read_date("2024-12-04", german) == "2024-12-04"
    )
    assert (
        read_date("04/12/2024", US) == "2024-04-12"
        and read_date("4-7-2024", GERMAN) == "2024-07-04"
    )
    for text, conventions in (
        ("04.12.2024", DEFAULT_CONVENTIONS),
        ("31.02.2024", GERMAN),
        ("12/31/2024", GERMAN),
        ("4.7.24", GERMAN),
        ("2024-12-04T00:00:00Z", DEFAULT_CONVENTIONS),
    ):
        with pytest.raises(ValueError):
            read_date(text, conventions)

    assert read_datetime("2024-12-04T10:30:00Z") == "2024-12-04T10:30:00Z"
    assert read_datetime("2024-12-04 10:30") == "2024-12-04T10:30:00Z"  # naive: UTC by default
    berlin = Conventions(date_order="dmy", time_zone="Europe/Berlin")
    # naive local times are converted from the file's zone (winter: UTC+1, summer: UTC+2), not stored as UTC
    assert read_datetime("04.12.2024 10:30", berlin) == "2024-12-04T09:30:00Z"
    assert read_datetime("2024-07-01T10:30:00", berlin) == "2024-07-01T08:30:00Z"
    assert (
        read_datetime("2024-07-01T10:30:00+00:00", berlin) == "2024-07-01T10:30:00Z"
    )  # an offset wins
    assert read_datetime("12/04/2024 09:05:07", US) == "2024-12-04T09:05:07Z"
    assert read_datetime("04.12.2024 9:05 +02:00", berlin) == "2024-12-04T07:05:00Z"
    assert read_datetime("04.12.2024 10:30:15,5", GERMAN) == "2024-12-04T10:30:15.500000Z"
    for text in ("04.12.2024 25:00", "04.12.2024 10h30", "31.02.2024 10:00"):
        with pytest.raises(ValueError):
            read_datetime(text, GERMAN)
    with pytest.raises(ValueError):
        read_datetime("04.12.2024 10:30")  # ISO only under ymd

    assert split_list("a | b |") == ["a", "b"] and split_list("a;b|c") == ["a;b", "c"]
    assert split_list("a;b", Conventions(list_separator=";")) == ["a", "b"]


def test_conventions_validation():
    for bad in (
        {"decimal": ","},
        {"thousands": "x"},
        {"date_order": "ydm"},
        {"time_zone": "Mars/Base"},
        {"true_words": ("ja",), "false_words": ("ja",)},
        {"delimiter": ":"},
    ):
        with pytest.raises(ValueError):
            Conventions(**{"thousands": ",", **bad} if bad == {"decimal": ","} else bad)
    model = ConventionsModel.model_validate(
        {"decimal": ",", "thousands": None, "time_zone": "Europe/Paris"}
    )
    assert model.changes() == {"decimal": ",", "thousands": None, "time_zone": "Europe/Paris"}
    with pytest.raises(ValueError):
        ConventionsModel.model_validate({"time_zone": "Europe/Nowhere"})
    c = DEFAULT_CONVENTIONS.updated(model.changes())
    assert Conventions.from_json(c.to_json()) == c and c.date_order == "ymd"


def detect(rows, delimiter=","):
    return detect_conventions(rows, encoding="utf-8", delimiter=delimiter)


def test_detect_decimal_from_all_columns():
    # a file where prices read 12.50 uses '.': its weights of three decimals are decimals too
    c = detect([["A", "3.700", "12.50"], ["B", "6.257", "9.99"], ["C", "0.975", "100.00"]])
    assert (c.decimal, c.thousands) == (".", None)
    # the same weights beside prices with a decimal comma: then '.' groups thousands
    c = detect([["A", "3.700", "12,50"], ["B", "6.257", "9,99"]], ";")
    assert (c.decimal, c.thousands) == (",", ".")
    assert detect([["1.234,56"]]).decimal == ","
    assert (detect([["1,234.56"], ["7.5"]]).thousands) == ","
    assert detect([["1 234,56"]]).thousands == " " and detect([["1'234.50"]]).thousands == "'"
    assert detect([["0,975"]]).decimal == ","  # a thousands group never follows a lone 0
    # nothing but ambiguous cells: the defaults, so that a wrong guess cannot store 3700
    c = detect([["3.700"], ["6.257"]])
    assert (c.decimal, c.thousands) == (".", None)
    c = detect([["1,234"], ["5,678"]])
    assert (c.decimal, c.thousands) == (".", None)
    # dates and versions do not vote
    assert detect([["04.12.2024", "1.2.3"], ["05.12.2024", "12,5"]]).decimal == ","


def test_detect_dates_words_separators():
    assert detect([["31.12.2024"], ["01.02.2024"]]).date_order == "dmy"
    assert detect([["12/31/2024"], ["01/02/2024"]]).date_order == "mdy"
    assert detect([["2024-12-31"]]).date_order == "ymd"
    assert detect([["01.02.2024"]]).date_order == "dmy"  # undecided with dots: European
    c = detect([["A", "ja"], ["B", "nein"], ["C", "ja"]], ";")
    assert "ja" in c.true_words and "nein" in c.false_words and "true" in c.true_words
    assert "ja" not in detect([["A", "ja und nein"]]).true_words
    for yes, no in (("ja", "nej"), ("sì", "no"), ("ano", "ne"), ("kyllä", "ei"), ("sim", "não")):
        c = detect([["A", yes], ["B", no], ["C", yes]], ";")
        assert yes in c.true_words and no in c.false_words, (yes, no)
    assert detect([["steel;brass", "Lighting > Desk|Office > Lamps"]]).list_separator == ";"
    assert detect([["steel|brass"]]).list_separator == "|"
    c = detect([["Clothing > Tshirts, Clothing > Men"], ["Clothing > Hoodies"]])
    assert c.category_separator == ","
    assert detect([["Clothing > Tshirts|Clothing > Men"]]).category_separator == "|"
    assert detect([["<p>a > b, c</p>"]]).category_separator == "|"


def test_detect_encoding_prefers_cp1252():
    text = "Artikel;Größe;Maß\nA-1;½ Zoll;3½ m\nA-2;¼ Zoll;Schraube ¾\nA-3;Kühlschrank;Stück\n"
    assert detect_encoding(text.encode("cp1252"), complete=True) == "cp1252"
    polish = "Nazwa;Opis\nKrzesło;Świetne krzesło z drewna\nŁóżko;Łóżko dębowe\n"
    assert detect_encoding(polish.encode("cp1250"), complete=True) == "cp1250"
