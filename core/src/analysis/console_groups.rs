//! The console source's groups: its tasks, classified one by one from
//! console-subscriber's data, grouped by spawn location, then judged.

use super::blocked::{Reason, TaskState, Verdict, WaitIndex};
use super::judge::{Frame, Lifetimes, judge};
use super::reason::ReasonCount;
use super::trend;
use super::types::{Group, Params, StackCount, TaskRow, Totals, display_order};
use crate::model::{GroupKey, State, Ts};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A task as grouping sees it: classified, with what rows show.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Classified<'a> {
    pub id: u64,
    pub group: GroupKey,
    pub name: Option<&'a str>,
    pub created: Option<Ts>,
    pub verdict: Verdict,
    /// tokio-console's warnings for the task.
    pub lints: super::lint::Lints,
}

/// Groups the state's tasks and classifies each one.
pub fn group_tasks(state: &State, now: Ts, params: &Params) -> (Vec<Group>, Totals) {
    let index = WaitIndex::build(state);
    let tasks = state.console.tasks.values().map(|t| {
        let verdict = index.classify(t, now);
        Classified {
            id: t.id,
            group: t.group,
            name: t.name(),
            created: t.stats.created_at,
            verdict,
            lints: super::lint::of_task(t, &verdict),
        }
    });
    let frame = Frame {
        locations: &state.log.locations,
        histories: &state.log.histories,
        now,
        horizon: state.log.health.horizon.unwrap_or(now),
        counts_since: state.log.health.counts_since,
        gaps: &state.log.gaps,
        traces: state
            .captures
            .as_ref()
            .map(|d| &d.traces[..])
            .unwrap_or(&[]),
        aggregates: state.hooks.as_ref(),
        captures: state.captures.as_ref(),
    };
    build_groups(tasks, &frame, params)
}

/// Builds the groups of both sources, as peers: the console source's from
/// its classified tasks, the hooks source's from the target's own counts
/// (`frame.aggregates`), each judged by the same growth rule. The live
/// view and snapshots share this, so both give the same analysis.
pub fn build_groups<'a>(
    tasks: impl Iterator<Item = Classified<'a>>,
    frame: &Frame<'_>,
    params: &Params,
) -> (Vec<Group>, Totals) {
    let mut totals = Totals::default();
    let mut out = console_groups(tasks, frame, params, &mut totals);
    if let Some(agg) = frame.aggregates {
        out.extend(super::hooks_groups::groups(agg, frame, params, &mut totals));
    }
    out.sort_by(display_order);
    totals.groups = out.len() as u32;
    totals.suspects = out.iter().filter(|g| g.suspect.is_some()).count() as u32;
    (out, totals)
}

