-- Incremental rollups: dirty-hour tracking, exact refresh, late data, live reads before a
-- refresh, the latency sketch, and the job runner.
-- rows older than this month must wait in the default partition here (the move is under test):
-- no past partitions at install
SET kt_governance.premake_past = 0;
CREATE EXTENSION kt_governance;
\ir _helpers.psql
-- the summary rollup's raw-row definition (every dimension the summary filters by)
CREATE VIEW pg_temp.raw_summary_hours AS
SELECT date_trunc('hour', "timestamp", 'UTC') AS bucket, gateway_id, team_id, model, decision, count(*) AS event_count,
       sum(cost_usd) AS total_cost, sum(input_tokens) AS total_input_tokens, sum(output_tokens) AS total_output_tokens,
       sum(latency_ms) AS latency_sum, count(latency_ms) AS latency_count
FROM ai_decision_events GROUP BY 1, 2, 3, 4, 5;
CREATE VIEW pg_temp.summary_days_from_hours AS
SELECT date_trunc('day', bucket, 'UTC') AS bucket, gateway_id, team_id, model, decision, sum(event_count)::bigint AS event_count,
       sum(total_cost) AS total_cost, sum(total_input_tokens)::bigint AS tin, sum(total_output_tokens)::bigint AS tout,
       sum(latency_sum)::bigint AS latency_sum, sum(latency_count)::bigint AS latency_count
FROM kt_rollup_summary_hourly GROUP BY 1, 2, 3, 4, 5;
-- the sample data spans the last 10 days: give all of it a dated partition first, so no row
-- waits in the default partition for a later maintenance run to move (which month that would
-- be depends on the date the test runs at)
SELECT count(*) > 0 AS partitions_made FROM kt_create_partitions(now() - interval '40 days', now() + interval '1 day');
SELECT count(*) > 0 AS premade FROM kt_run_maintenance();

BEGIN;
SELECT * FROM kt_generate_sample_events(20000, 10, 21, now());
-- every hour with new rows is dirty, nothing is refreshed yet; reports are exact anyway
SELECT count(DISTINCT bucket) BETWEEN 240 AND 241 AS ten_days_of_dirty_hours FROM kt_dirty_hours;
SELECT report, differences FROM pg_temp.compare_all();
SELECT pg_temp.diff('SELECT hour, gateway_id, model, total_requests, allowed, blocked, escalated, total_cost, p50_latency, p99_latency, total_input_tokens, total_output_tokens FROM governance_metrics_hourly',
                    'SELECT * FROM pg_temp.doc_metrics') AS metrics_view_differences_live;
COMMIT;

SELECT hours_refreshed BETWEEN 240 AND 241 AS refreshed_all FROM kt_refresh_metrics();
SELECT count(*) AS dirty_after_refresh FROM kt_dirty_hours;
SELECT hours_refreshed AS second_refresh_is_a_noop FROM kt_refresh_metrics();
BEGIN;
SELECT report, differences FROM pg_temp.compare_all();
-- the view now reads the rollup; redacted is our extra column
SELECT pg_temp.diff('SELECT hour, gateway_id, model, total_requests, allowed, blocked, escalated, total_cost, p50_latency, p99_latency, total_input_tokens, total_output_tokens FROM governance_metrics_hourly',
                    'SELECT * FROM pg_temp.doc_metrics') AS metrics_view_differences;
SELECT sum(redacted) = (SELECT count(*) FROM ai_decision_events WHERE decision = 'redacted') AS redacted_counts FROM governance_metrics_hourly;
COMMIT;

