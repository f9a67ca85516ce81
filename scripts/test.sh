#!/usr/bin/env bash
# The whole test suite: Rust #[pg_test]s in a pgrx-managed cluster, the SQL regression suite,
# the end-to-end scripts (each in its own throwaway cluster), the benchmark smoke run, then the
# SQL suite and the date-sensitive end-to-end scripts again at fixed instants under libfaketime.
# Run as root or a sudoer; it installs its prerequisites first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
source scripts/lib/cluster.sh

# the README's second command works on a fresh machine by itself: setup skips what is done
scripts/setup.sh

# scripts/test.sh SUITE...: only those suites, by name: a SQL regression test
# (pgrx-tests/sql/NAME.sql), an end-to-end script (pgrx-tests/e2e/NAME.sh), or pgrx, bench,
# any_date
if [ "$#" -gt 0 ]; then
    install_extension debug
    export SKIP_INSTALL=1
    for suite in "$@"; do
        echo "== $suite"
        if [ -f "pgrx-tests/sql/$suite.sql" ]; then
            pgrx-tests/regress.sh "$suite"
        elif [ -f "pgrx-tests/e2e/$suite.sh" ] && [ "$suite" != lib ]; then
            "pgrx-tests/e2e/$suite.sh"
        elif [ "$suite" = pgrx ]; then
            pgdata=/tmp/kt_governance_pgrx_test
            mkdir -p "$pgdata" && chown postgres:postgres "$pgdata"
            cargo pgrx test pg15 --runas postgres --pgdata "$pgdata"
        elif [ "$suite" = bench ]; then
            pgrx-tests/bench/run.sh smoke
        elif [ "$suite" = any_date ]; then
            ANY_DATE_REAL=0 pgrx-tests/any_date.sh
        else
            echo "unknown suite \"$suite\": a name from pgrx-tests/sql/*.sql or pgrx-tests/e2e/*.sh, or pgrx, bench, any_date" >&2
            exit 2
        fi
    done
    echo "== suites passed: $*"
    exit 0
fi

echo "== cargo pgrx test (Rust unit and #[pg_test] tests)"
pgdata=/tmp/kt_governance_pgrx_test
mkdir -p "$pgdata" && chown postgres:postgres "$pgdata"
cargo pgrx test pg15 --runas postgres --pgdata "$pgdata"

echo "== install the extension (debug build) for the SQL and end-to-end suites"
install_extension debug
export SKIP_INSTALL=1

echo "== SQL regression suite"
pgrx-tests/regress.sh

for script in pgrx-tests/e2e/*.sh; do
    case "$(basename "$script")" in lib.sh) continue ;; esac
    echo "== end-to-end: $(basename "$script" .sh)"
    "$script"
done
echo "== benchmark harness, smoke mode (10k events: proves it runs and its correctness guard holds)"
pgrx-tests/bench/run.sh smoke
echo "== any date: the SQL suite and the date-sensitive end-to-end scripts under libfaketime"
ANY_DATE_REAL=0 pgrx-tests/any_date.sh
echo "== all suites passed"
