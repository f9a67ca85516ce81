//! kt_ingest(jsonb): the gateway's decision-event JSON -> rows of both tables, in one call.
//!
//! Accepts one event object or an array. Both vocabularies (allowed/blocked/... and
//! allow/block/...) are accepted case-insensitively and stored as the first. Idempotent by
//! the document's key, `id`: ids already stored, or repeated in the batch, are skipped with
//! their evaluations and counted as duplicates. Bad records either abort the call ('strict')
//! with an error naming the record, its id, the field and the problem, or go to
//! kt_ingest_errors ('quarantine') while the good ones are stored. No record's content fails
//! the batch in quarantine mode: each record's raw JSON is screened first,
//! by the JSON-to-row conversion in the kt_ingest_parse crate (ingest-parse/), which is fuzzed on
//! its own (fuzz/). This module is the SQL side: claims, the duplicate probe and the inserts.

use kt_ingest_parse::{id_of, quarantined_raw, read_record, screen, EvaluationRow, EventRow, Problem, Rules};
use pgrx::prelude::*;
use serde_json::Value;
use std::collections::HashSet;

/// The rules of this call: its assume_utc and the kt_governance.ingest_accept_* settings, around
/// the transaction's start.
fn current_rules(assume_utc: bool) -> Rules {
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let bound = |seconds: i32| (seconds >= 0).then(|| i64::from(seconds) * 1_000_000);
    Rules {
        assume_utc,
        not_before_us: bound(crate::settings::INGEST_ACCEPT_PAST_S.get()).map(|d| now.saturating_sub(d)),
        not_after_us: bound(crate::settings::INGEST_ACCEPT_FUTURE_S.get()).map(|d| now.saturating_add(d)),
    }
}

fn pg_timestamp(us: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(us).expect("parsed timestamps are finite")
}

/// Claims the batch's ids for this transaction (kt_ingest_claims, sql/ingest.sql) and returns
/// those it got: an id another call is storing right now waits for that call's transaction and
/// is then left out, like one claimed before. Sorted, so that two calls with overlapping batches
/// claim in the same order and wait instead of deadlocking.
fn claim_ids(mut ids: Vec<String>) -> HashSet<String> {
    if !claims_installed() {
        // 1.0.0's SQL on this library, before ALTER EXTENSION UPDATE: its one run lock
        Spi::run(&format!("SELECT {}.kt_take_ingest_lock()", crate::owner::INTERNAL)).expect("ingest lock");
        return ids.into_iter().collect();
    }
    ids.sort_unstable();
    text_set(&format!("SELECT {}.kt_claim_ids($1::text[])", crate::owner::INTERNAL), ids)
}

/// The first column of `sql`, run with `ids` as $1, as a set.
fn text_set(sql: &str, ids: Vec<String>) -> HashSet<String> {
    Spi::connect(|client| {
        client
            .select(sql, None, &[ids.into()])
            .map(|rows| rows.filter_map(|r| r.get::<String>(1).ok().flatten()).collect())
            .expect("reading ids")
    })
}

fn claims_installed() -> bool {
    let sql = format!("SELECT to_regprocedure('{}.kt_claim_ids(text[])') IS NOT NULL", crate::owner::INTERNAL);
    Spi::get_one::<bool>(&sql).ok().flatten().unwrap_or(false)
}

/// Ids of this batch that are already stored, whatever their timestamp (a claim pruned since,
/// or rows written by COPY or INSERT, which take no claim).
fn stored_ids(schema: &str, ids: Vec<String>) -> HashSet<String> {
    if ids.is_empty() {
        return HashSet::new();
    }
    let sql = format!(
        // (the array as an initplan, not a constant of the plan: planning a custom plan with
        // 20k ids as a constant estimated their selectivity per partition, 150 ms of a 20k batch)
        "SELECT id FROM {}.ai_decision_events WHERE id = ANY((SELECT $1::text[])::text[])",
        spi::quote_identifier(schema)
    );
    text_set(&sql, ids)
}

fn insert_events(schema: &str, rows: &[EventRow]) {
    let sql = format!(
        "INSERT INTO {}.ai_decision_events (id, \"timestamp\", decision, model, provider, gateway_id, user_id, \
         team_id, input_tokens, output_tokens, cost_usd, latency_ms, request_source, batch_id) \
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::int[], $10::int[], $11::numeric[], $12::int[], $13::text[], $14::text[])",
        spi::quote_identifier(schema)
    );
    let args = [
        rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>().into(),
        rows.iter().map(|r| pg_timestamp(r.timestamp_us)).collect::<Vec<_>>().into(),
        rows.iter().map(|r| r.decision.to_string()).collect::<Vec<_>>().into(),
        rows.iter().map(|r| r.model.clone()).collect::<Vec<_>>().into(),
        rows.iter().map(|r| r.provider.clone()).collect::<Vec<_>>().into(),
        rows.iter().map(|r| r.gateway_id.clone()).collect::<Vec<_>>().into(),
        rows.iter().map(|r| r.user_id.clone()).collect::<Vec<_>>().into(),
        rows.iter().map(|r| r.team_id.clone()).collect::<Vec<_>>().into(),
        rows.iter().map(|r| r.input_tokens).collect::<Vec<_>>().into(),
        rows.iter().map(|r| r.output_tokens).collect::<Vec<_>>().into(),
        rows.iter().map(|r| r.cost_usd.clone()).collect::<Vec<_>>().into(),
        rows.iter().map(|r| r.latency_ms).collect::<Vec<_>>().into(),
        rows.iter().map(|r| r.request_source.clone()).collect::<Vec<_>>().into(),
        rows.iter().map(|r| r.batch_id.clone()).collect::<Vec<_>>().into(),
    ];
    Spi::run_with_args(&sql, &args).expect("inserting events");
}

