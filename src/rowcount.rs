//! Exact row counts per UTC hour of ai_decision_events and policy_evaluations (the SQL side is
//! sql/rowcounts.sql).
//!
//! Why: retention drops whole partitions and logs how many events and evaluations went. Counting
//! a partition about to be dropped reads all of it (and, right after a bulk load, writes every
//! page back to set hint bits): that was ~70% of a retention run. The row triggers already see
//! every inserted and deleted row, so they keep a signed count per (hour, table) in backend
//! memory and append it to kt_row_counts just before commit. A partition's count is then the sum
//! of its hours' rows, exact, read in microseconds.
//!
//! Exactness: counts are written in the transaction that changed the rows, so they commit or
//! roll back together. Rows changed inside a subtransaction that rolls back (a savepoint, a
//! PL/pgSQL exception block) are taken out again by a subtransaction callback. What bypasses row
//! triggers (TRUNCATE of a single partition, disabled triggers, session_replication_role =
//! replica) is not seen: kt_verify_row_counts() finds such drift and kt_rebuild_row_counts()
//! repairs it; retention cross-checks the counts with the planner's statistics and counts the
//! partition itself when they disagree.

use pgrx::prelude::*;
use pgrx::{register_subxact_callback, register_xact_callback, PgSubXactCallbackEvent, PgXactCallbackEvent};
use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::owner::{as_extension_owner, INTERNAL};
use crate::rollup::{changed_rows, hour_of};

/// Which table a count belongs to (index into the per-hour pair).
#[derive(Clone, Copy)]
pub(crate) enum Counted {
    Events = 0,
    Evaluations = 1,
}

#[derive(Default)]
struct Counts {
    /// (subtransaction, UTC hour in microseconds since 2000-01-01) -> [events, evaluations]
    deltas: BTreeMap<(pg_sys::SubTransactionId, i64), [i64; 2]>,
    /// whether this transaction's callbacks are registered
    registered: bool,
}

thread_local! {
    static COUNTS: RefCell<Counts> = RefCell::new(Counts::default());
}

/// Adds `sign` rows of `table` to the hour of `ts`. Runs for every row of every COPY.
pub(crate) fn count_row(table: Counted, ts: Option<TimestampWithTimeZone>, sign: i64) {
    let Some(ts) = ts.filter(|t| t.is_finite()) else { return };
    let key = (unsafe { pg_sys::GetCurrentSubTransactionId() }, hour_of(ts));
    let first_in_transaction = COUNTS.with(|c| {
        let mut c = c.borrow_mut();
        c.deltas.entry(key).or_default()[table as usize] += sign;
        !std::mem::replace(&mut c.registered, true)
    });
    if first_in_transaction {
        register_xact_callback(PgXactCallbackEvent::PreCommit, flush_counts_at_commit);
        // PREPARE TRANSACTION: into the prepared transaction, like the rollup marks
        register_xact_callback(PgXactCallbackEvent::PrePrepare, flush_counts_at_commit);
        register_xact_callback(PgXactCallbackEvent::Abort, forget_counts);
        register_subxact_callback(PgSubXactCallbackEvent::AbortSub, |sub, _parent| drop_subtransaction(sub));
        register_subxact_callback(PgSubXactCallbackEvent::CommitSub, move_to_parent);
    }
}

/// A rolled-back subtransaction's rows are gone: so are its counts.
fn drop_subtransaction(sub: pg_sys::SubTransactionId) {
    COUNTS.with(|c| c.borrow_mut().deltas.retain(|(s, _), _| *s != sub));
}

/// A committed subtransaction's counts now belong to its parent (which may still roll back).
fn move_to_parent(sub: pg_sys::SubTransactionId, parent: pg_sys::SubTransactionId) {
    COUNTS.with(|c| {
        let mut c = c.borrow_mut();
        let keys: Vec<_> = c.deltas.keys().filter(|(s, _)| *s == sub).copied().collect();
        for key in keys {
            let moved = c.deltas.remove(&key).unwrap_or_default();
            let into = c.deltas.entry((parent, key.1)).or_default();
            into[0] += moved[0];
            into[1] += moved[1];
        }
    });
}

