//! The JSON-to-row conversion of kt_ingest, free of PostgreSQL so that it can be unit-tested
//! and fuzzed on its own (fuzz/): a batch is split into records (screen::split_records), each
//! record's raw JSON is screened (screen::screen) and parsed, and parse_event turns it into the
//! rows of both tables or the Problem that keeps it out. Every row it accepts fits the tables'
//! constraints, and no input makes it panic: one bad record can never fail a batch.

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use serde_json::{Map, Value};

pub mod screen;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
/// 10000-01-01 00:00:00 UTC in Unix microseconds: the first instant the tables refuse.
const UNIX_10000_US: i64 = 253_402_300_800_000_000;

/// A record that cannot be stored: which field and why.
#[derive(Debug)]
pub struct Problem {
    pub field: &'static str,
    pub reason: String,
}

pub fn problem(field: &'static str, reason: impl Into<String>) -> Problem {
    Problem { field, reason: reason.into() }
}

/// One event ready to insert (cost kept as its decimal text, so numeric gets it exactly).
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: String,
    pub timestamp_us: i64,
    pub decision: &'static str,
    pub model: String,
    pub provider: String,
    pub gateway_id: String,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub input_tokens: i32,
    pub output_tokens: i32,
    pub cost_usd: Option<String>,
    pub latency_ms: Option<i32>,
    pub request_source: Option<String>,
    pub batch_id: Option<String>,
    pub evaluations: Vec<EvaluationRow>,
    /// top-level keys kt_ingest does not read (counted, then dropped)
    pub unknown_fields: i64,
}

#[derive(Debug, Clone)]
pub struct EvaluationRow {
    pub policy_name: String,
    pub result: &'static str,
    pub latency_ms: Option<i32>,
    pub details: Option<String>,
}

pub fn normalize_decision(raw: &str) -> Option<&'static str> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "allowed" | "allow" => Some("allowed"),
        "blocked" | "block" => Some("blocked"),
        "escalated" | "escalate" => Some("escalated"),
        "redacted" | "redact" => Some("redacted"),
        _ => None,
    }
}

fn normalize_result(raw: &str) -> Option<&'static str> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "pass" | "passed" => Some("pass"),
        "block" | "blocked" => Some("block"),
        "redact" | "redacted" => Some("redact"),
        "flag" | "flagged" => Some("flag"),
        "escalate" | "escalated" => Some("escalate"),
        _ => None,
    }
}

/// What a record must satisfy beyond its syntax: the caller's choice for timestamps without an
/// offset and the acceptance window of event times (PostgreSQL microseconds; None = unbounded).
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    pub assume_utc: bool,
    pub not_before_us: Option<i64>,
    pub not_after_us: Option<i64>,
}

impl Rules {
    /// Refuses an event time outside the acceptance window.
    pub fn check_window(&self, raw: &str, us: i64) -> Result<(), Problem> {
        if self.not_before_us.is_some_and(|b| us < b) {
            return Err(problem("timestamp", format!("\"{raw}\" is older than kt_governance.ingest_accept_past allows")));
        }
        if self.not_after_us.is_some_and(|a| us > a) {
            return Err(problem("timestamp", format!("\"{raw}\" is further in the future than kt_governance.ingest_accept_future allows")));
        }
        Ok(())
    }
}

/// RFC 3339 with an offset; without one only when the caller said to assume UTC.
pub fn parse_timestamp(raw: &str, assume_utc: bool) -> Result<i64, Problem> {
    let parsed = match DateTime::parse_from_rfc3339(raw.trim()) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => {
            let naive = NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%d %H:%M:%S%.f"))
                .map_err(|_| problem("timestamp", format!("\"{raw}\" is not an RFC 3339 timestamp")))?;
            if !assume_utc {
                return Err(problem(
                    "timestamp",
                    format!("\"{raw}\" has no UTC offset (pass assume_utc => true to read it as UTC)"),
                ));
            }
            naive.and_utc()
        }
    };
    // the range the table's timestamp_in_range constraint takes, checked on the microseconds
    // stored (a leap second, 9999-12-31T23:59:60Z, is 10000-01-01 once counted)
    let us = parsed.timestamp_micros();
    if parsed.year() < 1970 || us >= UNIX_10000_US {
        return Err(problem("timestamp", format!("\"{raw}\" is outside 1970-01-01 .. 9999-12-31 UTC")));
    }
    Ok(us - PG_EPOCH_OFFSET_US)
}

