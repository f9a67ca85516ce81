-- kt_governance 1.0.0 -> 1.1.0 (ALTER EXTENSION kt_governance UPDATE TO '1.1.0')
--
-- Reports check their arguments one way (a finite start_time, no -infinity end_time, known
-- decisions, known zones with a hint); UTC days are 24 hours whatever the session TimeZone
-- (1.0.0 added '1 day', a calendar day of the session's zone: 23 or 25 hours across a DST
-- change); governance_metrics_hourly plans no events partition and gains exact p90/p95; new view
-- governance_spend_daily. pgrx-tests/e2e/upgrade.sh compares a database updated with this script
-- with a fresh 1.1.0 install, catalog by catalog.
\echo Use "ALTER EXTENSION kt_governance UPDATE TO '1.1.0'" to load this file. \quit
SET search_path = @extschema@, kt_governance_internal, kt_governance_partitions;

-- reports: argument checks

CREATE OR REPLACE FUNCTION kt_governance_internal.kt_report_window(
    lookback interval,
    start_time timestamptz,
    end_time timestamptz,
    OUT window_start timestamptz,
    OUT window_end timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF start_time IS NULL AND lookback IS NULL THEN
        RAISE EXCEPTION 'either lookback or start_time is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF lookback < interval '0' THEN
        RAISE EXCEPTION 'lookback must not be negative, got %', lookback USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lookback > interval '1000 years' THEN  -- events are stored from 1970 on
        RAISE EXCEPTION 'lookback must be at most 1000 years, got %', lookback USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- one rule for every report: the start is a finite time; an end of infinity is no end
    IF NOT isfinite(start_time) THEN
        RAISE EXCEPTION 'start_time must be a finite time, got %', start_time
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave start_time NULL to use lookback, or give the earliest time you want, such as ''1970-01-01''.';
    END IF;
    IF end_time = '-infinity' THEN
        RAISE EXCEPTION 'end_time must not be -infinity'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave end_time NULL (or infinity) for no upper bound.';
    END IF;
    IF start_time IS NOT NULL AND end_time IS NOT NULL AND start_time > end_time THEN
        RAISE EXCEPTION 'start_time (%) is after end_time (%)', start_time, end_time
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    window_start := coalesce(start_time, now() - lookback);
    window_end := coalesce(end_time, 'infinity');
END
$fn$;

CREATE FUNCTION kt_governance_internal.kt_check_decisions(decisions text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    unknown text := (SELECT string_agg(coalesce(quote_literal(d), 'NULL'), ', ')
                     FROM unnest(decisions) d
                     WHERE d IS NULL OR d NOT IN ('allowed', 'blocked', 'escalated', 'redacted'));
BEGIN
    IF decisions IS NULL OR cardinality(decisions) = 0 THEN
        RAISE EXCEPTION 'decisions must list at least one decision (allowed, blocked, escalated, redacted)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown decision %: decisions are allowed, blocked, escalated and redacted', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Reports use the stored spelling; kt_ingest also accepts allow, block, escalate and redact on input.';
    END IF;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_check_decisions(text[]) IS 'Internal: raises 22023, naming the valid values, unless every element of decisions is a stored decision (allowed, blocked, escalated, redacted).';

CREATE FUNCTION kt_governance_internal.kt_check_zone(zone text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM now() AT TIME ZONE zone;
EXCEPTION WHEN invalid_parameter_value THEN
    RAISE EXCEPTION 'time zone "%" not recognized', zone
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Use a name from pg_timezone_names (such as Asia/Kolkata or America/New_York) or an abbreviation from pg_timezone_abbrevs.';
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_check_zone(text) IS 'Internal: raises 22023 with a hint at pg_timezone_names unless zone is a time zone PostgreSQL recognizes.';

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
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
    raw record;
    -- the partial edge ranges summed per decision (edge_*), or the head range read row by row
    edge_head_start timestamptz;
    edge_head_end timestamptz;
    edge_tail_start timestamptz;
    edge_tail_end timestamptz;
    row_head_start timestamptz;
    row_head_end timestamptz;
BEGIN
    PERFORM kt_check_zone(zone);
    -- the decisions rollup has no gateway/team/model, and UTC hours only make days of zones
    -- that are whole hours from UTC; otherwise everything is read from raw rows
    use_rollups := f_gateway IS NULL AND f_team IS NULL AND f_model IS NULL
                   AND kt_zone_has_whole_hours(zone, w.window_start, w.window_end)
                   AND NOT kt_rls_applies();
    raw := kt_raw_ranges(w.window_start, w.window_end, use_rollups, frozen);
    -- With rollups, each partial edge range lies inside one UTC hour, hence inside one day of
    -- the zone: its rows are summed per decision and dated by the range's start, without a
    -- date_trunc per row (the first hour's rows were most of the call). Otherwise the head
    -- range is the whole window (or spans two hours) and is summed row by row.
    IF use_rollups AND whole.first_hour < whole.end_hour THEN
        edge_head_start := raw.head_start;
        edge_head_end := raw.head_end;
        edge_tail_start := raw.tail_start;
        edge_tail_end := raw.tail_end;
    ELSE
        row_head_start := raw.head_start;
        row_head_end := raw.head_end;
    END IF;
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
        -- (no filters here: rollups are only used without them)
        SELECT edge_head_start, e.decision, count(*), sum(e.cost_usd), sum(e.input_tokens + e.output_tokens)::bigint,
               sum(e.latency_ms)::bigint, count(e.latency_ms)
        FROM kt_raw_events(edge_head_start, edge_head_end) e
        GROUP BY e.decision
        UNION ALL
        SELECT edge_tail_start, e.decision, count(*), sum(e.cost_usd), sum(e.input_tokens + e.output_tokens)::bigint,
               sum(e.latency_ms)::bigint, count(e.latency_ms)
        FROM kt_raw_events(edge_tail_start, edge_tail_end) e
        GROUP BY e.decision
        UNION ALL
        -- dirty hours (only with rollups, so without filters): summed per hour and decision, each
        -- hour dated by its start like the edges
        SELECT d.hour, d.decision, d.events, d.cost, d.tokens, d.latency_sum, d.latency_count
        FROM kt_dirty_hour_decisions(raw.dirty_hours, raw.dirty_start, raw.dirty_end) d
        UNION ALL
        SELECT e."timestamp", e.decision, 1::bigint, e.cost_usd, (e.input_tokens + e.output_tokens)::bigint,
               e.latency_ms::bigint, (e.latency_ms IS NOT NULL)::int::bigint
        FROM kt_raw_events(row_head_start, row_head_end) e
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
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
    -- rollups hold every row; a caller that row-level security limits reads raw rows only
    rls boolean := kt_rls_applies();
    raw record := kt_raw_ranges(w.window_start, w.window_end, NOT rls, frozen);
BEGIN
    PERFORM kt_check_decisions(decisions);
    RETURN QUERY
    -- three grains: whole UTC days without a dirty hour from the daily rollup, the other whole
    -- hours (edge days, days with a dirty hour) from the hourly rollup, and the partial edge
    -- hours and dirty hours from raw rows
    WITH parts AS (
        SELECT r.team_id AS team, r.model AS mdl, r.request_count AS n, r.total_input_tokens AS tin,
               r.total_output_tokens AS tout, r.total_cost AS cost
        FROM kt_rollup_spend_daily r
        WHERE NOT rls AND r.bucket >= days.first_hour AND r.bucket < days.end_hour
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
        WHERE NOT rls AND r.decision = ANY (decisions)
          AND NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = r.bucket
                          AND d.bucket >= frozen)
        UNION ALL
        SELECT e.team_id, e.model, 1::bigint, e.input_tokens::bigint, e.output_tokens::bigint, e.cost_usd
        FROM kt_raw_events(raw.head_start, raw.head_end, raw.tail_start, raw.tail_end,
                           raw.dirty_hours, raw.dirty_start, raw.dirty_end) e
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

-- UTC days of 24 hours

CREATE OR REPLACE FUNCTION kt_governance_internal.kt_rollup_hours(window_start timestamptz, window_end timestamptz, grain text DEFAULT 'hour',
                                OUT first_hour timestamptz, OUT end_hour timestamptz)
LANGUAGE sql IMMUTABLE
AS $fn$
    -- a grain's length in hours: '1 day' added to a timestamptz is a calendar day of the
    -- session's TimeZone (23 or 25 hours across a DST change), not a UTC day
    SELECT CASE WHEN date_trunc(grain, window_start, 'UTC') = window_start THEN window_start
                ELSE date_trunc(grain, window_start, 'UTC') + CASE WHEN grain = 'day' THEN interval '24 hours' ELSE interval '1 hour' END END,
           CASE WHEN isfinite(window_end) THEN date_trunc(grain, window_end, 'UTC') ELSE window_end END
$fn$;
COMMENT ON FUNCTION kt_rollup_hours(timestamptz, timestamptz, text) IS 'Internal: [first_hour, end_hour) is the span of whole UTC hours (grain ''hour'') or whole UTC days (grain ''day'') inside a window.';

CREATE OR REPLACE FUNCTION kt_governance_internal.kt_live_ranges(window_start timestamptz, window_end timestamptz, use_rollups boolean DEFAULT true,
                               grain text DEFAULT 'hour')
RETURNS TABLE (range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE
-- a handful of ranges: the planner must pick index range scans per range, not a full scan
ROWS 4
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
    SELECT DISTINCT date_trunc(grain, d.bucket, 'UTC'),
           date_trunc(grain, d.bucket, 'UTC') + CASE WHEN grain = 'day' THEN interval '24 hours' ELSE interval '1 hour' END
    FROM whole, kt_dirty_hours d
    WHERE use_rollups AND first_hour < end_hour AND d.bucket >= first_hour AND d.bucket < end_hour
      AND d.bucket >= kt_frozen_before()
$fn$;
COMMENT ON FUNCTION kt_live_ranges(timestamptz, timestamptz, boolean, text) IS 'Internal: the ranges of [window_start, window_end) not readable at a grain: partial edge grains and grains holding dirty hours. Grain ''hour'': what reports read from raw rows; grain ''day'': what they read from hourly instead of daily rollups.';

CREATE OR REPLACE FUNCTION kt_governance_internal.kt_rebuild_spend_days(touched timestamptz[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
    -- 24 hours, not '1 day': that is a calendar day of the session's TimeZone (23 or 25 hours
    -- across a DST change), and the worker's session may be in any zone
    JOIN kt_rollup_spend_hourly r ON r.bucket >= d AND r.bucket < d + interval '24 hours'
    GROUP BY 1, 2, 3, 4;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION kt_rebuild_spend_days(timestamptz[]) IS 'Internal: recomputes the kt_rollup_spend_daily rows of the UTC days containing the given instants from kt_rollup_spend_hourly; returns the rows written.';

-- daily spend rows a 1.0.0 refresh built in a DST zone on a DST change day summed 23 or 25
-- hours; every daily row is the sum of its hourly rows (rollup retention keeps that true), so
-- all of them are summed again
SELECT kt_governance_internal.kt_rebuild_spend_days(ARRAY(SELECT DISTINCT bucket FROM kt_governance_internal.kt_rollup_spend_daily));

-- What governance_metrics_hourly reads of a refreshed hour, in an index: a dashboard's range of
-- hours is an index-only scan instead of heap reads of rows that carry their sketch and
-- histogram (1.7-1.9 ms against 1.0 ms for the document's materialized view on a 24-hour
-- panel at 500k events; with it 1.0-1.3 ms). Index-only scans need the visibility map current:
-- refreshes rewrite the newest hours, so autovacuum visits the table after 2% of it changed.
CREATE INDEX kt_rollup_metrics_hourly_reads ON kt_governance_internal.kt_rollup_metrics_hourly (bucket)
    INCLUDE (gateway_id, model, total_requests, allowed, blocked, escalated, total_cost, p50_latency,
             p99_latency, total_input_tokens, total_output_tokens, redacted);
COMMENT ON INDEX kt_governance_internal.kt_rollup_metrics_hourly_reads IS 'The columns of governance_metrics_hourly a dashboard reads, by hour: index-only scans for ranges of refreshed hours.';
ALTER TABLE kt_governance_internal.kt_rollup_metrics_hourly
    SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);

-- views: live parts as functions, p90/p95, spend per day

CREATE FUNCTION kt_governance_internal.kt_live_metrics(range_start timestamptz, range_end timestamptz)
RETURNS TABLE (hour timestamptz, gateway_id text, model text, total_requests bigint, allowed bigint,
               blocked bigint, escalated bigint, total_cost numeric, p50_latency double precision,
               p99_latency double precision, total_input_tokens bigint, total_output_tokens bigint,
               redacted bigint, p90_latency double precision, p95_latency double precision)
LANGUAGE plpgsql STABLE
ROWS 100
SET search_path = pg_catalog, kt_governance_internal, pg_temp
SET jit = off
AS $fn$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT date_trunc('hour', e."timestamp", 'UTC'), e.gateway_id, e.model, count(*),
               count(*) FILTER (WHERE e.decision = 'allowed'), count(*) FILTER (WHERE e.decision = 'blocked'),
               count(*) FILTER (WHERE e.decision = 'escalated'), sum(e.cost_usd),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY e.latency_ms),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY e.latency_ms),
               sum(e.input_tokens), sum(e.output_tokens), count(*) FILTER (WHERE e.decision = 'redacted'),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY e.latency_ms),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY e.latency_ms)
        FROM %s e
        WHERE e."timestamp" >= $1 AND e."timestamp" < $2
        GROUP BY 1, 2, 3$q$, '@extschema@.ai_decision_events'::regclass)
    USING range_start, range_end;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_live_metrics(timestamptz, timestamptz) IS 'Internal: governance_metrics_hourly rows computed from the raw rows in [range_start, range_end) (planned with the bounds as constants, so only their partitions are read). Runs with the caller''s rights.';

