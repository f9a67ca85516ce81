#!/usr/bin/env bash
# The background worker in a cluster started with shared_preload_libraries: waits for its
# database and the extension, runs the jobs on its own, records them, survives a failing job,
# reloads on SIGHUP, comes back after a backend is killed with -9, stops promptly on SIGTERM
# (cancelling a job's running statement).
# Also: concurrent writers while refreshes run leave rollups exactly equal to raw rows.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
source "$(dirname "$0")/lib.sh"
dir="$KT_ROOT/build/e2e_worker"; port=55434; worker_out="$(e2e_tmp worker_export)"
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug
cluster_create "$dir" "$port" "timezone = 'UTC'" "shared_preload_libraries = 'kt_governance'" \
    "kt_governance.database = 'kt'" "kt_governance.worker_naptime = 1" \
    "kt_governance.refresh_interval = 2" "kt_governance.maintenance_interval = 3"
trap 'cluster_destroy "$dir"' EXIT
sql() { q "$dir" "$port" kt "$1"; }
# wait_for DESCRIPTION SQL EXPECTED [SECONDS]
wait_for() {
    local got="" i
    for i in $(seq "${4:-40}"); do
        got="$(sql "$2" 2>/dev/null || true)"
        [ "$got" = "$3" ] && { pass "$1"; return 0; }
        sleep 1
    done
    fail "$1: last saw '$got', expected '$3'"
}
worker_pid() { q "$dir" "$port" postgres "SELECT pid FROM pg_stat_activity WHERE backend_type = 'kt_governance'"; }

# the database does not exist yet: the worker retries until it does
sleep 2
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE kt"
kt_psql "$dir" "$port" -d kt -c "CREATE EXTENSION kt_governance"
wait_for "worker runs maintenance by itself" "SELECT count(*) > 0 FROM kt_job_runs WHERE job_name = 'maintenance' AND status = 'ok'" t 60
sql "SELECT * FROM kt_generate_sample_events(5000, 2, 1, now())" >/dev/null
wait_for "worker refreshes dirty hours by itself" "SELECT count(*) FROM kt_governance_internal.kt_dirty_hours" 0
check "rollup totals equal raw after worker refresh" \
    "$(sql "SELECT (SELECT sum(total_requests) FROM kt_governance_internal.kt_rollup_metrics_hourly) = (SELECT count(*) FROM ai_decision_events)")" t

# a failing job is recorded; the other job keeps running; the worker survives
pid_before="$(worker_pid)"
sql "ALTER TABLE kt_governance_internal.kt_rollup_spend_hourly ADD CONSTRAINT e2e_refuse CHECK (false) NOT VALID" >/dev/null
sql "INSERT INTO ai_decision_events (id, \"timestamp\", decision, model, provider, gateway_id) VALUES ('poison', now(), 'allowed', 'm', 'p', 'g')" >/dev/null
wait_for "failing refresh is recorded" "SELECT count(*) > 0 FROM kt_job_runs WHERE job_name = 'refresh_metrics' AND status = 'error'" t
maint_runs="$(sql "SELECT count(*) FROM kt_job_runs WHERE job_name = 'maintenance'")"
sleep 5
check "maintenance keeps running while refresh fails" "$(sql "SELECT count(*) > $maint_runs FROM kt_job_runs WHERE job_name = 'maintenance'")" t
check "worker survived the failing job" "$(worker_pid)" "$pid_before"
sql "ALTER TABLE kt_governance_internal.kt_rollup_spend_hourly DROP CONSTRAINT e2e_refuse" >/dev/null
wait_for "refresh recovers once the cause is gone" "SELECT count(*) FROM kt_governance_internal.kt_dirty_hours" 0

# SIGHUP: switch maintenance off in postgresql.conf and reload; no more maintenance runs
echo "kt_governance.maintenance_interval = 0" >> "$dir/data/postgresql.conf"
as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" reload >/dev/null
sleep 3
maint_runs="$(sql "SELECT count(*) FROM kt_job_runs WHERE job_name = 'maintenance'")"
sleep 6
check "reload stops the maintenance schedule" "$(sql "SELECT count(*) FROM kt_job_runs WHERE job_name = 'maintenance'")" "$maint_runs"

