//! Pure functions over the model: grouping, what tasks wait on, trends.
//! No I/O and no clock reads: `now` is always passed in.

pub mod blocked;
pub mod diff;
pub mod group;
pub mod health;
pub mod suspect;
pub mod trend;

pub use blocked::{Reason, TaskState, Verdict, WaitIndex};
pub use group::{Group, Params, ReasonCount, TaskRow, Totals, group_tasks};
pub use suspect::{Suspect, SuspectKind};
pub use trend::Growth;

use crate::model::{Health, State, Ts};

/// Everything the views and reports show, computed once per update.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub now: Ts,
    pub groups: Vec<Group>,
    pub totals: Totals,
    pub health: Health,
}

impl Analysis {
    pub fn run(state: &State, now: Ts, params: &Params) -> Analysis {
        let (groups, totals) = group_tasks(state, now, params);
        Analysis {
            now,
            groups,
            totals,
            health: state.health.clone(),
        }
    }
}
