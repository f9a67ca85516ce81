//! Parquet export of events and policy evaluations to a local directory or S3.
//!
//! Rows are read through a cursor ordered by time, so each Hive directory (year=/month=/day=)
//! is written as one file at a time and memory stays bounded by a row group. A file's name
//! derives from the export's manifest name (range, filter and options, or the schedule's run),
//! so a re-export of the same range writes the same names: each file is replaced whole, in one
//! step, and a loader that remembers file names never loads a day twice. The manifest (written
//! last) is the commit point; files its predecessor listed that the new run did not write are
//! removed after it.
//!
//! `sink` knows about destinations, `columns` about the datasets' columns and types,
//! `manifest` about the manifest document.

mod columns;
mod encoder;
mod manifest;
mod scrub;
mod sink;

use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::add_encoded_arrow_schema_to_metadata;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use std::cell::RefCell;
use std::path::PathBuf;

use encoder::Encoder;
use columns::{layout_micros, unix_micros, BatchBuilder, Dataset, EVALUATIONS, EVENTS};
use manifest::{FileEntry, Manifest};
use sink::Sink;

/// Rows fetched from the cursor at a time, and rows per Arrow batch handed to the writer.
const FETCH_ROWS: i64 = 10_000;
/// A NOTICE is raised every this many rows.
const PROGRESS_ROWS: u64 = 1_000_000;

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Day,
    Month,
}

impl Layout {
    fn parse(raw: &str) -> Layout {
        match raw {
            "day" => Layout::Day,
            "month" => Layout::Month,
            other => invalid(format!("unknown layout \"{other}\""), "Use 'day' or 'month'."),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Layout::Day => "day",
            Layout::Month => "month",
        }
    }

    /// Hive directory of an instant, e.g. `year=2026/month=4/day=15` (UTC), and the range
    /// [lo, hi) of instants (Unix microseconds) that share it.
    ///
    /// Values are unpadded integers: DuckDB, Polars, pyarrow and Spark all type `month=4` as an
    /// integer, while DuckDB typed `month=04` VARCHAR (so `WHERE month = 4` failed to bind and
    /// `WHERE month = '4'` matched nothing).
    fn directory(self, unix_us: i64) -> (String, i64, i64) {
        use chrono::{Datelike, NaiveDate};
        let t = chrono::DateTime::from_timestamp_micros(unix_us).expect("finite timestamps only");
        let micros = |d: NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros();
        match self {
            Layout::Day => {
                let lo = micros(t.date_naive());
                (format!("year={}/month={}/day={}", t.year(), t.month(), t.day()), lo, lo + 86_400_000_000)
            }
            Layout::Month => {
                let first = NaiveDate::from_ymd_opt(t.year(), t.month(), 1).expect("a valid month");
                let next = first.checked_add_months(chrono::Months::new(1)).expect("a next month");
                (format!("year={}/month={}", t.year(), t.month()), micros(first), micros(next))
            }
        }
    }
}

fn invalid(message: String, hint: &str) -> ! {
    sink::fail(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, hint)
}

fn compression(raw: &str) -> Compression {
    match raw {
        "zstd" => Compression::ZSTD(ZstdLevel::default()),
        "snappy" => Compression::SNAPPY,
        "none" => Compression::UNCOMPRESSED,
        other => invalid(format!("unknown compression \"{other}\""), "Use 'zstd' (default), 'snappy' or 'none'."),
    }
}

/// What to export; built from the SQL arguments.
struct Spec {
    start: TimestampWithTimeZone,
    end: TimestampWithTimeZone,
    start_us: i64,
    end_us: i64,
    /// "timestamp" (event time) or "created_at" (storage time, used by schedules)
    range_column: &'static str,
    codec: Compression,
    compression: String,
    row_group_size: usize,
    include_evaluations: bool,
    filter: [Option<String>; 3],
    layout: Layout,
    run_id: String,
    manifest_name: String,
}

/// Totals of one export.
#[derive(Default)]
struct Outcome {
    files: Vec<FileEntry>,
    events: i64,
    evaluations: i64,
}

fn check_privileges(local: bool) {
    let (admin, write_files) = Spi::get_two::<bool, bool>(
        "SELECT pg_catalog.pg_has_role(current_user, 'kt_governance_admin', 'USAGE'), \
                pg_catalog.pg_has_role(current_user, 'pg_write_server_files', 'USAGE')",
    )
    .expect("role check");
    if admin != Some(true) {
        crate::errors::raise_with_hint(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, "exporting events requires the kt_governance_admin role", "GRANT kt_governance_admin TO the exporting role.")
    }
    if local && write_files != Some(true) {
        crate::errors::raise_with_hint(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, "exporting to server files requires the pg_write_server_files role", "GRANT pg_write_server_files TO the exporting role, or export to s3://.")
    }
}

fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let salt = (now.timestamp_subsec_nanos() as u64) ^ ((std::process::id() as u64) << 20);
    format!("{}-{:06x}", now.format("%Y%m%dT%H%M%SZ"), salt & 0xff_ffff)
}

fn iso(unix_us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(unix_us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| unix_us.to_string())
}

fn finite_micros(name: &str, ts: TimestampWithTimeZone) -> i64 {
    if !ts.is_finite() {
        invalid(format!("{name} must be a finite timestamp"), "Give both ends of the range as real instants.");
    }
    unix_micros(ts)
}

/// The cursor query for one dataset; $1..$2 is the range, $3..$5 the optional filters.
fn dataset_query(schema: &str, ds: &Dataset, spec: &Spec) -> String {
    let schema = spi::quote_identifier(schema);
    let range = if spec.range_column == "created_at" { "created_at" } else { ds.layout_column };
    let filter = "($3::text IS NULL OR e.decision = $3) AND ($4::text IS NULL OR e.gateway_id = $4) \
                  AND ($5::text IS NULL OR e.team_id = $5)";
    let filter_sql = if ds.name == EVENTS.name {
        filter.replace("e.", "t.")
    } else {
        format!(
            "EXISTS (SELECT 1 FROM {schema}.ai_decision_events e \
             WHERE e.id = t.event_id AND e.\"timestamp\" = t.event_timestamp AND {filter})"
        )
    };
    let filter_sql = if spec.filter.iter().all(Option::is_none) { "true".to_string() } else { filter_sql };
    format!(
        "SELECT {cols} FROM {schema}.{table} t WHERE t.{range} >= $1 AND t.{range} < $2 AND {filter_sql} \
         ORDER BY t.{layout}",
        cols = ds.select_list(),
        table = ds.table,
        layout = ds.layout_column,
    )
}

/// The writer's name in the form parquet-java parses (`<app> version <x.y.z> (build <id>)`):
/// a `created_by` it cannot parse makes Spark, Hive, Flink and Trino distrust the min/max
/// statistics of string columns and lose filter pushdown on them.
fn created_by() -> String {
    format!("kt_governance version {} (build {})", env!("CARGO_PKG_VERSION"), env!("KT_BUILD_COMMIT"))
}

fn writer_properties(ds: &Dataset, spec: &Spec) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(spec.codec)
        .set_max_row_group_row_count(Some(spec.row_group_size))
        .set_created_by(created_by())
        .set_key_value_metadata(Some(vec![KeyValue::new("pandas".to_string(), ds.pandas_metadata())]));
    for column in ds.high_cardinality_columns() {
        props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    let mut props = props.build();
    add_encoded_arrow_schema_to_metadata(&ds.reader_schema(), &mut props);
    props
}

/// One Parquet file being written to its staging path.
struct OpenFile {
    /// instants [lo, hi) that belong in this file's directory
    lo_us: i64,
    hi_us: i64,
    staged: Staged,
    encoder: Encoder,
}

/// A finished file waiting to be published.
struct Staged {
    relative: String,
    path: PathBuf,
    rows: i64,
    min_us: i64,
    max_us: i64,
}

/// What an export has put on disk or in the bucket so far; whatever is still listed when the
/// export ends without committing is removed, so a failed call leaves no data file behind.
#[derive(Default)]
struct Leftovers {
    staged: Vec<PathBuf>,
    published: Vec<String>,
}

impl Leftovers {
    fn discard(&mut self, sink: &Sink) {
        for path in self.staged.drain(..) {
            let _ = std::fs::remove_file(path);
        }
        for relative in self.published.drain(..) {
            sink.remove_quietly(&relative);
        }
    }

    fn forget(&mut self) {
        self.staged.clear();
        self.published.clear();
    }
}

/// The file of one Hive directory of one dataset: the same name whenever the same range, filter
/// and options (or the same scheduled run) are exported again.
fn file_name(ds: &Dataset, spec: &Spec, directory: &str) -> String {
    format!("{}/{directory}/part-{}.parquet", ds.name, spec.manifest_name)
}

