-- Report functions with default arguments return exactly the document's rows; their
-- arguments, edge cases and errors; the reader role.
CREATE EXTENSION kt_governance;
\ir _helpers.psql
SELECT count(*) > 0 AS premade FROM kt_run_maintenance();

BEGIN;
-- seed 1: a month of dense data
SELECT * FROM kt_generate_sample_events(20000, 35, 1, now());
SELECT report, rows_fn > 0 AS has_rows, differences FROM pg_temp.compare_all();
-- seed 2: sparse data (many hours without blocks), plus late rows for old hours
SELECT * FROM kt_generate_sample_events(300, 40, 2, now() - interval '1 hour');
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, team_id, cost_usd, latency_ms)
SELECT 'late-' || g, now() - g * interval '5 hours', 'blocked', 'gpt-4o', 'openai', 'gw-late', NULL, 0, NULL
FROM generate_series(1, 150) g;
SELECT report, rows_fn > 0 AS has_rows, differences FROM pg_temp.compare_all();
-- seed 3 under another session TimeZone: the default bucketing follows it, like the document
SET LOCAL TimeZone = 'America/New_York';
SELECT * FROM kt_generate_sample_events(5000, 10, 3, now());
SELECT report, rows_fn > 0 AS has_rows, differences FROM pg_temp.compare_all();
-- the order is the document's: days newest first, then decision
SELECT (SELECT array_agg(day::text || decision) FROM kt_governance_summary())
     = (SELECT array_agg(day::text || decision ORDER BY day DESC, decision) FROM pg_temp.doc_summary) AS summary_in_document_order;
COMMIT;

-- explicit range, filters and named arguments
SELECT sum(event_count) = (SELECT count(*) FROM ai_decision_events
                           WHERE "timestamp" >= now() - interval '3 days' AND gateway_id = 'gw-us-east') AS filtered_range_matches
FROM kt_governance_summary(start_time => now() - interval '3 days', end_time => now() + interval '1 hour',
                           gateway_id => 'gw-us-east');
SELECT sum(request_count) = (SELECT count(*) FROM ai_decision_events
                             WHERE "timestamp" >= now() - interval '30 days' AND decision IN ('allowed', 'blocked')) AS spend_counts_chosen_decisions
FROM kt_spend_by_team_model(decisions => ARRAY['allowed', 'blocked']);
SELECT bool_and(team IS NOT NULL) AS null_team_is_unassigned, count(*) FILTER (WHERE team = 'unassigned') > 0 AS has_unassigned
FROM kt_spend_by_team_model();
SELECT policy_name, evaluation_count = pass_count + block_count + redact_count + flag_count + escalate_count AS counts_add_up,
       block_rate_pct = round(100.0 * block_count / evaluation_count, 2) AS rate_is_blocks_over_evaluations
FROM kt_policy_effectiveness(lookback => '30 days') ORDER BY policy_name;

-- time zones: an event at 23:30 UTC belongs to the next day in Asia/Tokyo
SELECT * FROM kt_create_partitions('2031-06-01', '2031-07-01');
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, input_tokens, output_tokens, cost_usd, latency_ms)
VALUES ('tz-1', '2031-06-10 23:30:00+00', 'allowed', 'm', 'p', 'g', 10, 5, 0.5, 100);
SET TimeZone = 'UTC';
SELECT day, decision, event_count, total_tokens FROM kt_governance_summary(start_time => '2031-06-10', end_time => '2031-06-12', tz => 'Asia/Tokyo');
SELECT day, decision, event_count FROM kt_governance_summary(start_time => '2031-06-10', end_time => '2031-06-12');

-- anomalies: a crafted spike is flagged; min_requests, exclude_self and dimension
CREATE TEMP TABLE spike AS
SELECT 'spike-' || h || '-' || k AS id, date_trunc('hour', '2031-06-20 00:00+00'::timestamptz) + h * interval '1 hour' + k * interval '1 second' AS ts,
       CASE WHEN (h = 10 AND k < 9) OR k = 0 THEN 'blocked' ELSE 'allowed' END AS decision,
       CASE WHEN k % 2 = 0 THEN 'gw-a' ELSE 'gw-b' END AS gw
FROM generate_series(0, 23) h, generate_series(0, 19) k;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
SELECT id, ts, decision, 'm', 'p', gw FROM spike;
-- a tiny hour with one blocked request: flagged by default, not with min_requests
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('tiny', '2031-06-21 03:00+00', 'blocked', 'm', 'p', 'gw-a');
SELECT hour, total, blocked, block_rate, status FROM kt_anomalies(start_time => '2031-06-19', end_time => '2031-06-23')
WHERE status = 'ANOMALY' ORDER BY hour;
SELECT hour, total, status FROM kt_anomalies(start_time => '2031-06-19', end_time => '2031-06-23', min_requests => 5)
WHERE status = 'ANOMALY' ORDER BY hour;
SELECT hour, round(z_score::numeric, 2) AS z, status FROM kt_anomalies(start_time => '2031-06-19', end_time => '2031-06-23', min_requests => 5, exclude_self => true)
WHERE status = 'ANOMALY' ORDER BY hour;
SELECT series, count(*) FILTER (WHERE status = 'ANOMALY') AS anomalies
FROM kt_anomalies(start_time => '2031-06-19', end_time => '2031-06-23', min_requests => 5, dimension => 'gateway_id')
GROUP BY series ORDER BY series;
-- baseline columns: mean/stddev over the window; z NULL when stddev is 0
SELECT bool_and(z_score IS NULL) FILTER (WHERE coalesce(baseline_stddev, 0) = 0) AS z_null_without_spread,
       bool_and(z_score IS NOT NULL) FILTER (WHERE baseline_stddev > 0) AS z_set_otherwise
