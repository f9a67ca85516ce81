//! In-trigger delta aggregation for the rollups (the SQL side is sql/rollups.sql). Gathered
//! per row and written by src/accumulator.rs.
//!
//! Why: recomputing an hour from raw rows reads every row of it, so a refresh after a batch of
//! 100k new events costs ~0.6 s however little changed. The row trigger already sees every
//! inserted event; here it also adds the event into per-transaction sums at the finest grain
//! the rollups need, (hour, gateway_id, model, team_id, decision), plus an exact latency
//! histogram per (hour, gateway_id, model). Just before commit the sums are appended to
//! kt_rollup_deltas / kt_latency_deltas, in the inserting transaction, so they commit or roll
//! back with the rows. The refresh then merges an insert-only hour's deltas into its rollup rows
//! (the histograms keep p50/p99 exact) instead of reading its rows.
//!
//! Whenever a delta could be wrong or is not worth keeping, the transaction gives it up and
//! marks the hours for a recompute from raw rows instead, which is always correct:
//!  * UPDATE and DELETE (the caller marks those hours "recompute" without capturing);
//!  * a rolled-back subtransaction (its rows are gone, its sums are mixed with the parent's);
//!  * more than MAX_GROUPS groups (a backfill: recomputing is cheaper than storing the sums);
//!  * a transaction whose rows barely aggregate (fewer than two rows per group, e.g. one
//!    event per transaction), where a delta row per event would double the writes;
//!  * a cost that does not fit micro-dollars, or sums that would overflow;
//!  * a database whose encoding is not UTF-8 (keys are handed back to SQL as UTF-8 text);
//!  * a refresh run by the same transaction (its deltas are not written yet).

use pgrx::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::owner::INTERNAL;
use crate::rows::stamp;
use crate::sketch::{encode_histogram, Histogram};

/// Above this many groups in one transaction the sums are given up for recompute marks.
const MAX_GROUPS: usize = 50_000;

/// The columns the sums read, as 0-based positions in a partition's tuple descriptor.
#[derive(Clone, Copy)]
struct Columns {
    gateway_id: usize,
    model: usize,
    team_id: usize,
    decision: usize,
    cost_usd: usize,
    input_tokens: usize,
    output_tokens: usize,
    latency_ms: usize,
}

#[derive(Default, Clone, Copy)]
pub(crate) struct Sums {
    events: i64,
    cost_micros: i64,
    costs: i64,
    input_tokens: i64,
    output_tokens: i64,
    latency_sum: i64,
    latencies: i64,
}

/// The columns of policy_evaluations the policy sums read (0-based positions).
#[derive(Clone, Copy)]
struct PolicyColumns {
    policy_name: usize,
    result: usize,
    latency_ms: usize,
}

/// Inserted evaluations of one (hour, policy_name, result).
#[derive(Default, Clone, Copy)]
pub(crate) struct PolicySums {
    evaluations: i64,
    latency_sum: i64,
    latencies: i64,
}

#[derive(Default)]
pub(crate) struct Deltas {
    /// encoded (hour, gateway_id, model, team_id, decision) -> sums
    fine: HashMap<Vec<u8>, Sums>,
    /// encoded (hour of event_timestamp, policy_name, result) -> sums of inserted evaluations
    policy: HashMap<Vec<u8>, PolicySums>,
    /// encoded (hour, gateway_id, model) -> exact latency histogram
    latencies: HashMap<Vec<u8>, Histogram>,
    /// rows captured into the sums
    rows: i64,
    /// hours whose sums were given up: the refresh recomputes them from raw rows
    recompute: BTreeSet<i64>,
    /// once given up, the rest of the transaction only marks hours
    given_up: bool,
    /// column positions of the relation seen last (partitions may order columns differently)
    columns: Option<(pg_sys::Oid, Columns)>,
    policy_columns: Option<(pg_sys::Oid, PolicyColumns)>,
    /// reused buffers: capturing runs for every row of a COPY and must not allocate per row
    key: Vec<u8>,
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
}

