-- kt_governance 0.1.0 -> 0.2.0: Parquet export (kt_export_events, export schedules and the
-- export job), a Parquet archive for retention, jobs that report their own failures, stricter
-- argument checks in kt_anomalies and kt_run_maintenance.
-- Frozen once released: later changes go into a new upgrade script.
\echo Use "ALTER EXTENSION kt_governance UPDATE TO '0.2.0'" to load this file. \quit

-- the Rust export engine (src/export/)
-- kt_governance::export::kt_export_range
CREATE  FUNCTION "kt_export_range"(
	"destination" TEXT, /* & str */
	"start_time" timestamp with time zone, /* TimestampWithTimeZone */
	"end_time" timestamp with time zone, /* TimestampWithTimeZone */
	"range_column" TEXT DEFAULT 'timestamp', /* & str */
	"compression" TEXT DEFAULT 'zstd', /* & str */
	"row_group_size" INT DEFAULT 122880, /* i32 */
	"include_evaluations" bool DEFAULT true, /* bool */
	"decision" TEXT DEFAULT NULL, /* Option < String > */
	"gateway_id" TEXT DEFAULT NULL, /* Option < String > */
	"team_id" TEXT DEFAULT NULL, /* Option < String > */
	"layout" TEXT DEFAULT 'day', /* & str */
	"manifest_name" TEXT DEFAULT NULL, /* Option < String > */
	"run_id" TEXT DEFAULT NULL /* Option < String > */
) RETURNS TABLE (
	"files_written" INT,  /* i32 */
	"events_exported" bigint,  /* i64 */
	"evaluations_exported" bigint,  /* i64 */
	"bytes_written" bigint,  /* i64 */
	"manifest" TEXT  /* String */
)
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, @extschema@, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kt_export_range_wrapper';

-- sql/export.sql of 0.2.0
-- Parquet export (src/export/): kt_export_events() for one range, and export schedules that
-- the worker runs with a watermark so each row is exported exactly once.

COMMENT ON FUNCTION kt_export_range(text, timestamptz, timestamptz, text, text, integer, boolean, text, text, text, text, text, text) IS
    'Internal engine of kt_export_events() and the export schedules: range_column ''timestamp'' (event time) or ''created_at'' (storage time); manifest_name and run_id name the manifest and files (generated when NULL). Requires kt_governance_admin, plus pg_write_server_files for file:// destinations.';
REVOKE ALL ON FUNCTION kt_export_range(text, timestamptz, timestamptz, text, text, integer, boolean, text, text, text, text, text, text) FROM PUBLIC;

CREATE FUNCTION kt_export_events(
    destination text,
    start_time timestamptz,
    end_time timestamptz,
    compression text DEFAULT 'zstd',
    row_group_size integer DEFAULT 122880,
    include_evaluations boolean DEFAULT true,
    decision text DEFAULT NULL,
    gateway_id text DEFAULT NULL,
    team_id text DEFAULT NULL,
    layout text DEFAULT 'day')
RETURNS TABLE (files_written integer, events_exported bigint, evaluations_exported bigint,
               bytes_written bigint, manifest text)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
BEGIN
    IF destination IS NULL OR start_time IS NULL OR end_time IS NULL OR compression IS NULL
       OR row_group_size IS NULL OR include_evaluations IS NULL OR layout IS NULL THEN
        RAISE EXCEPTION 'kt_export_events: only decision, gateway_id and team_id may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY SELECT * FROM kt_export_range(destination, start_time, end_time, 'timestamp', compression,
        row_group_size, include_evaluations, decision, gateway_id, team_id, layout, NULL, NULL);
END
$fn$;
COMMENT ON FUNCTION kt_export_events(text, timestamptz, timestamptz, text, integer, boolean, text, text, text, text) IS
    'Exports the events with start_time <= "timestamp" < end_time (and their policy evaluations, as a second dataset) as Parquet to destination: file:///absolute/dir or s3://bucket/prefix. Layout <destination>/events/year=YYYY/month=MM/day=DD/part-<run id>-<n>.parquet (layout => ''month'' drops day=), plus policy_evaluations/... and the manifest _manifests/export_<start>_<end>_<filter hash>.json, written last. Re-running the same range and filter replaces the manifest and removes the files of the previous run. compression: zstd, snappy or none. decision, gateway_id, team_id filter (AND). Requires kt_governance_admin, plus pg_write_server_files for file://.';

