//! The analysis's shared vocabulary: a group and its parts, as every
//! producer of groups (the console source's tasks, the hooks source's
//! counts) makes them, the judge marks them, a fleet merges them and every
//! front end shows them. A leaf: it uses nothing of the analysis's other
//! modules but the leaf vocabularies (reasons, verdicts, trends, sites).

use super::blocked::{Reason, Verdict};
use super::reason::ReasonCount;
use super::trend::Growth;
use crate::model::{GroupKey, TaskKind, Trace, Ts};
use std::sync::Arc;
use std::time::Duration;

/// Knobs of one analysis pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// The trend window: "change over the window", growth test.
    pub window: Duration,
    /// Points in each group's sparkline (one per second).
    pub spark_points: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            window: Duration::from_secs(60),
            spark_points: 60,
        }
    }
}

/// One task, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskRow {
    pub id: u64,
    /// Which target the task is on, when several are merged
    /// ([`super::fleet`]); 0 otherwise.
    pub target: u16,
    pub verdict: Verdict,
    pub created: Option<Ts>,
}

/// Tasks of a group that share one async stack (from a capture), as
/// pprof's `N @ stack`.
#[derive(Clone, Debug, PartialEq)]
pub struct StackCount {
    pub trace: Arc<Trace>,
    /// One line: the task's own frame and the tokio call it waits in.
    pub label: String,
    pub reason: Reason,
    pub tasks: u32,
}

/// A spawn location with its tasks.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub key: GroupKey,
    pub location: Arc<str>,
    pub kind: TaskKind,
    pub live: u32,
    pub running: u32,
    pub scheduled: u32,
    pub idle: u32,
    /// Finished tasks still retained by taskscope.
    pub finished: u32,
    pub oldest: Option<Duration>,
    pub longest_idle: Option<Duration>,
    /// Blocked-on mix, largest first.
    pub reasons: Vec<ReasonCount>,
    /// Most common task names, largest first (at most 5), and how many
    /// distinct names the group has.
    pub names: Vec<(Arc<str>, u32)>,
    pub distinct_names: u32,
    /// Count change over the window (from the count history).
    pub delta: i64,
    /// Count per second over the last `spark_points` seconds; `None` where
    /// taskscope had no data (disconnected).
    pub spark: Vec<Option<u64>>,
    /// Live and retained finished tasks, classified.
    pub tasks: Vec<TaskRow>,
    pub growth: Growth,
    pub suspect: Option<Suspect>,
    /// Live tasks split by identical stack (when a capture covers them),
    /// largest first.
    pub stacks: Vec<StackCount>,
    /// Where the tasks that spawned these were spawned, most first, with
    /// how many each spawned (the hooks source), and how many live tasks
    /// were spawned from outside any task.
    pub spawned_from: Vec<(Arc<str>, u64)>,
    pub spawned_outside: u64,
    /// With several targets: each one's part, most tasks first (empty for
    /// one target).
    pub shares: Vec<Share>,
    /// tokio-console's warnings and how many live tasks carry each.
    pub lints: Vec<(super::lint::Lint, u32)>,
    /// With the hooks source: how much of the group's waits the agent's
    /// captures cover.
    pub waits: Option<WaitCoverage>,
    /// A suspect's likely cause and its fix, when a rule fits its evidence.
    pub advice: Option<Advice>,
}

/// How a hooks-source group's waits are known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitCoverage {
    /// Live tasks the agent can capture (wrapped in
    /// the agent's `traced`).
    pub reachable: u32,
    /// Idle tasks whose wait is a capture that holds (exact).
    pub captured: u32,
    /// Idle reachable tasks not captured yet, counted in the captured
    /// ones' proportions.
    pub inferred: u32,
    /// Idle tasks the agent cannot capture: their waits are not known.
    pub out_of_reach: u32,
    /// Age of the newest capture behind the group.
    pub newest: Option<Duration>,
    /// The library site the group's place is, when taskscope knows it:
    /// what its tasks are and how to reach them.
    pub site: Option<super::sites::KnownSite>,
}

impl Group {
    /// A group with no tasks yet.
    pub fn new(key: GroupKey, location: Arc<str>) -> Group {
        Group {
            key,
            location,
            kind: key.kind,
            live: 0,
            running: 0,
            scheduled: 0,
            idle: 0,
            finished: 0,
            oldest: None,
            longest_idle: None,
            reasons: Vec::new(),
            names: Vec::new(),
            distinct_names: 0,
            delta: 0,
            spark: Vec::new(),
            tasks: Vec::new(),
            growth: Growth::default(),
            suspect: None,
            stacks: Vec::new(),
            spawned_from: Vec::new(),
            spawned_outside: 0,
            shares: Vec::new(),
            lints: Vec::new(),
            waits: None,
            advice: None,
        }
    }

    /// The reason most of the group's live tasks share.
    pub fn main_reason(&self) -> Option<ReasonCount> {
        self.reasons.first().copied()
    }
}

/// Totals over all groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub live: u32,
    pub running: u32,
    pub scheduled: u32,
    pub idle: u32,
    pub finished: u32,
    pub groups: u32,
    pub suspects: u32,
}

/// The order groups are listed in: suspects first, then by size.
pub fn display_order(a: &Group, b: &Group) -> std::cmp::Ordering {
    b.suspect
        .is_some()
        .cmp(&a.suspect.is_some())
        .then(b.live.cmp(&a.live))
        .then_with(|| a.location.cmp(&b.location))
        .then(a.kind.cmp(&b.kind))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuspectKind {
    /// The count keeps growing (see `trend`).
    Growing,
    /// Most tasks wait on one thing far longer than the group's tasks live.
    Stuck,
    /// Tasks idle with no waker: nothing can ever wake them (tokio-console's
    /// "lost waker" warning). A proven leak, whatever the count does.
    LostWaker,
}

impl SuspectKind {
    pub const ALL: [SuspectKind; 3] = [
        SuspectKind::Growing,
        SuspectKind::Stuck,
        SuspectKind::LostWaker,
    ];

    pub fn key(self) -> &'static str {
        match self {
            SuspectKind::Growing => "growing",
            SuspectKind::Stuck => "stuck",
            SuspectKind::LostWaker => "lost_waker",
        }
    }
}

crate::keyed::keyed!(SuspectKind, key, "suspect kind");

#[derive(Clone, Debug, PartialEq)]
pub struct Suspect {
    pub kind: SuspectKind,
    /// A sentence a person can check against the numbers on screen.
    pub reason: String,
}

/// One target's part of a merged group.
#[derive(Clone, Debug, PartialEq)]
pub struct Share {
    pub target: Arc<str>,
    pub live: u32,
    /// Change over the window on that target.
    pub delta: i64,
    pub suspect: bool,
}

/// A suspect's likely cause and its fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advice {
    /// What most likely keeps these tasks: "clients that went quiet keep
    /// their connections, and the server has no header-read timeout".
    pub cause: String,
    /// What to change, in the user's own stack.
    pub fix: String,
}

pub use super::reason::{mostly_captured, mostly_inferred, percent};