fn open_file(sink: &Sink, ds: &Dataset, spec: &Spec, at_us: i64, left: &RefCell<Leftovers>) -> OpenFile {
    let (directory, lo_us, hi_us) = spec.layout.directory(at_us);
    let relative = file_name(ds, spec, &directory);
    let path = sink.staging_path(&relative, &spec.run_id);
    left.borrow_mut().staged.push(path.clone());
    let file = sink.create_staged(&path);
    // the writer's own ARROW:schema would carry the JSON extension type; writer_properties
    // stores the reader schema instead
    let options = ArrowWriterOptions::new().with_properties(writer_properties(ds, spec)).with_skip_arrow_metadata(true);
    let encoder = Encoder::start(file, ds.schema(), options).unwrap_or_else(|e| sink::io_fail("starting a Parquet file", e));
    let staged = Staged { relative, path, rows: 0, min_us: i64::MAX, max_us: i64::MIN };
    OpenFile { lo_us, hi_us, staged, encoder }
}

fn close_file(mut open: OpenFile, batch: &mut BatchBuilder) -> Staged {
    write_batch(&mut open, batch);
    open.encoder.finish().unwrap_or_else(|e| sink::io_fail("finishing a Parquet file", e));
    open.staged
}

fn write_batch(open: &mut OpenFile, batch: &mut BatchBuilder) {
    if batch.rows() > 0 {
        let records = batch.take();
        open.encoder.write(records).unwrap_or_else(|e| sink::io_fail("writing Parquet", e));
    }
}

/// Streams one dataset into staged Parquet files, one per Hive directory; returns them.
fn stage_dataset(
    sink: &Sink,
    schema: &str,
    ds: &Dataset,
    spec: &Spec,
    left: &RefCell<Leftovers>,
) -> Vec<Staged> {
    let sql = dataset_query(schema, ds, spec);
    let args = [
        spec.start.into(),
        spec.end.into(),
        spec.filter[0].clone().into(),
        spec.filter[1].clone().into(),
        spec.filter[2].clone().into(),
    ];
    let mut files: Vec<Staged> = Vec::new();
    let mut total: u64 = 0;
    let width = ds.fetched_columns();
    let mut values = vec![pg_sys::Datum::from(0usize); width];
    let mut nulls = vec![false; width];
    Spi::connect(|client| {
        let mut cursor = client.open_cursor(sql.as_str(), &args);
        let mut batch = BatchBuilder::new(ds);
        let mut current: Option<OpenFile> = None;
        loop {
            let fetched = cursor.fetch(FETCH_ROWS).expect("fetching rows to export");
            if fetched.is_empty() {
                break;
            }
            // the fetch above filled SPI_tuptable; `fetched` keeps it alive while we read it
            let table = unsafe { &*pg_sys::SPI_tuptable };
            assert_eq!(unsafe { (*table.tupdesc).natts } as usize, width, "cursor columns");
            for i in 0..table.numvals as usize {
                unsafe {
                    pg_sys::heap_deform_tuple(*table.vals.add(i), table.tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr())
                };
                let at = layout_micros(&values);
                if current.as_ref().map(|f| at < f.lo_us || at >= f.hi_us).unwrap_or(true) {
                    if let Some(done) = current.take() {
                        files.push(close_file(done, &mut batch));
                    }
                    current = Some(open_file(sink, ds, spec, at, left));
                }
                let open = current.as_mut().expect("a file is open");
                batch.append_datums(&values, &nulls);
                let staged = &mut open.staged;
                staged.rows += 1;
                staged.min_us = staged.min_us.min(at);
                staged.max_us = staged.max_us.max(at);
                if batch.rows() >= FETCH_ROWS as usize {
                    write_batch(open, &mut batch);
                }
                total += 1;
                if total % PROGRESS_ROWS == 0 {
                    notice!("kt_export: {total} {} rows staged so far", ds.name);
                }
            }
            drop(fetched);
            // SPI keeps every fetched batch until disconnect unless it is freed: without this
            // the backend would hold the whole range in memory
            unsafe { pg_sys::SPI_freetuptable(table as *const pg_sys::SPITupleTable as *mut _) };
            check_for_interrupts!();
        }
        if let Some(done) = current.take() {
            files.push(close_file(done, &mut batch));
        }
    });
    files
}

