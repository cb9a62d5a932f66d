#!/usr/bin/env bash
# Make sure Postgres, Redis and ClickHouse are reachable and write their URLs
# into .env (only the PIM_* keys below are created/updated; other lines stay).
#
#   bash scripts/services.sh            # use system services where they answer,
#                                       # otherwise start private ones under .services/
#   PIM_FORCE_PRIVATE=1 bash scripts/services.sh
#                                       # ignore services on the standard ports
#                                       # (5432/6379/9000) and use/start private ones
#   PIM_PG_UNSAFE_FAST=1 bash scripts/services.sh
#                                       # throwaway CI machines only: the private
#                                       # Postgres runs with fsync=off (see pg_tune)
#   bash scripts/stop-services.sh       # stop the private instances again
#
# Private instances live in .services/{pg,redis,clickhouse}, listen on
# 127.0.0.1 only, on free ports (a previously used port is reused when free),
# and are started detached so they outlive this script. Idempotent: a second
# run reuses whatever answers and only rewrites .env if something changed.
set -euo pipefail

# clickhouse-server and runuser live in sbin, which a non-root PATH may lack
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SVC="$ROOT/.services"
ENV_FILE="$ROOT/.env"
FORCE_PRIVATE="${PIM_FORCE_PRIVATE:-0}"
[[ "$FORCE_PRIVATE" == "1" || "$FORCE_PRIVATE" == "true" || "$FORCE_PRIVATE" == "yes" ]] && FORCE_PRIVATE=1 || FORCE_PRIVATE=0
PG_UNSAFE_FAST="${PIM_PG_UNSAFE_FAST:-0}"
[[ "$PG_UNSAFE_FAST" == "1" || "$PG_UNSAFE_FAST" == "true" || "$PG_UNSAFE_FAST" == "yes" ]] && PG_UNSAFE_FAST=1 || PG_UNSAFE_FAST=0

