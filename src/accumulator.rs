//! The per-transaction accumulator behind the row triggers (the SQL side is sql/rollups.sql and
//! sql/rowcounts.sql).
//!
//! The AFTER ROW triggers on ai_decision_events and policy_evaluations (cloned onto every
//! partition) see every changed row. In backend memory they gather, per transaction, the UTC
//! hours whose rollups went stale (src/rollup.rs), the signed number of rows per hour and table
//! (src/rowcount.rs) and the sums of inserted events (src/deltas.rs). This module is the one
//! lifecycle of all three: callbacks registered once per transaction; everything written just
//! before COMMIT, or just before PREPARE TRANSACTION (so COMMIT PREPARED keeps it and ROLLBACK
//! PREPARED takes it back; left in memory it would go to the session's next transaction), in
//! one place and as the extension owner (src/owner.rs: writers have no write privilege on
//! bookkeeping); dropped on abort; and adjusted when a subtransaction ends. An error while
//! writing aborts the transaction, so rows never commit without their bookkeeping.

use pgrx::prelude::*;
use pgrx::{register_subxact_callback, register_xact_callback, PgSubXactCallbackEvent, PgXactCallbackEvent};
use std::cell::RefCell;

use crate::deltas::Deltas;
use crate::owner::as_extension_owner;
use crate::rollup::{self, DirtyHours, Mark};
use crate::rowcount::{self, Counted, RowCounts};
use crate::rows::{changed_rows, hour_of, is_insert};

#[derive(Default)]
struct Accumulator {
    hours: DirtyHours,
    counts: RowCounts,
    deltas: Deltas,
    /// whether this transaction's callbacks are registered
    registered: bool,
}

thread_local! {
    static ACCUMULATOR: RefCell<Accumulator> = RefCell::new(Accumulator::default());
}

/// Runs `f` on this transaction's accumulator, registering its callbacks on first use.
fn gather<R>(f: impl FnOnce(&mut Accumulator) -> R) -> R {
    let first = ACCUMULATOR.with(|a| !std::mem::replace(&mut a.borrow_mut().registered, true));
    if first {
        register_xact_callback(PgXactCallbackEvent::PreCommit, write_at_commit);
        register_xact_callback(PgXactCallbackEvent::PrePrepare, write_at_commit);
        register_xact_callback(PgXactCallbackEvent::Abort, forget);
        register_subxact_callback(PgSubXactCallbackEvent::AbortSub, |sub, _parent| subtransaction_aborted(sub));
        register_subxact_callback(PgSubXactCallbackEvent::CommitSub, subtransaction_committed);
        // group keys go back to SQL as text built from the key bytes, which is only lossless
        // when the database encoding is UTF-8
        if unsafe { pg_sys::GetDatabaseEncoding() } != pg_sys::pg_enc::PG_UTF8 as i32 {
            ACCUMULATOR.with(|a| a.borrow_mut().deltas.give_up());
        }
    }
    ACCUMULATOR.with(|a| f(&mut a.borrow_mut()))
}

/// A rolled-back subtransaction's rows are gone: its counts go, and the sums (mixed with the
/// parent's) are given up for recompute marks. Its dirty marks may stay: one too many is safe.
fn subtransaction_aborted(sub: pg_sys::SubTransactionId) {
    ACCUMULATOR.with(|a| {
        let mut a = a.borrow_mut();
        a.counts.drop_subtransaction(sub);
        a.deltas.give_up();
        a.hours.subtransaction_aborted(sub);
    });
}

fn subtransaction_committed(sub: pg_sys::SubTransactionId, parent: pg_sys::SubTransactionId) {
    ACCUMULATOR.with(|a| {
        let mut a = a.borrow_mut();
        a.counts.move_to_parent(sub, parent);
        a.hours.subtransaction_committed(sub, parent);
    });
}

fn forget() {
    ACCUMULATOR.with(|a| *a.borrow_mut() = Accumulator::default());
}

/// The dirty marks due at commit: the noted hours, and the hours whose sums were given up.
/// (A statement writes only the noted hours: the given-up ones are kept for the commit, so a
/// statement whose subtransaction rolls back cannot take them along.)
fn take_marks(a: &mut Accumulator) -> Vec<Mark> {
    let mut marks = a.hours.take_marks(&mut a.deltas);
    marks.extend(a.deltas.take_recompute().into_iter().map(|hour| (hour, true)));
    marks
}

/// Pre-commit and pre-prepare: writes everything gathered. Outside any statement, so SPI needs
/// a snapshot of its own.
fn write_at_commit() {
    let mut a = ACCUMULATOR.with(|a| std::mem::take(&mut *a.borrow_mut()));
    let counts = a.counts.per_hour(i64::MIN..i64::MAX);
    if a.hours.is_empty() && a.deltas.is_empty() && counts.is_empty() {
        return;
    }
    a.deltas.settle_for_commit();
    let marks = take_marks(&mut a);
    let gathered = a.deltas.take_sums();
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    let written = as_extension_owner(|| {
        rollup::write_marks(&marks)?;
        gathered.write()?;
        rowcount::write_counts(&counts)
    });
    unsafe { pg_sys::PopActiveSnapshot() };
    written.expect("could not record the transaction's rollup marks, deltas and row counts");
}

