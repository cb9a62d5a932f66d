"""Pure: CSV headers → names: normalising, synonyms of the built-ins and of a tenant's fields, new names.

Built-in targets (sku, name, status, categories, variation_of) exist for every tenant and are
matched by multilingual synonyms. A schema field is matched by its name, labels and the
synonyms of its concept ("preis" finds a field named `price`); a header that matches nothing
becomes a new field named after the header itself (`in_stock`, `gtin`), never after a synonym.
"""

import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from app.catalog.fields import RESERVED_NAMES, FieldDef, name_problem
from app.imports.conventions import ACTIVE_WORDS


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
    return (" ".join(re.sub(r"[^a-z0-9]+", " ", _fold(header)).split()) or header.strip().lower())[
        :200
    ]


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


# canonical name → phrases (already normalised) in English, German, French, Spanish, Italian, Dutch,
# Polish, the Nordic languages, Czech, Hungarian and Portuguese
BUILTIN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "sku": (
        "sku",
        "sku code",
        "item code",
        "item no",
        "item number",
        "item id",
        "article number",
        "article no",
        "art no",
        "artikelnummer",
        "artikel nr",
        "artikelnr",
        "art nr",
        "artnr",
        "reference",
        "ref",
        "reference produit",
        "code article",
        "code produit",
        "product code",
        "product number",
        "product id",
        "product sku",
        "part number",
        "part no",
        "model number",
        "codigo",
        "codigo articulo",
        "referencia",
        "codice",
        "codice articolo",
        "artikelcode",
        "artikel code",
        "numer katalogowy",
        "indeks",
        "variant sku",
        "style number",
        "id",
        "bestellnummer",
        "bestell nr",
        "sku nummer",
        "sku number",
        "item sku",
        "seller sku",
        "merchant sku",
        "reference article",
        "ref article",
        "numero article",
        "codice prodotto",
        "varenummer",  # Danish, Norwegian
        "varenr",
        "tuotenumero",  # Finnish
        "tuotekoodi",
        "kod zbozi",  # Czech
        "kod towaru",  # Polish
        "cikkszam",  # Hungarian
        "codigo do produto",  # Portuguese
    ),
    "name": (
        "name",
        "product name",
        "item name",
        "title",
        "product title",
        "article name",
        "designation",
        "libelle",
        "nom",
        "nom du produit",
        "nom produit",
        "bezeichnung",
        "artikelbezeichnung",
        "produktname",
        "artikelname",
        "produktbezeichnung",
        "nombre",
        "nombre del producto",
        "nome",
        "nome prodotto",
        "denominazione",
        "titel",
        "naam",
        "productnaam",
        "nazwa",
        "nazwa produktu",
        "titulo",
        "titolo",
        "kurzbezeichnung",
        "item title",
        "nom article",
        "libelle produit",
        "libelle article",
        "designation produit",
        "designation article",
        "benamning",  # Swedish
        "produktnamn",
        "artikelnamn",
        "varenavn",  # Danish, Norwegian
        "produktnavn",
        "varebetegnelse",
        "tuotenimi",  # Finnish
        "nimi",
        "nimike",
        "nazev",  # Czech
        "nazev zbozi",
        "nazwa towaru",  # Polish
        "omschrijving",  # Dutch
        "artikelomschrijving",
        "megnevezes",  # Hungarian
        "termek neve",
        "nome do produto",  # Portuguese
    ),
    "status": (
        "status",
        "state",
        "product status",
        "statut",
        "estado",
        "stato",
        "active",
        *ACTIVE_WORDS,
        "is active",
    ),
    "categories": (
        "categories",
        "category",
        "category path",
        "categories path",
        "kategorie",
        "kategorien",
        "warengruppe",
        "categorie",
        "categoria",
        "categorias",
        "categorie prodotto",
        "kategoria",
        "product category",
        "product categories",
        "breadcrumb",
        "taxonomy",
        "department",
        "rubrique",
    ),
    "variation_of": (
        "parent sku",
        "parent",
        "parent code",
        "parent id",
        "master sku",
        "variation of",
        "variant of",
        "parent item",
        "hauptartikel",
        "vaterartikel",
        "elternartikel",
        "article parent",
        "produit parent",
        "sku padre",
        "articulo padre",
        "model sku",
        "group sku",
    ),
}

