//! Keeping credentials out of error text.
//!
//! An S3 error carries the server's response body, and AWS-style bodies echo what was signed:
//! the access key id, the session token, the string to sign. Error text ends up in the client's
//! message, the server log, `kt_export_runs`, `kt_export_schedules.last_error_message` and
//! `kt_job_runs.message`, which readers can select. So every error text that may hold an S3 body
//! passes through `scrub` first: the keys this backend used are replaced wherever they appear,
//! and the body's credential-bearing elements and query parameters are blanked whatever they hold.

use std::cell::RefCell;

const REDACTED: &str = "[redacted]";

/// XML elements of AWS error bodies whose content is credential material.
const SECRET_ELEMENTS: [&str; 7] = [
    "AWSAccessKeyId",
    "StringToSign",
    "StringToSignBytes",
    "CanonicalRequest",
    "CanonicalRequestBytes",
    "SignatureProvided",
    "Token",
];

/// Query parameters and header fields (as they appear in echoed requests) that carry credentials.
const SECRET_PARAMETERS: [&str; 5] =
    ["X-Amz-Credential=", "X-Amz-Security-Token=", "X-Amz-Signature=", "Credential=", "Signature="];

thread_local! {
    static SECRETS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Notes credential values this backend is about to use, so error text never shows them.
pub fn remember_secrets(values: impl Iterator<Item = String>) {
    SECRETS.with(|s| {
        let mut s = s.borrow_mut();
        for v in values {
            // very short values would blank ordinary words; real keys are 16+ characters
            if v.len() >= 8 && !s.contains(&v) {
                s.push(v);
            }
        }
    });
}

/// The text with every known secret and every credential-bearing part of an S3 body blanked.
pub fn scrub(text: &str) -> String {
    let mut out = SECRETS.with(|s| s.borrow().iter().fold(text.to_string(), |t, secret| t.replace(secret.as_str(), REDACTED)));
    for element in SECRET_ELEMENTS {
        out = blank_elements(&out, element);
    }
    for parameter in SECRET_PARAMETERS {
        out = blank_values(&out, parameter);
    }
    out
}

/// `<name>anything</name>` becomes `<name>[redacted]</name>`.
fn blank_elements(text: &str, name: &str) -> String {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(&open) {
        let content = start + open.len();
        out.push_str(&rest[..content]);
        out.push_str(REDACTED);
        match rest[content..].find(&close) {
            Some(end) => rest = &rest[content + end..],
            None => return out, // a truncated body: drop the rest
        }
    }
    out.push_str(rest);
    out
}

/// `marker<value>` becomes `marker[redacted]`, the value ending at a delimiter.
fn blank_values(text: &str, marker: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(marker) {
        let value = start + marker.len();
        out.push_str(&rest[..value]);
        let end = rest[value..]
            .find(|c: char| c == '&' || c == '<' || c == '"' || c == '\'' || c == ',' || c.is_whitespace())
            .map_or(rest.len(), |e| value + e);
        if end > value {
            out.push_str(REDACTED);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_error_bodies_lose_their_credentials() {
        let body = "Client error with status 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>\
            <AWSAccessKeyId>AKIAEXAMPLEKEY123</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256\n20261201T000000Z\nabc</StringToSign>\
            <SignatureProvided>deadbeef</SignatureProvided><Token>FQoGZXIvYXdzEJr</Token></Error>";
        let clean = scrub(body);
        for secret in ["AKIAEXAMPLEKEY123", "AWS4-HMAC-SHA256", "deadbeef", "FQoGZXIvYXdzEJr"] {
            assert!(!clean.contains(secret), "{secret} left in {clean}");
        }
        assert!(clean.contains("SignatureDoesNotMatch") && clean.contains("403 Forbidden"));
    }

    #[test]
    fn echoed_urls_and_known_keys_are_blanked() {
        remember_secrets(["wJalrXUtnFEMI/K7MDENG".to_string(), "short".to_string()].into_iter());
        let text = "GET https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIAX%2F2026&X-Amz-Security-Token=IQoJb3&x=1 \
                    failed; secret wJalrXUtnFEMI/K7MDENG; a short word stays";
        let clean = scrub(text);
        assert!(!clean.contains("AKIAX") && !clean.contains("IQoJb3") && !clean.contains("wJalrXUtnFEMI"));
        assert!(clean.contains("x=1") && clean.contains("short word"));
    }

    #[test]
    fn a_truncated_body_keeps_nothing_after_the_open_element() {
        assert_eq!(scrub("<Error><AWSAccessKeyId>AKIAPARTIAL"), "<Error><AWSAccessKeyId>[redacted]");
    }
}
