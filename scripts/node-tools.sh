#!/usr/bin/env bash
# Install the pinned Node tools of the client tests (tools/node/package.json and its lock file:
# openapi-to-postmanv2, newman, @hey-api/openapi-ts, typescript) into tools/node/node_modules.
# Does nothing when they are installed; says so and exits 0 when node/npm are absent (the tests
# that need them skip, naming the reason).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../tools/node"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "[node-tools] node/npm not found: the Postman and TypeScript SDK tests will skip" >&2
    exit 0
fi
if [[ -x node_modules/.bin/newman && -x node_modules/.bin/openapi-ts && -x node_modules/.bin/tsc \
      && node_modules/.package-lock.json -nt package-lock.json ]]; then
    exit 0
fi
echo "[node-tools] npm ci in tools/node" >&2
npm ci --no-audit --no-fund --loglevel=error
