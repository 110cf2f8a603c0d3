//! A task as the model keeps it: compact, since there may be 100 000+.

use super::captures::CaptureWindows;
use super::location::{GroupKey, Locations, TaskKind};
use super::time::Ts;
use super::update::{NewTask, TaskStats};
use std::sync::Arc;

/// One task of the target. Kept to 152 bytes: the model holds one per task.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// The console's id (a tracing span id).
    pub id: u64,
    /// tokio's own task id (the `task.id` field), small and sequential.
    pub tokio_id: Option<std::num::NonZeroU64>,
    pub group: GroupKey,
    /// Its name and other fields (interned: a site's tasks often share them).
    label: Arc<Label>,
    pub stats: TaskStats,
    /// Target time of the update that brought the latest stats.
    pub stats_at: Option<Ts>,
    /// Share of wall time spent inside polls between the last two stats
    /// messages, to tell a CPU-bound task from one that is polled often
    /// but mostly waits.
    busy_share: Option<f32>,
    /// Start and end of the task's last poll that a capture did not
    /// cause: what idle times are measured from.
    pub own_poll: (Option<Ts>, Option<Ts>),
}

/// A task's name and span fields.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct Label {
    /// `task.name`, when the target named the task.
    pub name: Option<Arc<str>>,
    /// Other span fields (e.g. `size.bytes`, `fn`), as text.
    pub fields: Box<[(Box<str>, Box<str>)]>,
}

/// Task labels, one per distinct name and fields (so unique names such as
/// request ids are forgotten with their task).
pub type Labels = super::intern::Shared<Label>;

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
    /// `task.name`, when the target named the task.
    pub fn name(&self) -> Option<&str> {
        self.label.name.as_deref()
    }

    /// The same, shared.
    pub fn name_arc(&self) -> Option<&Arc<str>> {
        self.label.name.as_ref()
    }

    /// Other span fields (e.g. `size.bytes`, `fn`), as text.
    pub fn fields(&self) -> &[(Box<str>, Box<str>)] {
        &self.label.fields
    }

    /// The span's fields as `[key, value]` pairs (snapshots and reports).
    pub fn field_pairs(&self) -> Vec<[String; 2]> {
        self.fields()
            .iter()
            .map(|(k, v)| [k.to_string(), v.to_string()])
            .collect()
    }

    pub fn from_wire(new: &NewTask, locations: &mut Locations, labels: &mut Labels) -> Task {
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
                        name = Some(Arc::from(text));
                    }
                }
                "task.id" => tokio_id = f.value.as_u64().and_then(std::num::NonZeroU64::new),
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
            label: labels.intern(Label {
                name,
                fields: fields.into_boxed_slice(),
            }),
            stats: TaskStats::default(),
            stats_at: None,
            busy_share: None,
            own_poll: (None, None),
        }
    }

    /// Takes the name and fields of a repeated registration of the task.
    pub fn relabel(&mut self, again: Task) {
        self.label = again.label;
        self.tokio_id = again.tokio_id;
    }

    /// Forgets the stats (the id now names another task).
    pub fn restart(&mut self) {
        self.stats = TaskStats::default();
        self.stats_at = None;
        self.busy_share = None;
    }

    pub fn is_live(&self) -> bool {
        self.stats.dropped_at.is_none()
    }

    /// Applies a new stats message, remembering the busy share since the
    /// previous one.
    pub fn set_stats(&mut self, stats: TaskStats, at: Option<Ts>, waits: &CaptureWindows) {
        match stats.last_poll_started {
            // A capture's poll: the task's own last poll stays what it was.
            Some(t) if waits.covers(t) && self.own_poll.0 != Some(t) => {}
            _ => self.own_poll = (stats.last_poll_started, stats.last_poll_ended),
        }
        self.busy_share = match (self.stats_at, at) {
            (Some(a), Some(b)) if b.since(a) > std::time::Duration::ZERO => {
                let wall = b.since(a).as_secs_f64();
                let busy = stats.busy_ns.saturating_sub(self.stats.busy_ns) as f64 / 1e9;
                Some((busy / wall).min(1.0) as f32)
            }
            _ => None,
        };
        self.stats = stats;
        self.stats_at = at;
    }

    /// Share of wall time spent inside polls between the last two stats
    /// messages (0.0–1.0), when two are known.
    pub fn busy_ratio(&self) -> Option<f64> {
        self.busy_share.map(f64::from)
    }
}

#[cfg(test)]
mod tests {
    /// What the model and each analysis hold per task (PERFORMANCE.md,
    /// "Memory"): growing one of these is a decision, not an accident.
    #[test]
    fn per_task_records_stay_small() {
        use std::mem::size_of;
        assert!(
            size_of::<super::Task>() <= 152,
            "{}",
            size_of::<super::Task>()
        );
        assert!(size_of::<crate::model::Resource>() <= 56);
        assert!(size_of::<crate::analysis::TaskRow>() <= 48);
        assert!(size_of::<crate::analysis::Verdict>() <= 24);
    }
}
