//! Splits a kt_ingest batch into its records and screens each record's raw JSON before it is
//! parsed, so that no record's content can fail the batch.
//!
//! What a JSON parser or PostgreSQL would refuse for the whole document is found here per
//! record, with the field it sits in: numbers beyond a double (`1e400`, valid jsonb), `\u0000`
//! (which neither text nor jsonb can hold), nesting deeper than `MAX_DEPTH`, and keys given
//! twice. The scan is iterative (no recursion, so no input can exhaust the stack) and writes a
//! sanitized copy of the record that serde_json and jsonb both accept: out-of-range numbers
//! become strings, `\u0000` becomes the six characters `\u0000`. Problems in fields the loader
//! ignores are not problems: those fields are ignored whatever they hold.

use crate::Problem;

/// Deepest nesting a record may have (serde_json refuses the whole document beyond 128).
pub const MAX_DEPTH: usize = 64;

/// The top-level fields kt_ingest reads; anything else is counted as unknown and ignored.
pub const KNOWN_FIELDS: &[&str] = &[
    "id",
    "timestamp",
    "decision",
    "verdict",
    "model",
    "provider",
    "gateway_id",
    "user_id",
    "team_id",
    "input_tokens",
    "prompt_tokens",
    "output_tokens",
    "completion_tokens",
    "usage",
    "cost_usd",
    "latency_ms",
    "request_source",
    "batch_id",
    "policies_evaluated",
    "policy_evaluations",
];

/// Fields whose numbers are read as their exact text: ids and names (a JSON number is kept as
/// written, where a double would round 123456789012345678901234 and collide with another id), the
/// cost (0.10000000000000000001 is refused, not stored as 0.1) and the token counts
/// (3.0000000000000001 is not a whole number). Token counts may also sit under `usage`.
const TEXT_FIELDS: &[&str] = &["id", "model", "provider", "gateway_id", "user_id", "team_id", "request_source", "batch_id"];
const TOKEN_FIELDS: &[&str] = &["input_tokens", "prompt_tokens", "output_tokens", "completion_tokens"];

fn exact_field(key: &str) -> bool {
    key == "cost_usd" || TEXT_FIELDS.contains(&key) || TOKEN_FIELDS.contains(&key)
}

pub fn known_field(key: &str) -> Option<&'static str> {
    KNOWN_FIELDS.iter().copied().find(|k| *k == key)
}

/// The records of a batch: the elements of a top-level array, or the document itself. Errs
/// (for the whole batch) only when the document is not JSON at all.
pub fn split_records(doc: &str) -> Result<Vec<&str>, String> {
    let bytes = doc.as_bytes();
    let start = skip_ws(bytes, 0);
    if start >= bytes.len() {
        return Err("the document is empty".into());
    }
    if bytes[start] != b'[' {
        let end = value_end(bytes, start)?;
        expect_end(bytes, end)?;
        return Ok(vec![&doc[start..end]]);
    }
    let mut records = Vec::new();
    let mut at = skip_ws(bytes, start + 1);
    if bytes.get(at) == Some(&b']') {
        expect_end(bytes, at + 1)?;
        return Ok(records);
    }
    loop {
        let end = value_end(bytes, at)?;
        records.push(&doc[at..end]);
        at = skip_ws(bytes, end);
        match bytes.get(at) {
            Some(b',') => at = skip_ws(bytes, at + 1),
            Some(b']') => {
                expect_end(bytes, at + 1)?;
                return Ok(records);
            }
            _ => return Err(format!("expected ',' or ']' at byte {at}")),
        }
    }
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

fn expect_end(bytes: &[u8], at: usize) -> Result<(), String> {
    let at = skip_ws(bytes, at);
    if at == bytes.len() { Ok(()) } else { Err(format!("unexpected text after the JSON value at byte {at}")) }
}

/// End (exclusive) of the JSON value starting at `at`: strings and brackets are followed with a
/// depth counter; the value's own syntax is checked later, by the parser, per record.
fn value_end(bytes: &[u8], at: usize) -> Result<usize, String> {
    match bytes.get(at) {
        None => Err("the document ends where a value was expected".into()),
        Some(b'"') => string_end(bytes, at),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = at;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            Err("the document ends inside a value".into())
        }
        Some(_) => {
            let mut i = at;
            while i < bytes.len() && !matches!(bytes[i], b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            }
            if i == at { Err(format!("expected a value at byte {at}")) } else { Ok(i) }
        }
    }
}

/// Index just past the closing quote of the string opening at `at`.
fn string_end(bytes: &[u8], at: usize) -> Result<usize, String> {
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(format!("the string at byte {at} is not closed"))
}

/// A record's sanitized text and the first problem found in a field kt_ingest reads.
pub struct Screened {
    pub text: String,
    pub problem: Option<Problem>,
}

