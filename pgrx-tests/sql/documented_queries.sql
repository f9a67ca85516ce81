-- The document's analytics queries run unchanged against a plain CREATE EXTENSION.
-- (Written here in the project's own words, over the documented table and column names.)
CREATE EXTENSION kt_governance;
\ir _helpers.psql
BEGIN;  -- one transaction, so now() is the same for the load and every query
SELECT rows_left_in_default = 0 AS ok FROM kt_run_maintenance();
SELECT * FROM kt_generate_sample_events(5000, 20, 11, now());

-- daily summary per decision, last 30 days
SELECT count(*) BETWEEN 4 * 20 - 8 AND 4 * 21 AS about_4_decisions_a_day, sum(event_count) AS events, sum(total_tokens) AS tokens
FROM (
    SELECT date_trunc('day', timestamp) AS day, decision, COUNT(*) AS event_count,
           SUM(cost_usd) AS total_cost, AVG(latency_ms) AS avg_latency_ms,
           SUM(input_tokens + output_tokens) AS total_tokens
    FROM ai_decision_events
    WHERE timestamp >= NOW() - INTERVAL '30 days'
    GROUP BY day, decision
    ORDER BY day DESC, decision
) summary;

-- policy effectiveness, last 7 days, joined on the document's event_id = id
SELECT policy_name, result, evaluation_count, block_count, block_rate_pct
FROM (
    SELECT pe.policy_name, pe.result, COUNT(*) AS evaluation_count,
           COUNT(*) FILTER (WHERE pe.result = 'block') AS block_count,
           ROUND(100.0 * COUNT(*) FILTER (WHERE pe.result = 'block') / COUNT(*), 2) AS block_rate_pct
    FROM policy_evaluations pe
    JOIN ai_decision_events e ON pe.event_id = e.id
    WHERE e.timestamp >= NOW() - INTERVAL '7 days'
    GROUP BY pe.policy_name, pe.result
    ORDER BY block_count DESC
) eff
ORDER BY block_count DESC, policy_name, result;

-- spend by team and model, allowed requests, last 30 days
SELECT count(*) AS result_rows, sum(request_count) AS requests,
       count(*) FILTER (WHERE team = 'unassigned') AS unassigned_rows
FROM (
    SELECT COALESCE(team_id, 'unassigned') AS team, model, COUNT(*) AS request_count,
           SUM(input_tokens) AS total_input_tokens, SUM(output_tokens) AS total_output_tokens,
           SUM(cost_usd) AS total_cost_usd
    FROM ai_decision_events
    WHERE timestamp >= NOW() - INTERVAL '30 days' AND decision = 'allowed'
    GROUP BY team_id, model
    ORDER BY total_cost_usd DESC
) spend;

-- hourly block-rate anomalies, last 48 hours
SELECT count(*) BETWEEN 48 AND 49 AS hours_48_or_49, sum(total) AS events, count(*) FILTER (WHERE status = 'normal') > 40 AS mostly_normal
FROM (
    WITH hourly_stats AS (
        SELECT date_trunc('hour', timestamp) AS hour, COUNT(*) AS total,
               COUNT(*) FILTER (WHERE decision = 'blocked') AS blocked
        FROM ai_decision_events
        WHERE timestamp >= NOW() - INTERVAL '48 hours'
        GROUP BY hour
    ), baseline AS (
        SELECT AVG(blocked::FLOAT / NULLIF(total, 0)) AS avg_block_rate,
               STDDEV(blocked::FLOAT / NULLIF(total, 0)) AS stddev_block_rate
        FROM hourly_stats
    )
    SELECT h.hour, h.total, h.blocked,
           ROUND((h.blocked::FLOAT / NULLIF(h.total, 0))::NUMERIC, 4) AS block_rate,
           CASE WHEN (h.blocked::FLOAT / NULLIF(h.total, 0)) > b.avg_block_rate + 2 * b.stddev_block_rate
                THEN 'ANOMALY' ELSE 'normal' END AS status
    FROM hourly_stats h, baseline b
    ORDER BY h.hour DESC
) anomalies;

-- hourly metrics (the document's materialized view body)
SELECT count(*) > 1000 AS many_buckets, sum(total_requests) AS requests,
       bool_and(p50_latency <= p99_latency) AS p50_below_p99
FROM (
    SELECT date_trunc('hour', timestamp) AS hour, gateway_id, model,
           COUNT(*) AS total_requests,
           COUNT(*) FILTER (WHERE decision = 'allowed') AS allowed,
           COUNT(*) FILTER (WHERE decision = 'blocked') AS blocked,
           COUNT(*) FILTER (WHERE decision = 'escalated') AS escalated,
           SUM(cost_usd) AS total_cost,
           PERCENTILE_CONT(0.50) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency,
           PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_latency,
           SUM(input_tokens) AS total_input_tokens, SUM(output_tokens) AS total_output_tokens
    FROM ai_decision_events
    GROUP BY hour, gateway_id, model
) metrics;

-- the documented archive step runs unchanged against the extension's archive table (the
-- events' columns plus archived_at, which takes its default)
INSERT INTO ai_decision_events_archive
SELECT * FROM ai_decision_events WHERE timestamp < NOW() - INTERVAL '10 days';
SELECT count(*) > 0 AS archived FROM ai_decision_events_archive;
COMMIT;

-- the document's indexes (or the key that replaces idx_evaluations_event) serve its lookups
ANALYZE ai_decision_events; ANALYZE policy_evaluations;
SET enable_seqscan = off;
SELECT pg_temp.plan($$SELECT * FROM ai_decision_events WHERE user_id = 'user-0001' ORDER BY timestamp DESC LIMIT 20$$) ~ '_user_idx' AS user_lookup_uses_index,
       pg_temp.plan($$SELECT * FROM ai_decision_events WHERE team_id = 'search' ORDER BY timestamp DESC LIMIT 20$$) ~ '_team_idx' AS team_lookup_uses_index,
       pg_temp.plan($$SELECT * FROM ai_decision_events WHERE gateway_id = 'gw-eu-west' ORDER BY timestamp DESC LIMIT 20$$) ~ '_gateway_idx' AS gateway_lookup_uses_index,
       pg_temp.plan($$SELECT * FROM ai_decision_events WHERE decision = 'blocked' ORDER BY timestamp DESC LIMIT 20$$) ~ '_decision_idx' AS decision_lookup_uses_index,
       pg_temp.plan($$SELECT * FROM ai_decision_events WHERE timestamp >= now() - interval '1 hour'$$) ~ '_timestamp_idx' AS time_range_uses_index,
       pg_temp.plan($$SELECT * FROM ai_decision_events WHERE id = 'evt-x'$$) ~ 'pkey' AS id_lookup_uses_key,
       pg_temp.plan($$SELECT * FROM policy_evaluations WHERE event_id = 'evt-x'$$) ~ 'pkey' AS evaluation_event_lookup_uses_key,
       pg_temp.plan($$SELECT * FROM policy_evaluations WHERE policy_name = 'toxicity' AND result = 'block'$$) ~ '_policy_idx' AS policy_lookup_uses_index;
-- the indexes are ascending (cheaper to fill in time order): newest-first queries read them
-- backward, with no Sort node ("Sort Key" lines belong to Merge Append)
SELECT pg_temp.plan($$SELECT * FROM ai_decision_events WHERE user_id = 'user-0001' ORDER BY timestamp DESC LIMIT 20$$) !~ 'Sort\n' AS user_newest_first_without_sort,
       pg_temp.plan($$SELECT * FROM ai_decision_events WHERE decision = 'blocked' ORDER BY timestamp DESC LIMIT 20$$) ~ 'Index Scan Backward' AS decision_newest_first_reads_backward,
       pg_temp.plan($$SELECT * FROM ai_decision_events ORDER BY timestamp DESC LIMIT 20$$) !~ 'Sort\n' AS newest_first_without_sort;
RESET enable_seqscan;