/// The column's position when it exists with the documented type. The trigger function can be
/// attached to any table (a table whose gateway_id is an integer must not have its integers
/// read as text pointers), so a mismatch means "no usable columns", never a crash.
fn column_position(desc: pg_sys::TupleDesc, name: &std::ffi::CStr, type_oid: pg_sys::Oid) -> Option<usize> {
    // Safety: desc is the tuple descriptor of the trigger's relation
    let attno = unsafe { pg_sys::SPI_fnumber(desc, name.as_ptr()) };
    if attno <= 0 {
        return None;
    }
    let position = attno as usize - 1;
    // Safety: desc is the trigger relation's descriptor, which outlives this call (not freed:
    // from_pg_unchecked borrows it); PgTupleDesc reads the attribute the way each major lays
    // it out (PostgreSQL 18 moved them behind TupleDescAttr)
    let desc = unsafe { pgrx::PgTupleDesc::from_pg_unchecked(desc) };
    let attribute = desc.get(position)?;
    (attribute.atttypid == type_oid && !attribute.attisdropped).then_some(position)
}

fn policy_columns_of(relation: pg_sys::Relation) -> Option<PolicyColumns> {
    // Safety: relation comes from the trigger data
    let desc = unsafe { (*relation).rd_att };
    Some(PolicyColumns {
        policy_name: column_position(desc, c"policy_name", pg_sys::TEXTOID)?,
        result: column_position(desc, c"result", pg_sys::TEXTOID)?,
        latency_ms: column_position(desc, c"latency_ms", pg_sys::INT4OID)?,
    })
}

fn columns_of(relation: pg_sys::Relation) -> Option<Columns> {
    // Safety: relation comes from the trigger data
    let desc = unsafe { (*relation).rd_att };
    Some(Columns {
        gateway_id: column_position(desc, c"gateway_id", pg_sys::TEXTOID)?,
        model: column_position(desc, c"model", pg_sys::TEXTOID)?,
        team_id: column_position(desc, c"team_id", pg_sys::TEXTOID)?,
        decision: column_position(desc, c"decision", pg_sys::TEXTOID)?,
        cost_usd: column_position(desc, c"cost_usd", pg_sys::NUMERICOID)?,
        input_tokens: column_position(desc, c"input_tokens", pg_sys::INT4OID)?,
        output_tokens: column_position(desc, c"output_tokens", pg_sys::INT4OID)?,
        latency_ms: column_position(desc, c"latency_ms", pg_sys::INT4OID)?,
    })
}

/// The bytes of a text datum (detoasted if it has to be).
///
/// Safety: `datum` is a non-null text datum that lives for the current trigger call.
unsafe fn text_bytes<'a>(datum: pg_sys::Datum) -> &'a [u8] {
    let packed = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
    pgrx::varlena::varlena_to_byte_slice(packed)
}

/// A numeric as a whole number of millionths (cost_usd is numeric(12,6)), read from its digits
/// without allocating. None for NaN, infinities, finer fractions or overflow: the caller then
/// falls back to a recompute.
///
/// Safety: `datum` is a non-null numeric datum that lives for the current trigger call.
unsafe fn numeric_micros(datum: pg_sys::Datum) -> Option<i64> {
    let bytes = text_bytes(datum);
    let header = u16::from_ne_bytes(bytes.get(0..2)?.try_into().ok()?);
    let (negative, weight, digits_at) = match header & 0xC000 {
        // short format: sign, display scale and a 7-bit weight in the one header word
        0x8000 => {
            let weight = if header & 0x0040 != 0 { (header | !0x003F) as i16 } else { (header & 0x003F) as i16 };
            (header & 0x2000 != 0, weight as i32, 2)
        }
        0x0000 | 0x4000 => {
            let weight = i16::from_ne_bytes(bytes.get(2..4)?.try_into().ok()?);
            (header & 0xC000 == 0x4000, weight as i32, 4)
        }
        _ => return None, // NaN or an infinity
    };
    let mut micros: i64 = 0;
    for (i, pair) in bytes.get(digits_at..)?.chunks_exact(2).enumerate() {
        let digit = i16::from_ne_bytes([pair[0], pair[1]]) as i64;
        // the digit is worth 10000^(weight - i) units, i.e. 10^(4 * (weight - i) + 6) millionths
        let power = 4 * (weight - i as i32) + 6;
        let value = match power {
            p if p >= 0 => digit.checked_mul(10i64.checked_pow(p as u32)?)?,
            -2 if digit % 100 == 0 => digit / 100,
            _ if digit == 0 => 0,
            _ => return None,
        };
        micros = micros.checked_add(value)?;
    }
    Some(if negative { -micros } else { micros })
}

