-- kt_governance 0.2.0 -> 0.3.0: faster rollups and reports. A daily spend rollup
-- (kt_rollup_spend_daily, filled here from the hourly one), a one-pass refresh with
-- kt_latency_summary(), report and refresh functions with JIT off, kt_live_ranges and
-- kt_rollup_hours generalized to a grain (hour or day), kt_refresh_metrics(up_to) so retention
-- refreshes only the hours its cutoff reaches.
-- Frozen once released: later changes go into a new upgrade script.
\echo Use "ALTER EXTENSION kt_governance UPDATE TO '0.3.0'" to load this file. \quit

-- kt_governance::sketch::kt_latency_summary
CREATE  FUNCTION "kt_latency_summary"(
	"latencies" INT[] /* Vec < Option < i32 > > */
) RETURNS TABLE (
	"p50" double precision,  /* Option < f64 > */
	"p99" double precision,  /* Option < f64 > */
	"sketch" bytea  /* :: std :: option :: Option < Vec < u8 > > */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kt_latency_summary_wrapper';

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
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_spend_daily', '');
GRANT SELECT ON kt_rollup_spend_daily TO kt_governance_reader;

COMMENT ON FUNCTION kt_latency_summary(integer[]) IS 'Exact PERCENTILE_CONT 0.5 and 0.99 (same float8 results as the SQL aggregates) and the latency sketch of an array of latencies (NULLs ignored; all NULL for no latency); the refresh calls it once per (hour, gateway, model).';

-- both gain a grain argument: new signatures
DROP FUNCTION kt_live_ranges(timestamptz, timestamptz, boolean);
DROP FUNCTION kt_rollup_hours(timestamptz, timestamptz);

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

-- gains up_to: a new signature
DROP FUNCTION kt_refresh_metrics();
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

REVOKE ALL ON FUNCTION kt_refresh_metrics(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_refresh_metrics(timestamptz) TO kt_governance_admin;

-- the daily rollup starts as the sum of the hourly one
INSERT INTO kt_rollup_spend_daily
SELECT date_trunc('day', r.bucket, 'UTC'), r.team_id, r.model, r.decision, sum(r.request_count)::bigint,
       sum(r.total_input_tokens)::bigint, sum(r.total_output_tokens)::bigint, sum(r.total_cost)
FROM kt_rollup_spend_hourly r
GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE FUNCTION kt_governance_summary(
    lookback interval DEFAULT '30 days',
    start_time timestamptz DEFAULT NULL,
    end_time timestamptz DEFAULT NULL,
    tz text DEFAULT NULL,
    gateway_id text DEFAULT NULL,
    team_id text DEFAULT NULL,
    model text DEFAULT NULL)
RETURNS TABLE (day timestamptz, decision text, event_count bigint, total_cost numeric,
               avg_latency_ms numeric, total_tokens bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
-- reports read rollup rows and a few raw hours; the planner's row estimates for the raw ranges
-- would trigger JIT compilation, which costs more than the query (measured: 40 ms of 46 ms)
SET jit = off
AS $fn$
DECLARE
    -- read once: a call in the dirty-hour checks would run per rollup row (not inlinable)
    frozen timestamptz := kt_frozen_before();
    w record := kt_report_window(lookback, start_time, end_time);
    zone text := coalesce(tz, current_setting('TimeZone'));
    f_gateway text := gateway_id;
    f_team text := team_id;
    f_model text := model;
    whole record := kt_rollup_hours(w.window_start, w.window_end);
    use_rollups boolean;
BEGIN
    PERFORM now() AT TIME ZONE zone;  -- an unknown zone fails here with 22023
    -- the decisions rollup has no gateway/team/model, and UTC hours only make days of zones
    -- that are whole hours from UTC; otherwise everything is read from raw rows
    use_rollups := f_gateway IS NULL AND f_team IS NULL AND f_model IS NULL
                   AND kt_zone_has_whole_hours(zone, w.window_start, w.window_end);
    RETURN QUERY
    WITH parts AS (
        SELECT r.bucket AS ts, r.decision AS dec, r.event_count AS n, r.total_cost AS cost,
               r.total_tokens AS tokens, r.latency_sum AS lat_sum, r.latency_count AS lat_n
        FROM kt_rollup_decisions_hourly r
        WHERE use_rollups AND r.bucket >= whole.first_hour AND r.bucket < whole.end_hour
          -- written out rather than a helper: PostgreSQL does not inline a scalar SQL function
          -- whose body has a subquery, and a call per rollup row made these reports 3-4x slower
          AND NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = r.bucket
                          AND d.bucket >= frozen)
        UNION ALL
        SELECT e."timestamp", e.decision, 1::bigint, e.cost_usd, (e.input_tokens + e.output_tokens)::bigint,
               e.latency_ms::bigint, (e.latency_ms IS NOT NULL)::int::bigint
        FROM kt_live_ranges(w.window_start, w.window_end, use_rollups) live
        CROSS JOIN LATERAL (SELECT * FROM ai_decision_events x
                            WHERE x."timestamp" >= live.range_start AND x."timestamp" < live.range_end) e
        WHERE (f_gateway IS NULL OR e.gateway_id = f_gateway)
          AND (f_team IS NULL OR e.team_id = f_team)
          AND (f_model IS NULL OR e.model = f_model)
    )
    -- sum of sums / sum of counts is exactly what AVG(latency_ms) computes
    SELECT date_trunc('day', p.ts, zone), p.dec, sum(p.n)::bigint, sum(p.cost),
           sum(p.lat_sum) / nullif(sum(p.lat_n), 0), sum(p.tokens)::bigint
    FROM parts p
    GROUP BY 1, 2
    ORDER BY 1 DESC, 2;
END
$fn$;
COMMENT ON FUNCTION kt_governance_summary(interval, timestamptz, timestamptz, text, text, text, text) IS 'Daily governance summary per decision: events, cost, average latency (over non-null latencies), tokens. Whole refreshed hours come from kt_rollup_decisions_hourly, edge and dirty hours from raw rows (filters and zones that are not whole hours from UTC read raw rows only). Defaults reproduce the document''s query: the last 30 days, days in the session TimeZone. start_time/end_time select an explicit range; tz buckets days in another zone; gateway_id, team_id and model filter.';

CREATE OR REPLACE FUNCTION kt_spend_by_team_model(
    lookback interval DEFAULT '30 days',
    start_time timestamptz DEFAULT NULL,
    end_time timestamptz DEFAULT NULL,
    decisions text[] DEFAULT ARRAY['allowed'])
RETURNS TABLE (team text, model text, request_count bigint, total_input_tokens bigint,
               total_output_tokens bigint, total_cost_usd numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
-- reports read rollup rows and a few raw hours; the planner's row estimates for the raw ranges
-- would trigger JIT compilation, which costs more than the query (measured: 40 ms of 46 ms)
SET jit = off
AS $fn$
DECLARE
    -- read once: a call in the dirty-hour checks would run per rollup row (not inlinable)
    frozen timestamptz := kt_frozen_before();
    w record := kt_report_window(lookback, start_time, end_time);
    whole record := kt_rollup_hours(w.window_start, w.window_end);
    days record := kt_rollup_hours(whole.first_hour, whole.end_hour, 'day');
    -- UTC days holding a dirty hour: their daily rows are stale (a handful at most)
    dirty_days timestamptz[] := ARRAY(SELECT DISTINCT date_trunc('day', d.bucket, 'UTC') FROM kt_dirty_hours d
                                      WHERE d.bucket >= frozen);
BEGIN
    IF decisions IS NULL OR cardinality(decisions) = 0 THEN
        RAISE EXCEPTION 'decisions must list at least one decision' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    -- three grains: whole UTC days without a dirty hour from the daily rollup, the other whole
    -- hours (edge days, days with a dirty hour) from the hourly rollup, and the partial edge
    -- hours and dirty hours from raw rows
    WITH parts AS (
        SELECT r.team_id AS team, r.model AS mdl, r.request_count AS n, r.total_input_tokens AS tin,
               r.total_output_tokens AS tout, r.total_cost AS cost
        FROM kt_rollup_spend_daily r
        WHERE r.bucket >= days.first_hour AND r.bucket < days.end_hour
          AND r.decision = ANY (decisions)
          AND r.bucket <> ALL (dirty_days)
        UNION ALL
        SELECT r.team_id, r.model, r.request_count, r.total_input_tokens, r.total_output_tokens, r.total_cost
        FROM kt_live_ranges(whole.first_hour, whole.end_hour, true, 'day') hourly
        -- an index range scan per range: OFFSET 0 keeps the subquery from being flattened
        -- into a join, for which the planner scanned and materialized the whole hourly rollup
        -- (190 ms of a 200 ms report at 10M events)
        CROSS JOIN LATERAL (SELECT * FROM kt_rollup_spend_hourly x
                            WHERE x.bucket >= hourly.range_start AND x.bucket < hourly.range_end
                            OFFSET 0) r
        WHERE r.decision = ANY (decisions)
          AND NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = r.bucket
                          AND d.bucket >= frozen)
        UNION ALL
        SELECT e.team_id, e.model, 1::bigint, e.input_tokens::bigint, e.output_tokens::bigint, e.cost_usd
        FROM kt_live_ranges(w.window_start, w.window_end) live
        CROSS JOIN LATERAL (SELECT * FROM ai_decision_events x
                            WHERE x."timestamp" >= live.range_start AND x."timestamp" < live.range_end) e
        WHERE e.decision = ANY (decisions)
    )
    SELECT coalesce(p.team, 'unassigned'), p.mdl, sum(p.n)::bigint, sum(p.tin)::bigint,
           sum(p.tout)::bigint, sum(p.cost)
    FROM parts p
    GROUP BY p.team, p.mdl
    ORDER BY 6 DESC, 1, 2;
END
$fn$;
COMMENT ON FUNCTION kt_spend_by_team_model(interval, timestamptz, timestamptz, text[]) IS 'Token and cost spend per team and model (NULL team shown as ''unassigned''), most expensive first. Whole UTC days without a dirty hour come from kt_rollup_spend_daily, the other whole hours from kt_rollup_spend_hourly, edge and dirty hours from raw rows. Defaults reproduce the document''s query: last 30 days, allowed requests only; decisions selects other outcomes.';

CREATE OR REPLACE FUNCTION kt_anomalies(
    lookback interval DEFAULT '48 hours',
    sigma double precision DEFAULT 2,
    min_requests bigint DEFAULT 0,
    exclude_self boolean DEFAULT false,
    dimension text DEFAULT NULL,
    start_time timestamptz DEFAULT NULL,
    end_time timestamptz DEFAULT NULL)
RETURNS TABLE (hour timestamptz, series text, total bigint, blocked bigint, block_rate numeric,
               baseline_mean double precision, baseline_stddev double precision,
               z_score double precision, status text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
-- reports read rollup rows and a few raw hours; the planner's row estimates for the raw ranges
-- would trigger JIT compilation, which costs more than the query (measured: 40 ms of 46 ms)
SET jit = off
AS $fn$
DECLARE
    -- read once: a call in the dirty-hour checks would run per rollup row (not inlinable)
    frozen timestamptz := kt_frozen_before();
    w record := kt_report_window(lookback, start_time, end_time);
    whole record := kt_rollup_hours(w.window_start, w.window_end);
    -- the metrics rollup has gateway and model but not team; hours must be whole in this zone
    use_rollups boolean := coalesce(dimension, '') <> 'team_id'
        AND kt_zone_has_whole_hours(current_setting('TimeZone'), w.window_start, w.window_end);
BEGIN
    IF dimension IS NOT NULL AND dimension NOT IN ('gateway_id', 'model', 'team_id') THEN
        RAISE EXCEPTION 'unknown dimension "%"', dimension
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use gateway_id, model, team_id or NULL.';
    END IF;
    IF sigma IS NULL OR sigma < 0 OR sigma IN ('NaN', 'Infinity') OR min_requests IS NULL OR min_requests < 0
       OR exclude_self IS NULL THEN
        RAISE EXCEPTION 'sigma must be finite and >= 0, min_requests >= 0 and exclude_self not NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH parts AS (
        SELECT r.bucket AS ts,
               CASE dimension WHEN 'gateway_id' THEN r.gateway_id WHEN 'model' THEN r.model END AS series,
               r.total_requests AS n, r.blocked AS b
        FROM kt_rollup_metrics_hourly r
        WHERE use_rollups AND r.bucket >= whole.first_hour AND r.bucket < whole.end_hour
          AND NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = r.bucket
                          AND d.bucket >= frozen)
        UNION ALL
        SELECT e."timestamp",
               CASE dimension WHEN 'gateway_id' THEN e.gateway_id
                              WHEN 'model' THEN e.model
                              WHEN 'team_id' THEN coalesce(e.team_id, 'unassigned') END,
               1::bigint, (e.decision = 'blocked')::int::bigint
        FROM kt_live_ranges(w.window_start, w.window_end, use_rollups) live
        CROSS JOIN LATERAL (SELECT * FROM ai_decision_events x
                            WHERE x."timestamp" >= live.range_start AND x."timestamp" < live.range_end) e
    ), hourly AS (
        SELECT date_trunc('hour', p.ts) AS hour, p.series, sum(p.n)::bigint AS total, sum(p.b)::bigint AS blocked
        FROM parts p
        GROUP BY 1, 2
    ), rated AS (
        SELECT h.*, h.blocked::float8 / nullif(h.total, 0) AS rate,
               h.total >= min_requests AS counted
        FROM hourly h
    ), judged AS (
        SELECT r.*,
               -- sums over the hours that count, per series; self-exclusion subtracts the hour
               count(*) FILTER (WHERE r.counted) OVER s AS n,
               avg(r.rate) FILTER (WHERE r.counted) OVER s AS mean_all,
               stddev(r.rate) FILTER (WHERE r.counted) OVER s AS stddev_all,
               sum(r.rate) FILTER (WHERE r.counted) OVER s AS s1,
               sum(r.rate * r.rate) FILTER (WHERE r.counted) OVER s AS s2
        FROM rated r
        WINDOW s AS (PARTITION BY r.series)
    ), baselined AS (
        SELECT j.*,
               CASE WHEN NOT exclude_self OR NOT j.counted THEN j.mean_all
                    WHEN j.n > 1 THEN (j.s1 - j.rate) / (j.n - 1) END AS mean_b,
               CASE WHEN NOT exclude_self OR NOT j.counted THEN j.stddev_all
                    WHEN j.n > 2 THEN sqrt(greatest(0,
                        ((j.s2 - j.rate * j.rate) - (j.s1 - j.rate) ^ 2 / (j.n - 1)) / (j.n - 2))) END AS stddev_b
        FROM judged j
    )
    SELECT b.hour, b.series, b.total, b.blocked, round(b.rate::numeric, 4), b.mean_b, b.stddev_b,
           CASE WHEN b.stddev_b > 0 THEN (b.rate - b.mean_b) / b.stddev_b END,
           CASE WHEN b.counted AND b.rate > b.mean_b + sigma * b.stddev_b THEN 'ANOMALY' ELSE 'normal' END
    FROM baselined b
    ORDER BY b.hour DESC, b.series;
END
$fn$;
COMMENT ON FUNCTION kt_anomalies(interval, double precision, bigint, boolean, text, timestamptz, timestamptz) IS 'Hourly block-rate anomalies: an hour is ANOMALY when its block rate exceeds baseline_mean + sigma * baseline_stddev. Defaults reproduce the document''s query (last 48 hours, sigma 2, baseline over all those hours including the judged one). min_requests: hours with fewer requests are neither flagged nor part of the baseline; exclude_self: judge each hour against the other hours; dimension (gateway_id, model, team_id): one baseline per series; start_time/end_time: an explicit range instead of lookback.';

CREATE OR REPLACE FUNCTION kt_retention_job(OUT events_removed bigint, OUT message text, OUT again boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    raw_hours integer := kt_setting('retention_hours')::int;
    rollup_hours integer := kt_setting('rollup_retention_hours')::int;
    rollup_cutoff timestamptz := now() - make_interval(hours => rollup_hours);
    r record;
    rollup_rows bigint := 0;
    n bigint;
BEGIN
    events_removed := 0;
    again := false;
    message := 'raw retention off';
    IF raw_hours > 0 THEN
        -- one partition pair per run: the worker commits and runs the job again at once
        SELECT * INTO r FROM kt_apply_retention(raw_hours, NULL, 1);
        events_removed := coalesce(r.events_removed, 0);
        again := coalesce(r.more_to_do, false);
        message := format('cutoff %s: %s partitions dropped, %s events removed, %s held%s',
                          r.cutoff, cardinality(r.partitions_removed), r.events_removed, r.events_held,
                          CASE WHEN again THEN ', more to do' ELSE '' END);
    END IF;
    IF rollup_hours > 0 THEN
        DELETE FROM kt_rollup_metrics_hourly WHERE bucket < rollup_cutoff;
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        DELETE FROM kt_rollup_decisions_hourly WHERE bucket < rollup_cutoff;
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        DELETE FROM kt_rollup_spend_hourly WHERE bucket < rollup_cutoff;
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        -- days before the cutoff's day go; the cutoff's own day is summed again from the hours
        -- it keeps, so a daily row is always the sum of its hourly rows
        DELETE FROM kt_rollup_spend_daily WHERE bucket < date_trunc('day', rollup_cutoff, 'UTC');
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        PERFORM kt_rebuild_spend_days(ARRAY[rollup_cutoff]);
        message := message || format('; %s rollup rows older than %s hours removed', rollup_rows, rollup_hours);
    END IF;
END
$fn$;
COMMENT ON FUNCTION kt_retention_job() IS 'Internal: body of the retention job: kt_apply_retention(kt_governance.retention_hours) one partition pair per run (again = true asks the worker to run it again after committing), then rollup retention.';

CREATE OR REPLACE FUNCTION kt_apply_retention(hours integer, archive boolean DEFAULT NULL, max_partitions integer DEFAULT NULL)
RETURNS TABLE (cutoff timestamptz, partitions_removed text[], events_removed bigint,
               evaluations_removed bigint, events_archived bigint, events_held bigint, more_to_do boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
SET kt_governance.track_changes = off
AS $fn$
DECLARE
    do_archive boolean := coalesce(archive, kt_setting('retention_archive')::boolean);
    parquet_dest text := nullif(kt_setting('retention_archive_destination'), '');
    archived_to text := concat_ws(', ', CASE WHEN do_archive THEN 'ai_decision_events_archive' END, parquet_dest);
    part record;
    removed record;
    n_events bigint;
    n_evals bigint;
    held bigint;
    oldest timestamptz;
    newest timestamptz;
    -- rows an export schedule with spare_from_retention has not exported yet are kept like held rows
    spare timestamptz := kt_export_spare_from();
    any_hold boolean := EXISTS (SELECT FROM kt_legal_holds WHERE released_at IS NULL) OR spare < 'infinity';
BEGIN
    IF hours IS NULL OR hours <= 0 THEN
        RAISE EXCEPTION 'retention hours must be a positive number, got %', coalesce(hours::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'kt_apply_retention never means "delete everything".';
    END IF;
    IF max_partitions <= 0 THEN
        RAISE EXCEPTION 'max_partitions must be positive (or NULL for all), got %', max_partitions
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('kt_governance.retention')) THEN
        RAISE NOTICE 'kt_governance: another retention or erasure run is in progress; skipping';
        RETURN;
    END IF;
    cutoff := now() - make_interval(hours => hours);
    partitions_removed := '{}';
    events_removed := 0; evaluations_removed := 0; events_archived := 0; events_held := 0;
    more_to_do := false;

    -- rollups first: refresh the dirty hours the cutoff reaches (later ones are not touched and
    -- wait for the refresh job), then freeze the hours about to lose raw rows
    PERFORM kt_refresh_metrics(up_to => cutoff);
    INSERT INTO kt_rollup_state (frozen_before) VALUES (date_trunc('hour', cutoff, 'UTC'))
    ON CONFLICT (singleton) DO UPDATE SET frozen_before = greatest(kt_rollup_state.frozen_before, excluded.frozen_before);

    PERFORM kt_lock_for_partition_ddl();
    IF to_regclass('pg_temp.kt_doomed') IS NULL THEN
        CREATE TEMP TABLE kt_doomed (id text, ts timestamptz) ON COMMIT DROP;
    END IF;

    -- whole partition pairs older than the cutoff and free of held rows: dropped
    FOR part IN
        SELECT ev.partition_name AS events_part, pe.partition_name AS evals_part, ev.range_start, ev.range_end
        FROM kt_partitions ev
        JOIN kt_partitions pe ON pe.parent_table = 'policy_evaluations' AND pe.range_start = ev.range_start
                             AND pe.range_end = ev.range_end
        WHERE ev.parent_table = 'ai_decision_events' AND NOT ev.is_default AND ev.range_end <= cutoff
        ORDER BY ev.range_start
    LOOP
        held := 0;
        IF any_hold THEN  -- a full scan of the partition only when some hold is active
            EXECUTE format('SELECT count(*) FROM %I.%I e WHERE kt_is_held(e.team_id, e.user_id, e.gateway_id, e."timestamp") OR e.created_at >= %L',
                           '@extschema@', part.events_part, spare) INTO held;
        END IF;
        IF held > 0 THEN
            CONTINUE;  -- trimmed below instead
        END IF;
        IF cardinality(partitions_removed) >= max_partitions THEN
            more_to_do := true;  -- the caller commits and calls again
            EXIT;
        END IF;
        EXECUTE format('SELECT count(*), min("timestamp"), max("timestamp") FROM %I.%I', '@extschema@', part.events_part)
            INTO n_events, oldest, newest;
        EXECUTE format('SELECT count(*) FROM %I.%I', '@extschema@', part.evals_part) INTO n_evals;
        IF do_archive THEN
            EXECUTE format('INSERT INTO ai_decision_events_archive SELECT * FROM %I.%I', '@extschema@', part.events_part);
            EXECUTE format('INSERT INTO policy_evaluations_archive SELECT * FROM %I.%I', '@extschema@', part.evals_part);
            events_archived := events_archived + n_events;
        END IF;
        IF parquet_dest IS NOT NULL AND n_events > 0 THEN
            -- an export error aborts this function: nothing is dropped without its archive
            PERFORM kt_export_range(parquet_dest, part.range_start, part.range_end,
                                    manifest_name => format('retention_%s', part.events_part));
        END IF;
        EXECUTE format('DROP TABLE %I.%I', '@extschema@', part.evals_part);
        EXECUTE format('DROP TABLE %I.%I', '@extschema@', part.events_part);
        partitions_removed := partitions_removed || part.events_part;
        events_removed := events_removed + n_events;
        evaluations_removed := evaluations_removed + n_evals;
        RAISE NOTICE 'kt_governance retention: dropped % (% events, % evaluations)', part.events_part, n_events, n_evals;
    END LOOP;

    IF more_to_do THEN
        INSERT INTO kt_removal_log (why, cutoff, partitions_dropped, events_removed, evaluations_removed,
                                    events_archived, archived_to)
        VALUES ('retention', cutoff, partitions_removed, events_removed, evaluations_removed, events_archived,
                nullif(archived_to, ''));
        RETURN NEXT;
        RETURN;
    END IF;

    -- everything else older than the cutoff (the straddling partition, partitions with held
    -- rows, the default partition): deleted row by row, held rows kept
    INSERT INTO pg_temp.kt_doomed
    SELECT e.id, e."timestamp" FROM ai_decision_events e
    WHERE e."timestamp" < cutoff AND NOT kt_is_held(e.team_id, e.user_id, e.gateway_id, e."timestamp")
      AND e.created_at < spare;
    SELECT min(ts), max(ts) INTO oldest, newest FROM pg_temp.kt_doomed;
    IF parquet_dest IS NOT NULL AND oldest IS NOT NULL THEN
        -- the exported range also holds the held rows between oldest and newest (they stay too)
        PERFORM kt_export_range(parquet_dest, oldest, newest + interval '1 microsecond',
            manifest_name => format('retention_trim_%s', to_char(cutoff AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS')));
    END IF;
    SELECT * INTO removed FROM kt_remove_doomed(do_archive);
    events_removed := events_removed + removed.events;
    evaluations_removed := evaluations_removed + removed.evaluations;
    events_archived := events_archived + removed.archived;
    SELECT count(*) INTO events_held FROM ai_decision_events e WHERE e."timestamp" < cutoff;
    IF removed.events > 0 THEN
        RAISE NOTICE 'kt_governance retention: deleted % events older than the cutoff from partly kept partitions', removed.events;
    END IF;
    IF events_held > 0 THEN
        RAISE NOTICE 'kt_governance retention: % events older than the cutoff kept by legal holds', events_held;
    END IF;

    INSERT INTO kt_removal_log (why, cutoff, partitions_dropped, events_removed, evaluations_removed,
                                events_archived, events_held, archived_to, oldest_removed, newest_removed)
    VALUES ('retention', cutoff, partitions_removed, events_removed, evaluations_removed, events_archived,
            events_held, nullif(archived_to, ''),
            (SELECT min(x) FROM unnest(ARRAY[oldest]) x), newest);
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_apply_retention(integer, boolean, integer) IS 'Removes every event and evaluation older than now() - hours and nothing newer: whole partitions are dropped, the partition straddling the cutoff (and any holding legally held rows) is trimmed. Refreshes rollups first and freezes the pruned hours, so reports keep the history. archive (default kt_governance.retention_archive) copies the rows to ai_decision_events_archive / policy_evaluations_archive in the same transaction; with kt_governance.retention_archive_destination set, every dropped partition and the trimmed range are first exported as Parquet there (manifests retention_<partition>.json / retention_trim_<cutoff>.json), and an export error aborts the removal. Held rows stay. Logged in kt_removal_log. hours <= 0 or NULL is an error. A concurrent run is skipped with a NOTICE. max_partitions: drop at most that many partition pairs and return more_to_do = true, leaving the rest (and the trim) to the next call, so a caller can commit in between (see kt_apply_retention_by_partition).';

