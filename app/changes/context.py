"""Who is writing: the change log's actor, request id and import job, for the log's triggers.

The triggers (migration h2_changes_1) read the transaction-local setting `pim.change`. A session
whose `info["change_context"]` is set (a request's session, `app/deps.py`; an import batch,
`app/imports/tasks.py`) sets it when its transaction begins, so every write path of that session
is attributed without each one having to remember.
"""

from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.db import all_tenants
from app.middleware import current_request_id

CONTEXT_KEY = "change_context"

# An API key's actor is named after the key, read in the same statement that sets the context.
_SET_CONTEXT = text(
    all_tenants(  # the caller's own key, by its id
        """SELECT set_config('pim.change', CASE WHEN CAST(:key_id AS bigint) IS NULL THEN CAST(:ctx AS text)
           ELSE jsonb_set(CAST(:ctx AS jsonb), '{actor,name}',
                          COALESCE(to_jsonb((SELECT name FROM api_keys WHERE id = CAST(:key_id AS bigint))), 'null'))::text
           END, true)"""
    )
)


def request_context(principal: Principal) -> dict[str, Any]:
    """A request's context: its caller and its X-Request-ID (bound by RequestContextMiddleware)."""
    if principal.api_key_id is not None:
        actor = {"type": "api_key", "id": principal.api_key_id, "name": None}
    else:
        actor = {"type": "token", "id": principal.subject, "name": None}
    return {"actor": actor, "request_id": current_request_id(), "import_job_id": None}


def import_context(job_id: Any) -> dict[str, Any]:
    return {
        "actor": {"type": "import", "id": str(job_id), "name": None},
        "request_id": None,
        "import_job_id": str(job_id),
    }


@event.listens_for(Session, "after_begin")
def _set_change_context(session: Session, _transaction, connection) -> None:
    context = session.info.get(CONTEXT_KEY)
    if context is None:
        return
    key_id = context["actor"]["id"] if context["actor"]["type"] == "api_key" else None
    connection.execute(_SET_CONTEXT, {"ctx": orjson.dumps(context).decode(), "key_id": key_id})
