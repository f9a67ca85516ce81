//! Raising errors with a hint. pgrx's `ereport!` takes a detail as its fourth argument; what the
//! extension tells a caller to do next belongs in the HINT field, where psql and drivers show it.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

/// Raises ERROR with `code`, `message` and `hint`. Does not return.
pub(crate) fn raise_with_hint(code: PgSqlErrorCode, message: impl Into<String>, hint: impl Into<String>) -> ! {
    ErrorReport::new(code, message.into(), pgrx::function_name!())
        .set_hint(hint.into())
        .report(PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) does not return")
}