WEAK_SYNONYM = 0.75  # "id", "ref", "code": a SKU only when nothing better names it
# "id" and "product id" are most often the exporting system's database id (PrestaShop's `ID`
# beside its `Reference #`, BigCommerce's `Product ID`): weaker still than a reference
DATABASE_ID_SYNONYM = 0.7
_DATABASE_IDS = frozenset({"id", "product id"})
FIELD_SYNONYM = 0.9
_WEAK_BUILTIN_SYNONYMS = {
    "sku": frozenset(
        {
            "id",
            "ref",
            "reference",
            "codigo",
            "codice",
            "item id",
            "product id",
            "model number",
            "indeks",
            "style number",
        }
    ),
    "name": frozenset({"designation", "libelle", "omschrijving"}),
    "status": frozenset({"state", "online", "published"}),
    "categories": frozenset({"breadcrumb", "taxonomy", "department", "rubrique", "warengruppe"}),
    "variation_of": frozenset({"parent", "parent id", "model sku", "group sku"}),
}

# Concepts and their synonyms: a header finds a tenant's field through them ("Preis" → the field
# `price`); they never name a new field.
FIELD_CONCEPTS: dict[str, tuple[str, ...]] = {
    "price": (
        "price",
        "unit price",
        "retail price",
        "regular price",
        "sales price",
        "selling price",
        "list price",
        "msrp",
        "rrp",
        "uvp",
        "gross price",
        "price incl vat",
        "price gross",
        "preis",
        "verkaufspreis",
        "vk",
        "vk preis",
        "listenpreis",
        "bruttopreis",
        "prix",
        "prix ttc",
        "prix de vente",
        "prix public",
        "precio",
        "precio venta",
        "pvp",
        "prezzo",
        "prezzo vendita",
        "prijs",
        "verkoopprijs",
        "cena",
        "cena brutto",
    ),
    "sale_price": (
        "sale price",
        "special price",
        "offer price",
        "discount price",
        "sonderpreis",
        "aktionspreis",
        "angebotspreis",
        "prix promo",
        "prix solde",
        "precio oferta",
        "prezzo scontato",
    ),
    "net_price": (
        "net price",
        "price net",
        "price excl vat",
        "nettopreis",
        "prix ht",
        "precio neto",
        "prezzo netto",
    ),
    "cost": (
        "cost",
        "purchase price",
        "cost price",
        "buying price",
        "einkaufspreis",
        "ek",
        "ek preis",
        "prix d achat",
        "prix achat",
        "precio de compra",
        "prezzo acquisto",
        "inkoopprijs",
    ),
    "currency": ("currency", "wahrung", "devise", "monnaie", "moneda", "valuta", "waluta"),
    "stock": (
        "stock",
        "stock level",
        "stock qty",
        "qty",
        "quantity",
        "inventory",
        "on hand",
        "qty on hand",
        "available quantity",
        "bestand",
        "lager",
        "lagerbestand",
        "menge",
        "stuckzahl",
        "quantite",
        "stock disponible",
        "existencias",
        "cantidad",
        "giacenza",
        "quantita",
        "voorraad",
        "aantal",
        "stan",
        "ilosc",
    ),
    "brand": (
        "brand",
        "manufacturer",
        "make",
        "brand name",
        "marke",
        "hersteller",
        "marque",
        "fabricant",
        "marca",
        "fabricante",
        "produttore",
        "merk",
        "fabrikant",
        "producent",
    ),
    "color": (
        "color",
        "colour",
        "farbe",
        "couleur",
        "colore",
        "kleur",
        "kolor",
        "colors",
        "colours",
    ),
    "size": ("size", "grosse", "taille", "talla", "taglia", "maat", "rozmiar"),
    "material": (
        "material",
        "materials",
        "materialien",
        "werkstoff",
        "matiere",
        "materiau",
        "materiaux",
        "materiales",
        "materiale",
        "materiali",
        "materiaal",
        "composition",
    ),
    "weight": ("weight", "gewicht", "poids", "peso", "waga", "net weight", "gross weight"),
    "width": ("width", "breite", "largeur", "ancho", "larghezza", "breedte", "szerokosc"),
    "height": ("height", "hohe", "hauteur", "alto", "altura", "altezza", "hoogte", "wysokosc"),
    "length": (
        "length",
        "lange",
        "longueur",
        "largo",
        "longitud",
        "lunghezza",
        "lengte",
        "dlugosc",
    ),
    "depth": ("depth", "tiefe", "profondeur", "profundidad", "profondita", "diepte", "glebokosc"),
    "description": (
        "description",
        "long description",
        "product description",
        "beschreibung",
        "produktbeschreibung",
        "langtext",
        "descriptif",
        "descriptif produit",
        "descripcion",
        "descrizione",
        "omschrijving",
        "beschrijving",
        "opis",
    ),
    "short_description": (
        "short description",
        "kurzbeschreibung",
        "kurztext",
        "description courte",
        "resumen",
    ),
    "ean": (
        "ean",
        "ean13",
        "ean code",
        "gtin",
        "gtin13",
        "barcode",
        "upc",
        "strichcode",
        "code barre",
        "codigo de barras",
        "codice a barre",
    ),
    "mpn": (
        "mpn",
        "manufacturer part number",
        "herstellernummer",
        "hersteller artikelnummer",
        "reference fabricant",
    ),
    "image_url": (
        "image",
        "image url",
        "image link",
        "main image",
        "picture",
        "photo",
        "photo url",
        "bild",
        "bild url",
        "bildurl",
        "produktbild",
        "imagen",
        "immagine",
        "afbeelding",
        "zdjecie",
        "img",
    ),
    "url": (
        "url",
        "link",
        "product url",
        "product link",
        "deeplink",
        "produkt url",
        "lien",
        "enlace",
    ),
    "available": (
        "available",
        "availability",
        "in stock",
        "verfugbar",
        "verfugbarkeit",
        "lieferbar",
        "disponible",
        "disponibilite",
        "disponibilidad",
        "disponibile",
        "disponibilita",
        "beschikbaar",
        "dostepny",
        "dostepnosc",
    ),
    "release_date": (
        "release date",
        "launch date",
        "date de sortie",
        "date de lancement",
        "erscheinungsdatum",
        "markteinfuhrung",
        "fecha de lanzamiento",
        "data di uscita",
        "data di lancio",
        "releasedatum",
    ),
    "tags": (
        "tags",
        "keywords",
        "schlagworter",
        "stichworter",
        "mots cles",
        "etiquetas",
        "parole chiave",
        "trefwoorden",
    ),
    "tax_rate": (
        "vat",
        "vat rate",
        "tax",
        "tax rate",
        "mwst",
        "ust",
        "steuersatz",
        "tva",
        "taux tva",
        "iva",
        "btw",
    ),
    "country_of_origin": (
        "origin",
        "country of origin",
        "herkunftsland",
        "ursprungsland",
        "pays d origine",
        "pais de origen",
        "paese di origine",
    ),
    "model": ("model", "modell", "modele", "modelo", "modello"),
    "gender": ("gender", "geschlecht", "genre", "sexe", "genero", "genere"),
    "season": ("season", "saison", "temporada", "stagione"),
    "supplier": (
        "supplier",
        "vendor",
        "lieferant",
        "fournisseur",
        "proveedor",
        "fornitore",
        "leverancier",
        "dostawca",
    ),
}

