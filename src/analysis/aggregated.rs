//! Groups the target counted itself (the hooks source), and the rows of
//! the open group's page of tasks.

use super::blocked::{Reason, TaskState, Verdict};
use super::group::{Frame, Group, Params, StackCount, TaskRow, judge};
use super::reason::ReasonCount;
use crate::model::GroupKey;
use crate::model::aggregate::{AggGroup, PagedTask};
use std::collections::HashMap;
use std::time::Duration;

/// A group the target counted itself (the hooks source): counts, states
/// and ages from the agent; `running` and `idle` are the only reasons it
/// knows (a task dump names the waits). The typical lifetime is the mean
/// of the terminated tasks', and the tasks that persist are those whose
/// age bucket lies wholly between the grace period and the window.
pub(super) fn group(key: GroupKey, a: &AggGroup, frame: &Frame<'_>, params: &Params) -> Group {
    let now = frame.now;
    let mut g = Group::new(key, frame.locations.name(key.loc).clone());
    let clamp = |n: u64| n.min(u64::from(u32::MAX)) as u32;
    g.live = clamp(a.live);
    g.running = clamp(a.running);
    g.idle = clamp(a.idle);
    g.oldest = a.oldest_created.map(|c| now.since(c));
    g.longest_idle = a.earliest_idle.map(|c| now.since(c));
    let mut reasons = Vec::new();
    if a.running > 0 {
        reasons.push(ReasonCount {
            reason: Reason::Running,
            tasks: g.running,
            longest: a.longest_poll,
            from_dump: 0,
        });
    }
    // A task dump names the waits: the dumped tasks of this location by
    // stack, at most as many as are idle now; the rest stay `idle`.
    let longest = g.longest_idle.unwrap_or_default();
    let mut unnamed = g.idle;
    if let Some(d) = frame.dump
        && let Some(counts) = d.by_location.get(&*g.location)
    {
        let mut by_reason: HashMap<Reason, u32> = HashMap::new();
        let mut stacks: Vec<StackCount> = Vec::new();
        for &(t, n) in counts {
            let Some(trace) = d.traces.get(t as usize) else {
                continue;
            };
            let n = n.min(unnamed);
            if n == 0 {
                continue;
            }
            unnamed -= n;
            let reason = super::stack::reason(trace);
            *by_reason.entry(reason).or_default() += n;
            stacks.push(StackCount {
                label: super::stack::label(trace),
                reason,
                trace: trace.clone(),
                tasks: n,
            });
        }
        for (reason, n) in by_reason {
            reasons.push(ReasonCount {
                reason,
                tasks: n,
                longest,
                from_dump: n,
            });
        }
        stacks.sort_by(|a, b| b.tasks.cmp(&a.tasks).then_with(|| a.label.cmp(&b.label)));
        g.stacks = stacks;
    }
    if unnamed > 0 {
        reasons.push(ReasonCount {
            reason: Reason::Idle,
            tasks: unnamed,
            longest,
            from_dump: 0,
        });
    }
    reasons.sort_by(|x, y| y.tasks.cmp(&x.tasks).then(x.reason.cmp(&y.reason)));
    g.reasons = reasons;
    g.spawned_from = a.parents.clone();
    g.spawned_outside = a.unparented;
    if let Some((k, page)) = frame.aggregates.and_then(|x| x.page.as_ref())
        && *k == key
    {
        g.tasks = page.tasks.iter().map(|t| row(t, frame)).collect();
        // Longest in their state first.
        g.tasks
            .sort_unstable_by_key(|r| (r.verdict.since.is_none(), r.verdict.since, r.id));
    }
    let typical_lifetime = a.mean_lifetime();
    let grace = (typical_lifetime.unwrap_or_default() * 3).max(Duration::from_secs(2));
    let persisting = clamp(a.aged_between(grace, params.window));
    judge(&mut g, frame, params, typical_lifetime, persisting);
    g
}

/// A task of the open group's page (the hooks source): running since its
/// poll began (stuck after a second in one poll), else idle since its
/// last poll ended, with its wait from the dump when the dump covers it
/// and it has not run since (other than for the dump's own polls).
fn row(t: &PagedTask, frame: &Frame<'_>) -> TaskRow {
    let (state, reason, since) = match (t.running_since, t.idle_since) {
        (Some(s), _) if frame.now.since(s) >= Duration::from_secs(1) => {
            (TaskState::Running, Reason::StuckInPoll, Some(s))
        }
        (Some(s), _) => (TaskState::Running, Reason::Running, Some(s)),
        (None, s) => (TaskState::Idle, Reason::Idle, s),
    };
    let mut verdict = Verdict::new(state, reason, since);
    if state == TaskState::Idle
        && let Some(d) = frame.dump
        // The dump itself polls every task (and wakes it right after).
        && since.is_some_and(|s| s <= d.window_end())
        && let Some((i, trace)) = d.trace_of(t.id)
    {
        verdict.reason = super::stack::reason(trace);
        verdict.from_dump = true;
        verdict.set_trace(Some(i));
    }
    TaskRow {
        id: t.id,
        target: 0,
        verdict,
        created: t.created,
    }
}
