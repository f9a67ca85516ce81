-- Row counts per hour (kt_row_counts): exact after every kind of change the row triggers see,
-- including rolled-back subtransactions; drift from changes they do not see is found,
-- retention recounts instead of trusting it, and kt_rebuild_row_counts() repairs it.
CREATE EXTENSION kt_governance;
-- (kt_ingest below is given fixed 2026 dates: no acceptance window, whatever the date)
SET kt_governance.ingest_accept_past = -1;
\ir _helpers.psql
SELECT count(*) > 0 AS premade FROM kt_run_maintenance();
SELECT * FROM kt_generate_sample_events(6000, 90, 11, now());
SELECT count(*) > 0 AS partitions FROM kt_run_maintenance();
SELECT count(*) AS drift_after_load FROM kt_verify_row_counts();
SELECT sum(events) = (SELECT count(*) FROM ai_decision_events) AS events_counted,
       sum(evaluations) = (SELECT count(*) FROM policy_evaluations) AS evaluations_counted
FROM kt_row_counts;

-- a savepoint rolled back takes its counts with it; a released one keeps them
BEGIN;
SAVEPOINT a;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('sp-1', now() - interval '2 days', 'allowed', 'm', 'p', 'g');
INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result)
SELECT id, "timestamp", 'pii', 'pass' FROM ai_decision_events WHERE id = 'sp-1';
ROLLBACK TO SAVEPOINT a;
SAVEPOINT b;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('sp-2', now() - interval '3 days', 'blocked', 'm', 'p', 'g');
RELEASE SAVEPOINT b;
COMMIT;
SELECT count(*) AS drift_after_savepoints FROM kt_verify_row_counts();

-- an exception block (a subtransaction) that fails after inserting
DO $$
BEGIN
    BEGIN
        INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
        VALUES ('exc-1', now() - interval '4 days', 'allowed', 'm', 'p', 'g');
        RAISE EXCEPTION 'give up';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
END
$$;
SELECT count(*) AS exc_rows, (SELECT count(*) FROM kt_verify_row_counts()) AS drift_after_exception
FROM ai_decision_events WHERE id = 'exc-1';

-- kt_ingest in quarantine mode (bad records are set aside inside subtransactions)
SELECT inserted, quarantined FROM kt_ingest($$[
  {"id": "ing-1", "timestamp": "2026-01-01T00:00:00Z", "decision": "allow", "model": "m", "provider": "p", "gateway_id": "g",
   "policies_evaluated": [{"name": "pii", "result": "pass"}]},
  {"id": "ing-2", "timestamp": "not a time", "decision": "allow", "model": "m", "provider": "p", "gateway_id": "g"}
]$$, mode => 'quarantine');
SELECT count(*) AS drift_after_ingest FROM kt_verify_row_counts();

