//! Writing bookkeeping as the extension owner.
//!
//! Row triggers gather dirty hours, rollup deltas and row counts in backend memory and write them
//! to kt_governance_internal once per statement or transaction. They run as whoever changed the
//! rows (a writer), and a writer must not be able to write bookkeeping itself: an INSERT into
//! kt_rollup_deltas would forge report numbers without a raw row. So the writer has no privilege
//! on those tables, and the Rust code that writes them switches to the extension owner for the
//! write, the way PostgreSQL's own referential-integrity triggers switch to the table owner.
//!
//! What runs while switched is only this crate's SQL, with tables qualified, under a search_path
//! of pg_catalog and then pg_temp (so no function, operator or type of the caller's is found;
//! the multi-argument unnest must stay unqualified to be the FROM-clause form), with
//! SECURITY_RESTRICTED_OPERATION set (no SET ROLE, no temp tables, nothing deferred). The
//! trigger functions cannot be attached by anyone else (their EXECUTE is revoked from PUBLIC),
//! so what they gather comes from rows of the extension's own tables.

use pgrx::prelude::*;
use std::cell::Cell;

/// The schema of the extension's internal functions and bookkeeping tables (sql/schema.sql).
/// A fixed name: it is created by CREATE EXTENSION, owned by the extension owner, and nobody
/// below superuser can rename it or create anything in it.
pub(crate) const INTERNAL: &str = "kt_governance_internal";

thread_local! {
    /// (database, owner) of the extension, looked up once per backend and database
    static OWNER: Cell<Option<(pg_sys::Oid, pg_sys::Oid)>> = const { Cell::new(None) };
}

/// The role that owns the extension in the current database.
fn extension_owner() -> pg_sys::Oid {
    let database = unsafe { pg_sys::MyDatabaseId };
    if let Some((db, owner)) = OWNER.with(|o| o.get()) {
        if db == database {
            return owner;
        }
    }
    let owner = Spi::get_one::<pg_sys::Oid>(
        "SELECT e.extowner FROM pg_catalog.pg_extension e \
         WHERE e.extname OPERATOR(pg_catalog.=) 'kt_governance'::pg_catalog.name",
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| error!("kt_governance is not installed in this database"));
    OWNER.with(|o| o.set(Some((database, owner))));
    owner
}

/// Runs `write` as the extension owner with a safe search_path; restores the caller's identity
/// and settings afterwards. An error inside aborts the (sub)transaction, whose cleanup restores
/// both as well.
pub(crate) fn as_extension_owner<R>(write: impl FnOnce() -> R) -> R {
    let owner = extension_owner();
    let (mut caller, mut context) = (pg_sys::Oid::INVALID, 0);
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut caller, &mut context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            context | (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION) as i32,
        );
    }
    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    unsafe {
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
    }
    let result = write();
    unsafe {
        pg_sys::AtEOXact_GUC(true, nest);
        pg_sys::SetUserIdAndSecContext(caller, context);
    }
    result
}

/// The identity in force before `act_as` switched it, to put back with `restore`.
pub(crate) struct Acting {
    caller: pg_sys::Oid,
    context: i32,
}

/// Makes `role` the current user for what follows, as a scheduled job runs as the role that
/// made it (pg_cron and TimescaleDB do the same): its privileges, its row-level security
/// policies. Only a superuser (the worker's job runner) may switch; an unknown role is an error.
pub(crate) fn act_as(role: &str) -> Acting {
    if !unsafe { pg_sys::superuser() } {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "running an export as another role is reserved to the export job"
        );
    }
    let oid = Spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
        &[role.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        crate::errors::raise_with_hint(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("role \"{role}\", which created this export schedule, does not exist"), "Remove the schedule and create it again as a role that exists.")
    });
    let (mut caller, mut context) = (pg_sys::Oid::INVALID, 0);
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut caller, &mut context);
        pg_sys::SetUserIdAndSecContext(oid, context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
    }
    Acting { caller, context }
}

impl Acting {
    pub(crate) fn restore(self) {
        unsafe { pg_sys::SetUserIdAndSecContext(self.caller, self.context) };
    }
}
