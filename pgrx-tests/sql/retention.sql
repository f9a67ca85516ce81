-- Retention: exact cutoff, whole partitions dropped, straddling partition trimmed, holds,
-- archive (and its failure), rollups keep the history, erasure, bad input, the job.
CREATE EXTENSION kt_governance;
\ir _helpers.psql
SELECT count(*) > 0 AS premade FROM kt_run_maintenance();
-- 120 days of events with evaluations, refreshed into the rollups
SELECT * FROM kt_generate_sample_events(12000, 120, 5, now());
SELECT count(*) > 0 AS partitions FROM kt_run_maintenance();
SELECT hours_refreshed > 2000 AS refreshed FROM kt_refresh_metrics();
-- one transaction from here to the checks, so now() (and the cutoff) is the same throughout
BEGIN;
-- events exactly at, just before and just after a cutoff of 1000 hours
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, user_id, team_id)
VALUES ('at-cutoff', now() - interval '1000 hours', 'allowed', 'm', 'p', 'g', 'u-x', 't-x'),
       ('before-cutoff', now() - interval '1000 hours' - interval '1 microsecond', 'allowed', 'm', 'p', 'g', 'u-x', 't-x'),
       ('after-cutoff', now() - interval '1000 hours' + interval '1 microsecond', 'allowed', 'm', 'p', 'g', 'u-x', 't-x');
SELECT * FROM kt_refresh_metrics() \g /dev/null

-- what the reports say about the whole history before retention
CREATE TEMP TABLE before_summary AS SELECT * FROM kt_governance_summary(lookback => '200 days');
CREATE TEMP TABLE before_metrics AS SELECT * FROM governance_metrics_hourly;
CREATE TEMP TABLE before_counts AS
SELECT count(*) FILTER (WHERE "timestamp" >= now() - interval '1000 hours') AS newer,
       count(*) FILTER (WHERE "timestamp" < now() - interval '1000 hours') AS older,
       (SELECT string_agg(md5(e::text), '' ORDER BY id) FROM ai_decision_events e WHERE "timestamp" >= now() - interval '1000 hours') AS newer_digest
FROM ai_decision_events;

-- holds inside the newest partition wholly older than the cutoff (older ones stay hold-free,
-- so they are dropped whole): one by team AND gateway, one by user and time range
SELECT range_start AS held_start, range_end AS held_end FROM kt_partitions
WHERE parent_table = 'ai_decision_events' AND NOT is_default AND range_end <= now() - interval '1000 hours'
ORDER BY range_start DESC LIMIT 1 \gset
SELECT kt_add_legal_hold(team_id => 'legal', gateway_id => 'gw-us-east', start_time => :'held_start', end_time => :'held_end', reason => 'matter 42') AS hold_team \gset
SELECT kt_add_legal_hold(user_id => 'user-0003', start_time => :'held_start', end_time => :'held_start'::timestamptz + interval '10 days', reason => 'ticket 7') AS hold_user \gset
CREATE TEMP TABLE held_before AS
SELECT id FROM ai_decision_events e WHERE "timestamp" < now() - interval '1000 hours' AND kt_is_held(team_id, user_id, gateway_id, "timestamp");
SELECT count(*) > 0 AS some_rows_are_held FROM held_before;

-- bad input
SELECT pg_temp.try($$SELECT * FROM kt_apply_retention(0)$$);
SELECT pg_temp.try($$SELECT * FROM kt_apply_retention(-5)$$);
SELECT pg_temp.try($$SELECT * FROM kt_apply_retention(NULL)$$);
SELECT pg_temp.try($$SELECT kt_add_legal_hold(reason => 'no criteria')$$);
SELECT pg_temp.try($$SELECT kt_add_legal_hold(team_id => 'x')$$);
SELECT pg_temp.try($$SELECT kt_add_legal_hold(start_time => '2026-02-01', end_time => '2026-01-01', reason => 'backwards')$$);
SELECT pg_temp.try($$SELECT kt_release_legal_hold(987654)$$);
SELECT pg_temp.try($$SELECT kt_erase_subject(NULL)$$);