-- late data in hours refreshed long ago: insert, update, delete
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, team_id, cost_usd, latency_ms, input_tokens, output_tokens)
SELECT 'late-' || g, date_trunc('hour', now()) - interval '5 days' + g * interval '1 minute', 'blocked', 'gpt-4o', 'openai', 'gw-us-east', 'search', 0.01, 900, 100, 0
FROM generate_series(1, 30) g;
UPDATE ai_decision_events SET cost_usd = cost_usd + 1, latency_ms = latency_ms + 5000
WHERE "timestamp" >= now() - interval '8 days' AND "timestamp" < now() - interval '8 days' + interval '2 hours';
-- (an evaluation's result changed in the same hours: the policy rollup recomputes them too)
UPDATE policy_evaluations SET result = 'flag'
WHERE result = 'pass' AND event_timestamp >= now() - interval '8 days' AND event_timestamp < now() - interval '8 days' + interval '2 hours';
DELETE FROM policy_evaluations WHERE event_timestamp >= now() - interval '3 days' AND event_timestamp < now() - interval '3 days' + interval '1 hour';
DELETE FROM ai_decision_events WHERE "timestamp" >= now() - interval '3 days' AND "timestamp" < now() - interval '3 days' + interval '1 hour';
SELECT count(DISTINCT bucket) BETWEEN 3 AND 6 AS only_touched_hours_dirty FROM kt_dirty_hours;
-- before the refresh: exact through the live path
BEGIN;
SELECT report, differences FROM pg_temp.compare_all();
SELECT pg_temp.diff('SELECT hour, gateway_id, model, total_requests, allowed, blocked, escalated, total_cost, p50_latency, p99_latency, total_input_tokens, total_output_tokens FROM governance_metrics_hourly',
                    'SELECT * FROM pg_temp.doc_metrics') AS metrics_view_differences;
COMMIT;
SELECT hours_refreshed BETWEEN 3 AND 6 AS refreshed_only_dirty FROM kt_refresh_metrics();
BEGIN;
SELECT report, differences FROM pg_temp.compare_all();
SELECT pg_temp.diff('SELECT hour, gateway_id, model, total_requests, allowed, blocked, escalated, total_cost, p50_latency, p99_latency, total_input_tokens, total_output_tokens FROM governance_metrics_hourly',
                    'SELECT * FROM pg_temp.doc_metrics') AS metrics_view_differences;
-- explicit ranges that cut hours in the middle combine rollup hours with raw edges exactly
SELECT pg_temp.diff($$SELECT * FROM kt_governance_summary(start_time => now() - interval '6 days 37 minutes', end_time => now() - interval '1 day 13 minutes')$$,
                    $$SELECT date_trunc('day', timestamp), decision, count(*), sum(cost_usd), avg(latency_ms), sum(input_tokens + output_tokens) FROM ai_decision_events
                      WHERE timestamp >= now() - interval '6 days 37 minutes' AND timestamp < now() - interval '1 day 13 minutes' GROUP BY 1, 2$$) AS summary_range_differences;
-- the summary's filters read the rollup keyed by every dimension, with raw edges
SELECT f.label, pg_temp.diff(format($$SELECT * FROM kt_governance_summary(start_time => now() - interval '6 days 37 minutes',
                                          end_time => now() - interval '1 day 13 minutes', gateway_id => %L, team_id => %L, model => %L)$$,
                                     f.gw, f.team, f.model),
                              format($$SELECT date_trunc('day', timestamp), decision, count(*), sum(cost_usd), avg(latency_ms), sum(input_tokens + output_tokens)
                                       FROM ai_decision_events WHERE timestamp >= now() - interval '6 days 37 minutes' AND timestamp < now() - interval '1 day 13 minutes'
                                        AND (%1$L IS NULL OR gateway_id = %1$L) AND (%2$L IS NULL OR team_id = %2$L) AND (%3$L IS NULL OR model = %3$L)
                                       GROUP BY 1, 2$$, f.gw, f.team, f.model)) AS differences,
       (SELECT count(*) FROM kt_governance_summary(start_time => now() - interval '6 days 37 minutes', end_time => now() - interval '1 day 13 minutes',
                                                   gateway_id => f.gw, team_id => f.team, model => f.model)) > 0 AS has_rows
FROM (VALUES ('team', NULL, 'search', NULL), ('gateway and model', 'gw-us-east', NULL, 'gpt-4o'),
             ('all three', 'gw-eu-west', 'search', 'gpt-4o-mini')) f(label, gw, team, model);
SELECT pg_temp.diff($$SELECT * FROM kt_governance_summary(tz => 'Asia/Kolkata')$$,
                    $$SELECT date_trunc('day', timestamp, 'Asia/Kolkata'), decision, count(*), sum(cost_usd), avg(latency_ms), sum(input_tokens + output_tokens) FROM ai_decision_events
                      WHERE timestamp >= now() - interval '30 days' GROUP BY 1, 2$$) AS half_hour_zone_differences;
-- partial edge hours are summed per decision and dated by their start: exact in another
-- whole-hour zone too; a window holding no whole hour but crossing a local midnight (Auckland
-- is UTC+13 in November) is summed row by row, each row on its own day
SELECT pg_temp.diff($$SELECT * FROM kt_governance_summary(start_time => now() - interval '5 days 23 minutes', end_time => now() - interval '2 days 41 minutes', tz => 'America/New_York')$$,
                    $$SELECT date_trunc('day', timestamp, 'America/New_York'), decision, count(*), sum(cost_usd), avg(latency_ms), sum(input_tokens + output_tokens) FROM ai_decision_events
                      WHERE timestamp >= now() - interval '5 days 23 minutes' AND timestamp < now() - interval '2 days 41 minutes' GROUP BY 1, 2$$) AS summary_edges_other_zone_differences;
CREATE TEMP TABLE auckland_midnight AS
SELECT date_trunc('day', now() - interval '3 days', 'Pacific/Auckland') AS m;
SELECT pg_temp.diff($$SELECT * FROM kt_governance_summary(start_time => (SELECT m FROM auckland_midnight) - interval '25 minutes', end_time => (SELECT m FROM auckland_midnight) + interval '25 minutes', tz => 'Pacific/Auckland')$$,
                    $$SELECT date_trunc('day', timestamp, 'Pacific/Auckland'), decision, count(*), sum(cost_usd), avg(latency_ms), sum(input_tokens + output_tokens) FROM ai_decision_events
                      WHERE timestamp >= (SELECT m FROM auckland_midnight) - interval '25 minutes' AND timestamp < (SELECT m FROM auckland_midnight) + interval '25 minutes' GROUP BY 1, 2$$) AS summary_across_midnight_differences,
       (SELECT count(DISTINCT day) FROM kt_governance_summary(start_time => (SELECT m FROM auckland_midnight) - interval '25 minutes', end_time => (SELECT m FROM auckland_midnight) + interval '25 minutes', tz => 'Pacific/Auckland')) AS days_across_midnight;
-- spend combines daily rows (whole clean UTC days), hourly rows (edge days) and raw edges
SELECT pg_temp.diff($$SELECT * FROM kt_spend_by_team_model(start_time => now() - interval '6 days 37 minutes', end_time => now() - interval '1 day 13 minutes')$$,
                    $$SELECT coalesce(team_id, 'unassigned'), model, count(*), sum(input_tokens), sum(output_tokens), sum(cost_usd) FROM ai_decision_events
                      WHERE timestamp >= now() - interval '6 days 37 minutes' AND timestamp < now() - interval '1 day 13 minutes' AND decision = 'allowed'
                      GROUP BY team_id, model$$) AS spend_range_differences;
SELECT pg_temp.diff($$SELECT hour, series, total, blocked FROM kt_anomalies(lookback => '10 days', dimension => 'gateway_id')$$,
                    $$SELECT date_trunc('hour', timestamp), gateway_id, count(*), count(*) FILTER (WHERE decision = 'blocked') FROM ai_decision_events
                      WHERE timestamp >= now() - interval '10 days' GROUP BY 1, 2$$) AS anomalies_by_gateway_differences;
-- partial edge hours: read inside the window, or as the clean hour's rollup minus the rows
-- outside it (when that part is shorter, or lies after now); each way equals raw rows
SELECT w.label, pg_temp.diff(format($$SELECT hour, series, total, blocked FROM kt_anomalies(start_time => %L, end_time => %L, dimension => %L)$$, w.s, w.e, w.dim),
                             format($$SELECT date_trunc('hour', timestamp), CASE %L WHEN 'model' THEN model END, count(*), count(*) FILTER (WHERE decision = 'blocked')
                                      FROM ai_decision_events WHERE timestamp >= %L AND timestamp < %L GROUP BY 1, 2$$, w.dim, w.s, w.e)) AS differences
FROM (VALUES ('both edges flipped', date_trunc('hour', now()) - interval '6 days' + interval '10 minutes', date_trunc('hour', now()) - interval '4 days' + interval '50 minutes', NULL),
             ('both edges flipped, by model', date_trunc('hour', now()) - interval '6 days' + interval '10 minutes', date_trunc('hour', now()) - interval '4 days' + interval '50 minutes', 'model'),
             ('no edge flipped', date_trunc('hour', now()) - interval '6 days' + interval '50 minutes', date_trunc('hour', now()) - interval '4 days' + interval '10 minutes', NULL),
             ('window ends now', now() - interval '2 days', now(), 'model'),
             ('within one hour', date_trunc('hour', now()) - interval '5 days' + interval '5 minutes', date_trunc('hour', now()) - interval '5 days' + interval '55 minutes', NULL))
     w(label, s, e, dim)
ORDER BY 1;
-- (the first two windows' edge hours are clean, so those windows do take the flipped path)
SELECT kt_hour_is_clean(date_trunc('hour', now()) - interval '6 days') AND kt_hour_is_clean(date_trunc('hour', now()) - interval '4 days') AS edge_hours_clean;
COMMIT;

-- batched inserts are summed by the row trigger (kt_rollup_deltas): the refresh merges them into
-- the rollups without reading the hours' rows, and every report, p50/p99 included, stays exact
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, user_id, team_id,
                                input_tokens, output_tokens, cost_usd, latency_ms, request_source, batch_id)
SELECT id || '-batch', date_trunc('hour', now()) - interval '2 days' - (date_trunc('hour', now()) - interval '2 days' - "timestamp") / 8,
       decision, model, provider, gateway_id, user_id, team_id, input_tokens, output_tokens, cost_usd, latency_ms,
       request_source, batch_id
FROM kt_sample_events(6000, 1, 77, date_trunc('hour', now()) - interval '2 days');
-- and their evaluations, in a transaction of their own: summed into kt_policy_deltas the same way
INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result, latency_ms, details)
SELECT event_id || '-batch', date_trunc('hour', now()) - interval '2 days' - (date_trunc('hour', now()) - interval '2 days' - event_timestamp) / 8,
       policy_name, result, latency_ms, details
