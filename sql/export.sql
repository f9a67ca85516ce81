-- Parquet export (src/export/): kt_export_events() for one range, and export schedules that
-- the worker runs with a watermark so each row is exported exactly once.

COMMENT ON FUNCTION kt_export_range(text, timestamptz, timestamptz, text, text, integer, boolean, text, text, text, text, text, text, text) IS
    'Internal engine of kt_export_events() and the export schedules: range_column ''timestamp'' (event time) or ''created_at'' (storage time); manifest_name and run_id name the manifest and files (generated when NULL); run_as (the export job only, as a superuser) runs the export as the schedule''s creator, with its privileges and row-level security. Requires kt_governance_admin, plus pg_write_server_files for file:// destinations. A manifest it would replace must have been written by the same role.';
REVOKE ALL ON FUNCTION kt_export_range(text, timestamptz, timestamptz, text, text, integer, boolean, text, text, text, text, text, text, text) FROM PUBLIC;

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
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
BEGIN
    IF destination IS NULL OR start_time IS NULL OR end_time IS NULL OR compression IS NULL
       OR row_group_size IS NULL OR include_evaluations IS NULL OR layout IS NULL THEN
        RAISE EXCEPTION 'kt_export_events: only decision, gateway_id and team_id may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- the reports' check: a misspelt decision is an error naming the valid ones, not an empty
    -- export with a manifest (schedules check theirs when it is set)
    IF decision IS NOT NULL THEN
        PERFORM kt_check_decisions(ARRAY[decision]);
    END IF;
    RETURN QUERY SELECT * FROM kt_export_range(destination, start_time, end_time, 'timestamp', compression,
        row_group_size, include_evaluations, decision, gateway_id, team_id, layout, NULL, NULL);
END
$fn$;
COMMENT ON FUNCTION kt_export_events(text, timestamptz, timestamptz, text, integer, boolean, text, text, text, text) IS
    'Exports the events with start_time <= "timestamp" < end_time (and their policy evaluations, as a second dataset) as Parquet to destination: file:///absolute/dir or s3://bucket/prefix. Layout <destination>/events/year=YYYY/month=M/day=D/part-<manifest name>.parquet (unpadded integers; layout => ''month'' drops day=), plus policy_evaluations/... and the manifest _manifests/<manifest name>.json, written last, named export_<start>_<end>_<hash of filter and options>. Re-running the same range and filter writes the same file names (each file replaced whole) and removes files of the previous run it did not write again. compression: zstd, snappy or none. decision (allowed, blocked, escalated, redacted), gateway_id, team_id filter (AND). Requires kt_governance_admin, plus pg_write_server_files for file://.';

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
COMMENT ON COLUMN kt_export_schedules.spare_from_retention IS 'When true and the schedule is enabled, retention keeps rows this schedule has not exported yet (created_at >= watermark).';
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
CREATE FUNCTION kt_governance_internal.kt_export_schedule_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
BEGIN
    -- a misspelt decision ('block', the ingest spelling) would export nothing, silently; checked
    -- when it is set, so a 1.0 schedule holding one can still record its failed runs
    IF NEW.decision IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.decision IS DISTINCT FROM OLD.decision) THEN
        PERFORM kt_check_decisions(ARRAY[NEW.decision]);
    END IF;
    -- audit and progress columns are the extension's, never the caller's: created_by is who
    -- made the schedule, and a made-up watermark or pending range would make retention spare
    -- rows forever (spare_from_retention)
    IF TG_OP = 'INSERT' AND (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)
       AND NEW.created_by IS NOT NULL THEN
        NULL;  -- a superuser's row is taken as given: that is how pg_restore brings schedules
               -- back (its COPY fires this trigger), with their creators and progress
    ELSIF TG_OP = 'INSERT' THEN
        NEW.created_by := current_user;
        NEW.pending_run_id := NULL; NEW.pending_lo := NULL; NEW.pending_hi := NULL;
        IF NEW.watermark IS NULL OR NOT isfinite(NEW.watermark) OR NEW.watermark < timestamptz '1970-01-01 00:00:00+00' THEN
            RAISE EXCEPTION 'an export schedule starts at a finite time from 1970 on, got %', NEW.watermark
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        NEW.created_by := OLD.created_by;
    END IF;
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
COMMENT ON FUNCTION kt_export_schedule_guard() IS 'Internal: trigger checking that whoever sets a schedule''s destination may export there, and setting created_by and the progress columns itself.';
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
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
BEGIN
    IF schedule_name IS NULL OR destination IS NULL OR every IS NULL THEN
        RAISE EXCEPTION 'schedule_name, destination and every must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF start_from IS NOT NULL AND NOT isfinite(start_from) THEN
        RAISE EXCEPTION 'start_from must be a finite timestamp or NULL (all rows)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO @extschema@.kt_export_schedules AS s (schedule_name, destination, every, watermark, compression, row_group_size,
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
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
BEGIN
    DELETE FROM @extschema@.kt_export_schedules s WHERE s.schedule_name = kt_remove_export_schedule.schedule_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'export schedule "%" does not exist', schedule_name USING ERRCODE = 'undefined_object';
    END IF;
    RETURN true;
END
$fn$;
COMMENT ON FUNCTION kt_remove_export_schedule(text) IS 'Removes an export schedule (files already written stay). Unknown names are an error (42704).';

-- Rows stored at or after this instant may still appear: a transaction that is still open
-- stamps created_at with its own start time when it commits later.
CREATE FUNCTION kt_governance_internal.kt_export_horizon()
RETURNS timestamptz
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT least(now(), (SELECT min(a.xact_start) FROM pg_stat_activity a
                         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
                           AND a.backend_type = 'client backend'
                           AND a.xact_start IS NOT NULL
                           -- only a session that may store events can commit rows stamped
                           -- before now; anyone else's idle transaction used to stall every
                           -- schedule (and, with spare_from_retention, retention)
                           AND has_table_privilege(a.usesysid, '@extschema@.ai_decision_events'::regclass, 'INSERT')))
