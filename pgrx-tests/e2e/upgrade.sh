#!/usr/bin/env bash
# Upgrades to the current version from every released one whose generated install script is
# frozen in pgrx-tests/upgrade/ (kt_governance--<version>.sql; the chain restarted at 1.0.0), and
# checks that the current version, once released, is unchanged: a database created with the old SQL, holding data, keeps
# working on the current library before the update, then ALTER EXTENSION kt_governance UPDATE
# makes its extension objects equal a fresh install's, compared from the catalogs
# (pgrx-tests/upgrade/members.sql), with the data and the reports intact.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
source "$(dirname "$0")/lib.sh"
dir="$KT_ROOT/build/e2e_upgrade"; port=55437
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug
current="$(crate_version)"
released=()
for snapshot in "$KT_ROOT"/pgrx-tests/upgrade/kt_governance--*.sql; do
    [ -e "$snapshot" ] || continue
    v="${snapshot##*--}"; released+=("${v%.sql}")
done
if [ "${#released[@]}" = 0 ]; then
    echo "upgrade: no released version older than $current is frozen in pgrx-tests/upgrade/: nothing to upgrade from"
    exit 0
fi
sharedir="$("$PG_BIN/pg_config" --sharedir)/extension"
# each snapshot is installed as a version of its own: an older release under its number, the
# current one as "<version>.frozen" (its own number is the generated script's)
installed_as() { if [ "$1" = "$current" ]; then echo "$1.frozen"; else echo "$1"; fi; }
for v in "${released[@]}"; do cp "$KT_ROOT/pgrx-tests/upgrade/kt_governance--$v.sql" "$sharedir/kt_governance--$(installed_as "$v").sql"; done
cluster_create "$dir" "$port" "timezone = 'UTC'"
trap 'cluster_destroy "$dir"; for v in "${released[@]}"; do rm -f "$sharedir/kt_governance--$(installed_as "$v").sql"; done' EXIT
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE fresh"
q "$dir" "$port" fresh "CREATE EXTENSION kt_governance" >/dev/null
members() { kt_psql "$dir" "$port" -d "$1" -At -f "$KT_ROOT/pgrx-tests/upgrade/members.sql"; }
members fresh > "$dir/fresh.members"

digest="SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
    SELECT format('%s|%s|%s|%s', id, \"timestamp\", decision, cost_usd) x FROM ai_decision_events
    UNION ALL SELECT format('%s|%s|%s', event_id, policy_name, result) FROM policy_evaluations
    UNION ALL SELECT format('%s|%s|%s|%s|%s', bucket, gateway_id, model, total_requests, total_cost) FROM kt_governance_internal.kt_rollup_metrics_hourly
    UNION ALL SELECT format('%s|%s|%s', hold_id, team_id, reason) FROM kt_legal_holds) d"
# one fixed instant: windows relative to a moving now() would shift between the two digests
at="$(q "$dir" "$port" fresh "SELECT now()::text")"
reports="SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM (
    SELECT s::text r FROM kt_governance_summary(start_time => '2026-01-01', end_time => '$at'::timestamptz - interval '1 day') s
    UNION ALL SELECT t::text FROM kt_spend_by_team_model(start_time => '$at'::timestamptz - interval '20 days 5 hours', end_time => '$at'::timestamptz - interval '1 day') t
    UNION ALL SELECT s::text FROM kt_governance_summary(start_time => '$at'::timestamptz - interval '20 days 5 hours', end_time => '$at'::timestamptz - interval '1 day', team_id => 'search', gateway_id => 'gw-us-east') s
    UNION ALL SELECT p::text FROM kt_policy_effectiveness(start_time => '$at'::timestamptz - interval '20 days 5 hours', end_time => '$at'::timestamptz - interval '1 day') p
    UNION ALL SELECT (a.hour, a.series, a.total, a.blocked, a.block_rate, round(a.baseline_mean::numeric, 12),
                      round(a.baseline_stddev::numeric, 12), round(a.z_score::numeric, 9), a.status)::text
              FROM kt_anomalies(start_time => '$at'::timestamptz - interval '3 days', end_time => '$at'::timestamptz - interval '1 day') a) d"