-- updates that move rows to another hour (and partition), deletes, DML aimed at a partition
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('mv-1', now() - interval '1 day', 'allowed', 'm', 'p', 'g'), ('mv-2', now() - interval '2 hours', 'allowed', 'm', 'p', 'g');
UPDATE ai_decision_events SET "timestamp" = "timestamp" - interval '31 days' WHERE id IN ('mv-1', 'mv-2');
UPDATE ai_decision_events SET "timestamp" = "timestamp" + interval '1 hour' WHERE id = 'sp-2';
DELETE FROM policy_evaluations WHERE policy_name = 'pii' AND result = 'pass' AND event_id LIKE '%1';
SELECT partition_name AS current_part FROM kt_partitions
WHERE parent_table = 'ai_decision_events' AND range_start <= now() AND now() < range_end \gset
INSERT INTO :"current_part" (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('direct-1', now() - interval '1 minute', 'allowed', 'm', 'p', 'g');
SELECT count(*) AS drift_after_dml FROM kt_verify_row_counts();

-- rows parked in the default partition and moved out by maintenance
SELECT range_end AS covered_until FROM kt_partitions WHERE parent_table = 'ai_decision_events' ORDER BY range_end DESC NULLS LAST LIMIT 1 \gset
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('future-1', :'covered_until'::timestamptz + interval '1 day', 'allowed', 'm', 'p', 'g');
SELECT rows_moved AS moved_from_default FROM kt_run_maintenance(drain_default => true);
SELECT count(*) AS drift_after_maintenance FROM kt_verify_row_counts();

-- the maintenance job folds each hour's rows into one
SELECT kt_compact_row_counts() > 0 AS folded;
SELECT count(*) AS hours_with_several_rows FROM (SELECT hour FROM kt_row_counts GROUP BY hour HAVING count(*) > 1) h;
SELECT count(*) AS drift_after_compaction FROM kt_verify_row_counts();

-- a writer with only kt_governance_writer appends its counts at commit
CREATE ROLE rc_writer LOGIN IN ROLE kt_governance_writer;
SET ROLE rc_writer;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('writer-1', now() - interval '5 hours', 'allowed', 'm', 'p', 'g');
RESET ROLE;
SELECT count(*) AS drift_after_writer FROM kt_verify_row_counts();

-- retention logs exact counts read from kt_row_counts
SELECT count(*) AS older_events, (SELECT count(*) FROM policy_evaluations WHERE event_timestamp < now() - interval '60 days') AS older_evaluations
FROM ai_decision_events WHERE "timestamp" < now() - interval '60 days' \gset
SELECT cardinality(partitions_removed) > 0 AS dropped, events_removed = :older_events AS events_exact,
       evaluations_removed = :older_evaluations AS evaluations_exact
FROM kt_apply_retention(60 * 24);
SELECT count(*) AS drift_after_retention FROM kt_verify_row_counts();
SELECT count(*) AS pruned_hours_still_counted FROM (SELECT hour FROM kt_row_counts WHERE hour + interval '1 hour' <= now() - interval '60 days'
                                                    GROUP BY hour HAVING sum(events) <> 0 OR sum(evaluations) <> 0) h;

-- erasure
SELECT events_removed > 0 AS erased FROM kt_erase_subject('user-0002');
SELECT count(*) AS drift_after_erasure FROM kt_verify_row_counts();

-- drift: TRUNCATE of one partition pair fires no row trigger
SELECT ev.partition_name AS old_ev, pe.partition_name AS old_pe, ev.range_end AS old_end
FROM kt_partitions ev JOIN kt_partitions pe ON pe.parent_table = 'policy_evaluations' AND pe.range_start = ev.range_start
WHERE ev.parent_table = 'ai_decision_events' AND NOT ev.is_default ORDER BY ev.range_start LIMIT 1 \gset
TRUNCATE :"old_pe", :"old_ev";
SELECT count(*) > 0 AS drift_found FROM kt_verify_row_counts();
-- a partition pair attached by hand with bounds inside hours: its hours' counts do not add up to
-- its rows, so retention counts them
CREATE TABLE hand_ev PARTITION OF ai_decision_events FOR VALUES FROM ('2020-01-01 00:30+00') TO ('2020-01-01 01:30+00');
CREATE TABLE hand_pe PARTITION OF policy_evaluations FOR VALUES FROM ('2020-01-01 00:30+00') TO ('2020-01-01 01:30+00');
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('hand-1', '2020-01-01 00:45+00', 'allowed', 'm', 'p', 'g'), ('hand-2', '2020-01-01 01:00+00', 'allowed', 'm', 'p', 'g'),
       ('hand-3', '2020-01-01 01:15+00', 'allowed', 'm', 'p', 'g');
-- retention does not trust counts that disagree with the (now empty) partitions
BEGIN;
SELECT greatest(1, floor(extract(epoch FROM now() - :'old_end'::timestamptz) / 3600))::int AS old_hours \gset
SELECT count(*) AS expect_events FROM ai_decision_events WHERE "timestamp" < now() - make_interval(hours => :old_hours) \gset
SELECT cardinality(partitions_removed) AS dropped_after_truncate, events_removed = :expect_events AS exact_after_truncate
FROM kt_apply_retention(:old_hours);
COMMIT;
SELECT hour, counted_events, actual_events FROM kt_verify_row_counts() WHERE hour < '2021-01-01';
SELECT kt_rebuild_row_counts() > 0 AS rebuilt;
SELECT count(*) AS drift_after_rebuild FROM kt_verify_row_counts();

-- TRUNCATE of the parents resets the counts
TRUNCATE ai_decision_events, policy_evaluations;
SELECT count(*) AS counts_after_truncate FROM kt_row_counts WHERE events <> 0 OR evaluations <> 0;
SELECT count(*) AS drift_after_truncate FROM kt_verify_row_counts();

-- Two-phase commit (max_prepared_transactions > 0): a prepared transaction's row counts, dirty
-- marks and deltas are written into it at PREPARE, so COMMIT PREPARED keeps them and ROLLBACK
-- PREPARED takes them back, from another session; the preparing session's next transaction
-- does not carry them (they used to stay in its memory).
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT format('host=%s port=%s dbname=%s', split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port'), current_database()) AS here \gset
BEGIN;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
SELECT 'tp-rolled-back-' || g, '2031-03-03 10:00+00'::timestamptz + g * interval '1 second', 'allowed', 'm', 'p', 'g'
FROM generate_series(1, 100) g;
PREPARE TRANSACTION 'kt_rollback_me';
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('tp-next', '2031-03-04 10:00+00', 'allowed', 'm', 'p', 'g');
SELECT dblink_exec(:'here', $$ROLLBACK PREPARED 'kt_rollback_me'$$) AS rolled_back_elsewhere;
BEGIN;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
SELECT 'tp-committed-' || g, '2031-03-05 10:00+00'::timestamptz + g * interval '1 second', 'blocked', 'm', 'p', 'g'
FROM generate_series(1, 50) g;
PREPARE TRANSACTION 'kt_commit_me';
SELECT dblink_exec(:'here', $$COMMIT PREPARED 'kt_commit_me'$$) AS committed_elsewhere;
SELECT count(*) AS drift_after_two_phase FROM kt_verify_row_counts();
SELECT coalesce(sum(events), 0) AS counted_rolled_back FROM kt_governance_internal.kt_row_counts
WHERE hour >= '2031-03-03' AND hour < '2031-03-04';
SELECT count(*) > 0 AS committed_hour_marked FROM kt_governance_internal.kt_dirty_hours
WHERE bucket = '2031-03-05 10:00+00';
SELECT hours_refreshed > 0 AS refreshed FROM kt_refresh_metrics();
SELECT (SELECT sum(total_requests) FROM governance_metrics_hourly WHERE hour >= '2031-03-03' AND hour < '2031-03-06')
     = (SELECT count(*) FROM ai_decision_events WHERE "timestamp" >= '2031-03-03' AND "timestamp" < '2031-03-06')
    AS rollups_exact_after_two_phase;

-- reading the counts is a reader's (it calls internal helpers the reader may execute)
CREATE ROLE kt_counts_reader_probe LOGIN IN ROLE kt_governance_reader;
SET ROLE kt_counts_reader_probe;
SELECT events >= 0 AS reader_counts FROM kt_counted_rows('2031-01-01', '2031-12-31');
SELECT count(*) AS reader_drifted_hours FROM kt_verify_row_counts();
RESET ROLE;
CREATE ROLE kt_counts_nobody_probe LOGIN;
SET ROLE kt_counts_nobody_probe;
SELECT pg_temp.try($$SELECT * FROM kt_counted_rows('2031-01-01', '2031-12-31')$$) AS public_counts;
RESET ROLE;
DROP ROLE kt_counts_reader_probe, kt_counts_nobody_probe;
