-- The BI views: governance_metrics_hourly, governance_spend_daily, governance_summary_daily,
-- governance_policy_hourly and governance_anomalies_hourly equal their raw-row definitions (EXCEPT ALL both ways) before and after a refresh, after late inserts, updates and
-- deletes, in a UTC and an Asia/Kolkata session; with 400 daily partitions a 24-hour query's
-- plan holds no events partition and stays below jit_above_cost; a reader may read them.
-- Fixed instants only: the data lies in 2024, whatever the clock says.
CREATE EXTENSION kt_governance;
\ir _helpers.psql
SELECT count(*) AS daily_partitions FROM kt_create_partitions('2024-01-01', '2025-02-04', 'daily');
SELECT kt_generate_sample_events(6000, 10, 23, '2024-06-01 00:00+00') IS NOT NULL AS loaded;

-- the views' raw-row definitions
CREATE VIEW pg_temp.raw_metrics AS
SELECT date_trunc('hour', "timestamp", 'UTC') AS hour, gateway_id, model, count(*) AS total_requests,
       count(*) FILTER (WHERE decision = 'allowed') AS allowed, count(*) FILTER (WHERE decision = 'blocked') AS blocked,
       count(*) FILTER (WHERE decision = 'escalated') AS escalated, sum(cost_usd) AS total_cost,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_latency,
       sum(input_tokens) AS total_input_tokens, sum(output_tokens) AS total_output_tokens,
       count(*) FILTER (WHERE decision = 'redacted') AS redacted,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY latency_ms) AS p90_latency,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_latency
FROM ai_decision_events GROUP BY 1, 2, 3;
CREATE VIEW pg_temp.raw_spend AS
SELECT date_trunc('day', "timestamp", 'UTC') AS day, coalesce(team_id, 'unassigned') AS team, model, decision,
       count(*) AS request_count, sum(input_tokens) AS total_input_tokens, sum(output_tokens) AS total_output_tokens,
       sum(cost_usd) AS total_cost_usd
FROM ai_decision_events GROUP BY 1, 2, 3, 4;
CREATE VIEW pg_temp.raw_summary AS
SELECT date_trunc('day', "timestamp", 'UTC') AS day, decision, gateway_id, team_id, model, count(*) AS event_count,
       sum(cost_usd) AS total_cost, avg(latency_ms) AS avg_latency_ms, sum(input_tokens + output_tokens) AS total_tokens,
       sum(input_tokens) AS total_input_tokens, sum(output_tokens) AS total_output_tokens,
       sum(latency_ms) AS total_latency_ms, count(latency_ms) AS latency_count
FROM ai_decision_events GROUP BY 1, 2, 3, 4, 5;
CREATE VIEW pg_temp.raw_policy AS
SELECT date_trunc('hour', event_timestamp, 'UTC') AS hour, policy_name, result, count(*) AS evaluation_count,
       CASE WHEN result = 'block' THEN count(*) ELSE 0 END AS block_count, sum(latency_ms) AS total_latency_ms,
       count(latency_ms) AS latency_count, round(avg(latency_ms), 2) AS avg_latency_ms
FROM policy_evaluations GROUP BY 1, 2, 3;
-- the document's anomaly rule with each hour's baseline the 48 hours before it (window
-- functions; float sums are compared to 9 decimals, their order differs)
CREATE VIEW pg_temp.raw_anomalies AS
WITH hourly AS (
    SELECT date_trunc('hour', "timestamp", 'UTC') AS hour, count(*) AS total,
           count(*) FILTER (WHERE decision = 'blocked') AS blocked
    FROM ai_decision_events GROUP BY 1
), judged AS (
    SELECT h.*, h.blocked::float8 / h.total AS rate,
           count(*) OVER w AS n, avg(h.blocked::float8 / h.total) OVER w AS mean,
           stddev(h.blocked::float8 / h.total) OVER w AS sd
    FROM hourly h
    WINDOW w AS (ORDER BY h.hour RANGE BETWEEN interval '48 hours' PRECEDING AND CURRENT ROW EXCLUDE CURRENT ROW)
)
SELECT hour, total, blocked, round(rate::numeric, 4) AS block_rate, n AS baseline_hours,
       round(mean::numeric, 9) AS baseline_mean, round(sd::numeric, 9) AS baseline_stddev,
       CASE WHEN rate > mean + 2 * sd THEN 'ANOMALY' ELSE 'normal' END AS status
