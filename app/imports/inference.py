"""Pure: a sampled CSV → a suggested mapping and schema; every column says why, and what would fail.

The sample is the start of the file (`sniffing.analyse_sample`) plus rows from windows in its
middle and end (`sniffing.rows_in_window`), so the cost does not grow with the file. For each
column the target is, in this order of preference:

1. what the tenant confirmed before for the same header (remembered);
2. what a known export format says of the header (`formats.py`: Shopify's `Variant SKU` is the
   SKU, WooCommerce's `ID` is not);
3. a built-in (sku, name, status, categories, variation_of) by multilingual synonyms, checked
   against the values (a SKU column is unique and code-like, categories are short paths);
4. a field the tenant already has, by its name, labels and the synonyms of its concept;
5. a new field named after the header itself (`in_stock` stays `in_stock`).

Each column gets a `reason` (the rule or synonym that decided its target, and its type's reason
from `profiling.py`) and `warnings` (sampled values the import would reject, thin evidence).
"""

from dataclasses import dataclass, field
from typing import Any

from app.catalog.fields import FieldDef, FieldType, name_problem
from app.catalog.values import read_text
from app.imports.conventions import Conventions, detect_conventions
from app.imports.formats import FORMAT_CONVENTIONS, STATUS_VALUES, column_rules, detect_format
from app.imports.headers import (
    Matcher,
    builtin_phrases,
    code_header,
    concept_of,
    header_key,
    normalize_header,
    phrases_of_field,
    snake_name,
)
from app.imports.profiling import (
    LOW,
    THIN,
    URL_RE,
    ColumnProfile,
    count,
    force_type,
    names_decimal,
    profile_column,
    readable,
    share,
)
from app.imports.rows import (
    BUILTIN_TARGETS,
    STATUS_WORDS,
    is_null_token,
    read_status,
)
from app.imports.sniffing import SampleAnalysis

BUILTIN_MIN_SCORE = 0.55
FIELD_MIN_SCORE = 0.75


@dataclass
class ColumnSuggestion:
    header: str
    samples: list[str]
    inferred_type: str
    suggested_field: str | None
    confidence: float
    source: str = "new"  # remembered | format | matched (by name) | profile (by the values) | new (header as name) | llm
    reason: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class Suggestion:
    columns: list[ColumnSuggestion]
    new_fields: list[FieldDef]
    conventions: Conventions
    profiles: list[ColumnProfile]
    format: str | None = None
    # per header: cell word → value the import uses unless confirm says otherwise (status words)
    value_mapping: dict[str, dict[str, str]] = field(default_factory=dict)

    def mapping(self) -> dict[str, str | None]:
        return {c.header: c.suggested_field for c in self.columns}

    def schema(self, fields: list[FieldDef]) -> list[dict[str, Any]]:
        used = {c.suggested_field for c in self.columns}
        return [f.model_dump() for f in fields] + [
            f.model_dump() for f in self.new_fields if f.name in used
        ]


def fits(profile: ColumnProfile, ftype: FieldType) -> float:
    """Share of the sampled values that a field of `ftype` accepts."""
    if (
        ftype in (FieldType.string, FieldType.text, FieldType.enum, FieldType.array)
        or not profile.values
    ):
        return 1.0
    if ftype == FieldType.url:
        return share(profile.values, lambda v: bool(URL_RE.match(v)))
    typed = [v for v in profile.values if not is_null_token(v)]
    return readable(typed, lambda v: read_text(ftype, v, profile.conventions))


# --- built-ins -------------------------------------------------------------------------------


