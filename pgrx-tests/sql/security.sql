-- The trust boundary (issue 20), attacked as the role that could: each attempt is refused or
-- harmless, and a superuser's check afterwards finds every event, hold and removal-log row as
-- before. Classes closed so far: 1 (caller-owned temp tables) and 8 (locks any role could hold).
--
-- Class 1: caller-owned temp tables. Privileged code used to stash rows in pg_temp.kt_doomed
-- and pg_temp.kt_stash_events / kt_stash_evaluations, reusing them when they existed, so an
-- admin who made them first ran a trigger as the extension owner (and became superuser), or
-- chose which rows an erasure deleted, or made a drain delete rows without moving them.
-- rows older than this month must wait in the default partition here (the move is under test):
-- no past partitions at install
SET kt_governance.premake_past = 0;
CREATE EXTENSION kt_governance;
-- (kt_ingest below is given fixed 2026 dates: no acceptance window, whatever the date)
SET kt_governance.ingest_accept_past = -1;
\ir _helpers.psql
-- data relative to now(), checked by comparison only: 20 days in dated partitions, 10 days of
-- older rows waiting in the default partition for a drain, one held team
SELECT FROM kt_create_partitions(date_trunc('month', now() - interval '20 days', 'UTC'), now() + interval '1 day') \g /dev/null
SELECT EXISTS (SELECT FROM kt_partitions WHERE parent_table = 'ai_decision_events' AND NOT is_default
               AND range_start <= date_trunc('month', now() - interval '20 days', 'UTC')) AS partitions;
SELECT kt_generate_sample_events(3000, 20, 41, now()) IS NOT NULL AS loaded;
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, user_id, team_id)
SELECT 'waiting-' || g, date_trunc('month', now() - interval '20 days', 'UTC') - g * interval '1 hour', 'allowed', 'm', 'p', 'g', 'user-waiting', 'team-waiting'
FROM generate_series(1, 240) g;
INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result)
SELECT id, "timestamp", 'pii', 'pass' FROM ai_decision_events WHERE id LIKE 'waiting-%';
SELECT kt_add_legal_hold(team_id => 'team-waiting', reason => 'security test') > 0 AS held;
SELECT count(*) AS waiting_in_default FROM ONLY events_default;

-- what a superuser checks afterwards
CREATE FUNCTION pg_temp.evidence() RETURNS text LANGUAGE sql AS $$
    SELECT format('events=%s evaluations=%s digest=%s holds=%s',
        (SELECT count(*) FROM ai_decision_events), (SELECT count(*) FROM policy_evaluations),
        (SELECT md5(string_agg(id || '@' || "timestamp", ',' ORDER BY id)) FROM ai_decision_events),
        (SELECT count(*) FROM kt_legal_holds WHERE released_at IS NULL)) $$;
SELECT pg_temp.evidence() AS evidence_before \gset

CREATE ROLE kt_sec_admin LOGIN IN ROLE kt_governance_admin;
GRANT SELECT ON ai_decision_events TO kt_sec_admin;  -- to pick held ids, as an admin may
SET ROLE kt_sec_admin;
-- the planted stash tables: a statement trigger that makes the caller superuser (and notes that
-- it ran), and row triggers that swallow the rows a drain stashes
CREATE TEMP TABLE trigger_ran (what text);
CREATE FUNCTION pg_temp.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.trigger_ran VALUES (TG_TABLE_NAME || ' as ' || current_user);
    EXECUTE 'ALTER ROLE kt_sec_admin SUPERUSER';
    RETURN NULL;
END $$;
CREATE FUNCTION pg_temp.swallow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.trigger_ran VALUES (TG_TABLE_NAME || ' swallowed a row as ' || current_user);
    RETURN NULL;
END $$;
-- kt_doomed filled with held rows, so an erasure of "nobody" would delete them
CREATE TEMP TABLE kt_doomed (id text, ts timestamptz);
INSERT INTO pg_temp.kt_doomed SELECT id, "timestamp" FROM ai_decision_events WHERE team_id = 'team-waiting';
CREATE TRIGGER escalate AFTER INSERT ON pg_temp.kt_doomed FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.escalate();
CREATE TEMP TABLE kt_stash_events (LIKE ai_decision_events);
CREATE TEMP TABLE kt_stash_evaluations (LIKE policy_evaluations);
CREATE TRIGGER swallow BEFORE INSERT ON pg_temp.kt_stash_events FOR EACH ROW EXECUTE FUNCTION pg_temp.swallow();
CREATE TRIGGER swallow BEFORE INSERT ON pg_temp.kt_stash_evaluations FOR EACH ROW EXECUTE FUNCTION pg_temp.swallow();

