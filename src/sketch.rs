//! Mergeable latency quantile sketch: counts per logarithmic bucket, so that the sketches of
//! many hours can be added together and any quantile read back within 1% relative error
//! (the DDSketch idea). Serialized as bytea: a version byte, then (bucket index i32, count i64)
//! pairs in increasing index order; bucket 0 holds zero latencies.

use pgrx::prelude::*;
use std::collections::BTreeMap;

/// Relative accuracy of a quantile read from a sketch.
const ALPHA: f64 = 0.01;
const FORMAT_VERSION: u8 = 1;
const PAIR_BYTES: usize = 12;

fn gamma() -> f64 {
    (1.0 + ALPHA) / (1.0 - ALPHA)
}

/// Bucket of a latency: values in (gamma^(i-1), gamma^i] share bucket i (>= 1); 0 is bucket 0.
fn bucket_of(value: f64) -> i32 {
    if !(value.is_finite() && value >= 0.0) {
        refuse(format!("a latency must be a finite number >= 0, got {value}"));
    }
    if value == 0.0 {
        0
    } else {
        // +1 keeps values in (0, 1] at index >= 1, away from the zero bucket
        ((value.ln() / gamma().ln()).ceil() as i32).saturating_add(1)
    }
}

fn refuse(message: String) -> ! {
    ereport!(PgLogLevel::ERROR, PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message);
    unreachable!("ereport(ERROR) does not return")
}

/// The value reported for a bucket: the point whose relative error to every value in the
/// bucket is at most ALPHA.
fn bucket_value(index: i32) -> f64 {
    if index == 0 {
        0.0
    } else {
        let g = gamma();
        2.0 * g.powi(index - 1) / (1.0 + g)
    }
}

type Counts = BTreeMap<i32, i64>;

fn encode(counts: &Counts) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + counts.len() * PAIR_BYTES);
    out.push(FORMAT_VERSION);
    for (index, count) in counts.iter().filter(|(_, c)| **c > 0) {
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> Counts {
    if bytes.first() != Some(&FORMAT_VERSION) || (bytes.len() - 1) % PAIR_BYTES != 0 {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            "not a kt_governance latency sketch (wrong version or length)"
        );
    }
    bytes[1..]
        .chunks_exact(PAIR_BYTES)
        .map(|pair| {
            let index = i32::from_le_bytes(pair[0..4].try_into().unwrap());
            let count = i64::from_le_bytes(pair[4..12].try_into().unwrap());
            (index, count)
        })
        .collect()
}

fn quantile(counts: &Counts, q: f64) -> Option<f64> {
    let total: i64 = counts.values().sum();
    if total == 0 {
        return None;
    }
    // the rank PERCENTILE_DISC would pick; interpolation differences vanish in the 1% error
    let rank = ((q * (total - 1) as f64).round() as i64).clamp(0, total - 1);
    let mut seen = 0;
    for (index, count) in counts {
        seen += count;
        if seen > rank {
            return Some(bucket_value(*index));
        }
    }
    counts.keys().next_back().map(|i| bucket_value(*i))
}

/// Bucket index of one latency, for building sketches in SQL with GROUP BY.
#[pg_extern(immutable, parallel_safe, strict, schema = "kt_governance_internal")]
fn kt_sketch_bucket(latency_ms: f64) -> i32 {
    bucket_of(latency_ms)
}

/// Builds a sketch from bucket indexes and their counts (array_agg of a GROUP BY).
#[pg_extern(immutable, parallel_safe, strict, schema = "kt_governance_internal")]
fn kt_sketch_build(buckets: Vec<Option<i32>>, counts: Vec<Option<i64>>) -> Vec<u8> {
    if buckets.len() != counts.len() {
        refuse(format!("{} buckets but {} counts", buckets.len(), counts.len()));
    }
    let mut sketch = Counts::new();
    for (bucket, count) in buckets.into_iter().zip(counts) {
        if let (Some(b), Some(c)) = (bucket, count) {
            let total = sketch.entry(b).or_insert(0);
            *total = total.checked_add(c).filter(|_| c >= 0).unwrap_or_else(|| refuse(format!("bad count {c} for bucket {b}")));
        }
    }
    encode(&sketch)
}