def _builtin_candidate(target: str, match, p: ColumnProfile) -> tuple[float, str] | None:
    """(score, reason) of a column for a built-in target, from its header's match and its values."""
    name_score = match.score if match else 0.0
    by_name = _match_reason(match, f"the built-in {target}") if match else ""
    if target == "sku":
        if match:
            if p.unique >= 0.5 and p.code_like >= 0.5:
                return name_score, by_name
            return name_score * 0.6, f"{by_name}, but the values are not unique codes"
        if p.values and p.fill >= 0.95 and p.unique >= 0.95 and p.code_like >= 0.9:
            return 0.55, "the values look like SKUs (unique codes in every row)"
        return None
    if target == "name":
        if p.markup:
            return None
        if match:
            return name_score, by_name
        textual = (
            p.type in (FieldType.string, FieldType.text)
            and p.with_spaces >= 0.5
            and p.unique >= 0.8
        )
        return (
            (0.55, "the values look like product names (unique text)")
            if textual and p.values
            else None
        )
    if target == "status":
        if name_score < 0.85 or not p.values:
            return None
        words, unknown = status_words(p.values, p.conventions)
        if not unknown:
            return name_score, f"{by_name}, and every sampled value is a status" + (
                " or a status word" if words else ""
            )
        if len(unknown) <= len(p.values) / 2:
            return min(name_score, LOW), f"{by_name}, and most sampled values are statuses"
        return None
    if target == "categories":
        if p.markup or p.type == FieldType.text:
            return None  # HTML or long text is never a category path
        if match and (p.path_like >= 0.5 or max(map(len, p.values), default=0) <= 100):
            return name_score, by_name
        if p.path_like >= 0.5:
            return 0.7, "the values are category paths ('A > B')"
        return None
    if target == "variation_of":
        return (name_score, by_name) if match and p.code_like >= 0.8 else None
    return None


def status_words(
    values: list[str], conventions: Conventions, *, fmt: str | None = None
) -> tuple[dict[str, str], list[str]]:
    """The status words of a column's values (STATUS_WORDS; the format's STATUS_VALUES always)
    as a value mapping, and the values that are no status under it (each once)."""
    fixed = STATUS_VALUES.get(fmt or "", {})
    words = dict(fixed)
    unknown: dict[str, None] = {}
    for value in values:
        if value.strip().casefold() in fixed:
            continue
        try:
            read_status(value, conventions)
            continue
        except ValueError:
            pass
        word = value.strip().casefold()
        if word in STATUS_WORDS:
            words.setdefault(word, STATUS_WORDS[word])
        else:
            unknown[value] = None
    return words, list(unknown)


def _match_reason(match, what: str) -> str:
    if match.how == "exact":
        return f"the header is {match.phrase!r}, a name of {what}"
    if match.how == "similar":
        return f"the header is close to {match.phrase!r}, a name of {what}"
    return f"the header contains {match.phrase!r}, a name of {what}"


# --- the suggestion --------------------------------------------------------------------------