/// The longest text the tables take in an id or grouping column (their *_length constraints).
pub const MAX_TEXT_BYTES: usize = 256;

fn text(obj: &Map<String, Value>, field: &'static str, required: bool) -> Result<Option<String>, Problem> {
    let value = text_value(obj, field, required)?;
    match value {
        Some(s) if s.len() > MAX_TEXT_BYTES => {
            Err(problem(field, format!("is {} bytes long, at most {MAX_TEXT_BYTES} are stored", s.len())))
        }
        v => Ok(v),
    }
}

fn text_value(obj: &Map<String, Value>, field: &'static str, required: bool) -> Result<Option<String>, Problem> {
    match obj.get(field) {
        None | Some(Value::Null) if required => Err(problem(field, "is required")),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if required && s.is_empty() => Err(problem(field, "must not be empty")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(problem(field, format!("must be a string, got {}", screen::shorten(&other.to_string())))),
    }
}

/// A non-negative whole number, from a JSON number or a numeric string (tokens: a fraction of a
/// token is a gateway's bug, not something to round away).
fn whole_count(value: Option<&Value>, field: &'static str) -> Result<Option<i32>, Problem> {
    let n = count(value, field)?;
    // on the digits, not a double: 3.0000000000000001 is a double's 3.0 (the screen passes
    // numbers here as their text)
    let fraction = match value {
        Some(Value::Number(n)) => decimal_places(&n.to_string()).is_none_or(|places| places > 0),
        Some(Value::String(s)) => decimal_places(s.trim()).is_none_or(|places| places > 0),
        _ => false,
    };
    if fraction {
        let shown = match value {
            Some(Value::String(s)) => s.clone(),
            other => other.map(Value::to_string).unwrap_or_default(),
        };
        return Err(problem(field, format!("must be a whole number, got {shown}")));
    }
    Ok(n)
}

/// A non-negative integer, from a JSON number or a numeric string, rounded (latencies).
fn count(value: Option<&Value>, field: &'static str) -> Result<Option<i32>, Problem> {
    let number = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let n = number.ok_or_else(|| problem(field, format!("must be a number, got {}", screen::shorten(&value.unwrap().to_string()))))?;
    if !n.is_finite() || n < 0.0 || n > i32::MAX as f64 {
        return Err(problem(field, format!("must be between 0 and {}, got {n}", i32::MAX)));
    }
    Ok(Some(n.round() as i32))
}

/// cost_usd as exact decimal text: non-negative and within numeric(12,6).
fn cost(value: Option<&Value>) -> Result<Option<String>, Problem> {
    let raw = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => return Err(problem("cost_usd", format!("must be a number, got {}", screen::shorten(&other.to_string())))),
    };
    let n: f64 = raw.parse().map_err(|_| problem("cost_usd", format!("\"{raw}\" is not a number")))?;
    if !n.is_finite() || n < 0.0 || n >= 1_000_000.0 {
        return Err(problem("cost_usd", format!("must be between 0 and 999999.999999, got {raw}")));
    }
    // (an exponent numeric input cannot take, "0e2000000000", would fail the whole batch)
    if exponent_of(&raw).is_some_and(|e| e.unsigned_abs() > 1000) {
        return Err(problem("cost_usd", format!("{} has an exponent out of range", crate::screen::shorten(&raw))));
    }
    if decimal_places(&raw).is_none_or(|places| places > 6) {
        return Err(problem(
            "cost_usd",
            format!("{raw} has more than 6 decimal places: numeric(12,6) would store a rounded amount"),
        ));
    }
    Ok(Some(raw))
}

/// The exponent of a number written with one (`4e-7` -> -7), saturating.
fn exponent_of(raw: &str) -> Option<i64> {
    let at = raw.find(['e', 'E'])?;
    let digits = &raw[at + 1..];
    Some(digits.parse::<i64>().unwrap_or(if digits.starts_with('-') { i64::MIN } else { i64::MAX }))
}

