//! What a task is doing or waiting on: from console data, or from its stack
//! when a capture covers it (the stack rules are in `stack.rs`).
//!
//! Rules (see README "How taskscope tells what a task waits on"):
//! tracked waits come from live async ops (`AsyncOp` stats `task == task`,
//! not dropped), outermost op first; sleeps are linked by their own op
//! when the target's tokio sends one, else by time (a `Sleep` resource
//! created inside the task's last poll), in `sleeps.rs`; everything else
//! that is idle with a waker outstanding is an *untracked* wait, labelled
//! honestly.

pub use super::reason::{Reason, TaskState};
use crate::model::{AsyncOp, OpSource, Resource, State, Task, TaskKind, Ts};
use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

/// The classification of one task. Kept to 24 bytes: an analysis holds one
/// per task (in its [`super::TaskRow`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub state: TaskState,
    pub reason: Reason,
    /// Since when the task has been in this state (target clock).
    pub since: Option<Ts>,
    /// The resource behind the reason, when known (console ids are never 0).
    pub resource: Option<NonZeroU64>,
    /// The sleep is a guess: a sleep several tasks could own (`resource`
    /// set), or inferred from the task's group while the target's console
    /// lags (no `resource`; see `model::late`).
    pub ambiguous: bool,
    /// The reason comes from the task's stack in a capture (a fact at
    /// the capture's time), not from console data.
    pub captured: bool,
    /// The task's trace in the model's capture, plus one (see [`Self::trace`]).
    trace: Option<NonZeroU32>,
}

impl Verdict {
    /// A verdict with no resource, trace or flags.
    pub fn new(state: TaskState, reason: Reason, since: Option<Ts>) -> Verdict {
        Verdict {
            state,
            reason,
            since,
            resource: None,
            ambiguous: false,
            captured: false,
            trace: None,
        }
    }

    /// How long the task has been in this state.
    pub fn duration(&self, now: Ts) -> Option<Duration> {
        self.since.map(|s| now.since(s))
    }

    /// The index of the task's trace in the model's capture.
    pub fn trace(&self) -> Option<u32> {
        self.trace.map(|t| t.get() - 1)
    }

    /// Sets the index of the task's trace (an index of `u32::MAX` is none).
    pub fn set_trace(&mut self, trace: Option<u32>) {
        self.trace = trace.and_then(|i| NonZeroU32::new(i.wrapping_add(1)));
    }

    /// The resource behind the reason, as the model's id.
    pub fn resource_id(&self) -> Option<u64> {
        self.resource.map(NonZeroU64::get)
    }
}

/// A poll that started this long ago and has not ended means a blocking call.
const STUCK_AFTER: Duration = Duration::from_secs(1);
/// A task polled within this long of `now`, busy for at least
/// `BUSY_RATIO` of the time between its last two stats, counts as running.
const BUSY_WITHIN: Duration = Duration::from_millis(1000);
const BUSY_RATIO: f64 = 0.3;

/// Everything about waits that is indexed once per analysis pass.
pub struct WaitIndex<'a> {
    op_by_task: HashMap<u64, &'a AsyncOp>,
    sleep_by_task: HashMap<u64, (u64, bool)>,
    /// The reason each trace of the model's capture shows.
    captured_reasons: Vec<Reason>,
    /// Groups whose tasks the target's agent wraps for captures (console
    /// mode): a task of one spawned since the agent's last reply is
    /// wrapped too (one spawn line wraps all its tasks or none).
    wrapped_groups: std::collections::HashSet<crate::model::GroupKey>,
    state: &'a State,
}