FROM kt_sample_evaluations(6000, 1, 77, date_trunc('hour', now()) - interval '2 days');
SELECT count(DISTINCT bucket) AS batch_hours_dirty, bool_or(recompute) AS any_recompute
FROM kt_dirty_hours;
SELECT sum(event_count) AS events_in_deltas, (SELECT count(*) > 0 FROM kt_latency_deltas) AS histograms_kept
FROM kt_rollup_deltas;
SELECT (SELECT sum(evaluation_count) FROM kt_policy_deltas) = (SELECT count(*) FROM policy_evaluations WHERE event_id LIKE '%-batch')
       AS every_batch_evaluation_in_deltas;
BEGIN;
SELECT report, differences FROM pg_temp.compare_all();
COMMIT;
SELECT hours_refreshed AS merged_hours FROM kt_refresh_metrics();
SELECT (SELECT count(*) FROM kt_rollup_deltas) + (SELECT count(*) FROM kt_latency_deltas)
       + (SELECT count(*) FROM kt_policy_deltas) AS deltas_left;
-- the merged policy rollup is the evaluations' raw count, hour by hour
SELECT pg_temp.diff('SELECT bucket, policy_name, result, evaluation_count, latency_sum, latency_count FROM kt_rollup_policy_hourly',
                    $$SELECT date_trunc('hour', event_timestamp, 'UTC'), policy_name, result, count(*), sum(latency_ms), count(latency_ms)
                      FROM policy_evaluations GROUP BY 1, 2, 3$$) AS policy_rollup_differences_after_merge;