# concurrency: 4 writers insert while refreshes run back to back; rollups end equal to raw
for w in 1 2 3 4; do
    ( for b in $(seq 10); do
        kt_psql "$dir" "$port" -d kt -c "SELECT * FROM kt_generate_sample_events(500, 2, $((w * 100 + b)), now())" >/dev/null
      done ) &
done
( for _ in $(seq 20); do kt_psql "$dir" "$port" -d kt -c "SELECT * FROM kt_refresh_metrics()" >/dev/null; done ) &
wait
sql "SELECT * FROM kt_refresh_metrics()" >/dev/null
check "after concurrent writers: rollup totals == raw totals" \
    "$(sql "SELECT (SELECT sum(total_requests) FROM kt_governance_internal.kt_rollup_metrics_hourly) || '/' || (SELECT sum(total_cost) FROM kt_governance_internal.kt_rollup_metrics_hourly)")" \
    "$(sql "SELECT count(*) || '/' || sum(cost_usd) FROM ai_decision_events")"
check "after concurrent writers: every bucket equals the raw computation" \
    "$(sql "$(rollup_mismatch_sql)")" 0

# the same with batches that aggregate (their hours are merged from kt_rollup_deltas) and a
# single-row writer mixing recompute marks into one of their hours
sql "SELECT * FROM kt_refresh_metrics()" >/dev/null
for w in 1 2 3 4; do
    ( for b in $(seq 8); do
        kt_psql "$dir" "$port" -d kt -c "INSERT INTO ai_decision_events (id, \"timestamp\", decision, model, provider, gateway_id, team_id, cost_usd, latency_ms)
            SELECT id || '-m$w-$b', date_trunc('hour', now()) - interval '3 hours' + (now() - \"timestamp\") / 12, decision, model,
                   provider, gateway_id, team_id, cost_usd, latency_ms
            FROM kt_sample_events(2000, 1, $((w * 1000 + b)), now())" >/dev/null
      done ) &
done
( for i in $(seq 40); do
    kt_psql "$dir" "$port" -d kt -c "INSERT INTO ai_decision_events (id, \"timestamp\", decision, model, provider, gateway_id, latency_ms)
        VALUES ('m-single-$i', date_trunc('hour', now()) - interval '3 hours' + $i * interval '1 minute', 'blocked', 'gpt-4o', 'openai', 'gw-us-east', $i)" >/dev/null
  done ) &
( for _ in $(seq 30); do sql "SELECT hours_merged FROM kt_refresh_metrics()" >> "$dir/merged.txt"; done ) &
wait
sql "SELECT * FROM kt_refresh_metrics()" >/dev/null
check "batches were merged from deltas during the run" "$(awk '$1 > 0 {n++} END {print (n > 0)}' "$dir/merged.txt")" 1
check "after concurrent merges: no delta left" "$(sql "SELECT (SELECT count(*) FROM kt_governance_internal.kt_rollup_deltas) + (SELECT count(*) FROM kt_governance_internal.kt_latency_deltas)")" 0
check "after concurrent merges: rollup totals == raw totals" \
    "$(sql "SELECT (SELECT sum(total_requests) FROM kt_governance_internal.kt_rollup_metrics_hourly) || '/' || (SELECT sum(total_cost) FROM kt_governance_internal.kt_rollup_metrics_hourly)")" \
    "$(sql "SELECT count(*) || '/' || sum(cost_usd) FROM ai_decision_events")"
check "after concurrent merges: every bucket equals the raw computation" \
    "$(sql "$(rollup_mismatch_sql)")" 0

# kill -9 of a backend: the postmaster reinitializes, the worker comes back on its own
pid_before="$(worker_pid)"
( kt_psql "$dir" "$port" -d kt -c "SELECT pg_sleep(30)" >/dev/null 2>&1 & )
sleep 1
victim="$(q "$dir" "$port" postgres "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' LIMIT 1")"
kill -9 "$victim"
wait_for "worker is back after a crash restart" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'kt_governance'" 1 60
sql "SELECT * FROM kt_generate_sample_events(100, 1, 999, now())" >/dev/null
wait_for "jobs run again after the restart" "SELECT count(*) FROM kt_governance_internal.kt_dirty_hours" 0 60

# retention by the worker: old partition pairs dropped one per transaction, each run recorded
sql "SELECT count(*) FROM kt_create_partitions('2020-01-01', '2020-04-01')" >/dev/null
sql "SELECT * FROM kt_generate_sample_events(900, 85, 9, '2020-03-28')" >/dev/null
{ echo "kt_governance.retention_hours = 20000"; echo "kt_governance.retention_interval = 1"; } >> "$dir/data/postgresql.conf"
as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" reload >/dev/null
wait_for "worker's retention job drops the old partitions" \
    "SELECT count(*) FROM kt_partitions WHERE range_end <= '2020-04-01'" 0 60
check "one partition pair per committed run" \
    "$(sql "SELECT count(*) >= 3 FROM kt_job_runs WHERE job_name = 'retention' AND message LIKE '%1 partitions dropped%'")" t
check "no old events left" "$(sql "SELECT count(*) FROM ai_decision_events WHERE \"timestamp\" < '2020-04-01'")" 0