enum Frame {
    /// an object; `expect_key` is true where the next string is a key; its keys so far (a hash
    /// set: a record may hold hundreds of thousands of keys)
    Object { expect_key: bool, keys: std::collections::HashSet<String> },
    Array,
}

/// The text of a JSON string literal (quotes included): parsed only when it holds an escape.
fn key_text(literal: &str) -> String {
    if literal.contains('\\') {
        serde_json::from_str::<String>(literal).unwrap_or_default()
    } else {
        literal[1..literal.len() - 1].to_string()
    }
}

/// Screens one record (see the module comment).
pub fn screen(record: &str) -> Screened {
    let bytes = record.as_bytes();
    let mut out = String::with_capacity(record.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut problem: Option<Problem> = None;
    // the top-level key whose value is being read
    let mut top_key: Option<String> = None;
    // inside the top-level `usage` object: the key whose value is being read
    let mut usage_key: Option<String> = None;
    // the first problem in a field kt_ingest reads (None: a field it ignores)
    let note = |field: Option<&str>, reason: String, problem: &mut Option<Problem>| {
        if let (None, Some(field)) = (problem.as_ref(), field.and_then(known_field)) {
            // (a reason may quote the record, whose raw NULs text cannot hold)
            *problem = Some(Problem { field, reason: reason.replace('\0', "\\u0000") });
        }
    };
    let mut i = 0;
    let mut copied = 0; // bytes before `copied` are in `out`
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let Ok(end) = string_end(bytes, i) else { break };
                let is_key = matches!(stack.last(), Some(Frame::Object { expect_key: true, .. }));
                let literal = &record[i..end];
                let escaped = escape_nul(literal);
                if escaped != literal {
                    out.push_str(&record[copied..i]);
                    out.push_str(&escaped);
                    copied = end;
                    // (a key holding NUL is no key kt_ingest reads)
                    let field = if is_key { None } else { top_key.as_deref() };
                    note(field, "contains \\u0000 (NUL), which PostgreSQL cannot store in text or jsonb".into(), &mut problem);
                }
                if is_key {
                    let depth = stack.len();
                    let key = key_text(&escaped);
                    if let Some(Frame::Object { expect_key, keys }) = stack.last_mut() {
                        *expect_key = false;
                        // a key given twice, at any depth of a field kt_ingest reads (a parser
                        // would silently keep one of the values)
                        if !keys.insert(key.clone()) {
                            if depth == 1 {
                                note(Some(&key), "appears more than once in the record".into(), &mut problem);
                            } else {
                                let reason = format!("holds the key \"{}\" more than once in one object", shorten(&key));
                                note(top_key.as_deref(), reason, &mut problem);
                            }
                        }
                    }
                    if depth == 1 {
                        top_key = Some(key);
                    } else if depth == 2 && top_key.as_deref() == Some("usage") {
                        usage_key = Some(key);
                    }
                }
                i = end;
            }
            b'{' | b'[' => {
                stack.push(if bytes[i] == b'{' {
                    Frame::Object { expect_key: true, keys: Default::default() }
                } else {
                    Frame::Array
                });
                if stack.len() > MAX_DEPTH && problem.is_none() {
                    // refused even in an ignored field: the record cannot be parsed safely at all
                    let field = top_key.as_deref().and_then(known_field).unwrap_or("record");
                    problem = Some(Problem { field, reason: format!("nests deeper than {MAX_DEPTH} levels") });
                }
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                i += 1;
            }
            b',' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = true;
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len() && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                let number = &record[start..i];
                let exact = match stack.len() {
                    1 => top_key.as_deref().is_some_and(exact_field),
                    2 => top_key.as_deref() == Some("usage") && usage_key.as_deref().is_some_and(|k| TOKEN_FIELDS.contains(&k)),
                    _ => false,
                };
                // (what is no JSON number is left for the parser to refuse, not made a string)
                let valid = is_json_number(number);
                let finite = number.parse::<f64>().is_ok_and(f64::is_finite);
                if valid && (exact || !finite) {
                    // kept as the string of its text, which the exact fields read exactly
                    out.push_str(&record[copied..start]);
                    out.push('"');
                    out.push_str(number);
                    out.push('"');
                    copied = i;
                }
                // (a text field takes any number's text; amounts and counts must be doubles)
                let text_field = stack.len() == 1 && top_key.as_deref().is_some_and(|k| TEXT_FIELDS.contains(&k));
                if valid && !finite && !text_field {
                    note(top_key.as_deref(), format!("holds the number {}, beyond the range of double precision", shorten(number)), &mut problem);
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&record[copied..]);
    Screened { text: out, problem }
}

