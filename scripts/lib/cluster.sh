# Throwaway PostgreSQL clusters for the demo, tests and benchmarks. Source this file.
# Clusters run as the postgres OS user (PostgreSQL refuses root), listen only on a unix socket
# inside their own directory, and are removed by cluster_destroy.
KT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# KT_PG_MAJOR=15|16|17|18 picks the server: Debian's PostgreSQL 15, or the pinned 16-18 trees
# that scripts/setup.sh unpacks into build/pg/<major> (scripts/lib/postgres_majors.sh).
# KT_PG_BIN points at any other bin directory (e.g. a private copy, so a long benchmark and the
# test suite do not share one extension directory); it wins over KT_PG_MAJOR.
pg_bin_for_major() {
    case "$1" in
        15) echo /usr/lib/postgresql/15/bin ;;
        16|17|18) echo "$KT_ROOT/build/pg/$1/bin" ;;
        *) echo "unsupported PostgreSQL major \"$1\" (15, 16, 17 or 18)" >&2; return 1 ;;
    esac
}
PG_BIN="${KT_PG_BIN:-$(pg_bin_for_major "${KT_PG_MAJOR:-15}")}"
# the pinned trees' contrib modules (dblink) carry their build machine's RUNPATH
# (/opt/postgresql/lib), so without this they bind Debian's libpq 15 and fail to load
PG_SERVER_ENV=()
case "$PG_BIN" in /usr/lib/postgresql/*) ;; *) PG_SERVER_ENV=(LD_LIBRARY_PATH="$PG_BIN/../lib") ;; esac
# every client comes from the server's own tree: pg_dump refuses a newer server, and psql's
# describe output follows its own major
PG_MAJOR="$("$PG_BIN/pg_config" --version 2>/dev/null | sed -E 's/^PostgreSQL ([0-9]+).*/\1/' || true)"

# the extension's version, as Cargo.toml gives it to the generated SQL (@CARGO_VERSION@)
crate_version() { sed -n 's/^version = "\(.*\)"/\1/p' "$KT_ROOT/Cargo.toml" | head -1; }

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

# KT_FAKETIME="2026-12-31 23:59:00+00" starts every cluster of this shell under libfaketime at
# that instant, its clock running on from there (the any-date suite). The offset is fixed the
# first time a cluster starts, so a restart continues the fake clock instead of rewinding it.
KT_LIBFAKETIME="${KT_LIBFAKETIME:-/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1}"
fake_clock_offset() {
    [ -n "${KT_FAKETIME:-}" ] && [ -z "${KT_FAKETIME_OFFSET:-}" ] || return 0
    [ -r "$KT_LIBFAKETIME" ] || { echo "libfaketime not found at $KT_LIBFAKETIME (apt-get install faketime)" >&2; return 1; }
    local target
    target="$(date -u -d "$KT_FAKETIME" +%s)" || { echo "bad KT_FAKETIME: $KT_FAKETIME" >&2; return 1; }
    printf -v KT_FAKETIME_OFFSET '%+d' $(( target - $(date +%s) ))
    export KT_FAKETIME_OFFSET
}

# real_waits.so keeps select/poll/epoll away from libfaketime, so children the postmaster forks
# during a wait read the fake clock too (see pgrx-tests/faketime/real_waits.c)
fake_clock_shim() {
    local src="$KT_ROOT/pgrx-tests/faketime/real_waits.c" so="$KT_ROOT/build/faketime/real_waits.so"
    if [ ! -f "$so" ] || [ "$src" -nt "$so" ]; then
        mkdir -p "$(dirname "$so")"
        cc -O2 -shared -fPIC -o "$so" "$src" -ldl || return 1
        chmod 755 "$KT_ROOT/build/faketime"
    fi
    echo "$so"
}

cluster_start() {
    local fake=() shim
    fake_clock_offset || return 1
    if [ -n "${KT_FAKETIME:-}" ]; then
        shim="$(fake_clock_shim)" || return 1
        # monotonic clocks stay real: PostgreSQL times its waits and timeouts with them
        fake=(LD_PRELOAD="$shim:$KT_LIBFAKETIME" FAKETIME="$KT_FAKETIME_OFFSET" FAKETIME_DONT_FAKE_MONOTONIC=1)
    fi
    as_postgres env "${fake[@]}" "${PG_SERVER_ENV[@]}" "$PG_BIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 start >/dev/null
    [ -z "${KT_FAKETIME:-}" ] || fake_clock_check "$1"
}

# a suite that believes it ran at an instant must have: the server's clock (read through the
# socket and port in postmaster.pid) is the fake one, within a minute
fake_clock_check() {
    local port sock server expected
    port="$(sed -n 4p "$1/data/postmaster.pid")"; sock="$(sed -n 5p "$1/data/postmaster.pid")"
    server="$(as_postgres "$PG_BIN/psql" -X -At -h "$sock" -p "$port" -U postgres -d postgres \
              -c "SELECT extract(epoch FROM now())::bigint")" || return 1
    expected=$(( $(date +%s) + KT_FAKETIME_OFFSET ))
    if [ $(( server - expected )) -gt 60 ] || [ $(( expected - server )) -gt 60 ]; then
        echo "fake clock not in effect: the server says $(date -u -d "@$server"), expected about $(date -u -d "@$expected")" >&2
        return 1
    fi
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
    as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"
}

# install_extension [debug|release]: builds the extension for PG_BIN's major and installs it
# there (tests use debug builds, which share compiled dependencies with cargo pgrx test).
install_extension() {
    local profile=()
    [ "${1:-release}" = release ] && profile=(--release)
    (cd "$KT_ROOT" && cargo pgrx install "${profile[@]}" --pg-config "$PG_BIN/pg_config" >/dev/null)
}