CREATE OR REPLACE VIEW governance_metrics_hourly WITH (security_invoker = true) AS
SELECT r.bucket AS hour, r.gateway_id, r.model, r.total_requests, r.allowed, r.blocked, r.escalated,
       r.total_cost, r.p50_latency, r.p99_latency, r.total_input_tokens, r.total_output_tokens, r.redacted,
       @extschema@.kt_histogram_quantile(r.latency_histogram, 0.9::float8) AS p90_latency,
       @extschema@.kt_histogram_quantile(r.latency_histogram, 0.95::float8) AS p95_latency
FROM kt_governance_internal.kt_rollup_metrics_hourly r
WHERE NOT (SELECT kt_governance_internal.kt_rls_applies())
  AND NOT EXISTS (SELECT FROM kt_governance_internal.kt_dirty_hours d WHERE d.bucket = r.bucket
                  AND d.bucket >= (SELECT kt_governance_internal.kt_frozen_before()))
UNION ALL
-- hours changed since the last refresh, computed live, so the view is always exact
SELECT d.bucket, m.gateway_id, m.model, m.total_requests, m.allowed, m.blocked, m.escalated,
       m.total_cost, m.p50_latency, m.p99_latency, m.total_input_tokens, m.total_output_tokens, m.redacted,
       m.p90_latency, m.p95_latency
