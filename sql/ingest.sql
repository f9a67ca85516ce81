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

-- Concurrent kt_ingest calls never wait on each other but for the same id: each claims its
-- batch's ids here before looking for them among the stored events. The primary key makes a
-- second claim of an id wait until the first claimer's transaction ends, and then find it
-- taken; claims of other ids pass. (0.8.0 and 1.0.0 serialized every call on one lock.)
CREATE UNLOGGED TABLE kt_governance_internal.kt_ingest_claims (
    id         text COLLATE "C" PRIMARY KEY,
    claimed_by xid NOT NULL DEFAULT (pg_catalog.pg_current_xact_id())::xid
);
COMMENT ON TABLE kt_governance_internal.kt_ingest_claims IS 'Internal: ids kt_ingest() has claimed, so that two concurrent calls cannot both store one new id (the second waits for the first''s transaction, then counts the id as a duplicate). Claims are needed only until every snapshot sees their events; maintenance removes older ones (kt_prune_ingest_claims()). Unlogged: after a crash no claimer is left. Only the extension owner can read or write it.';
COMMENT ON COLUMN kt_governance_internal.kt_ingest_claims.id IS 'The claimed event id.';
COMMENT ON COLUMN kt_governance_internal.kt_ingest_claims.claimed_by IS 'Transaction that claimed it.';
REVOKE ALL ON kt_governance_internal.kt_ingest_claims FROM PUBLIC;

-- kt_ingest runs with its caller's rights, so it claims through this door, which only writers
-- may open. ids come sorted: two calls with overlapping batches claim in one order, so they
-- wait for each other instead of deadlocking.
CREATE FUNCTION kt_governance_internal.kt_claim_ids(ids text[])
RETURNS SETOF text
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    INSERT INTO kt_governance_internal.kt_ingest_claims (id)
    SELECT c.id FROM unnest(ids) WITH ORDINALITY AS c(id, n) ORDER BY c.n
    ON CONFLICT (id) DO NOTHING
    RETURNING id
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_claim_ids(text[]) IS 'Internal: claims the given event ids for this transaction (in array order) and returns those it got; an id another transaction is claiming waits for it, one already claimed is left out. Executable by kt_governance_writer only.';
REVOKE ALL ON FUNCTION kt_governance_internal.kt_claim_ids(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_governance_internal.kt_claim_ids(text[]) TO kt_governance_writer;

-- A claim can go once its transaction ended before the oldest snapshot any session holds began
-- (and every session sees its events, or, if it rolled back, their absence). Ages, not xid
-- comparisons: they are safe across xid wraparound.
CREATE FUNCTION kt_governance_internal.kt_prune_ingest_claims()
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH horizon AS (
        SELECT coalesce(max(greatest(age(a.backend_xmin), age(a.backend_xid))), 0) AS age
        FROM pg_stat_activity a
    ), pruned AS (
        DELETE FROM kt_governance_internal.kt_ingest_claims c
        WHERE age(c.claimed_by) > (SELECT h.age FROM horizon h)
        RETURNING 1
    )
    SELECT count(*) FROM pruned
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_prune_ingest_claims() IS 'Internal: removes the ingest claims every session''s snapshot has outlived; returns how many. Run by the maintenance job.';
REVOKE ALL ON FUNCTION kt_governance_internal.kt_prune_ingest_claims() FROM PUBLIC;

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