fn push_text(key: &mut Vec<u8>, text: Option<&[u8]>) {
    match text {
        None => key.push(0),
        Some(t) => {
            key.push(1);
            key.extend_from_slice(&(t.len() as u32).to_le_bytes());
            key.extend_from_slice(t);
        }
    }
}

impl Deltas {
    /// Adds one inserted event to the transaction's sums. Returns false when the event's hour
    /// must be recomputed from raw rows instead (see the module comment).
    pub(crate) fn capture_insert(&mut self, data: &pg_sys::TriggerData, hour: i64) -> bool {
        if self.given_up {
            return false;
        }
        let relation = data.tg_relation;
        // Safety: relation and tuple come from this row trigger's data
        let relid = unsafe { (*relation).rd_id };
        let columns = match self.columns {
            Some((id, c)) if id == relid => c,
            _ => match columns_of(relation) {
                Some(c) => {
                    self.columns = Some((relid, c));
                    c
                }
                None => return false,
            },
        };
        self.deform(data);
        let (values, nulls) = (&self.values, &self.nulls);
        let non_null = |i: usize| (!nulls[i]).then(|| values[i]);
        let (Some(gateway), Some(model), Some(decision)) =
            (non_null(columns.gateway_id), non_null(columns.model), non_null(columns.decision))
        else {
            return false;
        };
        let cost = match non_null(columns.cost_usd) {
            None => None,
            // Safety: a numeric datum of the trigger tuple
            Some(datum) => match unsafe { numeric_micros(datum) } {
                Some(micros) => Some(micros),
                None => return false,
            },
        };
        let int = |i: usize| non_null(i).map(|d| d.value() as i32 as i64);
        let (input_tokens, output_tokens, latency) =
            (int(columns.input_tokens).unwrap_or(0), int(columns.output_tokens).unwrap_or(0), int(columns.latency_ms));

        self.key.clear();
        self.key.extend_from_slice(&hour.to_le_bytes());
        // Safety: non-null text datums of the trigger tuple
        unsafe {
            push_text(&mut self.key, Some(text_bytes(gateway)));
            push_text(&mut self.key, Some(text_bytes(model)));
        }
        let per_model = self.key.len();
        unsafe {
            push_text(&mut self.key, non_null(columns.team_id).map(|d| text_bytes(d)));
            push_text(&mut self.key, Some(text_bytes(decision)));
        }

        let sums = match self.fine.get_mut(self.key.as_slice()) {
            Some(s) => s,
            None => self.fine.entry(self.key.clone()).or_default(),
        };
        let added = (|| {
            let mut next = *sums;
            next.events += 1;
            if let Some(c) = cost {
                next.cost_micros = next.cost_micros.checked_add(c)?;
                next.costs += 1;
            }
            next.input_tokens = next.input_tokens.checked_add(input_tokens)?;
            next.output_tokens = next.output_tokens.checked_add(output_tokens)?;
            if let Some(l) = latency {
                next.latency_sum = next.latency_sum.checked_add(l)?;
                next.latencies += 1;
            }
            Some(next)
        })();
        let Some(next) = added else {
            self.give_up();
            return false;
        };
        *sums = next;
        if let Some(l) = latency {
            let histogram = match self.latencies.get_mut(&self.key[..per_model]) {
                Some(h) => h,
                None => self.latencies.entry(self.key[..per_model].to_vec()).or_default(),
            };
            *histogram.entry(l as i32).or_insert(0) += 1;
        }
        self.rows += 1;
        if self.groups() > MAX_GROUPS {
            self.give_up();
        }
        true
    }

