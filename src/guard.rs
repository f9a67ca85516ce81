//! Refuses DROP EXTENSION kt_governance while events are stored (the SQL side is the event
//! trigger in sql/guard.sql).
//!
//! Why: the events and evaluations tables belong to the extension, and their dated partitions
//! depend on them automatically, so a plain DROP EXTENSION (no CASCADE needed) drops every event,
//! legally held ones included. An event trigger on ddl_command_start sees the statement before
//! anything is dropped; written in Rust, it reads the parse tree and so knows exactly which
//! extension or schema is being dropped, instead of guessing from the query text.

use pgrx::prelude::*;
use std::ffi::CStr;

/// Whether a DROP statement names the extension (DROP EXTENSION) or its schema (DROP SCHEMA).
unsafe fn drops_us(stmt: *mut pg_sys::DropStmt, schema: &str) -> bool {
    let wanted = match (*stmt).removeType {
        pg_sys::ObjectType::OBJECT_EXTENSION => "kt_governance",
        pg_sys::ObjectType::OBJECT_SCHEMA if (*stmt).behavior == pg_sys::DropBehavior::DROP_CASCADE => schema,
        _ => return false,
    };
    let objects = pgrx::PgList::<pg_sys::Node>::from_pg((*stmt).objects);
    let named = objects.iter_ptr().any(|node| {
        !node.is_null()
            && (*node).type_ == pg_sys::NodeTag::T_String
            && CStr::from_ptr((*(node as *mut pg_sys::String)).sval).to_bytes() == wanted.as_bytes()
    });
    named
}

fn refuse_if_data_stored(schema: &str) {
    // the override is a superuser's: below superuser, stored evidence always refuses the drop
    if crate::settings::ALLOW_DROP_WITH_DATA.get() && unsafe { pg_sys::superuser() } {
        return;
    }
    let q = spi::quote_identifier(schema);
    // counted as the extension owner: the dropping role (a database owner dropping its schema)
    // may not be allowed to read what it would drop
    let stored = crate::owner::as_extension_owner(|| {
        Spi::get_three::<i64, i64, i64>(&format!(
            "SELECT (SELECT pg_catalog.count(*) FROM (SELECT FROM {q}.ai_decision_events LIMIT 1000000) e) \
                    OPERATOR(pg_catalog.+) \
                    (SELECT pg_catalog.count(*) FROM (SELECT FROM {q}.ai_decision_events_archive LIMIT 1000000) a), \
                    (SELECT pg_catalog.count(*) FROM {q}.kt_legal_holds), \
                    (SELECT pg_catalog.count(*) FROM {q}.kt_removal_log)"
        ))
    });
    let Ok((Some(events), Some(holds), Some(removals))) = stored else { return };
    if events == 0 && holds == 0 && removals == 0 {
        return;
    }
    let many = if events >= 1_000_000 { "at least " } else { "" };
    crate::errors::raise_with_hint(PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST, format!(
            "cannot drop extension kt_governance: it holds {many}{events} events (live and archived), {holds} legal holds and {removals} removal-log entries, which the drop would delete"
        ), "Dump the database or export the events first (kt_export_events); then a superuser may SET kt_governance.allow_drop_with_data = on in the dropping session.")
}

/// Event trigger function (ddl_command_start, DROP EXTENSION and DROP SCHEMA). A V1 C function
/// by hand: pgrx's #[pg_extern] has no event_trigger return type.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn kt_guard_drop(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let context = (*fcinfo).context;
    if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_EventTriggerData {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED,
            "kt_guard_drop() must be called as an event trigger"
        );
    }
    let data = context as *mut pg_sys::EventTriggerData;
    let tree = (*data).parsetree;
    if tree.is_null() {
        return pg_sys::Datum::from(0);
    }
    match (*tree).type_ {
        pg_sys::NodeTag::T_DropStmt => {
            let stmt = tree as *mut pg_sys::DropStmt;
            if let Some(schema) = crate::extension_schema() {
                if drops_us(stmt, &schema) {
                    refuse_if_data_stored(&schema);
                }
                for relid in dropped_tables(stmt) {
                    refuse_if_held(relid, "drop");
                }
            }
        }
        // DROP OWNED BY the schema's owner drops the schema, and with it the extension
        pg_sys::NodeTag::T_DropOwnedStmt => {
            if let Some(schema) = crate::extension_schema() {
                if drops_owner_of(tree as *mut pg_sys::DropOwnedStmt, &schema) {
                    refuse_if_data_stored(&schema);
                }
            }
        }
        pg_sys::NodeTag::T_CreateStmt => {
            if writes_restored_partition(tree as *mut pg_sys::CreateStmt) && crate::extension_schema().is_some() {
                yield_provisional_partitions();
            }
        }
        pg_sys::NodeTag::T_AlterTableStmt => {
            for relid in detached_partitions(tree as *mut pg_sys::AlterTableStmt) {
                if crate::extension_schema().is_some() {
                    refuse_if_held(relid, "detach");
                }
            }
        }
        _ => {}
    }
    pg_sys::Datum::from(0)
}