SUDO=""
if [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

SUMMARY=()
OUT_PORT=""
log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
note() { SUMMARY+=("$*"); }

mkdir -p "$SVC"
# Serialise concurrent runs (two `make test` at once must not start two servers).
exec 9>"$SVC/.lock"
if command -v flock >/dev/null 2>&1; then flock -w 180 9 || die "timed out waiting for $SVC/.lock"; fi

# ---------------------------------------------------------------- helpers
tcp_open() { # host port -> 0 if something accepts a TCP connection
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

port_free() { # port -> 0 if nothing listens on 127.0.0.1:port and we can bind it
    python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

free_port() { # [preferred] -> a free port (the preferred one if it is free)
    if [[ -n "${1:-}" ]] && port_free "$1"; then echo "$1"; return; fi
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

read_file() { [[ -s "$1" ]] && tr -d ' \n' <"$1" || true; }

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

apt_install() { # pkg... ; apt-get update only if the first attempt fails
    command -v apt-get >/dev/null 2>&1 || die "need $* but apt-get is not available; install them by hand"
    log "installing $* with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get install -y -q --no-install-recommends "$@" >"$SVC/apt.log" 2>&1; then
        $SUDO apt-get update -q >>"$SVC/apt.log" 2>&1 || true
        $SUDO apt-get install -y -q --no-install-recommends "$@" >>"$SVC/apt.log" 2>&1 \
            || { tail -20 "$SVC/apt.log" >&2; die "apt-get install $* failed (log: $SVC/apt.log)"; }
    fi
}

set_env() { # KEY VALUE -> create/replace KEY=VALUE in .env, keep every other line
    local key="$1" value="$2"
    touch "$ENV_FILE"
    if grep -qxF "$key=$value" "$ENV_FILE"; then return; fi
    local tmp; tmp="$(mktemp "$ENV_FILE.XXXXXX")"
    awk -v k="$key" -v v="$value" '
        BEGIN { done = 0 }
        index($0, k "=") == 1 { if (!done) { print k "=" v; done = 1 }; next }
        { print }
        END { if (!done) print k "=" v }' "$ENV_FILE" >"$tmp"
    cat "$tmp" >"$ENV_FILE" && rm -f "$tmp"   # keep the file's inode and mode
}

get_env() { [[ -f "$ENV_FILE" ]] && grep -m1 "^$1=" "$ENV_FILE" | cut -d= -f2- || true; }

wait_for() { # seconds description command... -> polls every 0.25 s (description is for readers)
    local secs="$1"; shift 2
    local deadline=$((SECONDS + secs))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.25
    done
}

# ---------------------------------------------------------------- Postgres
pg_bin_dir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
    if [[ -n "$d" && -x "$d/initdb" ]]; then echo "$d"; return; fi
    if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
}

pg_ready() { # port
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h 127.0.0.1 -p "$1" -t 2 2>/dev/null
    else
        tcp_open 127.0.0.1 "$1"
    fi
}

pg_ensure_db() { # port
    command -v psql >/dev/null 2>&1 || apt_install postgresql-client
    local exists
    exists="$(psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -tAX -v ON_ERROR_STOP=1 \
        -c "SELECT 1 FROM pg_database WHERE datname = 'pim'")" \
        || die "cannot connect to Postgres on 127.0.0.1:$1 as user postgres (trust auth expected)"
    if [[ "$exists" != "1" ]]; then
        psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -qX -v ON_ERROR_STOP=1 -c 'CREATE DATABASE pim' >/dev/null
        log "created database pim on 127.0.0.1:$1"
    fi
}

# The private instance keeps data a user may want (`make run`'s tenants): crash-safe settings
# (fsync, full_page_writes, synchronous_commit on) unless PIM_PG_UNSAFE_FAST=1 asks for the
# old fast ones on a throwaway CI machine. Set on every run with ALTER SYSTEM, which also
# turns an instance created with fsync=off (before this change) durable; all three reload
# without a restart, and the CHECKPOINT then writes everything to disk with fsync.
pg_tune() { # port
    local value=on
    [[ "$PG_UNSAFE_FAST" == 1 ]] && value=off
    psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -qX -v ON_ERROR_STOP=1 \
        -c "ALTER SYSTEM SET fsync = $value" -c "ALTER SYSTEM SET full_page_writes = $value" \
        -c "ALTER SYSTEM SET synchronous_commit = $value" -c "SELECT pg_reload_conf()" >/dev/null \
        || die "could not set the durability settings of the private Postgres on 127.0.0.1:$1"
    sleep 0.5  # the reload is a signal: let the checkpointer see fsync=on before the checkpoint
    psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -qX -c "CHECKPOINT" >/dev/null || true
    [[ "$value" == on ]] && note "postgres: private instance is crash-safe (fsync on)" \
        || note "postgres: private instance runs with fsync=off (PIM_PG_UNSAFE_FAST=1): data may be lost"
}

as_pg() { # run a command as the postgres OS user when we are root (initdb refuses root)
    if [[ "$(id -u)" == 0 ]]; then (cd / && exec runuser -u postgres -- "$@" 9>&-); else "$@" 9>&-; fi
}

pg_private() {
    local dir="$SVC/pg" port bin data
    mkdir -p "$dir"
    data="$(read_file "$dir/datadir")"
    [[ -n "$data" ]] || data="$dir/data"
    port="$(read_file "$dir/port")"

    # Already running?
    if [[ -n "$port" && -f "$data/postmaster.pid" ]] && pg_ready "$port"; then
        pg_ensure_db "$port"
        pg_tune "$port"
        note "postgres: private instance on 127.0.0.1:$port (reused, $data)"
        OUT_PORT="$port"; return
    fi

    bin="$(pg_bin_dir)"
    if [[ -z "$bin" ]]; then
        apt_install postgresql
        bin="$(pg_bin_dir)"
        [[ -n "$bin" ]] || die "postgresql installed but no initdb found"
    fi

    if [[ "$(id -u)" == 0 ]]; then
        getent passwd postgres >/dev/null || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        # The postgres user must be able to reach the data dir; if the checkout is
        # not traversable for it (e.g. under /root), keep the data under /var/tmp.
        if ! runuser -u postgres -- test -x "$dir"; then
            chmod o+x "$dir" 2>/dev/null || true
            if ! runuser -u postgres -- test -x "$dir"; then
                data="/var/tmp/pim-pg-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"
            fi
        fi
    fi
    echo "$data" >"$dir/datadir"

    if [[ ! -s "$data/PG_VERSION" ]]; then
        log "initdb $data"
        rm -rf "$data"; mkdir -p "$data"
        if [[ "$(id -u)" == 0 ]]; then chown postgres: "$data"; fi
        chmod 700 "$data"
        as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
        as_pg bash -c 'cat >>"$1/postgresql.conf"' _ "$data" <<'CONF'

# --- pim dev instance (scripts/services.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
CONF
    fi

    port="$(free_port "$port")"
    echo "$port" >"$dir/port"
    log "starting private Postgres on 127.0.0.1:$port"
    # the log lives in the data dir: always writable by the server's OS user
    as_pg "$bin/pg_ctl" -D "$data" -l "$data/postgres.log" -w -t 60 -o "-p $port" start >/dev/null \
        || { tail -20 "$data/postgres.log" >&2; die "pg_ctl start failed (log: $data/postgres.log)"; }
    wait_for 30 postgres pg_ready "$port" || die "private Postgres did not become ready"
    pg_ensure_db "$port"
    pg_tune "$port"
    note "postgres: private instance on 127.0.0.1:$port (started, $data)"
    OUT_PORT="$port"
}

setup_postgres() {
    local port
    if [[ "$FORCE_PRIVATE" != 1 ]] && pg_ready 5432; then
        pg_ensure_db 5432
        port=5432
        note "postgres: system instance on 127.0.0.1:5432"
    else
        pg_private; port="$OUT_PORT"
    fi
    set_env PIM_DATABASE_URL "postgresql+asyncpg://postgres@127.0.0.1:$port/pim"
}

# ---------------------------------------------------------------- Redis
redis_ping() { # port ; pure bash, no redis-cli needed
    timeout 2 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
        printf "PING\r\n" >&3
        IFS= read -r -t 2 line <&3 || exit 1
        [[ "$line" == "+PONG"* ]]' "$1" 2>/dev/null
}

redis_private() {
    local dir="$SVC/redis" port
    mkdir -p "$dir"
    port="$(read_file "$dir/port")"
    if [[ -n "$port" ]] && pid_alive "$(read_file "$dir/redis.pid")" && redis_ping "$port"; then
        note "redis: private instance on 127.0.0.1:$port (reused)"
        OUT_PORT="$port"; return
    fi
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    port="$(free_port "$port")"
    echo "$port" >"$dir/port"
    log "starting private Redis on 127.0.0.1:$port"
    # append-only file: queued jobs survive a restart of this Redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save '' --appendonly yes --appendfsync everysec \
        --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null 9>&-
    wait_for 20 redis redis_ping "$port" || { tail -20 "$dir/redis.log" >&2; die "private Redis did not start"; }
    note "redis: private instance on 127.0.0.1:$port (started)"
    OUT_PORT="$port"
}

setup_redis() {
    local port
    if [[ "$FORCE_PRIVATE" != 1 ]] && redis_ping 6379; then
        port=6379
        note "redis: system instance on 127.0.0.1:6379"
    else
        redis_private; port="$OUT_PORT"
    fi
    set_env PIM_REDIS_URL "redis://127.0.0.1:$port/0"
}

# ---------------------------------------------------------------- ClickHouse
# ch_query PORT SQL -> runs SQL over the native protocol (also our liveness check)
ch_query() {
    timeout "${CH_TIMEOUT:-10}" clickhouse-client --host 127.0.0.1 --port "$1" --user default -q "$2" </dev/null >/dev/null 2>&1
}

ch_write_config() { # dir tcp_port http_port
    local dir="$1" tcp="$2" http="$3"
    cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<!-- Generated by scripts/services.sh; private dev/test ClickHouse. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/data/clickhouse-server.log</log>
        <errorlog>$dir/data/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$tcp</tcp_port>
    <http_port>$http</http_port>
    <!-- no interserver_http_port: replication is not used, so nothing listens for it -->
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <!-- decompressed blocks the read model's statements reuse (use_uncompressed_cache): its filter
         columns take ~160 MB a million products, so 256 MB could not hold a 10M tenant's;
         production's default is 8 GiB -->
    <uncompressed_cache_size>2147483648</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
XML
    cat >"$dir/users.xml" <<'XML'
<?xml version="1.0"?>
<!-- Generated by scripts/services.sh -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
XML
}

ch_private() {
    local dir="$SVC/clickhouse" tcp http pid
    mkdir -p "$dir"
    tcp="$(read_file "$dir/port")"
    http="$(read_file "$dir/http_port")"
    pid="$(read_file "$dir/clickhouse.pid")"

    if [[ -n "$tcp" ]] && ch_query "$tcp" 'CREATE DATABASE IF NOT EXISTS pim'; then
        note "clickhouse: private instance on 127.0.0.1:$tcp (reused)"
        OUT_PORT="$tcp"; return
    fi
    # Recorded process alive but not answering (still booting?): give it a moment, else restart.
    if pid_alive "$pid" && grep -qa "$dir/config.xml" "/proc/$pid/cmdline" 2>/dev/null; then
        if [[ -n "$tcp" ]] && wait_for 30 clickhouse ch_query "$tcp" 'SELECT 1'; then
            ch_query "$tcp" 'CREATE DATABASE IF NOT EXISTS pim' || die "CREATE DATABASE pim failed on :$tcp"
            note "clickhouse: private instance on 127.0.0.1:$tcp (reused)"
            OUT_PORT="$tcp"; return
        fi
        log "private ClickHouse (pid $pid) does not answer; restarting it"
        kill "$pid" 2>/dev/null || true
        wait_for 30 clickhouse-stop bash -c '! kill -0 "$0" 2>/dev/null' "$pid" || kill -9 "$pid" 2>/dev/null || true
    fi

    tcp="$(free_port "$tcp")"
    http="$(free_port "$http")"
    [[ "$http" != "$tcp" ]] || http="$(free_port)"
    mkdir -p "$dir"/{data,tmp,user_files,format_schemas}
    ch_write_config "$dir" "$tcp" "$http"
    echo "$tcp" >"$dir/port"
    echo "$http" >"$dir/http_port"

    log "starting private ClickHouse on 127.0.0.1:$tcp (http $http)"
    # A plain detached background process: own session (setsid), immune to
    # SIGHUP (nohup), no inherited lock fd, so it outlives this shell, make and
    # the CI step. We record its pid ourselves (18.16's --pidfile is not used).
    (
        cd "$dir/data"
        exec 9>&-
        exec setsid nohup clickhouse-server --config-file="$dir/config.xml" \
            >>"$dir/data/stdout.log" 2>&1 </dev/null
    ) &
    pid=$!
    echo "$pid" >"$dir/clickhouse.pid"

    local deadline=$((SECONDS + 60))
    until ch_query "$tcp" 'SELECT 1'; do
        if ! pid_alive "$pid"; then
            tail -n 30 "$dir/data/clickhouse-server.err.log" "$dir/data/stdout.log" >&2 2>/dev/null || true
            die "private ClickHouse exited during start-up (logs in $dir/data)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$dir/data/clickhouse-server.err.log" >&2 2>/dev/null || true
            die "private ClickHouse did not answer within 60 s (pid $pid, logs in $dir/data)"
        fi
        sleep 0.25
    done
    ch_query "$tcp" 'CREATE DATABASE IF NOT EXISTS pim' || die "CREATE DATABASE pim failed on :$tcp"
    note "clickhouse: private instance on 127.0.0.1:$tcp, http $http (started, pid $pid)"
    OUT_PORT="$tcp"
}

setup_clickhouse() {
    local port="" dir="$SVC/clickhouse" rec
    rec="$(read_file "$dir/port")"
    # 1. our own private instance, if one is recorded and answers
    if [[ -n "$rec" ]] && command -v clickhouse-client >/dev/null 2>&1 \
        && ch_query "$rec" 'CREATE DATABASE IF NOT EXISTS pim'; then
        port="$rec"
        note "clickhouse: private instance on 127.0.0.1:$port (reused)"
    # 2. something on the standard port (checked with the client, 9000 is a popular port)
    elif [[ "$FORCE_PRIVATE" != 1 ]] && tcp_open 127.0.0.1 9000; then
        command -v clickhouse-client >/dev/null 2>&1 || apt_install clickhouse-client
        # a short timeout: a non-ClickHouse server on 9000 makes the client hang
        if CH_TIMEOUT=3 ch_query 9000 'SELECT 1' && ch_query 9000 'CREATE DATABASE IF NOT EXISTS pim'; then
            port=9000
            note "clickhouse: existing instance on 127.0.0.1:9000"
        else
            log "127.0.0.1:9000 is open but is not a usable ClickHouse; starting a private one"
        fi
    fi
    # 3. start a private one
    if [[ -z "$port" ]]; then
        if ! command -v clickhouse-server >/dev/null 2>&1 || ! command -v clickhouse-client >/dev/null 2>&1; then
            apt_install clickhouse-server clickhouse-client
        fi
        ch_private; port="$OUT_PORT"
    fi
    set_env PIM_CLICKHOUSE_URL "clickhouse://default:@127.0.0.1:$port/pim"
}

# ---------------------------------------------------------------- main
setup_postgres
setup_redis
setup_clickhouse

[[ -n "$(get_env PIM_ENV)" ]] || set_env PIM_ENV dev
if [[ -z "$(get_env PIM_JWT_SECRET)" ]]; then
    set_env PIM_JWT_SECRET "$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
    note "jwt: generated PIM_JWT_SECRET"
fi

for line in "${SUMMARY[@]}"; do printf '  %s\n' "$line"; done
printf '  .env: %s\n' "$ENV_FILE"
