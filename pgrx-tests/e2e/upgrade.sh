#!/usr/bin/env bash
# Upgrade 0.1.0 -> 0.2.0: a database created with 0.1.0's SQL (kept in pgrx-tests/upgrade/),
# holding data, keeps working on the 0.2.0 library before the update, then
# ALTER EXTENSION kt_governance UPDATE makes its extension objects equal a fresh 0.2.0
# install's, compared from the catalogs (pgrx-tests/upgrade/members.sql), with the data intact.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
source "$(dirname "$0")/lib.sh"
dir="$KT_ROOT/build/e2e_upgrade"; port=55437
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug
sharedir="$("$PG_BIN/pg_config" --sharedir)/extension"
cp "$KT_ROOT/pgrx-tests/upgrade/kt_governance--0.1.0.sql" "$sharedir/"
cluster_create "$dir" "$port" "timezone = 'UTC'"
trap 'cluster_destroy "$dir"; rm -f "$sharedir/kt_governance--0.1.0.sql"' EXIT
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE old" -c "CREATE DATABASE fresh"
old() { q "$dir" "$port" old "$1"; }

old "CREATE EXTENSION kt_governance VERSION '0.1.0'" >/dev/null
check "installed at 0.1.0" "$(old "SELECT extversion FROM pg_extension WHERE extname = 'kt_governance'")" 0.1.0
old "SELECT count(*) FROM kt_create_partitions(now() - interval '40 days', now() + interval '2 days')" >/dev/null
old "SELECT kt_generate_sample_events(20000, 30, 5, now())" >/dev/null
old "SELECT * FROM kt_refresh_metrics()" >/dev/null
old "SELECT kt_add_legal_hold(team_id => 'team-a', reason => 'upgrade test')" >/dev/null
old "UPDATE kt_jobs SET enabled = false WHERE job_name = 'maintenance'" >/dev/null
digest="SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
    SELECT format('%s|%s|%s|%s', id, \"timestamp\", decision, cost_usd) x FROM ai_decision_events
    UNION ALL SELECT format('%s|%s|%s', event_id, policy_name, result) FROM policy_evaluations
    UNION ALL SELECT format('%s|%s|%s|%s|%s', bucket, gateway_id, model, total_requests, total_cost) FROM kt_rollup_metrics_hourly
    UNION ALL SELECT format('%s|%s|%s', hold_id, team_id, reason) FROM kt_legal_holds) d"
reports="SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM (
    SELECT s::text r FROM kt_governance_summary(start_time => '2026-01-01', end_time => now() - interval '1 day') s
    UNION ALL SELECT t::text FROM kt_spend_by_team_model(start_time => '2026-01-01', end_time => now() - interval '1 day') t) d"
before="$(old "$digest")"; reports_before="$(old "$reports")"

# the 0.2.0 library serves 0.1.0's SQL until the update runs
check "0.1.0 SQL on the 0.2.0 library: ingest" \
    "$(old "SELECT inserted FROM kt_ingest('[{\"id\": \"up-1\", \"timestamp\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"decision\": \"allowed\", \"model\": \"m\", \"provider\": \"p\", \"gateway_id\": \"g\"}]')")" 1
check "0.1.0 SQL on the 0.2.0 library: jobs" "$(old "SELECT status FROM kt_run_job('refresh_metrics')")" ok
check "0.1.0 SQL on the 0.2.0 library: settings" "$(old "SELECT kt_setting('premake')")" 4
old "DELETE FROM ai_decision_events WHERE id = 'up-1'; SELECT * FROM kt_refresh_metrics()" >/dev/null
before="$(old "$digest")"

old "ALTER EXTENSION kt_governance UPDATE" >/dev/null
check "updated to 0.2.0" "$(old "SELECT extversion FROM pg_extension WHERE extname = 'kt_governance'")" 0.2.0
q "$dir" "$port" fresh "CREATE EXTENSION kt_governance" >/dev/null
check "a job the user disabled stays disabled" "$(old "SELECT enabled FROM kt_jobs WHERE job_name = 'maintenance'")" f
# what a user changed in a config table is theirs; compare the definitions with it undone
old "UPDATE kt_jobs SET enabled = true WHERE job_name = 'maintenance'" >/dev/null
members() { kt_psql "$dir" "$port" -d "$1" -At -f "$KT_ROOT/pgrx-tests/upgrade/members.sql"; }
members old > "$dir/old.members"; members fresh > "$dir/fresh.members"
if diff -u "$dir/fresh.members" "$dir/old.members" > "$dir/members.diff"; then
    pass "upgraded objects equal a fresh install's ($(grep -c '' "$dir/fresh.members") catalog facts)"
else
    fail "upgraded objects differ from a fresh install's:"; head -80 "$dir/members.diff"
fi
check "data intact after the update" "$(old "$digest")" "$before"
check "reports unchanged after the update" "$(old "$reports")" "$reports_before"
check "new 0.2.0 objects work in the upgraded database" \
    "$(old "SELECT count(*) FROM kt_export_schedules")|$(old "SELECT status FROM kt_run_job('export')")" "0|ok"
e2e_finish upgrade
