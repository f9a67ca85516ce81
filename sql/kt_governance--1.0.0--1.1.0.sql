-- kt_governance 1.0.0 -> 1.1.0 (ALTER EXTENSION kt_governance UPDATE TO '1.1.0')
--
-- Reports check their arguments one way (a finite start_time, no -infinity end_time, known
-- decisions, known zones with a hint); UTC days are 24 hours whatever the session TimeZone
-- (1.0.0 added '1 day', a calendar day of the session's zone: 23 or 25 hours across a DST
-- change); governance_metrics_hourly plans no events partition and gains exact p90/p95; new view
-- governance_spend_daily; a policy rollup behind kt_policy_effectiveness and the new views
-- governance_policy_hourly and governance_anomalies_hourly; a summary rollup keyed by every
-- dimension behind the summary's filters and the new view governance_summary_daily. pgrx-tests/e2e/upgrade.sh compares a database updated with this script
-- with a fresh 1.1.0 install, catalog by catalog.
\echo Use "ALTER EXTENSION kt_governance UPDATE TO '1.1.0'" to load this file. \quit
SET search_path = @extschema@, kt_governance_internal, kt_governance_partitions;

-- summary rollup (1.1.0): every dimension the summary filters by, hourly and daily; made
-- first, as kt_rebuild_spend_days (called below) fills the daily one
-- The finest grain of the events' rollups, every dimension reports filter by: behind the
-- summary's gateway / team / model filters and governance_summary_daily. Its daily table is
-- always the sum of the hourly rows over the UTC day (rebuilt with the spend days).
CREATE TABLE kt_governance_internal.kt_rollup_summary_hourly (
    bucket              timestamptz NOT NULL,
    gateway_id          text        NOT NULL,
    team_id             text,
    model               text        NOT NULL,
    decision            text        NOT NULL,
    event_count         bigint      NOT NULL,
    total_cost          numeric,
    total_input_tokens  bigint      NOT NULL,
    total_output_tokens bigint      NOT NULL,
    latency_sum         bigint,
    latency_count       bigint      NOT NULL,
    CONSTRAINT kt_rollup_summary_hourly_key UNIQUE NULLS NOT DISTINCT (bucket, gateway_id, team_id, model, decision)
);
COMMENT ON TABLE kt_rollup_summary_hourly IS 'Hourly rollup per (UTC hour, gateway_id, team_id, model, decision): every dimension the summary filters by. Behind kt_governance_summary() with gateway_id / team_id / model filters and governance_summary_daily.';
CREATE TABLE kt_governance_internal.kt_rollup_summary_daily (LIKE kt_governance_internal.kt_rollup_summary_hourly,
    CONSTRAINT kt_rollup_summary_daily_key UNIQUE NULLS NOT DISTINCT (bucket, gateway_id, team_id, model, decision));
COMMENT ON TABLE kt_rollup_summary_daily IS 'Daily rollup per (UTC day, gateway_id, team_id, model, decision): kt_rollup_summary_hourly summed over each UTC day, behind governance_summary_daily.';
COMMENT ON COLUMN kt_rollup_summary_hourly.bucket IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_rollup_summary_hourly.gateway_id IS 'Gateway.';
COMMENT ON COLUMN kt_rollup_summary_hourly.team_id IS 'Team (NULL kept as NULL).';
COMMENT ON COLUMN kt_rollup_summary_hourly.model IS 'Model.';
COMMENT ON COLUMN kt_rollup_summary_hourly.decision IS 'Decision.';
COMMENT ON COLUMN kt_rollup_summary_hourly.event_count IS 'Events.';
COMMENT ON COLUMN kt_rollup_summary_hourly.total_cost IS 'SUM(cost_usd); NULL when every cost was NULL.';
COMMENT ON COLUMN kt_rollup_summary_hourly.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN kt_rollup_summary_hourly.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN kt_rollup_summary_hourly.latency_sum IS 'SUM(latency_ms); NULL when no latency was known.';
COMMENT ON COLUMN kt_rollup_summary_hourly.latency_count IS 'COUNT(latency_ms).';
COMMENT ON COLUMN kt_rollup_summary_daily.bucket IS 'Start of the UTC day.';
COMMENT ON COLUMN kt_rollup_summary_daily.gateway_id IS 'Gateway.';
COMMENT ON COLUMN kt_rollup_summary_daily.team_id IS 'Team (NULL kept as NULL).';
COMMENT ON COLUMN kt_rollup_summary_daily.model IS 'Model.';
COMMENT ON COLUMN kt_rollup_summary_daily.decision IS 'Decision.';
COMMENT ON COLUMN kt_rollup_summary_daily.event_count IS 'Events.';
COMMENT ON COLUMN kt_rollup_summary_daily.total_cost IS 'SUM(cost_usd); NULL when every cost was NULL.';
COMMENT ON COLUMN kt_rollup_summary_daily.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN kt_rollup_summary_daily.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN kt_rollup_summary_daily.latency_sum IS 'SUM(latency_ms); NULL when no latency was known.';
COMMENT ON COLUMN kt_rollup_summary_daily.latency_count IS 'COUNT(latency_ms).';

SELECT pg_catalog.pg_extension_config_dump('kt_rollup_summary_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_summary_daily', '');
CREATE TRIGGER kt_recompute_written_hours AFTER INSERT ON kt_governance_internal.kt_rollup_summary_hourly
    REFERENCING NEW TABLE AS written_rows FOR EACH STATEMENT
    WHEN (current_setting('kt_governance.track_changes', true) IS DISTINCT FROM 'off')
    EXECUTE FUNCTION kt_governance_internal.kt_recompute_written_hours();
