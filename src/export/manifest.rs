//! The manifest: one JSON document per export, written last. Readers that follow it see
//! exactly one copy of every exported row, whatever superseded files are still being removed.

use serde_json::{json, Value};

use super::columns::SCHEMA_VERSION;

/// One published data file, as listed in the manifest.
pub struct FileEntry {
    /// path relative to the destination
    pub path: String,
    pub rows: i64,
    pub bytes: u64,
    pub sha256: String,
    pub min_time: String,
    pub max_time: String,
}

pub struct Manifest<'a> {
    pub run_id: &'a str,
    pub destination: &'a str,
    pub range_column: &'a str,
    pub start: String,
    pub end: String,
    pub filter: &'a [Option<String>; 3],
    pub compression: &'a str,
    pub row_group_size: usize,
    pub layout: &'a str,
    pub files: &'a [FileEntry],
    pub events: i64,
    pub evaluations: i64,
    /// session user that ran the export: only that role (or a superuser) may replace it
    pub created_by: &'a str,
}

/// What a previous manifest under the same name says, as far as it can be trusted.
pub struct Previous {
    /// the data files it lists that this extension could have written in this destination:
    /// `<dataset>/<hive directories>/part-<run>-<seq>.parquet`, plain relative segments only
    pub paths: Vec<String>,
    /// who wrote it (None for a manifest without the field, or not written by kt_governance)
    pub created_by: Option<String>,
    /// whether kt_governance wrote it for this destination
    pub ours: bool,
}

impl Manifest<'_> {
    fn dataset(&self, name: &str, rows: i64) -> Value {
        let prefix = format!("{name}/");
        let files: Vec<Value> = self
            .files
            .iter()
            .filter(|f| f.path.starts_with(&prefix))
            .map(|f| {
                json!({"path": f.path, "rows": f.rows, "bytes": f.bytes, "sha256": f.sha256,
                       "min_time": f.min_time, "max_time": f.max_time})
            })
            .collect();
        json!({"rows": rows, "files": files})
    }

    pub fn to_json(&self) -> Vec<u8> {
        let [decision, gateway_id, team_id] = self.filter;
        let document = json!({
            "schema_version": SCHEMA_VERSION,
            "producer": format!("kt_governance {}", env!("CARGO_PKG_VERSION")),
            "created_by": self.created_by,
            "run_id": self.run_id,
            "exported_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "destination": self.destination,
            "range": {"column": self.range_column, "start": self.start, "end": self.end, "end_exclusive": true},
            "filter": {"decision": decision, "gateway_id": gateway_id, "team_id": team_id},
            "compression": self.compression,
            "row_group_size": self.row_group_size,
            "layout": self.layout,
            "datasets": {
                "events": self.dataset("events", self.events),
                "policy_evaluations": self.dataset("policy_evaluations", self.evaluations),
            },
        });
        serde_json::to_vec_pretty(&document).expect("a JSON value serializes")
    }

    /// Reads an earlier manifest. Its files are removed once the new manifest is published, so
    /// only names this extension writes are trusted: a planted manifest listing `../../x` or an
    /// absolute path used to make a re-run delete files outside the destination.
    pub fn previous(bytes: &[u8], destination: &str) -> Previous {
        let untrusted = Previous { paths: Vec::new(), created_by: None, ours: false };
        let Ok(document) = serde_json::from_slice::<Value>(bytes) else { return untrusted };
        let ours = document.get("producer").and_then(Value::as_str).is_some_and(|p| p.starts_with("kt_governance "))
            && document.get("destination").and_then(Value::as_str) == Some(destination);
        if !ours {
            return untrusted;
        }
        let mut paths = Vec::new();
        let datasets = document.get("datasets").and_then(Value::as_object);
        for (name, dataset) in datasets.into_iter().flatten() {
            let files = dataset.get("files").and_then(Value::as_array);
            for path in files.into_iter().flatten().filter_map(|f| f.get("path").and_then(Value::as_str)) {
                if is_data_file_of(path, name) {
                    paths.push(path.to_string());
                }
            }
        }
        let created_by = document.get("created_by").and_then(Value::as_str).map(str::to_string);
        Previous { paths, created_by, ours }
    }
}

/// `events/...` or `policy_evaluations/...`, then plain directory names, then a part file name.
fn is_data_file_of(path: &str, dataset: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    let plain = |s: &&str| {
        !s.is_empty() && *s != "." && *s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-=.".contains(c))
    };
    segments.len() >= 2
        && matches!(dataset, "events" | "policy_evaluations")
        && segments[0] == dataset
        && segments.iter().all(plain)
        && segments.last().is_some_and(|f| f.starts_with("part-") && f.ends_with(".parquet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(destination: &str, paths: &[&str]) -> Vec<u8> {
        let files: Vec<Value> = paths.iter().map(|p| json!({"path": p})).collect();
        serde_json::to_vec(&json!({"producer": "kt_governance 0.9.0", "destination": destination, "created_by": "alice",
                                   "datasets": {"events": {"files": files}}}))
        .unwrap()
    }

    #[test]
    fn only_plain_part_files_of_the_dataset_are_trusted() {
        let bytes = manifest(
            "s3://b/p",
            &["events/day=2026-01-01/part-r-00000.parquet", "../../etc/passwd", "/var/lib/postgresql/x",
              "events/../../x/part-1.parquet", "events/./part-1.parquet", "policy_evaluations/part-1.parquet",
              "events/day=2026-01-01/notes.txt", "events//part-2.parquet"],
        );
        let previous = Manifest::previous(&bytes, "s3://b/p");
        assert_eq!(previous.paths, vec!["events/day=2026-01-01/part-r-00000.parquet"]);
        assert_eq!(previous.created_by.as_deref(), Some("alice"));
    }

    #[test]
    fn a_manifest_for_another_destination_or_producer_is_not_ours() {
        let bytes = manifest("s3://other/p", &["events/part-1.parquet"]);
        assert!(!Manifest::previous(&bytes, "s3://b/p").ours);
        assert!(Manifest::previous(&bytes, "s3://b/p").paths.is_empty());
        assert!(!Manifest::previous(b"not json", "s3://b/p").ours);
    }
}
