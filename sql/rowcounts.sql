-- Exact row counts per UTC hour (src/rowcount.rs explains why and how).
--
-- kt_row_counts is append-only: each writing transaction adds one row per hour it changed, with
-- signed counts, so concurrent writers never wait on each other. The sum over an hour's rows is
-- the number of rows of that hour. kt_run_maintenance() folds each hour's rows into one.
-- The table is not dumped: restoring a dump loads the rows through the same triggers, which
-- count them again.

CREATE TABLE kt_governance_internal.kt_row_counts (
    hour        timestamptz NOT NULL,
    events      bigint      NOT NULL DEFAULT 0,
    evaluations bigint      NOT NULL DEFAULT 0
);
CREATE INDEX kt_row_counts_hour_idx ON kt_row_counts (hour);
COMMENT ON TABLE kt_row_counts IS 'Signed row counts per UTC hour of ai_decision_events ("timestamp") and policy_evaluations (event_timestamp), appended by every writing transaction at commit; sum them per hour. Lets retention log how many rows a dropped partition held without reading it.';
COMMENT ON COLUMN kt_row_counts.hour IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_row_counts.events IS 'Events added (negative: removed) in the hour.';
COMMENT ON COLUMN kt_row_counts.evaluations IS 'Evaluations added (negative: removed) in the hour.';

ALTER FUNCTION kt_count_evaluations() SET SCHEMA kt_governance_internal;
REVOKE ALL ON FUNCTION kt_governance_internal.kt_count_evaluations() FROM PUBLIC;
CREATE TRIGGER kt_count_evaluations
    AFTER INSERT OR UPDATE OR DELETE ON policy_evaluations
    FOR EACH ROW EXECUTE FUNCTION kt_count_evaluations();