-- every privileged entry point that stashed rows
SELECT events_removed, events_held FROM kt_erase_subject('nobody');
SELECT partitions_created > 0 AS drained_into_new_partitions, rows_moved FROM kt_run_maintenance();
SELECT count(*) AS created FROM kt_create_partitions('2040-01-10', '2040-01-11');
SELECT events_removed FROM kt_apply_retention(24 * 365 * 20);
SELECT status AS maintenance_job FROM kt_run_job('maintenance');
SELECT status AS retention_job FROM kt_run_job('retention');
SELECT count(*) AS planted_triggers_ran FROM pg_temp.trigger_ran;
SELECT count(*) AS planted_doomed_rows_left FROM pg_temp.kt_doomed;  -- untouched: 240
RESET ROLE;

-- the superuser's check: no escalation, every event and evaluation still there (the drained
-- ones moved into their partition), the holds too; the removal log holds the two runs, honest
SELECT rolsuper AS attacker_is_superuser FROM pg_roles WHERE rolname = 'kt_sec_admin';
SELECT pg_temp.evidence() = :'evidence_before' AS evidence_intact;
SELECT count(*) AS still_waiting_in_default FROM ONLY kt_governance_partitions.events_default;
SELECT why, subject, events_removed, events_held FROM kt_removal_log ORDER BY removal_id;
-- privileged code names no temp table by a fixed name any more: every stash comes from
-- kt_private_temp_table(), whose tables have random names
SELECT p.proname FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'kt_governance'
WHERE p.prosrc ~* 'pg_temp\.kt_|temp table kt_' ORDER BY 1;
-- and such a table cannot be planted: its name is new each time
SELECT kt_private_temp_table('kt_doomed', '(id text)') <> kt_private_temp_table('kt_doomed', '(id text)') AS names_differ;
SELECT kt_private_temp_table('kt_doomed', '(id text)') ~ '^pg_temp\.kt_doomed_[0-9a-f]{32}$' AS random_name;
DROP OWNED BY kt_sec_admin;
DROP ROLE kt_sec_admin;

-- Class 8: locks a role with no grants could hold. Runs were serialized with advisory-lock
-- keys, which any login may take: a second session (dblink) of a role with no grants holds
-- every key 0.8.0 used, and every run goes through, within a 5 s lock_timeout.
CREATE EXTENSION dblink;
CREATE ROLE kt_sec_nobody LOGIN;
SELECT format('host=%s port=%s dbname=%s', split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port'), current_database()) AS here \gset
SELECT dblink_connect('nobody', :'here' || ' user=kt_sec_nobody');
SELECT count(*) AS keys_taken FROM dblink('nobody', $$SELECT pg_advisory_lock(hashtext(k))::text FROM unnest(ARRAY['kt_governance.refresh_metrics',
       'kt_governance.retention', 'kt_governance.reclaim', 'kt_governance.kt_ingest']) k$$) AS t(v text);
SELECT count(*) AS keys_held_by_nobody FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND a.usename = 'kt_sec_nobody';
SET lock_timeout = '5s';
SELECT kt_generate_sample_events(50, 1, 43, now()) IS NOT NULL AS more_rows;
SELECT hours_refreshed >= 0 AS refresh_ran FROM kt_refresh_metrics();
SELECT events_removed >= 0 AS erasure_ran FROM kt_erase_subject('user-0005');
SELECT status AS refresh_job FROM kt_run_job('refresh_metrics');
SET kt_governance.retention_hours = 100000;
SELECT status AS retention_job, message LIKE 'cutoff %' AS retention_applied FROM kt_run_job('retention');
RESET kt_governance.retention_hours;
SELECT inserted FROM kt_ingest(format('{"id": "sec-ingest-1", "timestamp": "%s", "decision": "allow", "model": "m", "provider": "p", "gateway_id": "g"}',
                                      to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))::jsonb);