impl<'a> WaitIndex<'a> {
    pub fn build(state: &'a State) -> Self {
        // A sleep's own op links the sleep to its task (`sleeps.rs`); a
        // tracked wait beside it (a timeout around a lock) says more.
        let tracked = |op: &AsyncOp| op.is_live() && op.source != OpSource::Sleep;
        let mut op_by_task: HashMap<u64, &AsyncOp> = HashMap::new();
        for op in state.console.async_ops.values() {
            let Some(task) = op.task else { continue };
            if !tracked(op) {
                continue;
            }
            let outer = outermost(state, op);
            match op_by_task.get(&task) {
                Some(prev) if prev.created_at >= outer.created_at => {}
                _ => {
                    op_by_task.insert(task, outer);
                }
            }
        }
        // A pending poll op, when we saw one, names the op exactly.
        for (task, poll) in &state.console.pending_polls {
            if let Some(op) = poll
                .async_op
                .and_then(|id| state.console.async_ops.get(&id))
                && tracked(op)
            {
                op_by_task.insert(*task, outermost(state, op));
            }
        }
        let sleep_by_task = super::sleeps::link_sleeps(state, &op_by_task);
        let captured_reasons = state
            .captures
            .as_ref()
            .map(|d| d.traces.iter().map(|t| super::stack::reason(t)).collect())
            .unwrap_or_default();
        let wrapped_groups = match &state.captures {
            Some(d) if !d.agent_wakers.is_empty() => state
                .console
                .tasks
                .values()
                .filter(|t| {
                    t.tokio_id
                        .is_some_and(|id| d.agent_wakers.contains(&id.get()))
                })
                .map(|t| t.group)
                .collect(),
            _ => Default::default(),
        };
        WaitIndex {
            op_by_task,
            sleep_by_task,
            captured_reasons,
            wrapped_groups,
            state,
        }
    }

    pub fn classify(&self, task: &Task, now: Ts) -> Verdict {
        let s = &task.stats;
        let mut v = Verdict::new(
            TaskState::Idle,
            Reason::Untracked,
            task.own_poll.1.or(s.created_at),
        );
        if let Some(d) = s.dropped_at {
            v.state = TaskState::Completed;
            v.reason = Reason::Completed;
            v.since = Some(d);
            return v;
        }
        let in_poll = match (s.last_poll_started, s.last_poll_ended) {
            (Some(st), Some(en)) => st > en,
            (Some(_), None) => true,
            _ => false,
        };
        if in_poll {
            v.state = TaskState::Running;
            v.since = s.last_poll_started;
            let long = s
                .last_poll_started
                .is_some_and(|st| now.since(st) >= STUCK_AFTER);
            v.reason = match (task.group.kind, long) {
                (TaskKind::Blocking, _) => Reason::BlockingCall,
                (_, true) => Reason::StuckInPoll,
                _ => Reason::Running,
            };
            return v;
        }
        // A capture wakes every task it traced; that wake is not the task's.
        let own_wake = s
            .last_wake
            .filter(|w| !self.state.console.capture_windows.covers(*w));
        let woken = match (own_wake, s.last_poll_started) {
            (Some(w), Some(p)) => w > p,
            (Some(_), None) => true,
            (None, None) => s.polls == 0,
            (None, Some(_)) => false,
        };
        if woken {
            v.state = TaskState::Scheduled;
            v.reason = Reason::Scheduled;
            v.since = s.last_wake.or(s.created_at);
            return v;
        }
        // Polled again and again, spending most of the time inside polls:
        // CPU-bound, even though no poll is in progress at this instant.
        if task.busy_ratio().is_some_and(|r| r >= BUSY_RATIO)
            && s.last_poll_ended
                .is_some_and(|e| now.since(e) < BUSY_WITHIN)
        {
            v.state = TaskState::Running;
            v.reason = Reason::Running;
            v.since = s.first_poll;
            return v;
        }
        self.idle_reason(task, &mut v);
        // A capture taken since the task last ran shows its stack: a fact.
        if let (Some(captures), Some(id)) = (&self.state.captures, task.tokio_id)
            && task
                .own_poll
                .0
                .is_none_or(|p| captures.holds_for(id.get(), p))
            && s.created_at.is_none_or(|c| c <= captures.taken_at)
            && let Some((i, _)) = captures.trace_of(id.get())
            && let Some(reason) = self.captured_reasons.get(i as usize)
        {
            // In release builds a bounded send or a lock often shows only
            // the semaphore underneath (the frames above it are inlined):
            // the console's tracked op then says which, and the capture
            // confirms the wait.
            let console_is_finer = matches!(*reason, Reason::Semaphore | Reason::OtherLeaf)
                && matches!(
                    v.reason,
                    Reason::ChannelSend | Reason::Mutex | Reason::RwLock | Reason::Semaphore
                );
            if !console_is_finer {
                v.reason = *reason;
                v.ambiguous = false;
            }
            v.captured = true;
            v.set_trace(Some(i));
        }
        v
    }

