//! Captures from the opt-in agent (`taskscope-agent`), as plain data:
//! each task's async stack at one instant, by tokio task id.

use super::time::Ts;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// One task's async stack: for each leaf future it waits in (several under
/// `select!`/`join!`), the `poll` frames from the task's future (first)
/// down to the tokio leaf (last).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Trace {
    pub leaves: Vec<Vec<Frame>>,
}

/// One `poll` frame of an async stack, as the agent sends it (see
/// `taskscope-proto`): the function, and where it is when known.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Frame {
    /// Demangled, without the symbol hash.
    pub name: String,
    /// Source file; registry crates and the standard library start at the
    /// crate's directory (`tokio-1.54.1/src/time/sleep.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// A frame known by its name only.
impl From<&str> for Frame {
    fn from(name: &str) -> Frame {
        Frame {
            name: name.to_string(),
            file: None,
            line: None,
        }
    }
}

/// `name (file:line)`, as a backtrace prints it.
impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " ({file}:{line})"),
            (Some(file), None) => write!(f, " ({file})"),
            _ => Ok(()),
        }
    }
}

/// A capture as the model keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct Captures {
    /// The target's clock when the capture began.
    pub taken_at: Ts,
    /// How long the target's workers were held (0: the agent captures one
    /// task at a time and never pauses), how long the capture round took
    /// (its polls fall in it), and how long symbol resolution took on the
    /// agent's thread.
    pub capture: Duration,
    pub round: Duration,
    pub resolve: Duration,
    /// Size of the reply on the wire.
    pub bytes: usize,
    /// Distinct traces.
    pub traces: Vec<Arc<Trace>>,
    /// tokio task id → index into `traces`.
    pub by_task: HashMap<u64, u32>,
    /// tokio task id → when its stack was captured, from an agent that
    /// captures one task at a time (each capture holds until the task runs
    /// again); empty from one that took whole-runtime dumps (`taken_at`).
    pub captured_at: HashMap<u64, Ts>,
    /// Console mode: the tasks wrapped for captures (tokio ids). The agent
    /// holds such a task's waker whenever no capture of it holds, and the
    /// console counts it as one of the task's.
    pub agent_wakers: std::collections::HashSet<u64>,
    /// With the hooks source (no per-task stream): spawn location → how
    /// many captured tasks of it have each trace (`(trace, tasks)`).
    pub by_location: HashMap<String, Vec<(u32, u32)>>,
}

impl Captures {
    /// Whether the task's trace still says what it waits on, for a task
    /// idle since `idle_since`: captured after that (a per-task capture),
    /// or in a whole capture whose own polls ended after it.
    pub fn holds_for(&self, tokio_id: u64, idle_since: Ts) -> bool {
        match self.captured_at.get(&tokio_id) {
            Some(&at) => idle_since <= at,
            None => idle_since <= self.window_end(),
        }
    }

    pub fn trace_of(&self, tokio_id: u64) -> Option<(u32, &Arc<Trace>)> {
        let i = *self.by_task.get(&tokio_id)?;
        Some((i, self.traces.get(i as usize)?))
    }
}

/// What taskscope knows of the target's agent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Agent {
    /// Not asked yet (not connected).
    #[default]
    Unknown,
    /// The target serves no agent: console data only.
    Absent,
    /// An agent that cannot capture (platform, cfg, no runtime), and why.
    Unavailable(String),
    /// Captures available; the least interval the agent allows between them,
    /// and whether console-subscriber's waker counts include wakers the
    /// agent holds for captures.
    Ready {
        version: String,
        min_interval: Duration,
        holds_wakers: bool,
    },
}

/// A capture polls every task once (and wakes it for another poll right
/// after), which console data records as ordinary polls. These windows let
/// the model tell those polls from the task's own, so idle times and
/// sleep links survive a capture.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CaptureWindows {
    /// A capture was asked for when the target's clock read this; no reply yet.
    pub inflight: Option<Ts>,
    /// Recent captures' windows (at most 8).
    pub done: Vec<(Ts, Ts)>,
}

/// Polls this long after a capture still count as the capture's (the
/// deferred wake-ups it leaves behind).
pub const AFTER_CAPTURE: Duration = Duration::from_millis(500);

impl CaptureWindows {
    pub fn covers(&self, t: Ts) -> bool {
        self.inflight.is_some_and(|s| t >= s) || self.done.iter().any(|(a, b)| t >= *a && t <= *b)
    }

    pub fn finish(&mut self, captures: Option<&Captures>) {
        self.inflight = None;
        if let Some(d) = captures {
            self.add(d.taken_at, d.taken_at.plus(d.capture.max(d.round)));
        }
    }

    /// A capture that ran from `start` to `end` (target clock).
    pub fn add(&mut self, start: Ts, end: Ts) {
        let w = (
            start.minus(Duration::from_millis(50)),
            end.plus(AFTER_CAPTURE),
        );
        if !self.done.contains(&w) {
            self.done.push(w);
            self.done.sort();
        }
        if self.done.len() > 8 {
            self.done.remove(0);
        }
    }
}

impl Captures {
    /// The end of the polls this capture caused.
    pub fn window_end(&self) -> Ts {
        self.taken_at
            .plus(self.capture.max(self.round) + AFTER_CAPTURE)
    }

    /// Whether the agent captured each task by itself (no pause at all)
    /// rather than stopping the runtime for a whole capture.
    pub fn per_task(&self) -> bool {
        self.capture.is_zero()
    }

    /// The newest capture's time, per-task captures only.
    pub fn newest(&self) -> Option<Ts> {
        self.captured_at.values().copied().max()
    }
}