/// Whether a token is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    match digits(&mut i) {
        0 => return false,
        n if n > 1 && b[int_start] == b'0' => return false,
        _ => {}
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// At most 40 characters of a value quoted in an error message (jsonb writes 1e400 as 401 digits).
pub fn shorten(text: &str) -> String {
    if text.chars().count() <= 40 {
        return text.to_string();
    }
    let head: String = text.chars().take(32).collect();
    format!("{head}... ({} characters)", text.chars().count())
}

/// `\u0000` escapes in a JSON string literal turned into the text `\u0000` (an escaped
/// backslash), which both serde_json and jsonb take.
fn escape_nul(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() + 8);
    let mut chars = literal.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c == '\\' {
            if literal[at..].starts_with("\\u0000") {
                out.push_str("\\\\u0000");
                for _ in 0..5 {
                    chars.next();
                }
                continue;
            }
            out.push(c);
            if let Some((_, next)) = chars.next() {
                out.push(next);
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_arrays_and_single_records() {
        assert_eq!(split_records(r#" [ {"a": [1, "]"]}, 2 , "x,y" ] "#).unwrap(), vec![r#"{"a": [1, "]"]}"#, "2", r#""x,y""#]);
        assert_eq!(split_records(r#"{"id": "a"}"#).unwrap(), vec![r#"{"id": "a"}"#]);
        assert_eq!(split_records("[]").unwrap(), Vec::<&str>::new());
        assert!(split_records(r#"[{"a": 1}"#).is_err());
        assert!(split_records(r#"{"a": 1} x"#).is_err());
    }

    #[test]
    fn huge_numbers_in_read_fields_are_problems_elsewhere_ignored() {
        let s = screen(r#"{"id": "a", "latency_ms": 1e400}"#);
        assert_eq!(s.problem.as_ref().map(|p| p.field), Some("latency_ms"));
        assert_eq!(s.text, r#"{"id": "a", "latency_ms": "1e400"}"#);
        let s = screen(r#"{"id": "a", "extra": -1e999, "nested": {"latency_ms": 1e400}}"#);
        assert!(s.problem.is_none());
        assert!(serde_json::from_str::<serde_json::Value>(&s.text).is_ok());
    }

    #[test]
    fn numbers_in_exact_fields_keep_their_text() {
        let s = screen(r#"{"id": 123456789012345678901234, "cost_usd": 0.10000000000000000001, "usage": {"input_tokens": 3.0000000000000001}, "latency_ms": 4.5, "x": 1}"#);
        assert!(s.problem.is_none());
        assert_eq!(
            s.text,
            r#"{"id": "123456789012345678901234", "cost_usd": "0.10000000000000000001", "usage": {"input_tokens": "3.0000000000000001"}, "latency_ms": 4.5, "x": 1}"#
        );
        // what is not a JSON number stays for the parser to refuse
        for junk in ["1-2", "01", "1.", "-", "1e", ".5", "1e+"] {
            assert!(!is_json_number(junk), "{junk}");
            assert!(serde_json::from_str::<serde_json::Value>(&screen(&format!(r#"{{"id": {junk}}}"#)).text).is_err(), "{junk}");
        }
        for number in ["0", "-0", "10", "1.5", "1e5", "1E-5", "-0.0e+0"] {
            assert!(is_json_number(number), "{number}");
        }
    }

    #[test]
    fn nul_duplicates_and_depth() {
        let s = screen(r#"{"id": "a\u0000b"}"#);
        assert_eq!(s.problem.as_ref().map(|p| p.field), Some("id"));
        assert_eq!(serde_json::from_str::<serde_json::Value>(&s.text).unwrap()["id"], "a\\u0000b");
        let s = screen(r#"{"id": "a", "model": "m", "id": "b"}"#);
        assert_eq!(s.problem.as_ref().map(|p| (p.field, p.reason.as_str())), Some(("id", "appears more than once in the record")));
        let deep = format!(r#"{{"id": "a", "x": {}{}}}"#, "[".repeat(100), "]".repeat(100));
        assert_eq!(screen(&deep).problem.map(|p| p.field), Some("record"));
        assert!(screen(r#"{"id": "a", "usage": {"input_tokens": 3}}"#).problem.is_none());
        // nested: in a field kt_ingest reads, named by that field; in an ignored one, ignored
        let s = screen(r#"{"id": "a", "usage": {"input_tokens": 3, "input_tokens": 4}}"#);
        assert_eq!(s.problem.map(|p| (p.field, p.reason)), Some(("usage", r#"holds the key "input_tokens" more than once in one object"#.into())));
        let s = screen(r#"{"id": "a", "policies_evaluated": [{"name": "x", "n\u0061me": "y"}]}"#);
        assert_eq!(s.problem.map(|p| p.field), Some("policies_evaluated"));
        assert!(screen(r#"{"id": "a", "extra": {"k": 1, "k": 2}, "usage": [{"k": 1}, {"k": 2}]}"#).problem.is_none());
    }
}
