"""schemathesis's command line, every phase (examples, coverage, fuzzing and the stateful phase,
which follows the document's `links` from create answers to the operations that take the created
object), against a live server and worker, as an admin of a fresh tenant: no server error, every
status declared (and a 405's `Allow` right), every answer matching its schema.

Time-boxed for the suite (`PIM_FUZZ_CLI_MAX_EXAMPLES` cases per operation and phase, 20 by
default; `PIM_FUZZ_CLI_MAX_TIME` seconds, 180 by default). The deep run of issue 17:
`PIM_FUZZ_CLI_MAX_EXAMPLES=150 PIM_FUZZ_CLI_MAX_TIME=3000 pytest -s tests/hardening/test_fuzz_stateful.py`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hardening.live_server import LiveServer, live_server

MAX_EXAMPLES = int(os.environ.get("PIM_FUZZ_CLI_MAX_EXAMPLES", "20"))
MAX_TIME = int(os.environ.get("PIM_FUZZ_CLI_MAX_TIME", "180"))
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",  # an undeclared method is a 405 ...
    "allow_header_conformance",  # ... whose `Allow` lists the declared ones
    "use_after_free",  # stateful: a deleted object is gone
    "ensure_resource_availability",  # stateful: a created object can be read
]
CHECKS = os.environ.get("PIM_FUZZ_CLI_CHECKS", ",".join(CHECKS)).split(",")
# A deleted product's history is still served (contract: "History: works for a deleted
# product's id"; deletions are part of the log), so a 200 there after the DELETE is no
# use-after-free. The checks are set in a config file because `--checks` on the command line
# would override this per-operation setting.
NOT_GONE_AFTER_DELETE = ["product_history"]


def config_file(path: Path) -> Path:
    lines = ["[checks]", "enabled = false"]
    lines += [f"{name}.enabled = true" for name in CHECKS]
    for operation_id in NOT_GONE_AFTER_DELETE:
        lines += [
            "",
            "[[operations]]",
            f'include-operation-id = "{operation_id}"',
            "checks.use_after_free.enabled = false",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def server():
    # generous rate limits: thousands of requests from one key are the point here
    env = {
        "PIM_RATE_LIMIT_KEY_PER_SECOND": "10000",
        "PIM_RATE_LIMIT_KEY_BURST": "100000",
        "PIM_RATE_LIMIT_TENANT_PER_SECOND": "10000",
        "PIM_RATE_LIMIT_TENANT_BURST": "100000",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        with live_server(timeout=120) as running:
            yield running
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.mark.timeout(MAX_TIME + 900)
async def test_every_phase_finds_nothing(server: LiveServer, make_tenant, worker, tmp_path: Path):
    tenant = await make_tenant("stfuzz")
    report = tmp_path / "report.ndjson"
    log = Path(os.environ.get("PIM_FUZZ_CLI_LOG") or tmp_path / "st.log")
    with log.open("w") as out:
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "st"),
                "--config-file",
                str(config_file(tmp_path / "schemathesis.toml")),
                "run",
                f"{server.url}/openapi.json",
                "--header",
                f"X-API-Key: {tenant.keys['admin']}",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--max-time",
                str(MAX_TIME),
                "--workers",
                "2",
                "--request-timeout",
                "30",
                "--generation-database",
                "none",
                "--seed",
                os.environ.get("PIM_FUZZ_CLI_SEED", "17"),
                "--report",
                "ndjson",
                "--report-ndjson-path",
                str(report),
                "--output-truncate",
                "false",
                # a random id could revoke the key the run authenticates with (the stateful phase still
                # revokes the keys it creates, through the create answer's link)
                "--exclude-operation-id",
                "revoke_api_key",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=MAX_TIME + 600,
        )
    output = log.read_text(errors="replace")[-20000:]
    print(output[-4000:])
    assert done.returncode == 0, output
    assert server.server_errors() == []
    json.loads(report.read_text().splitlines()[-1])  # the run finished and reported
