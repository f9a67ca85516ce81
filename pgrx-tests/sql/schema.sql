-- Plain CREATE EXTENSION into the default schema creates the documented schema.
CREATE EXTENSION kt_governance;
\ir _helpers.psql

-- every documented column, with its documented type, nullability and default
SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, is_nullable,
       column_default
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name IN ('ai_decision_events', 'policy_evaluations')
ORDER BY table_name, ordinal_position;

-- partitioning: both by range on the event time
SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_class c
WHERE c.relname IN ('ai_decision_events', 'policy_evaluations') ORDER BY 1;

-- checks on the parents (every partition inherits them). PostgreSQL 18 also records every
-- NOT NULL as a pg_constraint row (contype 'n'); those are left out here and must be exactly
-- the columns pg_attribute marks NOT NULL (true on earlier majors, which have no such rows)
SELECT conrelid::regclass AS table_name, conname, pg_get_constraintdef(oid)
FROM pg_constraint
WHERE conrelid IN ('ai_decision_events'::regclass, 'policy_evaluations'::regclass)
  AND contype <> 'n'
ORDER BY 1, 2;
SELECT CASE WHEN current_setting('server_version_num')::int < 180000
            THEN NOT EXISTS (SELECT FROM pg_constraint WHERE contype = 'n')
            ELSE (SELECT array_agg(conrelid::regclass || '.' || a.attname ORDER BY conrelid::regclass::text, a.attname)
                  FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                  WHERE c.contype = 'n' AND c.conrelid IN ('ai_decision_events'::regclass, 'policy_evaluations'::regclass))
               = (SELECT array_agg(attrelid::regclass || '.' || attname ORDER BY attrelid::regclass::text, attname) FROM pg_attribute
                  WHERE attrelid IN ('ai_decision_events'::regclass, 'policy_evaluations'::regclass)
                    AND attnum > 0 AND attnotnull AND NOT attisdropped)
       END AS not_null_constraints_are_the_not_null_columns;

-- keys, foreign key and the documented indexes, per partition (here the default pair; every
-- dated pair gets the same from kt_add_partition_keys). idx_evaluations_event is served by
-- the key's event_id prefix.
SELECT conrelid::regclass AS table_name, conname, pg_get_constraintdef(oid)
FROM pg_constraint
WHERE conrelid IN ('kt_governance_partitions.events_default'::regclass, 'kt_governance_partitions.policy_evaluations_default'::regclass)
  AND contype IN ('p', 'f')
ORDER BY 1, 2;
SELECT indexrelid::regclass AS index_name, pg_get_indexdef(indexrelid)
FROM pg_index
WHERE indrelid IN ('kt_governance_partitions.events_default'::regclass, 'kt_governance_partitions.policy_evaluations_default'::regclass)
ORDER BY 1;

-- right after install: the default partitions, and the current month, 4 ahead and 3 behind in
-- each table
SELECT parent_table, is_default, count(*) AS partitions,
       min(range_start) = date_trunc('month', now(), 'UTC') - interval '3 months' AS from_three_months_back,
       max(range_end) = date_trunc('month', now(), 'UTC') + interval '5 months' AS to_premake
FROM kt_partitions GROUP BY 1, 2 ORDER BY 1, 2;

-- every relation, column, function and view of the extension has a comment
SELECT 'relation without comment' AS problem, c.oid::regclass::text AS object
FROM pg_depend d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'kt_governance')
  AND c.relkind IN ('r', 'p', 'v', 'm') AND obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT 'column without comment', c.oid::regclass::text || '.' || a.attname
FROM pg_depend d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'kt_governance')
  AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
  AND col_description(c.oid, a.attnum) IS NULL
UNION ALL
SELECT 'function without comment', p.oid::regprocedure::text
FROM pg_depend d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'kt_governance')
  AND obj_description(p.oid, 'pg_proc') IS NULL
ORDER BY 1, 2;

-- every setting is under kt_governance.* with a description
SELECT name, setting, unit, context, short_desc <> '' AS described
FROM pg_settings WHERE name LIKE 'kt_governance.%' AND kt_setting('premake') IS NOT NULL
ORDER BY name;

-- roles exist, NOLOGIN, nested reader < writer < admin
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'kt_governance_%' ORDER BY 1;
SELECT pg_has_role('kt_governance_admin', 'kt_governance_reader', 'MEMBER') AS admin_is_reader,
       pg_has_role('kt_governance_writer', 'kt_governance_reader', 'MEMBER') AS writer_is_reader,
       pg_has_role('kt_governance_reader', 'kt_governance_writer', 'MEMBER') AS reader_is_writer;

-- an unknown setting name is a clear error
SELECT pg_temp.try($$SELECT kt_setting('no_such_setting')$$);