SELECT tables_dropped >= 0 AS reclaim_ran FROM kt_reclaim_space();
RESET lock_timeout;
-- the locks that replace them cannot be taken, read or waited on by that role
SELECT * FROM dblink('nobody', 'SELECT pg_advisory_unlock_all()::text') AS t(v text);
SELECT pg_temp.try($$SELECT * FROM dblink('nobody', 'SELECT kt_governance_internal.kt_take_run_lock(''refresh_metrics'')') AS t(b boolean)$$) AS nobody_takes_run_lock;
SELECT pg_temp.try($$SELECT * FROM dblink('nobody', 'SELECT kt_governance_internal.kt_claim_ids(''{sec-ingest-2}'')') AS t(v text)$$) AS nobody_claims_an_id;
SELECT pg_temp.try($$SELECT * FROM dblink('nobody', 'SELECT lock_name FROM kt_governance_internal.kt_run_locks FOR UPDATE') AS t(v text)$$) AS nobody_locks_the_rows;
SELECT pg_temp.try($$SELECT * FROM dblink('nobody', 'SELECT lock_name FROM kt_governance_internal.kt_run_locks FOR KEY SHARE') AS t(v text)$$) AS nobody_share_locks_the_rows;
SELECT dblink_disconnect('nobody');
-- a retention job that finds another removal under way (an extension session holding the
-- retention run lock) is recorded as skipped, with the reason, and counts as no failure
SELECT dblink_connect('owner', :'here' || ' user=postgres');
SELECT dblink_exec('owner', 'BEGIN');
SELECT * FROM dblink('owner', $$SELECT kt_governance_internal.kt_take_run_lock('retention')$$) AS t(taken boolean);
SET kt_governance.retention_hours = 100000;
SELECT status, message FROM kt_run_job('retention');
RESET kt_governance.retention_hours;
SELECT job_name, consecutive_failures, last_error_message FROM kt_jobs WHERE job_name = 'retention';
SELECT status, count(*) FROM kt_job_runs WHERE job_name = 'retention' GROUP BY status ORDER BY status;
SELECT dblink_exec('owner', 'COMMIT');
SELECT dblink_disconnect('owner');
DROP ROLE kt_sec_nobody;

-- Class 11 (in part): export destinations with . or .. segments are refused everywhere, as
-- documented, before anything is written (an inner "." used to pass)
SELECT d, pg_temp.try(format($$SELECT * FROM kt_export_events(%L, now() - interval '1 day', now())$$, d)) AS refused
FROM unnest(ARRAY['file:///tmp/./kt_x', 'file:///tmp/kt_x/.', 'file:///tmp/../etc', 'file:///tmp/kt_x/..',
                  's3://bucket/./p', 's3://bucket/a/../p', 's3://bucket/..']) d;

-- Class 6: the row trigger functions write what they gather to bookkeeping as the extension
-- owner, so nobody else may attach them to a table (EXECUTE revoked, internal schema not
-- theirs): a login's look-alike table with the trigger is refused at CREATE TRIGGER.
CREATE ROLE kt_sec_login LOGIN;
SET ROLE kt_sec_login;
CREATE TEMP TABLE lookalike ("timestamp" timestamptz, decision text, model text, gateway_id int, team_id text,
                             cost_usd numeric, input_tokens int, output_tokens int, latency_ms int);
SELECT pg_temp.try($$CREATE TRIGGER kt_mark_dirty_hours AFTER INSERT ON pg_temp.lookalike
                     FOR EACH ROW EXECUTE FUNCTION kt_governance_internal.kt_mark_dirty_hours()$$) AS login_attaches_trigger;
RESET ROLE;
GRANT USAGE ON SCHEMA kt_governance_internal TO kt_sec_login;
SET ROLE kt_sec_login;
SELECT pg_temp.try($$CREATE TRIGGER kt_mark_dirty_hours AFTER INSERT ON pg_temp.lookalike
                     FOR EACH ROW EXECUTE FUNCTION kt_governance_internal.kt_mark_dirty_hours()$$) AS login_with_usage_attaches_trigger;
RESET ROLE;
-- Even a superuser's look-alike whose gateway_id is an integer must not have its integers read
-- as text pointers (a server crash, as it was once): the columns' types are checked, and its
-- rows are only marked for a recompute.
BEGIN;
CREATE TEMP TABLE lookalike_su ("timestamp" timestamptz, decision text, model text, gateway_id int, team_id text,
                                cost_usd numeric, input_tokens int, output_tokens int, latency_ms int);
CREATE TRIGGER kt_mark_dirty_hours AFTER INSERT ON pg_temp.lookalike_su FOR EACH ROW EXECUTE FUNCTION kt_governance_internal.kt_mark_dirty_hours();
INSERT INTO pg_temp.lookalike_su SELECT '2019-03-03 10:00+00'::timestamptz + g * interval '1 minute', 'allowed', 'm', 12345678, 't', 1, 1, 1, 1 FROM generate_series(1, 50) g;
SELECT count(*) AS lookalike_rows FROM pg_temp.lookalike_su;
ROLLBACK;
SELECT 'the server is still up' AS after_the_lookalike;
DROP OWNED BY kt_sec_login;
DROP ROLE kt_sec_login;

