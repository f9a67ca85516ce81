//! Every `kt_governance.*` setting, defined in one place.
//!
//! SQL code reads settings through `kt_setting(name)` (see below), which also guarantees that
//! this library is loaded, so the settings exist with their real defaults and descriptions
//! before any SQL function reads them.

use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};
use std::ffi::{CStr, CString};

/// Width of partitions created from now on.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum PartitionInterval {
    #[name = c"monthly"]
    Monthly,
    #[name = c"daily"]
    Daily,
}

pub static PARTITION_INTERVAL: GucSetting<PartitionInterval> =
    GucSetting::<PartitionInterval>::new(PartitionInterval::Monthly);
pub static PREMAKE: GucSetting<i32> = GucSetting::<i32>::new(4);
pub static PREMAKE_PAST: GucSetting<i32> = GucSetting::<i32>::new(3);
pub static DRAIN_MAX_PAST_DAYS: GucSetting<i32> = GucSetting::<i32>::new(3660);
pub static DRAIN_MAX_FUTURE_DAYS: GucSetting<i32> = GucSetting::<i32>::new(366);
pub static DDL_LOCK_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(2000);
pub static DDL_RETRIES: GucSetting<i32> = GucSetting::<i32>::new(5);
pub static INGEST_ACCEPT_PAST_S: GucSetting<i32> = GucSetting::<i32>::new(3650 * 86_400);
pub static INGEST_ACCEPT_FUTURE_S: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub static REFRESH_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub static MAINTENANCE_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub static WORKER_NAPTIME_S: GucSetting<i32> = GucSetting::<i32>::new(10);
pub static JOB_HISTORY_SUCCESSES: GucSetting<i32> = GucSetting::<i32>::new(500);
pub static JOB_HISTORY_ERRORS: GucSetting<i32> = GucSetting::<i32>::new(5000);
pub static TRACK_CHANGES: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static ALLOW_DROP_WITH_DATA: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static RETENTION_HOURS: GucSetting<i32> = GucSetting::<i32>::new(0);
pub static RETENTION_ARCHIVE: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static RETENTION_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub static ROLLUP_RETENTION_HOURS: GucSetting<i32> = GucSetting::<i32>::new(0);
pub static RETENTION_ARCHIVE_DESTINATION: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static EXPORT_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(60);
pub static S3_ENDPOINT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static S3_REGION: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"us-east-1"));
pub static S3_ALLOW_HTTP: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static S3_PATH_STYLE: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static S3_CREDENTIALS_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static S3_PROFILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"default"));
pub static EXPORT_FILE_MODE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"0640"));
pub static DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"postgres"));