/// Encoded sketch of some latencies: one count per logarithmic bucket.
fn sketch_of(values: impl IntoIterator<Item = f64>) -> Vec<u8> {
    let mut sketch = Counts::new();
    for value in values {
        *sketch.entry(bucket_of(value)).or_insert(0) += 1;
    }
    encode(&sketch)
}

/// Sketch of a set of latencies.
#[pg_extern(immutable, parallel_safe, strict, schema = "kt_governance_internal")]
fn kt_latency_sketch(latencies: Vec<Option<f64>>) -> Vec<u8> {
    sketch_of(latencies.into_iter().flatten())
}

/// PERCENTILE_CONT(q) of sorted values, computed the way PostgreSQL does (float8 lerp between
/// the two neighbouring ranks), so the result is bit-for-bit the SQL aggregate's.
fn percentile_cont(sorted: &[i32], q: f64) -> Option<f64> {
    percentile_cont_of_ranks(sorted.len() as i64, |rank| sorted[rank as usize], q)
}

/// PERCENTILE_CONT(q) of `count` values given the value at each rank (0-based, ascending).
fn percentile_cont_of_ranks(count: i64, value_at: impl Fn(i64) -> i32, q: f64) -> Option<f64> {
    let last = count.checked_sub(1).filter(|l| *l >= 0)?;
    let position = q * last as f64;
    let (lo, hi) = (position.floor(), position.ceil());
    let (lo_value, hi_value) = (value_at(lo as i64) as f64, value_at(hi as i64) as f64);
    Some(if lo == hi { lo_value } else { lo_value + (hi_value - lo_value) * (position - lo) })
}

/// Exact median and p99 plus the mergeable sketch of one group's latencies, in one pass. The
/// refresh aggregates latencies with array_agg (which hash aggregation supports) and calls this
/// per group, instead of sorting every row by group for PERCENTILE_CONT.
#[pg_extern(immutable, parallel_safe, strict)]
fn kt_latency_summary(
    latencies: Vec<Option<i32>>,
) -> TableIterator<'static, (name!(p50, Option<f64>), name!(p99, Option<f64>), name!(sketch, Option<Vec<u8>>))> {
    let mut values: Vec<i32> = latencies.into_iter().flatten().collect();
    values.sort_unstable();
    let sketch = (!values.is_empty()).then(|| sketch_of(values.iter().map(|v| *v as f64)));
    TableIterator::once((percentile_cont(&values, 0.5), percentile_cont(&values, 0.99), sketch))
}

/// Adds two sketches (the transition function of kt_sketch_merge_agg).
#[pg_extern(immutable, parallel_safe, schema = "kt_governance_internal")]
fn kt_sketch_merge(a: Option<&[u8]>, b: Option<&[u8]>) -> Option<Vec<u8>> {
    match (a, b) {
        (None, None) => None,
        (Some(x), None) | (None, Some(x)) => Some(x.to_vec()),
        (Some(x), Some(y)) => {
            let mut merged = decode(x);
            for (index, count) in decode(y) {
                *merged.entry(index).or_insert(0) += count;
            }
            Some(encode(&merged))
        }
    }
}

/// Refuses a quantile outside [0, 1] (22023).
fn check_quantile(q: f64) {
    if !(0.0..=1.0).contains(&q) {
        refuse(format!("quantile must be between 0 and 1, got {q}"));
    }
}

/// Quantile q (0..1) of the values summarized by a sketch, within 1% relative error.
#[pg_extern(immutable, parallel_safe, strict)]
fn kt_sketch_quantile(sketch: &[u8], q: f64) -> Option<f64> {
    check_quantile(q);
    quantile(&decode(sketch), q)
}

/// Number of values a sketch summarizes.
#[pg_extern(immutable, parallel_safe, strict, schema = "kt_governance_internal")]
fn kt_sketch_count(sketch: &[u8]) -> i64 {
    decode(sketch).values().sum()
}