-- Class 6: a writer may write the documented tables and call kt_ingest, nothing else. The
-- bookkeeping its inserts leave behind is written as the extension owner; writing it directly
-- (forged deltas made a summary show 1,000,000 escalated events with no raw row, a forged row
-- count overstated what retention removed) is refused.
CREATE ROLE kt_sec_writer LOGIN IN ROLE kt_governance_writer;
SELECT coalesce(sum(events), 0) AS counted_before FROM kt_governance_internal.kt_row_counts \gset
SET ROLE kt_sec_writer;
SELECT pg_temp.try($$INSERT INTO kt_governance_internal.kt_dirty_hours (bucket, recompute) VALUES (date_trunc('hour', now()), false)$$) AS writer_marks_hour;
SELECT pg_temp.try($$INSERT INTO kt_governance_internal.kt_rollup_deltas (bucket, gateway_id, model, team_id, decision, event_count, total_cost,
                     total_input_tokens, total_output_tokens, latency_sum, latency_count)
                     VALUES (date_trunc('hour', now()), 'g', 'm', 't', 'escalated', 1000000, 0, 0, 0, 0, 0)$$) AS writer_forges_delta;
SELECT pg_temp.try($$INSERT INTO kt_governance_internal.kt_row_counts (hour, events, evaluations) VALUES (date_trunc('hour', now()), 5000, 0)$$) AS writer_forges_count;
SELECT pg_temp.try($$SELECT kt_governance_internal.kt_settle_pending_deltas()$$) AS writer_calls_internal;
-- nor claim ids in the ingest claims (kt_ingest claims them for it), read them or prune them
SELECT pg_temp.try($$INSERT INTO kt_governance_internal.kt_ingest_claims (id) VALUES ('writer-2')$$) AS writer_writes_claims;
SELECT pg_temp.try($$SELECT count(*) FROM kt_governance_internal.kt_ingest_claims$$) AS writer_reads_claims;
SELECT pg_temp.try($$SELECT kt_governance_internal.kt_prune_ingest_claims()$$) AS writer_prunes_claims;
-- and the writer's own rows are still counted and marked, by the extension
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, team_id)
VALUES ('writer-1', now() - interval '2 hours', 'allowed', 'm', 'p', 'g', 'team-writer');
RESET ROLE;
SELECT sum(events) - :counted_before AS counted_for_the_writer FROM kt_governance_internal.kt_row_counts;
SELECT count(*) > 0 AS hour_marked_for_the_writer FROM kt_governance_internal.kt_dirty_hours
WHERE bucket = date_trunc('hour', now() - interval '2 hours', 'UTC');
DELETE FROM ai_decision_events WHERE id = 'writer-1';
DROP ROLE kt_sec_writer;

-- Classes 2 and 3: a database owner who is not a superuser. It owns public (the extension's
-- schema) through pg_database_owner, so it may create, rename and drop things there.
CREATE ROLE kt_sec_dbowner LOGIN;
SELECT current_database() AS db, pg_temp.evidence() AS evidence_before_owner,
       (SELECT md5(string_agg(l::text, ',' ORDER BY removal_id)) FROM kt_removal_log l) AS removals_before_owner,
       (SELECT max(removal_id) FROM kt_removal_log) AS last_removal_before_owner \gset