-- and the merged summary rollup the events' raw sums at every dimension, its days their hours' sums
SELECT pg_temp.diff('SELECT * FROM kt_rollup_summary_hourly', 'SELECT * FROM pg_temp.raw_summary_hours') AS summary_rollup_differences_after_merge,
       pg_temp.diff('SELECT * FROM kt_rollup_summary_daily', 'SELECT * FROM pg_temp.summary_days_from_hours') AS summary_days_differences_after_merge;
BEGIN;
SELECT report, differences FROM pg_temp.compare_all();
SELECT pg_temp.diff('SELECT hour, gateway_id, model, total_requests, allowed, blocked, escalated, total_cost, p50_latency, p99_latency, total_input_tokens, total_output_tokens FROM governance_metrics_hourly',
                    'SELECT * FROM pg_temp.doc_metrics') AS metrics_view_differences_after_merge;
-- the merged exact histograms give the exact percentile of a whole day
SELECT kt_histogram_quantile(kt_histogram_merge_agg(r.latency_histogram), 0.99)
       = (SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) FROM ai_decision_events
          WHERE "timestamp" >= date_trunc('day', now() - interval '50 hours', 'UTC')
            AND "timestamp" < date_trunc('day', now() - interval '50 hours', 'UTC') + interval '1 day') AS day_p99_exact
