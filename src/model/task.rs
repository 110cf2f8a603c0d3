//! A task as the model keeps it: compact, since there may be 100 000+.

use super::dump::DumpWindows;
use super::location::{GroupKey, Locations, TaskKind};
use super::resource::Interner;
use super::time::Ts;
use super::update::{NewTask, TaskStats};
use std::sync::Arc;

/// One task of the target.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// The console's id (a tracing span id).
    pub id: u64,
    /// tokio's own task id (the `task.id` field), small and sequential.
    pub tokio_id: Option<std::num::NonZeroU64>,
    pub group: GroupKey,
    /// `task.name`, when the target named the task.
    pub name: Option<Arc<str>>,
    /// Other span fields (e.g. `size.bytes`, `fn`), as text.
    pub fields: Box<[(Box<str>, Box<str>)]>,
    pub stats: TaskStats,
    /// Busy time and target time of the previous stats message, to tell a
    /// CPU-bound task from one that is polled often but mostly waits.
    pub prev_busy_ns: u64,
    pub prev_stats_at: Option<Ts>,
    /// Target time of the update that brought the latest stats.
    pub stats_at: Option<Ts>,
    /// Start and end of the task's last poll that a task dump did not
    /// cause (see [`DumpWindows`]): what idle times are measured from.
    pub own_poll: (Option<Ts>, Option<Ts>),
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
    /// The span's fields as `[key, value]` pairs (snapshots and reports).
    pub fn field_pairs(&self) -> Vec<[String; 2]> {
        self.fields
            .iter()
            .map(|(k, v)| [k.to_string(), v.to_string()])
            .collect()
    }

    pub fn from_wire(new: &NewTask, locations: &mut Locations, names: &mut Interner) -> Task {
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
                        name = Some(names.intern(&text));
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
            name,
            fields: fields.into_boxed_slice(),
            stats: TaskStats::default(),
            prev_busy_ns: 0,
            prev_stats_at: None,
            stats_at: None,
            own_poll: (None, None),
        }
    }

    pub fn is_live(&self) -> bool {
        self.stats.dropped_at.is_none()
    }

    /// Applies a new stats message, remembering the previous busy time.
    pub fn set_stats(&mut self, stats: TaskStats, at: Option<Ts>, dumps: &DumpWindows) {
        match stats.last_poll_started {
            // A dump's poll: the task's own last poll stays what it was.
            Some(t) if dumps.covers(t) && self.own_poll.0 != Some(t) => {}
            _ => self.own_poll = (stats.last_poll_started, stats.last_poll_ended),
        }
        self.prev_busy_ns = self.stats.busy_ns;
        self.prev_stats_at = self.stats_at;
        self.stats = stats;
        self.stats_at = at;
    }

    /// Share of wall time spent inside polls between the last two stats
    /// messages (0.0–1.0), when two are known.
    pub fn busy_ratio(&self) -> Option<f64> {
        let (Some(a), Some(b)) = (self.prev_stats_at, self.stats_at) else {
            return None;
        };
        let wall = b.since(a).as_secs_f64();
        if wall <= 0.0 {
            return None;
        }
        let busy = self.stats.busy_ns.saturating_sub(self.prev_busy_ns) as f64 / 1e9;
        Some((busy / wall).min(1.0))
    }
}