ALTER DATABASE :"db" OWNER TO kt_sec_dbowner;
SELECT partition_name AS held_partition FROM kt_partitions
WHERE parent_table = 'ai_decision_events' AND NOT is_default ORDER BY range_start LIMIT 1 \gset
SET ROLE kt_sec_dbowner;
-- class 2: renaming the schema privileged code names, to plant a new one under its name, is refused
SELECT pg_temp.try($$ALTER SCHEMA public RENAME TO public_moved$$) AS dbowner_renames_schema;
-- what it may still plant in public is never reached by privileged code: look-alikes of
-- internal names and better-matching overloads of pg_catalog functions and operators, each
-- noting who ran it
CREATE TABLE public.planted_calls (what text, by_role text);
GRANT INSERT ON public.planted_calls TO PUBLIC;
CREATE FUNCTION public.kt_setting(name text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.planted_calls VALUES ('kt_setting', current_user); RETURN NULL; END $$;
CREATE FUNCTION public.kt_frozen_before() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.planted_calls VALUES ('kt_frozen_before', current_user); RETURN '-infinity'; END $$;
CREATE FUNCTION public.format(text, bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.planted_calls VALUES ('format', current_user); RETURN $1; END $$;
CREATE FUNCTION public.date_trunc(text, timestamptz, text) RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.planted_calls VALUES ('date_trunc', current_user); RETURN $2; END $$;
CREATE FUNCTION public.planted_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.planted_calls VALUES ('=', current_user); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.planted_eq);
-- overloads of the extension's own public functions, which privileged code calls: each would
-- be the better match for a call with an untyped NULL or literal (privileged code types every
-- argument exactly)
CREATE FUNCTION public.kt_apply_retention(hours integer, archive text, max_partitions integer)
RETURNS TABLE (cutoff timestamptz, partitions_removed text[], events_removed bigint, evaluations_removed bigint,
               events_archived bigint, events_held bigint, more_to_do boolean) LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.planted_calls VALUES ('kt_apply_retention', current_user); RETURN; END $$;
CREATE FUNCTION public.kt_refresh_metrics(up_to text)
RETURNS TABLE (hours_refreshed bigint, metric_rows bigint, oldest_hour timestamptz, newest_hour timestamptz, hours_merged bigint)
LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.planted_calls VALUES ('kt_refresh_metrics', current_user); RETURN; END $$;
CREATE FUNCTION public.kt_partition_range(t text, granularity text)
RETURNS TABLE (range_start timestamptz, range_end timestamptz, name_suffix text) LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.planted_calls VALUES ('kt_partition_range', current_user); RETURN; END $$;
CREATE TABLE public.kt_dirty_hours (bucket timestamptz, marked_at timestamptz, recompute boolean);
CREATE TABLE public.kt_run_locks (lock_name text);
-- class 3: the dated partitions are the extension owner's, in its schema
SELECT pg_temp.try(pg_catalog.format('DROP TABLE kt_governance_partitions.%I', :'held_partition')) AS dbowner_drops_partition;
SELECT pg_temp.try(pg_catalog.format('TRUNCATE kt_governance_partitions.%I', :'held_partition')) AS dbowner_truncates_partition;
SELECT pg_temp.try($$TRUNCATE ai_decision_events CASCADE$$) AS dbowner_truncates_events;
SELECT pg_temp.try($$DELETE FROM ai_decision_events$$) AS dbowner_deletes_events;
SELECT pg_temp.try($$DROP TABLE ai_decision_events CASCADE$$) AS dbowner_drops_events;
SELECT pg_temp.try($$DROP TABLE kt_legal_holds$$) AS dbowner_drops_holds;
SELECT pg_temp.try($$ALTER TABLE kt_removal_log RENAME TO kt_removal_log_gone$$) AS dbowner_renames_log;
-- the schema drop cascades past ownership checks; the guard refuses it, and the override
-- setting is a superuser's
SELECT pg_temp.try($$DROP SCHEMA public CASCADE$$) AS dbowner_drops_schema;
SELECT pg_temp.try($$SET kt_governance.allow_drop_with_data = on$$) AS dbowner_sets_override;
RESET ROLE;
-- DROP OWNED by a role that owns the schema directly drops it too, and the extension with it
ALTER SCHEMA public OWNER TO kt_sec_dbowner;
SET ROLE kt_sec_dbowner;
SELECT pg_temp.try($$DROP OWNED BY kt_sec_dbowner CASCADE$$) AS schema_owner_drops_owned;
RESET ROLE;
ALTER SCHEMA public OWNER TO pg_database_owner;
-- a superuser (the worker) runs every job and verb that touches what the owner planted next to
SELECT job_name, status FROM kt_governance_internal.kt_due_jobs() j(job_name), LATERAL kt_run_job(job_name) ORDER BY 1;
SELECT status FROM kt_run_job('maintenance');
SELECT status FROM kt_run_job('refresh_metrics');
SET kt_governance.retention_hours = 200000;
SELECT status FROM kt_run_job('retention');
RESET kt_governance.retention_hours;
SELECT count(*) >= 0 AS create_partitions_ran FROM kt_create_partitions(now(), now() + interval '70 days');
SELECT count(*) >= 0 AS report_ran FROM kt_governance_summary(lookback => '30 days');
SELECT count(*) >= 0 AS spend_ran FROM kt_spend_by_team_model(lookback => '30 days');
SELECT events_removed FROM kt_erase_subject('nobody-at-all');
SELECT count(*) AS planted_code_ran FROM public.planted_calls;
SELECT pg_temp.evidence() = :'evidence_before_owner' AS superuser_finds_the_evidence_intact,
       (SELECT md5(string_agg(l::text, ',' ORDER BY removal_id)) FROM kt_removal_log l
        WHERE removal_id <= :last_removal_before_owner) = :'removals_before_owner' AS removal_log_intact;
DROP OPERATOR public.= (text, text);
DROP FUNCTION public.planted_eq(text, text), public.kt_setting(text), public.kt_frozen_before(),
              public.format(text, bigint), public.date_trunc(text, timestamptz, text),
              public.kt_apply_retention(integer, text, integer), public.kt_refresh_metrics(text),
              public.kt_partition_range(text, text);
DROP TABLE public.planted_calls, public.kt_dirty_hours, public.kt_run_locks;
ALTER DATABASE :"db" OWNER TO postgres;
DROP ROLE kt_sec_dbowner;

-- Class 7: the door refuses what would break the store for everyone, and keeps what is stored.
-- (One event at 294276-12-31 made every report fail for every reader; a 50 MB model broke
-- refresh and erasure; created_at 'infinity' kept a row past retention.)
CREATE ROLE kt_sec_writer2 LOGIN IN ROLE kt_governance_writer;
SELECT pg_temp.counts() AS counts_before_door \gset
SET ROLE kt_sec_writer2;
SELECT pg_temp.try($$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
                     VALUES ('far-future', '294276-12-31 23:30+00', 'allowed', 'm', 'p', 'g')$$) AS writer_far_future;
SELECT pg_temp.try($$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
                     VALUES ('ancient', '1969-12-31 23:59+00', 'allowed', 'm', 'p', 'g')$$) AS writer_before_1970;
SELECT pg_temp.try($$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
                     VALUES ('huge-model', '2021-06-01 00:00+00', 'allowed', repeat('m', 257), 'p', 'g')$$) AS writer_huge_model;
SELECT pg_temp.try($$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, created_at)
                     VALUES ('kept-forever', now() - interval '400 days', 'allowed', 'm', 'p', 'g', 'infinity')$$) AS writer_created_at_infinity;