    /// Splits the trigger tuple into the reused value and null buffers.
    fn deform(&mut self, data: &pg_sys::TriggerData) {
        // Safety: relation and tuple come from this row trigger's data
        unsafe {
            let desc = (*data.tg_relation).rd_att;
            let natts = (*desc).natts as usize;
            self.values.resize(natts, pg_sys::Datum::from(0));
            self.nulls.resize(natts, true);
            pg_sys::heap_deform_tuple(data.tg_trigtuple, desc, self.values.as_mut_ptr(), self.nulls.as_mut_ptr());
        }
    }

    /// Adds one inserted policy evaluation to the transaction's sums, under the hour of its
    /// event_timestamp. Returns false when the hour must be recomputed from raw rows instead.
    pub(crate) fn capture_evaluation(&mut self, data: &pg_sys::TriggerData, hour: i64) -> bool {
        if self.given_up {
            return false;
        }
        // Safety: relation comes from this row trigger's data
        let relid = unsafe { (*data.tg_relation).rd_id };
        let columns = match self.policy_columns {
            Some((id, c)) if id == relid => c,
            _ => match policy_columns_of(data.tg_relation) {
                Some(c) => {
                    self.policy_columns = Some((relid, c));
                    c
                }
                None => return false,
            },
        };
        self.deform(data);
        let (values, nulls) = (&self.values, &self.nulls);
        let non_null = |i: usize| (!nulls[i]).then(|| values[i]);
        let (Some(policy), Some(result)) = (non_null(columns.policy_name), non_null(columns.result)) else {
            return false;
        };
        let latency = non_null(columns.latency_ms).map(|d| d.value() as i32 as i64);
        self.key.clear();
        self.key.extend_from_slice(&hour.to_le_bytes());
        // Safety: non-null text datums of the trigger tuple
        unsafe {
            push_text(&mut self.key, Some(text_bytes(policy)));
            push_text(&mut self.key, Some(text_bytes(result)));
        }
        let sums = match self.policy.get_mut(self.key.as_slice()) {
            Some(s) => s,
            None => self.policy.entry(self.key.clone()).or_default(),
        };
        sums.evaluations += 1;
        if let Some(l) = latency {
            let Some(total) = sums.latency_sum.checked_add(l) else {
                self.give_up();
                return false;
            };
            sums.latency_sum = total;
            sums.latencies += 1;
        }
        self.rows += 1;
        if self.groups() > MAX_GROUPS {
            self.give_up();
        }
        true
    }

    /// Groups gathered so far, events' and evaluations'.
    fn groups(&self) -> usize {
        self.fine.len() + self.policy.len()
    }

    /// The hours of every group gathered.
    fn hours_gathered(&self) -> impl Iterator<Item = i64> + '_ {
        self.fine.keys().chain(self.policy.keys()).map(|k| hour_of_key(k))
    }

    /// Gives up the sums: their hours are recomputed from raw rows instead.
    pub(crate) fn give_up(&mut self) {
        let hours: Vec<i64> = self.hours_gathered().collect();
        self.recompute.extend(hours);
        self.fine = HashMap::new();
        self.latencies = HashMap::new();
        self.policy = HashMap::new();
        self.given_up = true;
    }
}

fn hour_of_key(key: &[u8]) -> i64 {
    i64::from_le_bytes(key[0..8].try_into().unwrap())
}

