-- kt_governance 0.4.0 -> 0.5.0: retention detaches the partitions it removes and a background
-- worker started at its commit drops them (their files are deleted outside the retention
-- transaction and its locks); kt_removal_log.space_returned_at; row counts of rows the same
-- transaction inserted and then removed by retention.
-- Frozen once released: later changes go into a new upgrade script.
\echo Use "ALTER EXTENSION kt_governance UPDATE TO '0.5.0'" to load this file. \quit

-- this transaction's not yet appended row counts (src/rowcount.rs)
-- kt_governance::rowcount::kt_pending_counts
CREATE  FUNCTION "kt_pending_counts"(
	"range_start" timestamp with time zone, /* TimestampWithTimeZone */
	"range_end" timestamp with time zone /* TimestampWithTimeZone */
) RETURNS TABLE (
	"events" bigint,  /* i64 */
	"evaluations" bigint  /* i64 */
)
STRICT STABLE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kt_pending_counts_wrapper';

-- kt_governance::rowcount::kt_forget_pending_counts
CREATE  FUNCTION "kt_forget_pending_counts"(
	"range_start" timestamp with time zone, /* TimestampWithTimeZone */
	"range_end" timestamp with time zone /* TimestampWithTimeZone */
) RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kt_forget_pending_counts_wrapper';