SELECT pg_temp.try($$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id, created_at)
                     VALUES ('kept-long', now() - interval '400 days', 'allowed', 'm', 'p', 'g', now() + interval '10 years')$$) AS writer_created_at_future;
SELECT pg_temp.try($$INSERT INTO policy_evaluations (event_id, event_timestamp, policy_name, result)
                     VALUES ('some-event', '2021-06-01 00:00+00', repeat('p', 300), 'pass')$$) AS writer_huge_policy_name;
SELECT pg_temp.try(format($$SELECT * FROM kt_ingest('[{"id": "j1", "timestamp": "294276-12-31T23:30:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}]')$$)) AS ingest_far_future;
SELECT pg_temp.try(format($$SELECT * FROM kt_ingest('[{"id": "j2", "timestamp": "2026-06-01T00:00:00Z", "decision": "allowed", "model": "%s", "provider": "p", "gateway_id": "g"}]')$$,
                          repeat('m', 300))) AS ingest_huge_model;
RESET ROLE;
SELECT pg_temp.counts() = :'counts_before_door' AS nothing_stored_nothing_lost;
SELECT count(*) >= 0 AS reports_still_work FROM kt_governance_summary(lookback => '3650 days');
-- arguments that would make a window or a span overflow get a clear error, not 22008 / XX000
SELECT pg_temp.try($$SELECT * FROM kt_governance_summary(lookback => '300000 years')$$) AS lookback_too_long;
SELECT pg_temp.try($$SELECT * FROM kt_apply_retention(2147483647)$$) AS retention_hours_too_many;
SELECT pg_temp.try($$SELECT kt_generate_sample_events(10, 100000000)$$) AS sample_span_too_long;
DROP ROLE kt_sec_writer2;

