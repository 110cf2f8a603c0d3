//! The target's state, from plain updates. No UI, no network: `conn`
//! converts wire messages into [`Update`], and [`State::apply`] folds them in.

pub mod caps;
pub mod captures;
pub mod counted;
pub mod details;
pub mod history;
pub mod intern;
pub mod late;
pub mod location;
pub mod plausible;
pub mod resource;
pub mod sanity;
pub mod state;
pub mod target_clock;
pub mod task;
pub mod time;
pub mod update;

pub use captures::{Agent, CaptureWindows, Captures, Frame, Trace};
pub use history::CountHistory;
pub use location::{GroupKey, LocId, Locations, TaskKind, UNKNOWN_LOCATION};
pub use resource::{AsyncOp, PendingPoll, Resource};
pub use state::{Config, Health, State};
pub use task::Task;
pub use time::Ts;
pub use update::{OpSource, Update};