-- (as on ai_decision_events: the statement's dirty hours written at its end)
CREATE TRIGGER kt_flush_dirty_hours
    AFTER INSERT OR UPDATE OR DELETE ON policy_evaluations
    FOR EACH STATEMENT EXECUTE FUNCTION kt_governance_internal.kt_flush_dirty_hours();
COMMENT ON FUNCTION kt_count_evaluations() IS 'Row trigger: counts inserted and deleted evaluations per hour of event_timestamp in backend memory and appends the counts to kt_row_counts just before commit (events are counted by kt_mark_dirty_hours); notes those hours dirty for the policy rollup and sums inserted evaluations into the transaction''s kt_policy_deltas.';

-- TRUNCATE of a parent fires no row trigger: its counts go with it. (TRUNCATE of one partition
-- is not seen; kt_verify_row_counts() reports it and kt_rebuild_row_counts() repairs it.)
CREATE FUNCTION kt_governance_internal.kt_forget_row_counts()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
REVOKE ALL ON FUNCTION kt_governance_internal.kt_forget_row_counts() FROM PUBLIC;
COMMENT ON FUNCTION kt_forget_row_counts() IS 'Statement trigger: TRUNCATE of ai_decision_events or policy_evaluations resets its row counts.';
CREATE TRIGGER kt_forget_row_counts AFTER TRUNCATE ON ai_decision_events
    FOR EACH STATEMENT EXECUTE FUNCTION kt_forget_row_counts();
CREATE TRIGGER kt_forget_row_counts AFTER TRUNCATE ON policy_evaluations
    FOR EACH STATEMENT EXECUTE FUNCTION kt_forget_row_counts();

-- Rows of both tables in [range_start, range_end), from the counts.
CREATE FUNCTION kt_counted_rows(range_start timestamptz, range_end timestamptz,
                                OUT events bigint, OUT evaluations bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT coalesce(sum(c.events), 0)::bigint + p.events, coalesce(sum(c.evaluations), 0)::bigint + p.evaluations
    FROM kt_pending_counts(range_start, range_end) p
    LEFT JOIN kt_row_counts c ON c.hour >= range_start AND c.hour < range_end
    GROUP BY p.events, p.evaluations
$fn$;
COMMENT ON FUNCTION kt_counted_rows(timestamptz, timestamptz) IS 'Events and evaluations whose (event) time falls in [range_start, range_end), from kt_row_counts plus the current transaction''s counts not appended yet (exact for whole UTC hours, read without touching the tables).';

-- Called when a partition pair is dropped: the counts of its hours go. An hour it shares with a
-- neighbour (bounds inside an hour, only for partitions attached by hand) is counted again from
-- the rows that stay; one statement, so a writer committing meanwhile is in exactly one of the
-- deleted counts and the recount.
CREATE FUNCTION kt_governance_internal.kt_forget_counted_range(range_start timestamptz, range_end timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
           (SELECT count(*) FROM @extschema@.ai_decision_events e WHERE e."timestamp" >= s.h AND e."timestamp" < s.h + interval '1 hour'),
           (SELECT count(*) FROM @extschema@.policy_evaluations p WHERE p.event_timestamp >= s.h AND p.event_timestamp < s.h + interval '1 hour')
    FROM shared s;
END
$fn$;
COMMENT ON FUNCTION kt_pending_counts(timestamptz, timestamptz) IS 'Internal: events and evaluations in [range_start, range_end) that the current transaction changed and has not appended to kt_row_counts yet (it does so at commit).';
COMMENT ON FUNCTION kt_forget_pending_counts(timestamptz, timestamptz) IS 'Internal: cancels the counts this transaction has not appended yet for rows in [range_start, range_end) (a partition retention dropped in the same transaction).';
COMMENT ON FUNCTION kt_forget_counted_range(timestamptz, timestamptz) IS 'Internal: removes the row counts of a dropped partition''s range; hours it shared with a neighbour are counted again from the rows that stay.';

-- Folds each hour's rows into one. Rows appended by transactions that commit meanwhile are
-- not visible to the DELETE and stay as they are.
CREATE FUNCTION kt_governance_internal.kt_compact_row_counts()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
CREATE FUNCTION kt_governance_internal.kt_rows_per_hour(OUT hour timestamptz, OUT events bigint, OUT evaluations bigint)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT coalesce(ev.hour, pe.hour), coalesce(ev.n, 0), coalesce(pe.n, 0)
    FROM (SELECT date_trunc('hour', e."timestamp", 'UTC') AS hour, count(*) AS n FROM @extschema@.ai_decision_events e GROUP BY 1) ev
    FULL JOIN (SELECT date_trunc('hour', p.event_timestamp, 'UTC') AS hour, count(*) AS n FROM @extschema@.policy_evaluations p GROUP BY 1) pe
        ON pe.hour = ev.hour
$fn$;
COMMENT ON FUNCTION kt_rows_per_hour() IS 'Internal: events and evaluations per UTC hour counted from the tables (reads every row); what kt_row_counts sums to when exact.';

CREATE FUNCTION kt_verify_row_counts()
RETURNS TABLE (hour timestamptz, counted_events bigint, actual_events bigint,
               counted_evaluations bigint, actual_evaluations bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    written bigint;
BEGIN
    -- writers wait until the new counts commit; their own counts then add to them
    LOCK TABLE @extschema@.ai_decision_events, @extschema@.policy_evaluations IN SHARE MODE;
    DELETE FROM kt_row_counts;
    INSERT INTO kt_row_counts (hour, events, evaluations) SELECT * FROM kt_rows_per_hour();
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION kt_rebuild_row_counts() IS 'Recounts kt_row_counts from the tables (reads every row, blocks writers meanwhile); returns the hours written. For repairing drift reported by kt_verify_row_counts().';

REVOKE ALL ON FUNCTION kt_rebuild_row_counts(), kt_compact_row_counts(), kt_rows_per_hour(), kt_forget_counted_range(timestamptz, timestamptz),
                       kt_forget_pending_counts(timestamptz, timestamptz), kt_pending_counts(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_rebuild_row_counts() TO kt_governance_admin;
-- reading counts is a reader's: the two public readers and the internal helpers they call
REVOKE ALL ON FUNCTION kt_counted_rows(timestamptz, timestamptz), kt_verify_row_counts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_counted_rows(timestamptz, timestamptz), kt_verify_row_counts(),
                          kt_pending_counts(timestamptz, timestamptz), kt_rows_per_hour() TO kt_governance_reader;
GRANT SELECT ON kt_row_counts TO kt_governance_reader;
-- writers' transactions append their counts at commit as the extension owner (src/owner.rs): a
-- forged count would make the removal log overstate what retention removed