/// Writes dirty marks now, as the extension owner (inside a statement: a snapshot is active),
/// and remembers them in case the current subtransaction rolls back.
fn write_marks_now(marks: Vec<Mark>) {
    if !marks.is_empty() {
        as_extension_owner(|| rollup::write_marks(&marks)).expect("could not record dirty rollup hours");
        ACCUMULATOR.with(|a| a.borrow_mut().hours.wrote(&marks));
    }
}

/// Row trigger on ai_decision_events: counts the rows, notes their hours dirty and adds inserted
/// events to the sums.
#[pg_trigger]
fn kt_mark_dirty_hours<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgTriggerError> {
    // retention and erasure switch tracking off for their own deletes: rollups keep history
    // (row counts follow every change, theirs included)
    let track = crate::settings::TRACK_CHANGES.get();
    // Read "timestamp" straight from the trigger's tuples: this runs for every row of every
    // COPY, and looking the column up by name through PgHeapTuple cost ~10% of a COPY.
    let data = trigger.trigger_data();
    let inserted = is_insert(data);
    gather(|a| {
        for (ts, sign) in changed_rows(data, c"timestamp") {
            a.counts.add(Counted::Events, ts, sign);
            let Some(hour) = ts.filter(|t| t.is_finite()).map(hour_of) else { continue };
            if track {
                // an inserted row is added to the transaction's deltas; whatever is not
                // (updates, deletes, deltas given up) makes its hour a recompute from raw rows
                let merged = inserted && a.deltas.capture_insert(data, hour);
                a.hours.note(hour, !merged);
            }
        }
    });
    // AFTER trigger: the return value is ignored
    Ok(None)
}

/// Row trigger on policy_evaluations: counts evaluations per hour of their event_timestamp,
/// notes those hours dirty (the policy rollup) and adds inserted evaluations to the sums.
#[pg_trigger]
fn kt_count_evaluations<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgTriggerError> {
    let track = crate::settings::TRACK_CHANGES.get();
    let data = trigger.trigger_data();
    let inserted = is_insert(data);
    gather(|a| {
        for (ts, sign) in changed_rows(data, c"event_timestamp") {
            a.counts.add(Counted::Evaluations, ts, sign);
            let Some(hour) = ts.filter(|t| t.is_finite()).map(hour_of) else { continue };
            if track {
                let merged = inserted && a.deltas.capture_evaluation(data, hour);
                a.hours.note(hour, !merged);
            }
        }
    });
    Ok(None)
}

/// Statement trigger on ai_decision_events and policy_evaluations: writes the statement's dirty marks at once, so the
/// writer's own later queries in the transaction see them.
#[pg_trigger]
fn kt_flush_dirty_hours<'a>(
    _trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgTriggerError> {
    write_marks_now(ACCUMULATOR.with(|a| {
        let a = &mut *a.borrow_mut();
        a.hours.take_marks(&mut a.deltas)
    }));
    Ok(None)
}

/// Gives up this transaction's unwritten sums and marks their hours for a recompute now. The
/// refresh calls it first: sums written only at commit would otherwise miss the hours it
/// refreshes. Returns the hours marked.
#[pg_extern(volatile, parallel_unsafe, schema = "kt_governance_internal")]
fn kt_settle_pending_deltas() -> i64 {
    let marks = ACCUMULATOR.with(|a| {
        let mut a = a.borrow_mut();
        if a.deltas.is_empty() {
            return Vec::new();
        }
        a.deltas.give_up();
        // written now and remembered (write_marks_now): should this call's subtransaction roll
        // back, they are noted again
        a.deltas.take_recompute().into_iter().map(|hour| (hour, true)).collect::<Vec<Mark>>()
    });
    let marked = marks.len() as i64;
    write_marks_now(marks);
    marked
}

/// Events and evaluations in [range_start, range_end) this transaction has counted but not
/// appended yet: kt_counted_rows adds them, so a retention run sees its own transaction's rows.
#[pg_extern(stable, parallel_unsafe, schema = "kt_governance_internal")]
fn kt_pending_counts(
    range_start: TimestampWithTimeZone,
    range_end: TimestampWithTimeZone,
) -> TableIterator<'static, (name!(events, i64), name!(evaluations, i64))> {
    // the hours kt_counted_rows sums: those starting in the range
    let hours = range_start.into_inner()..range_end.into_inner();
    let [events, evaluations] = ACCUMULATOR.with(|a| a.borrow().counts.pending_in(hours));
    TableIterator::once((events, evaluations))
}

/// Retention dropped [range_start, range_end) in this transaction, counts included
/// (kt_forget_counted_range): rows this transaction inserted or deleted there are gone with the
/// partition, so their pending counts must not be appended at commit. They are cancelled under
/// the current subtransaction rather than deleted, so a rolled-back savepoint brings the counts
/// back with the partition.
#[pg_extern(volatile, parallel_unsafe, schema = "kt_governance_internal")]
fn kt_forget_pending_counts(range_start: TimestampWithTimeZone, range_end: TimestampWithTimeZone) {
    let hours = hour_of(range_start)..range_end.into_inner();
    ACCUMULATOR.with(|a| a.borrow_mut().counts.cancel(hours));
}