// ---------------------------------------------------------------------------------------------
// Exact latency histograms: the count of every distinct latency (milliseconds are integers, and
// an hour of one gateway and model holds a few hundred to a few thousand distinct values).
// Unlike the sketch, two histograms add up to the histogram of the union exactly, so the refresh
// can merge a batch's histogram into an hour's and still report the exact PERCENTILE_CONT
// p50/p99. Serialized compactly, because the refresh rewrites an hour's histogram at every merge:
// a version byte, then per distinct value (ascending) the gap to the previous value and the
// count, both as zigzag varints; mostly one byte each.

const HISTOGRAM_VERSION: u8 = 2;

pub(crate) type Histogram = BTreeMap<i32, i64>;

/// (value, count) pairs in increasing value order, counts > 0.
type Pairs = Vec<(i32, i64)>;

fn push_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64; // zigzag
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Option<i64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        v |= ((byte & 0x7F) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    None
}

fn encode_pairs_compact(pairs: impl Iterator<Item = (i32, i64)>) -> Vec<u8> {
    let mut out = vec![HISTOGRAM_VERSION];
    let mut previous = 0i64;
    for (value, count) in pairs.filter(|(_, c)| *c != 0) {
        push_varint(&mut out, value as i64 - previous);
        push_varint(&mut out, count);
        previous = value as i64;
    }
    out
}

pub(crate) fn encode_histogram(histogram: &Histogram) -> Vec<u8> {
    encode_pairs_compact(histogram.iter().map(|(v, c)| (*v, *c)))
}

fn decode_histogram(bytes: &[u8]) -> Pairs {
    let refuse = || -> ! {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            "not a kt_governance latency histogram (wrong version or truncated)"
        );
        unreachable!()
    };
    if bytes.first() != Some(&HISTOGRAM_VERSION) {
        refuse();
    }
    let (mut pairs, mut at, mut previous) = (Pairs::new(), 1, 0i64);
    while at < bytes.len() {
        let (Some(gap), Some(count)) = (read_varint(bytes, &mut at), read_varint(bytes, &mut at)) else { refuse() };
        let value = previous + gap;
        let Ok(v) = i32::try_from(value) else { refuse() };
        if (!pairs.is_empty() && gap <= 0) || count <= 0 {
            refuse();
        }
        pairs.push((v, count));
        previous = value;
    }
    pairs
}

/// The histogram of the union: a linear merge of two sorted pair lists.
fn merge_pairs(a: &[(i32, i64)], b: &[(i32, i64)]) -> Pairs {
    let mut merged = Pairs::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                i += 1;
                j += 1;
                (x.0, x.1 + y.1)
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                i += 1;
                *x
            }
            (Some(_), Some(y)) | (None, Some(y)) => {
                j += 1;
                *y
            }
            (Some(x), None) => {
                i += 1;
                *x
            }
            (None, None) => unreachable!(),
        };
        merged.push(next);
    }
    merged
}

/// PERCENTILE_CONT(q) of the values a histogram counts, bit-for-bit the SQL aggregate's.
fn histogram_percentile(pairs: &[(i32, i64)], q: f64) -> Option<f64> {
    let total: i64 = pairs.iter().map(|(_, c)| c).sum();
    let value_at = |rank: i64| {
        let mut seen = 0;
        for (value, count) in pairs {
            seen += count;
            if seen > rank {
                return *value;
            }
        }
        pairs.last().map(|(v, _)| *v).unwrap_or(0)
    };
    percentile_cont_of_ranks(total, value_at, q)
}

/// What a rollup row stores about an hour's latencies, from its exact histogram.
fn histogram_rollup(pairs: &[(i32, i64)]) -> (Option<f64>, Option<f64>, Option<Vec<u8>>, Option<Vec<u8>>) {
    if pairs.is_empty() {
        return (None, None, None, None);
    }
    let mut sketch = Counts::new();
    for (value, count) in pairs {
        *sketch.entry(bucket_of(*value as f64)).or_insert(0) += count;
    }
    (
        histogram_percentile(pairs, 0.5),
        histogram_percentile(pairs, 0.99),
        Some(encode(&sketch)),
        Some(encode_pairs_compact(pairs.iter().copied())),
    )
}

