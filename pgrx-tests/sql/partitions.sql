-- Partition lifecycle: premake, default-partition drain with nothing lost, junk dates,
-- UTC bounds under any session TimeZone, daily granularity, backfill ranges.
CREATE EXTENSION kt_governance;
\ir _helpers.psql

-- CREATE EXTENSION made the current month, kt_governance.premake (4) ahead and premake_past (3)
-- behind, released from the extension so pg_dump writes them like any partition
SELECT count(*) AS first_partitions,
       min(range_start) = date_trunc('month', now(), 'UTC') - interval '3 months' AS from_three_months_back,
       max(range_end) = date_trunc('month', now(), 'UTC') + interval '5 months' AS to_premake
FROM kt_partitions WHERE parent_table = 'ai_decision_events' AND NOT is_default;
SELECT count(*) AS first_partitions_that_are_members
FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'kt_governance'
JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass
WHERE c.relnamespace = 'kt_governance_partitions'::regnamespace AND c.relname !~ '_default$';

-- rows of this month and the three before land in dated partitions at once; older ones wait in
-- the default
SELECT * FROM kt_generate_sample_events(3000, 240, 7, now());
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('junk-future', '9999-01-01 00:00:00+00', 'allowed', 'm', 'p', 'g'),
       ('junk-past', '1970-01-01 00:00:00+00', 'blocked', 'm', 'p', 'g'),
       ('ahead', now() + interval '40 days', 'allowed', 'm', 'p', 'g'),
       ('this-month', now(), 'allowed', 'm', 'p', 'g');
INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result)
SELECT id, "timestamp", 'p', 'pass' FROM ai_decision_events WHERE id LIKE 'junk%' OR id = 'ahead';
CREATE TEMP TABLE before AS
SELECT count(*) AS events, sum(cost_usd) AS cost, sum(input_tokens) AS tokens,
       (SELECT count(*) FROM policy_evaluations) AS evaluations,
       (SELECT string_agg(md5(e::text), '' ORDER BY e.id) FROM ai_decision_events e) AS digest
FROM ai_decision_events;
SELECT count(*) FILTER (WHERE "timestamp" >= date_trunc('month', now(), 'UTC') - interval '3 months' AND id NOT LIKE 'junk%') AS first_partitions_rows_in_default,
       count(*) > 2 AS older_rows_wait
FROM ONLY kt_governance_partitions.events_default;
CREATE TEMP TABLE waiting AS
SELECT (SELECT count(*) FROM ONLY kt_governance_partitions.events_default) AS events,
       (SELECT count(*) FROM kt_governance_internal.kt_dirty_hours) AS dirty_marks,
       (SELECT sum(events) || '/' || sum(evaluations) FROM kt_governance_internal.kt_row_counts) AS counts;

-- maintenance drains the older sample data into partitions of their own
SELECT partitions_created >= 3 AS created_enough, rows_moved = (SELECT events FROM waiting) - 2 AS moved_all_but_junk,
       rows_left_in_default, default_oldest, default_newest
FROM kt_run_maintenance();
-- a move changes no aggregate and no hour's count: it marks no hour dirty and leaves the
-- counts as they were, and they are still exact
SELECT (SELECT count(*) FROM kt_governance_internal.kt_dirty_hours) - w.dirty_marks AS hours_dirtied_by_the_drain,
       (SELECT sum(events) || '/' || sum(evaluations) FROM kt_governance_internal.kt_row_counts) = w.counts AS counts_unchanged,
       (SELECT count(*) FROM kt_verify_row_counts()) AS drifted_hours
FROM waiting w;
-- the default partitions keep only keys and the "timestamp" index; dated ones get all indexes
SELECT CASE WHEN c.relname LIKE '%default' THEN c.relname ELSE 'a drained events partition' END AS partition,
       count(*) AS indexes
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relname IN ('events_default', 'policy_evaluations_default')
   OR c.oid = (SELECT e.tableoid FROM ai_decision_events e WHERE e."timestamp" < date_trunc('month', now(), 'UTC')
               AND e.id NOT LIKE 'junk%' LIMIT 1)
