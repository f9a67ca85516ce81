-- Every member of the kt_governance extension with its full definition, one row per fact, for
-- comparing an upgraded install with a fresh one (pg_dump --schema-only cannot: it prints only
-- CREATE EXTENSION for members). Run with psql -At; the output is sorted.
WITH members AS (
    SELECT d.classid, d.objid
    FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass
    WHERE e.extname = 'kt_governance' AND d.deptype = 'e'
), rels AS (
    SELECT c.oid, c.relname, c.relkind FROM members m JOIN pg_class c ON c.oid = m.objid
    WHERE m.classid = 'pg_class'::regclass
), funcs AS (
    SELECT p.oid FROM members m JOIN pg_proc p ON p.oid = m.objid WHERE m.classid = 'pg_proc'::regclass
)
SELECT fact FROM (
    -- functions and procedures: definition (body, language, volatility, SET clauses, security),
    -- owner-independent ACL, comment
    SELECT 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid) AS fact
    FROM funcs f JOIN pg_proc p ON p.oid = f.oid WHERE p.prokind <> 'a'
    UNION ALL
    SELECT 'aggregate ' || p.oid::regprocedure || ' ' || a.aggtransfn::text || ' ' || a.aggfinalfn::text
           || ' ' || a.aggtranstype::regtype::text
    FROM funcs f JOIN pg_proc p ON p.oid = f.oid JOIN pg_aggregate a ON a.aggfnoid = p.oid
    UNION ALL
    SELECT 'function acl ' || p.oid::regprocedure || ' ' || coalesce(p.proacl::text, 'default')
    FROM funcs f JOIN pg_proc p ON p.oid = f.oid
    UNION ALL
    SELECT 'function comment ' || p.oid::regprocedure || ' ' || coalesce(obj_description(p.oid, 'pg_proc'), '<none>')
    FROM funcs f JOIN pg_proc p ON p.oid = f.oid
    UNION ALL
    -- relations: kind, ACL, comment
    SELECT 'relation ' || r.relname || ' kind=' || r.relkind::text || ' acl=' || coalesce(c.relacl::text, 'default')
           || ' comment=' || coalesce(obj_description(r.oid, 'pg_class'), '<none>')
    FROM rels r JOIN pg_class c ON c.oid = r.oid
    UNION ALL
    -- columns: type, nullability, default, identity, comment, column ACL
    SELECT 'column ' || r.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
           || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
           || ' acl=' || coalesce(a.attacl::text, 'default')
           || ' comment=' || coalesce(col_description(r.oid, a.attnum), '<none>')
    FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT 'view ' || r.relname || E'\n' || pg_get_viewdef(r.oid) FROM rels r WHERE r.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'constraint ' || r.relname || '.' || co.conname || ' ' || pg_get_constraintdef(co.oid)
    FROM rels r JOIN pg_constraint co ON co.conrelid = r.oid
    UNION ALL
    SELECT 'index ' || r.relname || ' ' || regexp_replace(pg_get_indexdef(i.indexrelid), ' ON [^ ]+ ', ' ON ')
    FROM rels r JOIN pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT 'trigger ' || r.relname || ' ' || pg_get_triggerdef(t.oid)
    FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'partitioning ' || r.relname || ' ' || pg_get_partkeydef(r.oid) FROM rels r WHERE r.relkind = 'p'
    UNION ALL
    SELECT 'partition ' || r.relname || ' of ' || i.inhparent::regclass || ' ' || pg_get_expr(c.relpartbound, c.oid)
    FROM rels r JOIN pg_class c ON c.oid = r.oid JOIN pg_inherits i ON i.inhrelid = r.oid
    UNION ALL
    SELECT 'sequence ' || r.relname || ' ' || s.seqtypid::regtype || ' ' || s.seqincrement
    FROM rels r JOIN pg_sequence s ON s.seqrelid = r.oid
    UNION ALL
    SELECT 'type ' || t.oid::regtype FROM members m JOIN pg_type t ON t.oid = m.objid WHERE m.classid = 'pg_type'::regclass
    UNION ALL
    SELECT 'config dump ' || c.oid::regclass || ' ' || coalesce(x.cond, '')
    FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(oid, cond) JOIN pg_class c ON c.oid = x.oid
    WHERE e.extname = 'kt_governance'
    UNION ALL
    SELECT 'job ' || job_name || ' ' || interval_setting || ' ' || description FROM kt_jobs
    UNION ALL
    SELECT 'event trigger ' || t.evtname || ' ' || t.evtevent || ' ' || t.evtenabled::text || ' '
           || array_to_string(t.evttags, ',') || ' ' || t.evtfoid::regprocedure || ' '
           || coalesce(obj_description(t.oid, 'pg_event_trigger'), '')
    FROM members m JOIN pg_event_trigger t ON t.oid = m.objid WHERE m.classid = 'pg_event_trigger'::regclass
) facts
ORDER BY fact;
