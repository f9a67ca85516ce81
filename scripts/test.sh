#!/usr/bin/env bash
# The whole test suite. On PostgreSQL 15 (Debian's): Rust #[pg_test]s in a pgrx-managed cluster,
# the fuzz target of kt_ingest's JSON-to-row conversion (scripts/fuzz.sh), the SQL regression
# suite, the end-to-end scripts (each in its own throwaway cluster), the benchmark smoke run,
# the SQL suite and the date-sensitive end-to-end scripts again at fixed instants under libfaketime, and the .deb package installed and used. On PostgreSQL 16, 17 and
# 18: the Rust tests, the SQL regression suite and the worker, dump/restore and upgrade scripts
# (docs/install.md has the matrix). Run as root or a sudoer; it installs its prerequisites first
# (scripts/setup.sh).
#   KT_PG_MAJOR=17 scripts/test.sh regress worker   named suites against one major (default 15)
#   KT_OTHER_MAJORS="17"   which majors besides 15 the whole run covers (default: those of
#                          KT_PG_MAJORS, which scripts/setup.sh installs; 16 17 18)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# the README's second command works on a fresh machine by itself: setup skips what is done
# (the per-major runs below are nested in a run that has just done it)
[ "${KT_SETUP_DONE:-0}" = 1 ] || scripts/setup.sh
source scripts/lib/cluster.sh

# scripts/test.sh SUITE...: only those suites, by name: a SQL regression test
# (pgrx-tests/sql/NAME.sql) or regress for all of them, an end-to-end script
# (pgrx-tests/e2e/NAME.sh), or pgrx, fuzz, bench, any_date, package
if [ "$#" -gt 0 ]; then
    install_extension debug
    export SKIP_INSTALL=1
    for suite in "$@"; do
        echo "== $suite"
        if [ -f "pgrx-tests/sql/$suite.sql" ]; then
            pgrx-tests/regress.sh "$suite"
        elif [ -f "pgrx-tests/e2e/$suite.sh" ] && [ "$suite" != lib ]; then
            "pgrx-tests/e2e/$suite.sh"
        elif [ "$suite" = regress ]; then
            pgrx-tests/regress.sh
        elif [ "$suite" = pgrx ]; then
            pgdata="/tmp/kt_governance_pgrx_test_$PG_MAJOR"
            mkdir -p "$pgdata" && chown postgres:postgres "$pgdata"
            cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$pgdata"
            # the test build (with its tests schema) replaced the installed one
            install_extension debug
        elif [ "$suite" = fuzz ]; then
            scripts/fuzz.sh
        elif [ "$suite" = bench ]; then
            pgrx-tests/bench/run.sh smoke
        elif [ "$suite" = any_date ]; then
            ANY_DATE_REAL=0 pgrx-tests/any_date.sh
        elif [ "$suite" = package ]; then
            pgrx-tests/package.sh
        else
            echo "unknown suite \"$suite\": a name from pgrx-tests/sql/*.sql or pgrx-tests/e2e/*.sh, or regress (all of them), pgrx, fuzz, bench, any_date, package" >&2
            exit 2
        fi
    done
    echo "== suites passed: $*"
    exit 0
fi

[ "$PG_MAJOR" = 15 ] || { echo "the whole suite runs on 15 and then the others; use KT_OTHER_MAJORS, or name suites with KT_PG_MAJOR" >&2; exit 2; }
echo "== cargo pgrx test (Rust unit and #[pg_test] tests)"
pgdata=/tmp/kt_governance_pgrx_test_15
mkdir -p "$pgdata" && chown postgres:postgres "$pgdata"
cargo pgrx test pg15 --runas postgres --pgdata "$pgdata"

echo "== kt_ingest's JSON-to-row conversion: unit tests, kept crash cases, the fuzz target (scripts/fuzz.sh)"
scripts/fuzz.sh

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
echo "== the Debian package: built, installed with dpkg -i, used on a clean cluster, removed"
pgrx-tests/package.sh
# each other major in a shell of its own: KT_PG_MAJOR picks its server, clients and pg_config
default_others="$(for m in ${KT_PG_MAJORS:-15 16 17 18}; do [ "$m" = 15 ] || echo "$m"; done)"
for major in ${KT_OTHER_MAJORS:-$default_others}; do
    echo "== PostgreSQL $major: Rust tests, SQL regression suite, worker, dump/restore, upgrade"
    KT_SETUP_DONE=1 KT_PG_MAJOR="$major" scripts/test.sh pgrx regress worker dump_restore upgrade
done
echo "== all suites passed"