FROM kt_rollup_metrics_hourly r
WHERE r.bucket >= date_trunc('day', now() - interval '50 hours', 'UTC')
  AND r.bucket < date_trunc('day', now() - interval '50 hours', 'UTC') + interval '1 day';
COMMIT;
-- one event per transaction does not aggregate: a recompute mark and no delta rows
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, latency_ms)
VALUES ('single-1', now() - interval '3 days', 'allowed', 'gpt-4o', 'openai', 'gw-us-east', 10);
SELECT count(*) AS marks, bool_and(recompute) AS recompute, (SELECT count(*) FROM kt_rollup_deltas) AS delta_rows
FROM kt_dirty_hours;
-- a rolled-back savepoint gives the transaction's sums up: its hours are recomputed
BEGIN;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, latency_ms)
SELECT 'kept-' || g, date_trunc('hour', now()) - interval '4 days' + g * interval '1 second', 'allowed', 'gpt-4o', 'openai', 'gw-us-east', g
FROM generate_series(1, 50) g;
SAVEPOINT s;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, latency_ms)
SELECT 'undone-' || g, date_trunc('hour', now()) - interval '4 days' + g * interval '1 second', 'blocked', 'gpt-4o', 'openai', 'gw-us-east', 1000 + g
FROM generate_series(1, 50) g;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT bool_or(recompute) FILTER (WHERE bucket = date_trunc('hour', now()) - interval '4 days') AS savepoint_hour_recomputed,
       (SELECT count(*) FROM kt_rollup_deltas) AS delta_rows
