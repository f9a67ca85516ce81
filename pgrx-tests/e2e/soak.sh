#!/usr/bin/env bash
# Soak: for SOAK_SECONDS (60 here, `SOAK_SECONDS=600 pgrx-tests/e2e/soak.sh` for the long mode)
# three writers ingest (multi-row INSERT ... SELECT, single-row INSERT, kt_ingest JSON) while
# the worker refreshes rollups, applies a 1-hour retention, runs maintenance and an export
# schedule. Afterwards: every written event newer than the last retention cutoff is present
# exactly once and every older one is gone; rollups equal the raw computation for every hour
# newer than the cutoff; the exported files hold every exported event exactly once; the server
# log shows no deadlock and no error but the expected ones.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
source "$(dirname "$0")/lib.sh"
dir="$KT_ROOT/build/e2e_soak"; port=55438; seconds="${SOAK_SECONDS:-60}"
out="$(e2e_tmp soak_export)"
py="$KT_ROOT/build/venv/bin/python"
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug
cluster_create "$dir" "$port" "timezone = 'UTC'" "shared_preload_libraries = 'kt_governance'" \
    "kt_governance.database = 'kt'" "kt_governance.worker_naptime = 1" "kt_governance.refresh_interval = 2" \
    "kt_governance.maintenance_interval = 5" "kt_governance.retention_interval = 3" \
    "kt_governance.retention_hours = 1" "kt_governance.export_interval = 2" "log_lock_waits = on" \
    "kt_governance.drain_max_future_days = 3660"
trap 'cluster_destroy "$dir"; rm -rf "$out"' EXIT
rm -rf "$out"; mkdir -p "$out"; chown postgres "$out"
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE kt"
sql() { q "$dir" "$port" kt "$1"; }
sql "CREATE EXTENSION kt_governance" >/dev/null
# what the writers stored, kept outside the extension's tables (retention does not touch it)
sql "CREATE TABLE soak_written (id text PRIMARY KEY, ts timestamptz NOT NULL, writer text NOT NULL)" >/dev/null
sql "SELECT kt_add_export_schedule('soak', 'file://$out', every => '1 minute')" >/dev/null

end=$(( $(date +%s) + seconds ))
# each writer stores events from the last 150 minutes, so retention (1 hour) keeps cutting into
# them and whole hours before the cutoff get pruned
writer_bulk() {
    local i=0
    while [ "$(date +%s)" -lt "$end" ]; do
        i=$((i + 1))
        sql "WITH e AS (INSERT INTO ai_decision_events (id, \"timestamp\", decision, model, provider, gateway_id, team_id, cost_usd, latency_ms)
                 SELECT 'bulk-$i-' || g, now() - (g % 150) * interval '1 minute', 'allowed', 'm' || g % 3, 'p', 'gw' || g % 2, 't' || g % 4, 0.001 * (g % 7), g % 500
                 FROM generate_series(1, 200) g RETURNING id, \"timestamp\")
             INSERT INTO soak_written SELECT id, \"timestamp\", 'bulk' FROM e" >/dev/null
    done
}
# every 10th single-row event is dated years ahead, past the premade partitions: it lands in the
# default partition and the worker's maintenance job drains it into new partitions
writer_single() {
    local i=0
    while [ "$(date +%s)" -lt "$end" ]; do
        i=$((i + 1))
        sql "WITH e AS (INSERT INTO ai_decision_events (id, \"timestamp\", decision, model, provider, gateway_id, latency_ms)
                 VALUES ('one-$i', CASE WHEN $i % 10 = 0 THEN timestamptz '2031-01-01' + $i * interval '1 minute'
                                        ELSE now() - ($i % 140) * interval '1 minute' END, CASE WHEN $i % 9 = 0 THEN 'blocked' ELSE 'allowed' END, 'm', 'p', 'gw0', $i % 300)
                 RETURNING id, \"timestamp\")
             INSERT INTO soak_written SELECT id, \"timestamp\", 'single' FROM e" >/dev/null
    done
}
writer_ingest() {
    local i=0
    while [ "$(date +%s)" -lt "$end" ]; do
        i=$((i + 1))
        sql "WITH doc AS (SELECT jsonb_agg(jsonb_build_object('id', 'json-$i-' || g, 'timestamp', now() - (g % 130) * interval '1 minute',
                     'decision', 'redacted', 'model', 'm', 'provider', 'p', 'gateway_id', 'gw1',
                     'policies_evaluated', jsonb_build_array(jsonb_build_object('name', 'pii', 'result', 'redact')))) AS d
                 FROM generate_series(1, 50) g),
             r AS (SELECT * FROM doc, kt_ingest(doc.d))
             INSERT INTO soak_written SELECT e->>'id', (e->>'timestamp')::timestamptz, 'ingest' FROM doc, r, jsonb_array_elements(doc.d) e" >/dev/null
    done
}
writer_bulk & w1=$!
writer_single & w2=$!
writer_ingest & w3=$!
wait "$w1" "$w2" "$w3"
pass "writers ran for $seconds s: $(sql "SELECT count(*) FROM soak_written") events written"

