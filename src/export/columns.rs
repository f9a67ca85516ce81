//! The two exported datasets (events, policy evaluations) as Arrow schemas, and the builders
//! that turn SPI rows into Arrow record batches.
//!
//! Types are chosen so warehouses load the files without options: timestamps are INT64
//! microseconds adjusted to UTC, cost_usd is DECIMAL(12,6) (stored as INT64), integers are
//! INT32/INT64, text is UTF8, and `details` is a JSON-annotated string. The SQL side hands over
//! cheap values (cost as micro-dollars in a bigint, details as text) so no numeric or jsonb is
//! converted in Rust.

use arrow_array::builder::{Decimal128Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use pgrx::prelude::*;
use std::sync::Arc;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// Version of the file layout and column set, written into every manifest.
pub const SCHEMA_VERSION: i32 = 1;

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Json,
    Timestamp,
    Int32,
    Int64,
    /// numeric(12,6) handed over as an integer count of millionths
    Micros12_6,
}

struct Column {
    name: &'static str,
    kind: Kind,
    nullable: bool,
    /// SQL expression producing the column from the table aliased `t`
    select: &'static str,
}

const fn col(name: &'static str, kind: Kind, nullable: bool, select: &'static str) -> Column {
    Column { name, kind, nullable, select }
}

/// One exported dataset: its directory name, table and columns.
pub struct Dataset {
    pub name: &'static str,
    pub table: &'static str,
    /// column the Hive layout (year=/month=/day=) is derived from
    pub layout_column: &'static str,
    columns: &'static [Column],
}

pub const EVENTS: Dataset = Dataset {
    name: "events",
    table: "ai_decision_events",
    layout_column: "\"timestamp\"",
    columns: &[
        col("id", Kind::Text, false, "t.id"),
        col("timestamp", Kind::Timestamp, false, "t.\"timestamp\""),
        col("decision", Kind::Text, false, "t.decision"),
        col("model", Kind::Text, false, "t.model"),
        col("provider", Kind::Text, false, "t.provider"),
        col("gateway_id", Kind::Text, false, "t.gateway_id"),
        col("user_id", Kind::Text, true, "t.user_id"),
        col("team_id", Kind::Text, true, "t.team_id"),
        col("input_tokens", Kind::Int32, false, "t.input_tokens"),
        col("output_tokens", Kind::Int32, false, "t.output_tokens"),
        col("cost_usd", Kind::Micros12_6, true, "(t.cost_usd * 1000000)::bigint"),
        col("latency_ms", Kind::Int32, true, "t.latency_ms"),
        col("request_source", Kind::Text, true, "t.request_source"),
        col("batch_id", Kind::Text, true, "t.batch_id"),
        col("created_at", Kind::Timestamp, false, "t.created_at"),
    ],
};

pub const EVALUATIONS: Dataset = Dataset {
    name: "policy_evaluations",
    table: "policy_evaluations",
    layout_column: "event_timestamp",
    columns: &[
        col("id", Kind::Int64, false, "t.id"),
        col("event_id", Kind::Text, false, "t.event_id"),
        col("event_timestamp", Kind::Timestamp, false, "t.event_timestamp"),
        col("policy_name", Kind::Text, false, "t.policy_name"),
        col("result", Kind::Text, false, "t.result"),
        col("latency_ms", Kind::Int32, true, "t.latency_ms"),
        col("details", Kind::Json, true, "t.details::text"),
        col("created_at", Kind::Timestamp, false, "t.created_at"),
    ],
};

impl Dataset {
    /// The SELECT list, in column order, followed by the layout timestamp as the last column.
    pub fn select_list(&self) -> String {
        let mut parts: Vec<String> = self.columns.iter().map(|c| c.select.to_string()).collect();
        parts.push(format!("t.{}", self.layout_column));
        parts.join(", ")
    }

    /// Columns in the cursor's rows: the dataset's, then the layout timestamp.
    pub fn fetched_columns(&self) -> usize {
        self.columns.len() + 1
    }

    /// The schema the writer gets: `details` carries the canonical JSON extension type, from
    /// which the Parquet column takes the JSON logical type.
    pub fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self.columns.iter().map(field).collect();
        Arc::new(Schema::new(fields))
    }

    /// The schema stored for Arrow readers (the file's `ARROW:schema`): the same with `details`
    /// a plain string. With the extension type there, Polars loads the column as `arrow.json`,
    /// on which its string functions, casts and write_csv fail; as a string every reader can
    /// use it as text and parse it, and the Parquet logical type still says JSON (DuckDB reads
    /// it as JSON, BigQuery loads it into a JSON column).
    pub fn reader_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self.columns.iter().map(|c| Field::new(c.name, data_type(c.kind), c.nullable)).collect();
        Arc::new(Schema::new(fields))
    }

    /// The `pandas` key of the file's metadata, naming only the timestamp columns and their
    /// zone: fastparquet takes a column's zone from nowhere else (without it, UTC timestamps
    /// come back as naive datetimes), and pyarrow / pandas keep their own reading of the others.
    pub fn pandas_metadata(&self) -> String {
        let zoned: Vec<serde_json::Value> = self
            .columns
            .iter()
            .filter(|c| matches!(c.kind, Kind::Timestamp))
            .map(|c| {
                serde_json::json!({"name": c.name, "field_name": c.name, "pandas_type": "datetimetz",
                                   "numpy_type": "datetime64[us]", "metadata": {"timezone": "UTC"}})
            })
            .collect();
        serde_json::json!({"index_columns": [], "column_indexes": [], "columns": zoned,
                           "creator": {"library": "kt_governance", "version": env!("CARGO_PKG_VERSION")}})
        .to_string()
    }

    /// Columns whose values repeat too little for a dictionary to pay off.
    pub fn high_cardinality_columns(&self) -> Vec<&'static str> {
        self.columns
            .iter()
            .filter(|c| matches!(c.name, "id" | "event_id" | "batch_id" | "details" | "user_id"))
            .map(|c| c.name)
            .collect()
    }
}

fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Text | Kind::Json => DataType::Utf8,
        Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Kind::Int32 => DataType::Int32,
        Kind::Int64 => DataType::Int64,
        Kind::Micros12_6 => DataType::Decimal128(12, 6),
    }
}

fn field(c: &Column) -> Field {
    let f = Field::new(c.name, data_type(c.kind), c.nullable);
    match c.kind {
        Kind::Json => f.with_extension_type(arrow_schema::extension::Json::default()),
        _ => f,
    }
}

/// A PostgreSQL timestamptz datum as microseconds since the Unix epoch.
pub fn unix_micros(ts: TimestampWithTimeZone) -> i64 {
    ts.into_inner() + PG_EPOCH_OFFSET_US
}

enum Builder {
    Text(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Decimal(Decimal128Builder),
}

/// Accumulates rows of one dataset until they are taken as a record batch.
pub struct BatchBuilder {
    schema: SchemaRef,
    builders: Vec<Builder>,
    rows: usize,
    /// whether the database encoding is UTF8: PostgreSQL then guarantees every stored text is
    /// valid UTF-8, and checking it again per value cost 4% of an export (perf)
    utf8_database: bool,
}

impl BatchBuilder {
    pub fn new(dataset: &Dataset) -> Self {
        let builders = dataset
            .columns
            .iter()
            .map(|c| match c.kind {
                Kind::Text | Kind::Json => Builder::Text(StringBuilder::new()),
                Kind::Timestamp => Builder::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
                Kind::Int32 => Builder::Int32(Int32Builder::new()),
                Kind::Int64 => Builder::Int64(Int64Builder::new()),
                Kind::Micros12_6 => Builder::Decimal(
                    Decimal128Builder::new().with_precision_and_scale(12, 6).expect("valid decimal(12,6)"),
                ),
            })
            .collect();
        let utf8_database = unsafe { pg_sys::GetDatabaseEncoding() } == pg_sys::pg_enc::PG_UTF8 as i32;
        BatchBuilder { schema: dataset.schema(), builders, rows: 0, utf8_database }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one row from its deformed datums (columns in dataset order).
    ///
    /// Works on raw datums rather than pgrx's typed getters: export is a tight loop over
    /// millions of rows, and the typed path costs a type check and an allocation per value.
    pub fn append_datums(&mut self, values: &[pg_sys::Datum], nulls: &[bool]) {
        for (i, builder) in self.builders.iter_mut().enumerate() {
            let (datum, null) = (values[i], nulls[i]);
            match builder {
                Builder::Text(b) if null => b.append_null(),
                Builder::Text(b) => b.append_value(unsafe { text_of(datum, self.utf8_database) }),
                Builder::Timestamp(b) if null => b.append_null(),
                Builder::Timestamp(b) => b.append_value(datum.value() as i64 + PG_EPOCH_OFFSET_US),
                Builder::Int32(b) if null => b.append_null(),
                Builder::Int32(b) => b.append_value(datum.value() as i32),
                Builder::Int64(b) if null => b.append_null(),
                Builder::Int64(b) => b.append_value(datum.value() as i64),
                Builder::Decimal(b) if null => b.append_null(),
                Builder::Decimal(b) => b.append_value(i128::from(datum.value() as i64)),
            }
        }
        self.rows += 1;
    }

    /// The rows appended so far as one batch; the builder starts empty again.
    pub fn take(&mut self) -> RecordBatch {
        let arrays: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::Text(b) => Arc::new(b.finish()),
                    Builder::Timestamp(b) => Arc::new(b.finish()),
                    Builder::Int32(b) => Arc::new(b.finish()),
                    Builder::Int64(b) => Arc::new(b.finish()),
                    Builder::Decimal(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).expect("columns match the dataset schema")
    }
}

/// A text datum as &str, valid while the fetched tuple is.
///
/// # Safety
/// `datum` must be a non-null text datum; `utf8_database` true only in a UTF8 database.
unsafe fn text_of<'a>(datum: pg_sys::Datum, utf8_database: bool) -> &'a str {
    let detoasted = unsafe { pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr()) };
    if utf8_database {
        return unsafe { pgrx::varlena::text_to_rust_str_unchecked(detoasted) };
    }
    unsafe { pgrx::varlena::text_to_rust_str(detoasted) }.unwrap_or_else(|e| {
        crate::errors::raise_with_hint(PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE, format!("export: a text value is not valid UTF-8: {e}"), "Parquet strings are UTF-8; export from a database with UTF8 encoding.")
    })
}

/// The layout timestamp (the extra last column) of a deformed row, as Unix microseconds.
pub fn layout_micros(values: &[pg_sys::Datum]) -> i64 {
    values[values.len() - 1].value() as i64 + PG_EPOCH_OFFSET_US
}
