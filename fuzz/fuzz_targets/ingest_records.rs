//! kt_ingest's JSON-to-row conversion on arbitrary documents. It must never panic (a panic is
//! XX000 in the server), and what it returns must be storable whole: every accepted row fits
//! the tables' constraints and column types, and every rejected record can be written to
//! kt_ingest_errors. An input that breaks either would fail a whole quarantine-mode batch.
#![no_main]

use kt_ingest_parse::{id_of, quarantined_raw, read_record, screen, EventRow, Problem, Rules, MAX_JSON_BYTES, MAX_TEXT_BYTES};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// PostgreSQL microseconds of 1970-01-01 and 10000-01-01 UTC (the timestamp_in_range check).
const PG_1970_US: i64 = -946_684_800_000_000;
const PG_10000_US: i64 = 252_455_616_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = std::str::from_utf8(data) else { return };
    let Ok(records) = screen::split_records(doc) else { return };
    for rules in [Rules::default(), Rules { assume_utc: true, ..Rules::default() }] {
        for record in &records {
            match read_record(record, &rules) {
                (_, Ok(row)) => check_row(&row),
                (raw, Err(p)) => check_quarantined(&raw, &p),
            }
        }
    }
});

/// What PostgreSQL's text input takes: no NUL (the server encoding is UTF-8, as &str is).
fn text_ok(what: &str, s: &str) {
    assert!(!s.contains('\0'), "{what} holds a NUL: {s:?}");
}

/// The *_length constraints and text input.
fn short_text(what: &str, s: &str) {
    text_ok(what, s);
    assert!(s.len() <= MAX_TEXT_BYTES, "{what} is {} bytes", s.len());
}

/// What jsonb input takes from this text: JSON with no \u0000 escape (jsonb refuses it).
fn jsonb_ok(what: &str, text: &str) {
    text_ok(what, text);
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {text:?}"));
    let mut stack = vec![&value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => text_ok(what, s),
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (k, v) in map {
                    text_ok(what, k);
                    stack.push(v);
                }
            }
            Value::Number(n) => assert!(n.as_f64().is_some_and(f64::is_finite), "{what} holds {n}"),
            _ => {}
        }
    }
}

/// numeric(12,6) input that stores the amount exactly: [+-]digits[.digits][e[+-]digits] (PostgreSQL
/// refuses exponents beyond +-1000), at most 6 significant decimal places, below 10^6, not
/// negative. Checked on the digits, independently of the parser's f64 reading.
fn numeric_12_6(raw: &str) {
    let s = raw.trim_matches(|c: char| c.is_ascii_whitespace());
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], s[at + 1..].parse::<i64>().unwrap_or_else(|_| panic!("cost {raw:?}: exponent"))),
        None => (s, 0),
    };
    assert!(exponent.abs() <= 1000, "cost {raw:?}: exponent beyond numeric input");
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(!(int.is_empty() && frac.is_empty()), "cost {raw:?}: no digits");
    assert!(int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()), "cost {raw:?}: not a decimal");
    // the digits with the point moved by the exponent: significant places left and right of it
    let all = format!("{int}{frac}");
    let point = int.len() as i64 + exponent;
    let first = all.bytes().position(|b| b != b'0');
    let last = all.bytes().rposition(|b| b != b'0');
    let (Some(first), Some(last)) = (first, last) else { return }; // zero, -0 included
    assert!(!negative, "cost {raw:?} is negative");
    assert!(last as i64 + 1 - point <= 6, "cost {raw:?} has more than 6 decimal places");
    assert!(point - first as i64 <= 6, "cost {raw:?} is 10^6 or more");
}

fn check_row(row: &EventRow) {
    short_text("id", &row.id);
    assert!(!row.id.is_empty(), "empty id");
    for (what, s) in [("model", &row.model), ("provider", &row.provider), ("gateway_id", &row.gateway_id)] {
        short_text(what, s);
    }
    for (what, s) in [
        ("user_id", &row.user_id),
        ("team_id", &row.team_id),
        ("request_source", &row.request_source),
        ("batch_id", &row.batch_id),
    ] {
        if let Some(s) = s {
            short_text(what, s);
        }
    }
    assert!((PG_1970_US..PG_10000_US).contains(&row.timestamp_us), "timestamp {}", row.timestamp_us);
    assert!(row.input_tokens >= 0 && row.output_tokens >= 0, "negative tokens");
    assert!(row.latency_ms.is_none_or(|l| l >= 0), "negative latency");
    if let Some(cost) = &row.cost_usd {
        numeric_12_6(cost);
    }
    for e in &row.evaluations {
        short_text("policy_name", &e.policy_name);
        assert!(["pass", "block", "redact", "flag", "escalate"].contains(&e.result), "result {}", e.result);
        assert!(e.latency_ms.is_none_or(|l| l >= 0), "negative evaluation latency");
        if let Some(details) = &e.details {
            assert!(details.len() <= MAX_JSON_BYTES, "details of {} bytes", details.len());
            jsonb_ok("details", details);
        }
    }
}

/// A kt_ingest_errors row: event_id and reason as text, raw as jsonb.
fn check_quarantined(raw: &Value, p: &Problem) {
    let kept = quarantined_raw(raw);
    assert!(kept.len() <= MAX_JSON_BYTES, "quarantined raw of {} bytes", kept.len());
    jsonb_ok("quarantined raw", &kept);
    text_ok("reason", &p.reason);
    if let Some(id) = id_of(raw) {
        text_ok("quarantined event_id", &id);
    }
}