FROM kt_anomalies(start_time => '2031-06-19', end_time => '2031-06-23', min_requests => 5, exclude_self => true);

-- edge cases: no data, one hour
BEGIN;
DELETE FROM policy_evaluations; DELETE FROM ai_decision_events;
SELECT count(*) AS rows_without_data FROM kt_anomalies();
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('one', now(), 'blocked', 'm', 'p', 'g');
SELECT total, blocked, block_rate, baseline_stddev, z_score, status FROM kt_anomalies();
ROLLBACK;

-- bad arguments: clear errors with SQLSTATEs
SELECT pg_temp.try($$SELECT * FROM kt_governance_summary(tz => 'Mars/Olympus')$$);
SELECT pg_temp.try($$SELECT * FROM kt_governance_summary(lookback => '-1 day')$$);
SELECT pg_temp.try($$SELECT * FROM kt_governance_summary(start_time => '2031-01-02', end_time => '2031-01-01')$$);
SELECT pg_temp.try($$SELECT * FROM kt_governance_summary(lookback => NULL)$$);
SELECT pg_temp.try($$SELECT * FROM kt_spend_by_team_model(decisions => '{}')$$);
SELECT pg_temp.try($$SELECT * FROM kt_anomalies(dimension => 'user_id; DROP TABLE ai_decision_events')$$);
SELECT pg_temp.try($$SELECT * FROM kt_anomalies(sigma => -1)$$);
SELECT pg_temp.try($$SELECT * FROM kt_policy_effectiveness(lookback => '-7 days')$$);

-- volatility and security: reports are STABLE and SECURITY INVOKER
SELECT proname, provolatile, prosecdef FROM pg_proc
WHERE proname IN ('kt_governance_summary', 'kt_spend_by_team_model', 'kt_policy_effectiveness',
                  'kt_policy_effectiveness_by_result', 'kt_anomalies', 'kt_run_maintenance', 'kt_create_partitions')
ORDER BY 1;

-- roles: a login granted only the reader role reads reports, and nothing more
CREATE ROLE kt_test_reader LOGIN IN ROLE kt_governance_reader;
CREATE ROLE kt_test_nobody LOGIN;
SET ROLE kt_test_reader;
SELECT count(*) > 0 AS reader_reads_summary FROM kt_governance_summary(lookback => '3650 days');
SELECT count(*) >= 0 AS reader_reads_views FROM kt_partition_health;
SELECT pg_temp.try($$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('r', now(), 'allowed', 'm', 'p', 'g')$$) AS reader_insert;
SELECT pg_temp.try($$DELETE FROM ai_decision_events$$) AS reader_delete;
SELECT pg_temp.try($$DROP TABLE kt_governance_partitions.events_2031_06$$) AS reader_drop_partition;
SELECT pg_temp.try($$SELECT * FROM kt_run_maintenance()$$) AS reader_maintenance;
SELECT pg_temp.try($$SELECT * FROM kt_create_partitions('2040-01-01', '2040-02-01')$$) AS reader_create_partitions;
SELECT pg_temp.try($$SELECT * FROM kt_generate_sample_events(10)$$) AS reader_generate;
RESET ROLE;
SET ROLE kt_test_nobody;
SELECT pg_temp.try($$SELECT * FROM kt_governance_summary()$$) AS stranger_summary;
SELECT pg_temp.try($$SELECT count(*) FROM ai_decision_events$$) AS stranger_select;
RESET ROLE;
DROP ROLE kt_test_reader, kt_test_nobody;

-- raw reads prune partitions while planning: kt_raw_events is inlined, so its bounds are
-- constants of the plan and only the partitions they cover appear in it (NULL bounds: none)
SELECT count(*) AS daily_partitions FROM kt_create_partitions('2033-01-01', '2033-01-04', 'daily');
SELECT array(SELECT m[1] FROM regexp_matches(pg_temp.plan(q), 'on (events_\w+)', 'g') m) AS planned_partitions
FROM (VALUES ($$SELECT * FROM kt_raw_events('2033-01-02 05:10+00', '2033-01-02 06:00+00')$$),
             ($$SELECT * FROM kt_raw_events(NULL, NULL, '2033-01-03 23:00+00', '2033-01-04 00:00+00')$$),
             ($$SELECT * FROM kt_raw_events(NULL, NULL, NULL, NULL, '{2033-01-01 03:00+00}', '2033-01-01 03:00+00', '2033-01-01 04:00+00')$$),
             ($$SELECT * FROM kt_raw_events(NULL, NULL)$$)) t(q);
-- and they read what the ranges say
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES
    ('raw-1', '2033-01-01 03:30+00', 'allowed', 'm', 'p', 'g'), ('raw-2', '2033-01-02 05:30+00', 'blocked', 'm', 'p', 'g'),
    ('raw-3', '2033-01-02 06:30+00', 'allowed', 'm', 'p', 'g'), ('raw-4', '2033-01-03 23:59+00', 'allowed', 'm', 'p', 'g');
SELECT array_agg(id ORDER BY id) AS raw_read
FROM kt_raw_events('2033-01-02 05:10+00', '2033-01-02 06:00+00', '2033-01-03 23:00+00', '2033-01-04 00:00+00',
                   '{2033-01-01 03:00+00}', '2033-01-01 03:00+00', '2033-01-01 04:00+00');
SELECT head_start, head_end, tail_start, tail_end, dirty_hours
FROM kt_raw_ranges('2033-01-02 05:10+00', '2033-01-03 23:30+00', frozen => '-infinity')
UNION ALL
SELECT head_start, head_end, tail_start, tail_end, dirty_hours
FROM kt_raw_ranges('2033-01-02 05:10+00', '2033-01-03 23:30+00', use_rollups => false);