-- archive failure leaves everything in place: a conflicting constraint on the archive
ALTER TABLE ai_decision_events_archive ADD CONSTRAINT refuse_archive CHECK (false) NOT VALID;
SELECT pg_temp.try($$SELECT * FROM kt_apply_retention(1000, archive => true)$$) AS archive_failure;
SELECT count(*) = (SELECT newer + older FROM before_counts) AS nothing_removed FROM ai_decision_events;
ALTER TABLE ai_decision_events_archive DROP CONSTRAINT refuse_archive;

-- retention with archive
SELECT cutoff = now() - interval '1000 hours' AS exact_cutoff, cardinality(partitions_removed) > 0 AS dropped_partitions,
       events_removed = (SELECT older FROM before_counts) - events_held AS removed_all_unheld,
       events_archived = events_removed AS archived_all, events_held = (SELECT count(*) FROM held_before) AS held_counted
FROM kt_apply_retention(1000, archive => true);
-- exact: nothing older than the cutoff except held rows; everything newer untouched
SELECT count(*) FILTER (WHERE NOT kt_is_held(team_id, user_id, gateway_id, "timestamp")) AS unheld_older_left,
       count(*) = (SELECT count(*) FROM held_before) AS held_older_kept
FROM ai_decision_events WHERE "timestamp" < now() - interval '1000 hours';
SELECT id FROM ai_decision_events WHERE id IN ('at-cutoff', 'before-cutoff', 'after-cutoff') ORDER BY id;
SELECT (SELECT string_agg(md5(e::text), '' ORDER BY id) FROM ai_decision_events e WHERE "timestamp" >= now() - interval '1000 hours')
       = (SELECT newer_digest FROM before_counts) AS newer_rows_untouched;
SELECT count(*) AS orphan_evaluations FROM policy_evaluations pe
WHERE NOT EXISTS (SELECT FROM ai_decision_events e WHERE e.id = pe.event_id AND e."timestamp" = pe.event_timestamp);
SELECT count(*) = (SELECT older FROM before_counts) - (SELECT count(*) FROM held_before) AS archive_has_removed_rows FROM ai_decision_events_archive;
-- reports and the metrics view answer for the pruned period from rollups, unchanged
SELECT pg_temp.diff('SELECT * FROM kt_governance_summary(lookback => ''200 days'')', 'SELECT * FROM before_summary') AS summary_changed_rows;
SELECT pg_temp.diff('SELECT * FROM governance_metrics_hourly', 'SELECT * FROM before_metrics') AS metrics_changed_rows;
SELECT why, cardinality(partitions_dropped) > 0 AS partitions, events_removed > 0 AS removed, events_held > 0 AS held, archived_to FROM kt_removal_log;
COMMIT;

-- releasing a hold lets the next run remove those rows
SELECT kt_release_legal_hold(:hold_user);
SELECT regexp_replace(pg_temp.try(format('SELECT kt_release_legal_hold(%s)', :hold_user)), ' at .* by ', ' at <time> by ') AS release_twice;
SELECT events_removed > 0 AS removed_after_release, events_held = (SELECT count(*) FROM held_before b JOIN ai_decision_events e USING (id) WHERE e.team_id = 'legal' AND e.gateway_id = 'gw-us-east') AS team_hold_still_counts
FROM kt_apply_retention(1000);
SELECT hold_id = :hold_user AS is_user_hold, active, released_by IS NOT NULL AS who_released FROM kt_legal_hold_status ORDER BY hold_id;

-- erasure: a held user's rows stay (and are counted), an unheld user's go, archive included
SELECT kt_add_legal_hold(user_id => 'user-0001', reason => 'litigation') AS hold_u1 \gset
-- how many of user-0001's rows are left after retention depends on the hour the test runs at,
-- and the WARNING prints that number: mute it and compare the count with the rows instead
SET client_min_messages = error;
CREATE TEMP TABLE erased1 AS SELECT * FROM kt_erase_subject('user-0001');
SET client_min_messages = warning;
SELECT events_removed, events_held > 0 AS held_reported,
       events_held = (SELECT count(*) FROM ai_decision_events e WHERE e.user_id = 'user-0001') AS held_counted_exactly
