# Throwaway PostgreSQL 15 clusters for the demo, tests and benchmarks. Source this file.
# Clusters run as the postgres OS user (PostgreSQL refuses root), listen only on a unix socket
# inside their own directory, and are removed by cluster_destroy.

# KT_PG_BIN points at another PostgreSQL 15 bin directory (e.g. a private copy, so a long
# benchmark and the test suite do not share one extension directory)
PG_BIN="${KT_PG_BIN:-/usr/lib/postgresql/15/bin}"
KT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

as_postgres() {
    if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

# cluster_create DIR PORT [extra postgresql.conf lines...]
cluster_create() {
    local dir="$1" port="$2"; shift 2
    cluster_destroy "$dir"
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
    {
        echo "port = $port"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "logging_collector = off"
        echo "fsync = off"
        for line in "$@"; do echo "$line"; done
    } >> "$dir/data/postgresql.conf"
    cluster_start "$dir"
}

cluster_start() {
    as_postgres "$PG_BIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 start >/dev/null
}

cluster_stop() {
    [ -f "$1/data/postmaster.pid" ] && as_postgres "$PG_BIN/pg_ctl" -D "$1/data" -m "${2:-fast}" -w stop >/dev/null || true
}

cluster_destroy() {
    cluster_stop "$1" immediate
    rm -rf "$1"
}

# kt_psql DIR PORT [psql args...]: psql as postgres on the cluster's socket
kt_psql() {
    local dir="$1" port="$2"; shift 2
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"
}

# install_extension [debug|release]: builds the extension and installs it into the system
# PostgreSQL 15 (tests use debug builds, which share compiled dependencies with cargo pgrx test).
install_extension() {
    local profile=()
    [ "${1:-release}" = release ] && profile=(--release)
    (cd "$KT_ROOT" && cargo pgrx install "${profile[@]}" --pg-config "$PG_BIN/pg_config" >/dev/null)
}
