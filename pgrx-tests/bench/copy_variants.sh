#!/usr/bin/env bash
# COPY of the benchmark's events into variants of the events table, one COPY each, in one
# tuned throwaway cluster (the benchmark's settings). What the README's index decision quotes.
#   pgrx-tests/bench/copy_variants.sh [events]     default 3M; VARIANTS="plain daily ..." to pick
# Variants:
#   plain       the document's table and indexes
#   daily       the extension, daily partitions, its indexes (ascending, deduplication off)
#   daily_desc  the same with the document's DESC indexes (deduplication on), as before 0.8.0
#   daily_off   daily with kt_governance.track_changes = off (what dirty tracking costs)
# Prints seconds per variant and the size of all indexes.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
n="${1:-3000000}"
dir="$KT_ROOT/build/copy_variants"; port=55442
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension release
cluster_create "$dir" "$port" "shared_buffers = '2GB'" "max_wal_size = '16GB'" "checkpoint_timeout = '30min'" \
    "work_mem = '64MB'" "maintenance_work_mem = '512MB'" "timezone = 'UTC'"
trap 'cluster_destroy "$dir"' EXIT
chmod 777 "$dir"
P() { kt_psql "$dir" "$port" "$@"; }
csv="$dir/events.csv"
P -d postgres -c "CREATE DATABASE gen" >/dev/null
P -d gen -c "CREATE EXTENSION kt_governance" \
    -c "COPY (SELECT * FROM kt_sample_events($n, 60, 42, '2026-11-27')) TO '$csv' WITH (FORMAT csv)" >/dev/null
plain_schema="$(python3 -c "import re, sys; print(re.search(r'PLAIN_SCHEMA = \"\"\"(.*?)\"\"\"', open(sys.argv[1]).read(), re.S).group(1))" "$KT_ROOT/pgrx-tests/bench/harness.py")"
[ -n "$plain_schema" ] || { echo "could not read PLAIN_SCHEMA from harness.py" >&2; exit 1; }
# the document's DESC indexes with deduplication on, in place of the extension's
to_desc='DO $do$ DECLARE r record; BEGIN
  FOR r IN SELECT schemaname, indexname, indexdef FROM pg_indexes
           WHERE tablename LIKE $q$events\_2%$q$ AND indexdef LIKE $q$%deduplicate_items=off%$q$ LOOP
    EXECUTE format($f$DROP INDEX %I.%I$f$, r.schemaname, r.indexname);
    EXECUTE replace(replace(r.indexdef, $q$"timestamp")$q$, $q$"timestamp" DESC)$q$), $q$ WITH (deduplicate_items=off)$q$, $q$$q$);
  END LOOP; END $do$'
copy_into() {
    local db="$1"; shift
    P -d postgres -c CHECKPOINT >/dev/null
    local t0; t0="$(date +%s.%N)"
    P -d "$db" "$@" -c "COPY ai_decision_events FROM '$csv' WITH (FORMAT csv)" >/dev/null
    printf '%-11s %8.1f s  indexes %s\n' "$db" "$(echo "$(date +%s.%N) - $t0" | bc)" \
        "$(P -d "$db" -At -c "SELECT pg_size_pretty(sum(pg_relation_size(indexrelid))) FROM pg_index")"
}
echo "COPY $n events (one run each)"
for v in ${VARIANTS:-plain daily daily_desc daily_off}; do
    P -d postgres -c "CREATE DATABASE $v" >/dev/null
    case "$v" in
        plain) P -d "$v" -c "$plain_schema" >/dev/null; copy_into "$v" ;;
        daily*)
            P -d "$v" -c "CREATE EXTENSION kt_governance" \
                -c "SELECT count(*) FROM kt_create_partitions('2026-09-01', '2026-11-29', 'daily')" >/dev/null
            case "$v" in
                daily_desc) P -d "$v" -c "$to_desc" >/dev/null; copy_into "$v" ;;
                daily_off) copy_into "$v" -c "SET kt_governance.track_changes = off" ;;
                *) copy_into "$v" ;;
            esac ;;
        *) echo "unknown variant $v" >&2; exit 2 ;;
    esac
    P -d postgres -c "DROP DATABASE $v" >/dev/null
done