$fn$;
COMMENT ON FUNCTION kt_export_horizon() IS 'Upper bound of what a scheduled export may take: now(), or the start of the oldest open transaction in this database, of a role that may insert events, if earlier.';

-- The schedule whose pending run or next claim is due, locked; NULL when none.
CREATE FUNCTION kt_governance_internal.kt_export_claim_due()
RETURNS kt_export_schedules
LANGUAGE sql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT s.* FROM @extschema@.kt_export_schedules s
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
CREATE FUNCTION kt_governance_internal.kt_export_job(OUT message text, OUT rows_touched bigint, OUT again boolean, OUT failed boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    s @extschema@.kt_export_schedules;
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
            UPDATE @extschema@.kt_export_schedules x SET next_run_at = now() + s.every WHERE x.schedule_name = s.schedule_name;
            message := format('%s: nothing below the horizon yet', s.schedule_name);
            RETURN;
        END IF;
        UPDATE @extschema@.kt_export_schedules x
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
            s.schedule_name || '_' || s.pending_run_id, s.pending_run_id, run_as => s.created_by);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, detail = MESSAGE_TEXT;
        UPDATE @extschema@.kt_export_schedules x
        SET last_error = clock_timestamp(), last_error_message = state || ': ' || detail,
            consecutive_failures = x.consecutive_failures + 1,
            next_run_at = now() + least(s.every, interval '5 minutes')
        WHERE x.schedule_name = s.schedule_name;
        message := format('%s: run %s failed: %s: %s', s.schedule_name, s.pending_run_id, state, detail);
        failed := true;
        RETURN;
    END;
    INSERT INTO @extschema@.kt_export_runs VALUES (s.pending_run_id, s.schedule_name, s.pending_lo, s.pending_hi, started,
        clock_timestamp(), r.files_written, r.events_exported, r.evaluations_exported, r.bytes_written, r.manifest);
    UPDATE @extschema@.kt_export_schedules x
    SET watermark = s.pending_hi, pending_run_id = NULL, pending_lo = NULL, pending_hi = NULL,
        last_success = clock_timestamp(), consecutive_failures = 0,
        next_run_at = greatest(x.next_run_at + s.every, now())
    WHERE x.schedule_name = s.schedule_name;
    rows_touched := r.events_exported;
    message := format('%s: %s events, %s evaluations in %s files -> %s', s.schedule_name, r.events_exported,
                      r.evaluations_exported, r.files_written, r.manifest);
    again := EXISTS (SELECT FROM @extschema@.kt_export_schedules x WHERE x.enabled AND x.next_run_at <= now());
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
        SELECT * INTO r FROM @extschema@.kt_run_job('export'::text);
        COMMIT;
        EXIT WHEN NOT r.run_again;
    END LOOP;
END
$fn$;
COMMENT ON PROCEDURE kt_run_export_schedules() IS 'Runs every due export schedule now, committing between the claim and the export as the worker does (CALL it outside a transaction block).';

-- Rows retention must keep for schedules with spare_from_retention: created_at at or after this.
CREATE FUNCTION kt_governance_internal.kt_export_spare_from()
RETURNS timestamptz
LANGUAGE sql
STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT coalesce(min(least(s.watermark, s.pending_lo)), 'infinity')
    FROM @extschema@.kt_export_schedules s WHERE s.spare_from_retention AND s.enabled
$fn$;
COMMENT ON FUNCTION kt_export_spare_from() IS 'Rows with created_at >= this have not been exported by every enabled schedule with spare_from_retention, and retention keeps them (infinity when there is no such schedule). A disabled schedule spares nothing: it would keep every later row forever.';

INSERT INTO kt_jobs (job_name, description, interval_setting) VALUES
    ('export', 'Due export schedules (kt_export_schedules): claim a range, then export it', 'export_interval');

REVOKE ALL ON FUNCTION kt_export_events(text, timestamptz, timestamptz, text, integer, boolean, text, text, text, text),
                       kt_add_export_schedule(text, text, interval, timestamptz, text, integer, boolean, text, text, text, text, boolean),
                       kt_remove_export_schedule(text), kt_export_horizon(), kt_export_claim_due(), kt_export_job(),
                       kt_export_spare_from() FROM PUBLIC;
REVOKE ALL ON PROCEDURE kt_run_export_schedules() FROM PUBLIC;
-- kt_export_range is internal but runs as its caller (the file-privilege check needs the
-- caller's roles), so admins, whose kt_export_events calls it, execute it; a manifest it would
-- replace must be theirs (src/export/mod.rs)
GRANT EXECUTE ON FUNCTION kt_export_events(text, timestamptz, timestamptz, text, integer, boolean, text, text, text, text),
                          kt_export_range(text, timestamptz, timestamptz, text, text, integer, boolean, text, text, text, text, text, text, text),
                          kt_add_export_schedule(text, text, interval, timestamptz, text, integer, boolean, text, text, text, text, boolean),
                          kt_remove_export_schedule(text) TO kt_governance_admin;
GRANT EXECUTE ON PROCEDURE kt_run_export_schedules() TO kt_governance_admin;
GRANT SELECT ON kt_export_schedules, kt_export_runs TO kt_governance_reader;
GRANT INSERT, DELETE, UPDATE (enabled, every, next_run_at, spare_from_retention) ON kt_export_schedules TO kt_governance_admin;