-- the summary in zones that are not whole hours from UTC: only the hours holding a midnight
-- of the zone are read row by row
-- The UTC hours in [first_hour, end_hour) inside which a day of the zone begins (not at the
-- hour's start): one a day in Asia/Kolkata (18:30 UTC), none in a zone whole hours from UTC.
-- An open end stops after the newest hour holding data.
CREATE FUNCTION kt_governance_internal.kt_straddling_hours(zone text, first_hour timestamptz, end_hour timestamptz)
RETURNS timestamptz[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    WITH bounds AS (
        SELECT first_hour AS lo,
               least(end_hour, greatest((SELECT max(bucket) FROM kt_rollup_decisions_hourly),
                                        (SELECT max(bucket) FROM kt_dirty_hours), first_hour) + interval '1 hour') AS hi
    ), midnights AS (
        SELECT (d::date::timestamp AT TIME ZONE zone) AS m
        FROM bounds, generate_series((lo AT TIME ZONE zone)::date::timestamp, (hi AT TIME ZONE zone)::date::timestamp + interval '1 day',
                                     interval '1 day') d
    )
    SELECT coalesce(array_agg(DISTINCT date_trunc('hour', m, 'UTC') ORDER BY date_trunc('hour', m, 'UTC')), '{}')
    FROM midnights, bounds
    WHERE date_trunc('hour', m, 'UTC') <> m AND date_trunc('hour', m, 'UTC') >= lo AND date_trunc('hour', m, 'UTC') < hi
      -- hours retention removed are read from the rollups (their raw rows are gone)
      AND date_trunc('hour', m, 'UTC') >= kt_frozen_before()
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_straddling_hours(text, timestamptz, timestamptz) IS 'Internal: the UTC hours in [first_hour, end_hour), at or after kt_frozen_before(), inside which a day of the zone begins (empty for zones whole hours from UTC); an open end stops after the newest hour holding data.';

-- the dirty hours' sums take the summary's filters
DROP FUNCTION kt_governance_internal.kt_dirty_hour_decisions(timestamptz[], timestamptz, timestamptz);
CREATE FUNCTION kt_governance_internal.kt_dirty_hour_decisions(
    dirty_hours timestamptz[],
    dirty_start timestamptz,
    dirty_end timestamptz,
    gateway_id text DEFAULT NULL,
    team_id text DEFAULT NULL,
    model text DEFAULT NULL)
RETURNS TABLE (hour timestamptz, decision text, events bigint, cost numeric, tokens bigint,
               latency_sum bigint, latency_count bigint)
LANGUAGE sql STABLE
AS $fn$
    SELECT h.hour, x.decision, count(*), sum(x.cost_usd), sum(x.input_tokens + x.output_tokens)::bigint,
           sum(x.latency_ms)::bigint, count(x.latency_ms)
    FROM unnest(dirty_hours) h(hour)
    CROSS JOIN LATERAL (SELECT y.decision, y.cost_usd, y.input_tokens, y.output_tokens, y.latency_ms
                        FROM @extschema@.ai_decision_events y
                        WHERE y."timestamp" >= h.hour AND y."timestamp" < h.hour + interval '1 hour'
                          AND y."timestamp" >= dirty_start AND y."timestamp" < dirty_end
                          AND (kt_dirty_hour_decisions.gateway_id IS NULL OR y.gateway_id = kt_dirty_hour_decisions.gateway_id)
                          AND (kt_dirty_hour_decisions.team_id IS NULL OR y.team_id = kt_dirty_hour_decisions.team_id)
                          AND (kt_dirty_hour_decisions.model IS NULL OR y.model = kt_dirty_hour_decisions.model)
                        OFFSET 0) x
    GROUP BY h.hour, x.decision
$fn$;
COMMENT ON FUNCTION kt_dirty_hour_decisions(timestamptz[], timestamptz, timestamptz, text, text, text) IS 'Internal: events, cost, tokens and latency sums per (dirty UTC hour, decision) of the events matching the filters given (NULL: any), reading each hour by its own index range; the hours as kt_raw_ranges() returns them. Runs with the caller''s rights.';


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
    filtered boolean;
    -- whole UTC days inside the window, and whether they are days of the zone too (its offset
    -- is 0 at each of their midnights): then the filtered summary reads their daily rows
    days record := kt_rollup_hours(whole.first_hour, whole.end_hour, 'day');
    -- (an open window's days are read up to two days ahead, later hours from the hourly rollup)
    days_end timestamptz := CASE WHEN isfinite(days.end_hour) THEN days.end_hour
                                 ELSE date_trunc('day', now(), 'UTC') + interval '48 hours' END;
    utc_days boolean := false;
    dirty_days timestamptz[];
    raw record;
    -- the partial edge ranges summed per decision (edge_*), or the head range read row by row
    edge_head_start timestamptz;
    edge_head_end timestamptz;
    edge_tail_start timestamptz;
    edge_tail_end timestamptz;
    row_head_start timestamptz;
    row_head_end timestamptz;
    row_tail_start timestamptz;
    row_tail_end timestamptz;
    -- In a zone that is not a whole number of hours from UTC (Asia/Kolkata) a day starts inside
    -- a UTC hour: those hours (one a day) are read row by row, every other hour from the rollups
    whole_hours_zone boolean;
    straddling timestamptz[] := '{}';
    straddling_start timestamptz;
    straddling_end timestamptz;
    dirty_hours timestamptz[];
BEGIN
    PERFORM kt_check_zone(zone);
    -- UTC hours only make days of zones that are whole hours from UTC; otherwise everything is
    -- read from raw rows. Without filters the narrow decisions rollup serves; with any, the
    -- rollup keyed by every dimension (kt_rollup_summary_hourly).
    whole_hours_zone := kt_zone_has_whole_hours(zone, w.window_start, w.window_end);
    use_rollups := NOT kt_rls_applies();
    IF use_rollups AND NOT whole_hours_zone AND whole.first_hour < whole.end_hour THEN
        straddling := kt_straddling_hours(zone, whole.first_hour, whole.end_hour);
        straddling_start := straddling[1];
        straddling_end := straddling[cardinality(straddling)] + interval '1 hour';
    END IF;
    filtered := f_gateway IS NOT NULL OR f_team IS NOT NULL OR f_model IS NOT NULL;
    utc_days := use_rollups AND filtered AND days.first_hour < days_end
                AND days_end - days.first_hour <= interval '3660 days'
                AND (SELECT bool_and(d AT TIME ZONE zone = d AT TIME ZONE 'UTC')
                     FROM generate_series(days.first_hour, days_end, interval '24 hours') d);
    IF utc_days THEN
        dirty_days := ARRAY(SELECT DISTINCT date_trunc('day', d.bucket, 'UTC') FROM kt_dirty_hours d
                            WHERE d.bucket >= frozen);
    END IF;
    raw := kt_raw_ranges(w.window_start, w.window_end, use_rollups, frozen);
    -- (a dirty hour that straddles a midnight is read row by row with the straddling ones)
    dirty_hours := ARRAY(SELECT unnest(raw.dirty_hours) EXCEPT SELECT unnest(straddling));
    -- With rollups, each partial edge range lies inside one UTC hour, hence inside one day of
    -- the zone: its rows are summed per decision and dated by the range's start, without a
    -- date_trunc per row (the first hour's rows were most of the call). Otherwise the head
    -- range is the whole window (or spans two hours) and is summed row by row.
    IF use_rollups AND whole.first_hour < whole.end_hour AND whole_hours_zone THEN
        edge_head_start := raw.head_start;
        edge_head_end := raw.head_end;
        edge_tail_start := raw.tail_start;
        edge_tail_end := raw.tail_end;
    ELSIF use_rollups AND whole.first_hour < whole.end_hour THEN
        -- (an edge hour may straddle a midnight of the zone too)
        row_head_start := raw.head_start;
        row_head_end := raw.head_end;
        row_tail_start := raw.tail_start;
        row_tail_end := raw.tail_end;
    ELSE
        row_head_start := raw.head_start;
        row_head_end := raw.head_end;
    END IF;
    RETURN QUERY
    WITH parts AS (
        SELECT r.bucket AS ts, r.decision AS dec, r.event_count AS n, r.total_cost AS cost,
               r.total_tokens AS tokens, r.latency_sum AS lat_sum, r.latency_count AS lat_n
        FROM kt_rollup_decisions_hourly r
        WHERE use_rollups AND NOT filtered AND r.bucket >= whole.first_hour AND r.bucket < whole.end_hour
          AND r.bucket <> ALL (straddling)
          -- written out rather than a helper: PostgreSQL does not inline a scalar SQL function
          -- whose body has a subquery, and a call per rollup row made these reports 3-4x slower
          AND NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = r.bucket
                          AND d.bucket >= frozen)
        UNION ALL
        -- with filters, as the spend report: whole clean UTC days (when they are the zone's
        -- days) from the daily rollup keyed by every dimension, the other whole hours from the
        -- hourly one
        SELECT r.bucket, r.decision, r.event_count, r.total_cost, r.total_input_tokens + r.total_output_tokens,
               r.latency_sum, r.latency_count
        FROM kt_rollup_summary_daily r
        WHERE utc_days AND r.bucket >= days.first_hour AND r.bucket < days_end
          AND r.bucket <> ALL (dirty_days)
          AND (f_gateway IS NULL OR r.gateway_id = f_gateway)
          AND (f_team IS NULL OR r.team_id = f_team)
          AND (f_model IS NULL OR r.model = f_model)
        UNION ALL
        SELECT r.bucket, r.decision, r.event_count, r.total_cost, r.total_input_tokens + r.total_output_tokens,
               r.latency_sum, r.latency_count
        FROM (SELECT * FROM kt_live_ranges(whole.first_hour, CASE WHEN utc_days THEN days_end ELSE whole.end_hour END,
                                           utc_days, 'day')
              UNION ALL
              SELECT days_end, whole.end_hour WHERE utc_days AND days_end < whole.end_hour) hourly
        -- (an index range scan per range, as in kt_spend_by_team_model)
        CROSS JOIN LATERAL (SELECT * FROM kt_rollup_summary_hourly x
                            WHERE x.bucket >= hourly.range_start AND x.bucket < hourly.range_end
                            OFFSET 0) r
        WHERE use_rollups AND filtered AND r.bucket <> ALL (straddling)
          AND (f_gateway IS NULL OR r.gateway_id = f_gateway)
          AND (f_team IS NULL OR r.team_id = f_team)
          AND (f_model IS NULL OR r.model = f_model)
          AND NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = r.bucket
                          AND d.bucket >= frozen)
        UNION ALL
        SELECT edge_head_start, e.decision, count(*), sum(e.cost_usd), sum(e.input_tokens + e.output_tokens)::bigint,
               sum(e.latency_ms)::bigint, count(e.latency_ms)
        FROM kt_raw_events(edge_head_start, edge_head_end) e
        WHERE (f_gateway IS NULL OR e.gateway_id = f_gateway)
          AND (f_team IS NULL OR e.team_id = f_team)
          AND (f_model IS NULL OR e.model = f_model)
        GROUP BY e.decision
        UNION ALL
        SELECT edge_tail_start, e.decision, count(*), sum(e.cost_usd), sum(e.input_tokens + e.output_tokens)::bigint,
               sum(e.latency_ms)::bigint, count(e.latency_ms)
        FROM kt_raw_events(edge_tail_start, edge_tail_end) e
        WHERE (f_gateway IS NULL OR e.gateway_id = f_gateway)
          AND (f_team IS NULL OR e.team_id = f_team)
          AND (f_model IS NULL OR e.model = f_model)
        GROUP BY e.decision
        UNION ALL
        -- dirty hours (only with rollups): summed per hour and decision, each hour dated by its
        -- start like the edges
        SELECT d.hour, d.decision, d.events, d.cost, d.tokens, d.latency_sum, d.latency_count
        FROM kt_dirty_hour_decisions(dirty_hours, raw.dirty_start, raw.dirty_end, f_gateway, f_team, f_model) d
        UNION ALL
        SELECT e."timestamp", e.decision, 1::bigint, e.cost_usd, (e.input_tokens + e.output_tokens)::bigint,
               e.latency_ms::bigint, (e.latency_ms IS NOT NULL)::int::bigint
        FROM kt_raw_events(row_head_start, row_head_end, row_tail_start, row_tail_end,
                           straddling, straddling_start, straddling_end) e
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
COMMENT ON FUNCTION kt_governance_summary(interval, timestamptz, timestamptz, text, text, text, text) IS 'Daily governance summary per decision: events, cost, average latency (over non-null latencies), tokens. Whole refreshed hours come from kt_rollup_decisions_hourly (with a gateway_id, team_id or model filter from kt_rollup_summary_daily / _hourly), edge and dirty hours from raw rows; in zones that are not whole hours from UTC, the UTC hours holding a midnight of the zone are read from raw rows too. Defaults reproduce the document''s query: the last 30 days, days in the session TimeZone. start_time/end_time select an explicit range; tz buckets days in another zone; gateway_id, team_id and model filter.';

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
    DELETE FROM kt_rollup_summary_daily WHERE bucket = ANY (days);
    INSERT INTO kt_rollup_summary_daily
    SELECT d, r.gateway_id, r.team_id, r.model, r.decision, sum(r.event_count)::bigint, sum(r.total_cost),
           sum(r.total_input_tokens)::bigint, sum(r.total_output_tokens)::bigint, sum(r.latency_sum)::bigint,
           sum(r.latency_count)::bigint
    FROM unnest(days) d
    JOIN kt_rollup_summary_hourly r ON r.bucket >= d AND r.bucket < d + interval '24 hours'
    GROUP BY 1, 2, 3, 4, 5;
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION kt_rebuild_spend_days(timestamptz[]) IS 'Internal: recomputes the kt_rollup_spend_daily and kt_rollup_summary_daily rows of the UTC days containing the given instants from their hourly rollups; returns the spend rows written.';

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

-- The days holding a dirty hour, per every dimension the summary filters by (behind both daily
-- views: spend sums these rows over gateways): the clean hours from the hourly rollup, the dirty
-- hours from raw rows.
CREATE FUNCTION kt_governance_internal.kt_live_summary_day(day timestamptz)
RETURNS TABLE (gateway_id text, team_id text, model text, decision text, event_count bigint, total_cost numeric,
               total_input_tokens bigint, total_output_tokens bigint, latency_sum bigint, latency_count bigint)
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
    RETURN QUERY EXECUTE format($q$
        SELECT x.gateway_id, x.team_id, x.model, x.decision, sum(x.n)::bigint, sum(x.cost), sum(x.tin)::bigint,
               sum(x.tout)::bigint, sum(x.lat_sum)::bigint, sum(x.lat_n)::bigint
        FROM (SELECT r.gateway_id, r.team_id, r.model, r.decision, r.event_count AS n, r.total_cost AS cost,
                     r.total_input_tokens AS tin, r.total_output_tokens AS tout, r.latency_sum AS lat_sum,
                     r.latency_count AS lat_n
              FROM kt_governance_internal.kt_rollup_summary_hourly r
              WHERE r.bucket >= $1 AND r.bucket < $2 AND r.bucket <> ALL ($3)
              UNION ALL
              SELECT e.gateway_id, e.team_id, e.model, e.decision, 1, e.cost_usd, e.input_tokens, e.output_tokens,
                     e.latency_ms, (e.latency_ms IS NOT NULL)::int
              FROM unnest($3) h(hour)
              JOIN %s e ON e."timestamp" >= h.hour AND e."timestamp" < h.hour + interval '1 hour'
              WHERE e."timestamp" >= $1 AND e."timestamp" < $2) x
        GROUP BY x.gateway_id, x.team_id, x.model, x.decision$q$, '@extschema@.ai_decision_events'::regclass)
    USING day, day + interval '24 hours', dirty;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_live_summary_day(timestamptz) IS 'Internal: summary rows of one UTC day per (gateway_id, team_id, model, decision): its clean hours from kt_rollup_summary_hourly, its dirty hours from raw rows (planned with the day as a constant). Runs with the caller''s rights.';

CREATE FUNCTION kt_governance_internal.kt_visible_summary_daily()
RETURNS TABLE (day timestamptz, gateway_id text, team_id text, model text, decision text, event_count bigint,
               total_cost numeric, total_input_tokens bigint, total_output_tokens bigint, latency_sum bigint,
               latency_count bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
BEGIN
    RETURN QUERY
    SELECT date_trunc('day', e."timestamp", 'UTC'), e.gateway_id, e.team_id, e.model, e.decision, count(*),
           sum(e.cost_usd), sum(e.input_tokens)::bigint, sum(e.output_tokens)::bigint, sum(e.latency_ms)::bigint,
           count(e.latency_ms)
    FROM @extschema@.ai_decision_events e
    GROUP BY 1, 2, 3, 4, 5;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_visible_summary_daily() IS 'Internal: every governance_summary_daily row computed from the raw rows the caller may see, for a caller limited by row-level security.';

-- (names schema-qualified, literals typed: see governance_metrics_hourly)
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
    -- (the summary's rows of the day, summed over gateways by the GROUP BY below)
    SELECT d.day, s.team_id, s.model, s.decision, s.event_count, s.total_input_tokens,
           s.total_output_tokens, s.total_cost
    FROM (SELECT DISTINCT date_trunc('day'::text, bucket, 'UTC'::text) AS day FROM kt_governance_internal.kt_dirty_hours
          WHERE bucket >= (SELECT kt_governance_internal.kt_frozen_before())
            AND NOT (SELECT kt_governance_internal.kt_rls_applies())) d
    CROSS JOIN LATERAL kt_governance_internal.kt_live_summary_day(d.day) s
    UNION ALL
    SELECT v.day, v.team_id, v.model, v.decision, v.event_count, v.total_input_tokens, v.total_output_tokens, v.total_cost
    FROM kt_governance_internal.kt_visible_summary_daily() v
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

-- policy rollup (1.1.0): evaluations mark the hour of their event_timestamp dirty and sum
-- inserted evaluations per transaction; the refresh merges or recomputes kt_rollup_policy_hourly
-- Policy evaluations per hour of their event's time, policy and result: behind
-- kt_policy_effectiveness() and governance_policy_hourly. Evaluations mark the hour of their
-- event_timestamp dirty like events do (one mark table: a dirty hour is stale in every rollup),
-- and inserted evaluations are summed per transaction into kt_policy_deltas.
CREATE TABLE kt_governance_internal.kt_rollup_policy_hourly (
    bucket           timestamptz NOT NULL,
    policy_name      text        NOT NULL,
    result           text        NOT NULL,
    evaluation_count bigint      NOT NULL,
    latency_sum      bigint,
    latency_count    bigint      NOT NULL,
    PRIMARY KEY (bucket, policy_name, result)
);
COMMENT ON TABLE kt_rollup_policy_hourly IS 'Hourly rollup per (UTC hour of event_timestamp, policy_name, result) of policy_evaluations, behind kt_policy_effectiveness() and governance_policy_hourly.';
COMMENT ON COLUMN kt_rollup_policy_hourly.bucket IS 'Start of the UTC hour of the evaluated events'' "timestamp".';
COMMENT ON COLUMN kt_rollup_policy_hourly.policy_name IS 'Policy.';
COMMENT ON COLUMN kt_rollup_policy_hourly.result IS 'Result: pass, block, redact, flag or escalate.';
COMMENT ON COLUMN kt_rollup_policy_hourly.evaluation_count IS 'Evaluations.';
COMMENT ON COLUMN kt_rollup_policy_hourly.latency_sum IS 'SUM(latency_ms); NULL when no latency was known.';
COMMENT ON COLUMN kt_rollup_policy_hourly.latency_count IS 'COUNT(latency_ms).';

-- Inserted evaluations summed per writing transaction (src/deltas.rs), like kt_rollup_deltas.
CREATE TABLE kt_governance_internal.kt_policy_deltas (
    bucket           timestamptz NOT NULL,
    policy_name      text        NOT NULL,
    result           text        NOT NULL,
    evaluation_count bigint      NOT NULL,
    latency_sum      bigint,
    latency_count    bigint      NOT NULL
);
CREATE INDEX kt_policy_deltas_bucket_idx ON kt_policy_deltas (bucket);
COMMENT ON TABLE kt_policy_deltas IS 'Evaluations inserted since the last kt_refresh_metrics(), summed per writing transaction and (UTC hour of event_timestamp, policy_name, result); kt_refresh_metrics() merges them into kt_rollup_policy_hourly and deletes them.';
COMMENT ON COLUMN kt_policy_deltas.bucket IS 'Start of the UTC hour of the evaluated events'' "timestamp".';
COMMENT ON COLUMN kt_policy_deltas.policy_name IS 'Policy.';
COMMENT ON COLUMN kt_policy_deltas.result IS 'Result.';
COMMENT ON COLUMN kt_policy_deltas.evaluation_count IS 'Evaluations inserted.';
COMMENT ON COLUMN kt_policy_deltas.latency_sum IS 'SUM(latency_ms); NULL when no latency was known.';
COMMENT ON COLUMN kt_policy_deltas.latency_count IS 'COUNT(latency_ms).';
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_policy_hourly', '');
CREATE TRIGGER kt_recompute_written_hours AFTER INSERT ON kt_rollup_policy_hourly
    REFERENCING NEW TABLE AS written_rows FOR EACH STATEMENT
    WHEN (current_setting('kt_governance.track_changes', true) IS DISTINCT FROM 'off')
    EXECUTE FUNCTION kt_recompute_written_hours();
-- (as on ai_decision_events: the statement's dirty hours written at its end)
CREATE TRIGGER kt_flush_dirty_hours
    AFTER INSERT OR UPDATE OR DELETE ON policy_evaluations
    FOR EACH STATEMENT EXECUTE FUNCTION kt_governance_internal.kt_flush_dirty_hours();
COMMENT ON FUNCTION kt_count_evaluations() IS 'Row trigger: counts inserted and deleted evaluations per hour of event_timestamp in backend memory and appends the counts to kt_row_counts just before commit (events are counted by kt_mark_dirty_hours); notes those hours dirty for the policy rollup and sums inserted evaluations into the transaction''s kt_policy_deltas.';
-- A set of UTC hours as the runs of consecutive hours they form. Evaluations have no index on
-- event_timestamp (the document's keys only): one range per run reads each partition once,
-- where one range per hour read a daily partition 24 times (a first refresh after a bulk load
-- took 106 s against 5 s at 1M events). Inlined like kt_raw_events.
CREATE FUNCTION kt_governance_internal.kt_hour_runs(hours timestamptz[])
RETURNS TABLE (run_start timestamptz, run_end timestamptz)
LANGUAGE sql IMMUTABLE
AS $fn$
    SELECT min(h), max(h) + interval '1 hour'
    FROM (SELECT h, h - row_number() OVER (ORDER BY h) * interval '1 hour' AS run
          FROM (SELECT DISTINCT h FROM unnest(hours) h) d) x
    GROUP BY run
$fn$;
COMMENT ON FUNCTION kt_hour_runs(timestamptz[]) IS 'Internal: the runs of consecutive UTC hours in a set of hours, as [run_start, run_end) ranges.';

-- The evaluations of the same ranges, by the hour of their event's time (as kt_raw_events).
CREATE OR REPLACE FUNCTION kt_governance_internal.kt_raw_evaluations(
    head_start timestamptz,
    head_end timestamptz,
    tail_start timestamptz DEFAULT NULL,
    tail_end timestamptz DEFAULT NULL,
    dirty_hours timestamptz[] DEFAULT NULL,
    dirty_start timestamptz DEFAULT NULL,
    dirty_end timestamptz DEFAULT NULL,
    through_events boolean DEFAULT false)
RETURNS SETOF policy_evaluations
LANGUAGE sql STABLE
AS $fn$
    SELECT x.* FROM @extschema@.policy_evaluations x
    WHERE NOT through_events AND x.event_timestamp >= head_start AND x.event_timestamp < head_end
    UNION ALL
    SELECT x.* FROM @extschema@.policy_evaluations x
    WHERE NOT through_events AND x.event_timestamp >= tail_start AND x.event_timestamp < tail_end
    UNION ALL
    -- (one range per run of dirty hours: see kt_hour_runs)
    SELECT x.* FROM kt_governance_internal.kt_hour_runs(dirty_hours) h
    CROSS JOIN LATERAL (SELECT y.* FROM @extschema@.policy_evaluations y
                        WHERE NOT through_events AND y.event_timestamp >= h.run_start AND y.event_timestamp < h.run_end
                          AND y.event_timestamp >= dirty_start AND y.event_timestamp < dirty_end
                        OFFSET 0) x
    UNION ALL
    SELECT x.* FROM kt_governance_internal.kt_raw_events(head_start, head_end, tail_start, tail_end,
                                                         dirty_hours, dirty_start, dirty_end) e
    JOIN @extschema@.policy_evaluations x ON x.event_id = e.id AND x.event_timestamp = e."timestamp"
    WHERE through_events
      -- (the bounds again, so the planner prunes the evaluations' partitions too)
      AND x.event_timestamp >= least(head_start, tail_start, dirty_start)
      AND x.event_timestamp < greatest(head_end, tail_end, dirty_end)
$fn$;
COMMENT ON FUNCTION kt_raw_evaluations(timestamptz, timestamptz, timestamptz, timestamptz, timestamptz[], timestamptz, timestamptz, boolean) IS 'Internal: the policy evaluations whose event_timestamp is in [head_start, head_end), in [tail_start, tail_end) or in the UTC hours listed in dirty_hours, as kt_raw_ranges() returns them; NULL bounds select nothing. through_events: found through their events (index reads; only for callers no row-level security policy limits). Runs with the caller''s rights.';
CREATE OR REPLACE FUNCTION kt_governance_internal.kt_recompute_hours(hours timestamptz[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
SET jit = off
SET enable_sort = off
SET kt_governance.track_changes = off
AS $fn$
DECLARE
    written bigint;
    run record;
BEGIN
    DELETE FROM kt_rollup_metrics_hourly WHERE bucket = ANY (hours);
    DELETE FROM kt_rollup_decisions_hourly WHERE bucket = ANY (hours);
    DELETE FROM kt_rollup_spend_hourly WHERE bucket = ANY (hours);
    DELETE FROM kt_rollup_policy_hourly WHERE bucket = ANY (hours);
    DELETE FROM kt_rollup_summary_hourly WHERE bucket = ANY (hours);

    -- One read of the hours' rows, aggregated by hashing (no sort of every row): sums at the
    -- finest grain the rollups need, which the three rollups are summed from, and each
    -- (hour, gateway, model)'s latencies, whose exact percentiles, sketch and histogram come
    -- from kt_latency_rollup. Group keys compare in "C": equality is byte equality in every
    -- deterministic collation, so the groups are the same and hashing them is cheaper.
    WITH dropped_deltas AS (
        DELETE FROM kt_rollup_deltas WHERE bucket = ANY (hours)
    ), dropped_histograms AS (
        DELETE FROM kt_latency_deltas WHERE bucket = ANY (hours)
    ), raw AS MATERIALIZED (
        SELECT h AS bucket, e.gateway_id COLLATE "C" AS gateway_id, e.model COLLATE "C" AS model,
               e.team_id COLLATE "C" AS team_id, e.decision COLLATE "C" AS decision, e.cost_usd,
               e.input_tokens, e.output_tokens, e.latency_ms
        FROM unnest(hours) h
        JOIN @extschema@.ai_decision_events e ON e."timestamp" >= h AND e."timestamp" < h + interval '1 hour'
    ), fine AS MATERIALIZED (
        SELECT r.bucket, r.gateway_id, r.model, r.team_id, r.decision, count(*) AS n, sum(r.cost_usd) AS cost,
               sum(r.input_tokens) AS tin, sum(r.output_tokens) AS tout,
               sum(r.latency_ms) AS lat_sum, count(r.latency_ms) AS lat_n
        FROM raw r GROUP BY 1, 2, 3, 4, 5
    ), latencies AS (
        SELECT r.bucket, r.gateway_id, r.model, array_agg(r.latency_ms) AS lats
        FROM raw r GROUP BY 1, 2, 3
    ), by_model AS (
        -- (the same sums as in kt_merge_deltas)
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
               m.cost, m.tin, m.tout, m.lat_sum, m.lat_n, s.p50, s.p99, s.sketch, s.histogram
        FROM by_model m
        JOIN latencies l USING (bucket, gateway_id, model)
        LEFT JOIN LATERAL kt_latency_rollup(l.lats) s ON true
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
    ), summary AS (
        INSERT INTO kt_rollup_summary_hourly
        SELECT f.bucket, f.gateway_id, f.team_id, f.model, f.decision, f.n, f.cost, f.tin, f.tout,
               f.lat_sum, f.lat_n
        FROM fine f
    )
    SELECT count(*) INTO written FROM metrics;

    -- the evaluations of the hours, one run of consecutive hours at a time (evaluations have no
    -- index on event_timestamp: each run is one scan of the partitions it overlaps, planned with
    -- its bounds; one join over every run scanned a whole partition's key index per run). Each
    -- run's deltas are dropped in the statement that reads its rows (one snapshot).
    FOR run IN SELECT * FROM kt_hour_runs(hours) LOOP
        WITH dropped_policy_deltas AS (
            DELETE FROM kt_policy_deltas WHERE bucket >= run.run_start AND bucket < run.run_end
        )
        INSERT INTO kt_rollup_policy_hourly
        SELECT date_trunc('hour', pe.event_timestamp, 'UTC'), pe.policy_name COLLATE "C", pe.result COLLATE "C", count(*),
               sum(pe.latency_ms)::bigint, count(pe.latency_ms)
        FROM @extschema@.policy_evaluations pe
        WHERE pe.event_timestamp >= run.run_start AND pe.event_timestamp < run.run_end
        GROUP BY 1, 2, 3;
    END LOOP;

    PERFORM kt_rebuild_spend_days(hours);
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION kt_recompute_hours(timestamptz[]) IS 'Internal (kt_refresh_metrics): recomputes the given UTC hours of every rollup from raw rows and discards their deltas; returns the kt_rollup_metrics_hourly rows written.';
REVOKE ALL ON FUNCTION kt_recompute_hours(timestamptz[]) FROM PUBLIC;
CREATE OR REPLACE FUNCTION kt_governance_internal.kt_merge_deltas(hours timestamptz[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
SET jit = off
SET kt_governance.track_changes = off
AS $fn$
DECLARE
    written bigint;
BEGIN
    WITH taken AS (
        DELETE FROM kt_rollup_deltas WHERE bucket = ANY (hours) RETURNING *
    ), fine AS MATERIALIZED (
        SELECT t.bucket, t.gateway_id COLLATE "C" AS gateway_id, t.model COLLATE "C" AS model,
               t.team_id COLLATE "C" AS team_id, t.decision COLLATE "C" AS decision,
               sum(t.event_count) AS n, sum(t.total_cost) AS cost, sum(t.total_input_tokens) AS tin,
               sum(t.total_output_tokens) AS tout, sum(t.latency_sum) AS lat_sum, sum(t.latency_count) AS lat_n
        FROM taken t GROUP BY 1, 2, 3, 4, 5
    ), taken_histograms AS (
        DELETE FROM kt_latency_deltas WHERE bucket = ANY (hours) RETURNING *
    ), latencies AS (
        SELECT t.bucket, t.gateway_id COLLATE "C" AS gateway_id, t.model COLLATE "C" AS model,
               kt_histogram_merge_agg(t.latency_histogram) AS histogram
        FROM taken_histograms t GROUP BY 1, 2, 3
    ), by_model AS (
        -- (the same sums as in kt_recompute_hours)
        SELECT f.bucket, f.gateway_id, f.model, sum(f.n)::bigint AS n,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'allowed'), 0)::bigint AS allowed,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'blocked'), 0)::bigint AS blocked,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'escalated'), 0)::bigint AS escalated,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'redacted'), 0)::bigint AS redacted,
               sum(f.cost) AS cost, sum(f.tin)::bigint AS tin, sum(f.tout)::bigint AS tout,
               sum(f.lat_sum)::bigint AS lat_sum, sum(f.lat_n)::bigint AS lat_n
        FROM fine f GROUP BY 1, 2, 3
    ), metrics AS (
        INSERT INTO kt_rollup_metrics_hourly AS r
        SELECT m.bucket, m.gateway_id, m.model, m.n, m.allowed, m.blocked, m.escalated, m.redacted,
               m.cost, m.tin, m.tout, m.lat_sum, m.lat_n, s.p50, s.p99, s.sketch, s.histogram
        FROM by_model m
        LEFT JOIN latencies l USING (bucket, gateway_id, model)
        LEFT JOIN LATERAL kt_histogram_rollup(l.histogram, NULL) s ON true
        ON CONFLICT (bucket, gateway_id, model) DO UPDATE SET
            total_requests = r.total_requests + excluded.total_requests,
            allowed = r.allowed + excluded.allowed,
            blocked = r.blocked + excluded.blocked,
            escalated = r.escalated + excluded.escalated,
            redacted = r.redacted + excluded.redacted,
            total_cost = kt_add_sums(r.total_cost, excluded.total_cost),
            total_input_tokens = r.total_input_tokens + excluded.total_input_tokens,
            total_output_tokens = r.total_output_tokens + excluded.total_output_tokens,
            latency_sum = kt_add_sums(r.latency_sum, excluded.latency_sum)::bigint,
            latency_count = r.latency_count + excluded.latency_count,
            (p50_latency, p99_latency, latency_sketch, latency_histogram) =
                (SELECT x.p50, x.p99, x.sketch, x.histogram
                 FROM kt_histogram_rollup(r.latency_histogram, excluded.latency_histogram) x)
        RETURNING 1
    ), decisions AS (
        INSERT INTO kt_rollup_decisions_hourly AS r
        SELECT f.bucket, f.decision, sum(f.n)::bigint, sum(f.cost), sum(f.tin + f.tout)::bigint,
               sum(f.lat_sum)::bigint, sum(f.lat_n)::bigint
        FROM fine f GROUP BY 1, 2
        ON CONFLICT (bucket, decision) DO UPDATE SET
            event_count = r.event_count + excluded.event_count,
            total_cost = kt_add_sums(r.total_cost, excluded.total_cost),
            total_tokens = r.total_tokens + excluded.total_tokens,
            latency_sum = kt_add_sums(r.latency_sum, excluded.latency_sum)::bigint,
            latency_count = r.latency_count + excluded.latency_count
    ), spend AS (
        INSERT INTO kt_rollup_spend_hourly AS r
        SELECT f.bucket, f.team_id, f.model, f.decision, sum(f.n)::bigint, sum(f.tin)::bigint,
               sum(f.tout)::bigint, sum(f.cost)
        FROM fine f GROUP BY 1, 2, 3, 4
        ON CONFLICT ON CONSTRAINT kt_rollup_spend_hourly_key DO UPDATE SET
            request_count = r.request_count + excluded.request_count,
            total_input_tokens = r.total_input_tokens + excluded.total_input_tokens,
            total_output_tokens = r.total_output_tokens + excluded.total_output_tokens,
            total_cost = kt_add_sums(r.total_cost, excluded.total_cost)
    ), spend_days AS (
        INSERT INTO kt_rollup_spend_daily AS r
        SELECT date_trunc('day', f.bucket, 'UTC'), f.team_id, f.model, f.decision, sum(f.n)::bigint,
               sum(f.tin)::bigint, sum(f.tout)::bigint, sum(f.cost)
        FROM fine f GROUP BY 1, 2, 3, 4
        ON CONFLICT ON CONSTRAINT kt_rollup_spend_daily_key DO UPDATE SET
            request_count = r.request_count + excluded.request_count,
            total_input_tokens = r.total_input_tokens + excluded.total_input_tokens,
            total_output_tokens = r.total_output_tokens + excluded.total_output_tokens,
            total_cost = kt_add_sums(r.total_cost, excluded.total_cost)
    ), summary AS (
        INSERT INTO kt_rollup_summary_hourly AS r
        SELECT f.bucket, f.gateway_id, f.team_id, f.model, f.decision, f.n, f.cost, f.tin, f.tout,
               f.lat_sum, f.lat_n
        FROM fine f
        ON CONFLICT ON CONSTRAINT kt_rollup_summary_hourly_key DO UPDATE SET
            event_count = r.event_count + excluded.event_count,
            total_cost = kt_add_sums(r.total_cost, excluded.total_cost),
            total_input_tokens = r.total_input_tokens + excluded.total_input_tokens,
            total_output_tokens = r.total_output_tokens + excluded.total_output_tokens,
            latency_sum = kt_add_sums(r.latency_sum, excluded.latency_sum)::bigint,
            latency_count = r.latency_count + excluded.latency_count
    ), summary_days AS (
        INSERT INTO kt_rollup_summary_daily AS r
        SELECT date_trunc('day', f.bucket, 'UTC'), f.gateway_id, f.team_id, f.model, f.decision, sum(f.n)::bigint,
               sum(f.cost), sum(f.tin)::bigint, sum(f.tout)::bigint, sum(f.lat_sum)::bigint, sum(f.lat_n)::bigint
        FROM fine f GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT ON CONSTRAINT kt_rollup_summary_daily_key DO UPDATE SET
            event_count = r.event_count + excluded.event_count,
            total_cost = kt_add_sums(r.total_cost, excluded.total_cost),
            total_input_tokens = r.total_input_tokens + excluded.total_input_tokens,
            total_output_tokens = r.total_output_tokens + excluded.total_output_tokens,
            latency_sum = kt_add_sums(r.latency_sum, excluded.latency_sum)::bigint,
            latency_count = r.latency_count + excluded.latency_count
    )
    SELECT count(*) INTO written FROM metrics;

    WITH taken AS (
        DELETE FROM kt_policy_deltas WHERE bucket = ANY (hours) RETURNING *
    )
    INSERT INTO kt_rollup_policy_hourly AS r
    SELECT t.bucket, t.policy_name COLLATE "C", t.result COLLATE "C", sum(t.evaluation_count)::bigint,
           sum(t.latency_sum)::bigint, sum(t.latency_count)::bigint
    FROM taken t GROUP BY 1, 2, 3
    ON CONFLICT (bucket, policy_name, result) DO UPDATE SET
        evaluation_count = r.evaluation_count + excluded.evaluation_count,
        latency_sum = kt_add_sums(r.latency_sum, excluded.latency_sum)::bigint,
        latency_count = r.latency_count + excluded.latency_count;
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION kt_merge_deltas(timestamptz[]) IS 'Internal (kt_refresh_metrics): adds the kt_rollup_deltas, kt_latency_deltas and kt_policy_deltas of the given insert-only UTC hours into every rollup (exact histograms keep p50/p99 exact) and deletes them; returns the kt_rollup_metrics_hourly rows written.';
REVOKE ALL ON FUNCTION kt_merge_deltas(timestamptz[]) FROM PUBLIC;
CREATE OR REPLACE FUNCTION kt_refresh_metrics(up_to timestamptz DEFAULT 'infinity')
RETURNS TABLE (hours_refreshed bigint, metric_rows bigint, oldest_hour timestamptz, newest_hour timestamptz,
              hours_merged bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kt_governance_internal, pg_temp
-- a refresh reads a few hours of rows: compiling its plans with JIT (which the row estimates
-- trigger at 100k+ rows) costs more than running them
SET jit = off
-- the planner overestimates the groups (hundreds per hour, not the tens of thousands it
-- guesses) and would sort every row to aggregate the latency arrays; hashing is 3x faster
SET enable_sort = off
-- the rollup rows written here are the refresh's own, not outside writes to recompute
-- (kt_recompute_written_hours)
SET kt_governance.track_changes = off
AS $fn$
DECLARE
    hours timestamptz[];
    raw_hours timestamptz[];
    merge_hours timestamptz[];
    recomputed bigint := 0;
    merged bigint := 0;
BEGIN
    IF up_to IS NULL THEN
        RAISE EXCEPTION 'up_to must not be NULL (the default, infinity, refreshes every dirty hour)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- one refresh at a time; a second caller waits, then finds little or nothing left to do
    PERFORM kt_take_run_lock('refresh_metrics');
    -- this transaction's own inserts are summed in memory until its commit: recompute their
    -- hours instead
    PERFORM kt_settle_pending_deltas();
    -- Hours before frozen_before lost raw rows to retention: their marks and deltas are
    -- dropped, never applied. An hour is merged from its deltas when every change to it was a
    -- summed insert and its rollup rows carry exact histograms; otherwise recomputed.
    WITH taken AS (DELETE FROM kt_dirty_hours WHERE bucket < up_to RETURNING bucket, recompute),
    live AS (
        SELECT t.bucket, bool_or(t.recompute)
                   -- rows written before 0.6.0 have no exact histogram to merge into
                   OR EXISTS (SELECT FROM kt_rollup_metrics_hourly r WHERE r.bucket = t.bucket
                              AND r.latency_histogram IS NULL AND r.latency_count > 0) AS recompute
        FROM taken t WHERE t.bucket >= kt_frozen_before() GROUP BY t.bucket
    )
    SELECT array_agg(bucket ORDER BY bucket),
           coalesce(array_agg(bucket ORDER BY bucket) FILTER (WHERE recompute), '{}'),
           coalesce(array_agg(bucket ORDER BY bucket) FILTER (WHERE NOT recompute), '{}')
    INTO hours, raw_hours, merge_hours FROM live;
    DELETE FROM kt_rollup_deltas WHERE bucket < kt_frozen_before();
    DELETE FROM kt_latency_deltas WHERE bucket < kt_frozen_before();
    DELETE FROM kt_policy_deltas WHERE bucket < kt_frozen_before();
    hours_refreshed := coalesce(cardinality(hours), 0);
    hours_merged := cardinality(merge_hours);
    oldest_hour := hours[1];
    newest_hour := hours[hours_refreshed];
    IF cardinality(raw_hours) > 0 THEN
        recomputed := kt_recompute_hours(raw_hours);
    END IF;
    IF cardinality(merge_hours) > 0 THEN
        merged := kt_merge_deltas(merge_hours);
    END IF;
    metric_rows := recomputed + merged;
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION kt_refresh_metrics(timestamptz) IS 'Brings every dirty hour (kt_dirty_hours) of every rollup up to date, exactly, in the caller''s transaction: hours changed only by summed inserts get their kt_rollup_deltas merged in; the others are recomputed from raw rows. A concurrent refresh waits for it. up_to: only hours starting before it (retention refreshes up to its cutoff). Returns how many hours were refreshed (hours_merged of them from deltas), the rollup rows written and the hours'' span. The worker runs it every kt_governance.refresh_interval.';
CREATE OR REPLACE FUNCTION kt_governance_internal.kt_retention_job(OUT events_removed bigint, OUT message text, OUT again boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
        SELECT * INTO r FROM @extschema@.kt_apply_retention(raw_hours::integer, NULL::boolean, 1::integer);
        IF NOT FOUND THEN
            -- kt_run_job records this as a skipped run, with the reason, not as a success
            RAISE EXCEPTION 'skipped: another retention or erasure run holds the retention lock'
                USING ERRCODE = 'KT001';
        END IF;
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
        DELETE FROM kt_rollup_policy_hourly WHERE bucket < rollup_cutoff;
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        DELETE FROM kt_rollup_summary_hourly WHERE bucket < rollup_cutoff;
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        -- days before the cutoff's day go; the cutoff's own day is summed again from the hours
        -- it keeps, so a daily row is always the sum of its hourly rows
        DELETE FROM kt_rollup_spend_daily WHERE bucket < date_trunc('day', rollup_cutoff, 'UTC');
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        DELETE FROM kt_rollup_summary_daily WHERE bucket < date_trunc('day', rollup_cutoff, 'UTC');
        GET DIAGNOSTICS n = ROW_COUNT; rollup_rows := rollup_rows + n;
        PERFORM kt_rebuild_spend_days(ARRAY[rollup_cutoff]);
        message := message || format('; %s rollup rows older than %s hours removed', rollup_rows, rollup_hours);
    END IF;
END
$fn$;
COMMENT ON FUNCTION kt_retention_job() IS 'Internal: body of the retention job: kt_apply_retention(kt_governance.retention_hours) one partition pair per run (again = true asks the worker to run it again after committing), then rollup retention.';
REVOKE ALL ON FUNCTION kt_retention_job() FROM PUBLIC;

-- policy reports on the rollup
-- Evaluations per (policy, result) in a window: whole clean hours from kt_rollup_policy_hourly,
-- the partial edge hours and the dirty hours from raw rows (all of it raw for a caller that
-- row-level security limits). The window is the evaluated events' time, event_timestamp.
CREATE OR REPLACE FUNCTION kt_governance_internal.kt_policy_counts(window_start timestamptz, window_end timestamptz,
                                                         policy text DEFAULT NULL)
RETURNS TABLE (policy_name text, result text, evaluation_count bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
-- (as the other reports: JIT costs more than the query)
SET jit = off
AS $fn$
DECLARE
    frozen timestamptz := kt_frozen_before();
    whole record := kt_rollup_hours(window_start, window_end);
    use_rollups boolean := NOT kt_rls_applies();
    raw record := kt_raw_ranges(window_start, window_end, use_rollups, frozen);
BEGIN
    RETURN QUERY
    WITH parts AS (
        SELECT r.policy_name AS pol, r.result AS res, r.evaluation_count AS n
        FROM kt_rollup_policy_hourly r
        WHERE use_rollups AND r.bucket >= whole.first_hour AND r.bucket < whole.end_hour
          AND (policy IS NULL OR r.policy_name = policy)
          -- (written out: see kt_governance_summary)
          AND NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = r.bucket AND d.bucket >= frozen)
        UNION ALL
        SELECT pe.policy_name, pe.result, count(*)
        FROM kt_raw_evaluations(raw.head_start, raw.head_end, raw.tail_start, raw.tail_end,
                                raw.dirty_hours, raw.dirty_start, raw.dirty_end, through_events => use_rollups) pe
        WHERE policy IS NULL OR pe.policy_name = policy
        GROUP BY 1, 2
    )
    SELECT p.pol, p.res, sum(p.n)::bigint FROM parts p GROUP BY 1, 2;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_policy_counts(timestamptz, timestamptz, text) IS 'Internal: evaluations per (policy_name, result) whose event_timestamp is in [window_start, window_end): whole refreshed hours from kt_rollup_policy_hourly, edge and dirty hours from raw rows. Runs with the caller''s rights.';

CREATE OR REPLACE FUNCTION kt_policy_effectiveness(
    lookback interval DEFAULT '7 days',
    start_time timestamptz DEFAULT NULL,
    end_time timestamptz DEFAULT NULL,
    policy text DEFAULT NULL)
RETURNS TABLE (policy_name text, evaluation_count bigint, pass_count bigint, block_count bigint,
               redact_count bigint, flag_count bigint, escalate_count bigint, block_rate_pct numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    w record := kt_report_window(lookback, start_time, end_time);
BEGIN
    RETURN QUERY
    SELECT c.policy_name, sum(c.evaluation_count)::bigint,
           coalesce(sum(c.evaluation_count) FILTER (WHERE c.result = 'pass'), 0)::bigint,
           coalesce(sum(c.evaluation_count) FILTER (WHERE c.result = 'block'), 0)::bigint,
           coalesce(sum(c.evaluation_count) FILTER (WHERE c.result = 'redact'), 0)::bigint,
           coalesce(sum(c.evaluation_count) FILTER (WHERE c.result = 'flag'), 0)::bigint,
           coalesce(sum(c.evaluation_count) FILTER (WHERE c.result = 'escalate'), 0)::bigint,
           round(100.0 * coalesce(sum(c.evaluation_count) FILTER (WHERE c.result = 'block'), 0)
                 / sum(c.evaluation_count), 2)
    FROM kt_policy_counts(w.window_start, w.window_end, policy) c
    GROUP BY c.policy_name
    ORDER BY 4 DESC, 1;
END
$fn$;
COMMENT ON FUNCTION kt_policy_effectiveness(interval, timestamptz, timestamptz, text) IS 'One row per policy: evaluations, counts per result and block rate (blocks / evaluations of that policy, %, 2 decimals), most blocking first. Whole refreshed hours come from kt_rollup_policy_hourly, edge and dirty hours from raw rows. Default: events of the last 7 days. policy: only that policy. The document''s query groups by result too; kt_policy_effectiveness_by_result() returns its exact rows.';

CREATE OR REPLACE FUNCTION kt_policy_effectiveness_by_result(
    lookback interval DEFAULT '7 days',
    start_time timestamptz DEFAULT NULL,
    end_time timestamptz DEFAULT NULL)
RETURNS TABLE (policy_name text, result text, evaluation_count bigint, block_count bigint,
               block_rate_pct numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    w record := kt_report_window(lookback, start_time, end_time);
BEGIN
    RETURN QUERY
    SELECT c.policy_name, c.result, c.evaluation_count,
           CASE WHEN c.result = 'block' THEN c.evaluation_count ELSE 0 END::bigint,
           round(100.0 * CASE WHEN c.result = 'block' THEN c.evaluation_count ELSE 0 END / c.evaluation_count, 2)
    FROM kt_policy_counts(w.window_start, w.window_end) c
    ORDER BY 4 DESC, 1, 2;
END
$fn$;
COMMENT ON FUNCTION kt_policy_effectiveness_by_result(interval, timestamptz, timestamptz) IS 'The document''s policy effectiveness rows exactly: per policy and result, with its block rate (always 0 or 100 because result is grouped), from the same rollup as kt_policy_effectiveness(). Prefer kt_policy_effectiveness().';

-- views: policy effectiveness per hour, anomaly status per hour
-- Policy evaluations per hour, policy and result, live like governance_metrics_hourly.
CREATE OR REPLACE FUNCTION kt_governance_internal.kt_live_policy(range_start timestamptz, range_end timestamptz,
                                                       through_events boolean DEFAULT false)
RETURNS TABLE (hour timestamptz, policy_name text, result text, evaluation_count bigint,
               latency_sum bigint, latency_count bigint)
LANGUAGE plpgsql STABLE
ROWS 100
SET search_path = pg_catalog, kt_governance_internal, pg_temp
SET jit = off
AS $fn$
BEGIN
    -- an hour's evaluations through its events' index and their key (see kt_raw_evaluations),
    -- or, for a caller limited by row-level security, every evaluation it may see
    IF through_events THEN
        RETURN QUERY EXECUTE format($q$
            SELECT date_trunc('hour', pe.event_timestamp, 'UTC'), pe.policy_name, pe.result, count(*),
                   sum(pe.latency_ms)::bigint, count(pe.latency_ms)
            FROM %s e
            JOIN %s pe ON pe.event_id = e.id AND pe.event_timestamp = e."timestamp"
            WHERE e."timestamp" >= $1 AND e."timestamp" < $2 AND pe.event_timestamp >= $1 AND pe.event_timestamp < $2
            GROUP BY 1, 2, 3$q$, '@extschema@.ai_decision_events'::regclass, '@extschema@.policy_evaluations'::regclass)
        USING range_start, range_end;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format($q$
        SELECT date_trunc('hour', pe.event_timestamp, 'UTC'), pe.policy_name, pe.result, count(*),
               sum(pe.latency_ms)::bigint, count(pe.latency_ms)
        FROM %s pe
        WHERE pe.event_timestamp >= $1 AND pe.event_timestamp < $2
        GROUP BY 1, 2, 3$q$, '@extschema@.policy_evaluations'::regclass)
    USING range_start, range_end;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_live_policy(timestamptz, timestamptz, boolean) IS 'Internal: kt_rollup_policy_hourly rows computed from the raw evaluations whose event_timestamp is in [range_start, range_end) (planned with the bounds as constants); through_events finds them through their events'' index (for callers no row-level security limits). Runs with the caller''s rights.';

-- (names schema-qualified, literals typed: see governance_metrics_hourly)
CREATE VIEW governance_policy_hourly WITH (security_invoker = true) AS
SELECT p.hour, p.policy_name, p.result, p.evaluation_count,
       CASE WHEN p.result = 'block'::text THEN p.evaluation_count ELSE 0::bigint END AS block_count,
       p.latency_sum AS total_latency_ms, p.latency_count,
       round(p.latency_sum::numeric / nullif(p.latency_count, 0::bigint), 2) AS avg_latency_ms
FROM (
    SELECT r.bucket AS hour, r.policy_name, r.result, r.evaluation_count, r.latency_sum, r.latency_count
    FROM kt_governance_internal.kt_rollup_policy_hourly r
    WHERE NOT (SELECT kt_governance_internal.kt_rls_applies())
      AND NOT EXISTS (SELECT FROM kt_governance_internal.kt_dirty_hours d WHERE d.bucket = r.bucket
                      AND d.bucket >= (SELECT kt_governance_internal.kt_frozen_before()))
    UNION ALL
    SELECT d.bucket, l.policy_name, l.result, l.evaluation_count, l.latency_sum, l.latency_count
    FROM (SELECT DISTINCT bucket FROM kt_governance_internal.kt_dirty_hours
          WHERE bucket >= (SELECT kt_governance_internal.kt_frozen_before())
            AND NOT (SELECT kt_governance_internal.kt_rls_applies())) d
    CROSS JOIN LATERAL kt_governance_internal.kt_live_policy(d.bucket, d.bucket + interval '1 hour', true) l
    UNION ALL
    SELECT v.* FROM kt_governance_internal.kt_live_policy('-infinity'::timestamptz, 'infinity'::timestamptz) v
    WHERE (SELECT kt_governance_internal.kt_rls_applies())
) p;
COMMENT ON VIEW governance_policy_hourly IS 'Policy effectiveness per UTC hour, policy and result, always exact: refreshed hours from kt_rollup_policy_hourly, hours changed since the last kt_refresh_metrics() computed live; for a caller limited by row-level security, from the rows it may see. The document''s 7-day report is SELECT policy_name, result, sum(evaluation_count), sum(block_count) ... WHERE hour >= ... GROUP BY policy_name, result. Filter on hour to use the rollup''s key.';
COMMENT ON COLUMN governance_policy_hourly.hour IS 'Start of the UTC hour of the evaluated events'' "timestamp" (the document''s report filters on the event''s time).';
COMMENT ON COLUMN governance_policy_hourly.policy_name IS 'Policy.';
COMMENT ON COLUMN governance_policy_hourly.result IS 'Result: pass, block, redact, flag or escalate.';
COMMENT ON COLUMN governance_policy_hourly.evaluation_count IS 'Evaluations.';
COMMENT ON COLUMN governance_policy_hourly.block_count IS 'Evaluations with result block (evaluation_count on block rows, 0 otherwise), so that sum(block_count) / sum(evaluation_count) over a policy''s rows is its block rate.';
COMMENT ON COLUMN governance_policy_hourly.total_latency_ms IS 'SUM(latency_ms); with latency_count, averages over many hours.';
COMMENT ON COLUMN governance_policy_hourly.latency_count IS 'COUNT(latency_ms): evaluations with a known latency.';
COMMENT ON COLUMN governance_policy_hourly.avg_latency_ms IS 'AVG(latency_ms) in the hour, 2 decimals.';

-- Hourly anomaly status: each UTC hour's block rate against the 48 hours before it. The
-- document's query judges the hours of one 48-hour window against that window (a report:
-- kt_anomalies); a view's rows must not change with the time it is read, so here each hour has
-- its own trailing baseline. The hour's counts and the baseline's come from one exact per-hour
-- view of blocked and total events (rollup rows, dirty hours live), read once for the hours a
-- query selects and once per hour for its baseline (48 index-range reads of the decisions
-- rollup): a filter on hour bounds both.
CREATE FUNCTION kt_governance_internal.kt_live_blocks(range_start timestamptz, range_end timestamptz)
RETURNS TABLE (hour timestamptz, total bigint, blocked bigint)
LANGUAGE plpgsql STABLE
-- called once per dirty hour, returning one row: a larger estimate multiplied by the baseline's
-- per-hour cost pushed a whole-view read past jit_above_cost (seconds of JIT for 0.1 s of work)
ROWS 1
SET search_path = pg_catalog, kt_governance_internal, pg_temp
SET jit = off
AS $fn$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT date_trunc('hour', e."timestamp", 'UTC'), count(*), count(*) FILTER (WHERE e.decision = 'blocked')
        FROM %s e
        WHERE e."timestamp" >= $1 AND e."timestamp" < $2
        GROUP BY 1$q$, '@extschema@.ai_decision_events'::regclass)
    USING range_start, range_end;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_live_blocks(timestamptz, timestamptz) IS 'Internal: events and blocked events per UTC hour computed from the raw rows in [range_start, range_end). Runs with the caller''s rights.';

CREATE VIEW kt_governance_internal.kt_blocks_hourly WITH (security_invoker = true) AS
SELECT r.bucket AS hour, sum(r.event_count)::bigint AS total,
       coalesce(sum(r.event_count) FILTER (WHERE r.decision = 'blocked'::text), 0::numeric)::bigint AS blocked
FROM kt_governance_internal.kt_rollup_decisions_hourly r
WHERE NOT (SELECT kt_governance_internal.kt_rls_applies())
  AND NOT EXISTS (SELECT FROM kt_governance_internal.kt_dirty_hours d WHERE d.bucket = r.bucket
                  AND d.bucket >= (SELECT kt_governance_internal.kt_frozen_before()))
GROUP BY r.bucket
UNION ALL
SELECT d.bucket, l.total, l.blocked
FROM (SELECT DISTINCT bucket FROM kt_governance_internal.kt_dirty_hours
      WHERE bucket >= (SELECT kt_governance_internal.kt_frozen_before())
        AND NOT (SELECT kt_governance_internal.kt_rls_applies())) d
CROSS JOIN LATERAL kt_governance_internal.kt_live_blocks(d.bucket, d.bucket + interval '1 hour') l
UNION ALL
SELECT v.* FROM kt_governance_internal.kt_live_blocks('-infinity'::timestamptz, 'infinity'::timestamptz) v
WHERE (SELECT kt_governance_internal.kt_rls_applies());
COMMENT ON VIEW kt_governance_internal.kt_blocks_hourly IS 'Internal: events and blocked events per UTC hour, exact (refreshed hours from kt_rollup_decisions_hourly, dirty hours live, every hour live for a caller limited by row-level security); behind governance_anomalies_hourly.';
COMMENT ON COLUMN kt_governance_internal.kt_blocks_hourly.hour IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_governance_internal.kt_blocks_hourly.total IS 'Events.';
COMMENT ON COLUMN kt_governance_internal.kt_blocks_hourly.blocked IS 'Blocked events.';

CREATE VIEW governance_anomalies_hourly WITH (security_invoker = true) AS
SELECT h.hour, h.total, h.blocked,
       round((h.blocked::float8 / nullif(h.total, 0::bigint))::numeric, 4) AS block_rate,
       b.hours AS baseline_hours, b.mean AS baseline_mean, b.stddev AS baseline_stddev,
       CASE WHEN b.stddev > 0::float8 THEN (h.blocked::float8 / nullif(h.total, 0::bigint) - b.mean) / b.stddev END AS z_score,
       CASE WHEN h.blocked::float8 / nullif(h.total, 0::bigint) > b.mean + 2::float8 * b.stddev
            THEN 'ANOMALY'::text ELSE 'normal'::text END AS status
FROM kt_governance_internal.kt_blocks_hourly h
CROSS JOIN LATERAL (
    SELECT count(x.total) AS hours, avg(x.blocked::float8 / nullif(x.total, 0::bigint)) AS mean,
           stddev(x.blocked::float8 / nullif(x.total, 0::bigint)) AS stddev
    FROM kt_governance_internal.kt_blocks_hourly x
    WHERE x.hour >= h.hour - interval '48 hours' AND x.hour < h.hour) b;
COMMENT ON VIEW governance_anomalies_hourly IS 'Block-rate anomaly status per UTC hour, always exact: the hour is ANOMALY when its block rate exceeds the mean plus 2 standard deviations of the hourly block rates of the 48 hours before it (the document''s rule, with a trailing baseline so an hour''s status does not depend on when it is read; kt_anomalies() judges a window against itself as the document does, and takes sigma, series and other baselines). Hours with no events have no row and are not in any baseline. Filter on hour: both the hours and their baselines are read by the rollup''s key.';
COMMENT ON COLUMN governance_anomalies_hourly.hour IS 'Start of the UTC hour.';
COMMENT ON COLUMN governance_anomalies_hourly.total IS 'Events in the hour.';
COMMENT ON COLUMN governance_anomalies_hourly.blocked IS 'Blocked events in the hour.';
COMMENT ON COLUMN governance_anomalies_hourly.block_rate IS 'blocked / total, 4 decimals (as the document''s query).';
COMMENT ON COLUMN governance_anomalies_hourly.baseline_hours IS 'Hours with events among the 48 before this one: the baseline''s sample.';
COMMENT ON COLUMN governance_anomalies_hourly.baseline_mean IS 'Mean hourly block rate of the baseline hours (NULL without any).';
COMMENT ON COLUMN governance_anomalies_hourly.baseline_stddev IS 'Sample standard deviation of the baseline hours'' block rates (NULL with fewer than 2).';
COMMENT ON COLUMN governance_anomalies_hourly.z_score IS '(block_rate - baseline_mean) / baseline_stddev, unrounded; NULL when the deviation is 0 or unknown.';
COMMENT ON COLUMN governance_anomalies_hourly.status IS 'ANOMALY when block_rate > baseline_mean + 2 * baseline_stddev, else normal (also when the baseline is unknown).';
GRANT SELECT ON governance_policy_hourly, governance_anomalies_hourly, kt_governance_internal.kt_blocks_hourly,
                kt_rollup_policy_hourly, kt_policy_deltas TO kt_governance_reader;

-- views: the daily summary with its dimensions
-- (its live parts were made with governance_spend_daily above)
CREATE VIEW governance_summary_daily WITH (security_invoker = true) AS
SELECT p.day, p.decision, p.gateway_id, p.team_id, p.model,
       sum(p.event_count)::bigint AS event_count, sum(p.total_cost) AS total_cost,
       sum(p.latency_sum) / nullif(sum(p.latency_count), 0::numeric) AS avg_latency_ms,
       (sum(p.total_input_tokens) + sum(p.total_output_tokens))::bigint AS total_tokens,
       sum(p.total_input_tokens)::bigint AS total_input_tokens, sum(p.total_output_tokens)::bigint AS total_output_tokens,
       sum(p.latency_sum)::bigint AS total_latency_ms, sum(p.latency_count)::bigint AS latency_count
FROM (
    SELECT r.bucket AS day, r.gateway_id, r.team_id, r.model, r.decision, r.event_count, r.total_cost,
           r.total_input_tokens, r.total_output_tokens, r.latency_sum, r.latency_count
    FROM kt_governance_internal.kt_rollup_summary_daily r
    WHERE NOT (SELECT kt_governance_internal.kt_rls_applies())
      AND NOT EXISTS (SELECT FROM kt_governance_internal.kt_dirty_hours d
                      WHERE d.bucket >= r.bucket AND d.bucket < r.bucket + interval '24 hours'
                        AND d.bucket >= (SELECT kt_governance_internal.kt_frozen_before()))
    UNION ALL
    SELECT d.day, s.gateway_id, s.team_id, s.model, s.decision, s.event_count, s.total_cost,
           s.total_input_tokens, s.total_output_tokens, s.latency_sum, s.latency_count
    FROM (SELECT DISTINCT date_trunc('day'::text, bucket, 'UTC'::text) AS day FROM kt_governance_internal.kt_dirty_hours
          WHERE bucket >= (SELECT kt_governance_internal.kt_frozen_before())
            AND NOT (SELECT kt_governance_internal.kt_rls_applies())) d
    CROSS JOIN LATERAL kt_governance_internal.kt_live_summary_day(d.day) s
    UNION ALL
    SELECT v.* FROM kt_governance_internal.kt_visible_summary_daily() v
    WHERE (SELECT kt_governance_internal.kt_rls_applies())
) p
GROUP BY p.day, p.decision, p.gateway_id, p.team_id, p.model;
COMMENT ON VIEW governance_summary_daily IS 'Daily governance summary per UTC day, decision, gateway, team and model (the document''s summary with the dimensions it is filtered by), always exact: clean days from kt_rollup_summary_daily, days changed since the last refresh from their clean hours'' rollup rows plus their changed hours'' raw rows; for a caller limited by row-level security, from the rows it may see. The document''s 30-day summary is SELECT day, decision, sum(event_count), sum(total_cost), sum(total_latency_ms) / sum(latency_count), sum(total_tokens) ... WHERE day >= ... GROUP BY day, decision. Filter on day (and on gateway_id, team_id, model) to use the rollup''s key.';
COMMENT ON COLUMN governance_summary_daily.day IS 'Start of the UTC day (kt_governance_summary(tz => ...) cuts days in other zones).';
COMMENT ON COLUMN governance_summary_daily.decision IS 'Decision: allowed, blocked, escalated or redacted.';
COMMENT ON COLUMN governance_summary_daily.gateway_id IS 'Gateway.';
COMMENT ON COLUMN governance_summary_daily.team_id IS 'Team; NULL for events without one (as stored, so that team_id = ... filters as kt_governance_summary(team_id => ...) does).';
COMMENT ON COLUMN governance_summary_daily.model IS 'Model.';
COMMENT ON COLUMN governance_summary_daily.event_count IS 'Events.';
COMMENT ON COLUMN governance_summary_daily.total_cost IS 'SUM(cost_usd); NULL when every cost was NULL.';
COMMENT ON COLUMN governance_summary_daily.avg_latency_ms IS 'AVG(latency_ms) over non-null latencies; across rows use sum(total_latency_ms) / sum(latency_count).';
COMMENT ON COLUMN governance_summary_daily.total_tokens IS 'SUM(input_tokens + output_tokens).';
COMMENT ON COLUMN governance_summary_daily.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN governance_summary_daily.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN governance_summary_daily.total_latency_ms IS 'SUM(latency_ms).';
COMMENT ON COLUMN governance_summary_daily.latency_count IS 'COUNT(latency_ms): events with a known latency.';

GRANT SELECT ON governance_summary_daily, kt_governance_internal.kt_rollup_summary_hourly,
                kt_governance_internal.kt_rollup_summary_daily TO kt_governance_reader;

-- the policy rollup of every hour with evaluations (hours before retention's frozen_before hold
-- what retention left of them, as the 1.0.0 reports read); the refresh's own writes, not
-- outside ones to recompute (the setting reverts when the script ends)
SET kt_governance.track_changes = off;
INSERT INTO kt_governance_internal.kt_rollup_policy_hourly
SELECT date_trunc('hour', pe.event_timestamp, 'UTC'), pe.policy_name, pe.result, count(*), sum(pe.latency_ms)::bigint,
       count(pe.latency_ms)
FROM policy_evaluations pe
GROUP BY 1, 2, 3;
-- the summary rollup of every hour with events, from raw rows (like the policy rollup above).
-- An hour with dirty marks may have deltas not yet merged, which a merge would add on top of
-- rows that hold them: such hours are left out and marked for a recompute instead.
INSERT INTO kt_governance_internal.kt_rollup_summary_hourly
SELECT date_trunc('hour', e."timestamp", 'UTC'), e.gateway_id, e.team_id, e.model, e.decision, count(*), sum(e.cost_usd),
       sum(e.input_tokens)::bigint, sum(e.output_tokens)::bigint, sum(e.latency_ms)::bigint, count(e.latency_ms)
FROM ai_decision_events e
WHERE NOT EXISTS (SELECT FROM kt_governance_internal.kt_dirty_hours d
                  WHERE d.bucket = date_trunc('hour', e."timestamp", 'UTC')
                    AND d.bucket >= kt_governance_internal.kt_frozen_before())
GROUP BY 1, 2, 3, 4, 5;
INSERT INTO kt_governance_internal.kt_dirty_hours (bucket, recompute)
SELECT DISTINCT bucket, true FROM kt_governance_internal.kt_dirty_hours
WHERE bucket >= kt_governance_internal.kt_frozen_before();
SELECT kt_governance_internal.kt_rebuild_spend_days(ARRAY(SELECT DISTINCT bucket FROM kt_governance_internal.kt_rollup_summary_hourly));

-- ingest (1.1.0): records screened one by one (no record's content fails a quarantine batch),
-- an acceptance window, whole tokens, exact costs; a count of unknown fields; kt_ingest(text)
DROP FUNCTION kt_ingest(jsonb, text, boolean);
DROP FUNCTION kt_governance_internal.kt_ingest_json(text, text, boolean);
CREATE FUNCTION kt_governance_internal."kt_ingest_json"(
	"events" TEXT,
	"mode" TEXT DEFAULT 'strict',
	"assume_utc" bool DEFAULT false
) RETURNS TABLE (
	"received" bigint,
	"inserted" bigint,
	"duplicates" bigint,
	"quarantined" bigint,
	"evaluations_inserted" bigint,
	"unknown_fields" bigint
)
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, kt_governance_internal, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'ingest_wrapper';
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

-- ingest (1.1.0): concurrent kt_ingest calls wait on each other only for the same id (claims),
-- no longer on one run lock for the whole call
DROP FUNCTION kt_governance_internal.kt_take_ingest_lock();
DELETE FROM kt_governance_internal.kt_run_locks WHERE lock_name = 'ingest';
COMMENT ON COLUMN kt_governance_internal.kt_run_locks.lock_name IS 'Lock name: refresh_metrics, retention or reclaim.';

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

-- the maintenance job prunes the claims
CREATE OR REPLACE FUNCTION kt_governance_internal.kt_execute_job(job_name text, OUT message text, OUT rows_touched bigint, OUT again boolean,
                               OUT failed boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    r record;
BEGIN
    again := false;
    failed := false;
    CASE job_name
    WHEN 'export' THEN
        SELECT * INTO r FROM kt_export_job();
        message := r.message; rows_touched := r.rows_touched; again := r.again; failed := r.failed;
    WHEN 'refresh_metrics' THEN
        SELECT * INTO r FROM @extschema@.kt_refresh_metrics('infinity'::timestamptz);
        rows_touched := r.hours_refreshed;
        message := format('%s hours refreshed, %s of them merged from deltas', r.hours_refreshed, r.hours_merged);
    WHEN 'retention' THEN
        SELECT * INTO r FROM kt_retention_job();
        rows_touched := r.events_removed;
        message := r.message;
        again := r.again;
    WHEN 'maintenance' THEN
        SELECT * INTO r FROM @extschema@.kt_run_maintenance(NULL::integer, true);
        rows_touched := r.rows_moved;
        message := format('%s partitions created, %s rows moved, %s rows left in default, %s row-count rows folded, %s removed partitions reclaimed, %s ingest claims pruned',
                          r.partitions_created, r.rows_moved, r.rows_left_in_default, kt_compact_row_counts(),
                          (SELECT tables_dropped FROM @extschema@.kt_reclaim_space()), kt_prune_ingest_claims());
    END CASE;
END
$fn$;
COMMENT ON FUNCTION kt_execute_job(text) IS 'Internal: the body of each job.';
UPDATE @extschema@.kt_jobs SET description = 'kt_run_maintenance(): premake partitions, drain the default partition, ANALYZE; then fold kt_row_counts, reclaim removed partitions and prune ingest claims'
WHERE job_name = 'maintenance';

-- exports: unpadded Hive directories, stable file names, filter decisions checked (the layout
-- and names are the library's; the comment says what they are now)
CREATE OR REPLACE FUNCTION kt_export_events(
    destination text,
    start_time timestamptz,
    end_time timestamptz,
    compression text DEFAULT 'zstd',
    row_group_size integer DEFAULT 122880,
    include_evaluations boolean DEFAULT true,
    decision text DEFAULT NULL,
    gateway_id text DEFAULT NULL,
    team_id text DEFAULT NULL,
    layout text DEFAULT 'day')
RETURNS TABLE (files_written integer, events_exported bigint, evaluations_exported bigint,
               bytes_written bigint, manifest text)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
BEGIN
    IF destination IS NULL OR start_time IS NULL OR end_time IS NULL OR compression IS NULL
       OR row_group_size IS NULL OR include_evaluations IS NULL OR layout IS NULL THEN
        RAISE EXCEPTION 'kt_export_events: only decision, gateway_id and team_id may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- the reports' check: a misspelt decision is an error naming the valid ones, not an empty
    -- export with a manifest (schedules check theirs when it is set)
    IF decision IS NOT NULL THEN
        PERFORM kt_check_decisions(ARRAY[decision]);
    END IF;
    RETURN QUERY SELECT * FROM kt_export_range(destination, start_time, end_time, 'timestamp', compression,
        row_group_size, include_evaluations, decision, gateway_id, team_id, layout, NULL, NULL);
END
$fn$;
COMMENT ON FUNCTION kt_export_events(text, timestamptz, timestamptz, text, integer, boolean, text, text, text, text) IS
    'Exports the events with start_time <= "timestamp" < end_time (and their policy evaluations, as a second dataset) as Parquet to destination: file:///absolute/dir or s3://bucket/prefix. Layout <destination>/events/year=YYYY/month=M/day=D/part-<manifest name>.parquet (unpadded integers; layout => ''month'' drops day=), plus policy_evaluations/... and the manifest _manifests/<manifest name>.json, written last, named export_<start>_<end>_<hash of filter and options>. Re-running the same range and filter writes the same file names (each file replaced whole) and removes files of the previous run it did not write again. compression: zstd, snappy or none. decision (allowed, blocked, escalated, redacted), gateway_id, team_id filter (AND). Requires kt_governance_admin, plus pg_write_server_files for file://.';
-- a decision is checked when a schedule gets one
CREATE OR REPLACE FUNCTION kt_governance_internal.kt_export_schedule_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
BEGIN
    -- a misspelt decision ('block', the ingest spelling) would export nothing, silently; checked
    -- when it is set, so a 1.0 schedule holding one can still record its failed runs
    IF NEW.decision IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.decision IS DISTINCT FROM OLD.decision) THEN
        PERFORM kt_check_decisions(ARRAY[NEW.decision]);
    END IF;
    -- audit and progress columns are the extension's, never the caller's: created_by is who
    -- made the schedule, and a made-up watermark or pending range would make retention spare
    -- rows forever (spare_from_retention)
    IF TG_OP = 'INSERT' AND (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)
       AND NEW.created_by IS NOT NULL THEN
        NULL;  -- a superuser's row is taken as given: that is how pg_restore brings schedules
               -- back (its COPY fires this trigger), with their creators and progress
    ELSIF TG_OP = 'INSERT' THEN
        NEW.created_by := current_user;
        NEW.pending_run_id := NULL; NEW.pending_lo := NULL; NEW.pending_hi := NULL;
        IF NEW.watermark IS NULL OR NOT isfinite(NEW.watermark) OR NEW.watermark < timestamptz '1970-01-01 00:00:00+00' THEN
            RAISE EXCEPTION 'an export schedule starts at a finite time from 1970 on, got %', NEW.watermark
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        NEW.created_by := OLD.created_by;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.destination = OLD.destination THEN
        RETURN NEW;  -- the export job's own bookkeeping, or a pause/resume
    END IF;
    IF NOT pg_has_role(current_user, 'kt_governance_admin', 'USAGE') THEN
        RAISE EXCEPTION 'export schedules require the kt_governance_admin role' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.destination LIKE 'file://%' AND NOT pg_has_role(current_user, 'pg_write_server_files', 'USAGE') THEN
        RAISE EXCEPTION 'exporting to server files requires the pg_write_server_files role'
            USING ERRCODE = 'insufficient_privilege', HINT = 'GRANT pg_write_server_files, or export to s3://.';
    END IF;
    RETURN NEW;
END
$fn$;