-- Export schedules: each run exports the rows stored (created_at) since the previous run.
CREATE TABLE kt_export_schedules (
    schedule_name        text PRIMARY KEY,
    destination          text NOT NULL,
    every                interval NOT NULL,
    compression          text NOT NULL DEFAULT 'zstd',
    row_group_size       integer NOT NULL DEFAULT 122880,
    include_evaluations  boolean NOT NULL DEFAULT true,
    decision             text,
    gateway_id           text,
    team_id              text,
    layout               text NOT NULL DEFAULT 'day',
    spare_from_retention boolean NOT NULL DEFAULT false,
    enabled              boolean NOT NULL DEFAULT true,
    watermark            timestamptz NOT NULL,
    pending_run_id       text,
    pending_lo           timestamptz,
    pending_hi           timestamptz,
    next_run_at          timestamptz NOT NULL DEFAULT now(),
    last_success         timestamptz,
    last_error           timestamptz,
    last_error_message   text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    created_by           text NOT NULL DEFAULT current_user,
    created_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT kt_export_schedules_name_check CHECK (schedule_name ~ '^[A-Za-z0-9_-]{1,63}$'),
    CONSTRAINT kt_export_schedules_destination_check CHECK (destination ~ '^(file:///|s3://)'),
    CONSTRAINT kt_export_schedules_every_check CHECK (every >= interval '1 minute'),
    CONSTRAINT kt_export_schedules_compression_check CHECK (compression IN ('zstd', 'snappy', 'none')),
    CONSTRAINT kt_export_schedules_layout_check CHECK (layout IN ('day', 'month')),
    CONSTRAINT kt_export_schedules_row_group_check CHECK (row_group_size BETWEEN 1 AND 10000000),
    CONSTRAINT kt_export_schedules_pending_check
        CHECK ((pending_run_id IS NULL) = (pending_lo IS NULL) AND (pending_lo IS NULL) = (pending_hi IS NULL))
);
SELECT pg_catalog.pg_extension_config_dump('kt_export_schedules', '');
COMMENT ON TABLE kt_export_schedules IS 'Recurring Parquet exports run by the worker''s export job. Each run exports the rows whose created_at lies in [watermark, horizon), where the horizon is the start of the oldest transaction still open (it could still store rows below it), then moves the watermark: every row is exported exactly once, also across failed runs and restarts. Manage with kt_add_export_schedule() / kt_remove_export_schedule().';
COMMENT ON COLUMN kt_export_schedules.schedule_name IS 'Name (letters, digits, _ and -); also names the run manifests.';
COMMENT ON COLUMN kt_export_schedules.destination IS 'file:///absolute/dir or s3://bucket/prefix.';
COMMENT ON COLUMN kt_export_schedules.every IS 'Period between runs (>= 1 minute).';
COMMENT ON COLUMN kt_export_schedules.compression IS 'zstd, snappy or none.';
COMMENT ON COLUMN kt_export_schedules.row_group_size IS 'Rows per Parquet row group.';
COMMENT ON COLUMN kt_export_schedules.include_evaluations IS 'Whether policy evaluations are exported too (by their own created_at).';
COMMENT ON COLUMN kt_export_schedules.decision IS 'Only events with this decision (NULL = all).';
COMMENT ON COLUMN kt_export_schedules.gateway_id IS 'Only events of this gateway (NULL = all).';
COMMENT ON COLUMN kt_export_schedules.team_id IS 'Only events of this team (NULL = all).';
COMMENT ON COLUMN kt_export_schedules.layout IS 'Hive directories per day or per month.';
COMMENT ON COLUMN kt_export_schedules.spare_from_retention IS 'When true, retention keeps rows this schedule has not exported yet (created_at >= watermark).';
COMMENT ON COLUMN kt_export_schedules.enabled IS 'Whether the worker runs the schedule.';
COMMENT ON COLUMN kt_export_schedules.watermark IS 'Rows with created_at below this have been exported.';
COMMENT ON COLUMN kt_export_schedules.pending_run_id IS 'Run id of a claimed, not yet finished run; a retry reuses it, so its files replace the failed attempt''s.';
COMMENT ON COLUMN kt_export_schedules.pending_lo IS 'Start of the claimed run''s created_at range.';
COMMENT ON COLUMN kt_export_schedules.pending_hi IS 'End (exclusive) of the claimed run''s created_at range.';
COMMENT ON COLUMN kt_export_schedules.next_run_at IS 'When the schedule is next due.';
COMMENT ON COLUMN kt_export_schedules.last_success IS 'End of the last successful run.';
COMMENT ON COLUMN kt_export_schedules.last_error IS 'When the last run failed.';
COMMENT ON COLUMN kt_export_schedules.last_error_message IS 'SQLSTATE and message of the last failure.';
COMMENT ON COLUMN kt_export_schedules.consecutive_failures IS 'Failures since the last success.';
COMMENT ON COLUMN kt_export_schedules.created_by IS 'Role that added the schedule.';
COMMENT ON COLUMN kt_export_schedules.created_at IS 'When it was added.';

-- The worker runs schedules as the bootstrap superuser, so who may point a schedule where is
-- checked when the row is written, as the role writing it (direct DML included).
CREATE FUNCTION kt_export_schedule_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.destination = OLD.destination THEN
        RETURN NEW;  -- the export job's own bookkeeping, or a pause/resume
    END IF;
    IF NOT pg_has_role(current_user, 'kt_governance_admin', 'USAGE') THEN
        RAISE EXCEPTION 'export schedules require the kt_governance_admin role' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.destination LIKE 'file://%' AND NOT pg_has_role(current_user, 'pg_write_server_files', 'USAGE') THEN
        RAISE EXCEPTION 'exporting to server files requires the pg_write_server_files role'
            USING ERRCODE = 'insufficient_privilege', HINT = 'GRANT pg_write_server_files, or export to s3://.';
    END IF;
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION kt_export_schedule_guard() IS 'Internal: trigger checking that whoever sets a schedule''s destination may export there.';
CREATE TRIGGER kt_export_schedule_guard BEFORE INSERT OR UPDATE ON kt_export_schedules
    FOR EACH ROW EXECUTE FUNCTION kt_export_schedule_guard();