/// Whether a CREATE TABLE makes a table in kt_governance_partitions with its columns written
/// out, as pg_dump writes partitions. The extension's own partition DDL copies the parent with
/// LIKE, so it never matches.
unsafe fn writes_restored_partition(stmt: *mut pg_sys::CreateStmt) -> bool {
    let relation = (*stmt).relation;
    if relation.is_null() || (*relation).schemaname.is_null()
        || CStr::from_ptr((*relation).schemaname).to_bytes() != b"kt_governance_partitions"
    {
        return false;
    }
    let elements = pgrx::PgList::<pg_sys::Node>::from_pg((*stmt).tableElts);
    let copies_a_table = elements.iter_ptr().any(|node| !node.is_null() && (*node).type_ == pg_sys::NodeTag::T_TableLikeClause);
    !copies_a_table
}

/// A restore is writing its partitions: the first partitions CREATE EXTENSION made for today
/// give way while they are still empty (sql/first_partitions.sql). Only for a role that may
/// create tables there at all (a superuser): ddl_command_start runs before the permission
/// check, and nobody else may make the extension drop anything.
fn yield_provisional_partitions() {
    let may_create = Spi::get_one::<bool>(
        "SELECT pg_catalog.has_schema_privilege('kt_governance_partitions'::pg_catalog.text, 'CREATE'::pg_catalog.text)",
    );
    if may_create != Ok(Some(true)) {
        return;
    }
    crate::owner::as_extension_owner(|| {
        Spi::run(&format!("SELECT {}.kt_yield_provisional_partitions()", crate::owner::INTERNAL))
    })
    .expect("making room for restored partitions");
}

/// Whether DROP OWNED names the role that owns the extension's schema.
unsafe fn drops_owner_of(stmt: *mut pg_sys::DropOwnedStmt, schema: &str) -> bool {
    let Some(owner) = Spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
        &[schema.into()],
    )
    .ok()
    .flatten() else {
        return false;
    };
    let roles = pgrx::PgList::<pg_sys::RoleSpec>::from_pg((*stmt).roles);
    let named = roles.iter_ptr().any(|role| !role.is_null() && pg_sys::get_rolespec_oid(role, true) == owner);
    named
}

/// The existing tables a DROP TABLE names.
unsafe fn dropped_tables(stmt: *mut pg_sys::DropStmt) -> Vec<pg_sys::Oid> {
    if (*stmt).removeType != pg_sys::ObjectType::OBJECT_TABLE {
        return Vec::new();
    }
    let objects = pgrx::PgList::<pg_sys::List>::from_pg((*stmt).objects);
    objects
        .iter_ptr()
        .filter(|names| !names.is_null())
        .map(|names| relation_of(pg_sys::makeRangeVarFromNameList(names)))
        .filter(|relid| *relid != pg_sys::InvalidOid)
        .collect()
}

/// The existing partitions an ALTER TABLE ... DETACH PARTITION names.
unsafe fn detached_partitions(stmt: *mut pg_sys::AlterTableStmt) -> Vec<pg_sys::Oid> {
    let commands = pgrx::PgList::<pg_sys::AlterTableCmd>::from_pg((*stmt).cmds);
    commands
        .iter_ptr()
        .filter(|cmd| !cmd.is_null() && (**cmd).subtype == pg_sys::AlterTableType::AT_DetachPartition)
        .filter_map(|cmd| {
            let partition = (*cmd).def as *mut pg_sys::PartitionCmd;
            (!partition.is_null() && !(*partition).name.is_null()).then(|| relation_of((*partition).name))
        })
        .filter(|relid| *relid != pg_sys::InvalidOid)
        .collect()
}

/// The relation a name stands for, or InvalidOid when there is none (the DDL then fails by
/// itself). No lock: the check only reads, and the DDL takes its own.
unsafe fn relation_of(name: *mut pg_sys::RangeVar) -> pg_sys::Oid {
    pg_sys::RangeVarGetRelidExtended(name, pg_sys::NoLock as i32, pg_sys::RVROption::RVR_MISSING_OK, None, std::ptr::null_mut())
}

/// Refuses removing a documented table's partition that holds legally held rows (the SQL side
/// knows what "held" means). Only partitions of the extension's tables are looked at.
fn refuse_if_held(relid: pg_sys::Oid, what: &str) {
    // a partition of one of the extension's two partitioned tables (found through the
    // extension's membership, whatever the schema is called)
    let ours = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_inherits i \
           JOIN pg_catalog.pg_depend d ON d.objid OPERATOR(pg_catalog.=) i.inhparent \
            AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
            AND d.deptype OPERATOR(pg_catalog.=) 'e' \
           JOIN pg_catalog.pg_extension x ON x.oid OPERATOR(pg_catalog.=) d.refobjid \
            AND x.extname OPERATOR(pg_catalog.=) 'kt_governance' \
           WHERE i.inhrelid OPERATOR(pg_catalog.=) $1)",
        &[relid.into()],
    );
    if ours != Ok(Some(true)) {
        return;
    }
    Spi::run_with_args(
        &format!("SELECT {}.kt_refuse_removing_held($1::pg_catalog.regclass, $2)", crate::owner::INTERNAL),
        &[relid.into(), what.into()],
    )
    .expect("checking for held rows");
}

#[no_mangle]
pub extern "C" fn pg_finfo_kt_guard_drop() -> &'static pg_sys::Pg_finfo_record {
    const V1_API: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1_API
}
