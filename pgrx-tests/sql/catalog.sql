-- Catalog audit of the trust boundary (issue 20): what the catalogs say about every object
-- the extension installs, so a new function or table cannot quietly cross it.
CREATE EXTENSION kt_governance;
\ir _helpers.psql
CREATE TEMP VIEW ext_functions AS
SELECT p.oid, p.oid::regprocedure::text AS signature, n.nspname AS schema_name, p.prosecdef, p.proconfig, p.prosrc, p.proacl
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'kt_governance';
CREATE TEMP VIEW pinned_paths AS
SELECT f.signature, f.prosecdef, s.ord, trim(s.entry) AS entry, count(*) OVER (PARTITION BY f.oid) AS entries
FROM ext_functions f,
     LATERAL (SELECT substr(c, length('search_path=') + 1) AS path FROM unnest(f.proconfig) c WHERE c LIKE 'search_path=%') p,
     LATERAL unnest(string_to_array(p.path, ',')) WITH ORDINALITY s(entry, ord);

-- every SECURITY DEFINER function pins search_path
SELECT signature AS definer_without_pinned_path FROM ext_functions
WHERE prosecdef AND NOT coalesce(array_to_string(proconfig, ' ') LIKE '%search_path=%', false);
-- no pinned search_path names a schema other than pg_catalog, the internal schema and pg_temp
-- (the user's schema, owned by the database owner, least of all), and pg_temp comes last
SELECT signature, entry AS schema_nobody_should_trust FROM pinned_paths
WHERE entry NOT IN ('pg_catalog', 'kt_governance_internal', 'pg_temp') ORDER BY 1;
SELECT signature AS pg_temp_not_last FROM pinned_paths WHERE entry = 'pg_temp' AND ord <> entries ORDER BY 1;
-- and the schemas they do name belong to a superuser
SELECT nspname, r.rolsuper AS owned_by_superuser FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
WHERE nspname IN ('kt_governance_internal', 'kt_governance_partitions', 'kt_governance_reclaim') ORDER BY 1;
-- nobody below the extension owner may create in them
SELECT nspname, r.rolname FROM pg_namespace n CROSS JOIN pg_roles r
WHERE nspname IN ('kt_governance_internal', 'kt_governance_partitions', 'kt_governance_reclaim')
  AND r.rolname IN ('kt_governance_reader', 'kt_governance_writer', 'kt_governance_admin', 'pg_database_owner')
  AND has_schema_privilege(r.oid, n.oid, 'CREATE');
-- no SECURITY DEFINER function is executable by PUBLIC
SELECT signature AS definer_executable_by_public FROM ext_functions f
WHERE prosecdef AND (proacl IS NULL OR EXISTS (SELECT FROM aclexplode(f.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'));
-- and none names a pg_temp object: their temp tables come from kt_private_temp_table()
SELECT signature AS definer_naming_pg_temp FROM ext_functions WHERE prosecdef AND prosrc ~* 'pg_temp\.';
-- the row trigger functions, which write bookkeeping as the extension owner, cannot be attached
-- by anyone else
SELECT signature, has_function_privilege('kt_governance_admin', oid, 'EXECUTE') AS admin_may_attach
FROM ext_functions WHERE signature LIKE '%kt_mark_dirty_hours%' OR signature LIKE '%kt_count_evaluations%'
   OR signature LIKE '%kt_flush_dirty_hours%' ORDER BY 1;
-- bookkeeping is written by extension code only: no role of the extension may change it
SELECT c.relname, r.rolname, p.privilege FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'kt_governance_internal'
CROSS JOIN pg_roles r CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p(privilege)
WHERE c.relkind IN ('r', 'p') AND r.rolname IN ('kt_governance_reader', 'kt_governance_writer', 'kt_governance_admin', 'pg_database_owner')
  AND has_table_privilege(r.oid, c.oid, p.privilege)
ORDER BY 1, 2, 3;
-- what each role may change in the user's schema: a writer inserts into the documented tables,
-- an admin also manages export schedules and switches jobs on and off; nothing else
SELECT c.relname, r.rolname, p.privilege FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
CROSS JOIN pg_roles r CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p(privilege)
WHERE c.relkind IN ('r', 'p') AND r.rolname IN ('kt_governance_reader', 'kt_governance_writer', 'kt_governance_admin', 'pg_database_owner')
  AND (has_table_privilege(r.oid, c.oid, p.privilege)
       OR (p.privilege IN ('INSERT', 'UPDATE') AND has_any_column_privilege(r.oid, c.oid, p.privilege)))
ORDER BY 1, 2, 3;

-- The user's schema holds the public surface only: what \dt, \dv and \df list there.
SELECT c.relname AS user_schema_tables FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1;
SELECT c.relname AS user_schema_views FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'v' ORDER BY 1;
SELECT count(*) AS user_schema_functions, string_agg(p.proname, ', ' ORDER BY p.proname) AS names
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public';
SELECT count(*) AS internal_functions FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'kt_governance_internal';
-- the partitions are out of the table list: maintenance makes them in their own schema
SELECT count(*) > 0 AS partitions_made FROM kt_create_partitions(now() - interval '200 days', now() + interval '2 days');
SELECT count(*) AS partitions_in_user_schema FROM kt_partitions WHERE schema_name <> 'kt_governance_partitions';

-- every function, table, view and column the extension puts in the user's schema is documented
SELECT signature AS function_without_comment FROM ext_functions f
WHERE schema_name = 'public' AND obj_description(f.oid, 'pg_proc') IS NULL;
SELECT c.relname AS relation_without_comment FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('public', 'kt_governance_internal') AND c.relkind IN ('r', 'p', 'v')
  AND obj_description(c.oid, 'pg_class') IS NULL ORDER BY 1;