# ingest while retention runs: every new event survives, nothing old remains
sql "SELECT count(*) FROM kt_create_partitions('2020-01-01', '2020-07-01')" >/dev/null
sql "SELECT * FROM kt_generate_sample_events(3000, 170, 11, '2020-06-28')" >/dev/null
since="$(sql "SELECT now() - interval '1 day'")"   # one fixed instant for both counts
before_new="$(sql "SELECT count(*) FROM ai_decision_events WHERE \"timestamp\" >= '$since'")"
( for b in $(seq 8); do
    kt_psql "$dir" "$port" -d kt -c "SELECT * FROM kt_generate_sample_events(400, 1, $((7000 + b)), now())" >/dev/null
  done ) &
( for _ in $(seq 6); do kt_psql "$dir" "$port" -d kt -c "SELECT * FROM kt_apply_retention(20000, max_partitions => 1)" >/dev/null; done ) &
wait
check "events written during retention all survive" \
    "$(sql "SELECT count(*) FROM ai_decision_events WHERE \"timestamp\" >= '$since'")" "$((before_new + 3200))"
wait_for "retention finishes the old partitions afterwards" \
    "SELECT count(*) FROM ai_decision_events WHERE \"timestamp\" < '2020-07-01'" 0 60

# the export job: the worker claims and exports a schedule's runs by itself
rm -rf $worker_out; mkdir -p $worker_out; chown postgres $worker_out
{ echo "kt_governance.export_interval = 1"; } >> "$dir/data/postgresql.conf"
as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" reload >/dev/null
sql "SELECT kt_add_export_schedule('w', 'file://$worker_out', every => '1 minute')" >/dev/null
wait_for "worker runs the export schedule by itself" "SELECT count(*) > 0 FROM kt_export_runs WHERE schedule_name = 'w'" t 60
check "its run exported every event stored before the run's horizon" \
    "$(sql "SELECT (SELECT sum(events_exported) FROM kt_export_runs) = (SELECT count(*) FROM ai_decision_events WHERE created_at < (SELECT max(range_hi) FROM kt_export_runs))")" t
check "claim and export ran as separate job runs" \
    "$(sql "SELECT count(*) >= 2 FROM kt_job_runs WHERE job_name = 'export' AND status = 'ok'")" t
rm -rf $worker_out

