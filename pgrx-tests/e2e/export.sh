#!/usr/bin/env bash
# Parquet export end to end: files and S3 (a real S3-compatible server, moto, on 127.0.0.1),
# read back with pyarrow and duckdb and compared with the database; re-runs supersede; bad
# input leaves no file; a cancelled or killed export leaves no visible file; scheduled exports
# export every row exactly once across runs, an open transaction, a failed run and a kill.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
source "$(dirname "$0")/lib.sh"
dir="$KT_ROOT/build/e2e_export"; port=55435
py="$KT_ROOT/build/venv/bin/python"; check_py="$KT_ROOT/pgrx-tests/e2e/parquet_check.py"
out="$(e2e_tmp export)"   # directly under /tmp: the server (user postgres) writes here
s3_port=55436; s3="http://127.0.0.1:$s3_port"; echo_port=55435
# keys come from a credentials file (no setting holds a secret)
creds="$(e2e_tmp export_credentials)"
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug

"$KT_ROOT/build/venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$KT_ROOT/build/moto.log" 2>&1 &
moto_pid=$!
cluster_create "$dir" "$port" "timezone = 'UTC'" \
    "kt_governance.s3_endpoint = '$s3'" "kt_governance.s3_allow_http = on" "kt_governance.s3_path_style = on" \
    "kt_governance.s3_credentials_file = '$creds'"
printf '[default]\naws_access_key_id = kt-e2e-key-id-0001\naws_secret_access_key = kt-e2e-secret-key-0001\naws_session_token = kt-e2e-session-token-0001\n' > "$creds"
chown postgres:postgres "$creds"; chmod 600 "$creds"
"$py" "$check_py" s3-echo-server "$echo_port" &
echo_pid=$!
trap 'cluster_destroy "$dir"; kill $moto_pid $echo_pid 2>/dev/null || true; rm -rf "$out" "$creds"' EXIT
rm -rf "$out"; mkdir -p "$out"; chown postgres:postgres "$out"
for i in $(seq 30); do curl -s -o /dev/null "$s3" && break; sleep 0.5; done
"$py" "$check_py" s3-mkbucket "$s3" kt-lake

kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE kt"
sql() { q "$dir" "$port" kt "$1"; }
# sql_err SQL: the SQLSTATE the statement fails with ("ok" when it succeeds)
sql_err() { sqlstate_of postgres "$@"; }
# sqlstate_of ROLE SQL [SQL...]: each SQL in its own transaction
sqlstate_of() {
    local err role="$1" args=() s; shift
    for s in "$@"; do args+=(-c "$s"); done
    err="$(kt_psql "$dir" "$port" -d kt -U "$role" -At -c "\\set VERBOSITY sqlstate" "${args[@]}" 2>&1 >/dev/null || true)"
    err="$(echo "$err" | sed -nE 's/^ERROR: +([0-9A-Z]{5}).*/\1/p' | head -1)"
    echo "${err:-ok}"
}
# db_summary WHERE: the database's side of parquet_check.py's summary line
db_summary() {
    sql "SELECT format('events=%s distinct=%s cost=%s min_us=%s max_us=%s evaluations=%s',
           count(*), count(DISTINCT id), coalesce(sum(cost_usd), 0)::numeric(20,6),
           coalesce((extract(epoch FROM min(\"timestamp\")) * 1000000)::bigint::text, ''),
           coalesce((extract(epoch FROM max(\"timestamp\")) * 1000000)::bigint::text, ''),
           (SELECT count(*) FROM policy_evaluations p WHERE (p.event_id, p.event_timestamp) IN
               (SELECT id, \"timestamp\" FROM ai_decision_events e WHERE $1)))
         FROM ai_decision_events e WHERE $1"
}
reader_summary() { "$py" "$check_py" summary "$@" | sed -E 's/ files=[0-9]+ problems=0$//'; }
# fresh N SEED END: N sample events in the day before END, stored now (the generator stamps
# created_at like the event time; a gateway's rows get now(), which schedules go by)
fresh() {
    echo "SELECT kt_generate_sample_events($1, 1, $2, '$3');
          UPDATE ai_decision_events SET created_at = now()
          WHERE \"timestamp\" > timestamptz '$3' - interval '1 day' AND \"timestamp\" <= '$3'"
}
visible_files() { find "$1" -name '*.parquet' 2>/dev/null | wc -l | tr -d ' '; }
all_files() { find "$1" -type f 2>/dev/null | wc -l | tr -d ' '; }

kt_psql "$dir" "$port" -d kt -c "CREATE EXTENSION kt_governance" \
    -c "SELECT kt_generate_sample_events(30000, 20, 7, '2026-04-21 00:00+00')" >/dev/null
lo="2026-04-05 00:00+00"; hi="2026-04-15 12:00+00"
range="\"timestamp\" >= '$lo' AND \"timestamp\" < '$hi'"

echo "-- files: read back with pyarrow and duckdb"
sql "SELECT * FROM kt_export_events('file://$out/a', '$lo', '$hi')" >/dev/null
manifest="$(ls "$out"/a/_manifests/*.json)"
check "pyarrow/duckdb totals (manifest files) equal the database" "$(reader_summary "$out/a" "$manifest")" "$(db_summary "$range")"
check "pyarrow/duckdb totals (Hive glob) equal the database" "$(reader_summary "$out/a")" "$(db_summary "$range")"
check "one file per day per dataset" "$(visible_files "$out/a")" 22
check "Hive layout: unpadded integers" "$(ls -d "$out"/a/events/year=2026/month=4/day=5 | wc -l)" 1
check "created_by in the form parquet-java parses" \
    "$("$py" -c "import pyarrow.parquet as pq,glob; print(pq.ParquetFile(glob.glob('$out/a/events/**/*.parquet', recursive=True)[0]).metadata.created_by)" \
       | grep -cE '^kt_governance version [0-9]+\.[0-9]+\.[0-9]+ \(build ([0-9a-f]{12}|source)\)$')" 1

echo "-- the read-back matrix: pyarrow, DuckDB, Polars, pandas, fastparquet without options"
day10="$range AND extract(day FROM \"timestamp\" AT TIME ZONE 'UTC') = 10"
expected="$(sql "SELECT format('events=%s cost=%s tokens=%s day_rows=%s evaluations=%s details_json=%s problems=none',
    count(*), sum(cost_usd)::numeric(20,6), sum(input_tokens), count(*) FILTER (WHERE $day10),
    (SELECT count(*) FROM policy_evaluations p WHERE (p.event_id, p.event_timestamp) IN (SELECT id, \"timestamp\" FROM ai_decision_events e WHERE $range)),
    (SELECT count(*) FROM policy_evaluations p WHERE jsonb_typeof(p.details) = 'object' AND (p.event_id, p.event_timestamp) IN (SELECT id, \"timestamp\" FROM ai_decision_events e WHERE $range)))
  FROM ai_decision_events e WHERE $range")"
matrix="$("$py" "$KT_ROOT/pgrx-tests/e2e/readers.py" totals "$out/a" 10 2>/dev/null)"
for reader in pyarrow duckdb polars pandas fastparquet; do
    check "$reader: counts, sums, an integer day filter, UTC timestamps, details as JSON text" \
        "$(echo "$matrix" | sed -n "s/^$reader: //p")" "$expected"
done

echo "-- file modes: a loader running as another OS user reads the files"
id kt_e2e_loader >/dev/null 2>&1 || useradd --no-create-home --groups postgres kt_e2e_loader
id kt_e2e_outsider >/dev/null 2>&1 || useradd --no-create-home kt_e2e_outsider
a_file="$(find "$out/a/events" -name '*.parquet' | head -1)"
check "default modes: files 0640, directories 0750" \
    "$(stat -c %a "$a_file") $(stat -c %a "$(dirname "$a_file")") $(stat -c %a "$out/a/_manifests")" "640 750 750"
check "a loader in the files' group reads them" "$(runuser -u kt_e2e_loader -- head -c 4 "$a_file" 2>&1)" PAR1
check "another OS user does not (the default is group-readable only)" \
    "$(runuser -u kt_e2e_outsider -- head -c 4 "$a_file" >/dev/null 2>&1 && echo read || echo denied)" denied
sql "SET kt_governance.export_file_mode = '0644'; SELECT kt_export_events('file://$out/wide', '$lo', '$hi', include_evaluations => false)" >/dev/null
w_file="$(find "$out/wide/events" -name '*.parquet' | head -1)"
check "export_file_mode 0644: every OS user reads" \
    "$(stat -c %a "$w_file") $(stat -c %a "$out/wide/events/year=2026") $(runuser -u kt_e2e_outsider -- head -c 4 "$w_file" 2>&1)" "644 755 PAR1"
loaded="SELECT kt_governance_internal.kt_setting('premake');"
check "an executable or owner-unreadable mode is refused at SET" \
    "$(sql_err "$loaded SET kt_governance.export_file_mode = '0755'")$(sql_err "$loaded SET kt_governance.export_file_mode = '0440'")" 2202322023
check "export_file_mode is described in pg_settings" \
    "$(sql "$loaded SELECT setting, context FROM pg_settings WHERE name = 'kt_governance.export_file_mode' AND short_desc <> ''" | tail -1)" "0640|superuser"
check "manifest range and schema version" \
    "$("$py" -c "import json,sys; m=json.load(open('$manifest')); print(m['schema_version'], m['range']['start'], m['range']['end'], m['datasets']['events']['rows'])")" \
    "1 2026-04-05T00:00:00.000000Z 2026-04-15T12:00:00.000000Z $(sql "SELECT count(*) FROM ai_decision_events WHERE $range")"
check "no staging files left" "$(find "$out/a" -name '*.tmp' | wc -l)" 0

echo "-- re-running the same export replaces its files under the same names"
# files_with_sums ROOT: every data file's checksum and name, sorted by name
files_with_sums() { (cd "$1" && find . -name '*.parquet' -exec sha256sum {} + | sort -k2); }
first_files="$(files_with_sums "$out/a")"
sql "SELECT * FROM kt_export_events('file://$out/a', '$lo', '$hi')" >/dev/null
check "still one manifest" "$(ls "$out"/a/_manifests/*.json | wc -l)" 1
check "unchanged rows: the same names with the same bytes (a loader that remembers files skips them)" \
    "$(files_with_sums "$out/a")" "$first_files"
sql "UPDATE ai_decision_events SET cost_usd = cost_usd + 1
     WHERE id = (SELECT id FROM ai_decision_events WHERE $range ORDER BY id LIMIT 1)" >/dev/null
sql "SELECT * FROM kt_export_events('file://$out/a', '$lo', '$hi')" >/dev/null
check "one changed cost: the same names, one file with new bytes" \
    "$(files_with_sums "$out/a" | awk '{print $2}') $(diff <(echo "$first_files") <(files_with_sums "$out/a") | grep -c '^>')" \
    "$(echo "$first_files" | awk '{print $2}') 1"
check "no row twice after the re-runs (Hive glob)" "$(reader_summary "$out/a")" "$(db_summary "$range")"
check "DuckDB and pyarrow over the whole prefix: every row once" \
    "$("$py" -c "
import duckdb, pyarrow.dataset as ds
d = duckdb.sql(\"SELECT count(*), count(DISTINCT id) FROM read_parquet('$out/a/events/**/*.parquet', hive_partitioning = true)\").fetchone()
t = ds.dataset('$out/a/events', format='parquet', partitioning='hive').to_table(columns=['id'])
print(d[0], d[1], t.num_rows, len(set(t.column('id').to_pylist())))")" \
    "$(sql "SELECT format('%s %s %s %s', count(*), count(DISTINCT id), count(*), count(DISTINCT id)) FROM ai_decision_events WHERE $range")"

echo "-- options: month layout, snappy, filter, no evaluations"
sql "SELECT * FROM kt_export_events('file://$out/b', '$lo', '$hi', compression => 'snappy', layout => 'month',
     decision => 'blocked', include_evaluations => false, row_group_size => 100)" >/dev/null
check "filtered export holds exactly the blocked events" \
    "$(reader_summary "$out/b" | sed -E 's/ evaluations=[0-9]+//')" \
    "$(db_summary "$range AND decision = 'blocked'" | sed -E 's/ evaluations=[0-9]+//')"
check "month layout: one events file, no evaluations" "$(visible_files "$out/b")" 1
check "row groups of 100 rows" "$("$py" -c "import pyarrow.parquet as pq,glob; f=pq.ParquetFile(glob.glob('$out/b/events/**/*.parquet', recursive=True)[0]); print(f.metadata.row_group(0).num_rows)")" 100

echo "-- empty range: a manifest with zero rows, no data files"
sql "SELECT * FROM kt_export_events('file://$out/empty', '2001-01-01', '2001-01-02')" >/dev/null
check "no data files" "$(visible_files "$out/empty")" 0
check "manifest says 0 rows" "$("$py" -c "import json,glob; m=json.load(open(glob.glob('$out/empty/_manifests/*.json')[0])); print(m['datasets']['events']['rows'], len(m['datasets']['events']['files']))")" "0 0"

echo "-- S3"
sql "SELECT * FROM kt_export_events('s3://kt-lake/gov/lake', '$lo', '$hi')" >/dev/null
keys="$("$py" "$check_py" s3-list "$s3" kt-lake gov/lake)"
check "bucket holds the files and the manifest" "$(echo "$keys" | grep -c '\.parquet$') $(echo "$keys" | grep -c '_manifests/.*\.json$')" "22 1"
"$py" "$check_py" s3-fetch "$s3" kt-lake gov/lake "$out/s3copy"
check "objects read back equal the database" "$(reader_summary "$out/s3copy" "$(ls "$out"/s3copy/_manifests/*.json)")" "$(db_summary "$range")"
sql "SELECT * FROM kt_export_events('s3://kt-lake/gov/lake', '$lo', '$hi')" >/dev/null
check "S3 re-run supersedes: still 22 objects" "$("$py" "$check_py" s3-list "$s3" kt-lake gov/lake | grep -c '\.parquet$')" 22

echo "-- bad input: a clear SQLSTATE and no file"
mkdir -p "$out/ro"; chmod 555 "$out/ro"
check "relative path" "$(sql_err "SELECT kt_export_events('file://tmp/x', '$lo', '$hi')")" 22023
check "dot-dot segments" "$(sql_err "SELECT kt_export_events('file://$out/../etc', '$lo', '$hi')")" 22023
check "unknown scheme" "$(sql_err "SELECT kt_export_events('ftp://host/x', '$lo', '$hi')")" 22023
check "unwritable directory" "$(sql_err "SELECT kt_export_events('file://$out/ro/x', '$lo', '$hi')")" 58030
check "start after end" "$(sql_err "SELECT kt_export_events('file://$out/c', '$hi', '$lo')")" 22023
check "infinite end" "$(sql_err "SELECT kt_export_events('file://$out/c', '$lo', 'infinity')")" 22023
check "unknown compression" "$(sql_err "SELECT kt_export_events('file://$out/c', '$lo', '$hi', compression => 'lzma')")" 22023
check "row_group_size 0" "$(sql_err "SELECT kt_export_events('file://$out/c', '$lo', '$hi', row_group_size => 0)")" 22023
check "NULL destination" "$(sql_err "SELECT kt_export_events(NULL, '$lo', '$hi')")" 22004
check "bucket that does not exist" "$(sql_err "SELECT kt_export_events('s3://no-such-bucket/x', '$lo', '$hi')")" 58030
check "invalid bucket name" "$(sql_err "SELECT kt_export_events('s3://A_B/x', '$lo', '$hi')")" 22023
check "a misspelt decision filter names the valid ones" "$(sql_err "SELECT kt_export_events('file://$out/c', '$lo', '$hi', decision => 'block')")" 22023
check "so does a schedule's" "$(sql_err "SELECT kt_add_export_schedule('typo', 'file://$out/c', decision => 'block')")" 22023
check "nothing written by the failed calls" "$(all_files "$out/c")$(all_files "$out/ro")" 00
sql "CREATE ROLE kt_e2e_admin LOGIN IN ROLE kt_governance_admin; CREATE ROLE kt_e2e_reader LOGIN IN ROLE kt_governance_reader" >/dev/null
as_role() { sqlstate_of "$@"; }
check "reader cannot export" "$(as_role kt_e2e_reader "SELECT kt_export_events('s3://kt-lake/r', '$lo', '$hi')")" 42501
check "admin without pg_write_server_files cannot write server files" \
    "$(as_role kt_e2e_admin "SELECT kt_export_events('file://$out/c', '$lo', '$hi')")" 42501
check "admin may export to S3" "$(as_role kt_e2e_admin "SELECT kt_export_events('s3://kt-lake/admin', '$lo', '$hi')")" ok
check "admin cannot schedule server-file exports either" \
    "$(as_role kt_e2e_admin "SELECT kt_add_export_schedule('x', 'file://$out/c')")" 42501
# issue 20 class 4: a manifest is replaced only by whoever wrote it, and a previous manifest is
# trusted only for plain part-file names inside its own destination
sql "CREATE ROLE kt_e2e_admin2 LOGIN IN ROLE kt_governance_admin" >/dev/null
check "another admin may not replace an admin's manifest (and delete its files)" \
    "$(as_role kt_e2e_admin2 "SELECT kt_export_events('s3://kt-lake/admin', '$lo', '$hi')")" 42501
check "the first admin's files are all still there" "$("$py" "$check_py" s3-list "$s3" kt-lake admin | grep -c '\.parquet$')" 22
check "the admin who wrote it may" "$(as_role kt_e2e_admin "SELECT kt_export_events('s3://kt-lake/admin', '$lo', '$hi')")" ok
victim="$(e2e_tmp export_victim)"; echo keep > "$victim"; chown postgres:postgres "$victim"
sql "SELECT kt_export_events('file://$out/plant', '$lo', '$hi')" >/dev/null
planted="$(ls "$out/plant/_manifests/"*.json | head -1)"
"$py" - "$planted" "$victim" <<'PY'
import json, sys
path, victim = sys.argv[1], sys.argv[2]
m = json.load(open(path))
m["datasets"]["events"]["files"] += [{"path": victim}, {"path": "../../../../.." + victim},
                                     {"path": "events/../../../../../.." + victim}]
json.dump(m, open(path, "w"))
PY
sql "SELECT kt_export_events('file://$out/plant', '$lo', '$hi')" >/dev/null
check "a planted manifest's absolute and .. paths are not deleted by the re-run" "$(cat "$victim" 2>/dev/null)" keep
check "no staging file is left in the destination" "$(find "$out/plant" -name '*.tmp' | wc -l)" 0
rm -f "$victim"
check "no setting holds a secret (a refused SET would echo it into the log)" \
    "$(sql "SELECT count(*) FROM pg_settings WHERE name LIKE 'kt_governance.%' AND name ~ '(secret|key_id|token|password)'")" 0
check "the credentials file setting is hidden from non-superusers" \
    "$(as_role kt_e2e_admin "SELECT kt_governance_internal.kt_setting('s3_credentials_file')")$(kt_psql "$dir" "$port" -d kt -U kt_e2e_admin -At -c "SELECT count(*) FROM pg_settings WHERE name = 'kt_governance.s3_credentials_file'")" 425010
loaded="SELECT kt_governance_internal.kt_setting('premake');"
check "SET of the credentials file is refused" "$(sql_err "$loaded SET kt_governance.s3_credentials_file = '/tmp/x'")" 55P02
check "ALTER SYSTEM of the credentials file is refused" "$(sql_err "$loaded" "ALTER SYSTEM SET kt_governance.s3_credentials_file = '/tmp/x'")" 55P02
# ALTER SYSTEM in a session that has not loaded the library cannot be stopped; the setting is
# then refused where it would be used
kt_psql "$dir" "$port" -d kt -c "ALTER SYSTEM SET kt_governance.s3_credentials_file = '/tmp/x'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
check "a credentials file from ALTER SYSTEM is refused at use" "$(sql_err "SELECT kt_export_events('s3://kt-lake/z', '$lo', '$hi')")" F0000
kt_psql "$dir" "$port" -d kt -c "ALTER SYSTEM RESET kt_governance.s3_credentials_file" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
# issue 20 class 5: an S3 server whose error bodies echo the credentials it was sent. The
# keys reach neither the client's error, nor the schedule row, nor job history, nor the log.
echo_dest="SET kt_governance.s3_endpoint = 'http://127.0.0.1:$echo_port';"
echo_err="$(kt_psql "$dir" "$port" -d kt -At -c "$echo_dest SELECT kt_export_events('s3://kt-lake/echo', '$lo', '$hi')" 2>&1 || true)"
check "the echoing server refused the export" "$(echo "$echo_err" | grep -c 'SignatureDoesNotMatch')" 1
check "no credential in the client's error" "$(echo "$echo_err" | grep -c 'kt-e2e-key-id-0001\|kt-e2e-secret-key-0001\|kt-e2e-session-token-0001')" 0
kt_psql "$dir" "$port" -d kt -c "ALTER DATABASE kt SET kt_governance.s3_endpoint = 'http://127.0.0.1:$echo_port'" >/dev/null
sql "SELECT kt_add_export_schedule('echoing', 's3://kt-lake/echo', '1 minute', start_from => '$lo')" >/dev/null
kt_psql "$dir" "$port" -d kt -At -c "SELECT status FROM kt_run_job('export')" -c "SELECT status FROM kt_run_job('export')" >/dev/null 2>&1 || true
check "the schedule recorded the failure" "$(sql "SELECT last_error_message LIKE '%SignatureDoesNotMatch%' FROM kt_export_schedules WHERE schedule_name = 'echoing'")" t
check "no credential in schedules, runs or job history" \
    "$(sql "SELECT count(*) FROM (SELECT last_error_message AS m FROM kt_export_schedules UNION ALL SELECT message FROM kt_job_runs) t
            WHERE m ~ 'kt-e2e-(key-id|secret-key|session-token)-0001'")" 0
check "no credential in the server log" "$(grep -c 'kt-e2e-key-id-0001\|kt-e2e-secret-key-0001\|kt-e2e-session-token-0001' "$dir/server.log" || true)" 0
sql "SELECT kt_remove_export_schedule('echoing')" >/dev/null
kt_psql "$dir" "$port" -d kt -c "ALTER DATABASE kt RESET kt_governance.s3_endpoint" >/dev/null
# issue 20 class 9: a schedule's runs export as the role that made it, with its row-level
# security, not as the worker's superuser (35,741 rows went out where the owner could see 5,381)
rls_team="$(sql "SELECT team_id FROM ai_decision_events WHERE team_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")"
sql "ALTER TABLE ai_decision_events ENABLE ROW LEVEL SECURITY;
     CREATE POLICY e2e_one_team ON ai_decision_events TO kt_e2e_admin USING (team_id = '$rls_team')" >/dev/null
as_role kt_e2e_admin "SELECT kt_add_export_schedule('rlsfeed', 's3://kt-lake/rls', '1 minute', include_evaluations => false)" >/dev/null
kt_psql "$dir" "$port" -d kt -At -c "SELECT status FROM kt_run_job('export')" -c "SELECT status FROM kt_run_job('export')" >/dev/null
rls_dir="$(e2e_tmp export_rls)"; rm -rf "$rls_dir"
"$py" "$check_py" s3-fetch "$s3" kt-lake rls "$rls_dir" >/dev/null
check "the schedule's run exported only the rows its creator may see" \
    "$("$py" "$check_py" summary "$rls_dir" | grep -o 'events=[0-9]*')" "events=$(sql "SELECT count(*) FROM ai_decision_events WHERE team_id = '$rls_team'")"
check "and its manifest names the creator" \
    "$(cat "$rls_dir"/_manifests/*.json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["created_by"])')" kt_e2e_admin
rm -rf "$rls_dir"
# (its run record goes too: the schedule checks below count every run)
sql "SELECT kt_remove_export_schedule('rlsfeed'); DELETE FROM kt_export_runs WHERE schedule_name = 'rlsfeed';
     DROP POLICY e2e_one_team ON ai_decision_events;
     ALTER TABLE ai_decision_events DISABLE ROW LEVEL SECURITY" >/dev/null
check "the admin's S3 export is complete" "$("$py" "$check_py" s3-list "$s3" kt-lake admin | grep -c '\.parquet$')" 22

echo "-- cancelled and killed exports leave no visible file"
sql "SELECT kt_generate_sample_events(300000, 1, 8, '2026-04-22 00:00+00')" >/dev/null
big="SELECT * FROM kt_export_events('file://$out/k', '2026-04-21', '2026-04-22 00:00:01')"
kt_psql "$dir" "$port" -d kt -c "SET statement_timeout = '1500ms'" -c "$big" >/dev/null 2>&1 || true
check "statement_timeout: no file at all" "$(all_files "$out/k")" 0
(kt_psql "$dir" "$port" -d kt -c "$big" >/dev/null 2>&1 || true) &
bg=$!
sleep 1.5
victim="$(q "$dir" "$port" postgres "SELECT pid FROM pg_stat_activity WHERE query LIKE '%kt_export_events%' AND pid <> pg_backend_pid()")"
kill -9 "$victim" 2>/dev/null || true
wait "$bg"
for i in $(seq 30); do sql "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
check "kill -9: no visible data file, no manifest" "$(visible_files "$out/k") $(find "$out/k" -name '*.json' | wc -l)" "0 0"

echo "-- scheduled exports: every row exactly once"
sql "DELETE FROM policy_evaluations WHERE event_timestamp >= '2026-04-21';
     DELETE FROM ai_decision_events WHERE \"timestamp\" >= '2026-04-21'" >/dev/null
sql "SELECT kt_add_export_schedule('lake', 'file://$out/sched', every => '1 minute')" >/dev/null
kt_psql "$dir" "$port" -d kt -c "CALL kt_run_export_schedules()"
check "first run exported everything stored so far" \
    "$(sql "SELECT sum(events_exported) FROM kt_export_runs")" "$(sql "SELECT count(*) FROM ai_decision_events")"
# a writer whose transaction is open during the next run commits rows stamped before its horizon
kt_psql "$dir" "$port" -d kt -c "BEGIN" -c "$(fresh 500 9 '2026-04-25 00:00+00')" \
    -c "SELECT pg_sleep(4)" -c "COMMIT" >/dev/null &
bg=$!
sleep 1
sql "$(fresh 700 10 '2026-04-26 00:00+00')" >/dev/null
sql "UPDATE kt_export_schedules SET next_run_at = now()" >/dev/null
kt_psql "$dir" "$port" -d kt -c "CALL kt_run_export_schedules()"
check "the run stopped at the open transaction's start" "$(sql "SELECT events_exported FROM kt_export_runs ORDER BY range_lo DESC LIMIT 1")" 0
wait "$bg"
sql "UPDATE kt_export_schedules SET next_run_at = now()" >/dev/null
kt_psql "$dir" "$port" -d kt -c "CALL kt_run_export_schedules()"
check "the late-committing rows came with the next run" "$(sql "SELECT events_exported FROM kt_export_runs ORDER BY range_lo DESC LIMIT 1")" 1200
check "runs cover adjacent ranges" \
    "$(sql "SELECT count(*) FROM (SELECT range_lo, lag(range_hi) OVER (ORDER BY range_lo) AS prev FROM kt_export_runs) r WHERE prev IS NOT NULL AND prev <> range_lo")" 0
# a failing destination: recorded, watermark kept, retried with the same run id
sql "UPDATE kt_export_schedules SET enabled = false" >/dev/null
sql "SELECT kt_add_export_schedule('s3feed', 's3://kt-feed/x', every => '1 minute')" >/dev/null
kt_psql "$dir" "$port" -d kt -c "CALL kt_run_export_schedules()" >/dev/null 2>&1
check "failed run recorded, watermark not moved" \
    "$(sql "SELECT consecutive_failures, watermark = '1970-01-01 00:00+00', pending_run_id IS NOT NULL FROM kt_export_schedules WHERE schedule_name = 's3feed'")" "1|t|t"
check "job history shows the error" "$(sql "SELECT status FROM kt_job_runs WHERE job_name = 'export' ORDER BY run_id DESC LIMIT 1")" error
pending="$(sql "SELECT pending_run_id FROM kt_export_schedules WHERE schedule_name = 's3feed'")"
"$py" "$check_py" s3-mkbucket "$s3" kt-feed
sql "UPDATE kt_export_schedules SET next_run_at = now() WHERE schedule_name = 's3feed'" >/dev/null
kt_psql "$dir" "$port" -d kt -c "CALL kt_run_export_schedules()" >/dev/null
check "retry succeeded with the claimed run id" "$(sql "SELECT run_id FROM kt_export_runs WHERE schedule_name = 's3feed'")" "$pending"
sql "UPDATE kt_export_schedules SET enabled = true" >/dev/null
# a run killed mid-export: the watermark does not move; the next run exports the rows once
sql "$(fresh 300000 11 '2026-04-27 00:00+00')" >/dev/null
sql "UPDATE kt_export_schedules SET next_run_at = now()" >/dev/null
(kt_psql "$dir" "$port" -d kt -c "CALL kt_run_export_schedules()" >/dev/null 2>&1 || true) &
bg=$!
sleep 2.5
victim="$(q "$dir" "$port" postgres "SELECT pid FROM pg_stat_activity WHERE query LIKE '%kt_run_export_schedules%' AND pid <> pg_backend_pid()")"
watermark_before="$(sql "SELECT watermark FROM kt_export_schedules WHERE schedule_name = 'lake'")"
kill -9 "$victim" 2>/dev/null || true
wait "$bg"
for i in $(seq 30); do sql "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
check "killed run: watermark unchanged" "$(sql "SELECT watermark FROM kt_export_schedules WHERE schedule_name = 'lake'")" "$watermark_before"
sql "UPDATE kt_export_schedules SET next_run_at = now()" >/dev/null
kt_psql "$dir" "$port" -d kt -c "CALL kt_run_export_schedules()" >/dev/null
check "every stored event exported exactly once over the schedule's runs (Hive glob)" \
    "$(reader_summary "$out/sched")" "$(db_summary "true")"
check "a schedule's unexported rows are spared by retention" \
    "$(sql "UPDATE kt_export_schedules SET spare_from_retention = true, next_run_at = now() + interval '1 day' WHERE schedule_name = 'lake';
            INSERT INTO ai_decision_events (id, \"timestamp\", decision, model, provider, gateway_id) VALUES ('late-old', '2026-01-02', 'allowed', 'm', 'p', 'g');
            SELECT events_held FROM kt_apply_retention(24 * 100)")" 1
# a disabled schedule never exports, so it would keep every later row forever: it spares nothing
check "a disabled schedule spares nothing" \
    "$(sql "UPDATE kt_export_schedules SET enabled = false WHERE schedule_name = 'lake';
            SELECT events_held FROM kt_apply_retention(24 * 100)")" 0
echo "-- retention archives to Parquet before it removes anything"
sql "SELECT count(*) FROM kt_create_partitions('2020-01-01', '2020-03-01')" >/dev/null
sql "SELECT kt_generate_sample_events(4000, 50, 12, '2020-02-20')" >/dev/null
old="\"timestamp\" < '2020-03-01'"
expected="$(db_summary "$old")"
hours="$(sql "SELECT (extract(epoch FROM now() - '2020-03-01'::timestamptz) / 3600)::int")"
check "an unwritable archive destination aborts the removal" \
    "$(sql_err "SET kt_governance.retention_archive_destination = 'file://$out/ro/arch'; SELECT kt_apply_retention($hours)")$(sql "SELECT count(*) > 0 FROM ai_decision_events WHERE $old")" "58030t"
sql "SET kt_governance.retention_archive_destination = 'file://$out/arch'; SELECT kt_apply_retention($hours)" >/dev/null
check "the Parquet archive holds exactly the removed events and evaluations" \
    "$(reader_summary "$out/arch")" "$expected"
check "nothing older than the cutoff is left" "$(sql "SELECT count(*) FROM ai_decision_events WHERE $old")" 0
check "the removal log names the archive" "$(sql "SELECT archived_to FROM kt_removal_log ORDER BY removal_id DESC LIMIT 1")" "file://$out/arch"
e2e_finish export