/// Decimal places a number's text needs once trailing zeros are dropped (`1.50` -> 1, `4e-7` ->
/// 7, `12e3` -> 0); None when it is not a plain decimal number.
pub fn decimal_places(raw: &str) -> Option<i64> {
    let (mantissa, exponent) = match raw.find(['e', 'E']) {
        Some(at) => (&raw[..at], raw[at + 1..].parse::<i64>().ok()?),
        None => (raw, 0),
    };
    let mantissa = mantissa.strip_prefix(['-', '+']).unwrap_or(mantissa);
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    Some((frac.len() as i64).saturating_sub(exponent).max(0))
}

fn usage_field<'a>(obj: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    let usage = obj.get("usage").and_then(Value::as_object);
    names
        .iter()
        // (a null at the top level does not hide a value given under usage)
        .find_map(|n| obj.get(*n).filter(|v| !v.is_null()))
        .or_else(|| usage.and_then(|u| names.iter().find_map(|n| u.get(*n))))
}

fn evaluation(value: &Value) -> Result<EvaluationRow, Problem> {
    let obj = value
        .as_object()
        .ok_or_else(|| problem("policies_evaluated", "each evaluation must be an object"))?;
    let policy_name = text(obj, "name", false)?
        .or(text(obj, "policy_name", false)?)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| problem("policies_evaluated", "an evaluation has no name"))?;
    let raw_result = text(obj, "result", false)?
        .ok_or_else(|| problem("policies_evaluated", format!("evaluation {policy_name} has no result")))?;
    let result = normalize_result(&raw_result).ok_or_else(|| {
        problem("policies_evaluated", format!("evaluation {policy_name} has unknown result \"{raw_result}\""))
    })?;
    let latency_ms = count(obj.get("latency_ms"), "policies_evaluated")?;
    // every other key is kept, as the policy's details
    let mut rest: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "name" | "policy_name" | "result" | "latency_ms"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // a details object's keys join the others; any other details value is kept as it is
    match rest.remove("details") {
        Some(Value::Object(details)) => rest.extend(details),
        Some(Value::Null) | None => {}
        Some(other) => {
            rest.insert("details".into(), other);
        }
    }
    let details = (!rest.is_empty()).then(|| Value::Object(rest).to_string());
    if let Some(d) = details.as_ref().filter(|d| d.len() > MAX_JSON_BYTES) {
        return Err(problem(
            "policies_evaluated",
            format!("the details of evaluation {policy_name} are {} bytes, at most {MAX_JSON_BYTES} are stored", d.len()),
        ));
    }
    Ok(EvaluationRow { policy_name, result, latency_ms, details })
}

/// Validates and normalizes one event record.
pub fn parse_event(value: &Value, rules: &Rules) -> Result<EventRow, Problem> {
    let obj = value.as_object().ok_or_else(|| problem("record", "must be a JSON object"))?;
    let id = text(obj, "id", true)?.unwrap();
    let raw_ts = text(obj, "timestamp", true)?.unwrap();
    let timestamp_us = parse_timestamp(&raw_ts, rules.assume_utc)?;
    rules.check_window(&raw_ts, timestamp_us)?;
    let (field, raw_decision) = match (obj.get("decision"), obj.get("verdict")) {
        (Some(Value::String(d)), _) => ("decision", d.clone()),
        (_, Some(Value::String(v))) => ("verdict", v.clone()),
        _ => return Err(problem("decision", "decision (or verdict) is required")),
    };
    let decision = normalize_decision(&raw_decision)
        .ok_or_else(|| problem(if field == "decision" { "decision" } else { "verdict" }, format!("unknown value \"{raw_decision}\"")))?;
    let given = |name: &str| obj.get(name).filter(|v| !v.is_null());
    let evaluations = match given("policies_evaluated").or_else(|| given("policy_evaluations")) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(evaluation).collect::<Result<_, _>>()?,
        Some(_) => return Err(problem("policies_evaluated", "must be an array")),
    };
    Ok(EventRow {
        id,
        timestamp_us,
        decision,
        model: text(obj, "model", true)?.unwrap(),
        provider: text(obj, "provider", true)?.unwrap(),
        gateway_id: text(obj, "gateway_id", true)?.unwrap(),
        user_id: text(obj, "user_id", false)?,
        team_id: text(obj, "team_id", false)?,
        input_tokens: whole_count(usage_field(obj, &["input_tokens", "prompt_tokens"]), "input_tokens")?.unwrap_or(0),
        output_tokens: whole_count(usage_field(obj, &["output_tokens", "completion_tokens"]), "output_tokens")?
            .unwrap_or(0),
        cost_usd: cost(obj.get("cost_usd"))?,
        latency_ms: count(obj.get("latency_ms"), "latency_ms")?,
        request_source: text(obj, "request_source", false)?,
        batch_id: text(obj, "batch_id", false)?,
        evaluations,
        unknown_fields: obj.keys().filter(|k| screen::known_field(k).is_none()).count() as i64,
    })
}

