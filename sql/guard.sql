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
