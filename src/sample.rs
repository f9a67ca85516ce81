//! Synthetic decision events with realistic mixes, for the demo, the tests and the benchmarks.
//!
//! Every value of event `i` is derived from `(seed, i)` alone, so the events stream and the
//! evaluations stream agree without sharing state, any slice can be regenerated, and a given
//! seed always yields the same data.

use pgrx::prelude::*;

const MODELS: &[(&str, &str, f64, f64)] = &[
    // (model, provider, USD per 1k input tokens, USD per 1k output tokens)
    ("gpt-4o-mini", "openai", 0.00015, 0.0006),
    ("gpt-4o", "openai", 0.0025, 0.01),
    ("claude-3-5-sonnet", "anthropic", 0.003, 0.015),
    ("claude-3-haiku", "anthropic", 0.00025, 0.00125),
    ("gemini-1.5-flash", "google", 0.000075, 0.0003),
    ("gemini-1.5-pro", "google", 0.00125, 0.005),
    ("llama-3.1-70b", "bedrock", 0.00099, 0.00099),
    ("mistral-large", "mistral", 0.002, 0.006),
];
const GATEWAYS: &[&str] = &["gw-us-east", "gw-eu-west", "gw-ap-south", "gw-internal"];
const TEAMS: &[&str] = &[
    "platform", "search", "support", "marketing", "legal", "finance", "data-science",
    "mobile", "security", "sales", "hr", "research",
];
const SOURCES: &[&str] = &["api", "sdk", "ide", "webhook", "batch"];
const POLICIES: &[&str] = &[
    "pii-detection", "prompt-injection", "toxicity", "cost-guard", "data-exfiltration",
    "jailbreak", "secrets-scanner",
];
const USERS: u64 = 500;
const USEC_PER_DAY: i64 = 86_400_000_000;

/// splitmix64: tiny, fast, and good enough for synthetic data; no dependency needed.
struct Rng(u64);

impl Rng {
    fn for_event(seed: i64, index: u64, stream: u64) -> Rng {
        let mut r = Rng((seed as u64) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (stream << 56));
        r.next_u64();
        r
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
    /// Zipf-like pick among `n` items: item k has weight 1 / (k+1)^1.1.
    fn zipf(&mut self, n: usize) -> usize {
        let cdf = zipf_cdf(n);
        let target = self.unit() * cdf[n - 1];
        cdf.partition_point(|&c| c < target).min(n - 1)
    }
}

/// Cumulative Zipf weights for `n` items, computed once per size (a backend is single-threaded,
/// the sizes are a handful of constants).
fn zipf_cdf(n: usize) -> &'static [f64] {
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<Vec<(usize, &'static [f64])>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(|| Mutex::new(Vec::new())).lock().unwrap();
    if let Some((_, cdf)) = cache.iter().find(|(size, _)| *size == n) {
        return cdf;
    }
    let cdf: Vec<f64> = (1..=n)
        .scan(0.0, |acc, k| {
            *acc += (k as f64).powf(-1.1);
            Some(*acc)
        })
        .collect();
    let cdf: &'static [f64] = Box::leak(cdf.into_boxed_slice());
    cache.push((n, cdf));
    cdf
}

/// One generated event, in the column order of ai_decision_events (cost in micro-dollars).
pub struct SampleEvent {
    pub id: String,
    pub timestamp_us: i64,
    pub decision: &'static str,
    pub model: &'static str,
    pub provider: &'static str,
    pub gateway_id: &'static str,
    pub user_id: Option<String>,
    pub team_id: Option<&'static str>,
    pub input_tokens: i32,
    pub output_tokens: i32,
    pub cost_micros: Option<i64>,
    pub latency_ms: Option<i32>,
    pub request_source: &'static str,
    pub batch_id: Option<String>,
    pub created_at_us: i64,
}

/// The time window the events of one generation run are spread over, time-ordered.
#[derive(Clone, Copy)]
pub struct Span {
    pub start_us: i64,
    pub step_us: f64,
}

impl Span {
    pub fn new(n: i64, days: i32, end_us: i64) -> Span {
        let width = days as i64 * USEC_PER_DAY;
        Span { start_us: end_us - width, step_us: width as f64 / n.max(1) as f64 }
    }
}

fn decision_for(u: f64) -> &'static str {
    // ~90% allowed, ~6% blocked, ~3% redacted, ~1% escalated
    match u {
        u if u < 0.90 => "allowed",
        u if u < 0.96 => "blocked",
        u if u < 0.99 => "redacted",
        _ => "escalated",
    }
}

