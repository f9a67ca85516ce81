//! Dirty-hour tracking for the rollups (the SQL side is sql/rollups.sql).
//!
//! An AFTER ROW trigger on ai_decision_events (cloned by PostgreSQL onto every partition)
//! notes the UTC hour of each changed row in backend memory. The hours are written to
//! kt_dirty_hours once per statement by an AFTER STATEMENT trigger on the parent (so the
//! writer's own later queries in the same transaction already see them), and whatever is left
//! (DML aimed straight at a partition, which fires no parent statement trigger) just before
//! commit. Why not a statement trigger with transition tables: on PG 15 it turns COPY into
//! row-by-row inserts and misses DML aimed at a partition. An AFTER ROW trigger keeps COPY's
//! multi-row inserts.
//!
//! kt_dirty_hours has no unique key on purpose: concurrent writers of the same hour append
//! their own mark instead of waiting on each other's uncommitted one.

use pgrx::prelude::*;
use pgrx::{register_xact_callback, PgXactCallbackEvent};
use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::owner::{as_extension_owner, INTERNAL};
use crate::rowcount::{count_row, Counted};

const USEC_PER_HOUR: i64 = 3_600_000_000;

#[derive(Default)]
struct Pending {
    /// UTC hours (microseconds since 2000-01-01) changed and not yet written. Hours are not
    /// remembered once written: a rolled-back subtransaction takes its marks with it, so a
    /// later statement must be able to mark the same hour again.
    /// The flag says whether the hour must be recomputed from raw rows (an UPDATE or DELETE,
    /// or an insert whose delta was not captured) rather than merged from kt_rollup_deltas.
    hours: BTreeMap<i64, bool>,
    /// the (hour, flag) noted last: time-ordered COPY notes the same hour for row after row,
    /// and comparing with it is cheaper than a map insert
    last_hour: Option<(i64, bool)>,
    /// whether this transaction's pre-commit and abort callbacks are registered
    registered: bool,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

pub(crate) fn hour_of(ts: TimestampWithTimeZone) -> i64 {
    let us = ts.into_inner();
    us.div_euclid(USEC_PER_HOUR) * USEC_PER_HOUR
}

/// Notes the hour of one changed row. This runs once per row of every COPY, so it stays
/// allocation-free.
fn note_hour(hour: i64, recompute: bool) {
    let first_in_transaction = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.last_hour != Some((hour, recompute)) {
            *p.hours.entry(hour).or_insert(recompute) |= recompute;
            p.last_hour = Some((hour, recompute));
        }
        !std::mem::replace(&mut p.registered, true)
    });
    if first_in_transaction {
        register_xact_callback(PgXactCallbackEvent::PreCommit, flush_at_commit);
        // PREPARE TRANSACTION: written into the prepared transaction, so COMMIT PREPARED keeps
        // them and ROLLBACK PREPARED takes them back (left in memory they went to the session's
        // next transaction)
        register_xact_callback(PgXactCallbackEvent::PrePrepare, flush_at_commit);
        register_xact_callback(PgXactCallbackEvent::Abort, forget_pending_hours);
    }
}

/// Writes the pending hours with one INSERT. An error here aborts the transaction, so rows
/// never commit without their dirty marks.
fn flush_pending_hours() {
    let hours = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.last_hour = None;
        std::mem::take(&mut p.hours)
    });
    if hours.is_empty() {
        return;
    }
    let merged_allowed = crate::deltas::keep_sums_for(&hours);
    let (stamps, recompute): (Vec<TimestampWithTimeZone>, Vec<bool>) = hours
        .into_iter()
        .filter_map(|(us, r)| TimestampWithTimeZone::try_from(us).ok().map(|t| (t, r || !merged_allowed)))
        .unzip();
    let sql = format!(
        "INSERT INTO {INTERNAL}.kt_dirty_hours (bucket, recompute) \
         SELECT pg_catalog.unnest($1::pg_catalog.timestamptz[]), pg_catalog.unnest($2::pg_catalog.bool[])"
    );
    as_extension_owner(|| Spi::run_with_args(&sql, &[stamps.into(), recompute.into()]))
        .expect("could not record dirty rollup hours");
}

/// Pre-commit: outside any statement, so SPI needs a snapshot of its own.
fn flush_at_commit() {
    let pending = PENDING.with(|p| !p.borrow().hours.is_empty());
    if pending {
        unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
        flush_pending_hours();
        unsafe { pg_sys::PopActiveSnapshot() };
    }
    forget_pending_hours();
}

fn forget_pending_hours() {
    PENDING.with(|p| *p.borrow_mut() = Pending::default());
}

/// A timestamptz column of a row in a trigger ("timestamp" of an event, event_timestamp of an
/// evaluation). Its attribute number is looked up per row (it is the second or third column,
/// so the lookup is a few name comparisons) because partitions attached from elsewhere may
/// order their columns differently.
///
/// Safety: `tuple` and `relation` come from the trigger data of a row trigger on that relation.
unsafe fn timestamp_of(
    tuple: pg_sys::HeapTuple,
    relation: pg_sys::Relation,
    column: &std::ffi::CStr,
) -> Option<TimestampWithTimeZone> {
    let desc = (*relation).rd_att;
    let attno = pg_sys::SPI_fnumber(desc, column.as_ptr());
    if attno <= 0 {
        return None;
    }
    let mut is_null = false;
    let datum = pg_sys::heap_getattr(tuple, attno, desc, &mut is_null);
    TimestampWithTimeZone::from_datum(datum, is_null)
}

/// The rows a row trigger fired for, as (time of the row in `column`, sign): an inserted row
/// counts +1; for DELETE and UPDATE the trigger tuple is the old row (-1) and the new tuple of an
/// UPDATE counts +1. Tuples that are absent (no new tuple outside UPDATE) are left out.
pub(crate) fn changed_rows(
    data: &pg_sys::TriggerData,
    column: &'static std::ffi::CStr,
) -> impl Iterator<Item = (Option<TimestampWithTimeZone>, i64)> {
    let old_sign = if data.tg_event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_INSERT { 1 } else { -1 };
    let relation = data.tg_relation;
    [(data.tg_trigtuple, old_sign), (data.tg_newtuple, 1)]
        .into_iter()
        .filter(|(tuple, _)| !tuple.is_null())
        // Safety: the tuples and relation come from this row trigger's data
        .map(move |(tuple, sign)| (unsafe { timestamp_of(tuple, relation, column) }, sign))
}

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
    let inserted = data.tg_event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_INSERT;
    for (ts, sign) in changed_rows(data, c"timestamp") {
        count_row(Counted::Events, ts, sign);
        let Some(hour) = ts.filter(|t| t.is_finite()).map(hour_of) else { continue };
        if track {
            // an inserted row is added to the transaction's deltas; whatever is not (updates,
            // deletes, deltas given up) makes its hour a recompute from raw rows
            let merged = inserted && crate::deltas::capture_insert(data, hour);
            note_hour(hour, !merged);
        }
    }
    // AFTER trigger: the return value is ignored
    Ok(None)
}

#[pg_trigger]
fn kt_flush_dirty_hours<'a>(
    _trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgTriggerError> {
    flush_pending_hours();
    Ok(None)
}
