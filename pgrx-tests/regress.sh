#!/usr/bin/env bash
# SQL regression suite: runs every pgrx-tests/sql/*.sql in a fresh database of a throwaway
# cluster and diffs the output with pgrx-tests/expected/*.out.
#   pgrx-tests/regress.sh              run all (installs the extension first)
#   pgrx-tests/regress.sh reports ...  run the named tests only
#   ACCEPT=1 pgrx-tests/regress.sh     overwrite expected output with the results
#   SKIP_INSTALL=1                     use the extension already installed
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/cluster.sh"
dir="$KT_ROOT/build/regress"
port=55431
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug
cluster_create "$dir" "$port" "timezone = 'UTC'" "lc_messages = 'C'"
trap 'cluster_destroy "$dir"' EXIT
mkdir -p "$dir/results"; chown postgres "$dir/results"

if [ $# -gt 0 ]; then tests=("$@"); else
    tests=(); for f in "$KT_ROOT"/pgrx-tests/sql/*.sql; do tests+=("$(basename "$f" .sql)"); done
fi
failed=()
for t in "${tests[@]}"; do
    kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE regress_$t"
    # -a echoes each statement so the .out file reads like a session transcript
    # run from the sql/ folder so messages name the file relatively, wherever the clone is
    (cd "$KT_ROOT/pgrx-tests/sql" && as_postgres psql -X -a -q -h "$dir" -p "$port" -U postgres \
        -d "regress_$t" -v ON_ERROR_STOP=0 -f "$t.sql" > "$dir/results/$t.out" 2>&1) || true
    if [ "${ACCEPT:-0}" = 1 ]; then
        cp "$dir/results/$t.out" "$KT_ROOT/pgrx-tests/expected/$t.out"
        echo "accepted $t"
    elif diff -u "$KT_ROOT/pgrx-tests/expected/$t.out" "$dir/results/$t.out" > "$dir/results/$t.diff"; then
        echo "ok   $t"
    else
        echo "FAIL $t"; head -60 "$dir/results/$t.diff"; failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "regression failures: ${failed[*]}"; exit 1
fi
echo "regression: ${#tests[@]} tests passed"