    /// The task's live wakers as the console counts them, less the one the
    /// target's agent holds for a task it wraps (to wake it for a capture;
    /// held whenever no capture of the task holds), and whether the task is
    /// such. A count made less that way is never read as "no waker".
    fn wakers(&self, task: &Task) -> (u64, bool) {
        let live = task.stats.live_wakers();
        let may_hold = matches!(
            self.state.agent,
            crate::model::Agent::Ready {
                holds_wakers: true,
                ..
            }
        );
        if may_hold && self.state.captures.is_none() {
            // No reply names the wrapped tasks (fetches off, or none yet):
            // any task may carry one waker of the agent's. Two are then not
            // read as a timeout; none is still none.
            return (if live >= 2 { live - 1 } else { live }, false);
        }
        let held = self.state.captures.as_ref().is_some_and(|d| {
            let wrapped = task
                .tokio_id
                .is_some_and(|id| d.agent_wakers.contains(&id.get()))
                || (self.wrapped_groups.contains(&task.group)
                    && task.stats.created_at.is_some_and(|c| c > d.taken_at));
            // A capture that holds: the agent let go of the waker then.
            let captured = task.tokio_id.is_some_and(|id| {
                d.trace_of(id.get()).is_some()
                    && task.own_poll.0.is_none_or(|p| d.holds_for(id.get(), p))
            });
            wrapped && !captured
        });
        (if held { live.saturating_sub(1) } else { live }, held)
    }

    /// The reason of an idle task from console data alone.
    fn idle_reason(&self, task: &Task, v: &mut Verdict) {
        let (live_wakers, agent_held) = self.wakers(task);
        if let Some(op) = self.op_by_task.get(&task.id) {
            let res = op
                .resource
                .and_then(|r| self.state.console.resources.get(&r));
            v.reason = reason_for_op(op, res);
            v.resource = op.resource.and_then(NonZeroU64::new);
            return;
        }
        // The console has not sent the spans of its last poll yet, and its
        // group's tasks were seen creating sleeps (see model::late).
        if !self.sleep_by_task.contains_key(&task.id)
            && live_wakers <= 1
            && task
                .own_poll
                .0
                .is_some_and(|p| self.state.console.late.unseen(p))
            && self.state.console.late.sleeps(task.group)
        {
            v.reason = Reason::Sleep;
            v.ambiguous = true;
            return;
        }
        if let Some((res, ambiguous)) = self.sleep_by_task.get(&task.id) {
            v.reason = if live_wakers >= 2 {
                Reason::UntrackedWithTimeout
            } else {
                Reason::Sleep
            };
            v.resource = NonZeroU64::new(*res);
            v.ambiguous = *ambiguous;
            return;
        }
        v.reason = match live_wakers {
            // `block_on`'s future is polled by the thread that blocks on
            // it, whose waker the console does not count: not lost.
            0 if task.group.kind == crate::model::TaskKind::BlockOn => Reason::Untracked,
            0 if agent_held => Reason::Untracked,
            0 => Reason::NoWaker,
            1 => Reason::Untracked,
            _ => Reason::UntrackedWithTimeout,
        };
    }
}

/// Follows `parent` links to the outermost live op.
fn outermost<'a>(state: &'a State, op: &'a AsyncOp) -> &'a AsyncOp {
    let mut cur = op;
    for _ in 0..8 {
        match cur.parent.and_then(|p| state.console.async_ops.get(&p)) {
            Some(parent) if parent.is_live() => cur = parent,
            _ => break,
        }
    }
    cur
}

