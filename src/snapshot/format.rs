//! The snapshot file format, version 1 (schema: `assets/snapshot.schema.json`).
//!
//! Times are nanoseconds since the Unix epoch on the target's clock, except
//! `taken_at_unix_ns`, which is the local clock of the machine that took it.

use crate::analysis::{DataSource, Reason, TaskState};
use crate::model::{Frame, TaskKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "taskscope-snapshot";
pub const VERSION: u32 = 1;

/// The state of a tokio target at one moment, as taskscope saw it. Files
/// may be gzip-compressed (`.json.gz`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "taskscope snapshot, version 1")]
pub struct Snapshot {
    #[schemars(extend("const" = "taskscope-snapshot"))]
    pub format: String,
    #[schemars(extend("const" = 1))]
    pub version: u32,
    /// The target's address as given.
    pub target: String,
    pub taken_at_unix_ns: i64,
    /// The target's clock at the last update.
    pub target_now_ns: i64,
    /// Newest instant for which counts were complete.
    pub horizon_ns: i64,
    /// How long taskscope watched before taking it.
    pub watched_ms: u64,
    pub window_ms: u64,
    /// Which of the target's sources the snapshot was taken from (older
    /// files: not said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<DataSource>,
    /// The target's taskscope-agent version, when one answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    pub health: HealthRecord,
    pub groups: Vec<GroupRecord>,
    pub tasks: Vec<TaskRecord>,
    /// Async stacks from the target's capture (with `taskscope-agent`):
    /// each is a list of leaves, each leaf its frames outermost first.
    /// Tasks refer to them by index (`TaskRecord::trace`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traces: Vec<Vec<Vec<Frame>>>,
    /// With the hooks source (taskscope-agent on tokio's runtime hooks),
    /// the target's own groups instead of per-task records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aggregates: Vec<AggregateRecord>,
}

/// One spawn location as the target counted it (the hooks source): the
/// model's own group, with its location's name and its stacks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AggregateRecord {
    pub location: String,
    #[serde(flatten)]
    pub group: crate::model::counted::AggGroup,
    /// `[trace, tasks]`: the captured tasks of this location by stack
    /// (indexes into `traces`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<[u32; 2]>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthRecord {
    pub updates: u64,
    pub streams: u32,
    pub full_state: Option<bool>,
    pub dropped_task_events: u64,
    pub dropped_resource_events: u64,
    pub dropped_async_op_events: u64,
    pub unseen_tasks: u64,
    pub lag_ms: u64,
    pub last_update_bytes: u64,
    pub max_update_bytes: u64,
    pub backfilled_ms: u64,
    pub restarts: u32,
    /// From when the count histories hold true counts (older files: from
    /// their oldest bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts_since_ns: Option<i64>,
}

/// A spawn location's count history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRecord {
    /// `file:line:col`, or `<unknown location>`.
    pub location: String,
    pub kind: TaskKind,
    pub history: HistoryRecord,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryRecord {
    /// Count before the oldest bucket.
    pub base: i64,
    pub total_births: u64,
    pub total_deaths: u64,
    /// Finest first; each bucket is `[births, deaths]`.
    pub levels: Vec<LevelRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelRecord {
    pub width_secs: i64,
    /// Index (time / width) of the first bucket.
    pub front: i64,
    pub buckets: Vec<[u32; 2]>,
}

/// One task, classified when the snapshot was taken.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRecord {
    /// The console's span id.
    pub id: u64,
    /// tokio's task id.
    pub tokio_id: Option<u64>,
    pub location: String,
    pub kind: TaskKind,
    pub name: Option<String>,
    pub fields: Vec<[String; 2]>,
    pub state: TaskState,
    /// What the task is blocked on (e.g. `channel_send`).
    pub reason: Reason,
    /// Since when the task has been in that state.
    pub since_ns: Option<i64>,
    pub created_ns: Option<i64>,
    pub resource: Option<u64>,
    /// The `sleep` is a guess: a sleep several tasks could own (with a
    /// `resource`), or inferred from the task's group while the target's
    /// console lagged (without one).
    pub ambiguous: bool,
    pub polls: u64,
    pub live_wakers: u64,
    /// Informational: seconds in that state and age at `target_now_ns`.
    pub for_secs: Option<f64>,
    pub age_secs: Option<f64>,
    /// The reason comes from a capture rather than console data (`from_dump`
    /// in files written before taskscope said "captures").
    #[serde(
        default,
        alias = "from_dump",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub captured: bool,
    /// Index into `Snapshot::traces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<u32>,
    /// tokio-console's warnings for the task (self-wakes, long poll, large
    /// or auto-boxed future).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lints: Vec<crate::analysis::lint::Lint>,
}
