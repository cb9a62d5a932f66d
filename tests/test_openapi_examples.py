"""The OpenAPI document's examples work: sent in `x-example-order` to a live server on a fresh
tenant, with the ids an earlier answer gives through the document's `links`, every operation
answers 2xx. And every operation, request body and success response carries what a reader and a
generated client need: a summary, a description, examples.

`PIM_RECORD_EXAMPLES=1` writes the answers to `app/openapi_responses.json`, the document's
response examples.
"""

import json
import os
import time
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.openapi_examples import ORDER_EXTENSION, RESPONSES_FILE, WAIT_EXTENSION
from tests.hardening.live_server import LiveServer, live_server

RECORD = os.environ.get("PIM_RECORD_EXAMPLES") == "1"


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) in the tour's order."""
    found = [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]
    return sorted(found, key=lambda found: found[2][ORDER_EXTENSION])


def _pointer(body: Any, expression: str) -> Any:
    assert expression.startswith("$response.body#/"), expression
    for part in expression.removeprefix("$response.body#/").split("/"):
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


class Walk:
    """Sends each operation's examples, filling path parameters from the links followed so far."""

    def __init__(self, http: httpx.Client, spec: dict[str, Any]):
        self.http = http
        self.spec = spec
        self.by_id = {op["operationId"]: (m, p, op) for m, p, op in operations(spec)}
        self.linked: dict[str, dict[str, Any]] = {}
        self.answers: dict[str, dict[str, Any]] = {}

    def path_of(self, operation_id: str) -> str:
        _method, path, operation = self.by_id[operation_id]
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                name = parameter["name"]
                value = self.linked.get(operation_id, {}).get(name, parameter["example"])
                path = path.replace("{" + name + "}", str(value))
        return path

    def query_of(self, operation: dict[str, Any]) -> dict[str, Any]:
        query: dict[str, Any] = {}
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query" or "example" not in parameter:
                continue
            if parameter["schema"].get("type") == "object" and parameter.get("explode", True):
                query.update(parameter["example"])
            else:
                query[parameter["name"]] = parameter["example"]
        return query

    def wait(self, operation: dict[str, Any], timeout: float = 60) -> None:
        wait = operation.get(WAIT_EXTENSION)
        if wait is None:
            return
        url = self.path_of(wait["operationId"])
        deadline = time.monotonic() + timeout
        while True:
            state = self.http.get(url).json()[wait["field"]]
            if state in wait["in"]:
                return
            assert time.monotonic() < deadline, (url, state)
            time.sleep(0.2)

    def send(self, method: str, operation: dict[str, Any]) -> httpx.Response:
        self.wait(operation)
        kwargs: dict[str, Any] = {"params": self.query_of(operation)}
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            kwargs["json"] = content["application/json"]["example"]
        elif "multipart/form-data" in content:
            kwargs["files"] = {
                name: ("example.csv", value.encode(), "text/csv")
                for name, value in content["multipart/form-data"]["example"].items()
            }
        response = self.http.request(method, self.path_of(operation["operationId"]), **kwargs)
        status = str(response.status_code)
        declared = operation["responses"].get(status, {})
        if response.content and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            body = response.json()
            for link in declared.get("links", {}).values():
                self.linked.setdefault(link["operationId"], {}).update(
                    {name: _pointer(body, expr) for name, expr in link["parameters"].items()}
                )
            self.answers.setdefault(operation["operationId"], {})[status] = body
        elif response.headers.get("content-type", "").startswith("text/csv"):
            self.answers.setdefault(operation["operationId"], {})[status] = response.text
        return response


@pytest.fixture(scope="module")
def server():
    with live_server(timeout=120) as running:
        yield running


async def test_examples_work_together_on_a_fresh_tenant(server: LiveServer, make_tenant, worker):
    tenant = await make_tenant("tour")
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    with httpx.Client(base_url=server.url, headers=tenant.admin, timeout=30) as http:
        walk = Walk(http, spec)
        sent = []
        for method, _path, operation in operations(spec):
            response = walk.send(method, operation)
            sent.append(operation["operationId"])
            assert 200 <= response.status_code < 300, (
                operation["operationId"],
                response.status_code,
                response.text[:2000],
            )
        assert len(sent) == len(walk.by_id)
        # the stories the examples tell happened: the import and the segment compute finished
        assert walk.answers["get_pims_products"]["200"]["status"] == "OK"
        assert walk.answers["list_segment_members"]["200"]["count"] >= 1
        assert walk.answers["revert_import"]["200"]["reverted"] == 1
        assert walk.answers["revert_bulk"]["200"]["reverted"] == 2
        # the confirm's other answer: a dry run (200) of the same upload, which writes nothing
        _method, _path, upload = walk.by_id["upload_import_csv"]
        walk.send("post", upload)
        _method, _path, confirm = walk.by_id["confirm_import_job"]
        confirm = json.loads(json.dumps(confirm))
        example = confirm["requestBody"]["content"]["application/json"]["example"]
        example["dry_run"] = True
        assert walk.send("post", confirm).status_code == 200
        assert walk.answers["confirm_import_job"]["200"]["dry_run"]["create"] == 1
    assert server.server_errors() == []
    if RECORD:
        answers = walk.answers
        answers["create_api_key"]["201"]["api_key"] = "pim_" + "0" * 40
        RESPONSES_FILE.write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")


def test_every_operation_is_documented_with_examples():
    spec = create_app().openapi()
    problems = []
    for method, path, operation in operations(spec):
        where = f"{method.upper()} {path}"
        for key in ("summary", "description", "tags", ORDER_EXTENSION):
            if not operation.get(key):
                problems.append(f"{where}: no {key}")
        if "requestBody" in operation and not operation["requestBody"].get("description"):
            problems.append(f"{where}: request body without a description")
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            if "example" not in content:
                problems.append(f"{where}: request {media_type} without an example")
        for status, response in operation["responses"].items():
            if not status.startswith("2"):
                continue
            for media_type, content in response.get("content", {}).items():
                if "example" not in content:
                    problems.append(f"{where}: {status} {media_type} without an example")
    assert problems == []
    assert [tag["name"] for tag in spec["tags"]] and all(t["description"] for t in spec["tags"])
    assert spec["servers"][0]["url"] == "/"
