//! Groups the target counted itself (the hooks source), and the rows of
//! the open group's page of tasks.

use super::blocked::{Reason, TaskState, Verdict};
use super::judge::{Frame, Lifetimes, judge};
use super::reason::ReasonCount;
use super::types::{Group, Params, StackCount, TaskRow, WaitCoverage};
use crate::model::GroupKey;
use crate::model::counted::{AggGroup, PagedTask, age_bucket_edge};
use std::collections::HashMap;
use std::time::Duration;

/// A group the target counted itself (the hooks source): counts, states
/// and ages from the agent; `running` and `idle` are the only reasons it
/// knows (a capture names the waits). The typical lifetime is the mean
/// of the terminated tasks', and the tasks that persist are counted
/// between bucket bounds.
/// The hooks source's groups: the target's own count per spawn location.
/// Sites whose tasks all ended long ago show only while their count
/// still changed within the window.
pub(super) fn groups(
    agg: &crate::model::counted::Aggregates,
    frame: &Frame<'_>,
    params: &Params,
    totals: &mut super::Totals,
) -> Vec<Group> {
    let mut out = Vec::new();
    for (key, a) in &agg.groups {
        let g = group(*key, a, frame, params);
        totals.live = totals.live.saturating_add(g.live);
        totals.running = totals.running.saturating_add(g.running);
        totals.idle = totals.idle.saturating_add(g.idle);
        if g.live > 0 || g.delta != 0 {
            out.push(g);
        }
    }
    out
}

fn group(key: GroupKey, a: &AggGroup, frame: &Frame<'_>, params: &Params) -> Group {
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
            ..ReasonCount::default()
        });
    }
    // How the idle tasks' waits are known, three ways never mixed up:
    // - exact: the agent's captures, by stack, at most as many as are idle
    //   now (marked `*`);
    // - inferred: the reachable idle tasks not captured yet run the same
    //   code from the same place, so they count in the captured ones'
    //   proportions; and a library's site whose tasks are out of reach
    //   has a known shape (`sites.rs`): both marked inferred;
    // - not known: reachable but not captured yet with nothing to infer
    //   from (`not captured yet`), or out of reach (`out of reach`).
    // `idle` is a state, never a stand-in for a wait.
    let longest = g.longest_idle.unwrap_or_default();
    let mut unnamed = g.idle;
    let mut exact: HashMap<Reason, u32> = HashMap::new();
    if let Some(d) = frame.captures
        && let Some(counts) = d.by_location.get(&*g.location)
    {
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
            *exact.entry(reason).or_default() += n;
            stacks.push(StackCount {
                label: super::stack::label(trace),
                reason,
                trace: trace.clone(),
                tasks: n,
            });
        }
        stacks.sort_by(|a, b| b.tasks.cmp(&a.tasks).then_with(|| a.label.cmp(&b.label)));
        g.stacks = stacks;
    }
    let captured: u32 = exact.values().sum();
    let reachable_idle = clamp(a.reachable).min(g.idle);
    let rest = reachable_idle.saturating_sub(captured).min(unnamed);
    let mut inferred = if captured > 0 {
        share(&exact, rest)
    } else {
        HashMap::new()
    };
    let from_site: u32 = inferred.values().sum();
    unnamed -= from_site;
    let uncaptured = rest - from_site;
    unnamed -= uncaptured;
    // The rest are out of reach.
    let known = super::sites::known(&g.location);
    let out_of_reach = unnamed;
    let mut unknown = out_of_reach;
    if let Some(shape) = known.and_then(|k| k.shape)
        && out_of_reach > 0
    {
        *inferred.entry(shape).or_default() += out_of_reach;
        unknown = 0;
    }
    let mut all: Vec<Reason> = exact.keys().chain(inferred.keys()).copied().collect();
    all.sort();
    all.dedup();
    for reason in all {
        let n = exact.get(&reason).copied().unwrap_or(0);
        let i = inferred.get(&reason).copied().unwrap_or(0);
        reasons.push(ReasonCount {
            reason,
            tasks: n + i,
            longest,
            captured: n,
            inferred: i,
        });
    }
    if a.reachable > 0 || a.live > 0 {
        g.waits = Some(WaitCoverage {
            reachable: clamp(a.reachable),
            captured,
            inferred: from_site,
            out_of_reach,
            newest: a.newest_wait.map(|t| now.since(t)),
            site: known,
        });
    }
    for (reason, tasks) in [
        (Reason::Uncaptured, uncaptured),
        (Reason::OutOfReach, unknown),
    ] {
        if tasks > 0 {
            reasons.push(ReasonCount {
                reason,
                tasks,
                longest,
                ..ReasonCount::default()
            });
        }
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
    let lives = Lifetimes {
        typical: a.mean_lifetime(),
        tail: a.lifetime_quantile(super::trend::TAIL),
    };
    judge(&mut g, frame, params, lives, a);
    g
}

