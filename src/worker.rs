//! The background worker: wakes every kt_governance.worker_naptime, asks the database which
//! jobs are due (kt_due_jobs) and runs each through kt_run_job() in its own transaction.
//!
//! pgrx defaults overridden here: the worker is restarted by the postmaster after a crash
//! (set_restart_time), starts only after recovery, every transaction is guarded so an error
//! is logged and the transaction aborted instead of killing the worker, and SIGTERM cancels a
//! running job (stop_on_sigterm). kt_run_job() itself
//! also catches job errors and records them, so a failing job never stops the others.

use pgrx::bgworkers::*;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use std::time::Duration;

use crate::{extension_schema, settings};

pub fn register() {
    BackgroundWorkerBuilder::new("kt_governance worker")
        .set_type("kt_governance")
        .set_function("kt_governance_worker_main")
        .set_library("kt_governance")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(Duration::from_secs(10)))
        .load();
}

/// SIGTERM (shutdown, pg_terminate_backend) is handled by PostgreSQL's own die(): a job's running
/// statement is cancelled at its next interrupt check and the worker exits at once, its
/// transaction rolled back. pgrx's handler would only set a flag, checked between jobs, so a long
/// job would hold up a fast shutdown.
pub(crate) fn stop_on_sigterm() {
    // PostgreSQL 18 renamed the backend's pqsignal (now a macro) to pqsignal_be
    #[cfg(not(feature = "pg18"))]
    unsafe { pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(die_on_sigterm)) };
    #[cfg(feature = "pg18")]
    unsafe { pg_sys::pqsignal_be(pg_sys::SIGTERM as i32, Some(die_on_sigterm)) };
}

/// What PostgreSQL's die() does for a process not reading a client command.
unsafe extern "C-unwind" fn die_on_sigterm(_signal: std::ffi::c_int) {
    unsafe {
        (&raw mut pg_sys::InterruptPending).write_volatile(1);
        (&raw mut pg_sys::ProcDiePending).write_volatile(1);
        pg_sys::SetLatch(pg_sys::MyLatch);
    }
}

/// Runs `body` in a transaction; on error logs it, aborts the transaction and returns None.
pub(crate) fn guarded_transaction<R, F>(what: &str, body: F) -> Option<R>
where
    F: FnOnce() -> R + std::panic::UnwindSafe + std::panic::RefUnwindSafe,
{
    PgTryBuilder::new(|| Some(BackgroundWorker::transaction(body)))
        .catch_others(|error| {
            warning!("kt_governance worker: {what} failed: {error:?}");
            unsafe { pg_sys::AbortCurrentTransaction() };
            None
        })
        .execute()
}

fn due_jobs() -> Vec<String> {
    if extension_schema().is_none() {
        return Vec::new();
    }
    let sql = format!("SELECT job FROM {}.kt_due_jobs() AS job", crate::owner::INTERNAL);
    Spi::connect(|client| {
        client
            .select(&sql, None, &[])
            .map(|rows| rows.filter_map(|row| row.get::<String>(1).ok().flatten()).collect())
            .unwrap_or_default()
    })
}

/// Runs one job once; true when the job asks to run again right after this transaction commits
/// (retention drops one partition pair per transaction, so its locks stay short).
fn run_job(job: &str) -> bool {
    let Some(schema) = extension_schema() else { return false };
    let sql = format!("SELECT status, run_again FROM {}.kt_run_job($1)", spi::quote_identifier(&schema));
    let outcome = Spi::get_two_with_args::<String, bool>(&sql, &[job.into()]);
    match outcome {
        Ok((Some(status), again)) => {
            match status.as_str() {
                "ok" => {}
                "skipped" => log!("kt_governance worker: job {job} skipped: another run holds its lock (see kt_job_runs)"),
                _ => log!("kt_governance worker: job {job} recorded an error (see kt_job_runs)"),
            }
            status == "ok" && again.unwrap_or(false)
        }
        _ => false,
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn kt_governance_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP);
    stop_on_sigterm();
    let database = settings::DATABASE
        .get()
        .and_then(|d| d.into_string().ok())
        .unwrap_or_else(|| "postgres".into());
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    log!("kt_governance worker started in database \"{database}\"");
    // the database owner may ALTER DATABASE ... SET these for every session: a read-only or
    // repeatable-read default would make every job fail (maintenance moves rows under a lock and
    // must see what committed before it), so the worker's session pins them
    let _ = guarded_transaction("pinning the worker's session settings", || {
        Spi::run("SET default_transaction_isolation = 'read committed'; SET default_transaction_read_only = off")
    });

    loop {
        let naptime = Duration::from_secs(settings::WORKER_NAPTIME_S.get().max(1) as u64);
        if !BackgroundWorker::wait_latch(Some(naptime)) {
            break; // postmaster death (SIGTERM exits through die())
        }
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        let jobs = guarded_transaction("looking for due jobs", due_jobs).unwrap_or_default();
        for job in jobs {
            while guarded_transaction("running a job", || run_job(&job)).unwrap_or(false) {}
        }
    }
    log!("kt_governance worker stopping");
}