/// The console source's groups: its tasks by spawn location.
fn console_groups<'a>(
    tasks: impl Iterator<Item = Classified<'a>>,
    frame: &Frame<'_>,
    params: &Params,
    totals: &mut Totals,
) -> Vec<Group> {
    let now = frame.now;
    let mut groups: HashMap<GroupKey, Group> = HashMap::new();
    let mut names: HashMap<GroupKey, HashMap<Arc<str>, u32>> = HashMap::new();
    let mut reasons: HashMap<GroupKey, HashMap<Reason, ReasonCount>> = HashMap::new();
    let mut stacks: HashMap<GroupKey, HashMap<u32, u32>> = HashMap::new();
    let mut lints: HashMap<GroupKey, [u32; super::lint::Lint::ALL.len()]> = HashMap::new();
    for task in tasks {
        let verdict = task.verdict;
        let g = groups.entry(task.group).or_insert_with(|| {
            Group::new(task.group, frame.locations.name(task.group.loc).clone())
        });
        g.tasks.push(TaskRow {
            id: task.id,
            target: 0,
            verdict,
            created: task.created,
        });
        if verdict.state == TaskState::Completed {
            g.finished += 1;
            totals.finished += 1;
            continue;
        }
        g.live += 1;
        totals.live += 1;
        if !task.lints.is_empty() {
            let counts = lints.entry(task.group).or_default();
            for l in task.lints.iter() {
                counts[l as usize] += 1;
            }
        }
        match verdict.state {
            TaskState::Running => {
                g.running += 1;
                totals.running += 1;
            }
            TaskState::Scheduled => {
                g.scheduled += 1;
                totals.scheduled += 1;
            }
            _ => {
                g.idle += 1;
                totals.idle += 1;
            }
        }
        let age = task.created.map(|c| now.since(c));
        g.oldest = g.oldest.max(age);
        let dur = verdict.duration(now).unwrap_or_default();
        if verdict.state == TaskState::Idle {
            g.longest_idle = g.longest_idle.max(Some(dur));
        }
        let rc = reasons
            .entry(task.group)
            .or_default()
            .entry(verdict.reason)
            .or_insert(ReasonCount {
                reason: verdict.reason,
                tasks: 0,
                longest: Duration::ZERO,
                ..ReasonCount::default()
            });
        rc.tasks += 1;
        rc.longest = rc.longest.max(dur);
        if verdict.captured {
            rc.captured += 1;
        }
        if let Some(t) = verdict.trace() {
            *stacks.entry(task.group).or_default().entry(t).or_default() += 1;
        }
        if let Some(name) = task.name {
            let per = names.entry(task.group).or_default();
            if let Some(c) = per.get_mut(name) {
                *c += 1;
            } else {
                per.insert(Arc::from(name), 1);
            }
        }
    }
    // Groups with history but no retained tasks (everything finished long
    // ago) are left out: nothing to show but a zero.
    let horizon = frame.horizon;
    groups
        .into_values()
        .map(|mut g| {
            // An analysis is kept while the next is built: no spare rows.
            g.tasks.shrink_to_fit();
            if let Some(r) = reasons.remove(&g.key) {
                let mut v: Vec<ReasonCount> = r.into_values().collect();
                v.sort_by(|a, b| b.tasks.cmp(&a.tasks).then(a.reason.cmp(&b.reason)));
                g.reasons = v;
            }
            if let Some(st) = stacks.remove(&g.key) {
                let mut v: Vec<StackCount> = st
                    .into_iter()
                    .filter_map(|(i, tasks)| {
                        let trace = frame.traces.get(i as usize)?.clone();
                        Some(StackCount {
                            label: super::stack::label(&trace),
                            reason: super::stack::reason(&trace),
                            trace,
                            tasks,
                        })
                    })
                    .collect();
                v.sort_by(|a, b| b.tasks.cmp(&a.tasks).then_with(|| a.label.cmp(&b.label)));
                g.stacks = v;
            }
            if let Some(counts) = lints.remove(&g.key) {
                g.lints = super::lint::Lint::ALL
                    .into_iter()
                    .zip(counts)
                    .filter(|(_, n)| *n > 0)
                    .collect();
            }
            if let Some(n) = names.remove(&g.key) {
                g.distinct_names = n.len() as u32;
                let mut v: Vec<(Arc<str>, u32)> = n.into_iter().collect();
                v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                v.truncate(5);
                g.names = v;
            }
            // Longest in their state first; finished tasks last.
            g.tasks.sort_unstable_by_key(|r| {
                (
                    r.verdict.state == TaskState::Completed,
                    r.verdict.since,
                    r.id,
                )
            });
            let mut lifetimes: Vec<Duration> = g
                .tasks
                .iter()
                .filter(|r| r.verdict.state == TaskState::Completed)
                .filter_map(|r| Some(r.verdict.since?.since(r.created?)))
                .collect();
            lifetimes.sort_unstable();
            let lives = Lifetimes::of_sorted(&lifetimes);
            let ages = trend::ExactAges(
                g.tasks
                    .iter()
                    .filter(|r| r.verdict.state != TaskState::Completed)
                    .filter_map(|r| r.created.map(|c| horizon.since(c)))
                    .collect(),
            );
            judge(&mut g, frame, params, lives, &ages);
            g
        })
        .filter(|g| g.live > 0 || g.finished > 0)
        .collect()
}
