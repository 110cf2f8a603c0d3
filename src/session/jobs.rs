//! The work a session runs on its own thread for a front end: snapshots
//! and reports of the whole state (per target, or the merged fleet), task
//! captures, the lens the front end looks through.

use super::page::Lens;
use crate::analysis::Analysis;
use crate::model::State;
use crate::snapshot::{self, Meta};
use std::path::PathBuf;
use std::sync::Arc;

/// Work that reads the whole state; run by the model thread when there is
/// one, so a large target never stalls the view.
#[derive(Debug)]
pub enum Job {
    Snapshot {
        meta: Meta,
        path: PathBuf,
    },
    Report {
        format: crate::report::Format,
        ctx: crate::report::build::Context,
        analysis: Arc<Analysis>,
        path: PathBuf,
    },
    /// Ask the target's agent for a capture (`t`).
    Waits,
    /// The end of a headless run: ask these targets (by index) for a last
    /// capture, those whose agent serves them and whose connection is
    /// up; answered by [`ToUi::WaitsAsked`], then a [`ToUi::Captured`] for
    /// each as it arrives.
    FinalWaits(Vec<usize>),
    /// What the front end now looks at. On the hooks source an open
    /// group's tasks are fetched from the target while it is open; on the
    /// console source an open task's details are streamed. The session
    /// answers with a [`View`] at once: built on `frozen` when the front
    /// end holds that analysis still, else on the newest.
    Lens {
        lens: Lens,
        frozen: Option<Arc<Analysis>>,
    },
}

impl Job {
    /// Runs the job; returns the line the status bar shows.
    pub fn run(self, state: &State) -> String {
        match self {
            Job::Snapshot { meta, path } => {
                let Some(snap) = snapshot::take(state, &meta) else {
                    return "no data yet: nothing to save".into();
                };
                match snapshot::save(&snap, &path) {
                    Ok(()) => format!("saved snapshot {}", path.display()),
                    Err(e) => format!("snapshot not saved: {e}"),
                }
            }
            Job::Report {
                format,
                ctx,
                analysis,
                path,
            } => {
                let report = crate::report::build::build(&analysis, state, &ctx, None);
                written(&path, format, &report)
            }
            Job::Waits | Job::FinalWaits(_) => "waits are captured on live targets only".into(),
            Job::Lens { .. } => String::new(),
        }
    }
}

impl Job {
    /// Runs the job over several targets' models (`connect A B C`):
    /// snapshots are per target (`NAME-1.json`, `NAME-2.json`, …: a
    /// snapshot is one target's), the report is of the merged view.
    pub(super) fn run_fleet(
        self,
        states: &[&State],
        merger: &crate::analysis::fleet::Merger,
    ) -> String {
        match self {
            Job::Snapshot { meta, path } => {
                let mut saved = Vec::new();
                for (i, st) in states.iter().enumerate() {
                    let Some(snap) = snapshot::take(st, &meta) else {
                        continue;
                    };
                    let p = numbered(&path, i + 1);
                    match snapshot::save(&snap, &p) {
                        Ok(()) => saved.push(p.display().to_string()),
                        Err(e) => return format!("snapshot not saved: {e}"),
                    }
                }
                if saved.is_empty() {
                    "no data yet: nothing to save".into()
                } else {
                    format!("saved snapshots {}", saved.join(", "))
                }
            }
            Job::Report {
                format,
                ctx,
                analysis,
                path,
            } => {
                let src = crate::report::build::FleetSource {
                    states: states.to_vec(),
                    merger,
                };
                let report = crate::report::build::build(&analysis, &src, &ctx, None);
                written(&path, format, &report)
            }
            other => other.run(states.first().copied().unwrap_or(&State::default())),
        }
    }
}

/// Writes a report; the status bar's line about it.
fn written(
    path: &std::path::Path,
    format: crate::report::Format,
    report: &crate::report::build::Report,
) -> String {
    match crate::report::write_out(path, &format.render(report)) {
        Ok(()) => format!("report written to {}", path.display()),
        Err(e) => format!("report not written to {}: {e}", path.display()),
    }
}

/// `DIR/NAME.EXT` → `DIR/NAME-N.EXT`.
fn numbered(path: &std::path::Path, n: usize) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    path.with_file_name(name)
}
