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
--   kt_rollup_spend_daily       (UTC day, team_id, model, decision): the same summed per day, so
--                               a 30-day spend report reads ~30 rows per group instead of ~720

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

-- Always the sum of kt_rollup_spend_hourly over the day (rebuilt from it by
-- kt_rebuild_spend_days whenever an hour of the day changes), never computed from raw rows.
CREATE TABLE kt_rollup_spend_daily (
    bucket              timestamptz NOT NULL,
    team_id             text,
    model               text        NOT NULL,
    decision            text        NOT NULL,
    request_count       bigint      NOT NULL,
    total_input_tokens  bigint      NOT NULL,
    total_output_tokens bigint      NOT NULL,
    total_cost          numeric,
    CONSTRAINT kt_rollup_spend_daily_key UNIQUE NULLS NOT DISTINCT (bucket, team_id, model, decision)
);
COMMENT ON TABLE kt_rollup_spend_daily IS 'Daily rollup per (UTC day, team_id, model, decision): kt_rollup_spend_hourly summed over each UTC day. kt_spend_by_team_model() reads whole clean days from here and the rest of its window from the hourly rollup.';
COMMENT ON COLUMN kt_rollup_spend_daily.bucket IS 'Start of the UTC day.';
COMMENT ON COLUMN kt_rollup_spend_daily.team_id IS 'Team (NULL kept as NULL).';
COMMENT ON COLUMN kt_rollup_spend_daily.model IS 'Model.';
COMMENT ON COLUMN kt_rollup_spend_daily.decision IS 'Decision.';
COMMENT ON COLUMN kt_rollup_spend_daily.request_count IS 'Events.';
COMMENT ON COLUMN kt_rollup_spend_daily.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN kt_rollup_spend_daily.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN kt_rollup_spend_daily.total_cost IS 'SUM(cost_usd).';

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
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_spend_daily', '');
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
COMMENT ON FUNCTION kt_latency_summary(integer[]) IS 'Exact PERCENTILE_CONT 0.5 and 0.99 (same float8 results as the SQL aggregates) and the latency sketch of an array of latencies (NULLs ignored; all NULL for no latency); the refresh calls it once per (hour, gateway, model).';
COMMENT ON FUNCTION kt_latency_sketch(double precision[]) IS 'Sketch of an array of latencies (NULLs ignored), e.g. kt_latency_sketch(array_agg(latency_ms::float8)).';
COMMENT ON FUNCTION kt_mark_dirty_hours() IS 'Row trigger: notes the UTC hour of every inserted, updated or deleted event in backend memory (written by kt_flush_dirty_hours at statement end, or just before commit), and counts the event in kt_row_counts.';
COMMENT ON FUNCTION kt_flush_dirty_hours() IS 'Statement trigger: writes the hours noted by kt_mark_dirty_hours during the statement to kt_dirty_hours.';

-- The whole grains (UTC hours, or UTC days) inside a window. Defined before kt_live_ranges,
-- which builds on it.
CREATE FUNCTION kt_rollup_hours(window_start timestamptz, window_end timestamptz, grain text DEFAULT 'hour',
                                OUT first_hour timestamptz, OUT end_hour timestamptz)
LANGUAGE sql IMMUTABLE
AS $fn$
    SELECT CASE WHEN date_trunc(grain, window_start, 'UTC') = window_start THEN window_start
                ELSE date_trunc(grain, window_start, 'UTC') + ('1 ' || grain)::interval END,
           CASE WHEN isfinite(window_end) THEN date_trunc(grain, window_end, 'UTC') ELSE window_end END
$fn$;
COMMENT ON FUNCTION kt_rollup_hours(timestamptz, timestamptz, text) IS 'Internal: [first_hour, end_hour) is the span of whole UTC hours (grain ''hour'') or whole UTC days (grain ''day'') inside a window.';

-- The parts of [window_start, window_end) that cannot be read at the given grain: the partial
-- grains at the edges and every grain holding a dirty hour. With grain 'hour' these are the
-- ranges reports compute from raw rows; with grain 'day' (over a span of whole hours) the
-- ranges read from hourly rollups instead of daily ones. With use_rollups = false the whole
-- window is one range.
CREATE FUNCTION kt_live_ranges(window_start timestamptz, window_end timestamptz, use_rollups boolean DEFAULT true,
                               grain text DEFAULT 'hour')