FROM judged;
CREATE FUNCTION pg_temp.view_differences() RETURNS text LANGUAGE sql AS $$
    SELECT format('metrics %s, spend %s, summary %s, policy %s, anomalies %s (of %s hour rows, %s day rows, %s summary rows, %s policy rows, %s anomalies)',
                  pg_temp.diff('SELECT * FROM governance_metrics_hourly', 'SELECT * FROM pg_temp.raw_metrics'),
                  pg_temp.diff('SELECT * FROM governance_spend_daily', 'SELECT * FROM pg_temp.raw_spend'),
                  pg_temp.diff('SELECT * FROM governance_summary_daily', 'SELECT * FROM pg_temp.raw_summary'),
                  pg_temp.diff('SELECT * FROM governance_policy_hourly', 'SELECT * FROM pg_temp.raw_policy'),
                  pg_temp.diff($q$SELECT hour, total, blocked, block_rate, baseline_hours, round(baseline_mean::numeric, 9),
                                       round(baseline_stddev::numeric, 9), status FROM governance_anomalies_hourly$q$,
                               'SELECT * FROM pg_temp.raw_anomalies'),
                  (SELECT count(*) FROM governance_metrics_hourly), (SELECT count(*) FROM governance_spend_daily),
                  (SELECT count(*) FROM governance_summary_daily), (SELECT count(*) FROM governance_policy_hourly),
                  (SELECT count(*) FROM governance_anomalies_hourly WHERE status = 'ANOMALY')) $$;

-- before any refresh every hour is dirty: both views are computed live
SELECT count(DISTINCT bucket) > 200 AS hours_dirty FROM kt_dirty_hours;
SELECT pg_temp.view_differences() AS before_refresh;
SELECT hours_refreshed > 200 AS refreshed FROM kt_refresh_metrics();
SELECT pg_temp.view_differences() AS after_refresh;

-- late inserts into settled hours (a new team, a NULL team, a NULL latency), an update that
-- moves an event to another day and changes its cost, deletes: exact before and after a refresh
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, team_id, latency_ms, cost_usd, input_tokens)
VALUES ('late-1', '2024-05-25 10:15+00', 'blocked', 'gpt-4o', 'openai', 'gw-us-east', 'team-late', 9999, 1.5, 10),
       ('late-2', '2024-05-25 10:45+00', 'allowed', 'gpt-4o', 'openai', 'gw-us-east', NULL, NULL, 0.25, 20),
       ('late-3', '2024-05-27 23:59:59+00', 'redacted', 'claude-3-haiku', 'anthropic', 'gw-eu-west', 'team-late', 1, NULL, 0);
-- (events without evaluations: the foreign key has no cascade)
UPDATE ai_decision_events SET "timestamp" = '2024-05-28 00:30+00', cost_usd = 2
WHERE id = (SELECT e.id FROM ai_decision_events e WHERE e."timestamp" < '2024-05-24'
              AND NOT EXISTS (SELECT FROM policy_evaluations pe WHERE pe.event_id = e.id) ORDER BY e.id LIMIT 1);
DELETE FROM ai_decision_events WHERE id IN (SELECT e.id FROM ai_decision_events e WHERE e."timestamp" >= '2024-05-30'
              AND NOT EXISTS (SELECT FROM policy_evaluations pe WHERE pe.event_id = e.id) ORDER BY e.id LIMIT 25);
-- late evaluations of a settled hour (a new policy, a NULL latency), a changed result, deletes
INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result, latency_ms)
VALUES ('late-1', '2024-05-25 10:15+00', 'late-policy', 'block', 7),
       ('late-1', '2024-05-25 10:15+00', 'pii-detection', 'flag', NULL);
UPDATE policy_evaluations SET result = 'escalate'
WHERE id = (SELECT min(id) FROM policy_evaluations WHERE event_timestamp < '2024-05-24' AND result = 'pass');
DELETE FROM policy_evaluations WHERE id IN (SELECT id FROM policy_evaluations WHERE event_timestamp >= '2024-05-29'
                                            ORDER BY id LIMIT 10);
SELECT count(DISTINCT bucket) AS hours_dirty_after_late_changes FROM kt_dirty_hours;
SELECT pg_temp.view_differences() AS after_late_changes;
SET TimeZone = 'Asia/Kolkata';
SELECT pg_temp.view_differences() AS in_kolkata;
RESET TimeZone;
SELECT hours_refreshed > 0 AS refreshed FROM kt_refresh_metrics();
SELECT pg_temp.view_differences() AS after_second_refresh;
SET TimeZone = 'Asia/Kolkata';
SELECT pg_temp.view_differences() AS in_kolkata_after_refresh;
RESET TimeZone;

