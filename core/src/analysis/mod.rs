//! Pure functions over the model: grouping, what tasks wait on, trends.
//! No I/O and no clock reads: `now` is always passed in.

pub mod advice;
pub mod blocked;
pub mod console_groups;
pub mod diff;
pub mod fleet;
pub mod health;
mod hooks_groups;
pub mod judge;
pub mod lint;
pub mod reason;
pub mod sites;
mod sleeps;
pub mod stack;
pub mod suspect;
pub mod trend;
pub mod types;

pub use blocked::{Reason, TaskState, Verdict, WaitIndex};
pub use console_groups::group_tasks;
pub use reason::ReasonCount;
pub use trend::Growth;
pub use types::{Group, Params, StackCount, TaskRow, Totals};
pub use types::{Suspect, SuspectKind};

use crate::model::{Agent, Health, State, Ts};
use std::time::Duration;

/// Everything the views and reports show, computed once per update.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub now: Ts,
    pub groups: Vec<Group>,
    pub totals: Totals,
    pub health: Health,
    pub waits: WaitsStatus,
    /// Which of the target's sources the groups come from, and the
    /// version of its taskscope-agent when one answered.
    pub source: Option<DataSource>,
    pub agent_version: Option<String>,
}

/// Which of the target's sources an analysis reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataSource {
    /// taskscope-agent's hooks source: the target's own exact counts per
    /// spawn location (waits from the agent's captures).
    Hooks,
    /// console-subscriber alone: per-task data, waits from its resources.
    Console,
    /// console-subscriber's per-task data, with the agent's captured waits.
    Both,
    /// Several targets that do not all give the same.
    Mixed,
}

impl DataSource {
    pub const ALL: [DataSource; 4] = [
        DataSource::Hooks,
        DataSource::Console,
        DataSource::Both,
        DataSource::Mixed,
    ];

    pub fn key(self) -> &'static str {
        match self {
            DataSource::Hooks => "hooks",
            DataSource::Console => "console",
            DataSource::Both => "both",
            DataSource::Mixed => "mixed",
        }
    }

    /// What a state was fed: the hooks source's groups, or console
    /// updates (with an agent beside it that answers, both).
    pub fn of(state: &State) -> Option<DataSource> {
        if state.hooks.is_some() {
            Some(DataSource::Hooks)
        } else if state.log.health.updates == 0 {
            None
        } else if matches!(state.agent, Agent::Ready { .. }) {
            Some(DataSource::Both)
        } else {
            Some(DataSource::Console)
        }
    }

    /// One phrase for views and reports, with the agent's version when
    /// known: "hooks source (taskscope-agent 0.1.0)".
    pub fn describe(self, agent_version: Option<&str>) -> String {
        let agent = agent_version
            .filter(|v| !v.is_empty())
            .map(|v| format!("taskscope-agent {}", crate::text::sanitize(v, 40)))
            .unwrap_or_else(|| "taskscope-agent".into());
        match self {
            DataSource::Hooks => format!("hooks source ({agent})"),
            DataSource::Console => "console-subscriber".into(),
            DataSource::Both => format!("console-subscriber + {agent}"),
            DataSource::Mixed => "mixed sources".into(),
        }
    }

    /// The common source of several, `Mixed` when they differ.
    pub fn common(all: impl IntoIterator<Item = Option<DataSource>>) -> Option<DataSource> {
        let mut seen: Option<DataSource> = None;
        for s in all.into_iter().flatten() {
            seen = Some(match seen {
                Some(x) if x != s => DataSource::Mixed,
                _ => s,
            });
        }
        seen
    }
}

crate::keyed::keyed!(DataSource, key, "data source");

impl Analysis {
    /// "hooks source (taskscope-agent 0.1.0)", or nothing before data.
    pub fn source_phrase(&self) -> Option<String> {
        Some(self.source?.describe(self.agent_version.as_deref()))
    }
}

/// What the views say about captures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WaitsStatus {
    pub agent: Agent,
    /// The capture in use: its time (target clock), capture pause, symbol
    /// resolution time, size on the wire and task count.
    pub last: Option<CaptureCost>,
    /// Why the last capture failed, when it did.
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaptureCost {
    pub taken_at: Ts,
    pub capture: Duration,
    pub resolve: Duration,
    pub bytes: usize,
    pub tasks: usize,
    pub traces: usize,
    /// Captured one task at a time by the tasks themselves (the runtime
    /// never paused), and the newest capture.
    pub per_task: bool,
    pub newest: Option<Ts>,
}

impl WaitsStatus {
    pub fn of(state: &State) -> WaitsStatus {
        WaitsStatus {
            agent: state.agent.clone(),
            last: state.captures.as_ref().map(|d| CaptureCost {
                taken_at: d.taken_at,
                capture: d.capture,
                resolve: d.resolve,
                bytes: d.bytes,
                tasks: d.by_task.len(),
                traces: d.traces.len(),
                per_task: d.per_task(),
                newest: d.newest(),
            }),
            error: state.waits_error.clone(),
        }
    }
}

impl Analysis {
    pub fn run(state: &State, now: Ts, params: &Params) -> Analysis {
        let (groups, totals) = group_tasks(state, now, params);
        Analysis {
            now,
            groups,
            totals,
            health: state.log.health.clone(),
            waits: WaitsStatus::of(state),
            source: DataSource::of(state),
            agent_version: state.agent_version(),
        }
    }
}
