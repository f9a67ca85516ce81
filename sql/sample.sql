-- Synthetic events for the demo, tests and benchmarks (generator in src/sample.rs).

CREATE FUNCTION kt_sample_events(
    n bigint DEFAULT 1000,
    days integer DEFAULT 30,
    seed bigint DEFAULT 42,
    end_time timestamptz DEFAULT now())
RETURNS SETOF ai_decision_events
LANGUAGE sql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT id, "timestamp", decision, model, provider, gateway_id, user_id, team_id,
           input_tokens, output_tokens, (cost_micros / 1000000.0)::numeric(12, 6),
           latency_ms, request_source, batch_id, created_at
    FROM kt_sample_event_rows(n, days, seed, end_time)
$fn$;
COMMENT ON FUNCTION kt_sample_events(bigint, integer, bigint, timestamptz) IS 'n synthetic events spread evenly (time-ordered) over the days before end_time: ~90% allowed, ~6% blocked, ~3% redacted, ~1% escalated; log-normal tokens and latency; Zipf-like model, team and user popularity. The same n, days, seed and end_time always give the same rows.';

CREATE FUNCTION kt_sample_evaluations(
    n bigint DEFAULT 1000,
    days integer DEFAULT 30,
    seed bigint DEFAULT 42,
    end_time timestamptz DEFAULT now())
RETURNS TABLE (event_id text, event_timestamp timestamptz, policy_name text, result text,
               latency_ms integer, details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT event_id, event_timestamp, policy_name, result, latency_ms, details::jsonb
    FROM kt_sample_evaluation_rows(n, days, seed, end_time)
$fn$;
COMMENT ON FUNCTION kt_sample_evaluations(bigint, integer, bigint, timestamptz) IS 'The 2-3 policy evaluations of each event of kt_sample_events() with the same arguments, consistent with its decision (a blocked event has one ''block'' result, and so on).';

CREATE FUNCTION kt_generate_sample_events(
    n bigint DEFAULT 1000,
    days integer DEFAULT 30,
    seed bigint DEFAULT 42,
    end_time timestamptz DEFAULT now())
RETURNS TABLE (events bigint, evaluations bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
BEGIN
    INSERT INTO @extschema@.ai_decision_events SELECT * FROM @extschema@.kt_sample_events(n::bigint, days::integer, seed::bigint, end_time::timestamptz);
    GET DIAGNOSTICS events = ROW_COUNT;
    INSERT INTO @extschema@.policy_evaluations (event_id, event_timestamp, policy_name, result, latency_ms, details)
    SELECT * FROM @extschema@.kt_sample_evaluations(n::bigint, days::integer, seed::bigint, end_time::timestamptz);
    GET DIAGNOSTICS evaluations = ROW_COUNT;
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_generate_sample_events(bigint, integer, bigint, timestamptz) IS 'Inserts kt_sample_events() and kt_sample_evaluations() with the same arguments; returns how many rows went into each table. Runs with the caller''s rights (needs INSERT).';

REVOKE ALL ON FUNCTION kt_generate_sample_events(bigint, integer, bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_generate_sample_events(bigint, integer, bigint, timestamptz) TO kt_governance_writer;

COMMENT ON FUNCTION kt_sample_event_rows(bigint, integer, bigint, timestamptz) IS 'Internal generator behind kt_sample_events(): the same rows with cost in micro-dollars (cost_micros).';
COMMENT ON FUNCTION kt_sample_evaluation_rows(bigint, integer, bigint, timestamptz) IS 'Internal generator behind kt_sample_evaluations(): details as JSON text.';