/// Publishes staged files one by one (each becomes visible whole, in one step).
///
/// A file that replaces one the previous manifest listed is not removed if the export fails
/// later: the old content is gone already, and the new file holds that directory's rows once,
/// which is what a reader of the whole prefix needs. A file new to the destination is removed.
fn publish_all(sink: &Sink, staged: Vec<Staged>, previous: &[String], left: &RefCell<Leftovers>) -> Vec<FileEntry> {
    staged
        .into_iter()
        .map(|f| {
            let published = sink.publish(&f.path, &f.relative);
            let mut l = left.borrow_mut();
            l.staged.retain(|p| p != &f.path);
            if !previous.contains(&f.relative) {
                l.published.push(f.relative.clone());
            }
            drop(l);
            check_for_interrupts!();
            FileEntry {
                path: f.relative,
                rows: f.rows,
                bytes: published.bytes,
                sha256: published.sha256,
                min_time: iso(f.min_us),
                max_time: iso(f.max_us),
            }
        })
        .collect()
}

fn manifest_path(spec: &Spec) -> String {
    format!("_manifests/{}.json", spec.manifest_name)
}

/// The role the export runs as (the caller, the schedule's creator, or for retention's
/// archives the extension owner): it is recorded in the manifest.
fn acting_role() -> String {
    Spi::get_one::<String>("SELECT pg_catalog.current_user()::pg_catalog.text")
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// A manifest is replaced, and the files it lists removed, only by the role that wrote it or a
/// superuser: an admin re-using a retention archive's manifest name used to empty the archive.
/// Checked before anything is written.
fn refuse_foreign_manifest(sink: &Sink, spec: &Spec, destination: &str, me: &str) {
    let Some(bytes) = sink.read_small(&manifest_path(spec)) else { return };
    let previous = Manifest::previous(&bytes, destination);
    let Some(owner) = previous.created_by.filter(|_| previous.ours) else { return };
    if owner != me && !unsafe { pg_sys::superuser() } {
        crate::errors::raise_with_hint(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, format!("export: manifest \"{}\" in {destination} was written by {owner}; only {owner} or a superuser may replace it", spec.manifest_name), "Choose another destination, or another filter or range (the manifest name derives from them).")
    }
}

/// The data files the manifest this export replaces lists (none when there is none).
fn previous_files(sink: &Sink, spec: &Spec, destination: &str) -> Vec<String> {
    sink.read_small(&manifest_path(spec)).map(|bytes| Manifest::previous(&bytes, destination).paths).unwrap_or_default()
}

/// Publishes the manifest, then removes the files of the manifest it replaces that this export
/// did not write again.
fn commit(sink: &Sink, spec: &Spec, destination: &str, outcome: &Outcome, previous: &[String], me: &str) -> String {
    let relative = manifest_path(spec);
    let document = Manifest {
        run_id: &spec.run_id,
        destination,
        range_column: spec.range_column,
        start: iso(spec.start_us),
        end: iso(spec.end_us),
        filter: &spec.filter,
        compression: &spec.compression,
        row_group_size: spec.row_group_size,
        layout: spec.layout.name(),
        files: &outcome.files,
        events: outcome.events,
        evaluations: outcome.evaluations,
        created_by: me,
    };
    sink.write_small(&relative, &document.to_json(), &spec.run_id);
    for old in previous {
        if !outcome.files.iter().any(|f| &f.path == old) {
            sink.remove(old);
        }
    }
    sink.url(&relative)
}

/// Stages both datasets, publishes the files, then commits the manifest.
fn run_export(sink: &Sink, schema: &str, spec: &Spec, destination: &str, left: &RefCell<Leftovers>) -> (Outcome, String) {
    let mut staged = stage_dataset(sink, schema, &EVENTS, spec, left);
    let events: i64 = staged.iter().map(|f| f.rows).sum();
    let mut evaluations = 0;
    if spec.include_evaluations {
        let more = stage_dataset(sink, schema, &EVALUATIONS, spec, left);
        evaluations = more.iter().map(|f| f.rows).sum();
        staged.extend(more);
    }
    let previous = previous_files(sink, spec, destination);
    let outcome = Outcome { files: publish_all(sink, staged, &previous, left), events, evaluations };
    let manifest = commit(sink, spec, destination, &outcome, &previous, &acting_role());
    left.borrow_mut().forget();
    (outcome, manifest)
}

fn default_manifest_name(spec: &Spec) -> String {
    use sha2::{Digest, Sha256};
    let identity = format!(
        "{}|{:?}|{}|{}",
        spec.range_column,
        spec.filter,
        spec.include_evaluations,
        spec.layout.name()
    );
    let hash: String = Sha256::digest(identity.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect();
    let compact = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .map(|t| t.format("%Y%m%dT%H%M%S%.6fZ").to_string().replace('.', ""))
            .unwrap_or_default()
    };
    format!("export_{}_{}_{hash}", compact(spec.start_us), compact(spec.end_us))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 200 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && !name.starts_with('.')
}

/// The export behind kt_export_events() and the export schedules.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, schema = "kt_governance_internal")]
#[search_path(pg_catalog, kt_governance_internal, pg_temp)]
fn kt_export_range(
    destination: &str,
    start_time: TimestampWithTimeZone,
    end_time: TimestampWithTimeZone,
    range_column: default!(&str, "'timestamp'"),
    compression: default!(&str, "'zstd'"),
    row_group_size: default!(i32, 122880),
    include_evaluations: default!(bool, true),
    decision: default!(Option<String>, "NULL"),
    gateway_id: default!(Option<String>, "NULL"),
    team_id: default!(Option<String>, "NULL"),
    layout: default!(&str, "'day'"),
    manifest_name: default!(Option<String>, "NULL"),
    run_id: default!(Option<String>, "NULL"),
    run_as: default!(Option<String>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(files_written, i32),
        name!(events_exported, i64),
        name!(evaluations_exported, i64),
        name!(bytes_written, i64),
        name!(manifest, String),
    ),
> {
    // a schedule's run exports as the role that made the schedule: its privileges and its
    // row-level security policies, not the worker's superuser
    // Names of files and manifests are the extension's to choose: an admin naming a run id could
    // overwrite another run's files. Retention and the export job (as superuser) pass them.
    if (manifest_name.is_some() || run_id.is_some()) && !unsafe { pg_sys::superuser() } {
        crate::errors::raise_with_hint(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, "manifest_name and run_id are chosen by kt_governance's export job and retention", "Call kt_export_events(), which names its files itself.")
    }
    let acting = run_as.as_deref().map(crate::owner::act_as);
    check_privileges(sink::is_local(destination));

    let start_us = finite_micros("start_time", start_time);
    let end_us = finite_micros("end_time", end_time);
    if start_us >= end_us {
        invalid(format!("start_time {} is not before end_time {}", iso(start_us), iso(end_us)), "Give a non-empty range.");
    }
    if !(1..=10_000_000).contains(&row_group_size) {
        invalid(format!("row_group_size {row_group_size} is out of range"), "Use 1 to 10000000 rows.");
    }
    let range_column = match range_column {
        "timestamp" => "timestamp",
        "created_at" => "created_at",
        other => invalid(format!("unknown range_column \"{other}\""), "Use 'timestamp' or 'created_at'."),
    };
    let mut spec = Spec {
        start: start_time,
        end: end_time,
        start_us,
        end_us,
        range_column,
        codec: self::compression(compression),
        compression: compression.to_string(),
        row_group_size: row_group_size as usize,
        include_evaluations,
        filter: [decision, gateway_id, team_id],
        layout: Layout::parse(layout),
        run_id: run_id.unwrap_or_else(new_run_id),
        manifest_name: String::new(),
    };
    spec.manifest_name = manifest_name.unwrap_or_else(|| default_manifest_name(&spec));
    for (what, name) in [("manifest_name", &spec.manifest_name), ("run_id", &spec.run_id)] {
        if !valid_name(name) {
            invalid(format!("{what} \"{name}\" is not a plain file name"), "Use letters, digits, '_', '-' and '.'.");
        }
    }
    let sink = Sink::open(destination);
    sink.probe(&spec.run_id);
    refuse_foreign_manifest(&sink, &spec, destination, &acting_role());
    let schema = crate::extension_schema().expect("kt_export_range belongs to the extension");
    let left = RefCell::new(Leftovers::default());
    // the closure only borrows; nothing it touches is observed half-updated after an error
    let body = std::panic::AssertUnwindSafe(|| run_export(&sink, &schema, &spec, destination, &left));
    let (outcome, manifest) = PgTryBuilder::new(body)
        .finally(|| left.borrow_mut().discard(&sink))
        .execute();
    let bytes: u64 = outcome.files.iter().map(|f| f.bytes).sum();
    notice!(
        "kt_export: {} events, {} evaluations in {} files ({} bytes); manifest {manifest}",
        outcome.events,
        outcome.evaluations,
        outcome.files.len(),
        bytes
    );
    if let Some(acting) = acting {
        acting.restore();
    }
    TableIterator::once((outcome.files.len() as i32, outcome.events, outcome.evaluations, bytes as i64, manifest))
}
