#!/usr/bin/env bash
# Make sure `uv` is available (pip-install it if not), then create/refresh
# .venv from the lock file: `uv sync --frozen` (includes the dev group).
# Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY="${PYTHON:-python3}"
UV=()

find_uv() {
    local c userbase
    userbase="$("$PY" -m site --user-base 2>/dev/null || true)"
    for c in "${UV_BIN:-}" "$(command -v uv 2>/dev/null || true)" "$HOME/.local/bin/uv" "$HOME/.cargo/bin/uv" \
             "${userbase:+$userbase/bin/uv}"; do
        # `command -v` may find a pyenv shim that only errors out, so run it.
        if [[ -n "$c" && -x "$c" ]] && "$c" --version >/dev/null 2>&1; then UV=("$c"); return 0; fi
    done
    if "$PY" -m uv --version >/dev/null 2>&1; then UV=("$PY" -m uv); return 0; fi
    return 1
}

if ! find_uv; then
    echo "[install] uv not found; installing it with pip" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check uv 2>/dev/null \
        || "$PY" -m pip install --quiet --disable-pip-version-check --user uv 2>/dev/null \
        || "$PY" -m pip install --quiet --disable-pip-version-check --user --break-system-packages uv
    hash -r
    find_uv || { echo "[install] ERROR: uv was installed but cannot be found" >&2; exit 1; }
fi

echo "[install] $("${UV[@]}" --version) -> uv sync --frozen" >&2
"${UV[@]}" sync --frozen

# the pinned Node tools of the client tests (Postman/newman, TypeScript SDK), when node is present
bash scripts/node-tools.sh || echo "[install] warning: the Node tools did not install; the tests that need them will skip" >&2