# SIGTERM while a job is stuck in a statement (the refresh waits for a lock a session holds): the
# statement is cancelled and the worker exits at once; the postmaster starts it again
sql "INSERT INTO ai_decision_events (id, \"timestamp\", decision, model, provider, gateway_id) VALUES ('stuck', now(), 'allowed', 'm', 'p', 'g')" >/dev/null
kt_psql "$dir" "$port" -d kt -c "BEGIN; LOCK TABLE kt_governance_internal.kt_rollup_metrics_hourly IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT" >/dev/null 2>&1 &
locker=$!
wait_for "a job waits for the lock" "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'kt_governance' AND wait_event_type = 'Lock'" t 30
pid_before="$(worker_pid)"
kill -TERM "$pid_before"
stopped=no
for _ in $(seq 10); do
    sleep 0.5
    [ "$(worker_pid)" != "$pid_before" ] && { stopped=yes; break; }
done
check "SIGTERM cancels a waiting job's statement: worker gone within 5 s" "$stopped" yes
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$locker" 2>/dev/null || true
wait_for "worker started again after it" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'kt_governance'" 1 30
wait_for "and refreshes the hour the stuck job left dirty" "SELECT count(*) FROM kt_governance_internal.kt_dirty_hours" 0 30

# Issue 20 class 2, against the preloaded worker: a database owner who is not a superuser owns
# public (pg_database_owner). In 0.8.0 it renamed public, made a new one and planted kt_jobs and
# kt_setting(text) there, which the worker ran as postgres within a second. Now the rename is
# refused, and what it plants next to the extension is never called by the worker's jobs.
kt_psql "$dir" "$port" -d postgres -c "CREATE ROLE kt_e2e_dbowner LOGIN" -c "ALTER DATABASE kt OWNER TO kt_e2e_dbowner" >/dev/null
as_dbowner() { kt_psql "$dir" "$port" -d kt -U kt_e2e_dbowner -At -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
check "database owner may not rename the extension's schema" \
    "$(as_dbowner "ALTER SCHEMA public RENAME TO public_moved" | grep -o 'cannot rename schema public' || true)" "cannot rename schema public"
as_dbowner "CREATE TABLE public.planted_calls (what text, by_role text); GRANT INSERT ON public.planted_calls TO PUBLIC;
CREATE FUNCTION public.kt_setting(name text) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN INSERT INTO public.planted_calls VALUES ('kt_setting', current_user); RETURN NULL; END \$\$;
CREATE FUNCTION public.kt_due_jobs() RETURNS SETOF text LANGUAGE plpgsql AS \$\$
BEGIN INSERT INTO public.planted_calls VALUES ('kt_due_jobs', current_user); RETURN; END \$\$;
CREATE FUNCTION public.format(text, bigint) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN INSERT INTO public.planted_calls VALUES ('format', current_user); RETURN \$1; END \$\$;
CREATE TABLE public.kt_run_locks (lock_name text)" >/dev/null
planted_at="$(sql "SELECT clock_timestamp()")"
sql "SELECT * FROM kt_generate_sample_events(500, 1, 9, now())" >/dev/null
wait_for "the worker keeps running its jobs next to the planted objects" \
    "SELECT count(DISTINCT job_name) >= 3 FROM kt_job_runs WHERE status = 'ok' AND started_at > '$planted_at'" t 30
wait_for "and refreshes what was written meanwhile" "SELECT count(*) FROM kt_governance_internal.kt_dirty_hours" 0 30
check "no planted function ran (as the worker's superuser or anyone)" "$(sql "SELECT count(*) FROM public.planted_calls")" 0
kt_psql "$dir" "$port" -d postgres -c "ALTER DATABASE kt OWNER TO postgres" >/dev/null

# SIGTERM: the worker stops promptly
pid_before="$(worker_pid)"
kill -TERM "$pid_before"
stopped=no
for _ in $(seq 10); do
    sleep 0.5
    [ -z "$(worker_pid)" ] && { stopped=yes; break; }
done
check "worker stops within 5 s of SIGTERM" "$stopped" yes
check "worker logged no unexpected errors" "$(grep -c 'PANIC\|terminated by signal 11' "$dir/server.log" || true)" 0
e2e_finish worker
