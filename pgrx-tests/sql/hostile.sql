-- Hostile input to every function: injection attempts in every text argument that becomes an
-- identifier, a path or a setting name, huge and negative numbers, NULLs, malformed JSON,
-- wrong types, Unicode edge cases, infinite timestamps. Each failing case must fail with a
-- clear SQLSTATE (never XX000) and leave everything as it was; the text cases that succeed
-- must treat the text as data.
CREATE EXTENSION kt_governance;
-- (kt_ingest below is given fixed 2026 dates: no acceptance window, whatever the date)
SET kt_governance.ingest_accept_past = -1;
\ir _helpers.psql
SELECT count(*) > 0 AS partitions FROM kt_create_partitions('2026-01-01', '2026-03-01');
SELECT kt_generate_sample_events(2000, 20, 3, '2026-02-20') IS NOT NULL AS loaded;
SELECT kt_add_legal_hold(team_id => 'team-legal', reason => 'baseline') > 0 AS hold;

-- everything a failed call must leave untouched
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
    SELECT format('events=%s evaluations=%s partitions=%s holds=%s released=%s schedules=%s runs=%s removals=%s dirty=%s errors=%s',
        (SELECT count(*) FROM ai_decision_events), (SELECT count(*) FROM policy_evaluations),
        (SELECT count(*) FROM kt_partitions), (SELECT count(*) FROM kt_legal_holds),
        (SELECT count(*) FROM kt_legal_holds WHERE released_at IS NOT NULL),
        (SELECT count(*) FROM kt_export_schedules), (SELECT count(*) FROM kt_job_runs),
        (SELECT count(*) FROM kt_removal_log), (SELECT count(*) FROM kt_dirty_hours),
        (SELECT count(*) FROM kt_ingest_errors)) $$;
SELECT pg_temp.state() AS before \gset