fn insert_evaluations(schema: &str, rows: &[EventRow]) -> i64 {
    let evals: Vec<(&EventRow, &EvaluationRow)> =
        rows.iter().flat_map(|e| e.evaluations.iter().map(move |v| (e, v))).collect();
    if evals.is_empty() {
        return 0;
    }
    let sql = format!(
        "INSERT INTO {}.policy_evaluations (event_id, event_timestamp, policy_name, result, latency_ms, details) \
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::int[], $6::jsonb[])",
        spi::quote_identifier(schema)
    );
    let args = [
        evals.iter().map(|(e, _)| e.id.clone()).collect::<Vec<_>>().into(),
        evals.iter().map(|(e, _)| pg_timestamp(e.timestamp_us)).collect::<Vec<_>>().into(),
        evals.iter().map(|(_, v)| v.policy_name.clone()).collect::<Vec<_>>().into(),
        evals.iter().map(|(_, v)| v.result.to_string()).collect::<Vec<_>>().into(),
        evals.iter().map(|(_, v)| v.latency_ms).collect::<Vec<_>>().into(),
        evals.iter().map(|(_, v)| v.details.clone()).collect::<Vec<_>>().into(),
    ];
    Spi::run_with_args(&sql, &args).expect("inserting evaluations");
    evals.len() as i64
}

/// Written as the extension owner: a writer may quarantine records only through kt_ingest, which
/// says what was wrong with them (ingested_by stays the session user).
fn quarantine(schema: &str, index: usize, raw: &Value, p: &Problem) {
    let sql = format!(
        "INSERT INTO {}.kt_ingest_errors (record_index, event_id, field, reason, raw) \
         VALUES ($1, $2, $3, $4, $5::pg_catalog.jsonb)",
        spi::quote_identifier(schema)
    );
    let args = [
        (index as i64).into(),
        id_of(raw).into(),
        p.field.to_string().into(),
        p.reason.clone().into(),
        quarantined_raw(raw).into(),
    ];
    crate::owner::as_extension_owner(|| Spi::run_with_args(&sql, &args)).expect("recording a quarantined record");
}

/// The body of kt_ingest(jsonb) and kt_ingest(text) (sql/ingest.sql), which pass the document
/// as text: split into records and screened here, no record's content (numbers beyond a
/// double, NUL, deep nesting, keys given twice) can fail the batch, and pgrx's own jsonb
/// argument conversion (XX000 on 1e400) is never used.
#[pg_extern(volatile, parallel_unsafe, name = "kt_ingest_json", schema = "kt_governance_internal")]
#[search_path(pg_catalog, kt_governance_internal, pg_temp)]
fn ingest(
    events: &str,
    mode: default!(&str, "'strict'"),
    assume_utc: default!(bool, false),
) -> TableIterator<
    'static,
    (
        name!(received, i64),
        name!(inserted, i64),
        name!(duplicates, i64),
        name!(quarantined, i64),
        name!(evaluations_inserted, i64),
        name!(unknown_fields, i64),
    ),
> {
    let quarantine_mode = match mode {
        "strict" => false,
        "quarantine" => true,
        other => {
            crate::errors::raise_with_hint(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("unknown mode \"{other}\""), "Use 'strict' or 'quarantine'.")
        }
    };
    // kt_ingest itself belongs to the extension, so the schema is always there
    let schema = crate::extension_schema().unwrap_or_else(|| "public".into());
    let all = screen::split_records(events).unwrap_or_else(|e| {
        crate::errors::raise_with_hint(PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION, format!("kt_ingest: the events are not JSON: {e}"), "Give one JSON object or an array of them.")
    });
    let rules = current_rules(assume_utc);
    let mut good: Vec<EventRow> = Vec::with_capacity(all.len());
    let mut quarantined = 0i64;
    for (index, text) in all.iter().enumerate() {
        let (raw, row) = read_record(text, &rules);
        match row {
            Ok(row) => good.push(row),
            Err(p) if quarantine_mode => {
                quarantine(&schema, index, &raw, &p);
                quarantined += 1;
            }
            Err(p) => {
                let who = id_of(&raw).map(|id| format!(" (id \"{}\")", screen::shorten(&id))).unwrap_or_default();
                crate::errors::raise_with_hint(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("record {index}{who}: field \"{}\": {}", p.field, p.reason), "Nothing was stored. mode => 'quarantine' stores the good records and keeps bad ones in kt_ingest_errors.")
            }
        }
    }
    let unknown_fields = good.iter().map(|r| r.unknown_fields).sum();
    // the first record of each id is the one stored
    let mut seen: HashSet<String> = HashSet::with_capacity(good.len());
    let first_of_each: Vec<EventRow> = good.into_iter().filter(|r| seen.insert(r.id.clone())).collect();
    // concurrent kt_ingest calls must not both store the same new id
    let claimed = claim_ids(first_of_each.iter().map(|r| r.id.clone()).collect());
    let stored = stored_ids(&schema, claimed.iter().cloned().collect());
    let received = all.len() as i64;
    let new_rows: Vec<EventRow> =
        first_of_each.into_iter().filter(|r| claimed.contains(&r.id) && !stored.contains(&r.id)).collect();
    let inserted = new_rows.len() as i64;
    let duplicates = received - quarantined - inserted;
    let mut evaluations_inserted = 0;
    if !new_rows.is_empty() {
        insert_events(&schema, &new_rows);
        evaluations_inserted = insert_evaluations(&schema, &new_rows);
    }
    TableIterator::once((received, inserted, duplicates, quarantined, evaluations_inserted, unknown_fields))
}
