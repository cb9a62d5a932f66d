"""The pinned Node tools of the client tests (tools/node): their path, installed when missing."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = ROOT / "tools" / "node" / "node_modules" / ".bin"


def node_tool(name: str) -> Path:
    """The tool's path; installs the tools (scripts/node-tools.sh) if it is missing. Skips only when
    node itself is absent."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the Node client tools cannot run")
    tool = NODE_BIN / name
    if not tool.exists():
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "node-tools.sh")],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert tool.exists(), f"{tool} is missing after scripts/node-tools.sh"
    return tool
