//! kt_governance: a PostgreSQL store for AI-governance decision events.
//!
//! One module per capability; the SQL each capability installs lives in `sql/<capability>.sql`
//! and is pulled in here in dependency order.

use pgrx::prelude::*;

mod accumulator;
mod deltas;
mod errors;
mod export;
mod guard;
mod ingest;
mod owner;
mod reclaim;
mod rollup;
mod rowcount;
mod rows;
mod sample;
mod settings;
mod sketch;
mod worker;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);

/// Declares the internal schema to pgrx, so Rust functions can name it (`schema = ...`). The
/// schema itself is made by sql/schema.sql, which runs first with a plain CREATE SCHEMA (a schema
/// of that name made beforehand by someone else makes the install fail); the
/// `CREATE SCHEMA IF NOT EXISTS` pgrx emits for this module then does nothing.
#[pg_schema]
mod kt_governance_internal {}
extension_sql_file!("../sql/settings.sql", name = "settings", requires = [settings::kt_setting]);
extension_sql_file!("../sql/locks.sql", name = "locks", requires = ["schema", "settings"]);
extension_sql_file!("../sql/partitions.sql", name = "partitions", requires = ["locks"]);
extension_sql_file!(
    "../sql/sample.sql",
    name = "sample",
    requires = ["partitions", sample::sample_event_rows, sample::sample_evaluation_rows]
);
extension_sql_file!(
    "../sql/rollups.sql",
    name = "rollups",
    requires = [
        "sample",
        accumulator::kt_mark_dirty_hours,
        accumulator::kt_flush_dirty_hours,
        accumulator::kt_settle_pending_deltas,
        sketch::kt_latency_rollup,
        sketch::kt_histogram_rollup,
        sketch::kt_histogram_merge,
        sketch::kt_histogram_quantile,
        sketch::kt_sketch_merge,
        sketch::kt_latency_sketch,
        sketch::kt_latency_summary,
        sketch::kt_sketch_quantile,
        sketch::kt_sketch_count,
        sketch::kt_sketch_bucket,
        sketch::kt_sketch_build
    ]
);
extension_sql_file!(
    "../sql/rowcounts.sql",
    name = "rowcounts",
    requires = [
        "rollups",
        accumulator::kt_count_evaluations,
        accumulator::kt_forget_pending_counts,
        accumulator::kt_pending_counts
    ]
);
extension_sql_file!("../sql/reports.sql", name = "reports", requires = ["rowcounts"]);
extension_sql_file!("../sql/jobs.sql", name = "jobs", requires = ["reports"]);
extension_sql_file!("../sql/ingest.sql", name = "ingest", requires = ["jobs", ingest::ingest]);
extension_sql_file!("../sql/export.sql", name = "export", requires = ["ingest", export::kt_export_range]);
extension_sql_file!("../sql/reclaim.sql", name = "reclaim", requires = ["export", reclaim::kt_reclaim_after_commit]);
extension_sql_file!("../sql/retention.sql", name = "retention", requires = ["reclaim"]);
extension_sql_file!("../sql/guard.sql", name = "guard", requires = ["retention"]);
extension_sql_file!("../sql/first_partitions.sql", name = "first_partitions", requires = ["guard"], finalize);

/// The schema kt_governance is installed in, in the current database (None while it is not).
/// Rust code that runs SQL qualifies names with it instead of trusting the caller's search_path.
pub(crate) fn extension_schema() -> Option<String> {
    Spi::get_one::<String>(
        // every name qualified and the operator spelled out: the caller's search_path may put
        // a look-alike pg_extension (or "=") first, and the DROP guard relies on this answer
        "SELECT n.nspname::text FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n \
         ON n.oid OPERATOR(pg_catalog.=) e.extnamespace \
         WHERE e.extname OPERATOR(pg_catalog.=) 'kt_governance'::pg_catalog.name",
    )
    .ok()
    .flatten()
}

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    settings::define_session_settings();
    settings::define_job_settings();
    settings::define_retention_settings();
    settings::define_export_settings();
    // the worker (and its postmaster-level setting) exists only when preloaded; defining a
    // postmaster setting from a regular backend would be FATAL
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        settings::define_worker_settings();
        worker::register();
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
