#!/usr/bin/env bash
# The whole test suite: Rust #[pg_test]s in a pgrx-managed cluster, the SQL regression suite,
# and the end-to-end scripts (each in its own throwaway cluster). Run as root or postgres-capable
# sudoer on a machine prepared by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
source scripts/lib/cluster.sh

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
echo "== all suites passed"