/// Splits an encoded key back into its hour and texts.
fn decode_key(key: &[u8]) -> (i64, Vec<Option<String>>) {
    let mut texts = Vec::new();
    let mut at = 8;
    while at < key.len() {
        if key[at] == 0 {
            texts.push(None);
            at += 1;
        } else {
            let len = u32::from_le_bytes(key[at + 1..at + 5].try_into().unwrap()) as usize;
            texts.push(Some(String::from_utf8_lossy(&key[at + 5..at + 5 + len]).into_owned()));
            at += 5 + len;
        }
    }
    (hour_of_key(key), texts)
}

impl Deltas {
    /// Whether the noted hours about to be written (`hours`, at statement end or commit) may be
    /// marked as merged from deltas. A transaction whose rows barely aggregate (fewer than two
    /// rows per group, e.g. one event per statement) gives its sums up here, and the caller marks
    /// the hours for a recompute in the same write, so small transactions write one mark per
    /// hour and no delta rows.
    pub(crate) fn keep_sums_for(&mut self, hours: &BTreeMap<i64, bool>) -> bool {
        if self.given_up {
            return false;
        }
        if (self.groups() as i64) * 2 <= self.rows {
            return true;
        }
        // hours of earlier statements, already marked as merged, need a recompute mark of their own
        let others: BTreeSet<i64> = self.hours_gathered().filter(|h| !hours.contains_key(h)).collect();
        self.give_up();
        self.recompute = others;
        false
    }

    /// At commit: rows that barely aggregate cost more as a delta row per event than as a
    /// recompute of their hour.
    pub(crate) fn settle_for_commit(&mut self) {
        if !self.given_up && (self.groups() as i64) * 2 > self.rows {
            self.give_up();
        }
    }

    /// The hours given up so far: they need recompute marks.
    pub(crate) fn take_recompute(&mut self) -> BTreeSet<i64> {
        std::mem::take(&mut self.recompute)
    }

