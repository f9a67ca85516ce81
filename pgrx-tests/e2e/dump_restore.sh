#!/usr/bin/env bash
# pg_dump / pg_restore round trip: every row and partition comes back, including partitions
# the target's CREATE EXTENSION would never make (a dump restored later), rows waiting in the
# default partitions, and the identity sequence of policy_evaluations.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
source "$(dirname "$0")/lib.sh"
dir="$KT_ROOT/build/e2e_dump"; port=55433; dump_out="$(e2e_tmp dump_export)"
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug
cluster_create "$dir" "$port" "timezone = 'UTC'"
trap 'cluster_destroy "$dir"; rm -rf $dump_out' EXIT
rm -rf $dump_out; mkdir -p $dump_out; chown postgres $dump_out

kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE src"
kt_psql "$dir" "$port" -d src -v dump_out="$dump_out" <<'SQL'
CREATE EXTENSION kt_governance;
SELECT * FROM kt_run_maintenance();
-- 200 days of history, so partitions exist that a fresh install today would not make
SELECT * FROM kt_generate_sample_events(4000, 200, 3, now());
SELECT * FROM kt_create_partitions('2019-01-01', '2019-03-01');
SELECT * FROM kt_generate_sample_events(500, 30, 4, '2019-03-01');
SELECT * FROM kt_run_maintenance();
-- a batch that aggregates (its hours are merged from deltas): the restore's COPY sums it again
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, team_id, cost_usd, latency_ms)
SELECT id || '-batch', date_trunc('hour', now()) - interval '50 hours' + (now() - "timestamp") / 12, decision, model,
       provider, gateway_id, team_id, cost_usd, latency_ms
FROM kt_sample_events(3000, 1, 5, now());
SELECT * FROM kt_refresh_metrics();
SELECT kt_add_legal_hold(team_id => 'legal', reason => 'dump test');
SELECT * FROM kt_apply_retention(24 * 365 * 10);
SELECT * FROM kt_run_job('maintenance');
-- export schedules and their runs are configuration and history: dumped with the data
SELECT kt_add_export_schedule('dumped', 'file://' || :'dump_out', every => '1 minute');
CALL kt_run_export_schedules();
-- rows that stay in the default partitions (junk dates)
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('junk-1', '9999-01-01', 'allowed', 'm', 'p', 'g');
INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result)
VALUES ('junk-1', '9999-01-01', 'p', 'flag');
SQL

fingerprint() {
    q "$dir" "$port" "$1" "SELECT (SELECT count(*) FROM ai_decision_events) || ' ' ||
        (SELECT count(*) FROM policy_evaluations) || ' ' ||
        (SELECT md5(string_agg(md5(e::text), '' ORDER BY id)) FROM ai_decision_events e) || ' ' ||
        (SELECT md5(string_agg(md5(p::text), '' ORDER BY id)) FROM policy_evaluations p) || ' ' ||
        (SELECT md5(string_agg(partition_name || ':' || coalesce(range_start::text, 'default'), ',' ORDER BY partition_name)) FROM kt_partitions) || ' ' ||
        (SELECT md5(string_agg(m::text, ',' ORDER BY m::text)) FROM governance_metrics_hourly m) || ' ' ||
        (SELECT count(*) FROM kt_legal_holds) || ' ' || (SELECT count(*) FROM kt_removal_log) || ' ' ||
        (SELECT count(*) FROM kt_job_runs) || ' ' || kt_governance_internal.kt_frozen_before() || ' ' ||
        (SELECT string_agg(schedule_name || '@' || watermark, ',') FROM kt_export_schedules) || ' ' ||
        (SELECT count(*) || ':' || sum(events_exported) FROM kt_export_runs)"
}
before="$(fingerprint src)"
max_id="$(q "$dir" "$port" src "SELECT max(id) FROM policy_evaluations")"

as_postgres "$PG_BIN/pg_dump" -h "$dir" -p "$port" -U postgres -Fc -f "$dir/src.dump" src
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE dst"
if as_postgres "$PG_BIN/pg_restore" -h "$dir" -p "$port" -U postgres -d dst --exit-on-error "$dir/src.dump" 2> "$dir/restore.err"; then
    pass "pg_restore exits 0"
else
    fail "pg_restore failed: $(head -5 "$dir/restore.err")"
fi
check "rows, digests and partitions identical after restore" "$(fingerprint dst)" "$before"
# kt_row_counts is not dumped: the restore's COPY goes through the row triggers, which count
check "row counts exact after restore" "$(q "$dir" "$port" dst "SELECT count(*) FROM kt_verify_row_counts()")|$(q "$dir" "$port" dst "SELECT sum(events) > 0 FROM kt_governance_internal.kt_row_counts")" "0|t"
# the restored rollups already hold the batch the restore's COPY summed again into deltas: their
# hours are recomputed, not merged on top (no double count)
restored_deltas="$(q "$dir" "$port" dst "SELECT count(*) > 0 FROM kt_governance_internal.kt_rollup_deltas")"
q "$dir" "$port" dst "SELECT * FROM kt_refresh_metrics()" >/dev/null
check "after restore and refresh: every rollup bucket equals the raw computation (deltas were re-summed: $restored_deltas)" \
    "$(q "$dir" "$port" dst "$(rollup_mismatch_sql "kt_governance_internal.kt_frozen_before() + interval '1 hour'")")" 0
