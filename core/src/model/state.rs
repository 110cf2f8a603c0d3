//! The target's state as accumulated from updates. A reader's map:
//! - [`State::apply`] folds one console update, in this order: clamp what
//!   is implausible (`sanity.rs`); on a new stream, reconcile with the full
//!   state it sends; tasks (`state/tasks.rs`: registrations, stats, births
//!   and deaths into the count histories, poll windows for `late.rs`);
//!   resources and async ops (`state/resources.rs`); how far the console
//!   lags (`update_freshness`); and once a second, `prune` (both in
//!   `state/tasks.rs`).
//! - The hooks source's groups and pages of tasks: `state/hooks.rs`.
//! - Captures: `set_agent`, `waits_asked`, `apply_captures` here; what a capture
//!   holds: `capture.rs`.
//! - What one record holds: `task.rs`, `resource.rs`; values many records
//!   share: `intern.rs`; sleeps that arrive late: `late.rs`.

mod hooks;
mod resources;
mod tasks;

use super::captures::{Agent, CaptureWindows, Captures};
use super::counted::Aggregates;
use super::history::CountHistory;
use super::location::{GroupKey, Locations};
use super::resource::{AsyncOp, Interner, PendingPoll, Resource};
use super::sanity::{self, Implausible};
use super::task::Task;
use super::time::Ts;
use super::update::{DroppedEvents, TaskStats, Update};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// How much the model keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Finished tasks stay this long after they end (target time), so churn
    /// is visible; then only their mark in the count history remains.
    pub finished_retention: Duration,
    /// At most this many finished tasks are kept (oldest go first), so a
    /// target with heavy churn cannot grow taskscope's memory.
    pub max_finished: usize,
    /// Dropped resources and async ops stay this long.
    pub op_retention: Duration,
    /// How far back the count history may be rebuilt from the first full
    /// state, when the target's own retention shows it is complete.
    pub max_backfill: Duration,
    /// Most tasks (live and finished), resources and async ops kept each:
    /// past this a target that claims ever more entities is not followed
    /// (and told about), so it cannot exhaust taskscope's memory.
    pub max_entities: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            finished_retention: Duration::from_secs(120),
            max_finished: 20_000,
            op_retention: Duration::from_secs(10),
            max_backfill: Duration::from_secs(600),
            max_entities: 4_000_000,
        }
    }
}

/// What the model knows about the subscriber's health and completeness.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    pub updates: u64,
    /// Streams seen (1 + reconnects that delivered data).
    pub streams: u32,
    /// Whether the current stream began with the subscriber's full state.
    pub full_state: Option<bool>,
    /// Events the target dropped since we attached (lower-bound counts).
    pub dropped_events: DroppedEvents,
    /// Live tasks for which stats arrived but no task record: tasks the
    /// subscriber ingested before we attached and did not send us.
    pub unseen_tasks: usize,
    /// Estimated lag of the subscriber's view behind its clock.
    pub lag: Duration,
    /// Newest instant for which counts are believed complete.
    pub horizon: Option<Ts>,
    pub last_update_bytes: usize,
    pub max_update_bytes: usize,
    /// History rebuilt from the first full state, backwards from attach.
    pub backfilled: Duration,
    /// From when the count histories hold true counts (before it they
    /// read the target's first report as births).
    pub counts_since: Option<Ts>,
    /// Times the target was seen to restart (all task ids replaced).
    pub restarts: u32,
    /// The target's console is paused (another client, e.g. tokio-console's
    /// space key, paused its aggregator: no updates until it resumes).
    /// taskscope watches this (`WatchState`) and never pauses it itself.
    pub console_paused: bool,
    /// Values no sane subscriber sends (clamped or cut), counted.
    pub implausible: Implausible,
    /// What the hooks source sent beyond the viewer's caps (not kept).
    pub capped: super::caps::Capped,
    /// What the hooks source sent that cannot be true (set aside).
    pub set_aside: super::plausible::SetAside,
    /// Locations no longer followed, to follow newer ones (over
    /// [`super::caps::MAX_TRACKED`]).
    pub forgotten: u64,
}

/// Updates carrying at least this many new entities suggest the
/// subscriber's aggregator is draining a backlog (it ingests about 128
/// events per wake-up), so its view lags.
const BACKLOG_ENTITIES: usize = 120;