/// Events and evaluations in [range_start, range_end) this transaction has counted but not
/// appended yet: kt_counted_rows adds them, so a retention run sees its own transaction's rows.
#[pg_extern(stable, parallel_unsafe, schema = "kt_governance_internal")]
fn kt_pending_counts(
    range_start: TimestampWithTimeZone,
    range_end: TimestampWithTimeZone,
) -> TableIterator<'static, (name!(events, i64), name!(evaluations, i64))> {
    // the hours kt_counted_rows sums: those starting in the range
    let (from, to) = (range_start.into_inner(), range_end.into_inner());
    let [events, evaluations] = COUNTS.with(|c| {
        counts_per_hour(&c.borrow().deltas, from..to).into_values().fold([0, 0], |sum, d| [sum[0] + d[0], sum[1] + d[1]])
    });
    TableIterator::once((events, evaluations))
}

/// Retention dropped [range_start, range_end) in this transaction, counts included
/// (kt_forget_counted_range): rows this transaction inserted or deleted there are gone with the
/// partition, so their pending counts must not be appended at commit. They are cancelled under
/// the current subtransaction rather than deleted, so a rolled-back savepoint brings the counts
/// back with the partition.
#[pg_extern(volatile, parallel_unsafe, schema = "kt_governance_internal")]
fn kt_forget_pending_counts(range_start: TimestampWithTimeZone, range_end: TimestampWithTimeZone) {
    let (from, to) = (hour_of(range_start), range_end.into_inner());
    let current = unsafe { pg_sys::GetCurrentSubTransactionId() };
    COUNTS.with(|c| {
        let mut c = c.borrow_mut();
        for (hour, [ev, pe]) in counts_per_hour(&c.deltas, from..to) {
            let cancel = c.deltas.entry((current, hour)).or_default();
            cancel[0] -= ev;
            cancel[1] -= pe;
        }
    });
}

/// Sums the counts of the hours in `hours` (over subtransactions) and drops hours whose rows
/// cancel out.
fn counts_per_hour(
    deltas: &BTreeMap<(pg_sys::SubTransactionId, i64), [i64; 2]>,
    hours: std::ops::Range<i64>,
) -> BTreeMap<i64, [i64; 2]> {
    let mut per_hour: BTreeMap<i64, [i64; 2]> = BTreeMap::new();
    for ((_, hour), d) in deltas.iter().filter(|((_, h), _)| hours.contains(h)) {
        let sum = per_hour.entry(*hour).or_default();
        sum[0] += d[0];
        sum[1] += d[1];
    }
    per_hour.retain(|_, d| *d != [0, 0]);
    per_hour
}

/// Pre-commit: appends this transaction's counts with one INSERT. An error here aborts the
/// transaction, so rows never commit without their counts. Outside any statement, so SPI
/// needs a snapshot of its own.
fn flush_counts_at_commit() {
    let deltas = COUNTS.with(|c| std::mem::take(&mut c.borrow_mut().deltas));
    forget_counts();
    let per_hour = counts_per_hour(&deltas, i64::MIN..i64::MAX);
    if per_hour.is_empty() {
        return;
    }
    let mut hours = Vec::with_capacity(per_hour.len());
    let mut events = Vec::with_capacity(per_hour.len());
    let mut evaluations = Vec::with_capacity(per_hour.len());
    for (us, [ev, pe]) in per_hour {
        if let Ok(hour) = TimestampWithTimeZone::try_from(us) {
            hours.push(hour);
            events.push(ev);
            evaluations.push(pe);
        }
    }
    let sql = format!(
        "INSERT INTO {INTERNAL}.kt_row_counts (hour, events, evaluations) \
         SELECT * FROM unnest($1::pg_catalog.timestamptz[], $2::pg_catalog.int8[], $3::pg_catalog.int8[])"
    );
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    let recorded = as_extension_owner(|| Spi::run_with_args(&sql, &[hours.into(), events.into(), evaluations.into()]));
    unsafe { pg_sys::PopActiveSnapshot() };
    recorded.expect("could not record row counts");
}

fn forget_counts() {
    COUNTS.with(|c| *c.borrow_mut() = Counts::default());
}

/// Row trigger on policy_evaluations (cloned onto every partition): counts evaluations per hour
/// of their event_timestamp. Events are counted by kt_mark_dirty_hours, which already runs for
/// every event row.
#[pg_trigger]
fn kt_count_evaluations<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgTriggerError> {
    for (ts, sign) in changed_rows(trigger.trigger_data(), c"event_timestamp") {
        count_row(Counted::Evaluations, ts, sign);
    }
    // AFTER trigger: the return value is ignored
    Ok(None)
}