CREATE TABLE kt_export_runs (
    run_id               text PRIMARY KEY,
    schedule_name        text NOT NULL,
    range_lo             timestamptz NOT NULL,
    range_hi             timestamptz NOT NULL,
    started_at           timestamptz NOT NULL,
    finished_at          timestamptz NOT NULL,
    files_written        integer NOT NULL,
    events_exported      bigint NOT NULL,
    evaluations_exported bigint NOT NULL,
    bytes_written        bigint NOT NULL,
    manifest             text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('kt_export_runs', '');
COMMENT ON TABLE kt_export_runs IS 'Completed scheduled export runs: consecutive runs of a schedule cover adjacent created_at ranges [range_lo, range_hi).';
COMMENT ON COLUMN kt_export_runs.run_id IS 'Run id, also in the file names and the manifest.';
COMMENT ON COLUMN kt_export_runs.schedule_name IS 'Schedule.';
COMMENT ON COLUMN kt_export_runs.range_lo IS 'Start of the exported created_at range.';
COMMENT ON COLUMN kt_export_runs.range_hi IS 'End (exclusive) of the exported created_at range.';
COMMENT ON COLUMN kt_export_runs.started_at IS 'Start of the successful attempt.';
COMMENT ON COLUMN kt_export_runs.finished_at IS 'End of the successful attempt.';
COMMENT ON COLUMN kt_export_runs.files_written IS 'Data files written.';
COMMENT ON COLUMN kt_export_runs.events_exported IS 'Events exported.';
COMMENT ON COLUMN kt_export_runs.evaluations_exported IS 'Policy evaluations exported.';
COMMENT ON COLUMN kt_export_runs.bytes_written IS 'Bytes of data files.';
COMMENT ON COLUMN kt_export_runs.manifest IS 'URL of the run''s manifest.';

CREATE FUNCTION kt_add_export_schedule(
    schedule_name text,
    destination text,
    every interval DEFAULT interval '1 hour',
    start_from timestamptz DEFAULT NULL,
    compression text DEFAULT 'zstd',
    row_group_size integer DEFAULT 122880,
    include_evaluations boolean DEFAULT true,
    decision text DEFAULT NULL,
    gateway_id text DEFAULT NULL,
    team_id text DEFAULT NULL,
    layout text DEFAULT 'day',
    spare_from_retention boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
BEGIN
    IF schedule_name IS NULL OR destination IS NULL OR every IS NULL THEN
        RAISE EXCEPTION 'schedule_name, destination and every must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF start_from IS NOT NULL AND NOT isfinite(start_from) THEN
        RAISE EXCEPTION 'start_from must be a finite timestamp or NULL (all rows)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO kt_export_schedules AS s (schedule_name, destination, every, watermark, compression, row_group_size,
        include_evaluations, decision, gateway_id, team_id, layout, spare_from_retention)
    VALUES (schedule_name, destination, every, coalesce(start_from, timestamptz '1970-01-01 00:00:00+00'),
        compression, row_group_size, include_evaluations, decision, gateway_id, team_id, layout,
        spare_from_retention);
    RETURN schedule_name;
EXCEPTION
    WHEN unique_violation THEN
        RAISE EXCEPTION 'export schedule "%" already exists', schedule_name USING ERRCODE = 'duplicate_object';
    WHEN check_violation THEN
        RAISE EXCEPTION 'invalid export schedule "%": %', schedule_name, SQLERRM USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Names: letters, digits, _ and -; destination file:///abs/dir or s3://bucket/prefix; every >= 1 minute; compression zstd, snappy or none; layout day or month.';
END
$fn$;
COMMENT ON FUNCTION kt_add_export_schedule(text, text, interval, timestamptz, text, integer, boolean, text, text, text, text, boolean) IS
    'Adds a recurring export: every period the worker exports the rows stored since the last run (by created_at; start_from NULL = everything stored so far) to destination, with the options of kt_export_events(). spare_from_retention = true makes retention keep rows not exported yet. Returns the name. Requires kt_governance_admin (plus pg_write_server_files for file://).';

CREATE FUNCTION kt_remove_export_schedule(schedule_name text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
BEGIN
    DELETE FROM kt_export_schedules s WHERE s.schedule_name = kt_remove_export_schedule.schedule_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'export schedule "%" does not exist', schedule_name USING ERRCODE = 'undefined_object';
    END IF;
    RETURN true;
END
$fn$;
COMMENT ON FUNCTION kt_remove_export_schedule(text) IS 'Removes an export schedule (files already written stay). Unknown names are an error (42704).';

-- Rows stored at or after this instant may still appear: a transaction that is still open
-- stamps created_at with its own start time when it commits later.
CREATE FUNCTION kt_export_horizon()
RETURNS timestamptz
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    SELECT least(now(), (SELECT min(a.xact_start) FROM pg_stat_activity a
                         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
                           AND a.backend_type = 'client backend'
                           AND a.xact_start IS NOT NULL))
$fn$;
COMMENT ON FUNCTION kt_export_horizon() IS 'Upper bound of what a scheduled export may take: now(), or the start of the oldest open transaction in this database if earlier.';

-- The schedule whose pending run or next claim is due, locked; NULL when none.
CREATE FUNCTION kt_export_claim_due()
RETURNS kt_export_schedules
LANGUAGE sql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    SELECT s.* FROM kt_export_schedules s
    WHERE s.enabled AND s.next_run_at <= now()
    ORDER BY s.pending_run_id IS NULL, s.next_run_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED
$fn$;
COMMENT ON FUNCTION kt_export_claim_due() IS 'Internal: the next due export schedule (pending runs first), row-locked.';

-- One step of the export job. A due schedule without a pending run gets its range [watermark,
-- horizon) and a run id recorded (the caller commits, then calls again); a pending run is
-- exported, and on success the watermark moves to its end. A failed export is recorded on the
-- schedule and retried with the same range and run id.
CREATE FUNCTION kt_export_job(OUT message text, OUT rows_touched bigint, OUT again boolean, OUT failed boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    s kt_export_schedules;
    r record;
    hi timestamptz;
    started timestamptz := clock_timestamp();
    state text;
    detail text;
BEGIN
    again := false; failed := false; rows_touched := 0;
    s := kt_export_claim_due();
    IF s.schedule_name IS NULL THEN
        message := 'no export due';
        RETURN;
    END IF;
    IF s.pending_run_id IS NULL THEN
        hi := kt_export_horizon();
        IF hi <= s.watermark THEN
            UPDATE kt_export_schedules x SET next_run_at = now() + s.every WHERE x.schedule_name = s.schedule_name;
            message := format('%s: nothing below the horizon yet', s.schedule_name);
            RETURN;
        END IF;
        UPDATE kt_export_schedules x
        SET pending_run_id = to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"') || '-' || substr(md5(random()::text), 1, 6),
            pending_lo = s.watermark, pending_hi = hi
        WHERE x.schedule_name = s.schedule_name;
        message := format('%s: claimed [%s, %s)', s.schedule_name, s.watermark, hi);
        again := true;
        RETURN;
    END IF;
    BEGIN
        SELECT * INTO r FROM kt_export_range(s.destination, s.pending_lo, s.pending_hi, 'created_at', s.compression,
            s.row_group_size, s.include_evaluations, s.decision, s.gateway_id, s.team_id, s.layout,
            s.schedule_name || '_' || s.pending_run_id, s.pending_run_id);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, detail = MESSAGE_TEXT;
        UPDATE kt_export_schedules x
        SET last_error = clock_timestamp(), last_error_message = state || ': ' || detail,
            consecutive_failures = x.consecutive_failures + 1,
            next_run_at = now() + least(s.every, interval '5 minutes')
        WHERE x.schedule_name = s.schedule_name;
        message := format('%s: run %s failed: %s: %s', s.schedule_name, s.pending_run_id, state, detail);
        failed := true;
        RETURN;
    END;
    INSERT INTO kt_export_runs VALUES (s.pending_run_id, s.schedule_name, s.pending_lo, s.pending_hi, started,
        clock_timestamp(), r.files_written, r.events_exported, r.evaluations_exported, r.bytes_written, r.manifest);
    UPDATE kt_export_schedules x
    SET watermark = s.pending_hi, pending_run_id = NULL, pending_lo = NULL, pending_hi = NULL,
        last_success = clock_timestamp(), consecutive_failures = 0,
        next_run_at = greatest(x.next_run_at + s.every, now())
    WHERE x.schedule_name = s.schedule_name;
    rows_touched := r.events_exported;
    message := format('%s: %s events, %s evaluations in %s files -> %s', s.schedule_name, r.events_exported,
                      r.evaluations_exported, r.files_written, r.manifest);
    again := EXISTS (SELECT FROM kt_export_schedules x WHERE x.enabled AND x.next_run_at <= now());
END
$fn$;
COMMENT ON FUNCTION kt_export_job() IS 'Internal: one step of the export job (claim a due schedule''s range, or export a claimed one). again = true: call again after committing.';

CREATE PROCEDURE kt_run_export_schedules()
LANGUAGE plpgsql
AS $fn$
DECLARE
    r record;
BEGIN
    LOOP
        -- no SET clause (a procedure with one cannot COMMIT): names are qualified instead
        SELECT * INTO r FROM @extschema@.kt_run_job('export');
        COMMIT;
        EXIT WHEN NOT r.run_again;
    END LOOP;
END
$fn$;
COMMENT ON PROCEDURE kt_run_export_schedules() IS 'Runs every due export schedule now, committing between the claim and the export as the worker does (CALL it outside a transaction block).';

-- Rows retention must keep for schedules with spare_from_retention: created_at at or after this.
CREATE FUNCTION kt_export_spare_from()
RETURNS timestamptz
LANGUAGE sql
STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    SELECT coalesce(min(least(s.watermark, s.pending_lo)), 'infinity')
    FROM kt_export_schedules s WHERE s.spare_from_retention
$fn$;
COMMENT ON FUNCTION kt_export_spare_from() IS 'Rows with created_at >= this have not been exported by every schedule with spare_from_retention, and retention keeps them (infinity when there is no such schedule).';

INSERT INTO kt_jobs (job_name, description, interval_setting) VALUES
    ('export', 'Due export schedules (kt_export_schedules): claim a range, then export it', 'export_interval');

REVOKE ALL ON FUNCTION kt_export_events(text, timestamptz, timestamptz, text, integer, boolean, text, text, text, text),
                       kt_add_export_schedule(text, text, interval, timestamptz, text, integer, boolean, text, text, text, text, boolean),
                       kt_remove_export_schedule(text), kt_export_horizon(), kt_export_claim_due(), kt_export_job(),
                       kt_export_spare_from() FROM PUBLIC;
REVOKE ALL ON PROCEDURE kt_run_export_schedules() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_export_events(text, timestamptz, timestamptz, text, integer, boolean, text, text, text, text),
                          kt_export_range(text, timestamptz, timestamptz, text, text, integer, boolean, text, text, text, text, text, text),
                          kt_add_export_schedule(text, text, interval, timestamptz, text, integer, boolean, text, text, text, text, boolean),
                          kt_remove_export_schedule(text) TO kt_governance_admin;
GRANT EXECUTE ON PROCEDURE kt_run_export_schedules() TO kt_governance_admin;
GRANT SELECT ON kt_export_schedules, kt_export_runs TO kt_governance_reader;
GRANT INSERT, DELETE, UPDATE (enabled, every, next_run_at, spare_from_retention) ON kt_export_schedules TO kt_governance_admin;

-- jobs: kt_execute_job gained OUT failed (a changed result type needs DROP + CREATE)
DROP FUNCTION kt_execute_job(text);
CREATE FUNCTION kt_execute_job(job_name text, OUT message text, OUT rows_touched bigint, OUT again boolean,
                               OUT failed boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    r record;
BEGIN
    again := false;
    failed := false;
    CASE job_name
    WHEN 'export' THEN
        SELECT * INTO r FROM kt_export_job();
        message := r.message; rows_touched := r.rows_touched; again := r.again; failed := r.failed;
    WHEN 'refresh_metrics' THEN
        SELECT * INTO r FROM kt_refresh_metrics();
        rows_touched := r.hours_refreshed;
        message := format('%s hours refreshed', r.hours_refreshed);
    WHEN 'retention' THEN
        SELECT * INTO r FROM kt_retention_job();
        rows_touched := r.events_removed;
        message := r.message;
        again := r.again;
    WHEN 'maintenance' THEN
        SELECT * INTO r FROM kt_run_maintenance();
        rows_touched := r.rows_moved;
        message := format('%s partitions created, %s rows moved, %s rows left in default',
                          r.partitions_created, r.rows_moved, r.rows_left_in_default);
    END CASE;
END
$fn$;
COMMENT ON FUNCTION kt_execute_job(text) IS 'Internal: the body of each job.';
REVOKE ALL ON FUNCTION kt_execute_job(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION kt_run_job(job_name text)
RETURNS TABLE (status text, message text, rows_touched bigint, started_at timestamptz, finished_at timestamptz,
               run_again boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    wanted text := job_name;
    state text;
    detail text;
    failed boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM kt_jobs j WHERE j.job_name = wanted) THEN
        RAISE EXCEPTION 'unknown job "%"', wanted USING ERRCODE = 'invalid_parameter_value',
            HINT = 'See SELECT job_name FROM kt_jobs.';
    END IF;
    started_at := clock_timestamp();
    run_again := false;
    BEGIN
        -- a subtransaction: a failing job is rolled back and recorded, never propagated
        SELECT x.message, x.rows_touched, x.again, x.failed INTO message, rows_touched, run_again, failed
        FROM kt_execute_job(wanted) x;
        -- a job that handled its own error (export keeps its claimed range) reports failed
        status := CASE WHEN failed THEN 'error' ELSE 'ok' END;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, detail = MESSAGE_TEXT;
        status := 'error';
        message := state || ': ' || detail;
        RAISE WARNING 'kt_governance job % failed: %', wanted, message;
    END;
    finished_at := clock_timestamp();
    INSERT INTO kt_job_runs (job_name, started_at, finished_at, status, message, rows_touched)
    VALUES (wanted, started_at, finished_at, status, message, rows_touched);
    UPDATE kt_jobs j SET last_started = kt_run_job.started_at, last_finished = kt_run_job.finished_at,
        last_success = CASE WHEN status = 'ok' THEN kt_run_job.finished_at ELSE j.last_success END,
        last_error = CASE WHEN status = 'error' THEN kt_run_job.finished_at ELSE j.last_error END,
        last_error_message = CASE WHEN status = 'error' THEN message ELSE j.last_error_message END,
        consecutive_failures = CASE WHEN status = 'ok' THEN 0 ELSE j.consecutive_failures + 1 END
    WHERE j.job_name = wanted;
    PERFORM kt_prune_job_runs(wanted);
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_run_job(text) IS 'Runs a job now (refresh_metrics, maintenance, retention or export), records the run in kt_job_runs and kt_jobs, and returns its outcome. A failing job is recorded with its SQLSTATE and message and does not raise. run_again = true: the job stopped early on purpose (retention drops one partition pair per run) and wants to run again after this transaction commits.';

-- retention: spares rows export schedules still need, writes the Parquet archive
CREATE OR REPLACE FUNCTION kt_apply_retention(hours integer, archive boolean DEFAULT NULL, max_partitions integer DEFAULT NULL)
RETURNS TABLE (cutoff timestamptz, partitions_removed text[], events_removed bigint,
               evaluations_removed bigint, events_archived bigint, events_held bigint, more_to_do boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
SET kt_governance.track_changes = off
AS $fn$
DECLARE
    do_archive boolean := coalesce(archive, kt_setting('retention_archive')::boolean);
    parquet_dest text := nullif(kt_setting('retention_archive_destination'), '');
    archived_to text := concat_ws(', ', CASE WHEN do_archive THEN 'ai_decision_events_archive' END, parquet_dest);
    part record;
    removed record;
    n_events bigint;
    n_evals bigint;
    held bigint;
    oldest timestamptz;
    newest timestamptz;
    -- rows an export schedule with spare_from_retention has not exported yet are kept like held rows
    spare timestamptz := kt_export_spare_from();
    any_hold boolean := EXISTS (SELECT FROM kt_legal_holds WHERE released_at IS NULL) OR spare < 'infinity';
BEGIN
    IF hours IS NULL OR hours <= 0 THEN
        RAISE EXCEPTION 'retention hours must be a positive number, got %', coalesce(hours::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'kt_apply_retention never means "delete everything".';
    END IF;
    IF max_partitions <= 0 THEN
        RAISE EXCEPTION 'max_partitions must be positive (or NULL for all), got %', max_partitions
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('kt_governance.retention')) THEN
        RAISE NOTICE 'kt_governance: another retention or erasure run is in progress; skipping';
        RETURN;
    END IF;
    cutoff := now() - make_interval(hours => hours);
    partitions_removed := '{}';
    events_removed := 0; evaluations_removed := 0; events_archived := 0; events_held := 0;
    more_to_do := false;

    -- rollups first: refresh what is dirty, then freeze the hours about to lose raw rows
    PERFORM kt_refresh_metrics();
    INSERT INTO kt_rollup_state (frozen_before) VALUES (date_trunc('hour', cutoff, 'UTC'))
    ON CONFLICT (singleton) DO UPDATE SET frozen_before = greatest(kt_rollup_state.frozen_before, excluded.frozen_before);

    PERFORM kt_lock_for_partition_ddl();
    IF to_regclass('pg_temp.kt_doomed') IS NULL THEN
        CREATE TEMP TABLE kt_doomed (id text, ts timestamptz) ON COMMIT DROP;
    END IF;

    -- whole partition pairs older than the cutoff and free of held rows: dropped
    FOR part IN
        SELECT ev.partition_name AS events_part, pe.partition_name AS evals_part, ev.range_start, ev.range_end
        FROM kt_partitions ev
        JOIN kt_partitions pe ON pe.parent_table = 'policy_evaluations' AND pe.range_start = ev.range_start
                             AND pe.range_end = ev.range_end
        WHERE ev.parent_table = 'ai_decision_events' AND NOT ev.is_default AND ev.range_end <= cutoff
        ORDER BY ev.range_start
    LOOP
        held := 0;
        IF any_hold THEN  -- a full scan of the partition only when some hold is active
            EXECUTE format('SELECT count(*) FROM %I.%I e WHERE kt_is_held(e.team_id, e.user_id, e.gateway_id, e."timestamp") OR e.created_at >= %L',
                           '@extschema@', part.events_part, spare) INTO held;
        END IF;
        IF held > 0 THEN
            CONTINUE;  -- trimmed below instead
        END IF;
        IF cardinality(partitions_removed) >= max_partitions THEN
            more_to_do := true;  -- the caller commits and calls again
            EXIT;
        END IF;
        EXECUTE format('SELECT count(*), min("timestamp"), max("timestamp") FROM %I.%I', '@extschema@', part.events_part)
            INTO n_events, oldest, newest;
        EXECUTE format('SELECT count(*) FROM %I.%I', '@extschema@', part.evals_part) INTO n_evals;
        IF do_archive THEN
            EXECUTE format('INSERT INTO ai_decision_events_archive SELECT * FROM %I.%I', '@extschema@', part.events_part);
            EXECUTE format('INSERT INTO policy_evaluations_archive SELECT * FROM %I.%I', '@extschema@', part.evals_part);
            events_archived := events_archived + n_events;
        END IF;
        IF parquet_dest IS NOT NULL AND n_events > 0 THEN
            -- an export error aborts this function: nothing is dropped without its archive
            PERFORM kt_export_range(parquet_dest, part.range_start, part.range_end,
                                    manifest_name => format('retention_%s', part.events_part));
        END IF;
        EXECUTE format('DROP TABLE %I.%I', '@extschema@', part.evals_part);
        EXECUTE format('DROP TABLE %I.%I', '@extschema@', part.events_part);
        partitions_removed := partitions_removed || part.events_part;
        events_removed := events_removed + n_events;
        evaluations_removed := evaluations_removed + n_evals;
        RAISE NOTICE 'kt_governance retention: dropped % (% events, % evaluations)', part.events_part, n_events, n_evals;
    END LOOP;

    IF more_to_do THEN
        INSERT INTO kt_removal_log (why, cutoff, partitions_dropped, events_removed, evaluations_removed,
                                    events_archived, archived_to)
        VALUES ('retention', cutoff, partitions_removed, events_removed, evaluations_removed, events_archived,
                nullif(archived_to, ''));
        RETURN NEXT;
        RETURN;
    END IF;

    -- everything else older than the cutoff (the straddling partition, partitions with held
    -- rows, the default partition): deleted row by row, held rows kept
    INSERT INTO pg_temp.kt_doomed
    SELECT e.id, e."timestamp" FROM ai_decision_events e
    WHERE e."timestamp" < cutoff AND NOT kt_is_held(e.team_id, e.user_id, e.gateway_id, e."timestamp")
      AND e.created_at < spare;
    SELECT min(ts), max(ts) INTO oldest, newest FROM pg_temp.kt_doomed;
    IF parquet_dest IS NOT NULL AND oldest IS NOT NULL THEN
        -- the exported range also holds the held rows between oldest and newest (they stay too)
        PERFORM kt_export_range(parquet_dest, oldest, newest + interval '1 microsecond',
            manifest_name => format('retention_trim_%s', to_char(cutoff AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS')));
    END IF;
    SELECT * INTO removed FROM kt_remove_doomed(do_archive);
    events_removed := events_removed + removed.events;
    evaluations_removed := evaluations_removed + removed.evaluations;
    events_archived := events_archived + removed.archived;
    SELECT count(*) INTO events_held FROM ai_decision_events e WHERE e."timestamp" < cutoff;
    IF removed.events > 0 THEN
        RAISE NOTICE 'kt_governance retention: deleted % events older than the cutoff from partly kept partitions', removed.events;
    END IF;
    IF events_held > 0 THEN
        RAISE NOTICE 'kt_governance retention: % events older than the cutoff kept by legal holds', events_held;
    END IF;

    INSERT INTO kt_removal_log (why, cutoff, partitions_dropped, events_removed, evaluations_removed,
                                events_archived, events_held, archived_to, oldest_removed, newest_removed)
    VALUES ('retention', cutoff, partitions_removed, events_removed, evaluations_removed, events_archived,
            events_held, nullif(archived_to, ''),
            (SELECT min(x) FROM unnest(ARRAY[oldest]) x), newest);
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_apply_retention(integer, boolean, integer) IS 'Removes every event and evaluation older than now() - hours and nothing newer: whole partitions are dropped, the partition straddling the cutoff (and any holding legally held rows) is trimmed. Refreshes rollups first and freezes the pruned hours, so reports keep the history. archive (default kt_governance.retention_archive) copies the rows to ai_decision_events_archive / policy_evaluations_archive in the same transaction; with kt_governance.retention_archive_destination set, every dropped partition and the trimmed range are first exported as Parquet there (manifests retention_<partition>.json / retention_trim_<cutoff>.json), and an export error aborts the removal. Held rows stay. Logged in kt_removal_log. hours <= 0 or NULL is an error. A concurrent run is skipped with a NOTICE. max_partitions: drop at most that many partition pairs and return more_to_do = true, leaving the rest (and the trim) to the next call, so a caller can commit in between (see kt_apply_retention_by_partition).';

-- argument checks: sigma must be finite; premake at most 366
CREATE OR REPLACE FUNCTION kt_anomalies(
    lookback interval DEFAULT '48 hours',
    sigma double precision DEFAULT 2,
    min_requests bigint DEFAULT 0,
    exclude_self boolean DEFAULT false,
    dimension text DEFAULT NULL,
    start_time timestamptz DEFAULT NULL,
    end_time timestamptz DEFAULT NULL)
RETURNS TABLE (hour timestamptz, series text, total bigint, blocked bigint, block_rate numeric,
               baseline_mean double precision, baseline_stddev double precision,
               z_score double precision, status text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    w record := kt_report_window(lookback, start_time, end_time);
    whole record := kt_rollup_hours(w.window_start, w.window_end);
    -- the metrics rollup has gateway and model but not team; hours must be whole in this zone
    use_rollups boolean := coalesce(dimension, '') <> 'team_id'
        AND kt_zone_has_whole_hours(current_setting('TimeZone'), w.window_start, w.window_end);
BEGIN
    IF dimension IS NOT NULL AND dimension NOT IN ('gateway_id', 'model', 'team_id') THEN
        RAISE EXCEPTION 'unknown dimension "%"', dimension
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use gateway_id, model, team_id or NULL.';
    END IF;
    IF sigma IS NULL OR sigma < 0 OR sigma IN ('NaN', 'Infinity') OR min_requests IS NULL OR min_requests < 0
       OR exclude_self IS NULL THEN
        RAISE EXCEPTION 'sigma must be finite and >= 0, min_requests >= 0 and exclude_self not NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH parts AS (
        SELECT r.bucket AS ts,
               CASE dimension WHEN 'gateway_id' THEN r.gateway_id WHEN 'model' THEN r.model END AS series,
               r.total_requests AS n, r.blocked AS b
        FROM kt_rollup_metrics_hourly r
        WHERE use_rollups AND r.bucket >= whole.first_hour AND r.bucket < whole.end_hour
          AND NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = r.bucket
                          AND d.bucket >= kt_frozen_before())
        UNION ALL
        SELECT e."timestamp",
               CASE dimension WHEN 'gateway_id' THEN e.gateway_id
                              WHEN 'model' THEN e.model
                              WHEN 'team_id' THEN coalesce(e.team_id, 'unassigned') END,
               1::bigint, (e.decision = 'blocked')::int::bigint
        FROM kt_live_ranges(w.window_start, w.window_end, use_rollups) live
        CROSS JOIN LATERAL (SELECT * FROM ai_decision_events x
                            WHERE x."timestamp" >= live.range_start AND x."timestamp" < live.range_end) e
    ), hourly AS (
        SELECT date_trunc('hour', p.ts) AS hour, p.series, sum(p.n)::bigint AS total, sum(p.b)::bigint AS blocked
        FROM parts p
        GROUP BY 1, 2
    ), rated AS (
        SELECT h.*, h.blocked::float8 / nullif(h.total, 0) AS rate,
               h.total >= min_requests AS counted
        FROM hourly h
    ), judged AS (
        SELECT r.*,
               -- sums over the hours that count, per series; self-exclusion subtracts the hour
               count(*) FILTER (WHERE r.counted) OVER s AS n,
               avg(r.rate) FILTER (WHERE r.counted) OVER s AS mean_all,
               stddev(r.rate) FILTER (WHERE r.counted) OVER s AS stddev_all,
               sum(r.rate) FILTER (WHERE r.counted) OVER s AS s1,
               sum(r.rate * r.rate) FILTER (WHERE r.counted) OVER s AS s2
        FROM rated r
        WINDOW s AS (PARTITION BY r.series)
    ), baselined AS (
        SELECT j.*,
               CASE WHEN NOT exclude_self OR NOT j.counted THEN j.mean_all
                    WHEN j.n > 1 THEN (j.s1 - j.rate) / (j.n - 1) END AS mean_b,
               CASE WHEN NOT exclude_self OR NOT j.counted THEN j.stddev_all
                    WHEN j.n > 2 THEN sqrt(greatest(0,
                        ((j.s2 - j.rate * j.rate) - (j.s1 - j.rate) ^ 2 / (j.n - 1)) / (j.n - 2))) END AS stddev_b
        FROM judged j
    )
    SELECT b.hour, b.series, b.total, b.blocked, round(b.rate::numeric, 4), b.mean_b, b.stddev_b,
           CASE WHEN b.stddev_b > 0 THEN (b.rate - b.mean_b) / b.stddev_b END,
           CASE WHEN b.counted AND b.rate > b.mean_b + sigma * b.stddev_b THEN 'ANOMALY' ELSE 'normal' END
    FROM baselined b
    ORDER BY b.hour DESC, b.series;
END
$fn$;
COMMENT ON FUNCTION kt_anomalies(interval, double precision, bigint, boolean, text, timestamptz, timestamptz) IS 'Hourly block-rate anomalies: an hour is ANOMALY when its block rate exceeds baseline_mean + sigma * baseline_stddev. Defaults reproduce the document''s query (last 48 hours, sigma 2, baseline over all those hours including the judged one). min_requests: hours with fewer requests are neither flagged nor part of the baseline; exclude_self: judge each hour against the other hours; dimension (gateway_id, model, team_id): one baseline per series; start_time/end_time: an explicit range instead of lookback.';

CREATE OR REPLACE FUNCTION kt_run_maintenance(premake integer DEFAULT NULL, drain_default boolean DEFAULT true)
RETURNS TABLE (partitions_created integer, rows_moved bigint, rows_left_in_default bigint,
               default_oldest timestamptz, default_newest timestamptz)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
SET TimeZone = 'UTC'
AS $fn$
DECLARE
    gran text := kt_setting('partition_interval');
    ahead int := coalesce(premake, kt_setting('premake')::int);
    oldest_allowed timestamptz := now() - make_interval(days => kt_setting('drain_max_past_days')::int);
    newest_allowed timestamptz := now() + make_interval(days => kt_setting('drain_max_future_days')::int);
    made record;
    t timestamptz := now();
    bucket timestamptz;
BEGIN
    IF ahead < 0 OR ahead > 366 THEN
        RAISE EXCEPTION 'premake must be between 0 and 366, got %', ahead USING ERRCODE = 'invalid_parameter_value';
    END IF;
    partitions_created := 0;
    rows_moved := 0;
    PERFORM kt_lock_for_partition_ddl();

    -- the current period plus `ahead` future ones
    FOR i IN 0..ahead LOOP
        made := kt_ensure_partition(t, gran);
        partitions_created := partitions_created + made.created::int;
        rows_moved := rows_moved + made.rows_moved;
        t := made.range_end;
    END LOOP;

    IF drain_default THEN
        FOR bucket IN
            SELECT DISTINCT date_trunc(CASE gran WHEN 'daily' THEN 'day' ELSE 'month' END, e."timestamp")
            FROM ONLY events_default e
            WHERE e."timestamp" >= oldest_allowed AND e."timestamp" < newest_allowed
            ORDER BY 1
        LOOP
            made := kt_ensure_partition(greatest(bucket, oldest_allowed), gran);
            partitions_created := partitions_created + made.created::int;
            rows_moved := rows_moved + made.rows_moved;
        END LOOP;
    END IF;

    SELECT count(*), min(e."timestamp"), max(e."timestamp")
      INTO rows_left_in_default, default_oldest, default_newest
    FROM ONLY events_default e;
    IF rows_left_in_default > 0 AND drain_default THEN
        RAISE WARNING 'kt_governance: % events stay in events_default (from % to %): outside the drain window',
            rows_left_in_default, default_oldest, default_newest
            USING HINT = 'Correct their timestamps, or create their partitions with kt_create_partitions() and run maintenance again.';
    END IF;
    IF rows_moved > 0 THEN
        -- autovacuum never analyzes partitioned parents; the planner needs their statistics
        ANALYZE ai_decision_events;
        ANALYZE policy_evaluations;
    END IF;
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_run_maintenance(integer, boolean) IS 'Partition maintenance (the worker runs it on a schedule): makes the current partition and premake future ones (default kt_governance.premake), then moves rows out of the default partitions into partitions of their own within the drain window (kt_governance.drain_max_past_days / drain_max_future_days), evaluations with their events, and ANALYZEs the parents. Rows outside the window stay and are reported.';
