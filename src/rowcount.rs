//! Exact row counts per UTC hour of ai_decision_events and policy_evaluations (the SQL side is
//! sql/rowcounts.sql). Gathered per row and written by src/accumulator.rs.
//!
//! Why: retention drops whole partitions and logs how many events and evaluations went. Counting
//! a partition about to be dropped reads all of it (and, right after a bulk load, writes every
//! page back to set hint bits): that was ~70% of a retention run. The row triggers already see
//! every inserted and deleted row, so they keep a signed count per (hour, table) in backend
//! memory and append it to kt_row_counts just before commit. A partition's count is then the sum
//! of its hours' rows, exact, read in microseconds.
//!
//! Exactness: counts are written in the transaction that changed the rows, so they commit or
//! roll back together (a prepared transaction carries them to COMMIT or ROLLBACK PREPARED). Rows
//! changed inside a subtransaction that rolls back (a savepoint, a PL/pgSQL exception block) are
//! taken out again. Moving rows out of the default partition changes no hour's count and fires
//! no row trigger (sql/partitions.sql). What else bypasses row triggers (TRUNCATE of a single
//! partition, disabled triggers, session_replication_role = replica) is not seen:
//! kt_verify_row_counts() finds such drift and kt_rebuild_row_counts() repairs it; retention
//! cross-checks the counts with the planner's statistics and counts the partition itself when
//! they disagree.

use pgrx::prelude::*;
use std::collections::BTreeMap;

use crate::owner::INTERNAL;
use crate::rows::{hour_of, stamp};

/// Which table a count belongs to (index into the per-hour pair).
#[derive(Clone, Copy)]
pub(crate) enum Counted {
    Events = 0,
    Evaluations = 1,
}

/// Per (subtransaction, UTC hour in microseconds since 2000-01-01): [events, evaluations].
#[derive(Default)]
pub(crate) struct RowCounts {
    deltas: BTreeMap<(pg_sys::SubTransactionId, i64), [i64; 2]>,
}

impl RowCounts {
    /// Adds `sign` rows of `table` to the hour of `ts`. Runs for every row of every COPY.
    pub(crate) fn add(&mut self, table: Counted, ts: Option<TimestampWithTimeZone>, sign: i64) {
        let Some(ts) = ts.filter(|t| t.is_finite()) else { return };
        let key = (unsafe { pg_sys::GetCurrentSubTransactionId() }, hour_of(ts));
        self.deltas.entry(key).or_default()[table as usize] += sign;
    }

    /// A rolled-back subtransaction's rows are gone: so are its counts.
    pub(crate) fn drop_subtransaction(&mut self, sub: pg_sys::SubTransactionId) {
        self.deltas.retain(|(s, _), _| *s != sub);
    }

    /// A committed subtransaction's counts now belong to its parent (which may still roll back).
    pub(crate) fn move_to_parent(&mut self, sub: pg_sys::SubTransactionId, parent: pg_sys::SubTransactionId) {
        let keys: Vec<_> = self.deltas.keys().filter(|(s, _)| *s == sub).copied().collect();
        for key in keys {
            let moved = self.deltas.remove(&key).unwrap_or_default();
            let into = self.deltas.entry((parent, key.1)).or_default();
            into[0] += moved[0];
            into[1] += moved[1];
        }
    }

    /// Events and evaluations counted in the hours starting in `hours`, not written yet.
    pub(crate) fn pending_in(&self, hours: std::ops::Range<i64>) -> [i64; 2] {
        self.per_hour(hours).into_values().fold([0, 0], |sum, d| [sum[0] + d[0], sum[1] + d[1]])
    }

    /// Cancels the pending counts of `hours` under the current subtransaction, so a rolled-back
    /// savepoint brings them back.
    pub(crate) fn cancel(&mut self, hours: std::ops::Range<i64>) {
        let current = unsafe { pg_sys::GetCurrentSubTransactionId() };
        for (hour, [ev, pe]) in self.per_hour(hours) {
            let cancel = self.deltas.entry((current, hour)).or_default();
            cancel[0] -= ev;
            cancel[1] -= pe;
        }
    }

    /// Sums the counts of the hours in `hours` (over subtransactions), dropping hours whose rows
    /// cancel out.
    pub(crate) fn per_hour(&self, hours: std::ops::Range<i64>) -> BTreeMap<i64, [i64; 2]> {
        let mut per_hour: BTreeMap<i64, [i64; 2]> = BTreeMap::new();
        for ((_, hour), d) in self.deltas.iter().filter(|((_, h), _)| hours.contains(h)) {
            let sum = per_hour.entry(*hour).or_default();
            sum[0] += d[0];
            sum[1] += d[1];
        }
        per_hour.retain(|_, d| *d != [0, 0]);
        per_hour
    }
}

/// Appends per-hour counts to kt_row_counts with one INSERT. The caller runs it as the
/// extension owner.
pub(crate) fn write_counts(per_hour: &BTreeMap<i64, [i64; 2]>) -> Result<(), pgrx::spi::Error> {
    if per_hour.is_empty() {
        return Ok(());
    }
    let hours: Vec<TimestampWithTimeZone> = per_hour.keys().map(|h| stamp(*h)).collect();
    let events: Vec<i64> = per_hour.values().map(|d| d[0]).collect();
    let evaluations: Vec<i64> = per_hour.values().map(|d| d[1]).collect();
    Spi::run_with_args(
        &format!(
            "INSERT INTO {INTERNAL}.kt_row_counts (hour, events, evaluations) \
             SELECT * FROM unnest($1::pg_catalog.timestamptz[], $2::pg_catalog.int8[], $3::pg_catalog.int8[])"
        ),
        &[hours.into(), events.into(), evaluations.into()],
    )
}