/// Ages in power-of-two buckets: a span's edges move inwards to bucket
/// bounds, where the count is exact.
impl super::trend::Ages for AggGroup {
    fn between(&self, young: Duration, old: Duration) -> Option<(Duration, Duration, u64)> {
        let (young, old) = (age_bucket_edge(young, true), age_bucket_edge(old, false));
        (young < old).then(|| (young, old, self.aged_between(young, old)))
    }
    fn at_least(&self, age: Duration) -> u64 {
        self.aged_at_least(age_bucket_edge(age, true))
    }
}

/// `n` tasks shared out in the proportions of `by`, by largest
/// remainder (the parts add up to `n`).
fn share(by: &HashMap<Reason, u32>, n: u32) -> HashMap<Reason, u32> {
    let total: u64 = by.values().map(|&v| u64::from(v)).sum();
    if total == 0 || n == 0 {
        return HashMap::new();
    }
    let mut parts: Vec<(Reason, u32, u64)> = by
        .iter()
        .map(|(&r, &v)| {
            let x = u64::from(n) * u64::from(v);
            (r, (x / total) as u32, x % total)
        })
        .collect();
    let mut left = n - parts.iter().map(|p| p.1).sum::<u32>();
    parts.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    for p in parts.iter_mut() {
        if left == 0 {
            break;
        }
        p.1 += 1;
        left -= 1;
    }
    parts.into_iter().map(|(r, v, _)| (r, v)).collect()
}

/// A task of the open group's page (the hooks source): running since its
/// poll began (stuck after a second in one poll), else idle since its
/// last poll ended, with its wait from the capture when the capture covers it
/// and it has not run since (other than for the capture's own polls).
fn row(t: &PagedTask, frame: &Frame<'_>) -> TaskRow {
    let (state, reason, since) = match (t.running_since, t.idle_since) {
        (Some(s), _) if frame.now.since(s) >= Duration::from_secs(1) => {
            (TaskState::Running, Reason::StuckInPoll, Some(s))
        }
        (Some(s), _) => (TaskState::Running, Reason::Running, Some(s)),
        (None, s) if t.reachable => (TaskState::Idle, Reason::Uncaptured, s),
        (None, s) => (TaskState::Idle, Reason::OutOfReach, s),
    };
    let mut verdict = Verdict::new(state, reason, since);
    if state == TaskState::Idle
        && let Some(d) = frame.captures
        // Captured after its last real poll (the capture's own polls are
        // not the task's).
        && since.is_some_and(|s| d.holds_for(t.id, s))
        && let Some((i, trace)) = d.trace_of(t.id)
    {
        verdict.reason = super::stack::reason(trace);
        verdict.captured = true;
        verdict.set_trace(Some(i));
    }
    TaskRow {
        id: t.id,
        target: 0,
        verdict,
        created: t.created,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncaptured_tasks_are_shared_out_in_the_captured_proportions() {
        let by: HashMap<Reason, u32> = [(Reason::SocketRead, 2), (Reason::Sleep, 1)].into();
        // 6.67 and 3.33: the one left over goes to the larger remainder.
        let got = share(&by, 10);
        assert_eq!(got.values().sum::<u32>(), 10);
        assert_eq!(got[&Reason::SocketRead], 7);
        assert_eq!(got[&Reason::Sleep], 3);
        let exact = share(&by, 9);
        assert_eq!((exact[&Reason::SocketRead], exact[&Reason::Sleep]), (6, 3));
        assert!(share(&by, 0).is_empty());
        assert!(share(&HashMap::new(), 5).is_empty());
    }
}