def suggest(
    analysis: SampleAnalysis,
    *,
    fields: list[FieldDef],
    remembered: dict[str, str | None] | None = None,
    conventions: Conventions | None = None,
    windows: list[list[str]] | None = None,
    locale: str = "en-us",
    currency: str = "USD",
    total_rows: int | None = None,
) -> Suggestion:
    """Suggest a target for every column; see the module docstring for the order of preference.

    Values are read under the file's `conventions` (detected from the sample when not given; a
    known format's separators win). `windows` are rows read from the middle and end of a file the
    sample does not cover whole; `locale` and `currency` are the tenant's defaults (Akeneo's
    localised and price columns). `total_rows`: the file's estimated data rows, for the warning
    of a column whose type may reject rows the sample did not show.
    """
    remembered = remembered or {}
    windows = windows or []
    headers = analysis.headers
    norms = [normalize_header(h) for h in headers]
    if conventions is None:
        conventions = detect_conventions(
            analysis.rows + windows,
            encoding=analysis.encoding,
            delimiter=analysis.dialect.delimiter,
        )
    fmt = detect_format(headers)
    if fmt in FORMAT_CONVENTIONS:
        conventions = conventions.updated(FORMAT_CONVENTIONS[fmt])
    rules = column_rules(fmt, headers, locale=locale, currency=currency)
    head_cells = [
        [row[i] if i < len(row) else "" for row in analysis.rows] for i in range(len(headers))
    ]
    later_cells = [[row[i] for row in windows] for i in range(len(headers))]
    decimal_evidence = any(
        names_decimal([c.strip() for c in head_cells[i] + later_cells[i] if c.strip()])
        for i in range(len(headers))
        if not code_header(norms[i])
    )
    profiles = []
    for i, h in enumerate(headers):
        p = profile_column(
            h,
            head_cells[i],
            window_cells=later_cells[i],
            conventions=conventions,
            complete=analysis.complete,
            header_norm=norms[i],
            decimal_evidence=decimal_evidence,
        )
        rule = rules.get(h)
        if rule and rule.type and p.values:
            force_type(p, rule.type)
        profiles.append(p)

    field_map = {f.name: f for f in fields}
    # per column: (target, confidence, source, reason)
    chosen: dict[int, tuple[str | None, float, str, str]] = {}
    used: set[str] = set()
    new_names: dict[int, str] = {}

    # 1. what the tenant confirmed before for the same header
    for i, h in enumerate(headers):
        key = header_key(h)
        if key not in remembered:
            continue
        target = remembered[key]
        why = f"remembered: this tenant mapped {h!r} to {target or 'nothing (skipped)'} when confirming an earlier import"
        if target is None:
            chosen[i] = (None, 1.0, "remembered", why)
        elif target in used:
            continue
        elif target in BUILTIN_TARGETS or target in field_map or not name_problem(target):
            chosen[i] = (target, 1.0, "remembered", why)
            used.add(target)
            if target not in BUILTIN_TARGETS and target not in field_map:
                new_names[i] = target

    # 2. the export format's built-ins and skipped columns
    for i, h in enumerate(headers):
        rule = rules.get(h)
        if i in chosen or rule is None:
            continue
        if rule.skip:
            chosen[i] = (None, 0.9, "format", rule.reason)
        elif rule.builtin and rule.builtin not in used:
            p = profiles[i]
            if (
                rule.builtin == "status"
                and fmt not in STATUS_VALUES  # the format's status: other values reject their row
                and p.values
                and status_words(p.values, conventions, fmt=fmt)[1]
            ):
                continue  # values the status cannot hold: the column becomes a field of its own
            chosen[i] = (rule.builtin, 0.95, "format", rule.reason)
            used.add(rule.builtin)

    # 3. built-ins and the tenant's fields by name, label and synonyms
    matcher = Matcher(
        {
            **{t: builtin_phrases(t) for t in BUILTIN_TARGETS},
            **{name: phrases_of_field(f) for name, f in field_map.items()},
        }
    )
    candidates: list[tuple[float, int, str, str, str]] = []
    for i, p in enumerate(profiles):
        if i in chosen:
            continue
        rule = rules.get(headers[i])
        matches = matcher.matches(norms[i])
        if rule is None:  # a column the format knows is no other built-in than the one it names
            for target in BUILTIN_TARGETS:
                found = _builtin_candidate(target, matches.get(target), p)
                if found and found[0] >= BUILTIN_MIN_SCORE:
                    source = "matched" if target in matches else "profile"
                    candidates.append((found[0], -i, target, source, found[1]))
        named = concept_of(norms[i])
        for target, match in matches.items():
            if named and match.how != "exact" and concept_of(match.phrase) != named:
                continue  # "Sale price" names a concept of its own: it is not a typo of "sales price"
            if target in field_map and match.score >= FIELD_MIN_SCORE:
                f = field_map[target]
                fit = fits(p, f.type)
                score = match.score if fit >= 0.9 else match.score * 0.6
                if score >= FIELD_MIN_SCORE:
                    why = _match_reason(match, f"the field {target!r}")
                    candidates.append((score, -i, target, "matched", why))
    for score, neg_i, target, source, why in sorted(candidates, reverse=True):
        i = -neg_i
        if i in chosen or target in used:
            continue
        chosen[i] = (target, round(min(score, 0.99), 2), source, why)
        used.add(target)

    # 4. the rest become new fields named after their header (or as the format names them)
    taken = set(field_map) | used | set(BUILTIN_TARGETS)
    new_fields: list[FieldDef] = []
    for i, p in enumerate(profiles):
        if i in chosen and i not in new_names:
            continue
        if i in new_names:
            name = new_names[i]
        else:
            if not p.values and analysis.complete:
                chosen[i] = (None, 0.5, "new", "the column has no values: skipped")
                continue
            rule = rules.get(headers[i])
            wanted = rule.name if rule and rule.name and not name_problem(rule.name) else None
            if rule is not None and wanted in field_map and wanted not in used:
                chosen[i] = (
                    wanted,
                    0.9,
                    "format",
                    f"{rule.reason}; the schema has the field {wanted!r}",
                )
                used.add(wanted)
                continue
            name = wanted if wanted and wanted not in taken else snake_name(headers[i], taken=taken)
            why = (
                rule.reason
                if rule
                else "no field of the schema matches: a new field named after the header"
            )
            chosen[i] = (name, 0.9, "format" if rule else "new", why)
        taken.add(name)
        new_fields.append(field_for(name, headers[i], p))

    columns = []
    value_mapping: dict[str, dict[str, str]] = {}
    for i, h in enumerate(headers):
        target, confidence, source, why = chosen[i]
        p = profiles[i]
        warnings = list(p.warnings)
        if target in field_map:
            f = field_map[target]
            fit = fits(p, f.type)
            if fit < 1:
                bad = round(len(p.values) * (1 - fit))
                warnings.append(
                    f"{bad:,} of {len(p.values):,} sampled values do not fit the field {target!r} ({f.type.value}): "
                    "those rows would be rejected"
                )
            reason = f"{why}; the field's type is {f.type.value}"
            if source != "remembered":
                confidence = min(confidence, 1.0 if fit == 1 else LOW)
        elif target == "status":
            reason, warnings = why, []  # the type's warnings are not the built-in's
            words, unknown = status_words(p.values, conventions, fmt=fmt)
            if words:
                value_mapping[h] = words
                reason += "; the suggested value_mapping reads " + ", ".join(
                    f"{w!r} as {s}" for w, s in words.items()
                )
            if unknown:
                confidence = min(confidence, LOW)
                warnings.append(
                    f"{len(unknown):,} sampled values are no status (e.g. {unknown[0][:60]!r}): "
                    "those rows would be rejected; map them with value_mapping"
                )
        elif target is None or target in BUILTIN_TARGETS:
            reason, warnings = why, []  # the type's warnings are not the built-in's
        else:
            reason = f"{why}; {p.reason}"
            if source != "remembered":
                confidence = min(confidence, p.confidence)
        ftype = field_map[target].type if target in field_map else p.type
        if (
            not analysis.complete
            and target is not None
            and target not in BUILTIN_TARGETS
            and ftype in _REJECTING_TYPES
        ):
            confidence = min(confidence, SAMPLED)
            warnings.append(sampled_note(len(analysis.rows) + len(windows), total_rows, windows))
        if target is not None and source not in ("remembered", "format") and len(p.values) < THIN:
            confidence = min(confidence, 0.55)
            if not any(w.startswith("only ") for w in warnings):
                warnings.append(f"only {count(len(p.values), 'value')} in the sample")
        columns.append(
            ColumnSuggestion(
                header=h,
                samples=p.samples,
                inferred_type=p.type.value,
                suggested_field=target,
                confidence=round(confidence, 2),
                source=source,
                reason=reason,
                warnings=warnings,
            )
        )
    return Suggestion(
        columns=columns,
        new_fields=new_fields,
        conventions=conventions,
        profiles=profiles,
        format=fmt,
        value_mapping=value_mapping,
    )


# the types whose reading can reject a row: a sample cannot vouch for the rows it did not read
_REJECTING_TYPES = frozenset(
    {
        FieldType.number,
        FieldType.integer,
        FieldType.boolean,
        FieldType.date,
        FieldType.datetime,
        FieldType.enum,
        FieldType.url,
    }
)
SAMPLED = 0.8  # the most a type can claim of a file the suggestion read only in part


def sampled_note(read: int, total: int | None, windows: list) -> str:
    where = "its start, middle and end" if windows else "its start"
    about = f" of about {total:,}" if total and total > read else ""
    return (
        f"the suggestion sampled {read:,}{about} rows of the file ({where}): rows it did not read may "
        'hold values this type rejects; a dry run (confirm with "dry_run": true) reads every row'
    )


def field_for(name: str, header: str, p: ColumnProfile, ftype: FieldType | None = None) -> FieldDef:
    """The new field for a column: its name, the column's type (or `ftype`), the header as label."""
    ftype = ftype or p.type
    return FieldDef(
        name=name,
        type=ftype,
        label=header[:200],
        options=p.options if ftype == FieldType.enum else None,
        searchable=ftype in (FieldType.string, FieldType.text),
    )