FROM kt_dirty_hours;
-- a refresh inside the inserting transaction (whose sums are still in memory) recomputes
BEGIN;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, latency_ms)
SELECT 'same-xact-' || g, date_trunc('hour', now()) - interval '5 days' + g * interval '1 second', 'escalated', 'gpt-4o', 'openai', 'gw-us-east', g
FROM generate_series(1, 50) g;
SELECT hours_refreshed FROM kt_refresh_metrics();
SELECT report, differences FROM pg_temp.compare_all();
COMMIT;
SELECT count(*) AS deltas_after_same_transaction_refresh FROM kt_rollup_deltas;
SELECT hours_refreshed FROM kt_refresh_metrics();
-- rollup rows written from outside the refresh (a restore, a manual fix) make their hour a
-- recompute, so deltas are never added on top of rows that already hold them
INSERT INTO kt_rollup_decisions_hourly VALUES (date_trunc('hour', now()) - interval '20 days', 'allowed', 1000000, 0, 0, 0, 0);
SELECT count(*) AS outside_writes_marked FROM kt_dirty_hours WHERE recompute;
SELECT hours_refreshed FROM kt_refresh_metrics();
BEGIN;
SELECT report, differences FROM pg_temp.compare_all();
SELECT pg_temp.diff('SELECT hour, gateway_id, model, total_requests, allowed, blocked, escalated, total_cost, p50_latency, p99_latency, total_input_tokens, total_output_tokens FROM governance_metrics_hourly',
                    'SELECT * FROM pg_temp.doc_metrics') AS metrics_view_differences_after_all;
SELECT pg_temp.diff('SELECT * FROM kt_rollup_summary_hourly', 'SELECT * FROM pg_temp.raw_summary_hours') AS summary_rollup_differences_after_all,
       pg_temp.diff('SELECT * FROM kt_rollup_summary_daily', 'SELECT * FROM pg_temp.summary_days_from_hours') AS summary_days_differences_after_all;
COMMIT;

-- mergeable sketch: p50/p99 of a whole day from merged hourly sketches within 1% of the exact
-- value. PERCENTILE_CONT interpolates between the two ranks around q * (n - 1); a sketch answers
-- with (an estimate of) one of them, so with ~2000 values a day the check is: within 1% of
-- PERCENTILE_CONT, or within 1% of the span between those two neighbouring values.
WITH day AS (SELECT date_trunc('day', now() - interval '2 days') AS d),
sketch AS (SELECT kt_sketch_merge_agg(latency_sketch) AS s FROM kt_rollup_metrics_hourly, day
           WHERE bucket >= day.d AND bucket < day.d + interval '1 day'),
exact AS (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
                 percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99,
                 count(latency_ms) AS n,
                 array_agg(latency_ms ORDER BY latency_ms) FILTER (WHERE latency_ms IS NOT NULL) AS sorted
          FROM ai_decision_events, day WHERE timestamp >= day.d AND timestamp < day.d + interval '1 day'),
checked AS (SELECT q, kt_sketch_quantile(s, q) AS got, CASE q WHEN 0.5 THEN p50 ELSE p99 END AS cont,
                   sorted[floor(q * (n - 1))::int + 1] AS lo, sorted[ceil(q * (n - 1))::int + 1] AS hi, n, s
            FROM sketch, exact, unnest(ARRAY[0.5, 0.99]) q)
SELECT q, abs(got / cont - 1) <= 0.01 OR got BETWEEN 0.99 * lo AND 1.01 * hi AS within_1pct,
       kt_governance_internal.kt_sketch_count(s) = n AS sketch_counts_every_latency
FROM checked ORDER BY q;
SELECT pg_temp.try($$SELECT kt_sketch_quantile('\x0102'::bytea, 0.5)$$);
SELECT pg_temp.try($$SELECT kt_sketch_quantile(kt_governance_internal.kt_latency_sketch(ARRAY[1.0, 2.0]), 1.5)$$);

