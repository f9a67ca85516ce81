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
pub static DRAIN_MAX_PAST_DAYS: GucSetting<i32> = GucSetting::<i32>::new(3660);
pub static DRAIN_MAX_FUTURE_DAYS: GucSetting<i32> = GucSetting::<i32>::new(366);
pub static DDL_LOCK_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(2000);
pub static DDL_RETRIES: GucSetting<i32> = GucSetting::<i32>::new(5);

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
}

/// Current value of a `kt_governance.*` setting as text, by short name (`premake`).
///
/// Exists so that SQL code reads settings through the library: calling it loads the library,
/// which defines the settings with their defaults even in a session that never touched them.
#[pg_extern(stable, parallel_safe)]
fn kt_setting(name: &str) -> Option<String> {
    let full = CString::new(format!("kt_governance.{name}")).unwrap_or_default();
    // missing_ok = true: an unknown name yields NULL, and the SQL caller reports it
    let value = unsafe { pg_sys::GetConfigOptionByName(full.as_ptr(), std::ptr::null_mut(), true) };
    if value.is_null() {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("kt_governance.{name} is not a kt_governance setting")
        );
    }
    Some(unsafe { CStr::from_ptr(value) }.to_string_lossy().into_owned())
}
