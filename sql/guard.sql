-- DROP EXTENSION kt_governance would drop every stored event and evaluation, legally held ones
-- included (the dated partitions depend on the extension's tables automatically, so no CASCADE
-- is needed). This event trigger refuses it while events are stored, unless the dropping
-- session sets kt_governance.allow_drop_with_data (src/guard.rs).

CREATE FUNCTION kt_governance_internal.kt_guard_drop()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'kt_guard_drop';
COMMENT ON FUNCTION kt_guard_drop() IS 'Event trigger: refuses DROP EXTENSION kt_governance, and DROP SCHEMA ... CASCADE of its schema, while it stores events, holds or removal-log rows (SQLSTATE 2BP01), and DROP TABLE or DETACH PARTITION of a partition holding legally held rows, unless a superuser set kt_governance.allow_drop_with_data.';
REVOKE ALL ON FUNCTION kt_guard_drop() FROM PUBLIC;

-- Partitions are the extension owner's, so below superuser nobody drops, truncates or detaches
-- one. A superuser doing it by hand must not remove legally held rows without saying so either:
-- that needs kt_governance.allow_drop_with_data in the session.
CREATE FUNCTION kt_governance_internal.kt_held_rows_in(part regclass)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    events regclass := '@extschema@.ai_decision_events'::regclass;
    evaluations regclass := '@extschema@.policy_evaluations'::regclass;
    parent regclass := (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = part);
    held boolean := false;
BEGIN
    IF NOT EXISTS (SELECT FROM @extschema@.kt_legal_holds h WHERE h.released_at IS NULL) THEN
        RETURN false;
    END IF;
    IF part = events OR parent = events THEN
        EXECUTE format('SELECT EXISTS (SELECT FROM %s e WHERE @extschema@.kt_is_held(e.team_id, e.user_id, e.gateway_id, e."timestamp"))', part)
            INTO held;
    ELSIF part = evaluations OR parent = evaluations THEN
        EXECUTE format('SELECT EXISTS (SELECT FROM %s p JOIN @extschema@.ai_decision_events e
                                       ON e.id = p.event_id AND e."timestamp" = p.event_timestamp
                                       WHERE @extschema@.kt_is_held(e.team_id, e.user_id, e.gateway_id, e."timestamp"))', part)
            INTO held;
    END IF;
    RETURN held;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_held_rows_in(regclass) IS 'Internal: whether a documented table or one of its partitions holds rows (or evaluations of events) under an active legal hold.';
REVOKE ALL ON FUNCTION kt_governance_internal.kt_held_rows_in(regclass) FROM PUBLIC;

CREATE FUNCTION kt_governance_internal.kt_refuse_removing_held(part regclass, what text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
BEGIN
    IF kt_held_rows_in(part) AND NOT (current_setting('kt_governance.allow_drop_with_data', true) = 'on'
                                      AND (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)) THEN
        RAISE EXCEPTION 'cannot % %: it holds rows under an active legal hold', what, part
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Release the holds first (kt_legal_hold_status), or a superuser may SET kt_governance.allow_drop_with_data = on for this session.';
    END IF;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_refuse_removing_held(regclass, text) IS 'Internal: raises 2BP01 when dropping, truncating or detaching the table would remove legally held rows, unless a superuser set kt_governance.allow_drop_with_data.';
REVOKE ALL ON FUNCTION kt_governance_internal.kt_refuse_removing_held(regclass, text) FROM PUBLIC;

CREATE FUNCTION kt_governance_internal.kt_guard_truncate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
BEGIN
    PERFORM kt_refuse_removing_held(TG_RELID::regclass, 'truncate');
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_guard_truncate() IS 'Statement trigger: refuses TRUNCATE of a documented table or partition holding legally held rows (see kt_refuse_removing_held).';
REVOKE ALL ON FUNCTION kt_governance_internal.kt_guard_truncate() FROM PUBLIC;
-- on the parents (TRUNCATE through them), the default partitions here, dated ones when made
CREATE TRIGGER kt_guard_truncate BEFORE TRUNCATE ON ai_decision_events
    FOR EACH STATEMENT EXECUTE FUNCTION kt_governance_internal.kt_guard_truncate();
CREATE TRIGGER kt_guard_truncate BEFORE TRUNCATE ON policy_evaluations
    FOR EACH STATEMENT EXECUTE FUNCTION kt_governance_internal.kt_guard_truncate();
CREATE TRIGGER kt_guard_truncate BEFORE TRUNCATE ON kt_governance_partitions.events_default
    FOR EACH STATEMENT EXECUTE FUNCTION kt_governance_internal.kt_guard_truncate();
CREATE TRIGGER kt_guard_truncate BEFORE TRUNCATE ON kt_governance_partitions.policy_evaluations_default
    FOR EACH STATEMENT EXECUTE FUNCTION kt_governance_internal.kt_guard_truncate();

CREATE EVENT TRIGGER kt_guard_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED', 'DROP TABLE', 'ALTER TABLE', 'CREATE TABLE')
    EXECUTE FUNCTION kt_guard_drop();
COMMENT ON EVENT TRIGGER kt_guard_drop IS 'Refuses dropping kt_governance while it stores events, and dropping or detaching a partition holding legally held rows (see kt_governance.allow_drop_with_data); lets the still-empty partitions CREATE EXTENSION made give way to those of a dump being restored.';

-- Privileged code reaches the user's schema by the name it had at install (@extschema@ is
-- substituted into every function). Renaming the schema, then creating a new one with the old
-- name, would point that code at objects the renaming role planted: the database owner, who
-- owns public, could run code as a superuser that way. So the schema keeps its name; this
-- refuses a rename by anyone, a superuser included (it would break the extension either way).
CREATE FUNCTION kt_governance_internal.kt_guard_schema_name()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_namespace n
                   JOIN pg_catalog.pg_extension e ON e.extnamespace = n.oid
                   WHERE e.extname = 'kt_governance' AND n.oid = pg_catalog.to_regnamespace('@extschema@')) THEN
        RAISE EXCEPTION 'cannot rename schema @extschema@: kt_governance is installed in it'
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'kt_governance''s functions refer to the schema by name; DROP EXTENSION kt_governance first.';
    END IF;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_guard_schema_name() IS 'Event trigger: refuses renaming the schema kt_governance is installed in (SQLSTATE 2BP01).';
REVOKE ALL ON FUNCTION kt_governance_internal.kt_guard_schema_name() FROM PUBLIC;
CREATE EVENT TRIGGER kt_guard_schema_name ON ddl_command_end
    WHEN TAG IN ('ALTER SCHEMA')
    EXECUTE FUNCTION kt_governance_internal.kt_guard_schema_name();
COMMENT ON EVENT TRIGGER kt_guard_schema_name IS 'Refuses renaming the schema kt_governance is installed in.';
