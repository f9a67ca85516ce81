//! Returning the disk space of dropped partitions after the caller's commit (the SQL side is
//! sql/reclaim.sql).
//!
//! Why: PostgreSQL deletes a dropped table's files while its transaction commits, still holding
//! the ACCESS EXCLUSIVE locks DROP took on the partitioned parents. Freeing gigabytes of file
//! extents takes the filesystem a while (measured here: ~0.26 s per GB with online discard), so
//! retention of one month at 10M events spent ~90% of its time in COMMIT, with every writer of
//! ai_decision_events queued behind it. Retention now detaches the partition pair and moves it
//! into the schema kt_governance_reclaim (catalog changes only: the rows leave the tables at
//! commit, exactly), and a short-lived background worker drops what that schema holds right
//! after the commit. The drop locks only the detached tables, so nobody waits on the file
//! removal.
//!
//! The worker is a dynamic background worker: it needs no shared_preload_libraries, only a free
//! max_worker_processes slot. It is registered at pre-commit (an error there still aborts
//! cleanly; at commit it could not) and first waits for the registering transaction to end:
//! committed, it finds the detached tables; rolled back, it finds nothing new. When no slot is
//! free the tables wait for the next maintenance run or a manual kt_reclaim_space().

use pgrx::bgworkers::*;
use pgrx::prelude::*;
use pgrx::{register_xact_callback, PgXactCallbackEvent};
use std::cell::Cell;

use crate::extension_schema;
use crate::worker::{guarded_transaction, stop_on_sigterm};

thread_local! {
    /// whether this transaction already arranged for a reclaim worker
    static ARRANGED: Cell<bool> = const { Cell::new(false) };
}

/// Arranges for a worker to drop what kt_governance_reclaim holds once this transaction ends.
/// Called by retention after it moved a partition pair there; once per transaction is enough.
#[pg_extern(volatile, parallel_unsafe, schema = "kt_governance_internal")]
fn kt_reclaim_after_commit() {
    if ARRANGED.with(|a| a.replace(true)) {
        return;
    }
    register_xact_callback(PgXactCallbackEvent::PreCommit, launch_reclaim_worker);
    register_xact_callback(PgXactCallbackEvent::Abort, || ARRANGED.with(|a| a.set(false)));
}

/// Registers the worker for this database, telling it which transaction to wait for.
fn launch_reclaim_worker() {
    ARRANGED.with(|a| a.set(false));
    let xid = unsafe { pg_sys::GetTopTransactionIdIfAny() };
    let database = unsafe { pg_sys::MyDatabaseId };
    let launched = BackgroundWorkerBuilder::new("kt_governance reclaim")
        .set_type("kt_governance reclaim")
        .set_library("kt_governance")
        .set_function("kt_governance_reclaim_main")
        .set_argument(Some(pg_sys::Datum::from(u32::from(xid) as usize)))
        .set_extra(&u32::from(database).to_string())
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .load_dynamic();
    if launched.is_err() {
        warning!(
            "kt_governance: no background worker slot free to return the space of dropped partitions now; \
             the maintenance job (or SELECT kt_reclaim_space()) will"
        );
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn kt_governance_reclaim_main(arg: pg_sys::Datum) {
    stop_on_sigterm();
    let database = BackgroundWorker::get_extra().parse::<u32>().unwrap_or(0);
    let xid = pg_sys::TransactionId::from(arg.value() as u32);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(database)), None);
    guarded_transaction("returning the space of dropped partitions", || {
        if xid != pg_sys::InvalidTransactionId {
            // the detached tables are visible once the retention transaction has committed
            unsafe {
                pg_sys::XactLockTableWait(xid, std::ptr::null_mut(), std::ptr::null_mut(), pg_sys::XLTW_Oper::XLTW_None)
            };
        }
        reclaim_space()
    });
}

fn reclaim_space() {
    let Some(schema) = extension_schema() else { return };
    let sql = format!("SELECT tables_dropped, bytes_returned FROM {}.kt_reclaim_space()", spi::quote_identifier(&schema));
    if let Ok((Some(tables), Some(bytes))) = Spi::get_two::<i32, i64>(&sql) {
        if tables > 0 {
            log!("kt_governance reclaim: dropped {tables} detached partitions, {bytes} bytes returned");
        }
    }
}
