//! Pure functions over the model: grouping, what tasks wait on, trends.
//! No I/O and no clock reads: `now` is always passed in.

mod aggregated;
pub mod blocked;
pub mod diff;
pub mod fleet;
pub mod group;
pub mod health;
pub mod lint;
pub mod reason;
mod sleeps;
pub mod stack;
pub mod suspect;
pub mod trend;
pub mod wording;

pub use blocked::{Reason, TaskState, Verdict, WaitIndex};
pub use group::{Group, Params, StackCount, TaskRow, Totals, group_tasks};
pub use reason::ReasonCount;
pub use suspect::{Suspect, SuspectKind};
pub use trend::Growth;

use crate::model::{Agent, Health, State, Ts};
use std::time::Duration;

/// Everything the views and reports show, computed once per update.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub now: Ts,
    pub groups: Vec<Group>,
    pub totals: Totals,
    pub health: Health,
    pub dumps: DumpStatus,
}

/// What the views say about task dumps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DumpStatus {
    pub agent: Agent,
    /// The dump in use: its time (target clock), capture pause, symbol
    /// resolution time, size on the wire and task count.
    pub last: Option<DumpCost>,
    /// Why the last dump failed, when it did.
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DumpCost {
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

impl DumpStatus {
    pub fn of(state: &State) -> DumpStatus {
        DumpStatus {
            agent: state.agent.clone(),
            last: state.dump.as_ref().map(|d| DumpCost {
                taken_at: d.taken_at,
                capture: d.capture,
                resolve: d.resolve,
                bytes: d.bytes,
                tasks: d.by_task.len(),
                traces: d.traces.len(),
                per_task: d.per_task(),
                newest: d.newest(),
            }),
            error: state.dump_error.clone(),
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
            health: state.health.clone(),
            dumps: DumpStatus::of(state),
        }
    }
}
