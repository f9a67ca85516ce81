//! Bookkeeping writes with the extension owner's rights.
//!
//! The row triggers gather dirty hours, row counts and rollup deltas in memory and write them
//! at commit. They run in the writer's transaction, so they used to write as the writer, which
//! therefore had INSERT on the bookkeeping tables and could forge them (a delta row of a
//! million escalated events with no raw row behind it, or a row count that made the removal
//! log overstate what retention removed). Now those writes switch to the extension owner for
//! their few statements, and no role below it may write the tables.
//!
//! While switched, the statements run with `search_path = pg_catalog, pg_temp` and as a
//! security-restricted operation, so nothing the caller made (a function or operator in a
//! schema on their search_path) can run with the owner's rights.

use pgrx::prelude::*;
use std::cell::Cell;

thread_local! {
    // the owner cannot change without REASSIGN OWNED, after which a new session picks it up
    static OWNER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

fn extension_owner() -> Option<pg_sys::Oid> {
    if let Some(owner) = OWNER.with(|o| o.get()) {
        return Some(owner);
    }
    let owner = Spi::get_one::<pg_sys::Oid>("SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'kt_governance'")
        .ok()
        .flatten()?;
    OWNER.with(|o| o.set(Some(owner)));
    Some(owner)
}

/// Runs `write` (SPI statements on the extension's bookkeeping tables) as the extension owner.
/// An error inside aborts the transaction, and the abort restores the caller's identity and
/// settings; on success both are restored here.
pub(crate) fn as_extension_owner<R>(write: impl FnOnce() -> R) -> R {
    let Some(owner) = extension_owner() else { return write() };
    let mut caller = pg_sys::InvalidOid;
    let mut context = 0;
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut caller, &mut context);
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        pg_sys::SetUserIdAndSecContext(
            owner,
            context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        let result = write();
        pg_sys::SetUserIdAndSecContext(caller, context);
        pg_sys::AtEOXact_GUC(true, nest);
        result
    }
}