-- Class 10: holds and retention defeated. A hold is released only by a member of the role that
-- placed it or of kt_governance_legal_hold; a schedule's created_by and progress are set by the
-- extension; a disabled schedule spares nothing from retention.
CREATE ROLE kt_sec_admin_a LOGIN IN ROLE kt_governance_admin;
CREATE ROLE kt_sec_admin_b LOGIN IN ROLE kt_governance_admin;
CREATE ROLE kt_sec_counsel LOGIN IN ROLE kt_governance_legal_hold;
SET SESSION AUTHORIZATION kt_sec_admin_a;
SELECT kt_add_legal_hold(team_id => 'team-a-matter', reason => 'placed by a') AS hold_a \gset
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION kt_sec_admin_b;
SELECT pg_temp.try(format('SELECT kt_release_legal_hold(%s)', :hold_a)) AS other_admin_releases;
SELECT pg_temp.try('SELECT kt_release_legal_hold(1)') AS other_admin_releases_the_first_hold;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION kt_sec_counsel;
SELECT pg_temp.try(format('SELECT kt_release_legal_hold(%s)', :hold_a)) AS legal_hold_role_releases;
SELECT kt_add_legal_hold(team_id => 'team-counsel', reason => 'placed by counsel') AS hold_c \gset
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION kt_sec_admin_a;
SELECT pg_temp.try(format('SELECT kt_release_legal_hold(%s)', :hold_c)) AS admin_releases_counsels_hold;
-- a schedule made by hand, claiming to be postgres's, with a made-up progress
SELECT pg_temp.try($$INSERT INTO kt_export_schedules (schedule_name, destination, every, watermark, spare_from_retention, enabled, created_by)
                     VALUES ('forged', 's3://bucket/forged', '1 hour', '-infinity', true, false, 'postgres')$$) AS schedule_from_minus_infinity;
INSERT INTO kt_export_schedules (schedule_name, destination, every, watermark, spare_from_retention, enabled, created_by)
VALUES ('forged', 's3://bucket/forged', '1 hour', '1970-01-01', true, false, 'postgres');
RESET SESSION AUTHORIZATION;
SELECT schedule_name, created_by, pending_run_id IS NULL AS no_pending_run FROM kt_export_schedules WHERE schedule_name = 'forged';
SELECT kt_governance_internal.kt_export_spare_from() AS disabled_schedule_spares_from;
DELETE FROM kt_export_schedules WHERE schedule_name = 'forged';
SELECT hold_id = :hold_a AS released_hold, released_by FROM kt_legal_holds WHERE released_at IS NOT NULL AND hold_id = :hold_a;
SELECT pg_temp.try(format('SELECT kt_release_legal_hold(%s)', :hold_c)) AS superuser_releases;
DROP ROLE kt_sec_admin_a, kt_sec_admin_b, kt_sec_counsel;

-- Class 9: row-level security is honoured. A reader limited to one team by a policy gets from
-- every report and from governance_metrics_hourly exactly what its visible rows give (the
-- rollups, computed over every row, are not used for it); a superuser still sees everything.
SELECT * FROM kt_refresh_metrics() \gset refreshed_
SELECT team_id AS rls_team FROM ai_decision_events WHERE team_id IS NOT NULL
GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1 \gset
CREATE ROLE kt_sec_team_reader LOGIN IN ROLE kt_governance_reader;
ALTER TABLE ai_decision_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE policy_evaluations ENABLE ROW LEVEL SECURITY;
CREATE POLICY one_team ON ai_decision_events TO kt_sec_team_reader USING (team_id = :'rls_team');
CREATE POLICY one_team ON policy_evaluations TO kt_sec_team_reader
    USING (EXISTS (SELECT FROM ai_decision_events e WHERE e.id = event_id AND e."timestamp" = event_timestamp));
SELECT (SELECT count(*) FROM ai_decision_events) AS all_events \gset
SET ROLE kt_sec_team_reader;
SELECT count(*) < :all_events AS policy_limits_the_reader FROM ai_decision_events;
SELECT count(*) AS visible_events FROM ai_decision_events \gset
SELECT (SELECT sum(event_count) FROM kt_governance_summary(lookback => '3650 days'))
     = (SELECT count(*) FROM ai_decision_events WHERE "timestamp" >= now() - interval '3650 days') AS summary_gives_visible_rows;
SELECT count(*) AS spend_rows, bool_and(team = :'rls_team') AS spend_only_the_visible_team,
       sum(request_count) = (SELECT count(*) FROM ai_decision_events WHERE "timestamp" >= now() - interval '3650 days')
           AS spend_counts_visible_rows
FROM (SELECT DISTINCT team, sum(request_count) OVER (PARTITION BY team) AS request_count
      FROM kt_spend_by_team_model(lookback => '3650 days', decisions => ARRAY['allowed', 'blocked', 'escalated', 'redacted'])) s;
SELECT (SELECT sum(total_requests) FROM governance_metrics_hourly) = (SELECT count(*) FROM ai_decision_events)
    AS metrics_view_gives_visible_rows;
