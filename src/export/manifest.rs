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

    /// Paths of the data files an earlier manifest lists (None when it cannot be parsed).
    pub fn file_paths(bytes: &[u8]) -> Option<Vec<String>> {
        let document: Value = serde_json::from_slice(bytes).ok()?;
        let mut paths = Vec::new();
        for dataset in document.get("datasets")?.as_object()?.values() {
            for file in dataset.get("files")?.as_array()? {
                paths.push(file.get("path")?.as_str()?.to_string());
            }
        }
        Some(paths)
    }
}
