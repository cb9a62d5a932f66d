"""The shipped Postman collection (docs/postman) is the one scripts/postman.py generates from the
current OpenAPI document, and newman runs it green against a live server and worker with only
`baseUrl` and `apiKey` set (an admin key of a fresh tenant)."""

import json
import subprocess
import sys

import pytest

from tests.hardening.live_server import LiveServer, live_server
from tests.hardening.node_tools import ROOT, node_tool

COLLECTION = ROOT / "docs" / "postman" / "pim.postman_collection.json"


@pytest.fixture(scope="module")
def server():
    with live_server(timeout=120) as running:
        yield running


def test_shipped_collection_is_current(tmp_path):
    node_tool("openapi2postmanv2")
    out = tmp_path / "collection.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "postman.py"), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(out.read_text()) == json.loads(COLLECTION.read_text()), (
        "docs/postman is stale: run .venv/bin/python scripts/postman.py"
    )
    variables = {v["key"] for v in json.loads(COLLECTION.read_text())["variable"]}
    assert variables == {"baseUrl", "apiKey"}


async def test_newman_runs_the_collection_green(server: LiveServer, make_tenant, worker, tmp_path):
    newman = node_tool("newman")
    tenant = await make_tenant("postman")
    report = tmp_path / "newman.json"
    done = subprocess.run(
        [
            str(newman),
            "run",
            str(COLLECTION),
            "--env-var",
            f"baseUrl={server.url}",
            "--env-var",
            f"apiKey={tenant.keys['admin']}",
            "--working-dir",
            str(COLLECTION.parent),
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report),
            "--timeout-request",
            "30000",
            "--disable-unicode",
            "--color",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, output
    stats = json.loads(report.read_text())["run"]["stats"]
    requests = len(json.loads(COLLECTION.read_text())["item"])
    assert stats["requests"]["total"] >= requests and stats["requests"]["failed"] == 0, stats
    assert stats["assertions"]["failed"] == 0 and stats["assertions"]["total"] >= requests, stats
    print(
        f"newman: {stats['requests']['total']} requests, {stats['assertions']['total']} assertions passed"
    )
    assert server.server_errors() == []