FROM (SELECT DISTINCT bucket FROM kt_governance_internal.kt_dirty_hours
      WHERE bucket >= (SELECT kt_governance_internal.kt_frozen_before())
        AND NOT (SELECT kt_governance_internal.kt_rls_applies())) d
CROSS JOIN LATERAL kt_governance_internal.kt_live_metrics(d.bucket, d.bucket + interval '1 hour') m
UNION ALL
-- a caller limited by row-level security: every hour from the rows it may see, in one statement
SELECT v.* FROM kt_governance_internal.kt_live_metrics('-infinity'::timestamptz, 'infinity'::timestamptz) v
WHERE (SELECT kt_governance_internal.kt_rls_applies());

COMMENT ON VIEW governance_metrics_hourly IS 'The document''s hourly metrics (plus redacted, p90 and p95), always exact: refreshed hours from kt_rollup_metrics_hourly, hours changed since the last kt_refresh_metrics() computed live; for a caller limited by row-level security, every hour computed from the rows it may see. Hours are UTC hours (as the document''s view in a UTC session). Filter on hour to use the rollup''s key.';

COMMENT ON COLUMN governance_metrics_hourly.p90_latency IS '90th percentile latency_ms (PERCENTILE_CONT 0.9), exact (from the hour''s latency histogram; NULL for rollup rows written before 0.6.0, which have none).';

