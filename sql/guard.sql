-- DROP EXTENSION kt_governance would drop every stored event and evaluation, legally held ones
-- included (the dated partitions depend on the extension's tables automatically, so no CASCADE
-- is needed). This event trigger refuses it while events are stored, unless the dropping
-- session sets kt_governance.allow_drop_with_data (src/guard.rs).

CREATE FUNCTION kt_governance_internal.kt_guard_drop()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'kt_guard_drop';
COMMENT ON FUNCTION kt_guard_drop() IS 'Event trigger: refuses DROP EXTENSION kt_governance, and DROP SCHEMA ... CASCADE of its schema, while ai_decision_events holds rows (SQLSTATE 2BP01), unless kt_governance.allow_drop_with_data is on.';
REVOKE ALL ON FUNCTION kt_guard_drop() FROM PUBLIC;

CREATE EVENT TRIGGER kt_guard_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION kt_guard_drop();
COMMENT ON EVENT TRIGGER kt_guard_drop IS 'Refuses dropping kt_governance while it stores events; see kt_governance.allow_drop_with_data.';

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
