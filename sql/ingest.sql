-- kt_ingest(jsonb): loader for the gateway's event JSON (src/ingest.rs).

CREATE TABLE kt_ingest_errors (
    error_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    record_index integer NOT NULL,
    event_id     text,
    field        text NOT NULL,
    reason       text NOT NULL,
    raw          jsonb NOT NULL,
    ingested_by  text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE kt_ingest_errors IS 'Records kt_ingest(..., mode => ''quarantine'') could not store: the raw JSON, the field at fault and why. Fix and re-ingest them; delete rows once handled.';
COMMENT ON COLUMN kt_ingest_errors.error_id IS 'Row id.';
COMMENT ON COLUMN kt_ingest_errors.received_at IS 'When the batch was ingested (transaction start).';
COMMENT ON COLUMN kt_ingest_errors.record_index IS 'Position of the record in its batch (0-based).';
COMMENT ON COLUMN kt_ingest_errors.event_id IS 'The record''s id, if it had one.';
COMMENT ON COLUMN kt_ingest_errors.field IS 'Field at fault (record when the record itself is not an object).';
COMMENT ON COLUMN kt_ingest_errors.reason IS 'What is wrong with it.';
COMMENT ON COLUMN kt_ingest_errors.raw IS 'The record as received.';
COMMENT ON COLUMN kt_ingest_errors.ingested_by IS 'Session user that called kt_ingest.';
SELECT pg_catalog.pg_extension_config_dump('kt_ingest_errors', '');

CREATE FUNCTION kt_ingest(events jsonb, mode text DEFAULT 'strict', assume_utc boolean DEFAULT false)
RETURNS TABLE (received bigint, inserted bigint, duplicates bigint, quarantined bigint, evaluations_inserted bigint,
               unknown_fields bigint)
LANGUAGE sql
VOLATILE STRICT
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT * FROM kt_governance_internal.kt_ingest_json(events::text, mode, assume_utc)
$fn$;
-- The same for JSON text (a literal resolves to this one): what jsonb's parser refuses for the
-- whole document (a \u0000 escape, a key given twice) is one bad record here.
CREATE FUNCTION kt_ingest(events text, mode text DEFAULT 'strict', assume_utc boolean DEFAULT false)
RETURNS TABLE (received bigint, inserted bigint, duplicates bigint, quarantined bigint, evaluations_inserted bigint,
               unknown_fields bigint)
LANGUAGE sql
VOLATILE STRICT
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT * FROM kt_governance_internal.kt_ingest_json(events, mode, assume_utc)
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_ingest_json(text, text, boolean) IS 'Internal: the body of kt_ingest(jsonb) and kt_ingest(text), given the document as text.';
REVOKE ALL ON FUNCTION kt_governance_internal.kt_ingest_json(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_governance_internal.kt_ingest_json(text, text, boolean) TO kt_governance_writer;
COMMENT ON FUNCTION kt_ingest(jsonb, text, boolean) IS 'Stores gateway decision events given as JSON (one object or an array) with their policy evaluations. Accepts decision or verdict in either vocabulary (allow/allowed, block/blocked, ...; case-insensitive), usage.input_tokens / usage.output_tokens (also prompt_/completion_tokens), policies_evaluated or policy_evaluations ({name, result, latency_ms, other keys kept in details}). Idempotent by id: ids already stored or repeated in the batch are skipped as duplicates. mode ''strict'' (default): a bad record aborts the call naming its index, id, field and problem; ''quarantine'': bad records go to kt_ingest_errors, and no record''s content fails the batch. Event times outside kt_governance.ingest_accept_past / ingest_accept_future, fractional tokens and costs finer than a micro-dollar are bad records. assume_utc: read timestamps without an offset as UTC (otherwise they are refused). Returns received, inserted, duplicates, quarantined, evaluations_inserted and unknown_fields (top-level keys it does not read, counted and dropped).';
COMMENT ON FUNCTION kt_ingest(text, text, boolean) IS 'kt_ingest for JSON text (what a literal resolves to): the same rules, and what the jsonb parser would refuse for the whole document (a \u0000 escape, a key given twice) is one bad record.';

REVOKE ALL ON FUNCTION kt_ingest(jsonb, text, boolean), kt_ingest(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_ingest(jsonb, text, boolean), kt_ingest(text, text, boolean) TO kt_governance_writer;
GRANT SELECT ON kt_ingest_errors TO kt_governance_reader;
-- quarantined records are fixed, re-ingested and then deleted by an admin
GRANT DELETE ON kt_ingest_errors TO kt_governance_admin;
