#!/usr/bin/env bash
# Benchmark harness: starts a tuned throwaway cluster, runs pgrx-tests/bench/harness.py and
# writes build/bench-results-<events>-pg<major>.md.
#   pgrx-tests/bench/run.sh            1M events (a few minutes)
#   pgrx-tests/bench/run.sh 10000000   10M events
#   pgrx-tests/bench/run.sh smoke      10k events, debug build: the test suite runs this
#   KT_PG_MAJOR=17 pgrx-tests/bench/run.sh   on another major (or KT_PG_BIN=.../bin)
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
n="${1:-1000000}"
profile=release
if [ "$n" = smoke ]; then n=10000; profile=debug; export KT_BENCH_REPEATS=1; fi
dir="$KT_ROOT/build/bench"; port=55441
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension "$profile"
cluster_create "$dir" "$port" "shared_buffers = '2GB'" "max_wal_size = '16GB'" "checkpoint_timeout = '30min'" \
    "work_mem = '64MB'" "maintenance_work_mem = '512MB'" "timezone = 'UTC'"
trap 'cluster_destroy "$dir"' EXIT
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE ext" -c "CREATE DATABASE plain"
chmod 777 "$dir"
KT_SOCKET_DIR="$dir" KT_PORT="$port" KT_BENCH_DIR="$dir" KT_BENCH_EVENTS="$n" \
KT_BENCH_OUT="$KT_ROOT/build/bench-results-$n-pg$PG_MAJOR.md" \
    "$KT_ROOT/build/venv/bin/python" "$KT_ROOT/pgrx-tests/bench/harness.py"
