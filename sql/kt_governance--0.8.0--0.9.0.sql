-- kt_governance 0.8.0 -> 0.9.0, the first steps of the trust boundary:
-- * privileged code no longer uses temp tables it finds in the caller's pg_temp (a caller who
--   made kt_doomed or kt_stash_events first, or hung a trigger on it, ran code or chose rows as
--   the extension owner): every stash is a new temp table with a random name made by
--   kt_private_temp_table(), owned by the extension owner;
-- * runs are serialized by row locks on kt_run_locks, which only the extension's own code can
--   take, instead of advisory-lock keys any login could hold.
-- Frozen once released: later changes go into a new upgrade script.
\echo Use "ALTER EXTENSION kt_governance UPDATE TO '0.9.0'" to load this file. \quit


-- Run locks: what serializes the extension's own runs (one refresh at a time, one retention or
-- erasure at a time, one reclaim, kt_ingest's duplicate-id check).
--
-- They are row locks on kt_run_locks, a table no role but the extension owner may read, lock
-- or write, taken by the extension's own privileged code. Advisory-lock keys would not do: any
-- login may take any key (in 0.8.0, SELECT pg_advisory_lock(hashtext('kt_governance.refresh_metrics'))
-- from a role with no grants stalled the worker's refresh for as long as it liked).

CREATE TABLE kt_run_locks (
    lock_name  text PRIMARY KEY,
    serializes text NOT NULL
);
COMMENT ON TABLE kt_run_locks IS 'One row per run lock; a run holds its row locked (SELECT ... FOR UPDATE) until its transaction ends. Only the extension owner can read or lock these rows, so no other role can stall or skip a run by holding its lock. A holder shows in pg_locks as its transaction id (the row is marked with it); a run waiting for it shows a lock on the tuple.';
COMMENT ON COLUMN kt_run_locks.lock_name IS 'Lock name: refresh_metrics, retention, reclaim or ingest.';
COMMENT ON COLUMN kt_run_locks.serializes IS 'The runs that take this lock.';
INSERT INTO kt_run_locks VALUES
    ('refresh_metrics', 'kt_refresh_metrics(): one refresh at a time'),
    ('retention', 'kt_apply_retention() and kt_erase_subject(): one removal at a time'),
    ('reclaim', 'kt_reclaim_space(): one reclaim at a time'),
    ('ingest', 'kt_ingest(): the duplicate-id check and the insert of new events');
REVOKE ALL ON kt_run_locks FROM PUBLIC;

-- Takes a run lock for the rest of the transaction. wait => false: returns false at once when
-- another run holds it. Called by privileged (extension-owned) code only.
CREATE FUNCTION kt_take_run_lock(lock_name text, wait boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    wanted text := lock_name;
    taken boolean;
BEGIN
    IF wait THEN
        PERFORM FROM @extschema@.kt_run_locks l WHERE l.lock_name = wanted FOR UPDATE;
    ELSE
        PERFORM FROM @extschema@.kt_run_locks l WHERE l.lock_name = wanted FOR UPDATE SKIP LOCKED;
    END IF;
    taken := FOUND;
    IF NOT taken AND NOT EXISTS (SELECT FROM @extschema@.kt_run_locks l WHERE l.lock_name = wanted) THEN
        RAISE EXCEPTION 'unknown run lock "%"', wanted USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN taken;
END
$fn$;
COMMENT ON FUNCTION kt_take_run_lock(text, boolean) IS 'Internal: locks the kt_run_locks row lock_name until the transaction ends; wait => false returns false instead of waiting when another run holds it. Not executable by PUBLIC.';
REVOKE ALL ON FUNCTION kt_take_run_lock(text, boolean) FROM PUBLIC;

-- kt_ingest runs with its caller's rights, so it takes its lock through this door, which only
-- writers may open: a writer can make other writers wait, no other role can.
CREATE FUNCTION kt_take_ingest_lock()
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM @extschema@.kt_take_run_lock('ingest');
END
$fn$;
COMMENT ON FUNCTION kt_take_ingest_lock() IS 'Internal: takes the ingest run lock for kt_ingest (which runs with its caller''s rights); executable by kt_governance_writer only.';
REVOKE ALL ON FUNCTION kt_take_ingest_lock() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_take_ingest_lock() TO kt_governance_writer;


-- signatures that changed: the stash tables are passed by name
DROP FUNCTION kt_unstash_rows();
DROP FUNCTION kt_stash_default_rows(timestamptz, timestamptz);
DROP FUNCTION kt_remove_doomed(boolean);

-- Privileged code never uses a table it finds in the caller's pg_temp: a caller who made it
-- first (or hung a trigger or rule on it) would run code, or choose rows, as the definer. Each
-- stash is a new temp table with a random name, made here, so its owner is the extension owner:
-- the caller cannot fill, alter or hang anything on it, and a name taken makes CREATE fail
-- instead of reusing it. Dropped at commit. Returns the qualified name to use with %s.
CREATE OR REPLACE FUNCTION kt_private_temp_table(prefix text, definition text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    table_name text := prefix || '_' || replace(gen_random_uuid()::text, '-', '');
BEGIN
    EXECUTE format('CREATE TEMP TABLE %I %s ON COMMIT DROP', table_name, definition);
    -- belt and braces: exactly the plain table just made, owned by us, nothing attached
    IF NOT EXISTS (SELECT FROM pg_class c
                   WHERE c.relnamespace = pg_my_temp_schema() AND c.relname = table_name
                     AND c.relkind = 'r' AND NOT c.relhastriggers AND NOT c.relhasrules
                     AND c.relowner = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)) THEN
        RAISE EXCEPTION 'kt_governance: temporary table % is not the one it just created', table_name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN format('pg_temp.%I', table_name);
END
$fn$;
COMMENT ON FUNCTION kt_private_temp_table(text, text) IS 'Internal: creates a temporary table with a random name (prefix_<32 hex>) and the given column definition, dropped at commit, owned by the calling (extension) role, and returns its qualified name. Privileged code stashes rows only in such tables, never in one it finds in pg_temp.';

-- Moves the default partitions' rows of [lo, hi) into two private stash tables (see
-- kt_private_temp_table). Must run before the partition is created: PostgreSQL refuses a new
-- partition while the default one holds rows of its range.
CREATE OR REPLACE FUNCTION kt_stash_default_rows(lo timestamptz, hi timestamptz,
                                      OUT events_stash text, OUT evaluations_stash text, OUT moved bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
BEGIN
    moved := 0;
    IF NOT EXISTS (SELECT FROM ONLY @extschema@.events_default
                   WHERE "timestamp" >= lo AND "timestamp" < hi) THEN
        RETURN;
    END IF;
    events_stash := @extschema@.kt_private_temp_table('kt_stash_events', '(LIKE @extschema@.ai_decision_events)');
    evaluations_stash := @extschema@.kt_private_temp_table('kt_stash_evaluations', '(LIKE @extschema@.policy_evaluations)');
    -- evaluations first: their foreign key refuses deleting events they still reference
    EXECUTE format('WITH gone AS (DELETE FROM ONLY @extschema@.policy_evaluations_default
                                  WHERE event_timestamp >= $1 AND event_timestamp < $2 RETURNING *)
                    INSERT INTO %s SELECT * FROM gone', evaluations_stash) USING lo, hi;
    EXECUTE format('WITH gone AS (DELETE FROM ONLY @extschema@.events_default
                                  WHERE "timestamp" >= $1 AND "timestamp" < $2 RETURNING *)
                    INSERT INTO %s SELECT * FROM gone', events_stash) USING lo, hi;
    GET DIAGNOSTICS moved = ROW_COUNT;
END
$fn$;
COMMENT ON FUNCTION kt_stash_default_rows(timestamptz, timestamptz) IS 'Internal: moves the default partitions'' rows of [lo, hi) into two private stash tables made for this call; returns their names and the number of events moved (0 and NULL names when there was nothing to move).';

CREATE OR REPLACE FUNCTION kt_unstash_rows(events_stash text, evaluations_stash text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
BEGIN
    EXECUTE format('INSERT INTO @extschema@.ai_decision_events SELECT * FROM %s', events_stash);
    EXECUTE format('INSERT INTO @extschema@.policy_evaluations OVERRIDING SYSTEM VALUE SELECT * FROM %s', evaluations_stash);
    EXECUTE format('DROP TABLE %s, %s', events_stash, evaluations_stash);
END
$fn$;
COMMENT ON FUNCTION kt_unstash_rows(text, text) IS 'Internal: inserts the rows of the stash tables kt_stash_default_rows() made back through the parents, so they land in their new partition, and drops the stash tables.';

-- Makes sure a partition covers t in both tables. Any rows of the new range waiting in the
-- default partitions are moved into it in this transaction (evaluations with their events).
-- The caller holds the locks from kt_lock_for_partition_ddl().
CREATE OR REPLACE FUNCTION kt_ensure_partition(
    t timestamptz,
    granularity text,
    OUT partition_name text,
    OUT range_start timestamptz,
    OUT range_end timestamptz,
    OUT created boolean,
    OUT rows_moved bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
SET TimeZone = 'UTC'
AS $fn$
DECLARE
    wanted record;
    existing record;
    suffix text;
    evaluation_name text;
    attempt int := 0;
    stash record;
BEGIN
    SELECT p.partition_name, p.range_start, p.range_end INTO existing
    FROM @extschema@.kt_partitions p
    WHERE p.parent_table = 'ai_decision_events' AND NOT p.is_default
      AND p.range_start <= t AND t < p.range_end;
    IF FOUND THEN
        partition_name := existing.partition_name;
        range_start := existing.range_start;
        range_end := existing.range_end;
        created := false;
        rows_moved := 0;
        RETURN;
    END IF;

    SELECT * INTO wanted FROM @extschema@.kt_partition_range(t, granularity);
    -- after a change of granularity the natural range may overlap existing partitions:
    -- clip it to the gap around t (greatest/least ignore the NULL of "no neighbour")
    range_start := greatest(wanted.range_start,
        (SELECT max(p.range_end) FROM @extschema@.kt_partitions p
         WHERE p.parent_table = 'ai_decision_events' AND p.range_end <= t));
    range_end := least(wanted.range_end,
        (SELECT min(p.range_start) FROM @extschema@.kt_partitions p
         WHERE p.parent_table = 'ai_decision_events' AND p.range_start > t));

    suffix := wanted.name_suffix;
    WHILE to_regclass(format('%I.%I', '@extschema@', 'events_' || suffix)) IS NOT NULL
       OR to_regclass(format('%I.%I', '@extschema@', 'policy_evaluations_' || suffix)) IS NOT NULL LOOP
        attempt := attempt + 1;
        suffix := wanted.name_suffix || '_' || attempt;
    END LOOP;
    partition_name := 'events_' || suffix;
    evaluation_name := 'policy_evaluations_' || suffix;

    stash := @extschema@.kt_stash_default_rows(range_start, range_end);
    rows_moved := stash.moved;

    EXECUTE format('CREATE TABLE %I.%I PARTITION OF @extschema@.ai_decision_events FOR VALUES FROM (%L) TO (%L)',
                   '@extschema@', partition_name,
                   to_char(range_start, 'YYYY-MM-DD HH24:MI:SS"+00"'),
                   to_char(range_end, 'YYYY-MM-DD HH24:MI:SS"+00"'));
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF @extschema@.policy_evaluations FOR VALUES FROM (%L) TO (%L)',
                   '@extschema@', evaluation_name,
                   to_char(range_start, 'YYYY-MM-DD HH24:MI:SS"+00"'),
                   to_char(range_end, 'YYYY-MM-DD HH24:MI:SS"+00"'));
    EXECUTE format('COMMENT ON TABLE %I.%I IS %L', '@extschema@', partition_name,
                   format('Partition of ai_decision_events for [%s, %s) UTC, made by kt_governance.', range_start, range_end));
    EXECUTE format('COMMENT ON TABLE %I.%I IS %L', '@extschema@', evaluation_name,
                   format('Partition of policy_evaluations for [%s, %s) UTC, made by kt_governance.', range_start, range_end));

    IF rows_moved > 0 THEN
        PERFORM @extschema@.kt_unstash_rows(stash.events_stash, stash.evaluations_stash);
    END IF;
    -- keys after the rows: one index build instead of row-by-row maintenance
    PERFORM @extschema@.kt_add_partition_keys(partition_name, evaluation_name);
    created := true;
END
$fn$;
COMMENT ON FUNCTION kt_ensure_partition(timestamptz, text) IS 'Internal: creates the events and evaluations partitions covering t (clipped to the gap between existing partitions) unless one exists, moving waiting rows out of the default partitions. Caller must hold kt_lock_for_partition_ddl().';

-- Removes the events listed in the private stash table doomed (ids and timestamps, made by
-- kt_private_temp_table) with their evaluations, archiving first when asked, and drops the
-- stash. Returns (events, evaluations, archived).
CREATE OR REPLACE FUNCTION kt_remove_doomed(doomed text, archive boolean, OUT events bigint, OUT evaluations bigint, OUT archived bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
BEGIN
    archived := 0;
    IF archive THEN
        EXECUTE format('INSERT INTO @extschema@.ai_decision_events_archive
                        SELECT e.* FROM @extschema@.ai_decision_events e JOIN %s d ON d.id = e.id AND d.ts = e."timestamp"', doomed);
        GET DIAGNOSTICS archived = ROW_COUNT;
        EXECUTE format('INSERT INTO @extschema@.policy_evaluations_archive
                        SELECT pe.* FROM @extschema@.policy_evaluations pe JOIN %s d ON d.id = pe.event_id AND d.ts = pe.event_timestamp', doomed);
    END IF;
    EXECUTE format('DELETE FROM @extschema@.policy_evaluations pe USING %s d
                    WHERE d.id = pe.event_id AND d.ts = pe.event_timestamp', doomed);
    GET DIAGNOSTICS evaluations = ROW_COUNT;
    EXECUTE format('DELETE FROM @extschema@.ai_decision_events e USING %s d
                    WHERE d.id = e.id AND d.ts = e."timestamp"', doomed);
    GET DIAGNOSTICS events = ROW_COUNT;
    EXECUTE format('DROP TABLE %s', doomed);
END
$fn$;
COMMENT ON FUNCTION kt_remove_doomed(text, boolean) IS 'Internal: deletes the events listed in a private stash table (see kt_private_temp_table) and their evaluations, archiving them first when asked, then drops the stash.';

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
    doomed text;
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
    IF NOT kt_take_run_lock('retention', wait => false) THEN
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
    doomed := kt_private_temp_table('kt_doomed', '(id text, ts timestamptz)');
    EXECUTE format('INSERT INTO %s
                    SELECT e.id, e."timestamp" FROM @extschema@.ai_decision_events e
                    WHERE e."timestamp" < $1 AND NOT @extschema@.kt_is_held(e.team_id, e.user_id, e.gateway_id, e."timestamp")
                      AND e.created_at < $2', doomed) USING cutoff, spare;
    EXECUTE format('SELECT min(ts), max(ts) FROM %s', doomed) INTO oldest, newest;
    IF parquet_dest IS NOT NULL AND oldest IS NOT NULL THEN
        -- the exported range also holds the held rows between oldest and newest (they stay too)
        PERFORM kt_export_range(parquet_dest, oldest, newest + interval '1 microsecond',
            manifest_name => format('retention_trim_%s', to_char(cutoff AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS')));
    END IF;
    SELECT * INTO removed FROM kt_remove_doomed(doomed, do_archive);
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

CREATE OR REPLACE FUNCTION kt_erase_subject(user_id text)
RETURNS TABLE (events_removed bigint, evaluations_removed bigint, archived_removed bigint, events_held bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
SET kt_governance.track_changes = off
AS $fn$
DECLARE
    subject text := user_id;
    removed record;
    oldest timestamptz;
    newest timestamptz;
    doomed text;
BEGIN
    IF coalesce(subject, '') = '' THEN
        RAISE EXCEPTION 'user_id is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM kt_take_run_lock('retention');
    -- keep the aggregate history (rollups hold no user ids): bring them up to date first
    PERFORM kt_refresh_metrics();
    doomed := kt_private_temp_table('kt_doomed', '(id text, ts timestamptz)');
    EXECUTE format('INSERT INTO %s
                    SELECT e.id, e."timestamp" FROM @extschema@.ai_decision_events e
                    WHERE e.user_id = $1 AND NOT @extschema@.kt_is_held(e.team_id, e.user_id, e.gateway_id, e."timestamp")', doomed)
        USING subject;
    EXECUTE format('SELECT min(ts), max(ts) FROM %s', doomed) INTO oldest, newest;
    SELECT * INTO removed FROM kt_remove_doomed(doomed, false);
    events_removed := removed.events;
    evaluations_removed := removed.evaluations;
    SELECT count(*) INTO events_held FROM ai_decision_events e WHERE e.user_id = subject;
    -- archived copies and quarantined raw records are personal data too
    DELETE FROM policy_evaluations_archive pa USING ai_decision_events_archive a
    WHERE a.user_id = subject AND pa.event_id = a.id AND pa.event_timestamp = a."timestamp"
      AND NOT kt_is_held(a.team_id, a.user_id, a.gateway_id, a."timestamp");
    DELETE FROM ai_decision_events_archive a
    WHERE a.user_id = subject AND NOT kt_is_held(a.team_id, a.user_id, a.gateway_id, a."timestamp");
    GET DIAGNOSTICS archived_removed = ROW_COUNT;
    DELETE FROM kt_ingest_errors q WHERE q.raw ->> 'user_id' = subject;
    IF events_held > 0 THEN
        RAISE WARNING 'kt_governance: % events of user % are under legal hold and were not erased', events_held, subject;
    END IF;
    INSERT INTO kt_removal_log (why, subject, events_removed, evaluations_removed, events_held, oldest_removed, newest_removed)
    VALUES ('erasure', subject, events_removed, evaluations_removed, events_held, oldest, newest);
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_erase_subject(text) IS 'Right to be forgotten: deletes a user''s events and evaluations (and their archived copies and quarantined records), except rows under legal hold, which it counts and reports. Rollups, which hold no user ids, keep their totals. Logged in kt_removal_log.';

CREATE OR REPLACE FUNCTION kt_refresh_metrics(up_to timestamptz DEFAULT 'infinity')
RETURNS TABLE (hours_refreshed bigint, metric_rows bigint, oldest_hour timestamptz, newest_hour timestamptz,
              hours_merged bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
-- a refresh reads a few hours of rows: compiling its plans with JIT (which the row estimates
-- trigger at 100k+ rows) costs more than running them
SET jit = off
-- the planner overestimates the groups (hundreds per hour, not the tens of thousands it
-- guesses) and would sort every row to aggregate the latency arrays; hashing is 3x faster
SET enable_sort = off
-- the rollup rows written here are the refresh's own, not outside writes to recompute
-- (kt_recompute_written_hours)
SET kt_governance.track_changes = off
AS $fn$
DECLARE
    hours timestamptz[];
    raw_hours timestamptz[];
    merge_hours timestamptz[];
    recomputed bigint := 0;
    merged bigint := 0;
BEGIN
    IF up_to IS NULL THEN
        RAISE EXCEPTION 'up_to must not be NULL (the default, infinity, refreshes every dirty hour)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- one refresh at a time; a second caller waits, then finds little or nothing left to do
    PERFORM kt_take_run_lock('refresh_metrics');
    -- this transaction's own inserts are summed in memory until its commit: recompute their
    -- hours instead
    PERFORM kt_settle_pending_deltas();
    -- Hours before frozen_before lost raw rows to retention: their marks and deltas are
    -- dropped, never applied. An hour is merged from its deltas when every change to it was a
    -- summed insert and its rollup rows carry exact histograms; otherwise recomputed.
    WITH taken AS (DELETE FROM kt_dirty_hours WHERE bucket < up_to RETURNING bucket, recompute),
    live AS (
        SELECT t.bucket, bool_or(t.recompute)
                   -- rows written before 0.6.0 have no exact histogram to merge into
                   OR EXISTS (SELECT FROM kt_rollup_metrics_hourly r WHERE r.bucket = t.bucket
                              AND r.latency_histogram IS NULL AND r.latency_count > 0) AS recompute
        FROM taken t WHERE t.bucket >= kt_frozen_before() GROUP BY t.bucket
    )
    SELECT array_agg(bucket ORDER BY bucket),
           coalesce(array_agg(bucket ORDER BY bucket) FILTER (WHERE recompute), '{}'),
           coalesce(array_agg(bucket ORDER BY bucket) FILTER (WHERE NOT recompute), '{}')
    INTO hours, raw_hours, merge_hours FROM live;
    DELETE FROM kt_rollup_deltas WHERE bucket < kt_frozen_before();
    DELETE FROM kt_latency_deltas WHERE bucket < kt_frozen_before();
    hours_refreshed := coalesce(cardinality(hours), 0);
    hours_merged := cardinality(merge_hours);
    oldest_hour := hours[1];
    newest_hour := hours[hours_refreshed];
    IF cardinality(raw_hours) > 0 THEN
        recomputed := kt_recompute_hours(raw_hours);
    END IF;
    IF cardinality(merge_hours) > 0 THEN
        merged := kt_merge_deltas(merge_hours);
    END IF;
    metric_rows := recomputed + merged;
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_refresh_metrics(timestamptz) IS 'Brings every dirty hour (kt_dirty_hours) of every rollup up to date, exactly, in the caller''s transaction: hours changed only by summed inserts get their kt_rollup_deltas merged in; the others are recomputed from raw rows. A concurrent refresh waits for it. up_to: only hours starting before it (retention refreshes up to its cutoff). Returns how many hours were refreshed (hours_merged of them from deltas), the rollup rows written and the hours'' span. The worker runs it every kt_governance.refresh_interval.';

CREATE OR REPLACE FUNCTION kt_reclaim_space(OUT tables_dropped integer, OUT bytes_returned bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    doomed text;
BEGIN
    -- one at a time: a second caller then sees what the first dropped
    PERFORM kt_take_run_lock('reclaim');
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

REVOKE ALL ON FUNCTION kt_private_temp_table(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION kt_stash_default_rows(timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION kt_unstash_rows(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION kt_remove_doomed(text, boolean) FROM PUBLIC;

-- a run that found another run of its kind under way is recorded as skipped, with the reason
ALTER TABLE kt_job_runs DROP CONSTRAINT kt_job_runs_status_check;
ALTER TABLE kt_job_runs ADD CONSTRAINT kt_job_runs_status_check CHECK (status IN ('ok', 'error', 'skipped'));
COMMENT ON COLUMN kt_job_runs.status IS 'ok, error, or skipped (the job did not run, for the reason in message: another run of the same kind held its lock).';

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
    INSERT INTO kt_job_runs (job_name, started_at, finished_at, status, message, rows_touched)
    VALUES (wanted, started_at, finished_at, status, message, rows_touched);
    UPDATE kt_jobs j SET last_started = kt_run_job.started_at, last_finished = kt_run_job.finished_at,
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

-- The worker's retention job: raw retention by kt_governance.retention_hours (0 = off), then
-- rollup retention by kt_governance.rollup_retention_hours (0 = keep rollups forever).
CREATE OR REPLACE FUNCTION kt_retention_job(OUT events_removed bigint, OUT message text, OUT again boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    raw_hours integer := kt_setting('retention_hours')::int;
    rollup_hours integer := kt_setting('rollup_retention_hours')::int;
    rollup_cutoff timestamptz := now() - make_interval(hours => rollup_hours);
    r record;
    rollup_rows bigint := 0;
    n bigint;
BEGIN
    events_removed := 0;
    again := false;
    message := 'raw retention off';
    IF raw_hours > 0 THEN
        -- one partition pair per run: the worker commits and runs the job again at once
        SELECT * INTO r FROM kt_apply_retention(raw_hours, NULL, 1);
        IF NOT FOUND THEN
            -- kt_run_job records this as a skipped run, with the reason, not as a success
            RAISE EXCEPTION 'skipped: another retention or erasure run holds the retention lock'
                USING ERRCODE = 'KT001';
        END IF;
        events_removed := coalesce(r.events_removed, 0);
        again := coalesce(r.more_to_do, false);
        message := format('cutoff %s: %s partitions dropped, %s events removed, %s held%s',
                          r.cutoff, cardinality(r.partitions_removed), r.events_removed, r.events_held,
                          CASE WHEN again THEN ', more to do' ELSE '' END);
    END IF;
    IF rollup_hours > 0 THEN
        DELETE FROM kt_rollup_metrics_hourly WHERE bucket < rollup_cutoff;
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        DELETE FROM kt_rollup_decisions_hourly WHERE bucket < rollup_cutoff;
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        DELETE FROM kt_rollup_spend_hourly WHERE bucket < rollup_cutoff;
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        -- days before the cutoff's day go; the cutoff's own day is summed again from the hours
        -- it keeps, so a daily row is always the sum of its hourly rows
        DELETE FROM kt_rollup_spend_daily WHERE bucket < date_trunc('day', rollup_cutoff, 'UTC');
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        PERFORM kt_rebuild_spend_days(ARRAY[rollup_cutoff]);
        message := message || format('; %s rollup rows older than %s hours removed', rollup_rows, rollup_hours);
    END IF;
END
$fn$;
COMMENT ON FUNCTION kt_retention_job() IS 'Internal: body of the retention job: kt_apply_retention(kt_governance.retention_hours) one partition pair per run (again = true asks the worker to run it again after committing), then rollup retention.';