/// One target's model: what the two sources share (the stream's log),
/// each source's own records, and the waits the agent captured. The
/// console source fills `console` (a record per task, resource and async
/// op); the hooks source fills `hooks` (the target's own count per spawn
/// location). Both write the same log, and the analysis reads each
/// source's groups out of its own part for one growth verdict.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub config: Config,
    pub log: StreamLog,
    pub console: ConsoleState,
    /// The groups the target counted itself (the hooks source), when it
    /// serves them.
    pub hooks: Option<Aggregates>,
    /// The latest capture from the target's agent, and what is known of
    /// the agent.
    pub captures: Option<Captures>,
    pub agent: Agent,
    /// The last capture that failed, and why.
    pub waits_error: Option<String>,
}

/// What both sources write: the target's clock, its spawn locations, the
/// stream's health and gaps, and each group's count history.
#[derive(Clone, Debug, Default)]
pub struct StreamLog {
    /// The target's clock at the latest update.
    pub now: Option<Ts>,
    pub locations: Locations,
    pub histories: HashMap<GroupKey, CountHistory>,
    pub health: Health,
    /// Target-time spans with no data: from the last update of a stream to
    /// the first of the next (most recent 100).
    pub gaps: Vec<(Ts, Ts)>,
    pub(super) history_origin: Option<Ts>,
    /// The target clock of the update before the current one.
    pub(super) last_update_at: Option<Ts>,
    pub(super) new_stream: bool,
    pub(super) last_prune: Option<Ts>,
}

/// The console source's records.
#[derive(Clone, Debug, Default)]
pub struct ConsoleState {
    pub types: Interner,
    /// Task names and fields (many tasks share them).
    pub labels: super::task::Labels,
    /// Resources' attribute texts (a thousand sleeps of one duration share
    /// one), forgotten with the last resource that has them.
    pub attributes: Interner,
    /// What resources made at one site share.
    pub shapes: super::resource::Shapes,
    /// Sleeps that arrive after their task polled again.
    pub late: super::late::LateSleeps,
    /// Shared with the pages a session publishes (copy on write: a task
    /// updated while a page holds it is copied, never changed under it).
    pub tasks: HashMap<u64, Arc<Task>>,
    pub resources: HashMap<u64, Resource>,
    pub async_ops: HashMap<u64, AsyncOp>,
    pub pending_polls: HashMap<u64, PendingPoll>,
    /// The details of the task the view has open.
    pub details: Option<super::details::TaskDetails>,
    /// When captures polled the tasks (so those polls are not taken for the
    /// tasks' own).
    pub capture_windows: CaptureWindows,
    /// Stats for task ids we have no record of, live ones only.
    pub(super) orphan_stats: HashMap<u64, TaskStats>,
}

impl State {
    /// The version of the target's taskscope-agent, when one answered
    /// (with captures or without).
    pub fn agent_version(&self) -> Option<String> {
        match &self.agent {
            super::Agent::Ready { version, .. } => Some(version.clone()),
            _ => None,
        }
    }

    pub fn new(config: Config) -> Self {
        State {
            config,
            ..State::default()
        }
    }

    /// What the target's agent can do (told once per stream).
    pub fn set_agent(&mut self, agent: Agent, recent_dumps: &[(Ts, Ts)]) {
        self.agent = agent;
        if recent_dumps.is_empty() {
            return;
        }
        for (start, end) in recent_dumps {
            self.console.capture_windows.add(*start, *end);
        }
        // Polls seen before these windows were known may be a capture's: the
        // task's own last poll is then unknown (idle times count from its
        // creation until it is polled again).
        for t in self.console.tasks.values_mut() {
            if t.own_poll
                .0
                .is_some_and(|p| self.console.capture_windows.covers(p))
            {
                Arc::make_mut(t).own_poll = (None, None);
            }
        }
    }

    /// Keeps the newest capture, or the reason the last one failed.
    pub fn apply_captures(&mut self, captures: Result<Captures, String>) {
        self.console.capture_windows.finish(captures.as_ref().ok());
        match captures {
            Ok(d) => {
                self.captures = Some(d);
                self.waits_error = None;
            }
            Err(e) => self.waits_error = Some(e),
        }
    }

    /// A capture was asked for: polls from now on may be its own.
    pub fn waits_asked(&mut self) {
        self.console.capture_windows.inflight = self.log.now;
    }

    /// Call when a new stream begins (first connect or reconnect): its first
    /// update, when it is the full state, replaces what we believed alive.
    pub fn begin_stream(&mut self) {
        self.log.new_stream = true;
        self.log.health.console_paused = false;
        // A capture asked for on the old stream will not be answered.
        self.console.capture_windows.inflight = None;
    }