-- jobs: run now, recorded; a failing job is recorded and does not raise; it recovers
SELECT status, rows_touched FROM kt_run_job('refresh_metrics');
SELECT status FROM kt_run_job('maintenance');
ALTER TABLE kt_rollup_spend_hourly ADD CONSTRAINT test_refuse_everything CHECK (false) NOT VALID;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('poison', now(), 'allowed', 'm', 'p', 'g');
SELECT status, message FROM kt_run_job('refresh_metrics');
SELECT count(DISTINCT bucket) AS dirty_hours_kept_after_failure FROM kt_dirty_hours;
SELECT job_name, last_error IS NOT NULL AS has_error, consecutive_failures, last_error_message FROM kt_jobs ORDER BY 1;
ALTER TABLE kt_rollup_spend_hourly DROP CONSTRAINT test_refuse_everything;
SELECT status, rows_touched FROM kt_run_job('refresh_metrics');
SELECT job_name, status, count(*) FROM kt_job_runs GROUP BY 1, 2 ORDER BY 1, 2;
SELECT job_name, consecutive_failures FROM kt_health ORDER BY 1;
SELECT pg_temp.try($$SELECT * FROM kt_run_job('vacuum_everything')$$);
-- scheduling: a job just run is not due; with its interval at 0 it never is
SELECT kt_due_jobs();
-- history is bounded
SET kt_governance.job_history_successes = 2;
SELECT count(*) FROM (SELECT kt_run_job('maintenance') FROM generate_series(1, 4)) runs;
SELECT count(*) AS maintenance_successes_kept FROM kt_job_runs WHERE job_name = 'maintenance' AND status = 'ok';

-- the daily spend rollup is the sum of the hourly one, day by day
CREATE TEMP VIEW spend_days_from_hours AS
SELECT date_trunc('day', bucket, 'UTC') AS bucket, team_id, model, decision, sum(request_count)::bigint AS request_count,
       sum(total_input_tokens)::bigint AS total_input_tokens, sum(total_output_tokens)::bigint AS total_output_tokens,
       sum(total_cost) AS total_cost
FROM kt_rollup_spend_hourly GROUP BY 1, 2, 3, 4;
SELECT pg_temp.diff('SELECT * FROM kt_rollup_spend_daily', 'SELECT * FROM spend_days_from_hours') AS daily_spend_differences;
SELECT count(*) > 0 AS daily_rows_exist FROM kt_rollup_spend_daily;

-- rollup retention (raw retention off): hourly rows before the cutoff go, whole days before the
-- cutoff's day go, and the cutoff's day is summed again from the hours it keeps
SET kt_governance.retention_hours = 0;
SET kt_governance.rollup_retention_hours = 100;
SELECT status FROM kt_run_job('retention');
SELECT count(*) AS hourly_rows_before_cutoff FROM kt_rollup_spend_hourly WHERE bucket < now() - interval '100 hours';
SELECT count(*) AS metric_rows_before_cutoff FROM kt_rollup_metrics_hourly WHERE bucket < now() - interval '100 hours';
SELECT count(*) > 0 AS later_hourly_rows_kept FROM kt_rollup_spend_hourly WHERE bucket >= now() - interval '100 hours';
SELECT count(*) AS daily_rows_before_cutoff_day FROM kt_rollup_spend_daily
WHERE bucket < date_trunc('day', now() - interval '100 hours', 'UTC');
SELECT pg_temp.diff('SELECT * FROM kt_rollup_spend_daily', 'SELECT * FROM spend_days_from_hours') AS daily_spend_differences_after_rollup_retention;
SELECT pg_temp.diff('SELECT * FROM kt_rollup_summary_daily', 'SELECT * FROM pg_temp.summary_days_from_hours') AS summary_days_differences_after_rollup_retention,
       (SELECT count(*) FROM kt_rollup_summary_hourly WHERE bucket < now() - interval '100 hours') AS summary_hours_before_cutoff;
RESET kt_governance.rollup_retention_hours;
RESET kt_governance.retention_hours;

-- refresh up_to: only hours starting before it (retention refreshes up to its cutoff)
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('up-to-1', date_trunc('hour', now()) - interval '30 hours', 'allowed', 'm', 'p', 'g'),
       ('up-to-2', date_trunc('hour', now()) - interval '2 hours', 'allowed', 'm', 'p', 'g');
SELECT hours_refreshed, oldest_hour = date_trunc('hour', now()) - interval '30 hours' AS only_the_older_hour
FROM kt_refresh_metrics(up_to => date_trunc('hour', now()) - interval '3 hours');
SELECT count(DISTINCT bucket) AS still_dirty FROM kt_dirty_hours;
SELECT pg_temp.try($$SELECT * FROM kt_refresh_metrics(up_to => NULL)$$);
SELECT hours_refreshed FROM kt_refresh_metrics();

