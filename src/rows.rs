//! Reading the rows a row trigger fired for: the time column and the sign of each changed row.

use pgrx::prelude::*;

const USEC_PER_HOUR: i64 = 3_600_000_000;

/// The UTC hour holding `ts`, in microseconds since 2000-01-01.
pub(crate) fn hour_of(ts: TimestampWithTimeZone) -> i64 {
    ts.into_inner().div_euclid(USEC_PER_HOUR) * USEC_PER_HOUR
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
    let old_sign = if is_insert(data) { 1 } else { -1 };
    let relation = data.tg_relation;
    [(data.tg_trigtuple, old_sign), (data.tg_newtuple, 1)]
        .into_iter()
        .filter(|(tuple, _)| !tuple.is_null())
        // Safety: the tuples and relation come from this row trigger's data
        .map(move |(tuple, sign)| (unsafe { timestamp_of(tuple, relation, column) }, sign))
}

pub(crate) fn is_insert(data: &pg_sys::TriggerData) -> bool {
    data.tg_event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_INSERT
}

/// Microseconds since 2000-01-01 as a timestamptz (every hour noted came from one).
pub(crate) fn stamp(us: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(us).expect("hour within the timestamptz range")
}
