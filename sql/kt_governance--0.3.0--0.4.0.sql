-- kt_governance 0.3.0 -> 0.4.0: exact row counts per hour (kt_row_counts), kept by the row
-- triggers, so retention logs a dropped partition's rows without reading it; a guard against
-- DROP EXTENSION while events are stored.
-- Frozen once released: later changes go into a new upgrade script.
\echo Use "ALTER EXTENSION kt_governance UPDATE TO '0.4.0'" to load this file. \quit

-- the evaluations' counting trigger (src/rowcount.rs); events are counted by the existing
-- kt_mark_dirty_hours, whose library code now also counts
-- kt_governance::rowcount::kt_count_evaluations
CREATE FUNCTION "kt_count_evaluations"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'kt_count_evaluations_wrapper';

-- sql/rowcounts.sql of 0.4.0
-- Exact row counts per UTC hour (src/rowcount.rs explains why and how).
--
-- kt_row_counts is append-only: each writing transaction adds one row per hour it changed, with
-- signed counts, so concurrent writers never wait on each other. The sum over an hour's rows is
-- the number of rows of that hour. kt_run_maintenance() folds each hour's rows into one.
-- The table is not dumped: restoring a dump loads the rows through the same triggers, which
-- count them again.

CREATE TABLE kt_row_counts (
    hour        timestamptz NOT NULL,
    events      bigint      NOT NULL DEFAULT 0,
    evaluations bigint      NOT NULL DEFAULT 0
);
CREATE INDEX kt_row_counts_hour_idx ON kt_row_counts (hour);
COMMENT ON TABLE kt_row_counts IS 'Signed row counts per UTC hour of ai_decision_events ("timestamp") and policy_evaluations (event_timestamp), appended by every writing transaction at commit; sum them per hour. Lets retention log how many rows a dropped partition held without reading it.';
COMMENT ON COLUMN kt_row_counts.hour IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_row_counts.events IS 'Events added (negative: removed) in the hour.';
COMMENT ON COLUMN kt_row_counts.evaluations IS 'Evaluations added (negative: removed) in the hour.';

CREATE TRIGGER kt_count_evaluations
    AFTER INSERT OR UPDATE OR DELETE ON policy_evaluations
    FOR EACH ROW EXECUTE FUNCTION kt_count_evaluations('@extschema@');
COMMENT ON FUNCTION kt_count_evaluations() IS 'Row trigger: counts inserted and deleted evaluations per hour in backend memory and appends the counts to kt_row_counts just before commit (events are counted by kt_mark_dirty_hours).';

-- TRUNCATE of a parent fires no row trigger: its counts go with it. (TRUNCATE of one partition
-- is not seen; kt_verify_row_counts() reports it and kt_rebuild_row_counts() repairs it.)
CREATE FUNCTION kt_forget_row_counts()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
BEGIN
    IF TG_TABLE_NAME = 'ai_decision_events' THEN
        -- the foreign keys make the evaluations go in the same TRUNCATE
        DELETE FROM kt_row_counts;
    ELSE
        UPDATE kt_row_counts SET evaluations = 0 WHERE evaluations <> 0;
    END IF;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION kt_forget_row_counts() IS 'Statement trigger: TRUNCATE of ai_decision_events or policy_evaluations resets its row counts.';
CREATE TRIGGER kt_forget_row_counts AFTER TRUNCATE ON ai_decision_events
    FOR EACH STATEMENT EXECUTE FUNCTION kt_forget_row_counts();
CREATE TRIGGER kt_forget_row_counts AFTER TRUNCATE ON policy_evaluations
    FOR EACH STATEMENT EXECUTE FUNCTION kt_forget_row_counts();

