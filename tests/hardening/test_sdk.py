"""Real clients: SDKs generated from the live `/openapi.json`.

Python: openapi-python-client with `--fail-on-warning` (unique operation ids, names and schemas make
a clean SDK); the package is imported from a temporary directory and `sdk_flows.py` drives a real
`pim serve` process and worker through every flow with the SDK's typed models, and passes
`mypy --strict` against the generated package. TypeScript: @hey-api/openapi-ts (pinned in
tools/node), and `sdk_ts/main.ts` with the generated SDK compiles under `tsc --strict` (skipped
only when node is absent).
"""

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.hardening.live_server import LiveServer, live_server
from tests.hardening.node_tools import node_tool

PACKAGE = "pim_client"


@pytest.fixture(scope="module")
def server():
    with live_server(timeout=120) as running:
        yield running


@pytest.fixture(scope="module")
async def sdk_tenant(make_tenant):
    return await make_tenant("sdk")


@pytest.fixture(scope="module")
def sdk(server: LiveServer, tmp_path_factory):
    """Generate the client from the served document (with the default ruff post-hooks) and import it."""
    workdir = tmp_path_factory.mktemp("sdk")
    spec = workdir / "openapi.json"
    spec.write_text(json.dumps(httpx.get(f"{server.url}/openapi.json", timeout=10).json()))
    bin_dir = str(
        Path(sys.executable).parent
    )  # openapi-python-client and ruff live beside the interpreter
    done = subprocess.run(
        [
            os.path.join(bin_dir, "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(workdir / PACKAGE),
            "--meta",
            "none",
            "--fail-on-warning",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert not re.search(r"warning|error", output, re.IGNORECASE), output
    sys.path.insert(0, str(workdir))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(workdir))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_generated_sdk_drives_every_flow_typed(sdk, server: LiveServer, sdk_tenant, worker):
    """tests/hardening/sdk_flows.py: every flow with the SDK's typed models."""
    from tests.hardening import sdk_flows

    importlib.reload(sdk_flows)  # bound to this module's freshly generated package
    outcome = sdk_flows.run(server.url, sdk_tenant.keys["admin"])
    assert outcome == {"products": 1}  # the import and the bulk request were undone
    assert server.server_errors() == []


def test_a_script_using_the_sdk_passes_mypy_strict(sdk, tmp_path):
    package_root = Path(sdk.__file__).parents[1]
    config = tmp_path / "mypy.ini"
    # the generated package's own code is its generator's business: the script is checked
    config.write_text("[mypy]\nstrict = True\n\n[mypy-pim_client.*]\nignore_errors = True\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(Path(__file__).with_name("sdk_flows.py")),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MYPYPATH": str(package_root)},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_typescript_sdk_compiles_under_tsc_strict(server: LiveServer, tmp_path):
    """@hey-api/openapi-ts generates the SDK; tests/hardening/sdk_ts/main.ts uses its typed
    models in every flow, and `tsc --strict` compiles both."""
    openapi_ts = node_tool("openapi-ts")
    tsc = node_tool("tsc")
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(httpx.get(f"{server.url}/openapi.json", timeout=10).json()))
    for name in ("main.ts", "tsconfig.json"):
        shutil.copy(Path(__file__).parent / "sdk_ts" / name, tmp_path / name)
    generated = subprocess.run(
        [
            str(openapi_ts),
            "-i",
            str(spec),
            "-o",
            "client",
            "-c",
            "@hey-api/client-fetch",
            "--no-log-file",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0 and not re.search(r"warn|error", output, re.IGNORECASE), output
    compiled = subprocess.run(
        [str(tsc), "-p", "tsconfig.json"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