pub fn sample_event(seed: i64, index: u64, span: Span) -> SampleEvent {
    let mut r = Rng::for_event(seed, index, 1);
    // jitter stays inside the event's own slot, so timestamps increase with the index
    let timestamp_us = span.start_us + ((index as f64 + 0.9 * r.unit()) * span.step_us) as i64;
    let decision = decision_for(r.unit());
    let (model, provider, price_in, price_out) = MODELS[r.zipf(MODELS.len())];
    let gateway_id = GATEWAYS[r.zipf(GATEWAYS.len())];
    let team_id = if r.unit() < 0.05 { None } else { Some(TEAMS[r.zipf(TEAMS.len())]) };
    let user_id = if r.unit() < 0.02 {
        None
    } else {
        Some(format!("user-{:04}", r.zipf(USERS as usize)))
    };
    let input_tokens = r.log_normal(400.0, 1.0).round().clamp(1.0, 200_000.0) as i32;
    // a blocked request never reaches the model: no output, no cost
    let reached_model = decision != "blocked";
    let output_tokens = if reached_model {
        r.log_normal(250.0, 0.9).round().clamp(1.0, 64_000.0) as i32
    } else {
        0
    };
    let cost = input_tokens as f64 / 1000.0 * price_in + output_tokens as f64 / 1000.0 * price_out;
    let cost_micros = match (reached_model, r.unit() < 0.01) {
        (_, true) => None,
        (true, false) => Some((cost * 1e6).round() as i64),
        (false, false) => Some(0),
    };
    let latency = r.log_normal(if reached_model { 450.0 } else { 35.0 }, 0.6);
    let latency_ms = if r.unit() < 0.01 { None } else { Some(latency.round().max(1.0) as i32) };
    let request_source = SOURCES[r.zipf(SOURCES.len())];
    let batch_id = (r.unit() < 0.05).then(|| format!("batch-{:06}", index / 1000));
    let created_at_us = timestamp_us + (r.log_normal(200_000.0, 1.0) as i64);
    SampleEvent {
        id: format!("evt-{:016x}-{index:010}", Rng::for_event(seed, index, 2).next_u64()),
        timestamp_us,
        decision,
        model,
        provider,
        gateway_id,
        user_id,
        team_id,
        input_tokens,
        output_tokens,
        cost_micros,
        latency_ms,
        request_source,
        batch_id,
        created_at_us,
    }
}

/// One generated policy evaluation (the identity id and created_at come from the table).
pub struct SampleEvaluation {
    pub policy_name: &'static str,
    pub result: &'static str,
    pub latency_ms: i32,
    pub details: Option<String>,
}

/// 2 or 3 evaluations whose results explain the event's decision: a blocked event has exactly
/// one 'block', a redacted one a 'redact', an escalated one an 'escalate'; the rest pass or flag.
pub fn sample_evaluations(seed: i64, index: u64, decision: &str) -> Vec<SampleEvaluation> {
    let mut r = Rng::for_event(seed, index, 3);
    let count = if r.unit() < 0.5 { 2 } else { 3 };
    let first = r.zipf(POLICIES.len());
    let deciding = match decision {
        "blocked" => Some("block"),
        "redacted" => Some("redact"),
        "escalated" => Some("escalate"),
        _ => None,
    };
    (0..count)
        .map(|k| {
            let policy_name = POLICIES[(first + k * 3) % POLICIES.len()];
            let result = match (k, deciding) {
                (0, Some(result)) => result,
                _ if r.unit() < 0.04 => "flag",
                _ => "pass",
            };
            let latency_ms = r.log_normal(8.0, 0.7).round().max(1.0) as i32;
            let details = (result != "pass")
                .then(|| format!(r#"{{"score": {:.3}, "rule": "{policy_name}/r{}"}}"#, 0.5 + r.unit() / 2.0, k + 1));
            SampleEvaluation { policy_name, result, latency_ms, details }
        })
        .collect()
}

fn to_tstz(us: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(us).expect("generated timestamps are finite")
}

fn end_micros(end_time: Option<TimestampWithTimeZone>) -> i64 {
    let end = end_time.unwrap_or_else(|| unsafe {
        TimestampWithTimeZone::try_from(pg_sys::GetCurrentTransactionStartTimestamp()).unwrap()
    });
    if !end.is_finite() {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "end_time must be a finite timestamp"
        );
    }
    end.into_inner()
}

/// The arguments, checked before anything is generated: the events must fit the range the
/// table takes ("timestamp" from 1970-01-01 to before 10000-01-01 UTC).
fn check_span(n: i64, days: i32, end_us: i64) -> Span {
    if !(0..=1_000_000_000).contains(&n) || days < 1 {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("n must be between 0 and 1000000000 and days >= 1 (got n = {n}, days = {days})")
        );
    }
    const UNIX_EPOCH_US: i64 = -946_684_800_000_000; // 1970-01-01 in PostgreSQL's microseconds
    const YEAR_10000_US: i64 = 252_455_616_000_000_000; // 10000-01-01
    let start_us = end_us.checked_sub(days as i64 * 86_400_000_000);
    if end_us > YEAR_10000_US || start_us.is_none_or(|s| s < UNIX_EPOCH_US) {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{days} days before end_time reach outside 1970-01-01 .. 9999-12-31 UTC, where events are stored")
        );
    }
    Span::new(n, days, end_us)
}

type EventRow = (
    String,
    TimestampWithTimeZone,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<String>,
    Option<&'static str>,
    i32,
    i32,
    Option<i64>,
    Option<i32>,
    &'static str,
    Option<String>,
    TimestampWithTimeZone,
);

