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
CREATE FUNCTION kt_governance_internal.kt_detach_for_reclaim(events_partition regclass, evaluations_partition regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    events_name name := (SELECT c.relname FROM pg_class c WHERE c.oid = events_partition);
    evaluations_name name := (SELECT c.relname FROM pg_class c WHERE c.oid = evaluations_partition);
BEGIN
    IF to_regclass(format('kt_governance_reclaim.%I', events_name)) IS NOT NULL
       OR to_regclass(format('kt_governance_reclaim.%I', evaluations_name)) IS NOT NULL THEN
        -- a pair of the same name still waits there (removed, re-created by late rows and
        -- removed again before the first was reclaimed): its names are taken, drop this one now
        EXECUTE format('DROP TABLE %s, %s', evaluations_partition, events_partition);
        RETURN;
    END IF;
    EXECUTE format('ALTER TABLE @extschema@.policy_evaluations DETACH PARTITION %s', evaluations_partition);
    EXECUTE format('ALTER TABLE @extschema@.ai_decision_events DETACH PARTITION %s', events_partition);
    EXECUTE format('ALTER TABLE %s SET SCHEMA kt_governance_reclaim', evaluations_partition);
    EXECUTE format('ALTER TABLE %s SET SCHEMA kt_governance_reclaim', events_partition);
    PERFORM kt_reclaim_after_commit();
END
$fn$;
COMMENT ON FUNCTION kt_detach_for_reclaim(regclass, regclass) IS 'Internal: detaches a partition pair removed by retention and moves it into kt_governance_reclaim, where a background worker started at commit drops it.';
COMMENT ON FUNCTION kt_reclaim_after_commit() IS 'Internal: when the current transaction commits, a background worker (a dynamic one, no shared_preload_libraries needed) runs kt_reclaim_space() in this database.';

CREATE FUNCTION kt_reclaim_space(OUT tables_dropped integer, OUT bytes_returned bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
    UPDATE @extschema@.kt_removal_log SET space_returned_at = clock_timestamp()
    WHERE space_returned_at IS NULL AND why = 'retention' AND cardinality(partitions_dropped) > 0
      AND NOT EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = 'kt_governance_reclaim'::regnamespace);
END
$fn$;
COMMENT ON FUNCTION kt_reclaim_space() IS 'Drops the partitions retention moved into kt_governance_reclaim, returning their disk space, and stamps kt_removal_log.space_returned_at. Runs by itself right after each retention commit (and in the maintenance job); call it by hand only to return the space at once when no background worker slot was free.';

REVOKE ALL ON FUNCTION kt_detach_for_reclaim(regclass, regclass), kt_reclaim_after_commit(), kt_reclaim_space() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_reclaim_space() TO kt_governance_admin;
