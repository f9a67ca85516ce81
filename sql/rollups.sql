-- Hourly rollups kept exact incrementally.
--
-- Flow: every row change in ai_decision_events marks its UTC hour dirty (kt_mark_dirty_hours,
-- a Rust AFTER ROW trigger that gathers hours in memory and writes them once per transaction,
-- so multi-row COPY stays multi-row); kt_refresh_metrics() recomputes exactly the dirty hours
-- from raw rows; readers combine refreshed hours from the rollups with the dirty hours and the
-- partial edge hours computed live (kt_live_ranges), so answers are exact without waiting.
--
-- Three narrow rollups rather than one keyed by every dimension (which would be nearly as
-- large as the raw data):
--   kt_rollup_metrics_hourly    (hour, gateway_id, model): governance_metrics_hourly, anomalies
--   kt_rollup_decisions_hourly  (hour, decision):          kt_governance_summary
--   kt_rollup_spend_hourly      (hour, team_id, model, decision): kt_spend_by_team_model

-- No unique key on purpose: concurrent writers of one hour each append a mark instead of
-- waiting on each other's uncommitted one. Readers use DISTINCT.
CREATE TABLE kt_dirty_hours (
    bucket    timestamptz NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kt_dirty_hours_bucket_idx ON kt_dirty_hours (bucket);
COMMENT ON TABLE kt_dirty_hours IS 'UTC hours whose rollup rows are stale: rows of that hour were inserted, updated or deleted since the last kt_refresh_metrics() (one mark per writing transaction and hour). Readers compute these hours live.';
COMMENT ON COLUMN kt_dirty_hours.bucket IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_dirty_hours.marked_at IS 'When the hour was first marked (transaction start of the writer).';

CREATE TABLE kt_rollup_metrics_hourly (
    bucket              timestamptz NOT NULL,
    gateway_id          text        NOT NULL,
    model               text        NOT NULL,
    total_requests      bigint      NOT NULL,
    allowed             bigint      NOT NULL,
    blocked             bigint      NOT NULL,
    escalated           bigint      NOT NULL,
    redacted            bigint      NOT NULL,
    total_cost          numeric,
    total_input_tokens  bigint      NOT NULL,
    total_output_tokens bigint      NOT NULL,
    latency_sum         bigint,
    latency_count       bigint      NOT NULL,
    p50_latency         double precision,
    p99_latency         double precision,
    latency_sketch      bytea,
    PRIMARY KEY (bucket, gateway_id, model)
);
COMMENT ON TABLE kt_rollup_metrics_hourly IS 'Hourly rollup per (UTC hour, gateway_id, model): counts per decision, cost, tokens, latency sum/count, exact p50/p99 of the hour and a mergeable latency sketch (kt_sketch_*). Behind governance_metrics_hourly and kt_anomalies().';
COMMENT ON COLUMN kt_rollup_metrics_hourly.bucket IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.gateway_id IS 'Gateway.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.model IS 'Model.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.total_requests IS 'Events.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.allowed IS 'Allowed events.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.blocked IS 'Blocked events.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.escalated IS 'Escalated events.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.redacted IS 'Redacted events.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.total_cost IS 'SUM(cost_usd); NULL when every cost was NULL.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN kt_rollup_metrics_hourly.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN kt_rollup_metrics_hourly.latency_sum IS 'SUM(latency_ms).';
COMMENT ON COLUMN kt_rollup_metrics_hourly.latency_count IS 'COUNT(latency_ms): non-null latencies.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.p50_latency IS 'PERCENTILE_CONT(0.5) of latency_ms in the hour, exact.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.p99_latency IS 'PERCENTILE_CONT(0.99) of latency_ms in the hour, exact.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.latency_sketch IS 'Mergeable latency sketch: kt_sketch_quantile(kt_sketch_merge_agg(latency_sketch), 0.99) gives p99 over many hours within 1%.';

CREATE TABLE kt_rollup_decisions_hourly (
    bucket        timestamptz NOT NULL,
    decision      text        NOT NULL,
    event_count   bigint      NOT NULL,
    total_cost    numeric,
    total_tokens  bigint      NOT NULL,
    latency_sum   bigint,
    latency_count bigint      NOT NULL,
    PRIMARY KEY (bucket, decision)
);
COMMENT ON TABLE kt_rollup_decisions_hourly IS 'Hourly rollup per (UTC hour, decision), behind kt_governance_summary().';
COMMENT ON COLUMN kt_rollup_decisions_hourly.bucket IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_rollup_decisions_hourly.decision IS 'Decision.';
COMMENT ON COLUMN kt_rollup_decisions_hourly.event_count IS 'Events.';
COMMENT ON COLUMN kt_rollup_decisions_hourly.total_cost IS 'SUM(cost_usd).';
COMMENT ON COLUMN kt_rollup_decisions_hourly.total_tokens IS 'SUM(input_tokens + output_tokens).';
COMMENT ON COLUMN kt_rollup_decisions_hourly.latency_sum IS 'SUM(latency_ms).';
COMMENT ON COLUMN kt_rollup_decisions_hourly.latency_count IS 'COUNT(latency_ms).';

CREATE TABLE kt_rollup_spend_hourly (
    bucket              timestamptz NOT NULL,
    team_id             text,
    model               text        NOT NULL,
    decision            text        NOT NULL,
    request_count       bigint      NOT NULL,
    total_input_tokens  bigint      NOT NULL,
    total_output_tokens bigint      NOT NULL,
    total_cost          numeric,
    CONSTRAINT kt_rollup_spend_hourly_key UNIQUE NULLS NOT DISTINCT (bucket, team_id, model, decision)
);
COMMENT ON TABLE kt_rollup_spend_hourly IS 'Hourly rollup per (UTC hour, team_id, model, decision), behind kt_spend_by_team_model().';
COMMENT ON COLUMN kt_rollup_spend_hourly.bucket IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_rollup_spend_hourly.team_id IS 'Team (NULL kept as NULL).';
COMMENT ON COLUMN kt_rollup_spend_hourly.model IS 'Model.';
COMMENT ON COLUMN kt_rollup_spend_hourly.decision IS 'Decision.';
COMMENT ON COLUMN kt_rollup_spend_hourly.request_count IS 'Events.';
COMMENT ON COLUMN kt_rollup_spend_hourly.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN kt_rollup_spend_hourly.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN kt_rollup_spend_hourly.total_cost IS 'SUM(cost_usd).';

-- No row until retention first freezes something: a row made by CREATE EXTENSION would collide
-- with the dumped one on restore. kt_frozen_before() reads it.
CREATE TABLE kt_rollup_state (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    frozen_before timestamptz NOT NULL DEFAULT '-infinity'
);
COMMENT ON TABLE kt_rollup_state IS 'Rollup bookkeeping (at most one row; none means nothing is frozen): hours before frozen_before lost raw rows to retention, so their rollup rows are final and never recomputed.';
COMMENT ON COLUMN kt_rollup_state.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN kt_rollup_state.frozen_before IS 'Start of the first hour whose raw rows are complete.';

CREATE FUNCTION kt_frozen_before()
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    SELECT coalesce((SELECT frozen_before FROM kt_rollup_state), '-infinity')
$fn$;
COMMENT ON FUNCTION kt_frozen_before() IS 'Start of the first hour whose raw rows are complete (-infinity until retention has removed anything): older hours come from rollups only and are never recomputed.';

-- rollups and dirty marks are data: pg_dump must carry them
SELECT pg_catalog.pg_extension_config_dump('kt_dirty_hours', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_metrics_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_decisions_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_spend_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_state', '');

-- Row triggers on the parent are cloned onto every partition, including partitions attached
-- later and DML aimed straight at a partition.
CREATE TRIGGER kt_mark_dirty_hours
    AFTER INSERT OR UPDATE OR DELETE ON ai_decision_events
    FOR EACH ROW EXECUTE FUNCTION kt_mark_dirty_hours('@extschema@');
-- statement triggers are not cloned: this one fires for DML through the parent (COPY and
-- INSERT included) and writes the statement's hours right away
CREATE TRIGGER kt_flush_dirty_hours
    AFTER INSERT OR UPDATE OR DELETE ON ai_decision_events
    FOR EACH STATEMENT EXECUTE FUNCTION kt_flush_dirty_hours();

CREATE AGGREGATE kt_sketch_merge_agg(bytea) (SFUNC = kt_sketch_merge, STYPE = bytea);
COMMENT ON AGGREGATE kt_sketch_merge_agg(bytea) IS 'Adds latency sketches (e.g. of many hours) into one; read it with kt_sketch_quantile().';
COMMENT ON FUNCTION kt_sketch_merge(bytea, bytea) IS 'Adds two latency sketches (transition function of kt_sketch_merge_agg).';
COMMENT ON FUNCTION kt_sketch_quantile(bytea, double precision) IS 'Quantile q in [0, 1] of the latencies summarized by a sketch, within 1% relative error; NULL for an empty sketch.';
COMMENT ON FUNCTION kt_sketch_count(bytea) IS 'Number of latencies a sketch summarizes.';
COMMENT ON FUNCTION kt_sketch_bucket(double precision) IS 'Logarithmic bucket index of a latency (1% wide); for building sketches with GROUP BY.';
COMMENT ON FUNCTION kt_sketch_build(integer[], bigint[]) IS 'Sketch from bucket indexes and their counts.';
COMMENT ON FUNCTION kt_latency_sketch(double precision[]) IS 'Sketch of an array of latencies (NULLs ignored), e.g. kt_latency_sketch(array_agg(latency_ms::float8)).';
COMMENT ON FUNCTION kt_mark_dirty_hours() IS 'Row trigger: notes the UTC hour of every inserted, updated or deleted event in backend memory (written by kt_flush_dirty_hours at statement end, or just before commit).';
COMMENT ON FUNCTION kt_flush_dirty_hours() IS 'Statement trigger: writes the hours noted by kt_mark_dirty_hours during the statement to kt_dirty_hours.';

-- The time ranges a report must read from raw rows for the window [window_start, window_end):
-- the partial hours at the edges and every dirty hour in between. Everything else comes from
-- the rollups. With use_rollups = false the whole window is one raw range.
CREATE FUNCTION kt_live_ranges(window_start timestamptz, window_end timestamptz, use_rollups boolean DEFAULT true)
RETURNS TABLE (range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE
-- a handful of ranges: the planner must pick index range scans per range, not a full scan
ROWS 4
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    WITH hours AS (
        SELECT CASE WHEN date_trunc('hour', window_start, 'UTC') = window_start THEN window_start
                    ELSE date_trunc('hour', window_start, 'UTC') + interval '1 hour' END AS first_whole,
               CASE WHEN isfinite(window_end) THEN date_trunc('hour', window_end, 'UTC')
                    ELSE window_end END AS whole_end
    )
    SELECT window_start, window_end FROM hours
    WHERE NOT use_rollups OR first_whole >= whole_end
    UNION ALL
    SELECT window_start, first_whole FROM hours
    WHERE use_rollups AND first_whole < whole_end AND window_start < first_whole
    UNION ALL
    SELECT whole_end, window_end FROM hours
    WHERE use_rollups AND first_whole < whole_end AND whole_end < window_end
    UNION ALL
    SELECT DISTINCT d.bucket, d.bucket + interval '1 hour' FROM hours, kt_dirty_hours d
    WHERE use_rollups AND first_whole < whole_end AND d.bucket >= first_whole AND d.bucket < whole_end
      AND d.bucket >= kt_frozen_before()
$fn$;
COMMENT ON FUNCTION kt_live_ranges(timestamptz, timestamptz, boolean) IS 'Internal: the ranges of [window_start, window_end) that reports read from raw rows (partial edge hours and dirty hours); whole refreshed hours come from the rollups.';

-- The whole refreshed hours of a window, whose rollup rows are exact.
CREATE FUNCTION kt_rollup_hours(window_start timestamptz, window_end timestamptz,
                                OUT first_hour timestamptz, OUT end_hour timestamptz)
LANGUAGE sql IMMUTABLE
AS $fn$
    SELECT CASE WHEN date_trunc('hour', window_start, 'UTC') = window_start THEN window_start
                ELSE date_trunc('hour', window_start, 'UTC') + interval '1 hour' END,
           CASE WHEN isfinite(window_end) THEN date_trunc('hour', window_end, 'UTC') ELSE window_end END
$fn$;
COMMENT ON FUNCTION kt_rollup_hours(timestamptz, timestamptz) IS 'Internal: [first_hour, end_hour) is the span of whole UTC hours inside a window.';

-- True when zone's offset from UTC is a whole number of hours at both ends of the window, so
-- UTC hour buckets can be grouped into that zone's days and hours.
CREATE FUNCTION kt_zone_has_whole_hours(zone text, window_start timestamptz, window_end timestamptz)
RETURNS boolean
LANGUAGE sql STABLE
AS $fn$
    SELECT bool_and(extract(minute FROM (t AT TIME ZONE zone) - (t AT TIME ZONE 'UTC')) = 0
                    AND extract(second FROM (t AT TIME ZONE zone) - (t AT TIME ZONE 'UTC')) = 0)
    FROM unnest(ARRAY[window_start, CASE WHEN isfinite(window_end) THEN window_end ELSE now() END]) t
$fn$;
COMMENT ON FUNCTION kt_zone_has_whole_hours(text, timestamptz, timestamptz) IS 'Internal: whether a time zone is a whole number of hours from UTC at both ends of a window (otherwise reports fall back to raw rows).';

CREATE FUNCTION kt_refresh_metrics()
RETURNS TABLE (hours_refreshed bigint, metric_rows bigint, oldest_hour timestamptz, newest_hour timestamptz)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    hours timestamptz[];
BEGIN
    -- one refresh at a time; a second caller waits, then finds little or nothing left to do
    PERFORM pg_advisory_xact_lock(hashtext('kt_governance.refresh_metrics'));
    -- hours before frozen_before lost raw rows to retention: their marks are dropped, never
    -- recomputed from the rows that remain
    WITH taken AS (DELETE FROM kt_dirty_hours RETURNING bucket)
    SELECT array_agg(DISTINCT bucket ORDER BY bucket) INTO hours FROM taken
    WHERE bucket >= kt_frozen_before();
    hours_refreshed := coalesce(cardinality(hours), 0);
    oldest_hour := hours[1];
    newest_hour := hours[hours_refreshed];
    metric_rows := 0;
    IF hours_refreshed = 0 THEN
        RETURN NEXT;
        RETURN;
    END IF;

    DELETE FROM kt_rollup_metrics_hourly WHERE bucket = ANY (hours);
    DELETE FROM kt_rollup_decisions_hourly WHERE bucket = ANY (hours);
    DELETE FROM kt_rollup_spend_hourly WHERE bucket = ANY (hours);

    CREATE TEMP TABLE kt_refresh_rows ON COMMIT DROP AS
    SELECT h AS bucket, e.*
    FROM unnest(hours) h
    JOIN ai_decision_events e ON e."timestamp" >= h AND e."timestamp" < h + interval '1 hour';

    INSERT INTO kt_rollup_metrics_hourly
    SELECT bucket, gateway_id, model, count(*),
           count(*) FILTER (WHERE decision = 'allowed'), count(*) FILTER (WHERE decision = 'blocked'),
           count(*) FILTER (WHERE decision = 'escalated'), count(*) FILTER (WHERE decision = 'redacted'),
           sum(cost_usd), sum(input_tokens), sum(output_tokens), sum(latency_ms), count(latency_ms),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
           percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms),
           kt_latency_sketch(array_agg(latency_ms::float8) FILTER (WHERE latency_ms IS NOT NULL))
    FROM pg_temp.kt_refresh_rows GROUP BY 1, 2, 3;
    GET DIAGNOSTICS metric_rows = ROW_COUNT;

    INSERT INTO kt_rollup_decisions_hourly
    SELECT bucket, decision, count(*), sum(cost_usd), sum(input_tokens + output_tokens),
           sum(latency_ms), count(latency_ms)
    FROM pg_temp.kt_refresh_rows GROUP BY 1, 2;

    INSERT INTO kt_rollup_spend_hourly
    SELECT bucket, team_id, model, decision, count(*), sum(input_tokens), sum(output_tokens), sum(cost_usd)
    FROM pg_temp.kt_refresh_rows GROUP BY 1, 2, 3, 4;

    DROP TABLE pg_temp.kt_refresh_rows;
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_refresh_metrics() IS 'Recomputes exactly the dirty hours (kt_dirty_hours) of every rollup from raw rows, in the caller''s transaction; a concurrent refresh waits for it. Returns how many hours were refreshed and their span. The worker runs it every kt_governance.refresh_interval.';

CREATE VIEW governance_metrics_hourly AS
SELECT r.bucket AS hour, r.gateway_id, r.model, r.total_requests, r.allowed, r.blocked, r.escalated,
       r.total_cost, r.p50_latency, r.p99_latency, r.total_input_tokens, r.total_output_tokens, r.redacted
FROM kt_rollup_metrics_hourly r
WHERE NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = r.bucket
                  AND d.bucket >= kt_frozen_before())
UNION ALL
-- hours changed since the last refresh, computed live, so the view is always exact
SELECT d.bucket, e.gateway_id, e.model, count(*),
       count(*) FILTER (WHERE e.decision = 'allowed'), count(*) FILTER (WHERE e.decision = 'blocked'),
       count(*) FILTER (WHERE e.decision = 'escalated'), sum(e.cost_usd),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY e.latency_ms),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY e.latency_ms),
       sum(e.input_tokens), sum(e.output_tokens), count(*) FILTER (WHERE e.decision = 'redacted')