/// Exact p50 and p99, the sketch and the exact histogram of one group's latencies: what the
/// refresh stores for an (hour, gateway, model) it recomputes from raw rows.
#[pg_extern(immutable, parallel_safe, strict, schema = "kt_governance_internal")]
fn kt_latency_rollup(
    latencies: Vec<Option<i32>>,
) -> TableIterator<
    'static,
    (
        name!(p50, Option<f64>),
        name!(p99, Option<f64>),
        name!(sketch, Option<Vec<u8>>),
        name!(histogram, Option<Vec<u8>>),
    ),
> {
    let mut values: Vec<i32> = latencies.into_iter().flatten().collect();
    values.sort_unstable();
    let mut pairs = Pairs::new();
    for value in values {
        match pairs.last_mut() {
            Some((v, c)) if *v == value => *c += 1,
            _ => pairs.push((value, 1)),
        }
    }
    TableIterator::once(histogram_rollup(&pairs))
}

/// The same from two histograms added together (either may be NULL): what the refresh stores
/// when it merges a batch's latencies into an hour's.
#[pg_extern(immutable, parallel_safe, schema = "kt_governance_internal")]
fn kt_histogram_rollup(
    a: Option<&[u8]>,
    b: Option<&[u8]>,
) -> TableIterator<
    'static,
    (
        name!(p50, Option<f64>),
        name!(p99, Option<f64>),
        name!(sketch, Option<Vec<u8>>),
        name!(histogram, Option<Vec<u8>>),
    ),
> {
    let (a, b) = (a.map(decode_histogram).unwrap_or_default(), b.map(decode_histogram).unwrap_or_default());
    TableIterator::once(histogram_rollup(&merge_pairs(&a, &b)))
}

/// Adds two exact histograms (the transition function of kt_histogram_merge_agg).
#[pg_extern(immutable, parallel_safe, schema = "kt_governance_internal")]
fn kt_histogram_merge(a: Option<&[u8]>, b: Option<&[u8]>) -> Option<Vec<u8>> {
    if a.is_none() && b.is_none() {
        return None;
    }
    let (a, b) = (a.map(decode_histogram).unwrap_or_default(), b.map(decode_histogram).unwrap_or_default());
    Some(encode_pairs_compact(merge_pairs(&a, &b).into_iter()))
}