-- Rows of both tables in [range_start, range_end), from the counts.
CREATE FUNCTION kt_counted_rows(range_start timestamptz, range_end timestamptz,
                                OUT events bigint, OUT evaluations bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    SELECT coalesce(sum(c.events), 0)::bigint, coalesce(sum(c.evaluations), 0)::bigint
    FROM kt_row_counts c
    WHERE c.hour >= range_start AND c.hour < range_end
$fn$;
COMMENT ON FUNCTION kt_counted_rows(timestamptz, timestamptz) IS 'Events and evaluations whose (event) time falls in [range_start, range_end), from kt_row_counts (exact for whole UTC hours, read without touching the tables).';

-- Called when a partition pair is dropped: the counts of its hours go. An hour it shares with a
-- neighbour (bounds inside an hour, only for partitions attached by hand) is counted again from
-- the rows that stay; one statement, so a writer committing meanwhile is in exactly one of the
-- deleted counts and the recount.
CREATE FUNCTION kt_forget_counted_range(range_start timestamptz, range_end timestamptz)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    WITH gone AS (
        DELETE FROM kt_row_counts c
        WHERE c.hour >= date_trunc('hour', range_start, 'UTC') AND c.hour < range_end
    ), shared AS (
        SELECT DISTINCT h FROM unnest(ARRAY[date_trunc('hour', range_start, 'UTC'), date_trunc('hour', range_end, 'UTC')]) h
        WHERE h NOT IN (range_start, range_end)
    )
    INSERT INTO kt_row_counts (hour, events, evaluations)
    SELECT s.h,
           (SELECT count(*) FROM ai_decision_events e WHERE e."timestamp" >= s.h AND e."timestamp" < s.h + interval '1 hour'),
           (SELECT count(*) FROM policy_evaluations p WHERE p.event_timestamp >= s.h AND p.event_timestamp < s.h + interval '1 hour')
    FROM shared s
$fn$;
COMMENT ON FUNCTION kt_forget_counted_range(timestamptz, timestamptz) IS 'Internal: removes the row counts of a dropped partition''s range; hours it shared with a neighbour are counted again from the rows that stay.';

-- Folds each hour's rows into one. Rows appended by transactions that commit meanwhile are
-- not visible to the DELETE and stay as they are.
CREATE FUNCTION kt_compact_row_counts()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    folded bigint;
BEGIN
    WITH gone AS (
        DELETE FROM kt_row_counts c
        WHERE c.hour IN (SELECT hour FROM kt_row_counts GROUP BY hour HAVING count(*) > 1)
        RETURNING c.hour, c.events, c.evaluations
    ), summed AS (
        INSERT INTO kt_row_counts (hour, events, evaluations)
        SELECT g.hour, sum(g.events), sum(g.evaluations) FROM gone g GROUP BY g.hour
        HAVING sum(g.events) <> 0 OR sum(g.evaluations) <> 0
    )
    SELECT count(*) INTO folded FROM gone;
    RETURN folded;
END
$fn$;
COMMENT ON FUNCTION kt_compact_row_counts() IS 'Internal: folds the kt_row_counts rows of each hour into one (run by kt_run_maintenance); returns the rows folded.';

-- What kt_row_counts should hold, counted from the tables (reads every row).
CREATE FUNCTION kt_rows_per_hour(OUT hour timestamptz, OUT events bigint, OUT evaluations bigint)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    SELECT coalesce(ev.hour, pe.hour), coalesce(ev.n, 0), coalesce(pe.n, 0)
    FROM (SELECT date_trunc('hour', e."timestamp", 'UTC') AS hour, count(*) AS n FROM ai_decision_events e GROUP BY 1) ev
    FULL JOIN (SELECT date_trunc('hour', p.event_timestamp, 'UTC') AS hour, count(*) AS n FROM policy_evaluations p GROUP BY 1) pe
        ON pe.hour = ev.hour
$fn$;
COMMENT ON FUNCTION kt_rows_per_hour() IS 'Internal: events and evaluations per UTC hour counted from the tables (reads every row); what kt_row_counts sums to when exact.';

CREATE FUNCTION kt_verify_row_counts()
RETURNS TABLE (hour timestamptz, counted_events bigint, actual_events bigint,
               counted_evaluations bigint, actual_evaluations bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    WITH counted AS (
        SELECT c.hour, sum(c.events)::bigint AS events, sum(c.evaluations)::bigint AS evaluations
        FROM kt_row_counts c GROUP BY c.hour
    )
    SELECT coalesce(c.hour, a.hour), coalesce(c.events, 0), coalesce(a.events, 0),
           coalesce(c.evaluations, 0), coalesce(a.evaluations, 0)
    FROM counted c
    FULL JOIN kt_rows_per_hour() a ON a.hour = c.hour
    WHERE coalesce(c.events, 0) <> coalesce(a.events, 0) OR coalesce(c.evaluations, 0) <> coalesce(a.evaluations, 0)
    ORDER BY 1
$fn$;
COMMENT ON FUNCTION kt_verify_row_counts() IS 'Hours whose kt_row_counts disagree with the rows in the tables (reads every row; no rows means the counts are exact). Drift comes only from changes that bypass row triggers: TRUNCATE of a single partition, disabled triggers, session_replication_role = replica.';

CREATE FUNCTION kt_rebuild_row_counts()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    written bigint;
BEGIN
    -- writers wait until the new counts commit; their own counts then add to them
    LOCK TABLE ai_decision_events, policy_evaluations IN SHARE MODE;
    DELETE FROM kt_row_counts;
    INSERT INTO kt_row_counts (hour, events, evaluations) SELECT * FROM kt_rows_per_hour();
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION kt_rebuild_row_counts() IS 'Recounts kt_row_counts from the tables (reads every row, blocks writers meanwhile); returns the hours written. For repairing drift reported by kt_verify_row_counts().';

REVOKE ALL ON FUNCTION kt_rebuild_row_counts(), kt_compact_row_counts(), kt_rows_per_hour(), kt_forget_counted_range(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_rebuild_row_counts() TO kt_governance_admin;
GRANT SELECT ON kt_row_counts TO kt_governance_reader;
-- writers' transactions append their counts at commit
GRANT INSERT ON kt_row_counts TO kt_governance_writer;

-- the counts of the rows already stored: one read of both tables (writers wait meanwhile)
SELECT kt_rebuild_row_counts();

COMMENT ON FUNCTION kt_mark_dirty_hours() IS 'Row trigger: notes the UTC hour of every inserted, updated or deleted event in backend memory (written by kt_flush_dirty_hours at statement end, or just before commit), and counts the event in kt_row_counts.';

-- the maintenance job folds kt_row_counts
CREATE OR REPLACE FUNCTION kt_execute_job(job_name text, OUT message text, OUT rows_touched bigint, OUT again boolean,
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
        message := format('%s partitions created, %s rows moved, %s rows left in default, %s row-count rows folded',
                          r.partitions_created, r.rows_moved, r.rows_left_in_default, kt_compact_row_counts());
    END CASE;
END
$fn$;
COMMENT ON FUNCTION kt_execute_job(text) IS 'Internal: the body of each job.';
UPDATE kt_jobs SET description = 'kt_run_maintenance(): premake partitions, drain the default partition, ANALYZE; then fold kt_row_counts' WHERE job_name = 'maintenance';

-- retention reads dropped partitions' rows from kt_row_counts
-- Events and evaluations in a partition pair about to be dropped (the caller holds its locks):
-- from kt_row_counts, without reading the partitions. Changes that bypass row triggers (a
-- TRUNCATE of one partition, disabled triggers) would leave the counts wrong, so they are
-- checked against the partitions' sizes and the planner's statistics, and counted when those
-- disagree.
CREATE FUNCTION kt_partition_pair_rows(events_partition text, evaluations_partition text,
                                       range_start timestamptz, range_end timestamptz,
                                       OUT events bigint, OUT evaluations bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    ev regclass := format('%I.%I', '@extschema@', events_partition)::regclass;
    pe regclass := format('%I.%I', '@extschema@', evaluations_partition)::regclass;
    recounted boolean;
BEGIN
    SELECT c.events, c.evaluations INTO events, evaluations FROM kt_counted_rows(range_start, range_end) c;
    -- counts are per whole UTC hour: bounds inside an hour (a partition attached by hand) are counted
    recounted := date_trunc('hour', range_start, 'UTC') <> range_start
                 OR date_trunc('hour', range_end, 'UTC') <> range_end
                 OR NOT (kt_count_is_plausible(ev, events) AND kt_count_is_plausible(pe, evaluations));
    IF recounted THEN
        RAISE NOTICE 'kt_governance retention: row counts of % (% events, % evaluations) not usable (bounds inside an hour, or counts that disagree with its size or statistics); counting its rows',
            events_partition, events, evaluations
            USING HINT = 'Something changed rows without row triggers; SELECT * FROM kt_verify_row_counts() shows where, kt_rebuild_row_counts() repairs it.';
        EXECUTE format('SELECT count(*) FROM %s', ev) INTO events;
        EXECUTE format('SELECT count(*) FROM %s', pe) INTO evaluations;
    END IF;
END
$fn$;
COMMENT ON FUNCTION kt_partition_pair_rows(text, text, timestamptz, timestamptz) IS 'Internal: events and evaluations of a partition pair from kt_row_counts, counted from the partitions instead when the counts cannot be used (bounds inside an hour) or disagree with their sizes or statistics (with a NOTICE).';

-- Whether n rows fit a table's size and statistics: an empty file holds no row, a non-empty one
-- some; once ANALYZE or VACUUM has run, n is within 10% (or 1000 rows) of the planner's estimate.
CREATE FUNCTION kt_count_is_plausible(rel regclass, n bigint)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    SELECT (n > 0) = (s.pages > 0)
           AND (c.relpages <= 0 OR c.reltuples < 0
                OR abs(n - c.reltuples / c.relpages * s.pages) <= greatest(1000, 0.1 * c.reltuples / c.relpages * s.pages))
    FROM pg_class c,
         LATERAL (SELECT pg_relation_size(c.oid) / current_setting('block_size')::bigint AS pages) s
    WHERE c.oid = rel
$fn$;
COMMENT ON FUNCTION kt_count_is_plausible(regclass, bigint) IS 'Internal: whether a row count fits a table''s size and planner statistics (used to cross-check kt_row_counts before trusting it).';

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

    -- rollups first: refresh the dirty hours the cutoff reaches (later ones are not touched and
    -- wait for the refresh job), then freeze the hours about to lose raw rows
    PERFORM kt_refresh_metrics(up_to => cutoff);
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
        -- locked before their rows are counted: no row comes or goes until they are dropped
        EXECUTE format('LOCK TABLE %I.%I, %I.%I IN ACCESS EXCLUSIVE MODE',
                       '@extschema@', part.evals_part, '@extschema@', part.events_part);
        SELECT p.events, p.evaluations INTO n_events, n_evals
        FROM kt_partition_pair_rows(part.events_part, part.evals_part, part.range_start, part.range_end) p;
        -- two index probes, not a scan
        EXECUTE format('SELECT min("timestamp"), max("timestamp") FROM %I.%I', '@extschema@', part.events_part)
            INTO oldest, newest;
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
        PERFORM kt_forget_counted_range(part.range_start, part.range_end);
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
REVOKE ALL ON FUNCTION kt_partition_pair_rows(text, text, timestamptz, timestamptz) FROM PUBLIC;

-- sql/guard.sql of 0.4.0
-- DROP EXTENSION kt_governance would drop every stored event and evaluation, legally held ones
-- included (the dated partitions depend on the extension's tables automatically, so no CASCADE
-- is needed). This event trigger refuses it while events are stored, unless the dropping
-- session sets kt_governance.allow_drop_with_data (src/guard.rs).

CREATE FUNCTION kt_guard_drop()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'kt_guard_drop';
COMMENT ON FUNCTION kt_guard_drop() IS 'Event trigger: refuses DROP EXTENSION kt_governance, and DROP SCHEMA ... CASCADE of its schema, while ai_decision_events holds rows (SQLSTATE 2BP01), unless kt_governance.allow_drop_with_data is on.';
REVOKE ALL ON FUNCTION kt_guard_drop() FROM PUBLIC;

CREATE EVENT TRIGGER kt_guard_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION kt_guard_drop();
COMMENT ON EVENT TRIGGER kt_guard_drop IS 'Refuses dropping kt_governance while it stores events; see kt_governance.allow_drop_with_data.';