FROM (SELECT DISTINCT bucket FROM kt_dirty_hours
      WHERE bucket >= kt_frozen_before()) d
CROSS JOIN LATERAL (SELECT * FROM ai_decision_events x
                    WHERE x."timestamp" >= d.bucket AND x."timestamp" < d.bucket + interval '1 hour') e
GROUP BY d.bucket, e.gateway_id, e.model;
COMMENT ON VIEW governance_metrics_hourly IS 'The document''s hourly metrics (plus redacted), always exact: refreshed hours from kt_rollup_metrics_hourly, hours changed since the last kt_refresh_metrics() computed live. Hours are UTC hours (as the document''s view in a UTC session). Filter on hour to use the rollup''s key.';
COMMENT ON COLUMN governance_metrics_hourly.hour IS 'Start of the UTC hour.';
COMMENT ON COLUMN governance_metrics_hourly.gateway_id IS 'Gateway.';
COMMENT ON COLUMN governance_metrics_hourly.model IS 'Model.';
COMMENT ON COLUMN governance_metrics_hourly.total_requests IS 'Events in the hour.';
COMMENT ON COLUMN governance_metrics_hourly.allowed IS 'Allowed events.';
COMMENT ON COLUMN governance_metrics_hourly.blocked IS 'Blocked events.';
COMMENT ON COLUMN governance_metrics_hourly.escalated IS 'Escalated events.';
COMMENT ON COLUMN governance_metrics_hourly.total_cost IS 'SUM(cost_usd).';
COMMENT ON COLUMN governance_metrics_hourly.p50_latency IS 'Median latency_ms (PERCENTILE_CONT 0.5).';
COMMENT ON COLUMN governance_metrics_hourly.p99_latency IS '99th percentile latency_ms (PERCENTILE_CONT 0.99).';
COMMENT ON COLUMN governance_metrics_hourly.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN governance_metrics_hourly.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN governance_metrics_hourly.redacted IS 'Redacted events (not in the document''s view).';

REVOKE ALL ON FUNCTION kt_refresh_metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_refresh_metrics() TO kt_governance_admin;
GRANT SELECT ON governance_metrics_hourly, kt_rollup_metrics_hourly, kt_rollup_state, kt_rollup_decisions_hourly,
                kt_rollup_spend_hourly, kt_dirty_hours TO kt_governance_reader;
-- writers' transactions record their dirty hours at commit
GRANT INSERT ON kt_dirty_hours TO kt_governance_writer;