CREATE OR REPLACE FUNCTION kt_counted_rows(range_start timestamptz, range_end timestamptz,
                                OUT events bigint, OUT evaluations bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    SELECT coalesce(sum(c.events), 0)::bigint + p.events, coalesce(sum(c.evaluations), 0)::bigint + p.evaluations
    FROM kt_pending_counts(range_start, range_end) p
    LEFT JOIN kt_row_counts c ON c.hour >= range_start AND c.hour < range_end
    GROUP BY p.events, p.evaluations
$fn$;
COMMENT ON FUNCTION kt_counted_rows(timestamptz, timestamptz) IS 'Events and evaluations whose (event) time falls in [range_start, range_end), from kt_row_counts plus the current transaction''s counts not appended yet (exact for whole UTC hours, read without touching the tables).';

CREATE OR REPLACE FUNCTION kt_forget_counted_range(range_start timestamptz, range_end timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
BEGIN
    -- counts of this transaction's own rows there, not yet appended, go too
    PERFORM kt_forget_pending_counts(range_start, range_end);
    IF date_trunc('hour', range_start, 'UTC') = range_start AND date_trunc('hour', range_end, 'UTC') = range_end THEN
        -- the extension's partitions: whole hours, nothing shared (and no plan over every partition)
        DELETE FROM kt_row_counts c WHERE c.hour >= range_start AND c.hour < range_end;
        RETURN;
    END IF;
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
    FROM shared s;
END
$fn$;
COMMENT ON FUNCTION kt_pending_counts(timestamptz, timestamptz) IS 'Internal: events and evaluations in [range_start, range_end) that the current transaction changed and has not appended to kt_row_counts yet (it does so at commit).';
COMMENT ON FUNCTION kt_forget_pending_counts(timestamptz, timestamptz) IS 'Internal: cancels the counts this transaction has not appended yet for rows in [range_start, range_end) (a partition retention dropped in the same transaction).';
COMMENT ON FUNCTION kt_forget_counted_range(timestamptz, timestamptz) IS 'Internal: removes the row counts of a dropped partition''s range; hours it shared with a neighbour are counted again from the rows that stay.';

COMMENT ON FUNCTION kt_pending_counts(timestamptz, timestamptz) IS 'Internal: events and evaluations in [range_start, range_end) that the current transaction changed and has not appended to kt_row_counts yet (it does so at commit).';
COMMENT ON FUNCTION kt_forget_pending_counts(timestamptz, timestamptz) IS 'Internal: cancels the counts this transaction has not appended yet for rows in [range_start, range_end) (a partition retention dropped in the same transaction).';
REVOKE ALL ON FUNCTION kt_forget_pending_counts(timestamptz, timestamptz), kt_pending_counts(timestamptz, timestamptz) FROM PUBLIC;

-- the reclaim worker (src/reclaim.rs)
-- kt_governance::reclaim::kt_reclaim_after_commit
CREATE  FUNCTION "kt_reclaim_after_commit"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kt_reclaim_after_commit_wrapper';

-- sql/reclaim.sql of 0.5.0
-- Returning the space of partitions retention removed, outside the retention transaction.
--
-- Retention detaches a partition pair and moves it into kt_governance_reclaim: its rows leave
-- ai_decision_events and policy_evaluations when the retention commits. A background worker
-- started at that commit drops whatever the schema holds (kt_reclaim_space), so the files are
-- deleted a moment later, without the retention's locks on the partitioned tables and without
-- making its caller wait (src/reclaim.rs says why). The maintenance job reclaims too, for
-- tables left there when no worker slot was free or the server stopped in between.

CREATE SCHEMA kt_governance_reclaim;
COMMENT ON SCHEMA kt_governance_reclaim IS 'kt_governance: partitions removed by retention whose files are being deleted (by kt_reclaim_space(), right after the removal commits). Everything here is already removed from the event tables; do not store anything here.';

-- Detaches one partition pair (the caller holds kt_lock_for_partition_ddl() and both partitions'
-- locks) and parks it in kt_governance_reclaim for the worker started at commit.
CREATE FUNCTION kt_detach_for_reclaim(events_partition text, evaluations_partition text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
BEGIN
    IF to_regclass(format('kt_governance_reclaim.%I', events_partition)) IS NOT NULL
       OR to_regclass(format('kt_governance_reclaim.%I', evaluations_partition)) IS NOT NULL THEN
        -- a pair of the same name still waits there (removed, re-created by late rows and
        -- removed again before the first was reclaimed): its names are taken, drop this one now
        EXECUTE format('DROP TABLE %I.%I, %I.%I', '@extschema@', evaluations_partition, '@extschema@', events_partition);
        RETURN;
    END IF;
    EXECUTE format('ALTER TABLE %I.policy_evaluations DETACH PARTITION %I.%I', '@extschema@', '@extschema@', evaluations_partition);
    EXECUTE format('ALTER TABLE %I.ai_decision_events DETACH PARTITION %I.%I', '@extschema@', '@extschema@', events_partition);
    EXECUTE format('ALTER TABLE %I.%I SET SCHEMA kt_governance_reclaim', '@extschema@', evaluations_partition);
    EXECUTE format('ALTER TABLE %I.%I SET SCHEMA kt_governance_reclaim', '@extschema@', events_partition);
    PERFORM kt_reclaim_after_commit();
END
$fn$;
COMMENT ON FUNCTION kt_detach_for_reclaim(text, text) IS 'Internal: detaches a partition pair removed by retention and moves it into kt_governance_reclaim, where a background worker started at commit drops it.';
COMMENT ON FUNCTION kt_reclaim_after_commit() IS 'Internal: when the current transaction commits, a background worker (a dynamic one, no shared_preload_libraries needed) runs kt_reclaim_space() in this database.';

CREATE FUNCTION kt_reclaim_space(OUT tables_dropped integer, OUT bytes_returned bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    doomed text;
BEGIN
    -- one at a time: a second caller then sees what the first dropped
    PERFORM pg_advisory_xact_lock(hashtext('kt_governance.reclaim'));
    SELECT count(*), coalesce(sum(pg_total_relation_size(c.oid)), 0),
           string_agg(format('kt_governance_reclaim.%I', c.relname), ', ')
    INTO tables_dropped, bytes_returned, doomed
    FROM pg_class c
    WHERE c.relnamespace = 'kt_governance_reclaim'::regnamespace AND c.relkind = 'r';
    IF doomed IS NOT NULL THEN
        -- one statement: the foreign key between a pair's tables does not order the drops
        EXECUTE 'DROP TABLE IF EXISTS ' || doomed;
    END IF;
    -- every committed removal's files are gone once the schema is empty (checked in the same
    -- snapshot: a removal committing meanwhile keeps its stamp for its own worker)
    UPDATE kt_removal_log SET space_returned_at = clock_timestamp()
    WHERE space_returned_at IS NULL AND why = 'retention' AND cardinality(partitions_dropped) > 0
      AND NOT EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = 'kt_governance_reclaim'::regnamespace);
END
$fn$;
COMMENT ON FUNCTION kt_reclaim_space() IS 'Drops the partitions retention moved into kt_governance_reclaim, returning their disk space, and stamps kt_removal_log.space_returned_at. Runs by itself right after each retention commit (and in the maintenance job); call it by hand only to return the space at once when no background worker slot was free.';

REVOKE ALL ON FUNCTION kt_detach_for_reclaim(text, text), kt_reclaim_after_commit(), kt_reclaim_space() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_reclaim_space() TO kt_governance_admin;

-- when the space of a removal came back
ALTER TABLE kt_removal_log ADD COLUMN space_returned_at timestamptz;
CREATE OR REPLACE VIEW kt_removals AS
SELECT removal_id, removed_at, why, coalesce(cutoff::text, 'user ' || subject) AS scope,
       cardinality(partitions_dropped) AS partitions, events_removed, evaluations_removed,
       events_archived, events_held, archived_to, oldest_removed, newest_removed, run_by,
       space_returned_at
FROM kt_removal_log;

COMMENT ON COLUMN kt_removal_log.space_returned_at IS 'When the dropped partitions'' files were deleted (by kt_reclaim_space(), right after the removal committed); NULL while they wait in kt_governance_reclaim, or when no partition was dropped.';
COMMENT ON COLUMN kt_removals.space_returned_at IS 'When the dropped partitions'' disk space was returned (NULL: not yet, or nothing dropped).';

-- retention detaches instead of dropping
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
        -- out of the tables at commit; the files are deleted right after it (sql/reclaim.sql)
        PERFORM kt_detach_for_reclaim(part.events_part, part.evals_part);
        PERFORM kt_forget_counted_range(part.range_start, part.range_end);
        partitions_removed := partitions_removed || part.events_part;
        events_removed := events_removed + n_events;
        evaluations_removed := evaluations_removed + n_evals;
        RAISE NOTICE 'kt_governance retention: removed % (% events, % evaluations)', part.events_part, n_events, n_evals;
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
COMMENT ON FUNCTION kt_apply_retention(integer, boolean, integer) IS 'Removes every event and evaluation older than now() - hours and nothing newer: whole partitions are detached (their files are deleted by a background worker right after the commit, see kt_reclaim_space()), the partition straddling the cutoff (and any holding legally held rows) is trimmed. Refreshes rollups first and freezes the pruned hours, so reports keep the history. archive (default kt_governance.retention_archive) copies the rows to ai_decision_events_archive / policy_evaluations_archive in the same transaction; with kt_governance.retention_archive_destination set, every dropped partition and the trimmed range are first exported as Parquet there (manifests retention_<partition>.json / retention_trim_<cutoff>.json), and an export error aborts the removal. Held rows stay. Logged in kt_removal_log. hours <= 0 or NULL is an error. A concurrent run is skipped with a NOTICE. max_partitions: drop at most that many partition pairs and return more_to_do = true, leaving the rest (and the trim) to the next call, so a caller can commit in between (see kt_apply_retention_by_partition).';

-- the maintenance job reclaims what a missed worker left; the health view shows it
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
        message := format('%s partitions created, %s rows moved, %s rows left in default, %s row-count rows folded, %s removed partitions reclaimed',
                          r.partitions_created, r.rows_moved, r.rows_left_in_default, kt_compact_row_counts(),
                          (SELECT tables_dropped FROM kt_reclaim_space()));
    END CASE;
END
$fn$;
COMMENT ON FUNCTION kt_execute_job(text) IS 'Internal: the body of each job.';

CREATE OR REPLACE VIEW kt_health AS
SELECT p.default_rows, p.default_oldest, p.default_newest, p.partitions_cover_until, p.next_partition_due,
       (SELECT count(DISTINCT bucket) FROM kt_dirty_hours) AS dirty_hours,
       (SELECT min(bucket) FROM kt_dirty_hours)       AS oldest_dirty_hour,
       (SELECT min(marked_at) FROM kt_dirty_hours)    AS dirty_since,
       j.job_name, j.enabled, j.last_success, j.last_error, j.last_error_message, j.consecutive_failures,
       (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
        WHERE c.relnamespace = to_regnamespace('kt_governance_reclaim') AND c.relkind = 'r') AS bytes_awaiting_reclaim
FROM kt_partition_health p CROSS JOIN kt_jobs j;

COMMENT ON COLUMN kt_health.bytes_awaiting_reclaim IS 'Disk space of partitions removed by retention whose files are not deleted yet (normally 0: a worker deletes them right after each removal commits; the maintenance job catches up).';
