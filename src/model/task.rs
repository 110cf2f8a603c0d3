//! A task as the model keeps it: compact, since there may be 100 000+.

use super::location::{GroupKey, Locations, TaskKind};
use super::time::Ts;
use super::update::{NewTask, TaskStats};

/// One task of the target.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// The console's id (a tracing span id).
    pub id: u64,
    /// tokio's own task id (the `task.id` field), small and sequential.
    pub tokio_id: Option<u64>,
    pub group: GroupKey,
    /// `task.name`, when the target named the task.
    pub name: Option<Box<str>>,
    /// Other span fields (e.g. `size.bytes`, `fn`), as text.
    pub fields: Box<[(Box<str>, Box<str>)]>,
    pub stats: TaskStats,
    /// Polls counted by the previous stats message, to tell a busy task from
    /// one that was polled long ago.
    pub prev_polls: u64,
    /// Target time of the update that brought the latest stats.
    pub stats_at: Option<Ts>,
}

/// Field names the model keeps in dedicated slots rather than in `fields`.
const STRUCTURAL_FIELDS: &[&str] = &[
    "kind",
    "task.name",
    "task.id",
    "loc.file",
    "loc.line",
    "loc.col",
];

impl Task {
    pub fn from_wire(new: &NewTask, locations: &mut Locations) -> Task {
        let mut kind = TaskKind::Task;
        let mut name = None;
        let mut tokio_id = None;
        let mut fields = Vec::new();
        for f in &new.fields {
            match f.name.as_str() {
                "kind" => kind = TaskKind::from_field(&f.value.to_text()),
                "task.name" => {
                    let text = f.value.to_text();
                    if !text.is_empty() {
                        name = Some(text.into_boxed_str());
                    }
                }
                "task.id" => tokio_id = f.value.as_u64(),
                n if STRUCTURAL_FIELDS.contains(&n) => {}
                n => fields.push((Box::from(n), f.value.to_text().into_boxed_str())),
            }
        }
        Task {
            id: new.id,
            tokio_id,
            group: GroupKey {
                loc: locations.intern(new.location.as_ref()),
                kind,
            },
            name,
            fields: fields.into_boxed_slice(),
            stats: TaskStats::default(),
            prev_polls: 0,
            stats_at: None,
        }
    }

    pub fn is_live(&self) -> bool {
        self.stats.dropped_at.is_none()
    }

    /// Applies a new stats message, remembering the previous poll count.
    pub fn set_stats(&mut self, stats: TaskStats, at: Option<Ts>) {
        self.prev_polls = self.stats.polls;
        self.stats = stats;
        self.stats_at = at;
    }
}
