//! What the tests share.
#![allow(dead_code)]

use std::time::Duration;
use taskscope_test::{Check, Error, LeakedGroup, Leaks};
use tokio::runtime::Runtime;

/// A grace period short enough for CI, long enough for a task that is
/// ending to end.
pub const GRACE: Duration = Duration::from_millis(150);

/// The report of a check that must fail.
pub fn leaks(check: &Check, rt: &Runtime) -> Leaks {
    match check.verify(rt) {
        Err(Error::Leaks(l)) => {
            // What a user reads (`-- --nocapture`).
            eprintln!("{l}");
            l
        }
        Err(e) => panic!("expected leaks, got another error: {e}"),
        Ok(()) => panic!("expected leaks, the check passed"),
    }
}

/// The group of the tasks spawned at `file:line`, from the report.
pub fn group<'a>(leaks: &'a Leaks, file: &str, line: u32) -> &'a LeakedGroup {
    let at = format!("{file}:{line}:");
    leaks
        .group(&at)
        .unwrap_or_else(|| panic!("no group at {at} in:\n{leaks}"))
}
