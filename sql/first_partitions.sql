-- The first partitions, made by CREATE EXTENSION itself: the current period, kt_governance.premake
-- ahead and kt_governance.premake_past behind, so the first load (this period's events, and a
-- backfill of recent history) lands in dated partitions with no call to kt_run_maintenance()
-- and no worker (the worker runs in one database only), and nothing has to be moved out of the
-- default partition later. Moving is cheaper than it was, but a COPY straight into dated
-- partitions costs nothing extra at all (measured: docs/benchmarks.md, "first load").
--
-- They must not be extension members: pg_dump writes members' definitions nowhere (CREATE
-- EXTENSION is expected to make them), so their rows would be lost or restored into a table the
-- target's install did not make. So they are released from the extension right away, like every
-- partition maintenance makes later. Then a restore meets a second problem: its CREATE EXTENSION
-- makes first partitions for the day of the restore, and the dump's own partitions (made the
-- same way on the day of the dump) arrive next, with the same names or overlapping ranges. The
-- install therefore lists what it made in kt_provisional_partitions; the first partition DDL
-- written out as pg_dump writes it (a CREATE TABLE in kt_governance_partitions with its columns
-- listed, src/guard.rs) drops those that are still empty, and the dump's partitions take their
-- place. Partitions that received rows are kept.

CREATE TABLE kt_governance_internal.kt_provisional_partitions (
    events_partition      text PRIMARY KEY,
    evaluations_partition text NOT NULL
);
COMMENT ON TABLE kt_governance_internal.kt_provisional_partitions IS 'Partitions made by CREATE EXTENSION in this database: while still empty they give way to the partitions of a restored dump (kt_yield_provisional_partitions). Not dumped.';
COMMENT ON COLUMN kt_governance_internal.kt_provisional_partitions.events_partition IS 'Events partition (in kt_governance_partitions).';
COMMENT ON COLUMN kt_governance_internal.kt_provisional_partitions.evaluations_partition IS 'Its evaluations partition.';

-- Drops the first partitions that are still empty, once partition DDL of a restore arrives.
CREATE FUNCTION kt_governance_internal.kt_yield_provisional_partitions()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    p record;
    empty boolean;
    dropped integer := 0;
BEGIN
    IF NOT EXISTS (SELECT FROM kt_provisional_partitions) THEN
        RETURN 0;
    END IF;
    PERFORM kt_lock_for_partition_ddl();
    FOR p IN SELECT * FROM kt_provisional_partitions ORDER BY events_partition LOOP
        CONTINUE WHEN to_regclass(format('%I.%I', 'kt_governance_partitions', p.events_partition)) IS NULL
                   OR to_regclass(format('%I.%I', 'kt_governance_partitions', p.evaluations_partition)) IS NULL;
        -- a superuser may write straight into a partition: lock the pair before looking
        EXECUTE format('LOCK TABLE %1$I.%2$I, %1$I.%3$I IN ACCESS EXCLUSIVE MODE',
                       'kt_governance_partitions', p.events_partition, p.evaluations_partition);
        EXECUTE format('SELECT NOT EXISTS (SELECT FROM %1$I.%2$I) AND NOT EXISTS (SELECT FROM %1$I.%3$I)',
                       'kt_governance_partitions', p.events_partition, p.evaluations_partition) INTO empty;
        IF empty THEN
            EXECUTE format('DROP TABLE %1$I.%2$I, %1$I.%3$I', 'kt_governance_partitions', p.evaluations_partition, p.events_partition);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    -- one restore's worth: partitions kept now are in use and stay
    DELETE FROM kt_provisional_partitions;
    RETURN dropped;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_yield_provisional_partitions() IS 'Internal: drops the partitions CREATE EXTENSION made that are still empty, so the partitions of a dump being restored take their place (called by the kt_guard_drop event trigger on the first CREATE TABLE in kt_governance_partitions written as pg_dump writes it); forgets the rest. Returns the number of partition pairs dropped.';
REVOKE ALL ON FUNCTION kt_governance_internal.kt_yield_provisional_partitions() FROM PUBLIC;

CREATE FUNCTION kt_governance_internal.kt_make_first_partitions()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
-- kt_partitions reads bounds back from their text form
SET DateStyle = 'ISO, MDY'
SET TimeZone = 'UTC'
AS $fn$
DECLARE
    p record;
BEGIN
    PERFORM @extschema@.kt_run_maintenance(NULL::integer, true);
    IF kt_setting('premake_past')::int > 0 THEN
        PERFORM @extschema@.kt_create_partitions(
        (now() AT TIME ZONE 'UTC' - make_interval(
            months => CASE kt_setting('partition_interval') WHEN 'daily' THEN 0 ELSE kt_setting('premake_past')::int END,
            days => CASE kt_setting('partition_interval') WHEN 'daily' THEN kt_setting('premake_past')::int ELSE 0 END))
            AT TIME ZONE 'UTC',
        now()::timestamptz, NULL::text);
    END IF;
    FOR p IN SELECT e.partition_name AS ev, v.partition_name AS pe
             FROM @extschema@.kt_partitions e
             JOIN @extschema@.kt_partitions v ON v.parent_table = 'policy_evaluations' AND v.range_start = e.range_start
             WHERE e.parent_table = 'ai_decision_events' AND NOT e.is_default LOOP
        EXECUTE format('ALTER EXTENSION kt_governance DROP TABLE %I.%I', 'kt_governance_partitions', p.ev);
        EXECUTE format('ALTER EXTENSION kt_governance DROP TABLE %I.%I', 'kt_governance_partitions', p.pe);
        INSERT INTO kt_provisional_partitions VALUES (p.ev, p.pe);
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_make_first_partitions() IS 'Internal, run once by CREATE EXTENSION: makes the current, kt_governance.premake future and kt_governance.premake_past past partitions, releases them from the extension (so pg_dump writes them like any partition) and lists them as provisional.';
REVOKE ALL ON FUNCTION kt_governance_internal.kt_make_first_partitions() FROM PUBLIC;

SELECT kt_governance_internal.kt_make_first_partitions();