GROUP BY 1 ORDER BY 1;

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
-- (how many months 240 days touch depends on the date: count them from the data)
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

-- a pile of junk dates stays in the default while a few late rows move out: still no dirty
-- hour, no count change, nothing lost
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
SELECT 'junk-pile-' || g, '1971-01-01 00:00:00+00'::timestamptz + g * interval '1 hour', 'allowed', 'm', 'p', 'g'
FROM generate_series(1, 40) g;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
SELECT 'late-' || g, date_trunc('month', now(), 'UTC') - interval '300 days' + g * interval '1 minute', 'blocked', 'm', 'p', 'g'
FROM generate_series(1, 5) g;
INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result)
SELECT id, "timestamp", 'p', 'block' FROM ai_decision_events WHERE id LIKE 'late-%' OR id LIKE 'junk-pile-%';
TRUNCATE waiting;
INSERT INTO waiting
SELECT (SELECT count(*) FROM ONLY kt_governance_partitions.events_default),
       (SELECT count(*) FROM kt_governance_internal.kt_dirty_hours),
       (SELECT sum(events) || '/' || sum(evaluations) FROM kt_governance_internal.kt_row_counts);
SELECT partitions_created, rows_moved, rows_left_in_default FROM kt_run_maintenance();
SELECT (SELECT count(*) FROM kt_governance_internal.kt_dirty_hours) - w.dirty_marks AS hours_dirtied_by_the_drain,
       (SELECT sum(events) || '/' || sum(evaluations) FROM kt_governance_internal.kt_row_counts) = w.counts AS counts_unchanged,
       (SELECT count(*) FROM kt_verify_row_counts()) AS drifted_hours,
       (SELECT count(*) FROM ai_decision_events WHERE id LIKE 'late-_' AND tableoid::regclass::text NOT LIKE '%default') AS late_rows_moved,
       (SELECT count(*) FROM policy_evaluations p JOIN ai_decision_events e ON e.id = p.event_id AND e."timestamp" = p.event_timestamp
         WHERE e.id LIKE 'late-_' AND p.tableoid::regclass::text NOT LIKE '%default') AS their_evaluations_moved,
       (SELECT count(*) FROM ONLY kt_governance_partitions.policy_evaluations_default) AS evaluations_left_in_default
FROM waiting w;

-- restore: the first partition DDL written out as pg_dump writes it (columns listed) makes
-- the first partitions that are still empty give way to the dump's; those with rows stay.
-- The extension's own DDL (LIKE the parent) and a role that may not create there do not.
SELECT count(*) AS provisional FROM kt_governance_internal.kt_provisional_partitions;
CREATE TABLE kt_governance_partitions.like_probe (LIKE ai_decision_events);
SELECT count(*) AS provisional_after_like FROM kt_governance_internal.kt_provisional_partitions;
CREATE ROLE kt_partitions_probe LOGIN;
SET ROLE kt_partitions_probe;
SELECT pg_temp.try($$CREATE TABLE kt_governance_partitions.restored_probe (id text)$$);
RESET ROLE;
SELECT count(*) AS provisional_after_refused FROM kt_governance_internal.kt_provisional_partitions;
CREATE TABLE kt_governance_partitions.restored_probe (id text);
SELECT count(*) AS provisional_after_restore_ddl FROM kt_governance_internal.kt_provisional_partitions;
SELECT count(*) AS first_partitions_kept,
       bool_and(EXISTS (SELECT FROM ai_decision_events e WHERE e."timestamp" >= p.range_start AND e."timestamp" < p.range_end)) AS all_hold_rows
FROM kt_partitions p
WHERE p.parent_table = 'ai_decision_events' AND NOT p.is_default AND p.range_start >= date_trunc('month', now(), 'UTC') - interval '3 months'
  AND p.range_start < date_trunc('month', now(), 'UTC') + interval '5 months';
DROP TABLE kt_governance_partitions.restored_probe, kt_governance_partitions.like_probe;
DROP ROLE kt_partitions_probe;