CREATE TEMP TABLE hostile (case_name text, stmt text);
INSERT INTO hostile VALUES
 ('setting name injection', $$SELECT kt_governance_internal.kt_setting('premake; DROP TABLE ai_decision_events')$$),
 ('setting name with a quote', $$SELECT kt_governance_internal.kt_setting($q$premake'--$q$)$$),
 ('secret setting as non-privileged lookup path', $$SELECT kt_setting('../../postgresql')$$),
 ('job name injection', $$SELECT * FROM kt_run_job($q$maintenance'; DROP TABLE kt_jobs; --$q$)$$),
 ('job name NULL', $$SELECT * FROM kt_run_job(NULL)$$),
 ('partition granularity injection', $$SELECT * FROM kt_create_partitions('2026-04-01', '2026-05-01', 'monthly; DROP TABLE ai_decision_events')$$),
 ('partition range at infinity', $$SELECT * FROM kt_create_partitions('2026-04-01', 'infinity')$$),
 ('partition range reversed', $$SELECT * FROM kt_create_partitions('2026-05-01', '2026-04-01')$$),
 ('partition range of centuries, daily', $$SELECT * FROM kt_create_partitions('1900-01-01', '2100-01-01', 'daily')$$),
 ('partition_range of -infinity', $$SELECT * FROM kt_partition_range('-infinity')$$),
 ('maintenance premake negative', $$SELECT * FROM kt_run_maintenance(premake => -1)$$),
 ('maintenance premake huge', $$SELECT * FROM kt_run_maintenance(premake => 1000000)$$),
 ('summary negative lookback', $$SELECT * FROM kt_governance_summary(lookback => '-1 day')$$),
 ('summary unknown zone', $$SELECT * FROM kt_governance_summary(tz => 'Mars/Olympus_Mons')$$),
 ('summary zone injection', $$SELECT * FROM kt_governance_summary(tz => $q$UTC'); DROP TABLE ai_decision_events; --$q$)$$),
 ('summary start at infinity', $$SELECT * FROM kt_governance_summary(start_time => 'infinity', end_time => 'infinity')$$),
 ('summary window reversed', $$SELECT * FROM kt_governance_summary(start_time => '2026-02-10', end_time => '2026-02-01')$$),
 ('anomalies dimension injection', $$SELECT * FROM kt_anomalies(dimension => 'gateway_id; DROP TABLE ai_decision_events')$$),
 ('anomalies dimension quoted identifier', $$SELECT * FROM kt_anomalies(dimension => '"user_id"')$$),
 ('anomalies NaN sigma', $$SELECT * FROM kt_anomalies(sigma => 'NaN')$$),
 ('anomalies negative min_requests', $$SELECT * FROM kt_anomalies(min_requests => -5)$$),
 ('spend with an unknown decision', $$SELECT * FROM kt_spend_by_team_model(decisions => '{"allowed; DROP TABLE x"}')$$),
 ('spend with the ingest spelling', $$SELECT * FROM kt_spend_by_team_model(decisions => '{allow}')$$),
 ('spend with a NULL decision', $$SELECT * FROM kt_spend_by_team_model(decisions => '{allowed,NULL}')$$),
 ('spend start at -infinity', $$SELECT * FROM kt_spend_by_team_model(start_time => '-infinity')$$),
 ('policy start at -infinity', $$SELECT * FROM kt_policy_effectiveness(start_time => '-infinity')$$),
 ('policy by result start at -infinity', $$SELECT * FROM kt_policy_effectiveness_by_result(start_time => '-infinity')$$),
 ('anomalies start at -infinity', $$SELECT * FROM kt_anomalies(start_time => '-infinity')$$),
 ('summary start at -infinity', $$SELECT * FROM kt_governance_summary(start_time => '-infinity')$$),
 ('summary end at -infinity', $$SELECT * FROM kt_governance_summary(end_time => '-infinity')$$),
 ('summary end at infinity', $$SELECT count(*) FROM kt_governance_summary(start_time => '2026-02-01', end_time => 'infinity')$$),
 ('spend end at infinity', $$SELECT count(*) FROM kt_spend_by_team_model(start_time => '2026-02-01', end_time => 'infinity')$$),
 ('policy end at infinity', $$SELECT count(*) FROM kt_policy_effectiveness(start_time => '2026-02-01', end_time => 'infinity')$$),
 ('anomalies end at infinity', $$SELECT count(*) FROM kt_anomalies(start_time => '2026-02-18', end_time => 'infinity')$$),
 ('hold without criteria', $$SELECT kt_add_legal_hold(NULL, NULL, NULL, NULL, NULL, 'no criteria')$$),
 ('hold with reversed window', $$SELECT kt_add_legal_hold(team_id => 't', start_time => '2026-02-01', end_time => '2026-01-01', reason => 'r')$$),
 ('hold without a reason', $$SELECT kt_add_legal_hold(team_id => 't', reason => NULL)$$),
 ('release unknown hold', $$SELECT kt_release_legal_hold(-1)$$),
 ('release NULL hold', $$SELECT kt_release_legal_hold(NULL)$$),
 ('retention zero hours', $$SELECT * FROM kt_apply_retention(0)$$),
 ('retention negative hours', $$SELECT * FROM kt_apply_retention(-24)$$),
 ('retention NULL hours', $$SELECT * FROM kt_apply_retention(NULL)$$),
 ('retention absurd hours', $$SELECT * FROM kt_apply_retention(2147483647)$$),
 ('retention max_partitions 0', $$SELECT * FROM kt_apply_retention(24, max_partitions => 0)$$),
 ('retention hours as text', $$SELECT * FROM kt_apply_retention('a week')$$),
 ('erase NULL subject', $$SELECT * FROM kt_erase_subject(NULL)$$),
 ('ingest text that is not JSON', $$SELECT * FROM kt_ingest('not json')$$),
 ('ingest a JSON scalar', $$SELECT * FROM kt_ingest('42')$$),
 ('ingest NUL in an id', $$SELECT * FROM kt_ingest('[{"id": "a\u0000b", "timestamp": "2026-02-01T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}]')$$),
 ('ingest infinite timestamp', $$SELECT * FROM kt_ingest('[{"id": "inf", "timestamp": "infinity", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}]')$$),
 ('ingest tokens beyond int4', $$SELECT * FROM kt_ingest('[{"id": "big", "timestamp": "2026-02-01T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "input_tokens": 1e20}]')$$),
 ('ingest NaN cost', $$SELECT * FROM kt_ingest('[{"id": "nan", "timestamp": "2026-02-01T00:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "cost_usd": "NaN"}]')$$),
 ('ingest unknown mode', $$SELECT * FROM kt_ingest('[]', mode => 'lenient; DROP TABLE x')$$),
 ('ingest NULL document', $$SELECT * FROM kt_ingest(NULL)$$),
 ('sample with negative count', $$SELECT kt_generate_sample_events(-1)$$),
 ('sample with zero days', $$SELECT kt_generate_sample_events(10, 0)$$),
 ('sample with too many events', $$SELECT kt_generate_sample_events(9223372036854775807, 1)$$),
 ('sample spanning past 1970', $$SELECT kt_generate_sample_events(10, 100000000)$$),
 ('sketch of an infinite latency', $$SELECT kt_governance_internal.kt_latency_sketch(ARRAY['Infinity'::float8, -5])$$),
 ('latency summary of a negative latency', $$SELECT * FROM kt_latency_summary(ARRAY[-2147483648])$$),
 ('sketch build with mismatched arrays', $$SELECT kt_governance_internal.kt_sketch_build(ARRAY[1, 2], ARRAY[1::bigint])$$),
 ('sketch build with a negative count', $$SELECT kt_governance_internal.kt_sketch_build(ARRAY[1], ARRAY[-1::bigint])$$),
 ('ingest a number beyond double precision', $$SELECT * FROM kt_ingest('[{"id": "a", "timestamp": "2026-11-30T10:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "cost_usd": 1e400}]')$$),
 ('sketch that is not a sketch', $$SELECT kt_sketch_quantile('\xdeadbeef'::bytea, 0.5)$$),
 ('sketch quantile above 1', $$SELECT kt_sketch_quantile(kt_latency_sketch(ARRAY[1, 2, 3]), 2.0)$$),
 ('export path traversal', $$SELECT * FROM kt_export_events('file:///tmp/../etc/kt', '2026-01-01', '2026-02-01')$$),
 ('export relative path', $$SELECT * FROM kt_export_events('file://etc/kt', '2026-01-01', '2026-02-01')$$),
 ('export URL scheme injection', $$SELECT * FROM kt_export_events($q$s3://b'; DROP TABLE x; --/p$q$, '2026-01-01', '2026-02-01')$$),
 ('export from -infinity', $$SELECT * FROM kt_export_events('s3://bucket/p', '-infinity', '2026-02-01')$$),
 ('export NULL end', $$SELECT * FROM kt_export_events('s3://bucket/p', '2026-01-01', NULL)$$),
 ('export huge row groups', $$SELECT * FROM kt_export_events('s3://bucket/p', '2026-01-01', '2026-02-01', row_group_size => 2147483647)$$),
 ('export unknown layout', $$SELECT * FROM kt_export_events('s3://bucket/p', '2026-01-01', '2026-02-01', layout => 'hour')$$),
 ('export internal run id with a slash', $$SELECT * FROM kt_governance_internal.kt_export_range('s3://bucket/p', '2026-01-01', '2026-02-01', run_id => '../../x')$$),
 ('export internal manifest name traversal', $$SELECT * FROM kt_governance_internal.kt_export_range('s3://bucket/p', '2026-01-01', '2026-02-01', manifest_name => '../evil')$$),
 ('schedule name injection', $$SELECT kt_add_export_schedule('x; DROP TABLE kt_jobs', 's3://bucket/p')$$),
 ('schedule with an http destination', $$SELECT kt_add_export_schedule('web', 'http://evil.example/p')$$),
 ('schedule every second', $$SELECT kt_add_export_schedule('fast', 's3://bucket/p', every => '1 second')$$),
 ('schedule from infinity', $$SELECT kt_add_export_schedule('inf', 's3://bucket/p', start_from => 'infinity')$$),
 ('remove unknown schedule', $$SELECT kt_remove_export_schedule('nope')$$),
 ('setting premake negative', $$SET kt_governance.premake = -1$$),
 ('setting unknown partition interval', $$SET kt_governance.partition_interval = 'hourly'$$),
 ('setting the credentials file with SET', $$SET kt_governance.s3_credentials_file = '/tmp/x'$$);
SELECT case_name, pg_temp.try(stmt) AS outcome FROM hostile ORDER BY case_name;
-- the errors that name what works say it in their HINT
CREATE FUNCTION pg_temp.hint_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE h text;
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ' hint: ' || h;
END $$;
SELECT pg_temp.hint_of($$SELECT * FROM kt_governance_summary(tz => 'Asia/Kolkatta')$$) AS unknown_zone,
       pg_temp.hint_of($$SELECT * FROM kt_spend_by_team_model(decisions => '{block}')$$) AS ingest_spelling,
       pg_temp.hint_of($$SELECT * FROM kt_anomalies(start_time => 'infinity')$$) AS infinite_start;
SELECT count(*) AS hostile_cases,
       count(*) FILTER (WHERE pg_temp.try(stmt) LIKE 'XX%') AS internal_errors
FROM hostile;
SELECT pg_temp.state() = :'before' AS state_unchanged, pg_temp.state() AS state_after;

-- text that looks like an attack but is valid input is stored and matched as data
SELECT inserted FROM kt_ingest($j$[{"id": "evt-'); DROP TABLE ai_decision_events; --", "timestamp": "2026-02-01T00:00:00Z",
    "decision": "allowed", "model": "m\u200b", "provider": "p", "gateway_id": "g-🚀", "user_id": "Ω-user-\u202e"}]$j$);
SELECT id, model = E'm\u200b' AS zero_width_kept, gateway_id, user_id = E'\u03a9-user-\u202e' AS rtl_kept
FROM ai_decision_events WHERE id LIKE 'evt-''%';
SELECT events_removed FROM kt_erase_subject($s$' OR '1'='1$s$);
SELECT events_removed FROM kt_erase_subject(E'\u03a9-user-\u202e');
SELECT pg_temp.counts() AS after_erasures;
-- an event exactly at a partition boundary belongs to the later partition
INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id)
VALUES ('edge', '2026-02-01 00:00:00+00', 'allowed', 'm', 'p', 'g');
SELECT tableoid::regclass AS boundary_partition FROM ai_decision_events WHERE id = 'edge';

-- Schema squatting: an admin who owns a schema puts look-alikes of built-ins (now, lower, the
-- text = operator) and of the extension's own names (kt_setting, kt_jobs, also in pg_temp)
-- ahead of pg_catalog on their search_path, then calls the extension's SECURITY DEFINER
-- functions. They pin search_path, so no look-alike ever runs, least of all as the owner.
CREATE TABLE public.squat_calls (who text, what text);
GRANT INSERT ON public.squat_calls TO PUBLIC;
CREATE ROLE kt_squatter NOLOGIN IN ROLE kt_governance_admin;
CREATE SCHEMA squat AUTHORIZATION kt_squatter;
SET ROLE kt_squatter;
CREATE FUNCTION squat.now() RETURNS timestamptz LANGUAGE plpgsql AS
    $$BEGIN INSERT INTO public.squat_calls VALUES (current_user, 'now'); RETURN pg_catalog.now(); END$$;
CREATE FUNCTION squat.lower(text) RETURNS text LANGUAGE plpgsql AS
    $$BEGIN INSERT INTO public.squat_calls VALUES (current_user, 'lower'); RETURN pg_catalog.lower($1); END$$;
CREATE FUNCTION squat.kt_setting(text) RETURNS text LANGUAGE plpgsql AS
    $$BEGIN INSERT INTO public.squat_calls VALUES (current_user, 'kt_setting'); RETURN '1'; END$$;
CREATE FUNCTION squat.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS
    $$BEGIN INSERT INTO public.squat_calls VALUES (current_user, '='); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
CREATE OPERATOR squat.= (LEFTARG = text, RIGHTARG = text, FUNCTION = squat.text_eq);
CREATE TABLE squat.kt_jobs (job_name text, enabled boolean);
CREATE TEMP TABLE kt_legal_holds (hold_id bigint);
SET search_path = squat, pg_catalog, public;
SELECT status FROM public.kt_run_job('refresh_metrics');
SELECT status FROM public.kt_run_job('maintenance');
SELECT public.kt_release_legal_hold(public.kt_add_legal_hold(team_id => 'squat', reason => 'squat test')) AS released;
SELECT count(*) >= 0 AS report_ran FROM public.kt_governance_summary();
RESET search_path;
DROP TABLE pg_temp.kt_legal_holds;
RESET ROLE;
SELECT count(*) AS look_alike_calls,
       count(*) FILTER (WHERE r.rolsuper) AS calls_with_superuser_rights
FROM public.squat_calls c LEFT JOIN pg_roles r ON r.rolname = c.who;
-- every SECURITY DEFINER function of the extension pins its search_path. Unpinned, all with
-- the caller's rights: the procedures that COMMIT (a SET clause forbids COMMIT; they qualify
-- names) and small SQL helpers that must stay inlinable (a SET clause prevents inlining; called
-- from pinned functions they run under the caller's pinned path)
SELECT p.oid::regprocedure AS unpinned, p.prosecdef AS security_definer
FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'kt_governance'
JOIN pg_language l ON l.oid = p.prolang
WHERE d.deptype = 'e' AND l.lanname <> 'c' AND p.prokind <> 'a'
  AND NOT coalesce(p.proconfig::text LIKE '%search_path=%', false)
ORDER BY 1;
DROP SCHEMA squat CASCADE;
DROP TABLE public.squat_calls;
DROP ROLE kt_squatter;

-- What each role may do: reader < writer < admin (and superuser-only secrets and server files)
CREATE TEMP TABLE role_cases (case_name text, stmt text);
INSERT INTO role_cases VALUES
 ('read a report', $$SELECT count(*) FROM kt_governance_summary()$$),
 ('read the events', $$SELECT count(*) FROM ai_decision_events$$),
 ('insert an event', $$INSERT INTO ai_decision_events (id, "timestamp", decision, model, provider, gateway_id) VALUES ('role-' || current_user, '2026-02-02', 'allowed', 'm', 'p', 'g')$$),
 ('ingest JSON', $$SELECT kt_ingest('[]')$$),
 ('delete an event directly', $$DELETE FROM ai_decision_events WHERE id = 'edge'$$),
 ('create partitions', $$SELECT kt_create_partitions('2026-06-01', '2026-07-01')$$),
 ('drop a partition directly', $$DROP TABLE kt_governance_partitions.events_2026_01$$),
 ('apply retention', $$SELECT kt_apply_retention(24 * 365 * 20)$$),
 ('add and release a hold', $$SELECT kt_release_legal_hold(kt_add_legal_hold(team_id => 'x', reason => 'role test'))$$),
 ('erase a subject', $$SELECT kt_erase_subject('nobody')$$),
 ('run a job', $$SELECT kt_run_job('refresh_metrics')$$),
 ('export to S3', $$SELECT kt_export_events('s3://X/invalid-bucket-name', '2026-01-01', '2026-01-02')$$),
 ('export to server files', $$SELECT kt_export_events('file:///tmp/kt_role_test', '2026-01-01', '2026-01-02')$$),
 ('read the S3 credentials file setting', $$SELECT kt_governance_internal.kt_setting('s3_credentials_file')$$);
CREATE FUNCTION pg_temp.as_role(r text, stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE outcome text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    outcome := pg_temp.try(stmt);
    RESET ROLE;
    -- privilege errors show as "denied"; other errors mean the role got past the check
    RETURN CASE WHEN outcome = 'ok' THEN 'ok' WHEN outcome LIKE '42501%' THEN 'denied' ELSE 'allowed (' || left(outcome, 5) || ')' END;
END $$;
BEGIN;
SELECT case_name,
       pg_temp.as_role('kt_governance_reader', stmt) AS reader,
       pg_temp.as_role('kt_governance_writer', stmt) AS writer,
       pg_temp.as_role('kt_governance_admin', stmt) AS admin
FROM role_cases ORDER BY case_name;
ROLLBACK;