FROM erased1;
SELECT count(*) > 0 AS held_user_rows_remain FROM ai_decision_events WHERE user_id = 'user-0001';
CREATE TEMP TABLE before_erasure AS SELECT sum(total_requests) AS total FROM governance_metrics_hourly;
-- how many of user-0002's rows the team hold covers depends on where now() falls in the month:
-- compare with the rows that stay, not with a number (the WARNING repeats it, so it is muted)
SET client_min_messages = error;
CREATE TEMP TABLE erased2 AS SELECT * FROM kt_erase_subject('user-0002');
SET client_min_messages = warning;
SELECT events_removed > 0 AS erased,
       events_held = (SELECT count(*) FROM ai_decision_events e WHERE e.user_id = 'user-0002') AS held_reported_exactly,
       (SELECT bool_and(kt_is_held(e.team_id, e.user_id, e.gateway_id, e."timestamp")) IS NOT FALSE
        FROM ai_decision_events e WHERE e.user_id = 'user-0002') AS only_held_rows_left
FROM erased2;
SELECT (SELECT count(*) FROM ai_decision_events_archive WHERE user_id = 'user-0002') AS user2_archived_left;
SELECT (SELECT sum(total_requests) FROM governance_metrics_hourly) = (SELECT total FROM before_erasure) AS rollups_keep_totals;
SELECT why, subject, events_removed > 0 AS removed FROM kt_removal_log WHERE why = 'erasure' ORDER BY removal_id;

-- the retention job follows kt_governance.retention_hours (0 = off)
SELECT status, message FROM kt_run_job('retention');
SET kt_governance.retention_hours = 2000;
SELECT status, message LIKE 'cutoff %' AS applied FROM kt_run_job('retention');
RESET kt_governance.retention_hours;

-- a reader cannot remove anything
CREATE ROLE kt_test_reader2 LOGIN IN ROLE kt_governance_reader;
SET ROLE kt_test_reader2;
SELECT pg_temp.try($$SELECT * FROM kt_apply_retention(1)$$) AS reader_retention;
SELECT pg_temp.try($$SELECT * FROM kt_erase_subject('user-0004')$$) AS reader_erasure;
SELECT pg_temp.try(format('SELECT kt_release_legal_hold(%s)', :hold_team)) AS reader_release;
RESET ROLE;
DROP ROLE kt_test_reader2;

-- step by step: one partition pair per call (what the worker commits separately), and the
-- procedure that commits between steps
SELECT kt_release_legal_hold(:hold_u1);  -- user-0001's unbounded hold would keep every partition
SELECT count(*) AS old_partitions_made FROM kt_create_partitions('2020-01-01', '2020-04-01');
SELECT events FROM kt_generate_sample_events(900, 85, 9, '2020-03-28');
SELECT cardinality(partitions_removed) AS dropped, more_to_do FROM kt_apply_retention(20000, max_partitions => 1);
SELECT count(*) AS old_pairs_left FROM kt_partitions WHERE range_end <= '2020-04-01' AND parent_table = 'ai_decision_events';
CALL kt_apply_retention_by_partition(20000);
SELECT count(*) AS old_pairs_left_after_procedure FROM kt_partitions WHERE range_end <= '2020-04-01';
SELECT count(*) AS old_events_left FROM ai_decision_events WHERE "timestamp" < '2020-04-01';
SELECT pg_temp.try($$SELECT * FROM kt_apply_retention(1000, max_partitions => 0)$$);
SELECT status, run_again FROM kt_run_job('retention');

