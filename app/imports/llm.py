"""Optional second opinion on a column mapping from an OpenAI-compatible chat API (PIM_LLM_BASE_URL).

Asked with a strict JSON schema and a hard timeout inside the upload's time budget;
any failure (timeout, bad JSON, HTTP error) leaves the local suggestion alone.
"""

import asyncio
from typing import Any

import httpx
import orjson
import structlog

from app.catalog.fields import FieldDef
from app.config import Settings
from app.imports.inference import LLM_ANSWER_SCHEMA, Suggestion, llm_request_payload

log = structlog.get_logger("pim.imports.llm")

SYSTEM_PROMPT = (
    "You map the columns of a supplier's product CSV to a PIM schema. For every column return the target: "
    "one of builtin_targets (sku: the unique product code; name: the product title; status; categories: "
    "category paths like 'Men > Shoes'; variation_of: the parent product's SKU), an existing schema field "
    "name, a new snake_case field name (^[a-z][a-z0-9_]{0,62}$, English), or null to skip the column. "
    "Give the field type for new fields and your confidence 0..1. Use each target at most once."
)


async def ask_llm(settings: Settings, suggestion: Suggestion, fields: list[FieldDef], *, timeout: float) -> Any:
    """The model's parsed answer, or None."""
    if not settings.llm_base_url or timeout <= 0.05:
        return None
    body = {
        "model": settings.llm_model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": orjson.dumps(llm_request_payload(suggestion, fields)).decode()},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "csv_column_mapping", "strict": True, "schema": LLM_ANSWER_SCHEMA},
        },
    }
    headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
    url = settings.llm_base_url.rstrip("/") + "/chat/completions"
    try:
        async with asyncio.timeout(timeout), httpx.AsyncClient(timeout=httpx.Timeout(timeout)) as http:
            response = await http.post(url, json=body, headers=headers)
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
            return orjson.loads(content)
    except (TimeoutError, httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        log.warning("llm_suggestion_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        return None