pub fn id_of(value: &Value) -> Option<String> {
    value.get("id").and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_number().map(|n| n.to_string())))
}

/// The largest JSON kept of one record: an evaluation's details, or a quarantined record's raw
/// (jsonb holds no string over 256 MB, and a batch must not fail on one record's size).
pub const MAX_JSON_BYTES: usize = 16 << 20;
/// How much of a larger quarantined record is shown instead.
const SHOWN_CHARS: usize = 10_000;

/// kt_ingest_errors.raw for a refused record: its JSON, or for a record over MAX_JSON_BYTES a
/// JSON string of its first SHOWN_CHARS characters saying how large it was.
pub fn quarantined_raw(raw: &Value) -> String {
    let text = raw.to_string();
    if text.len() <= MAX_JSON_BYTES {
        return text;
    }
    let head: String = text.chars().take(SHOWN_CHARS).collect();
    Value::String(format!("{head}... (a record of {} bytes, cut to its first {SHOWN_CHARS} characters)", text.len())).to_string()
}

/// One record of a batch: parsed, or the problem that keeps it out, with the JSON to show for it.
pub fn read_record(text: &str, rules: &Rules) -> (Value, Result<EventRow, Problem>) {
    let screened = screen::screen(text);
    let value = serde_json::from_str::<Value>(&screened.text);
    match (screened.problem, value) {
        (None, Ok(value)) => {
            let row = parse_event(&value, rules);
            (value, row)
        }
        (Some(p), Ok(value)) => (value, Err(p)),
        // what the parser could not read is kept as text, sanitized so that jsonb takes it: a
        // raw NUL (never valid in JSON; found by the fuzz target) is shown as the text \u0000
        (p, Err(e)) => {
            let shown = screened.text.chars().take(10_000).collect::<String>().replace('\0', "\\u0000");
            let p = p.unwrap_or_else(|| problem("record", format!("is not valid JSON: {e}")));
            (Value::String(shown), Err(p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_vocabularies_and_nested_usage() {
        let e = parse_event(
            &json!({"id": "a", "timestamp": "2026-04-01T10:00:00+02:00", "verdict": "BLOCK", "model": "m",
                    "provider": "p", "gateway_id": "g", "usage": {"input_tokens": "12", "output_tokens": 3}}),
            &Rules::default(),
        )
        .unwrap();
        assert_eq!(e.decision, "blocked");
        assert_eq!((e.input_tokens, e.output_tokens), (12, 3));
        assert_eq!(e.timestamp_us, parse_timestamp("2026-04-01T08:00:00Z", false).unwrap());
    }

    #[test]
    fn cost_exponents_beyond_i64_are_out_of_range() {
        // found by the fuzz target: the saturated exponent i64::MIN overflowed abs()
        for raw in ["1.511e-31289012345678901234", "0e-99999999999999999999"] {
            let err = cost(Some(&json!(raw))).unwrap_err();
            assert!(err.reason.contains("exponent out of range"), "{raw}: {}", err.reason);
        }
    }

    #[test]
    fn naive_timestamps_need_assume_utc() {
        assert!(parse_timestamp("2026-04-01T08:00:00", false).is_err());
        assert_eq!(
            parse_timestamp("2026-04-01T08:00:00", true).unwrap(),
            parse_timestamp("2026-04-01T08:00:00Z", false).unwrap()
        );
    }

    #[test]
    fn evaluation_extra_keys_become_details() {
        let e = parse_event(
            &json!({"id": "a", "timestamp": "2026-04-01T10:00:00Z", "decision": "allowed", "model": "m",
                    "provider": "p", "gateway_id": "g",
                    "policies_evaluated": [{"name": "pii", "result": "Pass", "latency_ms": 4, "score": 0.2}]}),
            &Rules::default(),
        )
        .unwrap();
        assert_eq!(e.evaluations[0].result, "pass");
        assert_eq!(e.evaluations[0].details.as_deref(), Some(r#"{"score":0.2}"#));
    }

    #[test]
    fn costs_keep_their_micro_dollars() {
        assert_eq!(decimal_places("0.000001"), Some(6));
        assert_eq!(decimal_places("0.0000004"), Some(7));
        assert_eq!(decimal_places("4e-7"), Some(7));
        assert_eq!(decimal_places("1.500000000"), Some(1));
        assert_eq!(decimal_places("12E3"), Some(0));
        assert_eq!(decimal_places("1.2.3"), None);
        let record = |cost: &str, tokens: &str| {
            parse_event(
                &serde_json::from_str(&format!(
                    r#"{{"id": "a", "timestamp": "2026-04-01T10:00:00Z", "decision": "allowed", "model": "m",
                        "provider": "p", "gateway_id": "g", "cost_usd": {cost}, "input_tokens": {tokens}, "extra": 1}}"#
                ))
                .unwrap(),
                &Rules::default(),
            )
        };
        assert_eq!(record("0.0000004", "1").unwrap_err().field, "cost_usd");
        assert_eq!(record("0.000004", "12.7").unwrap_err().field, "input_tokens");
        let ok = record("\"0.000004\"", "\"12\"").unwrap();
        assert_eq!((ok.cost_usd.as_deref(), ok.input_tokens, ok.unknown_fields), (Some("0.000004"), 12, 1));
    }

    #[test]
    fn records_too_large_to_keep_are_cut() {
        let big = "x".repeat(MAX_JSON_BYTES);
        let (raw, row) = read_record(&format!(r#"{{"id": "a", "extra": "{big}"}}"#), &Rules::default());
        assert_eq!(row.unwrap_err().field, "timestamp");
        let kept = quarantined_raw(&raw);
        assert!(kept.len() < SHOWN_CHARS + 100 && kept.contains(&format!("a record of {} bytes", raw.to_string().len())), "{}", &kept[kept.len() - 80..]);
        let (_, row) = read_record(
            &format!(r#"{{"id": "a", "timestamp": "2026-04-01T10:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", "policies_evaluated": [{{"name": "pii", "result": "pass", "note": "{big}"}}]}}"#),
            &Rules::default(),
        );
        assert_eq!(row.unwrap_err().field, "policies_evaluated");
        assert_eq!(quarantined_raw(&serde_json::json!({"id": "a"})), r#"{"id":"a"}"#);
    }

    #[test]
    fn numbers_are_read_exactly() {
        let record = |fields: &str| {
            read_record(
                &format!(
                    r#"{{"timestamp": "2026-04-01T10:00:00Z", "decision": "allowed", "model": "m", "provider": "p", "gateway_id": "g", {fields}}}"#
                ),
                &Rules::default(),
            )
            .1
        };
        // two ids a double cannot tell apart stay apart
        assert_eq!(record(r#""id": 123456789012345678901234"#).unwrap().id, "123456789012345678901234");
        assert_eq!(record(r#""id": 123456789012345678901235"#).unwrap().id, "123456789012345678901235");
        assert_eq!(record(r#""id": 1.50"#).unwrap().id, "1.50");
        let refused = |fields: &str| record(fields).unwrap_err().field;
        assert_eq!(refused(r#""id": "a", "cost_usd": 0.10000000000000000001"#), "cost_usd");
        assert_eq!(refused(r#""id": "a", "input_tokens": 3.0000000000000001"#), "input_tokens");
        assert_eq!(refused(r#""id": "a", "usage": {"completion_tokens": 3.0000000000000001}"#), "output_tokens");
        let ok = record(r#""id": "a", "cost_usd": 1e-6, "usage": {"input_tokens": 3.0, "output_tokens": 2e1}"#).unwrap();
        assert_eq!((ok.cost_usd.as_deref(), ok.input_tokens, ok.output_tokens), (Some("1e-6"), 3, 20));
    }
}
