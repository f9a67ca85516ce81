//! kt_governance: a PostgreSQL store for AI-governance decision events.
//!
//! One module per capability; the SQL each capability installs lives in `sql/<capability>.sql`
//! and is pulled in here in dependency order.

use pgrx::prelude::*;

mod sample;
mod settings;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/settings.sql", name = "settings", requires = [settings::kt_setting]);
extension_sql_file!("../sql/partitions.sql", name = "partitions", requires = ["schema", "settings"]);
extension_sql_file!(
    "../sql/sample.sql",
    name = "sample",
    requires = ["partitions", sample::sample_event_rows, sample::sample_evaluation_rows]
);
extension_sql_file!("../sql/reports.sql", name = "reports", requires = ["sample"]);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    settings::define_session_settings();
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