# quiesce the jobs, then one last refresh and export so the end state is comparable
for job in export retention; do
    for i in $(seq 30); do [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%kt_run_job%' AND backend_type = 'kt_governance' AND state = 'active'")" = 0 ] && break; sleep 1; done
done
sql "UPDATE kt_jobs SET enabled = false" >/dev/null
sleep 2
check "the worker's retention ran during the soak" "$(sql "SELECT count(*) > 0 FROM kt_removal_log WHERE why = 'retention'")" t
# the writers stored rows older than the last cutoff after that run: one final run catches up
cutoff="$(sql "SELECT cutoff FROM kt_apply_retention(1)")"
check "every written event newer than the cutoff is present exactly once (lost + duplicated)" \
    "$(sql "SELECT count(*) FROM soak_written w WHERE w.ts >= '$cutoff' AND (SELECT count(*) FROM ai_decision_events e WHERE e.id = w.id) <> 1")" 0
check "every event older than the cutoff is gone" \
    "$(sql "SELECT count(*) FROM ai_decision_events WHERE \"timestamp\" < '$cutoff'")" 0
check "no event the writers did not write" \
    "$(sql "SELECT count(*) FROM ai_decision_events e WHERE NOT EXISTS (SELECT FROM soak_written w WHERE w.id = e.id)")" 0
sql "SELECT * FROM kt_refresh_metrics()" >/dev/null
check "rollups equal the raw computation for every hour after the cutoff" \
    "$(sql "$(rollup_mismatch_sql "date_trunc('hour', '$cutoff'::timestamptz) + interval '1 hour'")")" 0
check "rollups kept the whole hours retention pruned" \
    "$(sql "SELECT count(*) > 0 FROM kt_governance_internal.kt_rollup_metrics_hourly WHERE bucket < date_trunc('hour', '$cutoff'::timestamptz)")" t
sql "UPDATE kt_export_schedules SET next_run_at = now()" >/dev/null
kt_psql "$dir" "$port" -d kt -c "CALL kt_run_export_schedules()" >/dev/null
exported="$(sql "SELECT sum(events_exported) FROM kt_export_runs")"
files="$("$py" -c "
import duckdb
n, d = duckdb.sql(\"SELECT count(*), count(DISTINCT id) FROM read_parquet('$out/events/**/*.parquet', hive_partitioning = true)\").fetchone()
print(n, d)")"
check "exported files hold each exported event exactly once" "$files" "$exported $exported"
check "every event stored before the last export's horizon was exported" \
    "$([ "$exported" -ge "$(sql "SELECT count(*) FROM ai_decision_events WHERE created_at < (SELECT max(range_hi) FROM kt_export_runs)")" ] && echo yes || echo no)" yes
check "no deadlock in the server log" "$(grep -c 'deadlock detected' "$dir/server.log" || true)" 0
check "no unexpected ERROR in the server log" \
    "$(grep 'ERROR' "$dir/server.log" | grep -vc 'canceling statement due to user request' || true)" 0
check "the worker drained future-dated events out of the default partition" \
    "$(sql "SELECT sum(rows_touched) > 0 FROM kt_job_runs WHERE job_name = 'maintenance' AND status = 'ok'")" t
check "no job failed" "$(sql "SELECT count(*) FROM kt_job_runs WHERE status = 'error'")" 0
echo "soak: $(sql "SELECT count(*) FROM soak_written") events written, $(sql "SELECT count(*) FROM ai_decision_events") kept, $exported exported, $(sql "SELECT count(*) FROM kt_job_runs") job runs"
e2e_finish soak
