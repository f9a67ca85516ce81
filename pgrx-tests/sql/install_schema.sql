-- Installed elsewhere than public: CREATE EXTENSION kt_governance SCHEMA governance, with that
-- schema on the search_path, is the same store. This is also the installation docs/security.md
-- recommends where the database owner is not trusted (a superuser-owned schema).
CREATE SCHEMA governance;
CREATE EXTENSION kt_governance SCHEMA governance;
SET search_path = governance, public;
\ir _helpers.psql
SELECT n.nspname AS installed_in FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'kt_governance';
SELECT count(*) AS extension_objects_in_public FROM pg_depend d
JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'kt_governance'
JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public';

SELECT count(*) > 0 AS partitions_made FROM kt_create_partitions(now() - interval '200 days', now() + interval '1 day');
SELECT kt_generate_sample_events(3000, 4, 7, now()) IS NOT NULL AS loaded;
SELECT * FROM kt_refresh_metrics() \gset refresh_
-- the document's daily summary, over the documented names, equals the report
SELECT pg_temp.diff(
    $$SELECT date_trunc('day', timestamp) AS day, decision, count(*)::bigint, sum(cost_usd)
      FROM ai_decision_events WHERE timestamp >= now() - interval '30 days' GROUP BY 1, 2$$,
    $$SELECT day, decision, event_count, total_cost FROM kt_governance_summary()$$) AS summary_differs_from_document_query;
SELECT (SELECT sum(total_requests) FROM governance_metrics_hourly) = (SELECT count(*) FROM ai_decision_events) AS metrics_view_exact;

-- the roles get what they need in this schema
CREATE ROLE kt_is_reader LOGIN IN ROLE kt_governance_reader;
CREATE ROLE kt_is_writer LOGIN IN ROLE kt_governance_writer;
CREATE ROLE kt_is_admin LOGIN IN ROLE kt_governance_admin;
SET ROLE kt_is_reader;
SELECT count(*) > 0 AS reader_reads_report FROM kt_governance_summary();
SELECT count(*) > 0 AS reader_reads_events FROM ai_decision_events;
SELECT count(*) > 0 AS reader_reads_view FROM governance_metrics_hourly;
RESET ROLE;
SET ROLE kt_is_writer;
SELECT inserted FROM kt_ingest(format('[{"id": "elsewhere-1", "timestamp": "%s", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g"}]',
                                      to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))::jsonb);
RESET ROLE;
SET ROLE kt_is_admin;
SELECT status FROM kt_run_job('maintenance');
SELECT status FROM kt_run_job('refresh_metrics');
SELECT kt_add_legal_hold(team_id => 'elsewhere', reason => 'install test') > 0 AS hold_placed;
SELECT cutoff IS NOT NULL AS retention_ran FROM kt_apply_retention(24 * 3);
RESET ROLE;
-- the trust boundary holds here too: the schema keeps its name
SELECT pg_temp.try('ALTER SCHEMA governance RENAME TO governance_moved') AS rename_refused;
SET client_min_messages = warning;
DROP OWNED BY kt_is_reader, kt_is_writer, kt_is_admin;
DROP ROLE kt_is_reader, kt_is_writer, kt_is_admin;