RETURNS TABLE (range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE
-- a handful of ranges: the planner must pick index range scans per range, not a full scan
ROWS 4
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    WITH whole AS (SELECT * FROM kt_rollup_hours(window_start, window_end, grain))
    SELECT window_start, window_end FROM whole
    WHERE NOT use_rollups OR first_hour >= end_hour
    UNION ALL
    SELECT window_start, first_hour FROM whole
    WHERE use_rollups AND first_hour < end_hour AND window_start < first_hour
    UNION ALL
    SELECT end_hour, window_end FROM whole
    WHERE use_rollups AND first_hour < end_hour AND end_hour < window_end
    UNION ALL
    SELECT DISTINCT date_trunc(grain, d.bucket, 'UTC'), date_trunc(grain, d.bucket, 'UTC') + ('1 ' || grain)::interval
    FROM whole, kt_dirty_hours d
    WHERE use_rollups AND first_hour < end_hour AND d.bucket >= first_hour AND d.bucket < end_hour
      AND d.bucket >= kt_frozen_before()
$fn$;
COMMENT ON FUNCTION kt_live_ranges(timestamptz, timestamptz, boolean, text) IS 'Internal: the ranges of [window_start, window_end) not readable at a grain: partial edge grains and grains holding dirty hours. Grain ''hour'': what reports read from raw rows; grain ''day'': what they read from hourly instead of daily rollups.';

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

-- kt_rollup_spend_daily rows of the UTC days holding the given hours, summed again from
-- kt_rollup_spend_hourly.
CREATE FUNCTION kt_rebuild_spend_days(touched timestamptz[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
SET jit = off
AS $fn$
DECLARE
    days timestamptz[];
    written bigint;
BEGIN
    SELECT array_agg(DISTINCT date_trunc('day', t, 'UTC')) INTO days FROM unnest(touched) t;
    DELETE FROM kt_rollup_spend_daily WHERE bucket = ANY (days);
    INSERT INTO kt_rollup_spend_daily
    SELECT d, r.team_id, r.model, r.decision, sum(r.request_count)::bigint, sum(r.total_input_tokens)::bigint,
           sum(r.total_output_tokens)::bigint, sum(r.total_cost)
    FROM unnest(days) d
    JOIN kt_rollup_spend_hourly r ON r.bucket >= d AND r.bucket < d + interval '1 day'
    GROUP BY 1, 2, 3, 4;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION kt_rebuild_spend_days(timestamptz[]) IS 'Internal: recomputes the kt_rollup_spend_daily rows of the UTC days containing the given instants from kt_rollup_spend_hourly; returns the rows written.';
REVOKE ALL ON FUNCTION kt_rebuild_spend_days(timestamptz[]) FROM PUBLIC;

CREATE FUNCTION kt_refresh_metrics(up_to timestamptz DEFAULT 'infinity')
RETURNS TABLE (hours_refreshed bigint, metric_rows bigint, oldest_hour timestamptz, newest_hour timestamptz)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
-- a refresh reads a few hours of rows: compiling its plans with JIT (which the row estimates
-- trigger at 100k+ rows) costs more than running them
SET jit = off
-- the planner overestimates the groups (hundreds per hour, not the tens of thousands it
-- guesses) and would sort every row to aggregate the latency arrays; hashing is 3x faster
SET enable_sort = off
AS $fn$
DECLARE
    hours timestamptz[];
BEGIN
    IF up_to IS NULL THEN
        RAISE EXCEPTION 'up_to must not be NULL (the default, infinity, refreshes every dirty hour)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- one refresh at a time; a second caller waits, then finds little or nothing left to do
    PERFORM pg_advisory_xact_lock(hashtext('kt_governance.refresh_metrics'));
    -- hours before frozen_before lost raw rows to retention: their marks are dropped, never
    -- recomputed from the rows that remain
    WITH taken AS (DELETE FROM kt_dirty_hours WHERE bucket < up_to RETURNING bucket)
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

    -- One read of the dirty hours' rows, aggregated by hashing (no sort of every row): sums at
    -- the finest grain the rollups need, which the three rollups are summed from, and each
    -- (hour, gateway, model)'s latencies, whose exact percentiles and sketch come from
    -- kt_latency_summary. Group keys compare in "C": equality is byte equality in every
    -- deterministic collation, so the groups are the same and hashing them is cheaper.
    WITH raw AS MATERIALIZED (
        SELECT h AS bucket, e.gateway_id COLLATE "C" AS gateway_id, e.model COLLATE "C" AS model,
               e.team_id COLLATE "C" AS team_id, e.decision COLLATE "C" AS decision, e.cost_usd,
               e.input_tokens, e.output_tokens, e.latency_ms
        FROM unnest(hours) h
        JOIN ai_decision_events e ON e."timestamp" >= h AND e."timestamp" < h + interval '1 hour'
    ), fine AS MATERIALIZED (
        SELECT r.bucket, r.gateway_id, r.model, r.team_id, r.decision, count(*) AS n, sum(r.cost_usd) AS cost,
               sum(r.input_tokens) AS tin, sum(r.output_tokens) AS tout,
               sum(r.latency_ms) AS lat_sum, count(r.latency_ms) AS lat_n
        FROM raw r GROUP BY 1, 2, 3, 4, 5
    ), latencies AS (
        SELECT r.bucket, r.gateway_id, r.model, array_agg(r.latency_ms) AS lats
        FROM raw r GROUP BY 1, 2, 3
    ), by_model AS (
        SELECT f.bucket, f.gateway_id, f.model, sum(f.n)::bigint AS n,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'allowed'), 0)::bigint AS allowed,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'blocked'), 0)::bigint AS blocked,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'escalated'), 0)::bigint AS escalated,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'redacted'), 0)::bigint AS redacted,
               sum(f.cost) AS cost, sum(f.tin)::bigint AS tin, sum(f.tout)::bigint AS tout,
               sum(f.lat_sum)::bigint AS lat_sum, sum(f.lat_n)::bigint AS lat_n
        FROM fine f GROUP BY 1, 2, 3
    ), metrics AS (
        INSERT INTO kt_rollup_metrics_hourly
        SELECT m.bucket, m.gateway_id, m.model, m.n, m.allowed, m.blocked, m.escalated, m.redacted,
               m.cost, m.tin, m.tout, m.lat_sum, m.lat_n, s.p50, s.p99, s.sketch
        FROM by_model m
        JOIN latencies l USING (bucket, gateway_id, model)
        LEFT JOIN LATERAL kt_latency_summary(l.lats) s ON true
        RETURNING 1
    ), decisions AS (
        INSERT INTO kt_rollup_decisions_hourly
        SELECT f.bucket, f.decision, sum(f.n)::bigint, sum(f.cost), sum(f.tin + f.tout)::bigint,
               sum(f.lat_sum)::bigint, sum(f.lat_n)::bigint
        FROM fine f GROUP BY 1, 2
    ), spend AS (
        INSERT INTO kt_rollup_spend_hourly
        SELECT f.bucket, f.team_id, f.model, f.decision, sum(f.n)::bigint, sum(f.tin)::bigint,
               sum(f.tout)::bigint, sum(f.cost)
        FROM fine f GROUP BY 1, 2, 3, 4
    )
    SELECT count(*) INTO metric_rows FROM metrics;

    PERFORM kt_rebuild_spend_days(hours);
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_refresh_metrics(timestamptz) IS 'Recomputes exactly the dirty hours (kt_dirty_hours) of every rollup from raw rows, in the caller''s transaction; a concurrent refresh waits for it. up_to: only hours starting before it (retention refreshes up to its cutoff). Returns how many hours were refreshed and their span. The worker runs it every kt_governance.refresh_interval.';

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

REVOKE ALL ON FUNCTION kt_refresh_metrics(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_refresh_metrics(timestamptz) TO kt_governance_admin;
GRANT SELECT ON governance_metrics_hourly, kt_rollup_metrics_hourly, kt_rollup_state, kt_rollup_decisions_hourly,
                kt_rollup_spend_hourly, kt_rollup_spend_daily, kt_dirty_hours TO kt_governance_reader;
-- writers' transactions record their dirty hours at commit
GRANT INSERT ON kt_dirty_hours TO kt_governance_writer;
