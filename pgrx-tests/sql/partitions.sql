-- Partition lifecycle: premake, default-partition drain with nothing lost, junk dates,
-- UTC bounds under any session TimeZone, daily granularity, backfill ranges.
CREATE EXTENSION kt_governance;
\ir _helpers.psql

-- rows before any dated partition exists all land in the default partitions
SELECT * FROM kt_generate_sample_events(3000, 120, 7, now());
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('junk-future', '9999-01-01 00:00:00+00', 'allowed', 'm', 'p', 'g'),
       ('junk-past', '1970-01-01 00:00:00+00', 'blocked', 'm', 'p', 'g'),
       ('ahead', now() + interval '40 days', 'allowed', 'm', 'p', 'g');
INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result)
SELECT id, "timestamp", 'p', 'pass' FROM ai_decision_events WHERE id LIKE 'junk%' OR id = 'ahead';
CREATE TEMP TABLE before AS
SELECT count(*) AS events, sum(cost_usd) AS cost, sum(input_tokens) AS tokens,
       (SELECT count(*) FROM policy_evaluations) AS evaluations,
       (SELECT string_agg(md5(e::text), '' ORDER BY e.id) FROM ai_decision_events e) AS digest
FROM ai_decision_events;
SELECT count(*) = (SELECT events FROM before) AS all_in_default FROM ONLY kt_governance_partitions.events_default;

-- maintenance: current month + 4 ahead, and the 120 days of sample data drained out
SELECT partitions_created >= 5 AS created_enough, rows_moved = (SELECT events FROM before) - 2 AS moved_all_but_junk,
       rows_left_in_default, default_oldest, default_newest
FROM kt_run_maintenance();

-- nothing lost, nothing duplicated, evaluations moved with their events
SELECT b.events = a.events AS same_events, b.cost = a.cost AS same_cost, b.tokens = a.tokens AS same_tokens,
       b.evaluations = a.evaluations AS same_evaluations, b.digest = a.digest AS same_rows
FROM before b,
     (SELECT count(*) AS events, sum(cost_usd) AS cost, sum(input_tokens) AS tokens,
             (SELECT count(*) FROM policy_evaluations) AS evaluations,
             (SELECT string_agg(md5(e::text), '' ORDER BY e.id) FROM ai_decision_events e) AS digest
      FROM ai_decision_events) a;
SELECT id FROM ONLY kt_governance_partitions.events_default ORDER BY id;
SELECT count(*) AS evaluations_left_in_default FROM ONLY kt_governance_partitions.policy_evaluations_default;
-- each event's evaluations sit in the partition of the same range
SELECT count(*) AS misplaced_evaluations
FROM policy_evaluations pe JOIN ai_decision_events e ON e.id = pe.event_id AND e."timestamp" = pe.event_timestamp
WHERE replace(pe.tableoid::regclass::text, 'policy_evaluations_', '') <> replace(e.tableoid::regclass::text, 'events_', '');

-- partitions are monthly, contiguous, named like the document, in both tables
-- (how many months 120 days touch depends on the date: count them from the data)
SELECT count(*) FILTER (WHERE partition_name ~ '^events_\d{4}_\d{2}$') = count(*) AS named_like_document,
       count(*) = (SELECT count(*) FROM generate_series(
                       date_trunc('month', (SELECT min("timestamp") FROM ai_decision_events WHERE id NOT LIKE 'junk%'), 'UTC'),
                       date_trunc('month', now(), 'UTC') + interval '4 months', interval '1 month'))
           AS one_per_month_from_the_data_to_premake,
       bool_and(range_end = (range_start AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC') AS monthly
FROM kt_partitions WHERE parent_table = 'ai_decision_events' AND NOT is_default;
SELECT (SELECT array_agg(range_start ORDER BY range_start) FROM kt_partitions WHERE parent_table = 'ai_decision_events' AND NOT is_default)
     = (SELECT array_agg(range_start ORDER BY range_start) FROM kt_partitions WHERE parent_table = 'policy_evaluations' AND NOT is_default)
       AS lock_step;
SELECT partitions_cover_until >= now() + interval '4 months' AS premade_ahead, default_rows,
       next_partition_due > now() AS next_due_in_future
FROM kt_partition_health;

-- a second run is a no-op
SELECT partitions_created, rows_moved FROM kt_run_maintenance();

-- bounds are UTC whatever the session TimeZone
SET TimeZone = 'Asia/Tokyo';
SELECT partition_name, range_start, range_end
FROM kt_create_partitions('2030-01-15 00:00:00+09', '2030-03-01 00:00:00+09');
SET TimeZone = 'UTC';
SELECT partition_name, range_start, range_end FROM kt_partitions
WHERE partition_name LIKE '%2030%' ORDER BY parent_table, range_start;
SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'events_2030_01';

-- daily granularity applies to partitions made from then on, clipped to the gaps
SET kt_governance.partition_interval = 'daily';
SELECT partition_name, range_start, range_end FROM kt_create_partitions('2030-03-01', '2030-03-03');
-- a row whose day has no partition goes to the default and is drained into a daily partition
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('late-row', '2030-03-05 10:00:00+00', 'allowed', 'm', 'p', 'g');
SELECT tableoid::regclass FROM ai_decision_events WHERE id = 'late-row';
SELECT partition_name, range_start, range_end FROM kt_create_partitions('2030-03-05', '2030-03-06');
SELECT tableoid::regclass FROM ai_decision_events WHERE id = 'late-row';
RESET kt_governance.partition_interval;

-- bad arguments
SELECT pg_temp.try($$SELECT * FROM kt_create_partitions('2030-05-01', '2030-04-01')$$);
SELECT pg_temp.try($$SELECT * FROM kt_create_partitions(NULL, '2030-04-01')$$);
SELECT pg_temp.try($$SELECT * FROM kt_create_partitions('2030-05-01', 'infinity')$$);
SELECT pg_temp.try($$SELECT * FROM kt_create_partitions('2030-05-01', '2031-05-01', 'hourly')$$);
SELECT pg_temp.try($$SELECT * FROM kt_create_partitions('1000-01-01', '3000-01-01')$$);
SELECT pg_temp.try($$SELECT * FROM kt_run_maintenance(premake => -1)$$);
SELECT pg_temp.try($$SET kt_governance.partition_interval = 'hourly'$$);

-- a bounded lock wait: a session holding a lock makes maintenance fail cleanly, not hang
SET kt_governance.ddl_lock_timeout = 100;
SET kt_governance.ddl_retries = 2;
SELECT pg_temp.try($$SELECT * FROM kt_create_partitions('2031-01-01', '2031-02-01')$$) AS without_contention;
