"""Generate the Postman collection (docs/postman/pim.postman_collection.json) from the OpenAPI document.

    .venv/bin/python scripts/postman.py [--spec-url http://127.0.0.1:8000/openapi.json] [--output PATH]

Postman's own converter (openapi-to-postmanv2, pinned in tools/node/package.json, installed by
scripts/node-tools.sh) turns the document into requests with the examples as values. Then the
requests are put in the document's tour order (`x-example-order`: schema, creates, reads, updates,
an import, reverts, deletes), and the tour is made runnable with the base URL and an API key
alone: the key is the collection's auth (`X-API-Key: {{apiKey}}`); a create's test script stores
the ids its answer gives, as the document's `links` say, and the requests those links lead to
read them (`{{product_id}}`); a request with `x-example-wait` first polls a read until a
background job is done; every request tests for a 2xx. The CSV upload sends `products.csv`
beside the collection (run newman with `--working-dir docs/postman`).

Without `--spec-url` the document is built from the app itself (no server needed).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NODE_BIN = ROOT / "tools" / "node" / "node_modules" / ".bin"
OUTPUT = ROOT / "docs" / "postman" / "pim.postman_collection.json"
CSV_NAME = "products.csv"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
CONVERTER_OPTIONS = ",".join(
    [
        "parametersResolution=Example",  # the examples, not "<string>" placeholders
        "folderStrategy=Tags",
        "enableOptionalParameters=false",  # only the parameters the tour sets are sent
        "alwaysInheritAuthentication=true",
        "requestNameSource=Fallback",  # the operation's summary
    ]
)


def load_spec(url: str | None) -> dict[str, Any]:
    if url:
        import httpx

        return httpx.get(url, timeout=30).raise_for_status().json()
    sys.path.insert(0, str(ROOT))
    os.environ.pop("PIM_PUBLIC_URL", None)  # the shipped collection names no host
    from app.main import create_app

    return create_app().openapi()


def convert(spec: dict[str, Any]) -> dict[str, Any]:
    converter = NODE_BIN / "openapi2postmanv2"
    if not converter.exists():
        raise SystemExit(f"{converter} is missing: run scripts/node-tools.sh")
    with tempfile.TemporaryDirectory() as tmp:
        spec_file, out_file = Path(tmp, "openapi.json"), Path(tmp, "collection.json")
        spec_file.write_text(json.dumps(spec))
        subprocess.run(
            [str(converter), "-s", str(spec_file), "-o", str(out_file), "-O", CONVERTER_OPTIONS],
            check=True,
            capture_output=True,
            timeout=300,
        )
        return json.loads(out_file.read_text())


def _requests(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in items:
        found.extend(_requests(item["item"]) if "item" in item else [item])
    return found


def _key(method: str, path: list[str]) -> tuple[str, str]:
    return method.upper(), "/".join(":" if part[:1] in ":{" else part for part in path)


def _script(lines: list[str]) -> dict[str, Any]:
    return {"type": "text/javascript", "exec": lines}


def _url_js(path: str) -> str:
    """A JavaScript expression of the URL of `path` ("/api/x/{id}/") with the stored variables."""
    parts = [
        f"pm.variables.get({json.dumps(part[1:-1])})" if part.startswith("{") else json.dumps(part)
        for part in path.split("/")
    ]
    return 'pm.variables.get("baseUrl") + ' + ' + "/" + '.join(parts)


def _wait_script(wait: dict[str, Any], path: str) -> list[str]:
    return [
        "// wait (at most 60 s) until the background job this request reads is done",
        f"const url = {_url_js(path)};",
        f"const field = {json.dumps(wait['field'])}, done = {json.dumps(wait['in'])};",
        "const deadline = Date.now() + 60000;",
        "function poll() {",
        "  pm.sendRequest({url: url, header: {'X-API-Key': pm.variables.get('apiKey')}},",
        "    (err, res) => {",
        "      if (!err && done.includes(res.json()[field])) return;",
        "      if (Date.now() > deadline) throw new Error('still waiting for ' + url);",
        "      setTimeout(poll, 250);",
        "    });",
        "}",
        "poll();",
    ]


def build(spec: dict[str, Any], base_url: str) -> dict[str, Any]:
    collection = convert(spec)
    by_key = {
        _key(r["request"]["method"], r["request"]["url"]["path"]): r
        for r in _requests(collection["item"])
    }
    operations = sorted(
        (
            (operation, method, path)
            for path, item in spec["paths"].items()
            for method, operation in item.items()
        ),
        key=lambda found: found[0]["x-example-order"],
    )
    paths = {op["operationId"]: path for op, _method, path in operations}
    # the path parameters an earlier answer gives, by operation
    linked: dict[str, set[str]] = {}
    for operation, _method, _path in operations:
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                linked.setdefault(link["operationId"], set()).update(link["parameters"])
    ordered = []
    for operation, method, path in operations:
        request = by_key.pop(_key(method, path[1:].split("/")))
        http = request["request"]
        http.pop("auth", None)  # inherits the collection's key
        if not operation.get("security"):
            http["auth"] = {"type": "noauth"}
        # the query: only the parameters the document gives an example for (the tour's)
        examples: dict[str, Any] = {}
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query" and "example" in parameter:
                if parameter["schema"].get("type") == "object":
                    examples.update(parameter["example"])
                else:
                    examples[parameter["name"]] = parameter["example"]
        http["url"]["query"] = [
            {"key": name, "value": str(value)} for name, value in examples.items()
        ]
        for variable in http["url"].get("variable", []):
            if variable["key"] in linked.get(operation["operationId"], ()):
                variable["value"] = "{{" + variable["key"] + "}}"
        body = http.get("body") or {}
        if body.get("mode") == "formdata":
            body["formdata"] = [{"key": "file", "type": "file", "src": CSV_NAME}]
        events = []
        wait = operation.get("x-example-wait")
        if wait:
            script = _wait_script(wait, paths[wait["operationId"]])
            events.append({"listen": "prerequest", "script": _script(script)})
        tests = [
            f"pm.test({json.dumps(operation['operationId'] + ' answers 2xx')}, () => {{",
            "  pm.expect(pm.response.code).to.be.within(200, 299);",
            "});",
        ]
        for status, response in operation["responses"].items():
            for link in response.get("links", {}).values() if status.startswith("2") else ():
                for name, expression in link["parameters"].items():
                    pointer = expression.removeprefix("$response.body#/").split("/")
                    getter = "".join(f"[{json.dumps(p)}]" for p in pointer)
                    line = f"pm.collectionVariables.set({json.dumps(name)}, pm.response.json(){getter});"
                    if line not in tests:
                        tests.append(line)
        events.append({"listen": "test", "script": _script(tests)})
        request["event"] = events
        request.pop("response", None)  # the examples are in the document; keep the file small
        request["id"] = operation[
            "operationId"
        ]  # not a random UUID: the same document, the same file
        ordered.append(request)
    assert not by_key, f"requests of no operation: {sorted(by_key)}"
    collection["item"] = ordered
    collection["auth"] = {
        "type": "apikey",
        "apikey": [
            {"key": "key", "value": "X-API-Key", "type": "string"},
            {"key": "value", "value": "{{apiKey}}", "type": "string"},
            {"key": "in", "value": "header", "type": "string"},
        ],
    }
    collection["variable"] = [
        {"key": "baseUrl", "value": base_url, "type": "string"},
        {"key": "apiKey", "value": "", "type": "string"},
    ]
    collection["info"].pop("_postman_id", None)  # the same document gives the same file
    collection["info"]["description"] = {
        "content": "Set `baseUrl` and `apiKey` (an admin key of a fresh tenant) and run the "
        "collection in order: the requests are the OpenAPI document's examples, which work together.",
        "type": "text/plain",
    }
    return collection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec-url", help="read /openapi.json from a server instead of the app")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL)
    args = parser.parse_args()
    spec = load_spec(args.spec_url)
    collection = build(spec, args.base_url)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(collection, indent=1, ensure_ascii=False) + "\n")
    csv = spec["paths"]["/api/pim/import/csv/"]["post"]["requestBody"]["content"]
    (args.output.parent / CSV_NAME).write_text(csv["multipart/form-data"]["example"]["file"])
    print(f"{args.output}: {len(collection['item'])} requests")


if __name__ == "__main__":
    main()