SELECT (SELECT sum(total) FROM kt_anomalies(start_time => now() - interval '3 days', end_time => now() - interval '1 day'))
     = (SELECT count(*) FROM ai_decision_events WHERE "timestamp" >= now() - interval '3 days' AND "timestamp" < now() - interval '1 day')
    AS anomalies_give_visible_rows;
SELECT (SELECT sum(evaluation_count) FROM kt_policy_effectiveness(lookback => '3650 days'))
     = (SELECT count(*) FROM policy_evaluations pe WHERE pe.event_timestamp >= now() - interval '3650 days')
    AS policy_report_gives_visible_rows;
RESET ROLE;
-- (the superuser's reports come from the rollups, which also keep what erasure removed earlier
-- in this file: more than the team's rows, whatever the exact number)
SELECT (SELECT sum(event_count) FROM kt_governance_summary(lookback => '3650 days')) > :visible_events AS superuser_sees_more,
       (SELECT sum(total_requests) FROM governance_metrics_hourly) > :visible_events AS superuser_view_sees_more;
DROP POLICY one_team ON ai_decision_events;
DROP POLICY one_team ON policy_evaluations;
ALTER TABLE ai_decision_events DISABLE ROW LEVEL SECURITY;
ALTER TABLE policy_evaluations DISABLE ROW LEVEL SECURITY;
DROP ROLE kt_sec_team_reader;

-- Class 3, the superuser's side: removing a partition by hand (DROP, TRUNCATE, DETACH) that
-- would take legally held rows with it is refused unless the session says so explicitly.
SELECT p.partition_name AS held_part, 'policy_evaluations_' || substr(p.partition_name, length('events_') + 1) AS held_evals
FROM kt_partitions p
WHERE p.parent_table = 'ai_decision_events' AND NOT p.is_default
  AND kt_governance_internal.kt_held_rows_in(format('%I.%I', p.schema_name, p.partition_name)::regclass)
ORDER BY p.range_start LIMIT 1 \gset
SELECT p.partition_name AS free_part, 'policy_evaluations_' || substr(p.partition_name, length('events_') + 1) AS free_evals
FROM kt_partitions p
WHERE p.parent_table = 'ai_decision_events' AND NOT p.is_default
  AND NOT kt_governance_internal.kt_held_rows_in(format('%I.%I', p.schema_name, p.partition_name)::regclass)
ORDER BY p.range_start LIMIT 1 \gset
-- (SQLSTATE only: which partition holds the held rows depends on the date)
SELECT split_part(pg_temp.try(format('DROP TABLE kt_governance_partitions.%I, kt_governance_partitions.%I', :'held_evals', :'held_part')), ':', 1) AS superuser_drops_held;
-- (SQLSTATE only: which partition holds the held rows depends on the date)
SELECT split_part(pg_temp.try(format('TRUNCATE kt_governance_partitions.%I CASCADE', :'held_part')), ':', 1) AS superuser_truncates_held;
-- (SQLSTATE only: which partition holds the held rows depends on the date)
SELECT split_part(pg_temp.try(format('TRUNCATE kt_governance_partitions.%I', :'held_evals')), ':', 1) AS superuser_truncates_held_evaluations;
-- (SQLSTATE only: which partition holds the held rows depends on the date)
SELECT split_part(pg_temp.try('TRUNCATE ai_decision_events CASCADE'), ':', 1) AS superuser_truncates_events;
-- (SQLSTATE only: which partition holds the held rows depends on the date)
SELECT split_part(pg_temp.try(format('ALTER TABLE ai_decision_events DETACH PARTITION kt_governance_partitions.%I', :'held_part')), ':', 1) AS superuser_detaches_held;
SELECT pg_temp.evidence() = :'evidence_before_owner' AS evidence_intact_after_superuser_attempts;
-- the explicit override, and a partition without held rows, are not refused (rolled back)
BEGIN;
SET LOCAL kt_governance.allow_drop_with_data = on;
SELECT pg_temp.try(format('DROP TABLE kt_governance_partitions.%I, kt_governance_partitions.%I', :'held_evals', :'held_part')) AS superuser_drops_held_with_override;
ROLLBACK;
BEGIN;
SELECT pg_temp.try(format('DROP TABLE kt_governance_partitions.%I, kt_governance_partitions.%I', :'free_evals', :'free_part')) AS superuser_drops_a_partition_without_holds;
ROLLBACK;
