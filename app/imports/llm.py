"""Optional second opinion on a column mapping from an OpenAI-compatible chat API (PIM_LLM_BASE_URL).

What the model sees (`llm_request_payload`), the answer's JSON schema, and how an answer is
folded into the local suggestion (`merge_llm_answer`: untrusted, validated, never over a
remembered, format or sure name match).

Asked with a strict JSON schema and a hard timeout inside the upload's time budget;
any failure (timeout, bad JSON, HTTP error) leaves the local suggestion alone.
"""

import asyncio
from typing import Any

import httpx
import orjson
import structlog

from app.catalog.fields import FieldDef, FieldType
from app.config import Settings
from app.imports.inference import Suggestion, fits
from app.imports.rows import BUILTIN_TARGETS

log = structlog.get_logger("pim.imports.llm")


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

LOCAL_CONFIDENCE_KEPT = (
    0.9  # name matches at least this sure (and remembered choices) are not overridden
)


def merge_llm_answer(suggestion: Suggestion, answer: Any, *, fields: list[FieldDef]) -> int:
    """Fold a model's answer into `suggestion` in place; returns how many columns changed.

    The answer is untrusted: unknown headers and taken targets are ignored. The model may move
    a column to a built-in or to a field the tenant has; it cannot rename a new field (a new
    field is named after its header) nor drop a column, and it never overrides a remembered
    choice, a known format's rule or a sure name match.
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("columns"), list):
        return 0
    field_map = {f.name: f for f in fields}
    by_header = {c.header: c for c in suggestion.columns}
    profiles = {p.header: p for p in suggestion.profiles}
    changed = 0
    for entry in answer["columns"]:
        if not isinstance(entry, dict) or entry.get("header") not in by_header:
            continue
        col = by_header[entry["header"]]
        target = entry.get("field")
        try:
            confidence = max(0.0, min(float(entry.get("confidence", 0.7)), 0.95))
        except (TypeError, ValueError):
            confidence = 0.7
        sure = col.source in ("remembered", "format") or (
            col.source == "matched" and col.confidence >= LOCAL_CONFIDENCE_KEPT
        )
        if sure or not isinstance(target, str) or target == col.suggested_field:
            continue
        if target not in BUILTIN_TARGETS and target not in field_map:
            continue
        if target in {c.suggested_field for c in suggestion.columns if c is not col}:
            continue
        old = col.suggested_field
        col.suggested_field, col.confidence, col.source = (
            target,
            round(max(confidence, 0.5), 2),
            "llm",
        )
        col.reason = f"suggested by the language model (instead of {old or 'skipping'!r})"
        if target in field_map and fits(profiles[col.header], field_map[target].type) < 1:
            col.warnings.append(
                f"some sampled values do not fit the field {target!r}: those rows would be rejected"
            )
        suggestion.new_fields = [f for f in suggestion.new_fields if f.name != old]
        changed += 1
    return changed


SYSTEM_PROMPT = (
    "You map the columns of a supplier's product CSV to a PIM schema. For every column return the target: "
    "one of builtin_targets (sku: the unique product code; name: the product title; status; categories: "
    "category paths like 'Men > Shoes'; variation_of: the parent product's SKU), an existing schema field "
    "name, or null to keep the local suggestion (a column that is none of these becomes a new field named "
    "after its header). Give the type you read in the values and your confidence 0..1. Use each target at most once."
)


async def ask_llm(
    settings: Settings, suggestion: Suggestion, fields: list[FieldDef], *, timeout: float
) -> Any:
    """The model's parsed answer, or None."""
    if not settings.llm_base_url or timeout <= 0.05:
        return None
    body = {
        "model": settings.llm_model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": orjson.dumps(llm_request_payload(suggestion, fields)).decode(),
            },
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "csv_column_mapping",
                "strict": True,
                "schema": LLM_ANSWER_SCHEMA,
            },
        },
    }
    headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
    url = settings.llm_base_url.rstrip("/") + "/chat/completions"
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=httpx.Timeout(timeout)) as http,
        ):
            response = await http.post(url, json=body, headers=headers)
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
            return orjson.loads(content)
    except (TimeoutError, httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        log.warning("llm_suggestion_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        return None