-- UTC days are 24 hours whatever the session's zone: events in the last UTC hour of the day
-- New York springs forward (a calendar day there is 23 hours) and in the first UTC hour after
-- the day it falls back (25 hours), written, refreshed and read in a New York session
SET TimeZone = 'America/New_York';
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, team_id, cost_usd)
VALUES ('dst-spring', '2024-03-10 23:30+00', 'allowed', 'gpt-4o', 'openai', 'gw-us-east', 'team-dst', 1),
       ('dst-fall', '2024-11-04 00:30+00', 'allowed', 'gpt-4o', 'openai', 'gw-us-east', 'team-dst', 2);
SELECT pg_temp.view_differences() AS dst_days_live;
SELECT hours_refreshed FROM kt_refresh_metrics();
SELECT pg_temp.view_differences() AS dst_days_refreshed;
SELECT day AT TIME ZONE 'UTC' AS utc_day, request_count, total_cost_usd FROM governance_spend_daily
WHERE team = 'team-dst' ORDER BY day;
-- the spend report's whole days come from the daily rollup those refreshes wrote
SELECT pg_temp.diff($$SELECT * FROM kt_spend_by_team_model(start_time => '2024-03-01 00:00+00', end_time => '2024-12-01 00:00+00',
                                                         decisions => '{allowed}') WHERE team = 'team-dst'$$,
                    $$SELECT 'team-dst', 'gpt-4o', 2::bigint, 0::bigint, 0::bigint, 3.000000::numeric$$) AS spend_report_differences;
RESET TimeZone;

