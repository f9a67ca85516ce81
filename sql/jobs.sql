-- Jobs the background worker runs, visible as data (like pg_partman's part_config and
-- TimescaleDB's job views): kt_jobs holds each job's switch and last outcome, kt_job_runs a
-- bounded history. Every run goes through kt_run_job(), which records it and never lets one
-- job's error escape to the worker or to other jobs.

CREATE TABLE kt_jobs (
    job_name             text PRIMARY KEY,
    description          text NOT NULL,
    interval_setting     text NOT NULL,
    enabled              boolean NOT NULL DEFAULT true,
    last_started         timestamptz,
    last_finished        timestamptz,
    last_success         timestamptz,
    last_error           timestamptz,
    last_error_message   text,
    consecutive_failures integer NOT NULL DEFAULT 0
);
COMMENT ON TABLE kt_jobs IS 'Background jobs: one row each. Set enabled = false to pause a job; its interval is the setting named in interval_setting (seconds, 0 = never).';
COMMENT ON COLUMN kt_jobs.job_name IS 'Job name, as passed to kt_run_job().';
COMMENT ON COLUMN kt_jobs.description IS 'What the job does.';
COMMENT ON COLUMN kt_jobs.interval_setting IS 'kt_governance setting holding the job''s interval in seconds.';
COMMENT ON COLUMN kt_jobs.enabled IS 'Whether the worker runs the job on its schedule (kt_run_job() always runs it).';
COMMENT ON COLUMN kt_jobs.last_started IS 'Start of the last run.';
COMMENT ON COLUMN kt_jobs.last_finished IS 'End of the last run.';
COMMENT ON COLUMN kt_jobs.last_success IS 'End of the last successful run.';
COMMENT ON COLUMN kt_jobs.last_error IS 'End of the last failed run.';
COMMENT ON COLUMN kt_jobs.last_error_message IS 'SQLSTATE and message of the last failure.';
COMMENT ON COLUMN kt_jobs.consecutive_failures IS 'Failures since the last success.';

INSERT INTO kt_jobs (job_name, description, interval_setting) VALUES
    ('refresh_metrics', 'kt_refresh_metrics(): bring dirty rollup hours up to date', 'refresh_interval'),
    ('maintenance', 'kt_run_maintenance(): premake partitions, drain the default partition, ANALYZE; then fold kt_row_counts, reclaim removed partitions and prune ingest claims', 'maintenance_interval');

CREATE TABLE kt_job_runs (
    run_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name     text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    status       text NOT NULL CHECK (status IN ('ok', 'error', 'skipped')),
    message      text,
    rows_touched bigint,
    run_by       text NOT NULL DEFAULT session_user
);
CREATE INDEX kt_job_runs_job_idx ON kt_job_runs (job_name, run_id DESC);
COMMENT ON TABLE kt_job_runs IS 'History of job runs, newest last; kt_governance.job_history_successes and job_history_errors bound how many of each are kept.';
COMMENT ON COLUMN kt_job_runs.run_id IS 'Run number.';
COMMENT ON COLUMN kt_job_runs.job_name IS 'Job.';
COMMENT ON COLUMN kt_job_runs.started_at IS 'Start (clock time).';
COMMENT ON COLUMN kt_job_runs.finished_at IS 'End (clock time).';
COMMENT ON COLUMN kt_job_runs.status IS 'ok, error, or skipped (the job did not run, for the reason in message: another run of the same kind held its lock).';
COMMENT ON COLUMN kt_job_runs.message IS 'What the run did, or SQLSTATE: message of its error.';
COMMENT ON COLUMN kt_job_runs.rows_touched IS 'Hours refreshed (refresh_metrics), rows moved (maintenance), events removed (retention) or exported (export).';
COMMENT ON COLUMN kt_job_runs.run_by IS 'Role that ran it (the worker runs as the bootstrap superuser).';
SELECT pg_catalog.pg_extension_config_dump('kt_job_runs', '');

-- Runs one job body and describes the outcome. Raises whatever the job raises.
CREATE FUNCTION kt_governance_internal.kt_execute_job(job_name text, OUT message text, OUT rows_touched bigint, OUT again boolean,
                               OUT failed boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
        SELECT * INTO r FROM @extschema@.kt_refresh_metrics('infinity'::timestamptz);
        rows_touched := r.hours_refreshed;
        message := format('%s hours refreshed, %s of them merged from deltas', r.hours_refreshed, r.hours_merged);
    WHEN 'retention' THEN
        SELECT * INTO r FROM kt_retention_job();
        rows_touched := r.events_removed;
        message := r.message;
        again := r.again;
    WHEN 'maintenance' THEN
        SELECT * INTO r FROM @extschema@.kt_run_maintenance(NULL::integer, true);
        rows_touched := r.rows_moved;
        message := format('%s partitions created, %s rows moved, %s rows left in default, %s row-count rows folded, %s removed partitions reclaimed, %s ingest claims pruned',
                          r.partitions_created, r.rows_moved, r.rows_left_in_default, kt_compact_row_counts(),
                          (SELECT tables_dropped FROM @extschema@.kt_reclaim_space()), kt_prune_ingest_claims());
    END CASE;
END
$fn$;
COMMENT ON FUNCTION kt_execute_job(text) IS 'Internal: the body of each job.';

CREATE FUNCTION kt_run_job(job_name text)
RETURNS TABLE (status text, message text, rows_touched bigint, started_at timestamptz, finished_at timestamptz,
               run_again boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    wanted text := job_name;
    state text;
    detail text;
    failed boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM @extschema@.kt_jobs j WHERE j.job_name = wanted) THEN
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
    EXCEPTION WHEN SQLSTATE 'KT001' THEN
        -- the job found another run of its kind under way and did nothing
        GET STACKED DIAGNOSTICS detail = MESSAGE_TEXT;
        status := 'skipped';
        message := detail;
    WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, detail = MESSAGE_TEXT;
        status := 'error';
        message := state || ': ' || detail;
        RAISE WARNING 'kt_governance job % failed: %', wanted, message;
    END;
    finished_at := clock_timestamp();
    INSERT INTO @extschema@.kt_job_runs (job_name, started_at, finished_at, status, message, rows_touched)
    VALUES (wanted, started_at, finished_at, status, message, rows_touched);
    UPDATE @extschema@.kt_jobs j SET last_started = kt_run_job.started_at, last_finished = kt_run_job.finished_at,
        last_success = CASE WHEN status = 'ok' THEN kt_run_job.finished_at ELSE j.last_success END,
        last_error = CASE WHEN status = 'error' THEN kt_run_job.finished_at ELSE j.last_error END,
        last_error_message = CASE WHEN status = 'error' THEN message ELSE j.last_error_message END,
        consecutive_failures = CASE status WHEN 'ok' THEN 0 WHEN 'skipped' THEN j.consecutive_failures
                                           ELSE j.consecutive_failures + 1 END
    WHERE j.job_name = wanted;
    PERFORM kt_prune_job_runs(wanted);
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_run_job(text) IS 'Runs a job now (refresh_metrics, maintenance, retention or export), records the run in kt_job_runs and kt_jobs, and returns its outcome. A failing job is recorded with its SQLSTATE and message and does not raise; a job that found another run of its kind under way is recorded as skipped, with the reason. run_again = true: the job stopped early on purpose (retention drops one partition pair per run) and wants to run again after this transaction commits.';

CREATE FUNCTION kt_governance_internal.kt_prune_job_runs(job_name text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    -- errors are kept longer than successes: they are what a DBA comes looking for
    DELETE FROM @extschema@.kt_job_runs r
    WHERE r.job_name = kt_prune_job_runs.job_name
      AND r.run_id < ALL (
          SELECT k.run_id FROM @extschema@.kt_job_runs k
          WHERE k.job_name = r.job_name AND k.status = r.status
          ORDER BY k.run_id DESC
          LIMIT CASE r.status WHEN 'ok' THEN kt_setting('job_history_successes')::int
                              ELSE kt_setting('job_history_errors')::int END)
$fn$;
COMMENT ON FUNCTION kt_prune_job_runs(text) IS 'Internal: keeps the newest kt_governance.job_history_successes successful and job_history_errors failed runs of a job.';

-- The jobs whose interval has passed since their last start, for the worker.
CREATE FUNCTION kt_governance_internal.kt_due_jobs()
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT j.job_name FROM @extschema@.kt_jobs j
    CROSS JOIN LATERAL (SELECT kt_setting(j.interval_setting)::int AS seconds) i
    WHERE j.enabled AND i.seconds > 0
      AND (j.last_started IS NULL OR j.last_started + make_interval(secs => i.seconds) <= now())
    ORDER BY j.last_started NULLS FIRST
$fn$;
COMMENT ON FUNCTION kt_due_jobs() IS 'Jobs due to run: enabled, interval > 0, and not started within their interval.';

CREATE VIEW kt_health AS
SELECT p.default_rows, p.default_oldest, p.default_newest, p.partitions_cover_until, p.next_partition_due,
       (SELECT count(DISTINCT bucket) FROM kt_dirty_hours) AS dirty_hours,
       (SELECT min(bucket) FROM kt_dirty_hours)       AS oldest_dirty_hour,
       (SELECT min(marked_at) FROM kt_dirty_hours)    AS dirty_since,
       j.job_name, j.enabled, j.last_success, j.last_error, j.last_error_message, j.consecutive_failures,
       (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
        WHERE c.relnamespace = to_regnamespace('kt_governance_reclaim') AND c.relkind = 'r') AS bytes_awaiting_reclaim
FROM kt_partition_health p CROSS JOIN kt_jobs j;
COMMENT ON VIEW kt_health IS 'One row per job with the store''s health: rows waiting in the default partition, partition horizon, dirty rollup hours (oldest and how long stale) and the job''s last success and error.';
COMMENT ON COLUMN kt_health.default_rows IS 'Events in events_default.';
COMMENT ON COLUMN kt_health.default_oldest IS 'Oldest timestamp in events_default.';
COMMENT ON COLUMN kt_health.default_newest IS 'Newest timestamp in events_default.';
COMMENT ON COLUMN kt_health.partitions_cover_until IS 'Upper bound of the newest partition.';
COMMENT ON COLUMN kt_health.next_partition_due IS 'When maintenance must run next to stay premake partitions ahead.';
COMMENT ON COLUMN kt_health.dirty_hours IS 'Rollup hours waiting for kt_refresh_metrics().';
COMMENT ON COLUMN kt_health.oldest_dirty_hour IS 'Oldest dirty hour.';
COMMENT ON COLUMN kt_health.dirty_since IS 'When the longest-waiting dirty hour was marked.';
COMMENT ON COLUMN kt_health.job_name IS 'Job.';
COMMENT ON COLUMN kt_health.enabled IS 'Whether the worker runs it.';
COMMENT ON COLUMN kt_health.last_success IS 'Last successful run.';
COMMENT ON COLUMN kt_health.last_error IS 'Last failed run.';
COMMENT ON COLUMN kt_health.last_error_message IS 'Its error.';
COMMENT ON COLUMN kt_health.consecutive_failures IS 'Failures since the last success.';
COMMENT ON COLUMN kt_health.bytes_awaiting_reclaim IS 'Disk space of partitions removed by retention whose files are not deleted yet (normally 0: a worker deletes them right after each removal commits; the maintenance job catches up).';

REVOKE ALL ON FUNCTION kt_run_job(text), kt_execute_job(text), kt_prune_job_runs(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_run_job(text) TO kt_governance_admin;
GRANT SELECT ON kt_jobs, kt_job_runs, kt_health TO kt_governance_reader;
GRANT UPDATE (enabled) ON kt_jobs TO kt_governance_admin;