    /// The sums and histograms gathered, to append to kt_rollup_deltas / kt_latency_deltas /
    /// kt_policy_deltas.
    pub(crate) fn take_sums(&mut self) -> Gathered {
        Gathered {
            fine: std::mem::take(&mut self.fine),
            latencies: std::mem::take(&mut self.latencies),
            policy: std::mem::take(&mut self.policy),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.fine.is_empty() && self.policy.is_empty() && self.recompute.is_empty()
    }
}

/// What a transaction gathered, taken at its commit.
pub(crate) struct Gathered {
    fine: HashMap<Vec<u8>, Sums>,
    latencies: HashMap<Vec<u8>, Histogram>,
    policy: HashMap<Vec<u8>, PolicySums>,
}

impl Gathered {
    /// Appends everything to the delta tables. The caller runs it as the extension owner.
    pub(crate) fn write(&self) -> Result<(), pgrx::spi::Error> {
        write_sums(&self.fine)?;
        write_histograms(&self.latencies)?;
        write_policy_sums(&self.policy)
    }
}

/// Appends the policy sums to kt_policy_deltas.
fn write_policy_sums(policy: &HashMap<Vec<u8>, PolicySums>) -> Result<(), pgrx::spi::Error> {
    if policy.is_empty() {
        return Ok(());
    }
    let (mut hours, mut names, mut results) = (vec![], vec![], vec![]);
    let (mut counts, mut lat_sum, mut lat_n) = (vec![], vec![], vec![]);
    for (key, s) in policy {
        let (hour, mut texts) = decode_key(key);
        hours.push(stamp(hour));
        results.push(texts.pop().flatten());
        names.push(texts.pop().flatten());
        counts.push(s.evaluations);
        lat_sum.push((s.latencies > 0).then_some(s.latency_sum));
        lat_n.push(s.latencies);
    }
    Spi::run_with_args(
        &format!(
            "INSERT INTO {INTERNAL}.kt_policy_deltas (bucket, policy_name, result, evaluation_count, latency_sum, latency_count)
             SELECT * FROM unnest($1::pg_catalog.timestamptz[], $2::pg_catalog.text[], $3::pg_catalog.text[],
                                  $4::pg_catalog.int8[], $5::pg_catalog.int8[], $6::pg_catalog.int8[])"
        ),
        &[hours.into(), names.into(), results.into(), counts.into(), lat_sum.into(), lat_n.into()],
    )
}

/// Appends the sums to kt_rollup_deltas. The caller runs it as the extension owner.
fn write_sums(fine: &HashMap<Vec<u8>, Sums>) -> Result<(), pgrx::spi::Error> {
    if fine.is_empty() {
        return Ok(());
    }
    let (mut hours, mut gateways, mut models, mut teams, mut decisions) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut events, mut costs, mut tin, mut tout, mut lat_sum, mut lat_n) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (key, s) in fine {
        let (hour, mut texts) = decode_key(key);
        hours.push(stamp(hour));
        decisions.push(texts.pop().flatten());
        teams.push(texts.pop().flatten());
        models.push(texts.pop().flatten());
        gateways.push(texts.pop().flatten());
        events.push(s.events);
        costs.push((s.costs > 0).then_some(s.cost_micros));
        tin.push(s.input_tokens);
        tout.push(s.output_tokens);
        lat_sum.push((s.latencies > 0).then_some(s.latency_sum));
        lat_n.push(s.latencies);
    }
    // micro-dollars * 0.000001 has scale 6, the scale SUM(cost_usd) has
    let sql = format!(
        "INSERT INTO {INTERNAL}.kt_rollup_deltas (bucket, gateway_id, model, team_id, decision, event_count, total_cost,
                                                 total_input_tokens, total_output_tokens, latency_sum, latency_count)
         SELECT b, g, m, t, d, n, c OPERATOR(pg_catalog.*) 0.000001, ti, tt, ls, ln
         FROM unnest($1::pg_catalog.timestamptz[], $2::pg_catalog.text[], $3::pg_catalog.text[],
                     $4::pg_catalog.text[], $5::pg_catalog.text[], $6::pg_catalog.int8[], $7::pg_catalog.int8[],
                     $8::pg_catalog.int8[], $9::pg_catalog.int8[], $10::pg_catalog.int8[], $11::pg_catalog.int8[])
              u(b, g, m, t, d, n, c, ti, tt, ls, ln)"
    );
    Spi::run_with_args(
        &sql,
        &[
            hours.into(),
            gateways.into(),
            models.into(),
            teams.into(),
            decisions.into(),
            events.into(),
            costs.into(),
            tin.into(),
            tout.into(),
            lat_sum.into(),
            lat_n.into(),
        ],
    )
}

/// Appends the latency histograms to kt_latency_deltas. The caller runs it as the extension owner.
fn write_histograms(latencies: &HashMap<Vec<u8>, Histogram>) -> Result<(), pgrx::spi::Error> {
    if latencies.is_empty() {
        return Ok(());
    }
    let (mut hours, mut gateways, mut models, mut histograms) = (vec![], vec![], vec![], vec![]);
    for (key, histogram) in latencies {
        let (hour, mut texts) = decode_key(key);
        hours.push(stamp(hour));
        models.push(texts.pop().flatten());
        gateways.push(texts.pop().flatten());
        histograms.push(encode_histogram(histogram));
    }
    Spi::run_with_args(
        &format!(
            "INSERT INTO {INTERNAL}.kt_latency_deltas (bucket, gateway_id, model, latency_histogram)
             SELECT pg_catalog.unnest($1::pg_catalog.timestamptz[]), pg_catalog.unnest($2::pg_catalog.text[]),
                    pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.bytea[])"
        ),
        &[hours.into(), gateways.into(), models.into(), histograms.into()],
    )
}
