//! Snapshots: the state at a moment, in a versioned file, loadable later
//! for diffs and reports.

pub mod build;
pub mod file;
pub mod format;

pub use build::{Loaded, Meta, take};
pub use file::{SnapshotError, load, save};
pub use format::Snapshot;

/// Loads a file and resolves it for analysis.
pub fn open(path: &std::path::Path) -> Result<Loaded, SnapshotError> {
    let snap = load(path)?;
    Loaded::new(snap).map_err(|e| SnapshotError::Invalid(path.to_path_buf(), e))
}