/// Exact PERCENTILE_CONT(q) of the latencies a histogram counts (e.g. merged over a day).
#[pg_extern(immutable, parallel_safe, strict)]
fn kt_histogram_quantile(histogram: &[u8], q: f64) -> Option<f64> {
    check_quantile(q);
    histogram_percentile(&decode_histogram(histogram), q)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;

    #[pg_test]
    fn every_value_is_within_one_percent_of_its_bucket_value() {
        for v in [1.0, 2.0, 7.0, 35.0, 450.0, 999.0, 12_345.0, 3_600_000.0] {
            let got = bucket_value(bucket_of(v));
            assert!((got - v).abs() / v <= ALPHA + 1e-9, "{v} -> {got}");
        }
        assert_eq!(bucket_value(bucket_of(0.0)), 0.0);
    }

    #[pg_test]
    fn merging_equals_sketching_everything_at_once() {
        let a: Vec<Option<f64>> = (1..500).map(|v| Some(v as f64)).collect();
        let b: Vec<Option<f64>> = (400..2000).map(|v| Some(v as f64 * 1.5)).collect();
        let both: Vec<Option<f64>> = a.iter().chain(b.iter()).cloned().collect();
        let merged = kt_sketch_merge(Some(&kt_latency_sketch(a)), Some(&kt_latency_sketch(b))).unwrap();
        assert_eq!(merged, kt_latency_sketch(both));
        assert_eq!(kt_sketch_count(&merged), 499 + 1600);
    }

    #[pg_test]
    fn quantiles_match_exact_ranks_within_one_percent() {
        let values: Vec<f64> = (1..=10_000).map(|i| (i as f64).powf(1.3)).collect();
        let sketch = kt_latency_sketch(values.iter().map(|v| Some(*v)).collect());
        for q in [0.5, 0.9, 0.99] {
            let exact = values[((q * (values.len() - 1) as f64).round()) as usize];
            let got = kt_sketch_quantile(&sketch, q).unwrap();
            assert!((got - exact).abs() / exact <= 0.0101, "q{q}: {got} vs {exact}");
        }
    }

    #[pg_test]
    fn latency_summary_equals_percentile_cont_and_the_sketch() {
        let same = Spi::get_one::<bool>(
            "WITH v AS (SELECT CASE WHEN i % 97 = 0 THEN NULL ELSE (exp(random() * 8))::int END AS l
                        FROM generate_series(1, 5001) i),
                  s AS (SELECT * FROM kt_latency_summary((SELECT array_agg(l) FROM v)))
             SELECT s.p50 = percentile_cont(0.5) WITHIN GROUP (ORDER BY l)
                AND s.p99 = percentile_cont(0.99) WITHIN GROUP (ORDER BY l)
                AND s.sketch = kt_governance_internal.kt_latency_sketch(array_agg(l::float8))
             FROM v, s GROUP BY s.p50, s.p99, s.sketch",
        );
        assert_eq!(same, Ok(Some(true)));
        let empty = Spi::get_one::<bool>(
            "SELECT p50 IS NULL AND p99 IS NULL AND sketch IS NULL FROM kt_latency_summary(ARRAY[NULL]::int[])",
        );
        assert_eq!(empty, Ok(Some(true)));
    }

    #[pg_test]
    fn merged_histograms_give_percentile_cont_of_all_rows() {
        let same = Spi::get_one::<bool>(
            "WITH v AS (SELECT i, CASE WHEN i % 97 = 0 THEN NULL ELSE (exp(random() * 8))::int END AS l
                        FROM generate_series(1, 5001) i),
                  a AS (SELECT * FROM kt_governance_internal.kt_latency_rollup((SELECT array_agg(l) FROM v WHERE i % 3 = 0))),
                  b AS (SELECT * FROM kt_governance_internal.kt_latency_rollup((SELECT array_agg(l) FROM v WHERE i % 3 <> 0))),
                  m AS (SELECT s.* FROM a, b, kt_governance_internal.kt_histogram_rollup(a.histogram, b.histogram) s)
             SELECT m.p50 = percentile_cont(0.5) WITHIN GROUP (ORDER BY l)
                AND m.p99 = percentile_cont(0.99) WITHIN GROUP (ORDER BY l)
                AND kt_histogram_quantile(m.histogram, 0.9) = percentile_cont(0.9) WITHIN GROUP (ORDER BY l)
                AND m.sketch = kt_governance_internal.kt_latency_sketch(array_agg(l::float8))
                AND m.histogram = kt_governance_internal.kt_histogram_merge((SELECT histogram FROM a), (SELECT histogram FROM b))
             FROM v, m GROUP BY m.p50, m.p99, m.sketch, m.histogram",
        );
        assert_eq!(same, Ok(Some(true)));
        let empty = Spi::get_one::<bool>(
            "SELECT p50 IS NULL AND histogram IS NULL FROM kt_governance_internal.kt_histogram_rollup(NULL, NULL)",
        );
        assert_eq!(empty, Ok(Some(true)));
    }

    #[pg_test]
    #[should_panic(expected = "not a kt_governance latency histogram")]
    fn garbage_histograms_are_refused() {
        kt_histogram_quantile(&[2, 0x80], 0.5);
    }

    #[pg_test]
    fn histogram_encoding_round_trips_and_is_compact() {
        let pairs = vec![(0, 3), (1, 1), (7, 200), (450, 1), (3_600_000, 2)];
        let bytes = encode_pairs_compact(pairs.iter().copied());
        assert_eq!(decode_histogram(&bytes), pairs);
        assert!(bytes.len() <= 1 + 2 + 2 + 3 + 3 + 5, "{} bytes", bytes.len());
        assert_eq!(merge_pairs(&pairs, &[(1, 1), (2, 5)]), vec![(0, 3), (1, 2), (2, 5), (7, 200), (450, 1), (3_600_000, 2)]);
    }

    #[pg_test]
    #[should_panic(expected = "not a kt_governance latency sketch")]
    fn garbage_is_refused() {
        kt_sketch_quantile(&[9, 9, 9], 0.5);
    }
}
