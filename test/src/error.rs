//! What a check can end with, besides passing.

use crate::report::Leaks;
use std::sync::Arc;

/// Why a check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Tasks the test spawned were still alive at its end, after the grace
    /// period: the report names them.
    #[error("{0}")]
    Leaks(Leaks),
    /// The check's hooks were never installed on a runtime: build it with
    /// [`Check::runtime_current_thread`](crate::Check::runtime_current_thread),
    /// [`Check::runtime_multi_thread`](crate::Check::runtime_multi_thread)
    /// or [`Check::install`](crate::Check::install).
    #[error(
        "taskscope-test: the check watches no runtime: build the runtime with Check::runtime_current_thread(), Check::runtime_multi_thread(n) or Check::install(&mut builder)"
    )]
    NotInstalled,
    /// The tokio runtime could not be built.
    #[error("taskscope-test: building the tokio runtime failed: {0}")]
    Runtime(#[source] Arc<std::io::Error>),
    /// The test's body was cancelled before it ended (its runtime shut
    /// down), so there is nothing to check it against.
    #[error("taskscope-test: the test body was cancelled before it ended")]
    Cancelled,
}

impl Error {
    /// The leak report, when that is why.
    pub fn leaks(&self) -> Option<&Leaks> {
        match self {
            Error::Leaks(l) => Some(l),
            _ => None,
        }
    }
}

impl From<Leaks> for Error {
    fn from(l: Leaks) -> Error {
        Error::Leaks(l)
    }
}
