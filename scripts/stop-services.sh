#!/usr/bin/env bash
# Stop the private service instances that scripts/services.sh started under
# .services/ (never a system service).
#
#   bash scripts/stop-services.sh                 # all: postgres redis clickhouse
#   bash scripts/stop-services.sh postgres redis  # only these
#
# Data stays in .services/ (delete the folder for a fresh start). .env is left
# as it is; the next scripts/services.sh run rewrites the URLs.
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SVC="$ROOT/.services"

log() { printf '[stop-services] %s\n' "$*" >&2; }
read_file() { [[ -s "$1" ]] && tr -d ' \n' <"$1" || true; }

# wait_gone PID SECONDS -> 0 once the process is gone
wait_gone() {
    local pid="$1" deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# cmdline_has PID TEXT -> 0 if the process's command line mentions TEXT
cmdline_has() { [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"; }

stop_postgres() {
    local dir="$SVC/pg" data bin pid
    data="$(read_file "$dir/datadir")"; [[ -n "$data" ]] || data="$dir/data"
    if [[ ! -f "$data/postmaster.pid" ]]; then log "postgres: no private instance running"; return; fi
    pid="$(head -1 "$data/postmaster.pid")"
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
    [[ -n "$bin" && -x "$bin/pg_ctl" ]] || bin="$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")"
    if [[ -x "$bin/pg_ctl" ]]; then
        if [[ "$(id -u)" == 0 ]]; then
            (cd / && runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null) || true
        else
            "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null || true
        fi
    elif kill -0 "$pid" 2>/dev/null && cmdline_has "$pid" "$data"; then
        kill -INT "$pid"; wait_gone "$pid" 60 || true
    fi
    if kill -0 "$pid" 2>/dev/null && cmdline_has "$pid" "$data"; then
        log "postgres: pid $pid still running"; return 1
    fi
    log "postgres: stopped private instance (port $(read_file "$dir/port"))"
}

stop_redis() {
    local dir="$SVC/redis" pid
    pid="$(read_file "$dir/redis.pid")"
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
        log "redis: no private instance running"; rm -f "$dir/redis.pid"; return
    fi
    if ! cmdline_has "$pid" "redis-server"; then
        log "redis: pid $pid is not a redis-server; leaving it alone"; rm -f "$dir/redis.pid"; return
    fi
    kill -TERM "$pid"
    wait_gone "$pid" 20 || { log "redis: pid $pid ignored SIGTERM, killing"; kill -KILL "$pid" 2>/dev/null || true; }
    rm -f "$dir/redis.pid"
    log "redis: stopped private instance (port $(read_file "$dir/port"))"
}

stop_clickhouse() {
    local dir="$SVC/clickhouse" pid
    pid="$(read_file "$dir/clickhouse.pid")"
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
        log "clickhouse: no private instance running"; rm -f "$dir/clickhouse.pid"; return
    fi
    if ! cmdline_has "$pid" "$dir/config.xml"; then
        log "clickhouse: pid $pid is not our clickhouse-server; leaving it alone"; rm -f "$dir/clickhouse.pid"; return
    fi
    kill -TERM "$pid"
    wait_gone "$pid" 30 || { log "clickhouse: pid $pid ignored SIGTERM, killing"; kill -KILL "$pid" 2>/dev/null || true; }
    rm -f "$dir/clickhouse.pid"
    log "clickhouse: stopped private instance (port $(read_file "$dir/port"))"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(postgres redis clickhouse)
for t in "${targets[@]}"; do
    case "$t" in
        postgres|pg) stop_postgres ;;
        redis) stop_redis ;;
        clickhouse|ch) stop_clickhouse ;;
        *) log "unknown service '$t' (use postgres, redis, clickhouse)"; exit 2 ;;
    esac
done