-- plan shape with 400 daily partitions: a dashboard's 24-hour query plans no events partition
-- (the live parts are function scans) and its estimated cost stays below jit_above_cost, with a
-- dirty hour inside the window and without
-- (whether the rollup's index can serve is read from a plan without seq scans: this test's
-- rollups are small enough for the planner to read them whole, and majors differ in when)
CREATE FUNCTION pg_temp.shape(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    plan json;
    text_plan text;
BEGIN
    SET LOCAL enable_seqscan = off;
    text_plan := pg_temp.plan(query);
    RESET enable_seqscan;
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
    RETURN format('events partitions planned: %s, rollup index used: %s, below jit_above_cost: %s',
                  (SELECT count(*) FROM regexp_matches(text_plan, 'events_\d{4}_\d{2}_\d{2}|policy_evaluations_\d{4}', 'g')),
                  text_plan ~ '(rollup_metrics_hourly_reads|rollup_metrics_hourly_pkey|rollup_spend_daily_key|rollup_summary_daily_key|rollup_policy_hourly_pkey|rollup_decisions_hourly_pkey)',
                  (plan -> 0 -> 'Plan' ->> 'Total Cost')::float8 < current_setting('jit_above_cost')::float8);
END $$;
SELECT count(*) >= 400 AS partitions FROM kt_partitions;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('dirty-in-window', '2024-05-31 12:00+00', 'allowed', 'gpt-4o', 'openai', 'gw-us-east');
-- the filtered summary with a dirty day in its window: clean days from the daily rollup, the
-- dirty day's clean hours from the hourly one, its dirty hour from raw rows
SELECT pg_temp.diff($$SELECT * FROM kt_governance_summary(start_time => '2024-05-24 22:30+00', end_time => '2024-06-01 00:00+00',
                                                          tz => 'UTC', gateway_id => 'gw-us-east')$$,
                    $$SELECT date_trunc('day', "timestamp", 'UTC'), decision, count(*), sum(cost_usd), avg(latency_ms),
                             sum(input_tokens + output_tokens) FROM ai_decision_events
                      WHERE "timestamp" >= '2024-05-24 22:30+00' AND "timestamp" < '2024-06-01 00:00+00' AND gateway_id = 'gw-us-east'
                      GROUP BY 1, 2$$) AS filtered_summary_with_dirty_day;
-- zones that are not whole hours from UTC: the UTC hour holding each midnight of the zone is read
-- row by row (here one of them dirty, one event on each side of Kolkata's midnight), the others
-- from the rollups; with and without a filter, odd edges
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, team_id, cost_usd, latency_ms)
VALUES ('kolkata-before', '2024-05-29 18:20+00', 'blocked', 'gpt-4o', 'openai', 'gw-us-east', 'team-k', 1, 5),
       ('kolkata-after', '2024-05-29 18:40+00', 'allowed', 'gpt-4o', 'openai', 'gw-us-east', 'team-k', 2, 7);
SELECT z.zone, f.gw, pg_temp.diff(
         format($$SELECT * FROM kt_governance_summary(start_time => '2024-05-24 18:41+00', end_time => '2024-05-31 18:07+00', tz => %L, gateway_id => %L)$$, z.zone, f.gw),
         format($$SELECT date_trunc('day', "timestamp", %L), decision, count(*), sum(cost_usd), avg(latency_ms), sum(input_tokens + output_tokens)
                  FROM ai_decision_events WHERE "timestamp" >= '2024-05-24 18:41+00' AND "timestamp" < '2024-05-31 18:07+00'
                   AND (%L IS NULL OR gateway_id = %L) GROUP BY 1, 2$$, z.zone, f.gw, f.gw)) AS differences
FROM (VALUES ('Asia/Kolkata'), ('Asia/Kathmandu'), ('America/St_Johns')) z(zone), (VALUES (NULL), ('gw-us-east')) f(gw)
ORDER BY 1, 2;
SELECT cardinality(kt_governance_internal.kt_straddling_hours('Asia/Kolkata', '2024-05-24 00:00+00', '2024-05-31 00:00+00')) AS kolkata_hours_read_raw_in_7_days,
       cardinality(kt_governance_internal.kt_straddling_hours('Europe/Berlin', '2024-05-24 00:00+00', '2024-05-31 00:00+00')) AS berlin_hours_read_raw;
SELECT pg_temp.shape($$SELECT * FROM governance_metrics_hourly WHERE hour >= '2024-05-31 00:00+00' AND hour < '2024-06-01 00:00+00'$$) AS metrics_24h_dirty;
SELECT pg_temp.shape($$SELECT day, team, sum(total_cost_usd) FROM governance_spend_daily WHERE day >= '2024-05-25' AND day < '2024-06-01' GROUP BY 1, 2$$) AS spend_week_dirty;
SELECT pg_temp.shape($$SELECT day, decision, sum(event_count) FROM governance_summary_daily WHERE day >= '2024-05-25' AND day < '2024-06-01' AND team_id = 'data-science' GROUP BY 1, 2$$) AS summary_week_team_dirty;
SELECT pg_temp.shape($$SELECT policy_name, sum(block_count) FROM governance_policy_hourly WHERE hour >= '2024-05-31 00:00+00' AND hour < '2024-06-01 00:00+00' GROUP BY 1$$) AS policy_24h_dirty;
SELECT pg_temp.shape($$SELECT * FROM governance_anomalies_hourly WHERE hour >= '2024-05-31 00:00+00' AND hour < '2024-06-01 00:00+00'$$) AS anomalies_24h_dirty;
SELECT hours_refreshed FROM kt_refresh_metrics();
SELECT pg_temp.shape($$SELECT * FROM governance_metrics_hourly WHERE hour >= '2024-05-31 00:00+00' AND hour < '2024-06-01 00:00+00'$$) AS metrics_24h_clean;
SELECT pg_temp.shape($$SELECT day, decision, sum(event_count) FROM governance_summary_daily WHERE day >= '2024-05-25' AND day < '2024-06-01' AND team_id = 'data-science' GROUP BY 1, 2$$) AS summary_week_team_clean;
-- the dimension filter is a condition of the rollup's index scan, not a filter after it (seq
-- scans off: this test's rollup is small enough for the planner to read it whole)
SET enable_seqscan = off;
SELECT pg_temp.plan($$SELECT day, decision, sum(event_count) FROM governance_summary_daily WHERE day >= '2024-05-25' AND day < '2024-06-01' AND team_id = 'data-science' GROUP BY 1, 2$$)
       ~ 'Index Cond: [^\n]*bucket >= [^\n]*team_id = ''data-science''' AS summary_team_filter_in_index_cond;
RESET enable_seqscan;
SELECT pg_temp.shape($$SELECT policy_name, sum(block_count) FROM governance_policy_hourly WHERE hour >= '2024-05-31 00:00+00' AND hour < '2024-06-01 00:00+00' GROUP BY 1$$) AS policy_24h_clean;
SELECT pg_temp.shape($$SELECT * FROM governance_anomalies_hourly WHERE hour >= '2024-05-31 00:00+00' AND hour < '2024-06-01 00:00+00'$$) AS anomalies_24h_clean;
-- the report's 7-day window in the policy view: the document's rows
SELECT pg_temp.diff($$SELECT policy_name, result, sum(evaluation_count), sum(block_count) FROM governance_policy_hourly
                      WHERE hour >= '2024-05-25 00:00+00' AND hour < '2024-06-01 00:00+00' GROUP BY 1, 2$$,
                    $$SELECT policy_name, result, evaluation_count, block_count
                      FROM kt_policy_effectiveness_by_result(start_time => '2024-05-25 00:00+00', end_time => '2024-06-01 00:00+00')$$)
       AS policy_view_vs_report;
-- the summary view's week for one team and the filtered report (served by kt_rollup_summary_hourly)
SELECT pg_temp.diff($$SELECT day, decision, sum(event_count), sum(total_cost), sum(total_latency_ms) / nullif(sum(latency_count), 0),
                             sum(total_tokens) FROM governance_summary_daily
                      WHERE day >= '2024-05-25' AND day < '2024-06-01' AND team_id = 'data-science' GROUP BY 1, 2$$,
                    $$SELECT * FROM kt_governance_summary(start_time => '2024-05-25 00:00+00', end_time => '2024-06-01 00:00+00',
                                                          tz => 'UTC', team_id => 'data-science')$$)
       AS summary_view_vs_filtered_report;
SELECT pg_temp.view_differences() AS finally;

-- readers read both views (and only through them: the live functions run with their rights)
CREATE ROLE kt_views_reader LOGIN IN ROLE kt_governance_reader;
SET ROLE kt_views_reader;
SELECT count(*) > 0 AS reader_metrics FROM governance_metrics_hourly WHERE hour >= '2024-05-31';
SELECT count(*) > 0 AS reader_spend FROM governance_spend_daily WHERE day >= '2024-05-25';
SELECT count(*) > 0 AS reader_summary FROM governance_summary_daily WHERE day >= '2024-05-25';
SELECT count(*) > 0 AS reader_policy FROM governance_policy_hourly WHERE hour >= '2024-05-31';
SELECT count(*) > 0 AS reader_anomalies FROM governance_anomalies_hourly WHERE hour >= '2024-05-31';
RESET ROLE;
-- a reader whom row-level security limits to one team: every view row comes from its own rows
-- (the references are queries, not the temp views: a view reads its tables as its owner)
ALTER TABLE ai_decision_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY views_one_team ON ai_decision_events TO kt_views_reader USING (team_id = 'data-science');
-- (and to the evaluations of one policy)
ALTER TABLE policy_evaluations ENABLE ROW LEVEL SECURITY;
CREATE POLICY views_one_policy ON policy_evaluations TO kt_views_reader USING (policy_name = 'pii-detection');
SET ROLE kt_views_reader;
SELECT pg_temp.diff('SELECT * FROM governance_metrics_hourly',
                    replace(pg_get_viewdef('pg_temp.raw_metrics'), ';', '')) AS metrics_differences_under_rls,
       pg_temp.diff('SELECT * FROM governance_spend_daily',
                    replace(pg_get_viewdef('pg_temp.raw_spend'), ';', '')) AS spend_differences_under_rls,
       pg_temp.diff('SELECT * FROM governance_summary_daily',
                    replace(pg_get_viewdef('pg_temp.raw_summary'), ';', '')) AS summary_differences_under_rls,
       pg_temp.diff('SELECT * FROM governance_policy_hourly',
                    replace(pg_get_viewdef('pg_temp.raw_policy'), ';', '')) AS policy_differences_under_rls,
       pg_temp.diff($q$SELECT hour, total, blocked, block_rate, baseline_hours, round(baseline_mean::numeric, 9),
                            round(baseline_stddev::numeric, 9), status FROM governance_anomalies_hourly$q$,
                    'SELECT * FROM (' || replace(pg_get_viewdef('pg_temp.raw_anomalies'), ';', '') || ') q') AS anomalies_differences_under_rls,
       (SELECT count(DISTINCT team) FROM governance_spend_daily) AS teams_seen;
RESET ROLE;
ALTER TABLE ai_decision_events DISABLE ROW LEVEL SECURITY;
ALTER TABLE policy_evaluations DISABLE ROW LEVEL SECURITY;
-- every column of both views has a comment
SELECT c.relname, count(*) FILTER (WHERE col_description(c.oid, a.attnum) IS NULL) AS uncommented_columns
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
WHERE c.relname IN ('governance_metrics_hourly', 'governance_spend_daily', 'governance_summary_daily', 'governance_policy_hourly',
                    'governance_anomalies_hourly') GROUP BY 1 ORDER BY 1;
