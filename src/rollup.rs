//! Dirty hours of the rollups (the SQL side is sql/rollups.sql): which UTC hours a transaction
//! changed, and whether each must be recomputed from raw rows or can be merged from the
//! transaction's deltas (src/deltas.rs). Gathered per row and written by src/accumulator.rs.
//!
//! The marks are written once per statement by an AFTER STATEMENT trigger on the parent (so
//! the writer's own later queries in the same transaction already see them), and whatever is
//! left (DML aimed straight at a partition, which fires no parent statement trigger) just
//! before commit. Why not a statement trigger with transition tables: on PG 15 it turns COPY
//! into row-by-row inserts and misses DML aimed at a partition.
//!
//! kt_dirty_hours has no unique key on purpose: concurrent writers of the same hour append
//! their own mark instead of waiting on each other's uncommitted one.

use pgrx::prelude::*;
use std::collections::BTreeMap;

use crate::deltas::Deltas;
use crate::owner::INTERNAL;
use crate::rows::stamp;

#[derive(Default)]
pub(crate) struct DirtyHours {
    /// UTC hours (microseconds since 2000-01-01) changed and not yet written, with whether the
    /// hour must be recomputed from raw rows (an UPDATE or DELETE, or an insert whose delta was
    /// not captured) rather than merged from kt_rollup_deltas. Hours are not remembered once
    /// written: a rolled-back subtransaction takes its marks with it, so a later statement must
    /// be able to mark the same hour again.
    hours: BTreeMap<i64, bool>,
    /// the (hour, flag) noted last: time-ordered COPY notes the same hour for row after row,
    /// and comparing with it is cheaper than a map insert
    last_hour: Option<(i64, bool)>,
    /// marks written by a statement, per subtransaction that wrote them: a subtransaction that
    /// rolls back takes its INSERT of them along, though rows of its parent may need them (DML
    /// aimed at a partition noted them before; the parent statement's trigger wrote them)
    written: BTreeMap<(pg_sys::SubTransactionId, i64), bool>,
}

/// A dirty mark to write: (hour, recompute).
pub(crate) type Mark = (i64, bool);

impl DirtyHours {
    /// Notes the hour of one changed row. Runs once per row of every COPY: allocation-free.
    pub(crate) fn note(&mut self, hour: i64, recompute: bool) {
        if self.last_hour != Some((hour, recompute)) {
            *self.hours.entry(hour).or_insert(recompute) |= recompute;
            self.last_hour = Some((hour, recompute));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }

    /// Takes the noted hours as marks. Whether they may be merged from deltas is the deltas'
    /// call (a transaction whose rows barely aggregate gives its sums up here).
    pub(crate) fn take_marks(&mut self, deltas: &mut Deltas) -> Vec<Mark> {
        self.last_hour = None;
        let hours = std::mem::take(&mut self.hours);
        if hours.is_empty() {
            return Vec::new();
        }
        let merged_allowed = deltas.keep_sums_for(&hours);
        hours.into_iter().map(|(hour, recompute)| (hour, recompute || !merged_allowed)).collect()
    }

    /// Remembers marks written now, under the current subtransaction.
    pub(crate) fn wrote(&mut self, marks: &[Mark]) {
        let sub = unsafe { pg_sys::GetCurrentSubTransactionId() };
        for (hour, recompute) in marks {
            *self.written.entry((sub, *hour)).or_insert(*recompute) |= *recompute;
        }
    }

    /// A subtransaction rolled back, and the marks it wrote with it: note them again, so the
    /// next statement or the commit writes them (one mark too many is harmless).
    pub(crate) fn subtransaction_aborted(&mut self, sub: pg_sys::SubTransactionId) {
        let lost: Vec<_> = self.written.keys().filter(|(s, _)| *s == sub).copied().collect();
        for key in lost {
            let recompute = self.written.remove(&key).unwrap_or(true);
            *self.hours.entry(key.1).or_insert(recompute) |= recompute;
        }
        self.last_hour = None;
    }

    /// A committed subtransaction's written marks now stand or fall with its parent.
    pub(crate) fn subtransaction_committed(&mut self, sub: pg_sys::SubTransactionId, parent: pg_sys::SubTransactionId) {
        let moved: Vec<_> = self.written.keys().filter(|(s, _)| *s == sub).copied().collect();
        for key in moved {
            let recompute = self.written.remove(&key).unwrap_or(true);
            *self.written.entry((parent, key.1)).or_insert(recompute) |= recompute;
        }
    }
}

/// Appends marks to kt_dirty_hours with one INSERT. The caller runs it as the extension owner.
pub(crate) fn write_marks(marks: &[Mark]) -> Result<(), pgrx::spi::Error> {
    if marks.is_empty() {
        return Ok(());
    }
    let stamps: Vec<TimestampWithTimeZone> = marks.iter().map(|(hour, _)| stamp(*hour)).collect();
    let recompute: Vec<bool> = marks.iter().map(|(_, r)| *r).collect();
    Spi::run_with_args(
        &format!(
            "INSERT INTO {INTERNAL}.kt_dirty_hours (bucket, recompute) \
             SELECT pg_catalog.unnest($1::pg_catalog.timestamptz[]), pg_catalog.unnest($2::pg_catalog.bool[])"
        ),
        &[stamps.into(), recompute.into()],
    )
}