COMMENT ON COLUMN governance_metrics_hourly.p95_latency IS '95th percentile latency_ms (PERCENTILE_CONT 0.95), exact, as p90_latency.';

CREATE FUNCTION kt_governance_internal.kt_live_spend_day(day timestamptz)
RETURNS TABLE (team_id text, model text, decision text, request_count bigint,
               total_input_tokens bigint, total_output_tokens bigint, total_cost numeric)
LANGUAGE plpgsql STABLE
ROWS 100
SET search_path = pg_catalog, kt_governance_internal, pg_temp
SET jit = off
AS $fn$
DECLARE
    frozen timestamptz := kt_frozen_before();
    dirty timestamptz[] := ARRAY(SELECT DISTINCT d.bucket FROM kt_dirty_hours d
                                 WHERE d.bucket >= day AND d.bucket < day + interval '24 hours'
                                   AND d.bucket >= frozen);
BEGIN
    -- the day's bounds are constants of the statement's plan: only the day's partitions
    RETURN QUERY EXECUTE format($q$
        SELECT x.team_id, x.model, x.decision, sum(x.n)::bigint, sum(x.tin)::bigint, sum(x.tout)::bigint, sum(x.cost)
        FROM (SELECT r.team_id, r.model, r.decision, r.request_count AS n, r.total_input_tokens AS tin,
                     r.total_output_tokens AS tout, r.total_cost AS cost
              FROM kt_governance_internal.kt_rollup_spend_hourly r
              WHERE r.bucket >= $1 AND r.bucket < $2 AND r.bucket <> ALL ($3)
              UNION ALL
              SELECT e.team_id, e.model, e.decision, 1, e.input_tokens, e.output_tokens, e.cost_usd
              FROM unnest($3) h(hour)
              JOIN %s e ON e."timestamp" >= h.hour AND e."timestamp" < h.hour + interval '1 hour'
              WHERE e."timestamp" >= $1 AND e."timestamp" < $2) x
        GROUP BY x.team_id, x.model, x.decision$q$, '@extschema@.ai_decision_events'::regclass)
    USING day, day + interval '24 hours', dirty;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_live_spend_day(timestamptz) IS 'Internal: spend rows of one UTC day per (team_id, model, decision): its clean hours from kt_rollup_spend_hourly, its dirty hours from raw rows (planned with the day as a constant). Runs with the caller''s rights.';

