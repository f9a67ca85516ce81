#!/usr/bin/env bash
# Crash points: kill -9 of the backend in the middle of a rollup refresh, a retention run
# (partition drops, then a large trim), a maintenance drain and an export, and an
# immediate-mode shutdown during a refresh. After each restart: rollups equal raw rows after the
# next refresh, retention is all or nothing (each partition pair fully there with all its rows,
# or fully gone), the drain lost no row, no partial Parquet file is visible, and the worker
# resumes by itself.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
source "$(dirname "$0")/lib.sh"
dir="$KT_ROOT/build/e2e_crash"; port=55439; out="$(e2e_tmp crash_export)"
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug
cluster_create "$dir" "$port" "timezone = 'UTC'" "shared_preload_libraries = 'kt_governance'" \
    "kt_governance.database = 'kt'" "kt_governance.worker_naptime = 1" "restart_after_crash = on"
trap 'cluster_destroy "$dir"; rm -rf "$out"' EXIT
rm -rf "$out"; mkdir -p "$out"; chown postgres "$out"
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE kt"
sql() { q "$dir" "$port" kt "$1"; }
sql "CREATE EXTENSION kt_governance" >/dev/null
sql "UPDATE kt_jobs SET enabled = false" >/dev/null   # the test drives the crash points itself
crash_points=0
killed=0
# wait_for_restart NAME: waits until the server accepts connections again after NAME was killed
wait_for_restart() {
    local i
    for i in $(seq 60); do sql "SELECT 1" >/dev/null 2>&1 && return 0; sleep 1; done
    fail "server did not come back after killing $1"
}
# crash_during NAME DELAY SQL: runs SQL in a session, kill -9s its backend after DELAY seconds,
# waits until the server accepts connections again
crash_during() {
    local name="$1" delay="$2" stmt="$3" bg victim
    (kt_psql "$dir" "$port" -d kt -c "SET application_name = 'crash_$name'" -c "$stmt" >/dev/null 2>&1 || true) &
    bg=$!
    sleep "$delay"
    victim="$(q "$dir" "$port" postgres "SELECT pid FROM pg_stat_activity WHERE application_name = 'crash_$name'" || true)"
    killed=0
    if [ -n "$victim" ] && kill -9 "$victim" 2>/dev/null; then
        killed=1; crash_points=$((crash_points + 1))
    else
        echo "  note: $name finished before the kill"
    fi
    wait "$bg" || true
    wait_for_restart "$name"
}
# crash_while_blocked NAME TABLE SQL: a second session holds TABLE locked; SQL runs until it
# waits for that lock (all its work up to that point done, uncommitted), then its backend is
# killed -9. Unlike a delay, this cannot miss on a fast machine (or a small month of data).
crash_while_blocked() {
    local name="$1" table="$2" stmt="$3" holder bg victim="" i
    (kt_psql "$dir" "$port" -d kt -c "SET application_name = 'crash_holder'" \
        -c "BEGIN" -c "LOCK TABLE $table IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(120)" >/dev/null 2>&1 || true) &
    holder=$!
    for i in $(seq 100); do
        [ "$(sql "SELECT count(*) FROM pg_locks WHERE relation = '$table'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && break
        sleep 0.1
    done
    (kt_psql "$dir" "$port" -d kt -c "SET application_name = 'crash_$name'" -c "$stmt" >/dev/null 2>&1 || true) &
    bg=$!
    for i in $(seq 600); do
        victim="$(q "$dir" "$port" postgres "SELECT pid FROM pg_stat_activity WHERE application_name = 'crash_$name' AND wait_event_type = 'Lock'" || true)"
        [ -n "$victim" ] && break
        sleep 0.1
    done
    killed=0
    if [ -n "$victim" ] && kill -9 "$victim" 2>/dev/null; then
        killed=1; crash_points=$((crash_points + 1))
    else
        fail "$name never waited for the lock on $table"
    fi
    wait "$bg" "$holder" || true
    wait_for_restart "$name"
}
# rollup rows of hours retention pruned (before kt_frozen_before()) outlive their raw rows; the
# hour straddling the cutoff keeps its pre-pruning totals until a change there is refreshed
rollups_equal_raw="$(rollup_mismatch_sql "coalesce(kt_governance_internal.kt_frozen_before() + interval '1 hour', '-infinity')")"

echo "-- refresh"
sql "SELECT count(*) FROM kt_create_partitions(now() - interval '20 days', now() + interval '1 day')" >/dev/null
sql "SELECT kt_generate_sample_events(300000, 20, 1, now())" >/dev/null
# the daily spend rollup is written last: the refresh has taken the dirty hours and rewritten
# the hourly rollups when it waits for it
crash_while_blocked refresh kt_governance_internal.kt_rollup_spend_daily "SELECT * FROM kt_refresh_metrics()"
check "dirty hours survive the crash" "$(sql "SELECT count(*) > 0 FROM kt_governance_internal.kt_dirty_hours")" t
sql "SELECT * FROM kt_refresh_metrics()" >/dev/null
check "after the next refresh rollups equal raw rows" "$(sql "$rollups_equal_raw")" 0

echo "-- retention: partition drops, then a large trim"
sql "SELECT count(*) FROM kt_create_partitions('2020-01-01', '2020-07-01')" >/dev/null
sql "SELECT kt_generate_sample_events(400000, 170, 2, '2020-06-28')" >/dev/null
sql "SELECT * FROM kt_refresh_metrics()" >/dev/null
pairs="SELECT coalesce(string_agg(part || '=' || n, ',' ORDER BY part), 'none') FROM (
    SELECT tableoid::regclass::text AS part, count(*) AS n FROM ai_decision_events WHERE \"timestamp\" < '2020-07-01' GROUP BY 1
    UNION ALL
    SELECT tableoid::regclass::text, count(*) FROM policy_evaluations WHERE event_timestamp < '2020-07-01' GROUP BY 1) x"