/// Registers the settings every backend needs. Called from `_PG_init`.
pub fn define_session_settings() {
    GucRegistry::define_enum_guc(
        c"kt_governance.partition_interval",
        c"Width of new time partitions: 'monthly' (default) or 'daily'.",
        c"Applies to partitions created from now on; existing partitions keep their ranges. \
          Daily suits deployments well above 100k events per day.",
        &PARTITION_INTERVAL,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kt_governance.premake",
        c"How many future partitions maintenance keeps ready beyond the current one.",
        c"Like pg_partman's premake: inserts never wait on partition creation.",
        &PREMAKE,
        0,
        366,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kt_governance.premake_past",
        c"How many past partitions CREATE EXTENSION makes before the current one.",
        c"Like pg_partman's partitions made before the current one: a backfill of recent history \
          loaded right after CREATE EXTENSION lands in dated partitions instead of waiting in the \
          default partition for maintenance to move it. Read only by CREATE EXTENSION.",
        &PREMAKE_PAST,
        0,
        120,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kt_governance.drain_max_past_days",
        c"Rows in the default partition up to this many days old get their own partition.",
        c"Older rows are treated as junk timestamps: they stay in the default partition and \
          are reported by kt_partition_health instead of creating thousands of partitions.",
        &DRAIN_MAX_PAST_DAYS,
        1,
        36600,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kt_governance.drain_max_future_days",
        c"Rows in the default partition up to this many days ahead get their own partition.",
        c"Rows further in the future stay in the default partition and are reported.",
        &DRAIN_MAX_FUTURE_DAYS,
        1,
        36600,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kt_governance.ddl_lock_timeout",
        c"lock_timeout used by partition DDL, so ingest never queues behind a blocked DDL.",
        c"When the lock is not granted in time the DDL is retried (kt_governance.ddl_retries).",
        &DDL_LOCK_TIMEOUT_MS,
        1,
        600_000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"kt_governance.ddl_retries",
        c"How many times partition DDL is attempted when its lock times out.",
        c"Attempts are spaced by a growing pause; the last failure is raised as an error.",
        &DDL_RETRIES,
        1,
        100,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kt_governance.ingest_accept_past",
        c"How old an event kt_ingest accepts, before the transaction's start (-1: any age).",
        c"Older events are bad records (quarantined, or the call fails in strict mode), never \
          stored silently. Default 3650 days. COPY and INSERT are not checked: backfill older \
          history with them, or raise this setting for the session that loads it (superuser).",
        &INGEST_ACCEPT_PAST_S,
        -1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"kt_governance.ingest_accept_future",
        c"How far after the transaction's start an event's time may be for kt_ingest (-1: any).",
        c"Allows for gateway clock skew. Later events are bad records (quarantined, or the call \
          fails in strict mode): a timestamp in year 9999 would otherwise sit in every \
          dashboard's newest hours. Default 1 hour.",
        &INGEST_ACCEPT_FUTURE_S,
        -1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
}

/// Registers the job settings. Superuser settings (not postmaster ones), so they may be defined
/// in any backend; the worker reads postgresql.conf again on SIGHUP, and the SQL scheduler
/// (kt_due_jobs) reads them in the worker's session.
pub fn define_job_settings() {
    let seconds = |name: &'static CStr, short: &'static CStr, setting: &'static GucSetting<i32>, max| {
        GucRegistry::define_int_guc(
            name,
            short,
            c"Change in postgresql.conf and reload; 0 disables the job's schedule (kt_run_job() still runs it).",
            setting,
            0,
            max,
            GucContext::Suset,
            GucFlags::UNIT_S,
        )
    };
    seconds(
        c"kt_governance.refresh_interval",
        c"How often the worker refreshes dirty rollup hours (kt_refresh_metrics).",
        &REFRESH_INTERVAL_S,
        86_400 * 7,
    );
    seconds(
        c"kt_governance.maintenance_interval",
        c"How often the worker runs partition maintenance (kt_run_maintenance).",
        &MAINTENANCE_INTERVAL_S,
        86_400 * 7,
    );
    GucRegistry::define_int_guc(
        c"kt_governance.worker_naptime",
        c"How often the background worker wakes up to look for due jobs.",
        c"Also bounds how long the worker takes to notice that the extension was created.",
        &WORKER_NAPTIME_S,
        1,
        3600,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"kt_governance.job_history_successes",
        c"Successful runs kept per job in kt_job_runs.",
        c"Older successful runs are deleted after each run.",
        &JOB_HISTORY_SUCCESSES,
        1,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kt_governance.job_history_errors",
        c"Failed runs kept per job in kt_job_runs (kept longer than successes).",
        c"Older failed runs are deleted after each run.",
        &JOB_HISTORY_ERRORS,
        1,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// KEEPTRUSTS_EVENT_RETENTION_HOURS from the server's environment (the gateway's own setting),
/// used as the default of kt_governance.retention_hours; an explicit setting wins.
fn retention_hours_from_environment() -> i32 {
    std::env::var("KEEPTRUSTS_EVENT_RETENTION_HOURS")
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|h| *h > 0)
        .unwrap_or(0)
}

/// Registers the retention and change-tracking settings.
pub fn define_retention_settings() {
    GucRegistry::define_bool_guc(
        c"kt_governance.track_changes",
        c"Whether changes to ai_decision_events mark rollup hours dirty.",
        c"On by default. Retention and erasure turn it off for their own deletes, so rollups keep \
          the history; turning it off elsewhere leaves rollups stale.",
        &TRACK_CHANGES,
        GucContext::Suset,
        GucFlags::default(),
    );
    // the boot value is what the setting reads when nothing sets it explicitly
    unsafe { *RETENTION_HOURS.as_ptr() = retention_hours_from_environment() };
    GucRegistry::define_int_guc(
        c"kt_governance.retention_hours",
        c"Raw events older than this many hours are removed by the worker's retention job (0 = off).",
        c"Default: KEEPTRUSTS_EVENT_RETENTION_HOURS from the server's environment when set, else 0. \
          An explicit setting wins. 61320 = 7 years.",
        &RETENTION_HOURS,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"kt_governance.retention_archive",
        c"Whether retention copies rows to ai_decision_events_archive before removing them.",
        c"The default of kt_apply_retention(archive => ...); the copy commits with the removal or not at all.",
        &RETENTION_ARCHIVE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"kt_governance.retention_archive_destination",
        c"Where retention writes Parquet copies of what it removes (empty = no Parquet archive).",
        c"file:///dir or s3://bucket/prefix, written by the exporter before each removal; a removal \
          never commits unless its Parquet archive was written.",
        &RETENTION_ARCHIVE_DESTINATION,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"kt_governance.retention_interval",
        c"How often the worker runs the retention job.",
        c"0 disables the schedule (kt_run_job('retention') still runs it).",
        &RETENTION_INTERVAL_S,
        0,
        86_400 * 7,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"kt_governance.rollup_retention_hours",
        c"Rollup rows older than this many hours are removed by the retention job (0 = keep forever).",
        c"Rollups are small and outlive raw data; keep them longer than retention_hours.",
        &ROLLUP_RETENTION_HOURS,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"kt_governance.allow_drop_with_data",
        c"Whether DROP EXTENSION kt_governance (or DROP SCHEMA ... CASCADE of its schema) may drop stored events.",
        c"Off by default: the drop is refused while ai_decision_events holds rows, because it would \
          drop every event and evaluation, held ones included. Dump or export first, then set it \
          for the dropping session.",
        &ALLOW_DROP_WITH_DATA,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// Registers the export and S3 settings. Credentials are reload-only (postgresql.conf, never SET),
/// refused by ALTER SYSTEM (whose text lands in postgresql.auto.conf) and hidden from roles
/// that may not read superuser-only settings.
pub fn define_export_settings() {
    GucRegistry::define_int_guc(
        c"kt_governance.export_interval",
        c"How often the worker looks for due export schedules.",
        c"Each schedule has its own period (kt_add_export_schedule(every => ...)); 0 disables the job.",
        &EXPORT_INTERVAL_S,
        0,
        86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    define_export_file_mode();
    let plain = [
        (c"kt_governance.s3_endpoint", c"S3 endpoint URL for s3:// exports (empty = AWS, or AWS_ENDPOINT_URL).", c"For S3-compatible servers, e.g. http://127.0.0.1:9000 (http needs kt_governance.s3_allow_http).", &S3_ENDPOINT),
        (c"kt_governance.s3_region", c"S3 region for s3:// exports.", c"Falls back to AWS_REGION from the server's environment when empty.", &S3_REGION),
    ];
    for (name, short, long, setting) in plain {
        GucRegistry::define_string_guc(name, short, long, setting, GucContext::Suset, GucFlags::default());
    }
    GucRegistry::define_bool_guc(
        c"kt_governance.s3_allow_http",
        c"Whether s3:// exports may talk plain http to the endpoint.",
        c"Off by default: credentials and data then only travel over https.",
        &S3_ALLOW_HTTP,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"kt_governance.s3_path_style",
        c"Use path-style S3 URLs (endpoint/bucket/key) instead of virtual-hosted ones.",
        c"Most S3-compatible servers (MinIO, moto, Ceph) want path style.",
        &S3_PATH_STYLE,
        GucContext::Suset,
        GucFlags::default(),
    );
    // No setting holds a secret: a refused SET of one would put it in the server log's STATEMENT
    // line. Keys come from a credentials file this setting names, or the server's environment
    // (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), as pg_parquet reads them.
    let file_only = GucFlags::SUPERUSER_ONLY | GucFlags::DISALLOW_IN_AUTO_FILE;
    let files = [
        (c"kt_governance.s3_credentials_file", c"AWS shared-credentials file to read S3 keys from (postgresql.conf only).", &S3_CREDENTIALS_FILE),
        (c"kt_governance.s3_profile", c"Profile to use from kt_governance.s3_credentials_file.", &S3_PROFILE),
    ];
    for (name, short, setting) in files {
        GucRegistry::define_string_guc(
            name,
            short,
            c"Reload-only: SET and ALTER SYSTEM are refused. Unset: the server's environment \
              (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and the standard AWS chain.",
            setting,
            GucContext::Sighup,
            file_only,
        );
    }
}

/// `kt_governance.export_file_mode`: defined by hand rather than through pgrx's registry, which
/// has no check hook, so that a bad mode fails at SET / reload time instead of at the next export.
fn define_export_file_mode() {
    unsafe {
        pg_sys::DefineCustomStringVariable(
            c"kt_governance.export_file_mode".as_ptr(),
            c"Permissions of exported files in file:// destinations, in octal (default 0640).".as_ptr(),
            c"Directories the export creates get the same bits plus search (x) wherever read is \
              given (0640 -> 0750). The owner (the server's OS user) always reads and writes; \
              0640 lets the directory's group read, 0644 every OS user. S3 objects are not affected."
                .as_ptr(),
            EXPORT_FILE_MODE.as_ptr(),
            *EXPORT_FILE_MODE.as_ptr(),
            GucContext::Suset as isize as _,
            GucFlags::default().bits(),
            Some(check_export_file_mode),
            None,
            None,
        );
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_export_file_mode(
    newval: *mut *mut std::ffi::c_char,
    _extra: *mut *mut std::ffi::c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let value = unsafe { (*newval).as_ref() }.map(|p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned());
    if parse_file_mode(value.as_deref().unwrap_or("")).is_ok() {
        return true;
    }
    let detail = c"Give three octal digits, owner read and write included and no execute bits: 0600, 0640 or 0644.";
    unsafe { pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(detail.as_ptr()) };
    false
}

/// A file mode as kt_governance.export_file_mode takes it: `0640` or `640`; the owner must keep
/// read and write (the export replaces its own files), and data files are never executable.
pub fn parse_file_mode(raw: &str) -> Result<u32, String> {
    let digits = raw.trim().strip_prefix('0').filter(|d| d.len() == 3).unwrap_or(raw.trim());
    let mode = (digits.len() == 3 && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .then(|| u32::from_str_radix(digits, 8).ok())
        .flatten()
        .ok_or_else(|| format!("\"{raw}\" is not an octal file mode such as 0640"))?;
    if mode & 0o600 != 0o600 {
        return Err(format!("mode {mode:04o} takes read or write from the owner"));
    }
    if mode & 0o111 != 0 {
        return Err(format!("mode {mode:04o} makes data files executable"));
    }
    Ok(mode)
}

/// The file mode exports use now, and the directory mode derived from it (x wherever r).
pub fn export_modes() -> (u32, u32) {
    let raw = EXPORT_FILE_MODE.get().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
    // the check hook refused anything else; the default stands in if a value got past it
    let file = parse_file_mode(&raw).unwrap_or(0o640);
    (file, file | ((file & 0o444) >> 2))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;

    #[pg_test]
    fn export_file_modes_are_octal_owner_rw_and_never_executable() {
        assert_eq!(parse_file_mode("0640"), Ok(0o640));
        assert_eq!(parse_file_mode("644"), Ok(0o644));
        assert_eq!(parse_file_mode(" 0600 "), Ok(0o600));
        for bad in ["", "0", "0400", "0200", "0755", "0648", "06400", "rw-r-----", "0x1a4", "-644"] {
            assert!(parse_file_mode(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[pg_test]
    fn export_directories_get_search_where_files_get_read() {
        Spi::run("SET kt_governance.export_file_mode = '0644'").unwrap();
        assert_eq!(export_modes(), (0o644, 0o755));
        Spi::run("SET kt_governance.export_file_mode = '600'").unwrap();
        assert_eq!(export_modes(), (0o600, 0o700));
    }

    #[pg_test(error = "invalid value for parameter \"kt_governance.export_file_mode\": \"0755\"")]
    fn an_executable_export_file_mode_is_refused_at_set() {
        Spi::run("SET kt_governance.export_file_mode = '0755'").unwrap();
    }
}

/// Whether a setting's current value comes from postgresql.auto.conf, i.e. from ALTER SYSTEM.
///
/// A secret must never be accepted from there, but PostgreSQL lets ALTER SYSTEM write any
/// kt_governance.* name while this library is not loaded in the session, so the check is made
/// where the secret is used.
pub fn set_by_alter_system(name: &str) -> bool {
    let Some(record) = guc_record(name) else { return false };
    unsafe {
        let file = (*record).sourcefile;
        (*record).source == pg_sys::GucSource::PGC_S_FILE
            && !file.is_null()
            && CStr::from_ptr(file).to_bytes().ends_with(b"postgresql.auto.conf")
    }
}

/// The server's record of a setting, by full name.
fn guc_record(name: &str) -> Option<*mut pg_sys::config_generic> {
    let (all, count) = guc_variables();
    unsafe {
        (0..count).map(|i| *all.add(i)).find(|&record| {
            !record.is_null() && CStr::from_ptr((*record).name).to_bytes() == name.as_bytes()
        })
    }
}

/// The server's array of setting records and its length. PostgreSQL 16 changed the call: it
/// returns the length through an argument instead of GetNumConfigOptions().
#[cfg(feature = "pg15")]
fn guc_variables() -> (*mut *mut pg_sys::config_generic, usize) {
    unsafe { (pg_sys::get_guc_variables(), pg_sys::GetNumConfigOptions() as usize) }
}

#[cfg(not(feature = "pg15"))]
fn guc_variables() -> (*mut *mut pg_sys::config_generic, usize) {
    let mut count = 0;
    let all = unsafe { pg_sys::get_guc_variables(&mut count) };
    (all, count.max(0) as usize)
}

/// Registers the settings that only exist when the library is preloaded: defining a
/// postmaster-context setting later is a FATAL error.
pub fn define_worker_settings() {
    GucRegistry::define_string_guc(
        c"kt_governance.database",
        c"Database the kt_governance background worker runs its jobs in.",
        c"Like pg_cron's cron.database_name. The worker waits until the extension is created there.",
        &DATABASE,
        GucContext::Postmaster,
        GucFlags::default(),
    );
}

/// Current value of a `kt_governance.*` setting as text, by short name (`premake`).
///
/// Exists so that SQL code reads settings through the library: calling it loads the library,
/// which defines the settings with their defaults even in a session that never touched them.
#[pg_extern(stable, parallel_safe, schema = "kt_governance_internal")]
fn kt_setting(name: &str) -> Option<String> {
    let full = CString::new(format!("kt_governance.{name}")).unwrap_or_default();
    // GetConfigOption gives the value in its base unit without a suffix (2000, not 2s), which
    // SQL can cast; missing_ok = true turns an unknown name into NULL, reported below;
    // restrict_privileged = true refuses superuser-only settings (S3 secrets) to other roles
    let value = unsafe { pg_sys::GetConfigOption(full.as_ptr(), true, true) };
    if value.is_null() && guc_record(&format!("kt_governance.{name}")).is_some() {
        return Some(String::new()); // a text setting that was never set
    }
    if value.is_null() {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("kt_governance.{name} is not a kt_governance setting")
        );
    }
    Some(unsafe { CStr::from_ptr(value) }.to_string_lossy().into_owned())
}