/// Raw generator behind kt_sample_events(); cost comes out in micro-dollars.
#[pg_extern(stable, parallel_safe, name = "kt_sample_event_rows", schema = "kt_governance_internal")]
fn sample_event_rows(
    n: i64,
    days: i32,
    seed: i64,
    end_time: Option<TimestampWithTimeZone>,
) -> TableIterator<
    'static,
    (
        name!(id, String),
        name!(timestamp, TimestampWithTimeZone),
        name!(decision, &'static str),
        name!(model, &'static str),
        name!(provider, &'static str),
        name!(gateway_id, &'static str),
        name!(user_id, Option<String>),
        name!(team_id, Option<&'static str>),
        name!(input_tokens, i32),
        name!(output_tokens, i32),
        name!(cost_micros, Option<i64>),
        name!(latency_ms, Option<i32>),
        name!(request_source, &'static str),
        name!(batch_id, Option<String>),
        name!(created_at, TimestampWithTimeZone),
    ),
> {
    let span = check_span(n, days, end_micros(end_time));
    TableIterator::new((0..n as u64).map(move |i| -> EventRow {
        let e = sample_event(seed, i, span);
        (
            e.id,
            to_tstz(e.timestamp_us),
            e.decision,
            e.model,
            e.provider,
            e.gateway_id,
            e.user_id,
            e.team_id,
            e.input_tokens,
            e.output_tokens,
            e.cost_micros,
            e.latency_ms,
            e.request_source,
            e.batch_id,
            to_tstz(e.created_at_us),
        )
    }))
}

/// Raw generator behind kt_sample_evaluations(): the evaluations of the same events.
#[pg_extern(stable, parallel_safe, name = "kt_sample_evaluation_rows", schema = "kt_governance_internal")]
fn sample_evaluation_rows(
    n: i64,
    days: i32,
    seed: i64,
    end_time: Option<TimestampWithTimeZone>,
) -> TableIterator<
    'static,
    (
        name!(event_id, String),
        name!(event_timestamp, TimestampWithTimeZone),
        name!(policy_name, &'static str),
        name!(result, &'static str),
        name!(latency_ms, i32),
        name!(details, Option<String>),
    ),
> {
    let span = check_span(n, days, end_micros(end_time));
    TableIterator::new((0..n as u64).flat_map(move |i| {
        let e = sample_event(seed, i, span);
        let ts = to_tstz(e.timestamp_us);
        sample_evaluations(seed, i, e.decision)
            .into_iter()
            .map(move |v| (e.id.clone(), ts, v.policy_name, v.result, v.latency_ms, v.details))
    }))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;

    fn span() -> Span {
        Span::new(100_000, 30, 800_000_000_000_000)
    }

    #[pg_test]
    fn same_seed_same_events_other_seed_other_events() {
        let a = sample_event(42, 17, span());
        let b = sample_event(42, 17, span());
        let c = sample_event(43, 17, span());
        assert_eq!((a.id.clone(), a.timestamp_us, a.cost_micros), (b.id, b.timestamp_us, b.cost_micros));
        assert_ne!(a.id, c.id);
    }

    #[pg_test]
    fn decision_mix_is_realistic() {
        let n = 100_000u64;
        let mut counts = std::collections::HashMap::new();
        for i in 0..n {
            *counts.entry(sample_event(7, i, span()).decision).or_insert(0u64) += 1;
        }
        let share = |d: &str| counts.get(d).copied().unwrap_or(0) as f64 / n as f64;
        assert!((share("allowed") - 0.90).abs() < 0.01, "allowed {}", share("allowed"));
        assert!((share("blocked") - 0.06).abs() < 0.005, "blocked {}", share("blocked"));
        assert!((share("redacted") - 0.03).abs() < 0.005, "redacted {}", share("redacted"));
        assert!((share("escalated") - 0.01).abs() < 0.003, "escalated {}", share("escalated"));
    }

    #[pg_test]
    fn events_are_time_ordered_and_inside_the_span() {
        let s = span();
        let times: Vec<i64> = (0..10_000).map(|i| sample_event(1, i, s).timestamp_us).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert!(times[0] >= s.start_us);
    }

    #[pg_test]
    fn evaluations_explain_the_decision() {
        for i in 0..5_000 {
            let e = sample_event(3, i, span());
            let evals = sample_evaluations(3, i, e.decision);
            assert!((2..=3).contains(&evals.len()));
            let deciding = evals.iter().filter(|v| matches!(v.result, "block" | "redact" | "escalate")).count();
            match e.decision {
                "allowed" => assert_eq!(deciding, 0),
                _ => assert_eq!(deciding, 1, "{} needs exactly one deciding result", e.decision),
            }
        }
    }

    #[pg_test]
    fn generated_rows_satisfy_the_table_constraints() {
        let inserted = Spi::get_one::<i64>(
            "SELECT events FROM kt_generate_sample_events(2000, 3, 5, '2026-06-15 12:00+00')",
        );
        assert_eq!(inserted, Ok(Some(2000)));
        let evaluations = Spi::get_one::<bool>(
            "SELECT count(*) BETWEEN 4000 AND 6000 FROM policy_evaluations",
        );
        assert_eq!(evaluations, Ok(Some(true)));
    }
}