-- draining the default partition moves rows between partitions, which changes no aggregate:
-- the move marks no hour dirty, so the next refresh has nothing to recompute
SELECT date_trunc('hour', now()) - interval '70 days' AS homeless_hour \gset
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, latency_ms)
SELECT 'homeless-' || g, :'homeless_hour'::timestamptz + g * interval '1 minute', 'allowed', 'gpt-4o', 'openai', 'gw-us-east', g
FROM generate_series(1, 20) g;
SELECT count(*) AS waiting_in_default FROM ONLY kt_governance_partitions.events_default;
SELECT hours_refreshed AS refreshed_before_the_drain FROM kt_refresh_metrics();
SELECT rows_moved FROM kt_run_maintenance();
SELECT count(DISTINCT bucket) AS hours_dirtied_by_the_drain FROM kt_dirty_hours;
SELECT hours_refreshed FROM kt_refresh_metrics();
-- (rollup retention above pruned older hours, so compare the moved hour only)
-- (psql does not substitute variables inside dollar quotes: the hour goes in through format)
SELECT pg_temp.diff(format($$SELECT hour, gateway_id, model, total_requests, allowed, blocked, escalated, total_cost, p50_latency, p99_latency, total_input_tokens, total_output_tokens
                      FROM governance_metrics_hourly WHERE hour = %L::timestamptz$$, :'homeless_hour'),
                    format($$SELECT * FROM pg_temp.doc_metrics WHERE hour = %L::timestamptz$$, :'homeless_hour')) AS moved_hour_differences,
       (SELECT sum(total_requests) FROM governance_metrics_hourly WHERE hour = :'homeless_hour'::timestamptz) AS moved_hour_requests;

-- dirty marks survive a rolled-back savepoint that wrote or gave them up
SELECT count(*) AS made FROM kt_create_partitions('2032-01-01', '2032-02-01');
-- (1) a batch that aggregates, then in a savepoint one that gives the sums up, rolled back
BEGIN;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, latency_ms)
SELECT 'sp-a-' || g, '2032-01-10 10:00+00'::timestamptz + (g % 50) * interval '1 minute', 'allowed', 'gpt-4o', 'openai', 'gw-1', g
FROM generate_series(1, 1000) g;
SAVEPOINT s;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, latency_ms)
SELECT 'sp-b-' || g, '2032-01-10 10:00+00'::timestamptz + g * interval '1 second', 'blocked', 'm-' || g, 'p', 'gw-' || g, g
FROM generate_series(1, 3000) g;
ROLLBACK TO SAVEPOINT s;
COMMIT;
-- (2) rows aimed at a partition (no parent statement trigger), then a savepoint whose parent
-- statement writes the pending marks and rolls back
BEGIN;
INSERT INTO kt_governance_partitions.events_2032_01 (id, "timestamp", decision, model, provider, gateway_id, latency_ms)
SELECT 'sp-c-' || g, '2032-01-11 10:00+00'::timestamptz + g * interval '1 second', 'allowed', 'gpt-4o', 'openai', 'gw-1', g
FROM generate_series(1, 200) g;
SAVEPOINT s;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('sp-d', '2032-01-12 10:00+00', 'allowed', 'm', 'p', 'g');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT hours_refreshed > 0 AS refreshed FROM kt_refresh_metrics();
SELECT h.hour, (SELECT sum(total_requests) FROM governance_metrics_hourly m WHERE m.hour = h.hour) AS rollup_requests,
       (SELECT count(*) FROM ai_decision_events e WHERE e."timestamp" >= h.hour AND e."timestamp" < h.hour + interval '1 hour') AS raw_events
FROM (VALUES ('2032-01-10 10:00+00'::timestamptz), ('2032-01-11 10:00+00')) h(hour) ORDER BY 1;