    pub fn apply(&mut self, mut up: Update) {
        sanity::check(&mut up, self.log.now, &mut self.log.health.implausible);
        let now = up.now.or(self.log.now);
        self.log.last_update_at = self.log.now;
        self.log.now = now;
        self.log.health.updates += 1;
        self.log.health.last_update_bytes = up.wire_bytes;
        self.log.health.max_update_bytes = self.log.health.max_update_bytes.max(up.wire_bytes);
        let d = &mut self.log.health.dropped_events;
        d.tasks = d.tasks.saturating_add(up.dropped_events.tasks);
        d.resources = d.resources.saturating_add(up.dropped_events.resources);
        d.async_ops = d.async_ops.saturating_add(up.dropped_events.async_ops);

        if self.log.history_origin.is_none() {
            self.start_history(&up, now);
        }
        if self.log.new_stream {
            self.log.new_stream = false;
            if let (Some(before), Some(after), true) =
                (self.log.last_update_at, up.now, self.log.health.streams > 0)
            {
                self.log.gaps.push((before, after));
                if self.log.gaps.len() > 100 {
                    self.log.gaps.remove(0);
                }
            }
            self.log.health.streams += 1;
            self.log.health.full_state = Some(up.has_metadata);
            if up.has_metadata {
                self.reconcile(&up, now);
            }
        }

        self.apply_tasks(&up, now);
        self.apply_resources(&up, now);
        self.apply_ops(&up);
        self.update_freshness(&up, now);
        if let Some(now) = now {
            let due = self
                .log
                .last_prune
                .is_none_or(|t| now.since(t) >= Duration::from_secs(1));
            if due {
                self.prune(now);
                self.log.last_prune = Some(now);
            }
        }
        self.log.health.unseen_tasks = self.console.orphan_stats.len();
    }

    /// Finished tasks currently kept.
    pub fn finished_count(&self) -> usize {
        self.console.tasks.values().filter(|t| !t.is_live()).count()
    }

    /// Live tasks (not yet dropped).
    pub fn live_tasks(&self) -> impl Iterator<Item = &Task> {
        self.console
            .tasks
            .values()
            .map(|t| &**t)
            .filter(|t| t.is_live())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::update::{Field, FieldValue, NewTask};

    fn ts(secs: f64) -> Option<Ts> {
        Some(Ts::from_nanos(
            1_800_000_000_000_000_000 + (secs * 1e9) as i64,
        ))
    }

    #[test]
    fn captures_lost_with_their_stream_stop_covering_polls() {
        let mut st = State::default();
        st.begin_stream();
        st.apply(Update {
            now: ts(10.0),
            has_metadata: true,
            ..Update::default()
        });
        st.waits_asked();
        assert!(st.console.capture_windows.covers(ts(11.0).expect("ts")));
        // The connection broke before the reply came.
        st.begin_stream();
        assert!(!st.console.capture_windows.covers(ts(11.0).expect("ts")));
    }

    #[test]
    fn heavy_churn_keeps_memory_bounded() {
        let mut st = State::new(Config {
            max_finished: 1_000,
            ..Config::default()
        });
        st.begin_stream();
        // 30 s of 500 short tasks a second, one update per 100 ms.
        let mut id = 0u64;
        for tick in 0..300u64 {
            let now = tick as f64 / 10.0;
            let mut up = Update {
                now: ts(now),
                has_metadata: tick == 0,
                ..Update::default()
            };
            for _ in 0..50 {
                id += 1;
                // Each with a name of its own (e.g. a request id).
                up.tasks.push(NewTask {
                    id,
                    location: None,
                    fields: vec![Field {
                        name: "task.name".into(),
                        value: FieldValue::Str(format!("req-{id}")),
                    }],
                });
                up.task_stats.push((
                    id,
                    TaskStats {
                        created_at: ts(now - 0.05),
                        dropped_at: ts(now - 0.01),
                        ..TaskStats::default()
                    },
                ));
            }
            st.apply(up);
            assert!(
                st.console.tasks.len() <= 1_000 + 50 * 11,
                "tick {tick}: {} tasks kept",
                st.console.tasks.len()
            );
            // Names of forgotten tasks are forgotten too.
            assert!(
                st.console.labels.len() <= st.console.tasks.len() + 50 * 11,
                "tick {tick}: {} names kept",
                st.console.labels.len()
            );
        }
        // The history still knows every task that came and went.
        let h = st.log.histories.values().next().expect("one group");
        assert_eq!(h.total_births, 15_000);
        assert_eq!(h.total_deaths, 15_000);
        assert_eq!(h.current(), 0);
    }
}
