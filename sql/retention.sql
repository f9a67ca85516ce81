-- Retention, archive, legal holds and erasure.
--
-- kt_apply_retention(hours) removes every event (and evaluation) older than now() - hours and
-- nothing newer: whole partitions are removed (a pair, detached and dropped right after the
-- commit, see sql/reclaim.sql; each pair has its own foreign key), the partition straddling the cutoff and
-- any partition with held rows are trimmed. Rollups keep the history: dirty hours are
-- refreshed first, the removal itself marks nothing dirty (kt_governance.track_changes is
-- off inside these functions), and hours before the cutoff are frozen so no later refresh
-- recomputes them from the rows that remain.

CREATE TABLE ai_decision_events_archive (LIKE ai_decision_events INCLUDING DEFAULTS,
                                         archived_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ai_decision_events_archive_time_idx ON ai_decision_events_archive ("timestamp");
CREATE INDEX ai_decision_events_archive_user_idx ON ai_decision_events_archive (user_id);
COMMENT ON TABLE ai_decision_events_archive IS 'Events removed by retention with archive => true (the document''s archive-before-delete pattern): the events'' columns plus archived_at.';
COMMENT ON COLUMN ai_decision_events_archive.archived_at IS 'When the row was archived.';

CREATE TABLE policy_evaluations_archive (LIKE policy_evaluations INCLUDING DEFAULTS,
                                         archived_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX policy_evaluations_archive_event_idx ON policy_evaluations_archive (event_id);
COMMENT ON TABLE policy_evaluations_archive IS 'Evaluations of the archived events.';
COMMENT ON COLUMN policy_evaluations_archive.archived_at IS 'When the row was archived.';

-- column comments of the archives follow their sources
DO $comments$
DECLARE c record;
BEGIN
    FOR c IN SELECT t.archive, a.attname, col_description(t.source, a.attnum) AS text
             FROM (VALUES ('ai_decision_events_archive'::regclass, 'ai_decision_events'::regclass),
                          ('policy_evaluations_archive'::regclass, 'policy_evaluations'::regclass)) t(archive, source)
             JOIN pg_attribute a ON a.attrelid = t.source AND a.attnum > 0 AND NOT a.attisdropped
    LOOP
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', c.archive, c.attname, c.text);
    END LOOP;
END
$comments$;

CREATE TABLE kt_legal_holds (
    hold_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id     text,
    user_id     text,
    gateway_id  text,
    start_time  timestamptz,
    end_time    timestamptz,
    reason      text NOT NULL CHECK (reason <> ''),
    created_by  text NOT NULL DEFAULT session_user,
    created_at  timestamptz NOT NULL DEFAULT now(),
    released_by text,
    released_at timestamptz,
    CONSTRAINT kt_legal_holds_has_criteria
        CHECK (num_nonnulls(team_id, user_id, gateway_id, start_time, end_time) > 0),
    CONSTRAINT kt_legal_holds_range CHECK (start_time < end_time)
);
COMMENT ON TABLE kt_legal_holds IS 'Legal holds: events matching an active hold (all of its given criteria) are never removed by kt_apply_retention() or kt_erase_subject(). Holds bind the extension''s functions, not a superuser''s manual DELETE.';
COMMENT ON COLUMN kt_legal_holds.hold_id IS 'Hold id (from kt_add_legal_hold).';
COMMENT ON COLUMN kt_legal_holds.team_id IS 'Hold events of this team (NULL: any).';
COMMENT ON COLUMN kt_legal_holds.user_id IS 'Hold events of this user (NULL: any).';
COMMENT ON COLUMN kt_legal_holds.gateway_id IS 'Hold events of this gateway (NULL: any).';
COMMENT ON COLUMN kt_legal_holds.start_time IS 'Hold events at or after this time (NULL: no lower bound).';
COMMENT ON COLUMN kt_legal_holds.end_time IS 'Hold events before this time (NULL: no upper bound).';
COMMENT ON COLUMN kt_legal_holds.reason IS 'Why (matter, ticket).';
COMMENT ON COLUMN kt_legal_holds.created_by IS 'Session user that placed the hold.';
COMMENT ON COLUMN kt_legal_holds.created_at IS 'When it was placed.';
COMMENT ON COLUMN kt_legal_holds.released_by IS 'Session user that released it.';
COMMENT ON COLUMN kt_legal_holds.released_at IS 'When it was released (NULL: active).';
SELECT pg_catalog.pg_extension_config_dump('kt_legal_holds', '');

CREATE VIEW kt_legal_hold_status AS
SELECT hold_id, released_at IS NULL AS active, team_id, user_id, gateway_id, start_time, end_time,
       reason, created_by, created_at, released_by, released_at
FROM kt_legal_holds;
COMMENT ON VIEW kt_legal_hold_status IS 'Every legal hold, active or released, with who placed and released it.';
COMMENT ON COLUMN kt_legal_hold_status.hold_id IS 'Hold id.';
COMMENT ON COLUMN kt_legal_hold_status.active IS 'True until released.';
COMMENT ON COLUMN kt_legal_hold_status.team_id IS 'Team criterion.';
COMMENT ON COLUMN kt_legal_hold_status.user_id IS 'User criterion.';
COMMENT ON COLUMN kt_legal_hold_status.gateway_id IS 'Gateway criterion.';
COMMENT ON COLUMN kt_legal_hold_status.start_time IS 'Lower time bound.';
COMMENT ON COLUMN kt_legal_hold_status.end_time IS 'Upper time bound (exclusive).';
COMMENT ON COLUMN kt_legal_hold_status.reason IS 'Why.';
COMMENT ON COLUMN kt_legal_hold_status.created_by IS 'Who placed it.';
COMMENT ON COLUMN kt_legal_hold_status.created_at IS 'When.';
COMMENT ON COLUMN kt_legal_hold_status.released_by IS 'Who released it.';
COMMENT ON COLUMN kt_legal_hold_status.released_at IS 'When.';

CREATE TABLE kt_removal_log (
    removal_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    removed_at          timestamptz NOT NULL DEFAULT now(),
    why                 text NOT NULL CHECK (why IN ('retention', 'erasure')),
    cutoff              timestamptz,
    subject             text,
    partitions_dropped  text[] NOT NULL DEFAULT '{}',
    events_removed      bigint NOT NULL,
    evaluations_removed bigint NOT NULL,
    events_archived     bigint NOT NULL DEFAULT 0,
    events_held         bigint NOT NULL DEFAULT 0,
    archived_to         text,
    oldest_removed      timestamptz,
    newest_removed      timestamptz,
    run_by              text NOT NULL DEFAULT session_user,
    space_returned_at   timestamptz
);
COMMENT ON TABLE kt_removal_log IS 'Audit record of every removal made by kt_apply_retention() and kt_erase_subject(): when, why, cutoff or subject, partitions dropped, rows removed, archived and held.';
COMMENT ON COLUMN kt_removal_log.removal_id IS 'Row id.';
COMMENT ON COLUMN kt_removal_log.removed_at IS 'When (transaction start).';
COMMENT ON COLUMN kt_removal_log.why IS 'retention or erasure.';
COMMENT ON COLUMN kt_removal_log.cutoff IS 'Retention cutoff: events before it were removed.';
COMMENT ON COLUMN kt_removal_log.subject IS 'Erased user_id.';
COMMENT ON COLUMN kt_removal_log.partitions_dropped IS 'Whole partitions dropped (events and evaluations).';
COMMENT ON COLUMN kt_removal_log.events_removed IS 'Events removed (dropped or deleted).';
COMMENT ON COLUMN kt_removal_log.evaluations_removed IS 'Evaluations removed.';
COMMENT ON COLUMN kt_removal_log.events_archived IS 'Events copied to ai_decision_events_archive first.';
COMMENT ON COLUMN kt_removal_log.events_held IS 'Events kept because of legal holds.';
COMMENT ON COLUMN kt_removal_log.archived_to IS 'Where the archive went (table name), NULL when not archived.';
COMMENT ON COLUMN kt_removal_log.oldest_removed IS 'Oldest removed event.';
COMMENT ON COLUMN kt_removal_log.newest_removed IS 'Newest removed event.';
COMMENT ON COLUMN kt_removal_log.run_by IS 'Session user (the worker runs as the bootstrap superuser).';
COMMENT ON COLUMN kt_removal_log.space_returned_at IS 'When the dropped partitions'' files were deleted (by kt_reclaim_space(), right after the removal committed); NULL while they wait in kt_governance_reclaim, or when no partition was dropped.';
SELECT pg_catalog.pg_extension_config_dump('kt_removal_log', '');

CREATE VIEW kt_removals AS
SELECT removal_id, removed_at, why, coalesce(cutoff::text, 'user ' || subject) AS scope,
       cardinality(partitions_dropped) AS partitions, events_removed, evaluations_removed,
       events_archived, events_held, archived_to, oldest_removed, newest_removed, run_by,
       space_returned_at
FROM kt_removal_log;
COMMENT ON VIEW kt_removals IS 'The removal log, one line per removal, newest last.';
COMMENT ON COLUMN kt_removals.removal_id IS 'Row id.';
COMMENT ON COLUMN kt_removals.removed_at IS 'When.';
COMMENT ON COLUMN kt_removals.why IS 'retention or erasure.';
COMMENT ON COLUMN kt_removals.scope IS 'Cutoff (retention) or erased user.';
COMMENT ON COLUMN kt_removals.partitions IS 'Partitions dropped.';
COMMENT ON COLUMN kt_removals.events_removed IS 'Events removed.';
COMMENT ON COLUMN kt_removals.evaluations_removed IS 'Evaluations removed.';
COMMENT ON COLUMN kt_removals.events_archived IS 'Events archived first.';
COMMENT ON COLUMN kt_removals.events_held IS 'Events kept by holds.';
COMMENT ON COLUMN kt_removals.archived_to IS 'Archive destination.';
COMMENT ON COLUMN kt_removals.oldest_removed IS 'Oldest removed event.';
COMMENT ON COLUMN kt_removals.newest_removed IS 'Newest removed event.';
COMMENT ON COLUMN kt_removals.run_by IS 'Who ran it.';
COMMENT ON COLUMN kt_removals.space_returned_at IS 'When the dropped partitions'' disk space was returned (NULL: not yet, or nothing dropped).';

-- Whether an active legal hold covers an event with these attributes.
-- Called per row by retention and erasure (PostgreSQL does not inline a scalar SQL function
-- whose body has a subquery), so retention skips it entirely when no hold is active.
CREATE FUNCTION kt_is_held(team_id text, user_id text, gateway_id text, event_time timestamptz)
RETURNS boolean
LANGUAGE sql STABLE
AS $fn$
    SELECT EXISTS (
        SELECT FROM @extschema@.kt_legal_holds h
        WHERE h.released_at IS NULL
          AND (h.team_id IS NULL OR h.team_id = kt_is_held.team_id)
          AND (h.user_id IS NULL OR h.user_id = kt_is_held.user_id)
          AND (h.gateway_id IS NULL OR h.gateway_id = kt_is_held.gateway_id)
          AND (h.start_time IS NULL OR event_time >= h.start_time)
          AND (h.end_time IS NULL OR event_time < h.end_time))
$fn$;
COMMENT ON FUNCTION kt_is_held(text, text, text, timestamptz) IS 'Whether an active legal hold covers an event with this team, user, gateway and time (all of a hold''s given criteria match).';

CREATE FUNCTION kt_add_legal_hold(
    team_id text DEFAULT NULL,
    user_id text DEFAULT NULL,
    gateway_id text DEFAULT NULL,
    start_time timestamptz DEFAULT NULL,
    end_time timestamptz DEFAULT NULL,
    reason text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    new_id bigint;
BEGIN
    IF num_nonnulls(team_id, user_id, gateway_id, start_time, end_time) = 0 THEN
        RAISE EXCEPTION 'a legal hold needs at least one criterion (team_id, user_id, gateway_id, start_time, end_time)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(reason, '') = '' THEN
        RAISE EXCEPTION 'a legal hold needs a reason' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF start_time >= end_time THEN
        RAISE EXCEPTION 'start_time (%) must be before end_time (%)', start_time, end_time
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- waits for a retention or erasure run in progress: a hold committed while one runs would
    -- report success and still see its rows removed
    PERFORM kt_take_run_lock('retention', wait => true);
    INSERT INTO @extschema@.kt_legal_holds (team_id, user_id, gateway_id, start_time, end_time, reason)
    VALUES (team_id, user_id, gateway_id, start_time, end_time, reason)
    RETURNING hold_id INTO new_id;
    RETURN new_id;
END
$fn$;
COMMENT ON FUNCTION kt_add_legal_hold(text, text, text, timestamptz, timestamptz, text) IS 'Places a legal hold on events matching all the given criteria (team, user, gateway, time range [start_time, end_time)); returns its id. At least one criterion and a reason are required.';

CREATE FUNCTION kt_release_legal_hold(hold_id bigint)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    wanted bigint := hold_id;
    hold record;
BEGIN
    SELECT * INTO hold FROM @extschema@.kt_legal_holds h WHERE h.hold_id = wanted FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no legal hold with id %', wanted USING ERRCODE = 'no_data_found';
    END IF;
    -- a hold binds other admins: only whoever placed it (a member of its creator's role) or the
    -- legal-hold role may lift it. session_user: this function runs as its owner.
    IF NOT (pg_has_role(session_user, 'kt_governance_legal_hold', 'MEMBER')
            OR (to_regrole(quote_ident(hold.created_by)) IS NOT NULL
                AND pg_has_role(session_user, to_regrole(quote_ident(hold.created_by)), 'MEMBER'))) THEN
        RAISE EXCEPTION 'legal hold % was placed by %; only a member of that role or of kt_governance_legal_hold may release it',
            wanted, hold.created_by USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF hold.released_at IS NOT NULL THEN
        RAISE EXCEPTION 'legal hold % was already released at % by %', wanted, hold.released_at, hold.released_by
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE @extschema@.kt_legal_holds h SET released_at = now(), released_by = session_user WHERE h.hold_id = wanted;
END
$fn$;
COMMENT ON FUNCTION kt_release_legal_hold(bigint) IS 'Releases a legal hold; the next retention run may then remove the rows it protected. Only a member of the role that placed the hold (created_by) or of kt_governance_legal_hold may (SQLSTATE 42501 otherwise).';

-- Removes the events listed in the private stash table doomed (ids and timestamps, made by
-- kt_private_temp_table) with their evaluations, archiving first when asked, and drops the
-- stash. Returns (events, evaluations, archived).
CREATE FUNCTION kt_governance_internal.kt_remove_doomed(doomed text, archive boolean, OUT events bigint, OUT evaluations bigint, OUT archived bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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

-- Events and evaluations in a partition pair about to be dropped (the caller holds its locks):
-- from kt_row_counts, without reading the partitions. Changes that bypass row triggers (a
-- TRUNCATE of one partition, disabled triggers) would leave the counts wrong, so they are
-- checked against the partitions' sizes and the planner's statistics, and counted when those
-- disagree.
CREATE FUNCTION kt_governance_internal.kt_partition_pair_rows(events_partition regclass, evaluations_partition regclass,
                                       range_start timestamptz, range_end timestamptz,
                                       OUT events bigint, OUT evaluations bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    ev regclass := events_partition;
    pe regclass := evaluations_partition;
    recounted boolean;
BEGIN
    SELECT c.events, c.evaluations INTO events, evaluations FROM @extschema@.kt_counted_rows(range_start::timestamptz, range_end::timestamptz) c;
    -- counts are per whole UTC hour: bounds inside an hour (a partition attached by hand) are counted
    recounted := date_trunc('hour', range_start, 'UTC') <> range_start
                 OR date_trunc('hour', range_end, 'UTC') <> range_end
                 OR NOT (kt_count_is_plausible(ev, events) AND kt_count_is_plausible(pe, evaluations));
    IF recounted THEN
        RAISE NOTICE 'kt_governance retention: row counts of % (% events, % evaluations) not usable (bounds inside an hour, or counts that disagree with its size or statistics, which dead rows of an earlier trim also cause); counting its rows',
            events_partition, events, evaluations
            USING HINT = 'If nothing was trimmed or vacuumed here lately, something changed rows without row triggers: SELECT * FROM kt_verify_row_counts() shows where, kt_rebuild_row_counts() repairs it.';
        EXECUTE format('SELECT count(*) FROM %s', ev) INTO events;
        EXECUTE format('SELECT count(*) FROM %s', pe) INTO evaluations;
    END IF;
END
$fn$;
COMMENT ON FUNCTION kt_partition_pair_rows(regclass, regclass, timestamptz, timestamptz) IS 'Internal: events and evaluations of a partition pair from kt_row_counts, counted from the partitions instead when the counts cannot be used (bounds inside an hour) or disagree with their sizes or statistics (with a NOTICE).';

-- Whether n rows fit a table's size and statistics: an empty file holds no row, a non-empty one
-- some; once ANALYZE or VACUUM has run, n is within 10% (or 1000 rows) of the planner's estimate.
CREATE FUNCTION kt_governance_internal.kt_count_is_plausible(rel regclass, n bigint)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT (n > 0) = (s.pages > 0)
           AND (c.relpages <= 0 OR c.reltuples < 0
                OR abs(n - c.reltuples / c.relpages * s.pages) <= greatest(1000, 0.1 * c.reltuples / c.relpages * s.pages))
    FROM pg_class c,
         LATERAL (SELECT pg_relation_size(c.oid) / current_setting('block_size')::bigint AS pages) s
    WHERE c.oid = rel
$fn$;
COMMENT ON FUNCTION kt_count_is_plausible(regclass, bigint) IS 'Internal: whether a row count fits a table''s size and planner statistics (used to cross-check kt_row_counts before trusting it).';

CREATE FUNCTION kt_apply_retention(hours integer, archive boolean DEFAULT NULL, max_partitions integer DEFAULT NULL)
RETURNS TABLE (cutoff timestamptz, partitions_removed text[], events_removed bigint,
               evaluations_removed bigint, events_archived bigint, events_held bigint, more_to_do boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kt_governance_internal, pg_temp
-- partition bounds are read back from their text form: ISO output has numeric offsets, where
-- another DateStyle's zone abbreviation (IST) could be read as another zone
SET DateStyle = 'ISO, MDY'
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
    spare timestamptz;
    any_hold boolean;
BEGIN
    IF hours IS NULL OR hours <= 0 OR hours > 8766000 THEN
        RAISE EXCEPTION 'retention hours must be between 1 and 8766000 (1000 years), got %', coalesce(hours::text, 'NULL')
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
    -- holds and schedules are read once the lock is held: a hold is placed under the same lock,
    -- so none can commit between this read and the removals
    spare := kt_export_spare_from();
    any_hold := EXISTS (SELECT FROM @extschema@.kt_legal_holds WHERE released_at IS NULL) OR spare < 'infinity';
    cutoff := now() - make_interval(hours => hours);
    partitions_removed := '{}';
    events_removed := 0; evaluations_removed := 0; events_archived := 0; events_held := 0;
    more_to_do := false;

    -- rollups first: refresh the dirty hours the cutoff reaches (later ones are not touched and
    -- wait for the refresh job), then freeze the hours about to lose raw rows
    PERFORM @extschema@.kt_refresh_metrics(cutoff::timestamptz);
    INSERT INTO kt_rollup_state (frozen_before) VALUES (date_trunc('hour', cutoff, 'UTC'))
    ON CONFLICT (singleton) DO UPDATE SET frozen_before = greatest(kt_rollup_state.frozen_before, excluded.frozen_before);

    PERFORM kt_lock_for_partition_ddl();

    -- whole partition pairs older than the cutoff and free of held rows: dropped
    FOR part IN
        -- qualified names: partitions are made in kt_governance_partitions, but one attached by
        -- hand lives wherever its owner made it
        SELECT ev.partition_name AS events_part, pe.partition_name AS evals_part, ev.range_start, ev.range_end,
               format('%I.%I', ev.schema_name, ev.partition_name)::regclass AS events_rel,
               format('%I.%I', pe.schema_name, pe.partition_name)::regclass AS evals_rel
        FROM @extschema@.kt_partitions ev
        JOIN @extschema@.kt_partitions pe ON pe.parent_table = 'policy_evaluations' AND pe.range_start = ev.range_start
                             AND pe.range_end = ev.range_end
        WHERE ev.parent_table = 'ai_decision_events' AND NOT ev.is_default AND ev.range_end <= cutoff
        ORDER BY ev.range_start
    LOOP
        held := 0;
        IF any_hold THEN  -- a full scan of the partition only when some hold is active
            EXECUTE format('SELECT count(*) FROM %s e WHERE @extschema@.kt_is_held(e.team_id, e.user_id, e.gateway_id, e."timestamp") OR e.created_at >= %L',
                           part.events_rel, spare) INTO held;
        END IF;
        IF held > 0 THEN
            CONTINUE;  -- trimmed below instead
        END IF;
        IF cardinality(partitions_removed) >= max_partitions THEN
            more_to_do := true;  -- the caller commits and calls again
            EXIT;
        END IF;
        -- locked before their rows are counted: no row comes or goes until they are dropped
        EXECUTE format('LOCK TABLE %s, %s IN ACCESS EXCLUSIVE MODE', part.evals_rel, part.events_rel);
        SELECT p.events, p.evaluations INTO n_events, n_evals
        FROM kt_partition_pair_rows(part.events_rel, part.evals_rel, part.range_start, part.range_end) p;
        -- two index probes, not a scan
        EXECUTE format('SELECT min("timestamp"), max("timestamp") FROM %s', part.events_rel)
            INTO oldest, newest;
        IF do_archive THEN
            EXECUTE format('INSERT INTO @extschema@.ai_decision_events_archive SELECT * FROM %s', part.events_rel);
            EXECUTE format('INSERT INTO @extschema@.policy_evaluations_archive SELECT * FROM %s', part.evals_rel);
            events_archived := events_archived + n_events;
        END IF;
        IF parquet_dest IS NOT NULL AND n_events > 0 THEN
            -- an export error aborts this function: nothing is dropped without its archive
            PERFORM kt_export_range(parquet_dest, part.range_start, part.range_end,
                                    manifest_name => format('retention_%s', part.events_part));
        END IF;
        -- out of the tables at commit; the files are deleted right after it (sql/reclaim.sql)
        PERFORM kt_detach_for_reclaim(part.events_rel, part.evals_rel);
        PERFORM kt_forget_counted_range(part.range_start, part.range_end);
        partitions_removed := partitions_removed || part.events_part;
        events_removed := events_removed + n_events;
        evaluations_removed := evaluations_removed + n_evals;
        RAISE NOTICE 'kt_governance retention: removed % (% events, % evaluations)', part.events_part, n_events, n_evals;
    END LOOP;

    IF more_to_do THEN
        INSERT INTO @extschema@.kt_removal_log (why, cutoff, partitions_dropped, events_removed, evaluations_removed,
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
    SELECT count(*) INTO events_held FROM @extschema@.ai_decision_events e WHERE e."timestamp" < cutoff;
    IF removed.events > 0 THEN
        RAISE NOTICE 'kt_governance retention: deleted % events older than the cutoff from partly kept partitions', removed.events;
    END IF;
    IF events_held > 0 THEN
        RAISE NOTICE 'kt_governance retention: % events older than the cutoff kept by legal holds', events_held;
    END IF;

    INSERT INTO @extschema@.kt_removal_log (why, cutoff, partitions_dropped, events_removed, evaluations_removed,
                                events_archived, events_held, archived_to, oldest_removed, newest_removed)
    VALUES ('retention', cutoff, partitions_removed, events_removed, evaluations_removed, events_archived,
            events_held, nullif(archived_to, ''),
            (SELECT min(x) FROM unnest(ARRAY[oldest]) x), newest);
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_apply_retention(integer, boolean, integer) IS 'Removes every event and evaluation older than now() - hours and nothing newer: whole partitions are detached (their files are deleted by a background worker right after the commit, see kt_reclaim_space()), the partition straddling the cutoff (and any holding legally held rows) is trimmed. Refreshes rollups first and freezes the pruned hours, so reports keep the history. archive (default kt_governance.retention_archive) copies the rows to ai_decision_events_archive / policy_evaluations_archive in the same transaction; with kt_governance.retention_archive_destination set, every dropped partition and the trimmed range are first exported as Parquet there (manifests retention_<partition>.json / retention_trim_<cutoff>.json), and an export error aborts the removal. Held rows stay. Logged in kt_removal_log. hours <= 0 or NULL is an error. A concurrent run is skipped with a NOTICE. max_partitions: drop at most that many partition pairs and return more_to_do = true, leaving the rest (and the trim) to the next call, so a caller can commit in between (see kt_apply_retention_by_partition).';

-- For DBAs who want what the worker does: one transaction per dropped partition pair, so locks
-- are short and a failure keeps what was already done. CALL it outside a transaction block.
CREATE PROCEDURE kt_apply_retention_by_partition(hours integer, archive boolean DEFAULT NULL)
LANGUAGE plpgsql
AS $fn$
DECLARE
    step record;
BEGIN
    LOOP
        SELECT * INTO step FROM @extschema@.kt_apply_retention(hours::integer, archive::boolean, 1::integer);
        COMMIT;
        EXIT WHEN step.more_to_do IS NOT TRUE;
    END LOOP;
END
$fn$;
COMMENT ON PROCEDURE kt_apply_retention_by_partition(integer, boolean) IS 'kt_apply_retention() committed one partition pair at a time (then the trim): CALL kt_apply_retention_by_partition(61320). Must be called outside an explicit transaction block.';

CREATE FUNCTION kt_erase_subject(user_id text)
RETURNS TABLE (events_removed bigint, evaluations_removed bigint, archived_removed bigint, events_held bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
    PERFORM @extschema@.kt_refresh_metrics('infinity'::timestamptz);
    doomed := kt_private_temp_table('kt_doomed', '(id text, ts timestamptz)');
    EXECUTE format('INSERT INTO %s
                    SELECT e.id, e."timestamp" FROM @extschema@.ai_decision_events e
                    WHERE e.user_id = $1 AND NOT @extschema@.kt_is_held(e.team_id, e.user_id, e.gateway_id, e."timestamp")', doomed)
        USING subject;
    EXECUTE format('SELECT min(ts), max(ts) FROM %s', doomed) INTO oldest, newest;
    SELECT * INTO removed FROM kt_remove_doomed(doomed, false);
    events_removed := removed.events;
    evaluations_removed := removed.evaluations;
    SELECT count(*) INTO events_held FROM @extschema@.ai_decision_events e WHERE e.user_id = subject;
    -- archived copies and quarantined raw records are personal data too
    DELETE FROM @extschema@.policy_evaluations_archive pa USING @extschema@.ai_decision_events_archive a
    WHERE a.user_id = subject AND pa.event_id = a.id AND pa.event_timestamp = a."timestamp"
      AND NOT @extschema@.kt_is_held(a.team_id, a.user_id, a.gateway_id, a."timestamp");
    DELETE FROM @extschema@.ai_decision_events_archive a
    WHERE a.user_id = subject AND NOT @extschema@.kt_is_held(a.team_id, a.user_id, a.gateway_id, a."timestamp");
    GET DIAGNOSTICS archived_removed = ROW_COUNT;
    DELETE FROM @extschema@.kt_ingest_errors q WHERE q.raw ->> 'user_id' = subject;
    IF events_held > 0 THEN
        RAISE WARNING 'kt_governance: % events of user % are under legal hold and were not erased', events_held, subject;
    END IF;
    INSERT INTO @extschema@.kt_removal_log (why, subject, events_removed, evaluations_removed, events_held, oldest_removed, newest_removed)
    VALUES ('erasure', subject, events_removed, evaluations_removed, events_held, oldest, newest);
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_erase_subject(text) IS 'Right to be forgotten: deletes a user''s events and evaluations (and their archived copies and quarantined records), except rows under legal hold, which it counts and reports. Rollups, which hold no user ids, keep their totals. Logged in kt_removal_log.';

REVOKE ALL ON PROCEDURE kt_apply_retention_by_partition(integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE kt_apply_retention_by_partition(integer, boolean) TO kt_governance_admin;
REVOKE ALL ON FUNCTION kt_add_legal_hold(text, text, text, timestamptz, timestamptz, text),
                       kt_release_legal_hold(bigint), kt_apply_retention(integer, boolean, integer),
                       kt_erase_subject(text), kt_remove_doomed(text, boolean),
                       kt_partition_pair_rows(regclass, regclass, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_add_legal_hold(text, text, text, timestamptz, timestamptz, text),
                          kt_release_legal_hold(bigint), kt_apply_retention(integer, boolean, integer),
                          kt_erase_subject(text) TO kt_governance_admin;
GRANT EXECUTE ON FUNCTION kt_add_legal_hold(text, text, text, timestamptz, timestamptz, text),
                          kt_release_legal_hold(bigint) TO kt_governance_legal_hold;
GRANT SELECT ON kt_legal_holds, kt_legal_hold_status, kt_removal_log, kt_removals,
                ai_decision_events_archive, policy_evaluations_archive TO kt_governance_reader;

INSERT INTO kt_jobs (job_name, description, interval_setting) VALUES
    ('retention', 'kt_apply_retention(kt_governance.retention_hours) when it is > 0, then rollup retention (kt_governance.rollup_retention_hours)', 'retention_interval');

-- The worker's retention job: raw retention by kt_governance.retention_hours (0 = off), then
-- rollup retention by kt_governance.rollup_retention_hours (0 = keep rollups forever).
CREATE FUNCTION kt_governance_internal.kt_retention_job(OUT events_removed bigint, OUT message text, OUT again boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
        SELECT * INTO r FROM @extschema@.kt_apply_retention(raw_hours::integer, NULL::boolean, 1::integer);
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
        DELETE FROM kt_rollup_policy_hourly WHERE bucket < rollup_cutoff;
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        DELETE FROM kt_rollup_summary_hourly WHERE bucket < rollup_cutoff;
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        -- days before the cutoff's day go; the cutoff's own day is summed again from the hours
        -- it keeps, so a daily row is always the sum of its hourly rows
        DELETE FROM kt_rollup_spend_daily WHERE bucket < date_trunc('day', rollup_cutoff, 'UTC');
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        DELETE FROM kt_rollup_summary_daily WHERE bucket < date_trunc('day', rollup_cutoff, 'UTC');
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        PERFORM kt_rebuild_spend_days(ARRAY[rollup_cutoff]);
        message := message || format('; %s rollup rows older than %s hours removed', rollup_rows, rollup_hours);
    END IF;
END
$fn$;
COMMENT ON FUNCTION kt_retention_job() IS 'Internal: body of the retention job: kt_apply_retention(kt_governance.retention_hours) one partition pair per run (again = true asks the worker to run it again after committing), then rollup retention.';
REVOKE ALL ON FUNCTION kt_retention_job() FROM PUBLIC;