_CONCEPT_OF: dict[str, str] = {
    phrase: concept for concept, phrases in FIELD_CONCEPTS.items() for phrase in phrases
}


def builtin_phrases(target: str) -> dict[str, float]:
    return {
        p: (DATABASE_ID_SYNONYM if p in _DATABASE_IDS else WEAK_SYNONYM)
        if p in _WEAK_BUILTIN_SYNONYMS[target]
        else 1.0
        for p in BUILTIN_SYNONYMS[target]
    }


def concept_of(header_norm: str) -> str | None:
    """The concept a normalised header names exactly ('sale price' → 'sale_price'), if any."""
    return _CONCEPT_OF.get(header_norm)


def phrases_of_field(f: FieldDef) -> dict[str, float]:
    """A field's own name and labels (weight 1), and the synonyms of its concept (a little less)."""
    own = {normalize_header(f.name), normalize_header(f.label)} | {
        normalize_header(v) for v in f.labels.values()
    }
    own.discard("")
    concepts = {_CONCEPT_OF[p] for p in own if p in _CONCEPT_OF}
    phrases = {p: FIELD_SYNONYM for concept in concepts for p in FIELD_CONCEPTS[concept]}
    return phrases | dict.fromkeys(own, 1.0)


@dataclass(frozen=True, slots=True)
class Match:
    score: float
    phrase: str  # the synonym, name or label that matched
    how: str  # "exact" | "similar" (a typo away) | "contained" (a phrase inside the header)


