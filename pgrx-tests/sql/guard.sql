-- DROP EXTENSION guard: refused while events are stored (2BP01), nothing dropped; allowed
-- when empty or with kt_governance.allow_drop_with_data; other drops pass through.
CREATE EXTENSION kt_governance;
\ir _helpers.psql
-- an empty store drops without fuss (CASCADE: the helpers' temp views use the tables)
SELECT pg_temp.try('DROP EXTENSION kt_governance CASCADE') AS drop_empty;
SELECT count(*) AS extension_left FROM pg_extension WHERE extname = 'kt_governance';
CREATE EXTENSION kt_governance;
SELECT * FROM kt_generate_sample_events(500, 3, 1, now());
SELECT kt_add_legal_hold(team_id => 'legal', reason => 'matter 1') AS hold \gset
SELECT pg_temp.try('DROP EXTENSION kt_governance') AS drop_with_data;
SELECT pg_temp.try('DROP EXTENSION IF EXISTS kt_governance CASCADE') AS drop_cascade;
SELECT pg_temp.try('DROP EXTENSION plpgsql, kt_governance') AS drop_in_a_list;
SELECT pg_temp.try('DROP SCHEMA public CASCADE') AS drop_schema;
SELECT pg_temp.counts() AS still_stored;
-- other drops are not its business
CREATE SCHEMA scratch;
SELECT pg_temp.try('DROP SCHEMA scratch') AS other_schema;
SELECT pg_temp.try('DROP EXTENSION IF EXISTS no_such_extension') AS other_extension;
-- only a superuser can allow it, per session
CREATE ROLE guard_admin LOGIN IN ROLE kt_governance_admin;
SET ROLE guard_admin;
SELECT pg_temp.try('SET kt_governance.allow_drop_with_data = on') AS admin_may_not_allow;
RESET ROLE;
SET kt_governance.allow_drop_with_data = on;
SELECT pg_temp.try('DROP EXTENSION kt_governance CASCADE') AS drop_allowed;
SELECT count(*) AS extension_left, to_regclass('ai_decision_events') AS events_table FROM pg_extension WHERE extname = 'kt_governance';