-- the disk space: removed pairs leave the tables at commit and wait in kt_governance_reclaim
-- until a background worker, started by that commit, drops them
CREATE FUNCTION pg_temp.wait_for(condition text, seconds int DEFAULT 60) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE done boolean;
BEGIN
    FOR i IN 1..seconds * 20 LOOP
        EXECUTE 'SELECT ' || condition INTO done;
        IF done THEN RETURN true; END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN false;
END $$;
CREATE FUNCTION pg_temp.parked() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM pg_class WHERE relnamespace = 'kt_governance_reclaim'::regnamespace AND relkind = 'r' $$;
SELECT pg_temp.wait_for('pg_temp.parked() = 0') AS worker_reclaimed_earlier_removals;
SELECT count(*) FILTER (WHERE space_returned_at IS NULL) AS removals_waiting_for_space,
       count(*) > 0 AND count(*) FILTER (WHERE space_returned_at >= removed_at) = count(*) AS every_removal_has_space_returned
FROM kt_removal_log WHERE why = 'retention' AND cardinality(partitions_dropped) > 0;
SELECT count(*) AS old_partitions_made FROM kt_create_partitions('2019-01-01', '2019-03-01');
SELECT events FROM kt_generate_sample_events(400, 50, 11, '2019-02-25');
-- rolled back: nothing detached, nothing parked, no worker has anything to drop
BEGIN;
SELECT cardinality(partitions_removed) AS removed FROM kt_apply_retention(40000);
SELECT pg_temp.parked() AS parked_in_transaction, count(*) AS old_rows_visible_in_transaction
FROM ai_decision_events WHERE "timestamp" < '2019-03-01';
ROLLBACK;
SELECT pg_temp.parked() AS parked_after_rollback, count(*) AS old_rows_after_rollback,
       (SELECT count(*) FROM kt_partitions WHERE range_end <= '2019-03-01') AS old_partitions_after_rollback
FROM ai_decision_events WHERE "timestamp" < '2019-03-01';
-- the same month removed twice before its first pair is reclaimed (late rows re-created it):
-- the second pair's names are taken, so it is dropped at once; kt_reclaim_space() by hand
BEGIN;
SELECT cardinality(partitions_removed) AS removed FROM kt_apply_retention(40000);
SELECT count(*) AS recreated FROM kt_create_partitions('2019-02-01', '2019-03-01');
SELECT events FROM kt_generate_sample_events(50, 5, 12, '2019-02-20');
SELECT events, evaluations > 0 AS evaluations_counted FROM kt_counted_rows('2019-02-01', '2019-03-01');
SELECT cardinality(partitions_removed) AS removed_again, events_removed FROM kt_apply_retention(40000);
SELECT pg_temp.parked() AS parked_pairs_tables, (SELECT count(*) FROM ai_decision_events WHERE "timestamp" < '2019-03-01') AS old_rows_left;
SELECT tables_dropped, bytes_returned > 0 AS returned FROM kt_reclaim_space();
SELECT pg_temp.parked() AS parked_after_manual_reclaim;
COMMIT;
-- committed: the worker drops the pair, stamps the log, and the health view shows nothing waiting
SELECT count(*) AS old_partitions_made FROM kt_create_partitions('2019-01-01', '2019-03-01');
SELECT events FROM kt_generate_sample_events(40, 50, 14, '2019-02-25');
SELECT cardinality(partitions_removed) AS removed, events_removed FROM kt_apply_retention(40000);
SELECT pg_temp.wait_for('pg_temp.parked() = 0') AS worker_reclaimed;
SELECT pg_temp.wait_for('(SELECT space_returned_at IS NOT NULL FROM kt_removal_log ORDER BY removal_id DESC LIMIT 1)') AS space_returned_logged;
SELECT DISTINCT bytes_awaiting_reclaim FROM kt_health;
SELECT count(*) AS old_rows_left FROM ai_decision_events WHERE "timestamp" < '2019-03-01';
SELECT count(*) AS hours_with_count_drift FROM kt_verify_row_counts();
SELECT status, message LIKE '%, 0 removed partitions reclaimed, % ingest claims pruned' AS reclaim_reported FROM kt_run_job('maintenance');
