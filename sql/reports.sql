-- Governance reports: the document's analytics queries as functions with useful arguments.
-- They run as the caller (SECURITY INVOKER), so row-level security on the tables still
-- applies, and with defaults they return the document's columns and rows.

-- Resolves a report's time window: an explicit start_time wins over lookback; no end_time
-- means no upper bound, as in the document's queries.
CREATE FUNCTION kt_governance_internal.kt_report_window(
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

-- The stored decisions, checked where a report takes them as a filter: kt_ingest's spellings
-- (allow, block, ...) and typos would otherwise select nothing, silently.
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

-- A report's zone, checked up front so that an unknown name fails with a pointer to the names
-- that work instead of PostgreSQL's bare "not recognized".
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
COMMENT ON FUNCTION kt_report_window(interval, timestamptz, timestamptz) IS 'Internal: validates report arguments and returns the [window_start, window_end) they select (window_end infinity when open).';

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

CREATE FUNCTION kt_governance_summary(
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

CREATE FUNCTION kt_spend_by_team_model(
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

-- Evaluations per (policy, result) in a window: whole clean hours from kt_rollup_policy_hourly,
-- the partial edge hours and the dirty hours from raw rows (all of it raw for a caller that
-- row-level security limits). The window is the evaluated events' time, event_timestamp.
CREATE FUNCTION kt_governance_internal.kt_policy_counts(window_start timestamptz, window_end timestamptz,
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

CREATE FUNCTION kt_policy_effectiveness(
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

CREATE FUNCTION kt_policy_effectiveness_by_result(
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

-- True when an hour's rollup rows equal its raw rows: no dirty mark, and not before
-- frozen_before (where raw rows may be gone).
CREATE FUNCTION kt_governance_internal.kt_hour_is_clean(hour timestamptz, frozen timestamptz DEFAULT kt_frozen_before())
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT hour >= frozen AND NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = hour)
$fn$;
COMMENT ON FUNCTION kt_hour_is_clean(timestamptz, timestamptz) IS 'Internal: whether the rollups of a UTC hour equal its raw rows (no dirty mark, and at or after frozen, which defaults to kt_frozen_before()).';

CREATE FUNCTION kt_anomalies(
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
    -- the metrics rollup has gateway and model but not team; hours must be whole in this zone
    use_rollups boolean := coalesce(dimension, '') <> 'team_id'
        AND kt_zone_has_whole_hours(current_setting('TimeZone'), w.window_start, w.window_end)
        AND NOT kt_rls_applies();
    -- A partial edge hour is read either as its rows inside the window, or as the hour's rollup
    -- rows minus its rows outside the window, whichever reads fewer rows. For the usual window
    -- ending now, the last hour's rows outside it are in the future: none to read.
    head_flip boolean := use_rollups AND whole.first_hour < whole.end_hour AND w.window_start < whole.first_hour
        AND whole.first_hour - w.window_start > w.window_start - (whole.first_hour - interval '1 hour')
        AND kt_hour_is_clean(whole.first_hour - interval '1 hour', frozen);
    tail_flip boolean := use_rollups AND whole.first_hour < whole.end_hour AND whole.end_hour < w.window_end
        AND (w.window_end - whole.end_hour > whole.end_hour + interval '1 hour' - w.window_end OR w.window_end >= now())
        AND kt_hour_is_clean(whole.end_hour, frozen);
    raw record := kt_raw_ranges(w.window_start, w.window_end, use_rollups, frozen);
    -- the parts of flipped edge hours outside the window, subtracted from their rollup rows
    outside_head_start timestamptz;
    outside_head_end timestamptz;
    outside_tail_start timestamptz;
    outside_tail_end timestamptz;
    flipped_hours timestamptz[] := '{}';
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
    IF head_flip THEN
        outside_head_start := whole.first_hour - interval '1 hour';
        outside_head_end := w.window_start;
        raw.head_start := NULL;
        raw.head_end := NULL;
        flipped_hours := flipped_hours || outside_head_start;
    END IF;
    IF tail_flip THEN
        outside_tail_start := w.window_end;
        outside_tail_end := whole.end_hour + interval '1 hour';
        raw.tail_start := NULL;
        raw.tail_end := NULL;
        flipped_hours := flipped_hours || whole.end_hour;
    END IF;
    RETURN QUERY
    WITH rollup AS NOT MATERIALIZED (
        -- per hour and series. Without a dimension the decisions rollup has a few rows per hour,
        -- the metrics rollup one per (gateway, model): 1,536 wide rows for 48 hours at 3M events
        SELECT r.bucket, NULL::text AS series, r.event_count AS n,
               CASE WHEN r.decision = 'blocked' THEN r.event_count ELSE 0 END AS b
        FROM kt_rollup_decisions_hourly r
        WHERE dimension IS NULL
        UNION ALL
        SELECT r.bucket, CASE dimension WHEN 'gateway_id' THEN r.gateway_id WHEN 'model' THEN r.model END,
               r.total_requests, r.blocked
        FROM kt_rollup_metrics_hourly r
        WHERE dimension IS NOT NULL
    ), parts AS (
        SELECT r.bucket AS ts, r.series, r.n, r.b
        FROM rollup r
        WHERE use_rollups AND r.bucket >= whole.first_hour AND r.bucket < whole.end_hour
          AND NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = r.bucket
                          AND d.bucket >= frozen)
        UNION ALL
        -- flipped edge hours: the whole hour from the rollup (a separate branch, so each scan
        -- stays an index scan)
        SELECT r.bucket, r.series, r.n, r.b
        FROM rollup r
        WHERE r.bucket = ANY (flipped_hours)
        UNION ALL
        SELECT e."timestamp",
               CASE dimension WHEN 'gateway_id' THEN e.gateway_id
                              WHEN 'model' THEN e.model
                              WHEN 'team_id' THEN coalesce(e.team_id, 'unassigned') END,
               1::bigint, (e.decision = 'blocked')::int::bigint
        -- (the edge ranges of flipped hours were taken out of raw above)
        FROM kt_raw_events(raw.head_start, raw.head_end, raw.tail_start, raw.tail_end,
                           raw.dirty_hours, raw.dirty_start, raw.dirty_end) e
        UNION ALL
        SELECT e."timestamp",
               CASE dimension WHEN 'gateway_id' THEN e.gateway_id WHEN 'model' THEN e.model END,
               -1::bigint, -(e.decision = 'blocked')::int::bigint
        FROM kt_raw_events(outside_head_start, outside_head_end, outside_tail_start, outside_tail_end) e
    ), hourly AS (
        SELECT date_trunc('hour', p.ts) AS hour, p.series, sum(p.n)::bigint AS total, sum(p.b)::bigint AS blocked
        FROM parts p
        GROUP BY 1, 2
        -- a series whose rows in a flipped hour all lie outside the window nets to nothing
        HAVING sum(p.n) > 0
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
        -- summed in hour order: float sums depend on their order, and the plan's order varies
        WINDOW s AS (PARTITION BY r.series ORDER BY r.hour ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
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

REVOKE ALL ON FUNCTION kt_governance_summary(interval, timestamptz, timestamptz, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION kt_spend_by_team_model(interval, timestamptz, timestamptz, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION kt_policy_effectiveness(interval, timestamptz, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION kt_policy_effectiveness_by_result(interval, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION kt_anomalies(interval, double precision, bigint, boolean, text, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_governance_summary(interval, timestamptz, timestamptz, text, text, text, text),
                          kt_spend_by_team_model(interval, timestamptz, timestamptz, text[]),
                          kt_policy_effectiveness(interval, timestamptz, timestamptz, text),
                          kt_policy_effectiveness_by_result(interval, timestamptz, timestamptz),
                          kt_anomalies(interval, double precision, bigint, boolean, text, timestamptz, timestamptz)
    TO kt_governance_reader;