fn reason_for_op(op: &AsyncOp, res: Option<&Resource>) -> Reason {
    let ty = res.map(|r| &**r.concrete_type()).unwrap_or("");
    match op.source {
        OpSource::Mutex => Reason::Mutex,
        OpSource::RwLock => Reason::RwLock,
        OpSource::Semaphore => Reason::Semaphore,
        OpSource::Oneshot => Reason::Oneshot,
        _ if ty == "Sender|Receiver" => Reason::Oneshot,
        OpSource::Barrier => Reason::Barrier,
        OpSource::Interval => Reason::Interval,
        // Linked as sleeps are (`sleeps.rs`), not as tracked waits.
        OpSource::Sleep => Reason::Sleep,
        // The bounded mpsc channel's internal semaphore: internal, with no
        // parent resource (Mutex/RwLock/Semaphore ones have one).
        OpSource::Acquire => match res {
            Some(r) if r.internal() && r.parent().is_none() && op.parent.is_none() => {
                Reason::ChannelSend
            }
            _ => Reason::Semaphore,
        },
        OpSource::Other => Reason::OtherResource,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Update;
    use crate::model::update::{
        AsyncOpStats, NewAsyncOp, NewResource, NewTask, ResourceKind, ResourceStats, TaskStats,
    };

    fn ts(ms: u64) -> Ts {
        Ts::from_nanos(1_800_000_000_000_000_000 + ms as i64 * 1_000_000)
    }

    /// One task (id 1) idle since a poll at 100 ms with `wakers` out, and
    /// async ops `(id, source, resource, resource type)` it polled.
    fn verdict(wakers: u32, ops: &[(u64, &str, u64, &str)]) -> Verdict {
        let mut up = Update {
            now: Some(ts(10_000)),
            has_metadata: true,
            ..Update::default()
        };
        up.tasks.push(NewTask {
            id: 1,
            location: None,
            fields: Vec::new(),
        });
        let polled = Some(ts(100));
        up.task_stats.push((
            1,
            TaskStats {
                created_at: polled,
                polls: 1,
                first_poll: polled,
                last_poll_started: polled,
                last_poll_ended: Some(ts(101)),
                waker_clones: wakers,
                ..TaskStats::default()
            },
        ));
        for &(id, source, resource, ty) in ops {
            up.resources.push(NewResource {
                id: resource,
                concrete_type: ty.into(),
                kind: match ty {
                    "Sleep" => ResourceKind::Timer,
                    _ => ResourceKind::Other("Sync".into()),
                },
                location: None,
                parent: None,
                internal: false,
            });
            up.resource_stats.push((
                resource,
                ResourceStats {
                    created_at: polled,
                    ..ResourceStats::default()
                },
            ));
            up.async_ops.push(NewAsyncOp {
                id,
                source: OpSource::parse(source),
                parent: None,
                resource: Some(resource),
            });
            up.async_op_stats.push((
                id,
                AsyncOpStats {
                    created_at: Some(ts(100 + id)),
                    task: Some(1),
                    polls: 1,
                    ..AsyncOpStats::default()
                },
            ));
        }
        let mut st = State::default();
        st.begin_stream();
        st.apply(up);
        let task = st.console.tasks.get(&1).expect("task");
        WaitIndex::build(&st).classify(task, ts(10_000))
    }

    #[test]
    fn a_sleeps_own_op_reads_sleep_not_an_unnamed_resource() {
        // tokio-console's app.rs on tokio 1.47: `wait` awaits its sleep.
        let v = verdict(1, &[(11, "Sleep::new_timeout", 10, "Sleep")]);
        assert_eq!(
            (v.reason, v.resource_id(), v.ambiguous),
            (Reason::Sleep, Some(10), false)
        );
        let v = verdict(1, &[(11, "Sleep::reset", 10, "Sleep")]);
        assert_eq!(v.reason, Reason::Sleep);
    }

    #[test]
    fn a_sleep_beside_another_wait_is_its_timeout() {
        // `timeout(d, rx.recv())`: the timer's waker and the channel's.
        let v = verdict(2, &[(11, "Sleep::new_timeout", 10, "Sleep")]);
        assert_eq!(v.reason, Reason::UntrackedWithTimeout);
        // `timeout(d, mutex.lock())`: the lock is the wait.
        let v = verdict(
            2,
            &[
                (11, "Sleep::new_timeout", 10, "Sleep"),
                (21, "Mutex::lock", 20, "Mutex"),
            ],
        );
        assert_eq!((v.reason, v.resource_id()), (Reason::Mutex, Some(20)));
    }
}
