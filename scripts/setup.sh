#!/usr/bin/env bash
# Installs every prerequisite on a fresh Debian machine (as root, or with sudo available):
# PostgreSQL 15 with server headers, clang, libfaketime (the any-date suite), cargo-pgrx 0.18.1,
# and the Python readers used by the read-back tests. Safe to re-run: each step is skipped when already done.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_apt=0
for pkg in postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo python3-venv faketime; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" = 1 ]; then
    echo "== apt: PostgreSQL 15, headers, clang"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y \
        postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo python3-venv faketime
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! cargo pgrx --version 2>/dev/null | grep -q '0.18.1'; then
    echo "== cargo-pgrx 0.18.1 (takes several minutes)"
    cargo install --locked cargo-pgrx@0.18.1
fi
cargo pgrx init --pg15 /usr/lib/postgresql/15/bin/pg_config >/dev/null

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
