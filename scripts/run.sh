#!/usr/bin/env bash
# Run the whole service locally (after `make services migrate`, which `make run`
# does first): an arq worker in the background, a fresh demo tenant with an
# admin API key and the demo catalog (`pim demo load`), and the API in the foreground.
# Ctrl-C stops both.
#   PORT (default 8000), WORKERS (default 2), HOST (default 127.0.0.1)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PORT="${PORT:-8000}"
WORKERS="${WORKERS:-2}"
HOST="${HOST:-127.0.0.1}"
PIM=.venv/bin/pim
[[ -x "$PIM" ]] || { echo "[run] $PIM missing: run 'make install' first" >&2; exit 1; }

WORKER_PID=""
cleanup() {
    if [[ -n "$WORKER_PID" ]] && kill -0 "$WORKER_PID" 2>/dev/null; then
        kill -TERM "$WORKER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$WORKER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$WORKER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$PIM" worker &
WORKER_PID=$!
echo "[run] worker started (pid $WORKER_PID)"

SLUG="demo-$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')"
OUT="$("$PIM" tenant create "$SLUG")"
# The command prints one JSON object (log lines may surround it): pick it out.
API_KEY="$(.venv/bin/python -c '
import json, sys
for line in reversed(sys.stdin.read().splitlines()):
    line = line.strip()
    if line.startswith("{") and "api_key" in line:
        print(json.loads(line)["api_key"]); break
else:
    sys.exit("no api_key in `pim tenant create` output")
' <<<"$OUT")"

# the demo catalog (app/demo.py): schema, category tree, 300 products with variations, a view and
# a segment; loading it again would change nothing
"$PIM" demo load --tenant "$SLUG" >/dev/null
echo "[run] demo catalog loaded into $SLUG"

cat <<MSG

  PIM is starting on http://$HOST:$PORT
  API docs:  http://$HOST:$PORT/docs
  Tenant:    $SLUG
  API key:   $API_KEY

  Try:  curl -H "X-API-Key: $API_KEY" http://$HOST:$PORT/api/pim/products/
        curl -H "X-API-Key: $API_KEY" "http://$HOST:$PORT/api/pim/products/?color=red&ordering=-price"
        curl -H "X-API-Key: $API_KEY" http://$HOST:$PORT/api/pim/facets/

MSG

# Not exec: the EXIT trap must still stop the worker when the server ends.
"$PIM" serve --host "$HOST" --port "$PORT" --workers "$WORKERS"