# (baseline and z-score rounded: they are float sums, whose last digit depends on the order
# the rows are added in, which 0.6.0 fixed to hour order)

upgrade_from() {
    local from="$1" db="v${1//./_}"
    kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE $db"
    old() { q "$dir" "$port" "$db" "$1"; }
    old "CREATE EXTENSION kt_governance VERSION '$from'" >/dev/null
    check "$from: installed" "$(old "SELECT extversion FROM pg_extension WHERE extname = 'kt_governance'")" "$from"
    old "SELECT count(*) FROM kt_create_partitions(now() - interval '40 days', now() + interval '2 days')" >/dev/null
    old "SELECT kt_generate_sample_events(20000, 30, 5, now())" >/dev/null
    old "SELECT * FROM kt_refresh_metrics()" >/dev/null
    old "SELECT kt_add_legal_hold(team_id => 'team-a', reason => 'upgrade test')" >/dev/null
    old "UPDATE kt_jobs SET enabled = false WHERE job_name = 'maintenance'" >/dev/null

    # the current library serves the old SQL until the update runs
    check "$from SQL on the $current library: ingest" \
        "$(old "SELECT inserted FROM kt_ingest('[{\"id\": \"up-1\", \"timestamp\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"decision\": \"allowed\", \"model\": \"m\", \"provider\": \"p\", \"gateway_id\": \"g\"}]')")" 1
    check "$from SQL on the $current library: jobs" "$(old "SELECT status FROM kt_run_job('refresh_metrics')")" ok
    check "$from SQL on the $current library: settings" "$(old "SELECT kt_governance_internal.kt_setting('premake')")" 4
    old "DELETE FROM ai_decision_events WHERE id = 'up-1'; SELECT * FROM kt_refresh_metrics()" >/dev/null
    local before reports_before
    before="$(old "$digest")"; reports_before="$(old "$reports")"

    # the database owner controls the user's schema, which is first on the update script's
    # search_path: look-alikes planted there must not bind into what the update creates (the
    # comparison below would show a view bound to them: its definition names them unqualified)
    old "CREATE TABLE public.kt_dirty_hours (bucket timestamptz);
         CREATE TABLE public.kt_rollup_metrics_hourly (LIKE kt_governance_internal.kt_rollup_metrics_hourly);
         CREATE FUNCTION public.kt_rls_applies() RETURNS boolean LANGUAGE sql AS 'SELECT false';
         CREATE FUNCTION public.kt_frozen_before() RETURNS timestamptz LANGUAGE sql AS 'SELECT now()';
         CREATE FUNCTION public.kt_histogram_quantile(bytea, numeric) RETURNS float8 LANGUAGE sql AS 'SELECT 0::float8';
         CREATE FUNCTION public.kt_live_metrics(timestamptz, timestamptz) RETURNS SETOF int LANGUAGE sql AS 'SELECT 1'" >/dev/null
    old "ALTER EXTENSION kt_governance UPDATE" >/dev/null
    old "DROP TABLE public.kt_dirty_hours, public.kt_rollup_metrics_hourly;
         DROP FUNCTION public.kt_rls_applies(), public.kt_frozen_before(), public.kt_histogram_quantile(bytea, numeric),
                       public.kt_live_metrics(timestamptz, timestamptz)" >/dev/null
    check "$from: updated to $current" "$(old "SELECT extversion FROM pg_extension WHERE extname = 'kt_governance'")" "$current"
    check "$from: a job the user disabled stays disabled" "$(old "SELECT enabled FROM kt_jobs WHERE job_name = 'maintenance'")" f
    # what a user changed in a config table is theirs; compare the definitions with it undone
    old "UPDATE kt_jobs SET enabled = true WHERE job_name = 'maintenance'" >/dev/null
    members "$db" > "$dir/$db.members"
    if diff -u "$dir/fresh.members" "$dir/$db.members" > "$dir/$db.diff"; then
        pass "$from: upgraded objects equal a fresh install's ($(grep -c '' "$dir/fresh.members") catalog facts)"
    else
        fail "$from: upgraded objects differ from a fresh install's:"; head -80 "$dir/$db.diff"
    fi
    check "$from: data intact after the update" "$(old "$digest")" "$before"
    # spend now reads the daily rollup the update filled from the hourly one
    check "$from: reports unchanged after the update" "$(old "$reports")" "$reports_before"
    check "$from: daily spend rollup filled from the hourly one" \
        "$(old "SELECT count(*) FROM (SELECT date_trunc('day', bucket, 'UTC'), team_id, model, decision, sum(request_count)::bigint,
                sum(total_input_tokens)::bigint, sum(total_output_tokens)::bigint, sum(total_cost) FROM kt_governance_internal.kt_rollup_spend_hourly GROUP BY 1, 2, 3, 4
                EXCEPT SELECT * FROM kt_governance_internal.kt_rollup_spend_daily) d")|$(old "SELECT count(*) > 0 FROM kt_governance_internal.kt_rollup_spend_daily")" "0|t"
    check "$from: summary rollup filled from the raw rows, equal to them after a refresh" \
        "$(old "SELECT count(*) FROM kt_refresh_metrics()")|$(old "SELECT count(*) FROM (
                (SELECT date_trunc('hour', \"timestamp\", 'UTC'), gateway_id, team_id, model, decision, count(*), sum(cost_usd),
                        sum(input_tokens), sum(output_tokens), sum(latency_ms), count(latency_ms) FROM ai_decision_events GROUP BY 1, 2, 3, 4, 5
                 EXCEPT ALL SELECT * FROM kt_governance_internal.kt_rollup_summary_hourly)
                UNION ALL (SELECT * FROM kt_governance_internal.kt_rollup_summary_hourly EXCEPT ALL
                 SELECT date_trunc('hour', \"timestamp\", 'UTC'), gateway_id, team_id, model, decision, count(*), sum(cost_usd),
                        sum(input_tokens), sum(output_tokens), sum(latency_ms), count(latency_ms) FROM ai_decision_events GROUP BY 1, 2, 3, 4, 5)) d")" "1|0"
    check "$from: row counts of the stored rows exact after the update" "$(old "SELECT count(*) FROM kt_verify_row_counts()")" 0
    check "$from: objects of later versions work in the upgraded database" \
        "$(old "SELECT count(*) FROM kt_export_schedules")|$(old "SELECT status FROM kt_run_job('export')")|$(old "SELECT hours_refreshed >= 0 FROM kt_refresh_metrics()")" "0|ok|t"
}

# The current version is released: its SQL is frozen. An install from the snapshot must equal
# an install from today's generated script (compared from the catalogs, as an upgrade is: the
# generated text itself orders entities and names source lines differently from build to build).
# A difference means the SQL changed after the release: bump the version in Cargo.toml and write
# sql/kt_governance--<released>--<new>.sql, which this script then tests as an upgrade.
frozen_matches() {
    local v="$1"
    kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE frozen"
    q "$dir" "$port" frozen "CREATE EXTENSION kt_governance VERSION '$v.frozen'" >/dev/null
    members frozen > "$dir/frozen.members"
    if diff -u "$dir/fresh.members" "$dir/frozen.members" > "$dir/frozen.diff"; then
        pass "$v is released and unchanged: the frozen install equals a fresh one ($(grep -c '' "$dir/fresh.members") catalog facts)"
    else
        fail "the SQL of released $v changed (bump the version and add an upgrade script):"; head -80 "$dir/frozen.diff"
    fi
}

for v in "${released[@]}"; do
    if [ "$v" = "$current" ]; then frozen_matches "$v"; else upgrade_from "$v"; fi
done
e2e_finish upgrade