CREATE FUNCTION kt_governance_internal.kt_visible_spend_daily()
RETURNS TABLE (day timestamptz, team_id text, model text, decision text, request_count bigint,
               total_input_tokens bigint, total_output_tokens bigint, total_cost numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
BEGIN
    RETURN QUERY
    SELECT date_trunc('day', e."timestamp", 'UTC'), e.team_id, e.model, e.decision, count(*),
           sum(e.input_tokens)::bigint, sum(e.output_tokens)::bigint, sum(e.cost_usd)
    FROM @extschema@.ai_decision_events e
    GROUP BY 1, 2, 3, 4;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_visible_spend_daily() IS 'Internal: every governance_spend_daily row computed from the raw rows the caller may see, for a caller limited by row-level security.';

CREATE VIEW governance_spend_daily WITH (security_invoker = true) AS
SELECT p.day, coalesce(p.team_id, 'unassigned'::text) AS team, p.model, p.decision,
       sum(p.request_count)::bigint AS request_count, sum(p.total_input_tokens)::bigint AS total_input_tokens,
       sum(p.total_output_tokens)::bigint AS total_output_tokens, sum(p.total_cost) AS total_cost_usd
FROM (
    SELECT r.bucket AS day, r.team_id, r.model, r.decision, r.request_count, r.total_input_tokens,
           r.total_output_tokens, r.total_cost
    FROM kt_governance_internal.kt_rollup_spend_daily r
    WHERE NOT (SELECT kt_governance_internal.kt_rls_applies())
      AND NOT EXISTS (SELECT FROM kt_governance_internal.kt_dirty_hours d
                      WHERE d.bucket >= r.bucket AND d.bucket < r.bucket + interval '24 hours'
                        AND d.bucket >= (SELECT kt_governance_internal.kt_frozen_before()))
    UNION ALL
    SELECT d.day, s.team_id, s.model, s.decision, s.request_count, s.total_input_tokens,
           s.total_output_tokens, s.total_cost
    FROM (SELECT DISTINCT date_trunc('day'::text, bucket, 'UTC'::text) AS day FROM kt_governance_internal.kt_dirty_hours
          WHERE bucket >= (SELECT kt_governance_internal.kt_frozen_before())
            AND NOT (SELECT kt_governance_internal.kt_rls_applies())) d
    CROSS JOIN LATERAL kt_governance_internal.kt_live_spend_day(d.day) s
    UNION ALL
    SELECT v.* FROM kt_governance_internal.kt_visible_spend_daily() v
    WHERE (SELECT kt_governance_internal.kt_rls_applies())
) p
GROUP BY p.day, coalesce(p.team_id, 'unassigned'::text), p.model, p.decision;

COMMENT ON VIEW governance_spend_daily IS 'Spend per UTC day, team, model and decision (the document''s spend query at a daily grain, every decision), always exact: clean days from kt_rollup_spend_daily, days changed since the last refresh from their clean hours'' rollup rows plus their changed hours'' raw rows; for a caller limited by row-level security, from the rows it may see. The document''s 30-day spend is SELECT team, model, sum(request_count), ... WHERE day >= ... AND decision = ''allowed'' GROUP BY team, model. Filter on day to use the rollup''s key.';

COMMENT ON COLUMN governance_spend_daily.day IS 'Start of the UTC day.';

COMMENT ON COLUMN governance_spend_daily.team IS 'team_id, ''unassigned'' when NULL (as the document''s query).';

COMMENT ON COLUMN governance_spend_daily.model IS 'Model.';

COMMENT ON COLUMN governance_spend_daily.decision IS 'Decision: allowed, blocked, escalated or redacted.';

COMMENT ON COLUMN governance_spend_daily.request_count IS 'Events.';

COMMENT ON COLUMN governance_spend_daily.total_input_tokens IS 'SUM(input_tokens).';

COMMENT ON COLUMN governance_spend_daily.total_output_tokens IS 'SUM(output_tokens).';

COMMENT ON COLUMN governance_spend_daily.total_cost_usd IS 'SUM(cost_usd).';

GRANT SELECT ON governance_spend_daily TO kt_governance_reader;
