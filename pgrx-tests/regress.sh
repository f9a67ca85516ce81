#!/usr/bin/env bash
# SQL regression suite: runs every pgrx-tests/sql/*.sql in a fresh database of a throwaway
# cluster and diffs the output with pgrx-tests/expected/*.out.
#   pgrx-tests/regress.sh              run all (installs the extension first)
#   pgrx-tests/regress.sh reports ...  run the named tests only
#   ACCEPT=1 pgrx-tests/regress.sh     overwrite expected output with the results
#   SKIP_INSTALL=1                     use the extension already installed
#   KT_FAKETIME="2027-01-01 00:30+00"  run under libfaketime: each test starts at that instant
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/cluster.sh"
dir="$KT_ROOT/build/regress"
port=55431
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug
cluster_create "$dir" "$port" "timezone = 'UTC'" "lc_messages = 'C'" "max_prepared_transactions = 4"
trap 'cluster_destroy "$dir"' EXIT
# results outlive the cluster, so a failure can be read after the run
results="$KT_ROOT/build/regress_results"
rm -rf "$results"; mkdir -p "$results"; chown postgres "$results"

if [ $# -gt 0 ]; then tests=("$@"); else
    tests=(); for f in "$KT_ROOT"/pgrx-tests/sql/*.sql; do tests+=("$(basename "$f" .sql)"); done
fi
# a failure names the instant it ran at, so a clock-dependent test is found from the log alone
at="real clock"; [ -z "${KT_FAKETIME:-}" ] || at="fake clock $KT_FAKETIME"
failed=()
for t in "${tests[@]}"; do
    if [ -n "${KT_FAKETIME:-}" ]; then
        # restart the clock at the instant for every test, so each one runs where it is aimed
        cluster_stop "$dir"; unset KT_FAKETIME_OFFSET; cluster_start "$dir"
    fi
    started=$(date +%s)
    kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE regress_$t"
    # -a echoes each statement so the .out file reads like a session transcript
    # run from the sql/ folder so messages name the file relatively, wherever the clone is
    (cd "$KT_ROOT/pgrx-tests/sql" && as_postgres "$PG_BIN/psql" -X -a -q -h "$dir" -p "$port" -U postgres \
        -d "regress_$t" -v ON_ERROR_STOP=0 -f "$t.sql" > "$results/$t.out" 2>&1) || true
    if [ "${ACCEPT:-0}" = 1 ]; then
        cp "$results/$t.out" "$KT_ROOT/pgrx-tests/expected/$t.out"
        echo "accepted $t"
    elif diff -u "$KT_ROOT/pgrx-tests/expected/$t.out" "$results/$t.out" > "$results/$t.diff"; then
        echo "ok   $t ($(( $(date +%s) - started )) s)"
    else
        echo "FAIL $t (at $at)"; head -60 "$results/$t.diff"; failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "regression failures at $at: ${failed[*]}"; exit 1
fi
echo "regression: ${#tests[@]} tests passed at $at"