class Matcher:
    """Scores a normalised header against targets' phrases: exact, fuzzy (typos), contained phrase.

    Each phrase has a weight: 1.0 for a target's own name or label or a strong synonym, less for
    a weak synonym ("id" may be a SKU, or a database id).
    """

    def __init__(self, targets: dict[str, dict[str, float]]) -> None:
        self.by_phrase: dict[str, dict[str, float]] = {}
        for target, phrases in targets.items():
            for phrase, weight in phrases.items():
                self.by_phrase.setdefault(phrase, {})[target] = weight
        self.phrases = list(self.by_phrase)

    def matches(self, header_norm: str) -> dict[str, Match]:
        out: dict[str, Match] = {}
        if not header_norm:
            return out

        def offer(phrase: str, score: float, how: str) -> None:
            for target, weight in self.by_phrase[phrase].items():
                if score * weight > (out[target].score if target in out else 0.0):
                    out[target] = Match(round(score * weight, 3), phrase, how)

        if header_norm in self.by_phrase:
            offer(header_norm, 1.0, "exact")
        for phrase, score, _ in process.extract(
            header_norm, self.phrases, scorer=fuzz.ratio, score_cutoff=86, limit=20
        ):
            if len(phrase) >= 4 and len(header_norm) >= 4 and phrase != header_norm:
                offer(phrase, 0.92 * score / 100, "similar")
        words = header_norm.split()
        if len(words) > 1:  # "unit price eur" contains "unit price"
            for size in range(min(3, len(words) - 1), 0, -1):
                for i in range(len(words) - size + 1):
                    phrase = " ".join(words[i : i + size])
                    if len(phrase) >= 3 and phrase in self.by_phrase:
                        offer(phrase, 0.7 + 0.05 * size, "contained")
        return out


# --- headers that name codes -----------------------------------------------------------------

# A column whose header names an identifier keeps its values as text, whatever they look like:
# "02134", "1E7" and "1.20" are a ZIP code, a part number and a firmware version, not numbers.
_CODE_WORDS = frozenset(
    {
        "sku",
        "ean",
        "ean8",
        "ean13",
        "gtin",
        "gtin8",
        "gtin12",
        "gtin13",
        "gtin14",
        "upc",
        "isbn",
        "isbn10",
        "isbn13",
        "issn",
        "asin",
        "mpn",
        "jan",
        "barcode",
        "strichcode",
        "part",
        "partno",
        "article",
        "artikel",
        "articolo",
        "articulo",
        "artikelnr",
        "artnr",
        "zip",
        "zipcode",
        "postcode",
        "plz",
        "postleitzahl",
        "cp",
        "version",
        "firmware",
        "fw",
        "revision",
        "rev",
        "serial",
        "code",
        "codes",
        "codigo",
        "codice",
        "ref",
        "reference",
        "referenz",
        "referencia",
        "riferimento",
        "id",
        "identifier",
        "handle",
        "slug",
        "hs",
        "taric",
        "tariff",
        "phone",
        "telephone",
        "telefon",
        "tel",
        "fax",
        "iban",
        "bic",
        "swift",
        "model",
        "modell",
        "modele",
        "modelo",
        "modello",
    }
)
# ...unless the header names a quantity: "Part price", "Model year", "Code count"
_MEASURE_WORDS = frozenset(
    {
        "price",
        "preis",
        "prix",
        "precio",
        "prezzo",
        "cost",
        "kosten",
        "qty",
        "quantity",
        "stock",
        "bestand",
        "menge",
        "weight",
        "gewicht",
        "poids",
        "count",
        "anzahl",
        "amount",
        "betrag",
        "date",
        "datum",
        "year",
        "jahr",
        "width",
        "height",
        "length",
        "depth",
        "rate",
        "percent",
        "total",
        "sum",
    }
)
_NUMBER_WORDS = frozenset({"number", "no", "nr", "num", "numero", "nummer", "nbr", "n"})
_NUMBERED_THINGS = frozenset(
    {
        "item",
        "article",
        "artikel",
        "art",
        "part",
        "teile",
        "model",
        "serial",
        "serie",
        "order",
        "bestell",
        "catalog",
        "catalogue",
        "katalog",
        "product",
        "produkt",
        "produit",
        "manufacturer",
        "hersteller",
        "supplier",
        "lieferanten",
        "vendor",
        "material",
        "style",
        "reference",
        "customs",
        "tariff",
        "postal",
    }
)
# "code postal", "codigo postal", "postal code", "zip code": the words above already cover them


def code_header(header_norm: str) -> str | None:
    """The word of a normalised header that names an identifier ('ean', 'artikelnummer'), or None."""
    words = header_norm.split()
    if _MEASURE_WORDS.intersection(words):
        return None
    for word in words:
        if word in _CODE_WORDS or (len(word) > 6 and word.endswith("nummer")):
            return word
    if _NUMBER_WORDS.intersection(words) and _NUMBERED_THINGS.intersection(words):
        return " ".join(w for w in words if w in _NUMBER_WORDS or w in _NUMBERED_THINGS)
    return None