check "default partition rows restored" "$(q "$dir" "$port" dst "SELECT count(*) FROM ONLY kt_governance_partitions.events_default")" 1
check "dated partitions are not extension members" \
    "$(q "$dir" "$port" dst "SELECT count(*) FROM pg_depend d JOIN pg_class c ON c.oid = d.objid WHERE d.deptype = 'e' AND c.relname ~ '_[0-9]{4}_[0-9]{2}'")" 0
new_id="$(q "$dir" "$port" dst "INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result) SELECT id, \"timestamp\", 'after-restore', 'pass' FROM ai_decision_events WHERE id = 'junk-1' RETURNING id")"
check "identity continues after the dumped maximum" "$([ "$new_id" -gt "$max_id" ] && echo yes || echo "no ($new_id <= $max_id)")" yes
check "maintenance works in the restored database" \
    "$(q "$dir" "$port" dst "SELECT rows_left_in_default FROM kt_run_maintenance()" 2>/dev/null | tail -1)" 1

# a restore made where partitions are daily: that install's first (daily) partitions overlap
# the dump's monthly ones and give way to them, since they are still empty
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE dst_daily"
if PGOPTIONS='-c kt_governance.partition_interval=daily' as_postgres env PGOPTIONS='-c kt_governance.partition_interval=daily' \
       "$PG_BIN/pg_restore" -h "$dir" -p "$port" -U postgres -d dst_daily --exit-on-error "$dir/src.dump" 2> "$dir/restore_daily.err"; then
    pass "pg_restore exits 0 where the install makes daily partitions"
else
    fail "pg_restore with daily first partitions failed: $(head -5 "$dir/restore_daily.err")"
fi
check "daily-install restore identical (the install's empty partitions gave way)" "$(fingerprint dst_daily)" "$before"

# the same with a plain SQL dump replayed by psql, as many DBAs do
as_postgres "$PG_BIN/pg_dump" -h "$dir" -p "$port" -U postgres -f "$dir/src.sql" src
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE dst_plain"
if kt_psql "$dir" "$port" -d dst_plain -f "$dir/src.sql" > "$dir/plain.log" 2>&1; then
    pass "plain-format dump replays with ON_ERROR_STOP"
else
    fail "plain-format replay failed: $(grep -m3 ERROR "$dir/plain.log")"
fi
check "plain restore identical" "$(fingerprint dst_plain)" "$before"
check "row counts exact after plain restore" "$(q "$dir" "$port" dst_plain "SELECT count(*) FROM kt_verify_row_counts()")" 0
# keys really are back: same definitions as a fresh install, FK enforced
keydefs="SELECT md5(string_agg(conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid), '; ' ORDER BY conrelid::regclass::text, conname)) FROM pg_constraint
         WHERE connamespace = 'public'::regnamespace"
idxdefs="SELECT md5(string_agg(pg_get_indexdef(indexrelid), '; ' ORDER BY indexrelid::regclass::text)) FROM pg_index
         WHERE indrelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent IN ('ai_decision_events'::regclass, 'policy_evaluations'::regclass))"
check "constraints equal the source's" "$(q "$dir" "$port" dst "$keydefs")" "$(q "$dir" "$port" src "$keydefs")"
check "indexes equal the source's" "$(q "$dir" "$port" dst "$idxdefs")" "$(q "$dir" "$port" src "$idxdefs")"
check "foreign key enforced after restore" \
    "$(kt_psql "$dir" "$port" -d dst -At -c "INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result) VALUES ('nope', now(), 'p', 'pass')" 2>&1 | grep -c 'violates foreign key')" 1

# the worker serves the restored database: restart with the library preloaded, pointed at dst
{ echo "shared_preload_libraries = 'kt_governance'"; echo "kt_governance.database = 'dst'"
  echo "kt_governance.worker_naptime = 1"; echo "kt_governance.maintenance_interval = 1"; } >> "$dir/data/postgresql.conf"
cluster_stop "$dir"; cluster_start "$dir"
runs_before="$(q "$dir" "$port" dst "SELECT count(*) FROM kt_job_runs WHERE job_name = 'maintenance'")"
for i in $(seq 40); do
    [ "$(q "$dir" "$port" dst "SELECT count(*) FROM kt_job_runs WHERE job_name = 'maintenance'")" -gt "$runs_before" ] && break
    sleep 1
done
check "the worker runs jobs in the restored database" \
    "$(q "$dir" "$port" dst "SELECT count(*) > $runs_before FROM kt_job_runs WHERE job_name = 'maintenance' AND status = 'ok'")" t
# a restore 75 days later: that install's first partitions start two months after the dump's
# and collide with the dump's premade ones by name; still empty, they give way
later="$(q "$dir" "$port" dst "SELECT to_char(now() AT TIME ZONE 'UTC' + interval '75 days', 'YYYY-MM-DD HH24:MI:SS+00')")"
cluster_stop "$dir"
KT_FAKETIME="$later"; unset KT_FAKETIME_OFFSET
cluster_start "$dir"
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE dst_later"
if as_postgres "$PG_BIN/pg_restore" -h "$dir" -p "$port" -U postgres -d dst_later --exit-on-error "$dir/src.dump" 2> "$dir/restore_later.err"; then
    pass "pg_restore exits 0 75 days after the dump ($later)"
else
    fail "pg_restore 75 days later failed: $(head -5 "$dir/restore_later.err")"
fi
check "restore 75 days later identical" "$(fingerprint dst_later)" "$before"
check "the restored database makes today's partitions at its first maintenance" \
    "$(q "$dir" "$port" dst_later "SELECT partitions_created > 0 FROM kt_run_maintenance()" 2>/dev/null | tail -1)" t
e2e_finish dump_restore