pair_check="SELECT count(*) FROM kt_partitions e
    WHERE e.parent_table = 'ai_decision_events' AND e.range_end <= '2020-07-01'
      AND NOT EXISTS (SELECT FROM kt_partitions p WHERE p.parent_table = 'policy_evaluations' AND p.range_start = e.range_start)"
before="$(sql "$pairs")"
old_events="$(sql "SELECT count(*) FROM ai_decision_events WHERE \"timestamp\" < '2020-07-01'")"
hours="$(sql "SELECT floor(extract(epoch FROM now() - '2020-04-15'::timestamptz) / 3600)::int")"
for delay in 0.3 0.8 1.5; do
    crash_during "retention_$delay" "$delay" "SELECT * FROM kt_apply_retention($hours)"
    after="$(sql "$pairs")"
    check "no events partition without its evaluations partition" "$(sql "$pair_check")" 0
    [ "$killed" = 1 ] || break   # it completed: nothing left to interrupt
    if [ "$after" = "$before" ]; then pass "retention killed after ${delay}s: every partition pair and row still there";
    else fail "retention killed after ${delay}s left a partial state: $after (was $before)"; fi
done
cutoff="$(sql "SELECT cutoff FROM kt_apply_retention($hours)")"
check "a full run afterwards removes exactly the rows older than its cutoff" \
    "$(sql "SELECT count(*) FROM ai_decision_events WHERE \"timestamp\" < '$cutoff'")|$(sql "SELECT count(*) > 0 FROM ai_decision_events WHERE \"timestamp\" >= '$cutoff' AND \"timestamp\" < '2020-07-01'")" "0|t"

echo "-- maintenance drain"
sql "INSERT INTO ai_decision_events (id, \"timestamp\", decision, model, provider, gateway_id)
     SELECT 'drain-' || g, '2031-01-01'::timestamptz + g * interval '1 minute', 'allowed', 'm', 'p', 'g' FROM generate_series(1, 150000) g" >/dev/null
total="$(sql "SELECT count(*) FROM ai_decision_events")"
crash_during drain 1 "SET kt_governance.drain_max_future_days = 3660; SELECT * FROM kt_run_maintenance()"
check "the drain lost no row" "$(sql "SELECT count(*) FROM ai_decision_events")" "$total"
check "rows are either still in the default partition or in a partition, never both" \
    "$(sql "SELECT count(*) - count(DISTINCT id) FROM ai_decision_events WHERE id LIKE 'drain-%'")" 0

echo "-- export"
crash_during export 1.5 "SELECT * FROM kt_export_events('file://$out', now() - interval '20 days', now() + interval '1 day')"
check "no visible Parquet file or manifest after the crash" \
    "$(find "$out" -name '*.parquet' -o -name '*.json' | wc -l)" 0

echo "-- immediate shutdown during a refresh; the worker resumes on its own"
sql "UPDATE ai_decision_events SET latency_ms = latency_ms + 1 WHERE \"timestamp\" > now() - interval '10 days'" >/dev/null
(kt_psql "$dir" "$port" -d kt -c "SELECT * FROM kt_refresh_metrics()" >/dev/null 2>&1 || true) &
bg=$!
sleep 1
cluster_stop "$dir" immediate; crash_points=$((crash_points + 1))
wait "$bg" || true
cluster_start "$dir"
sql "UPDATE kt_jobs SET enabled = true WHERE job_name IN ('refresh_metrics', 'maintenance')" >/dev/null
sql "ALTER SYSTEM SET kt_governance.refresh_interval = 1" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
for i in $(seq 90); do [ "$(sql "SELECT count(*) FROM kt_governance_internal.kt_dirty_hours")" = 0 ] && break; sleep 1; done
check "the worker resumed and refreshed by itself" "$(sql "SELECT count(*) FROM kt_governance_internal.kt_dirty_hours")" 0
check "rollups equal raw rows after recovery" "$(sql "$rollups_equal_raw")" 0
echo "crash: $crash_points crash points tried"
e2e_finish crash
