//! Grouping live tasks by spawn location: the "N tasks @ file:line" view.

use super::blocked::{Reason, TaskState, Verdict, WaitIndex};
use super::reason::ReasonCount;
use super::suspect::{self, Suspect};
use super::trend::{self, Growth};
use super::wording;
use crate::model::aggregate::Aggregates;
use crate::model::{CountHistory, GroupKey, Locations, State, TaskDump, TaskKind, Trace, Ts};
use std::collections::HashMap;
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

/// Tasks of a group that share one async stack (from a task dump), as
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
    /// Live tasks split by identical stack (when a dump covers them),
    /// largest first.
    pub stacks: Vec<StackCount>,
    /// Where the tasks that spawned these were spawned, most first, with
    /// how many each spawned (the hooks source), and how many live tasks
    /// were spawned from outside any task.
    pub spawned_from: Vec<(Arc<str>, u64)>,
    pub spawned_outside: u64,
    /// With several targets: each one's part, most tasks first (empty for
    /// one target).
    pub shares: Vec<super::fleet::Share>,
    /// tokio-console's warnings and how many live tasks carry each.
    pub lints: Vec<(super::lint::Lint, u32)>,
    /// With the hooks source: how much of the group's waits the agent's
    /// captures cover.
    pub waits: Option<WaitCoverage>,
    /// A suspect's likely cause and its fix, when a rule fits its evidence.
    pub advice: Option<super::advice::Advice>,
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

    /// " (blocking)" for tasks that are not plain tasks, else "".
    pub fn kind_suffix(&self) -> String {
        wording::kind_suffix(self.kind)
    }

    /// " [conn-handler]" or " [pool-worker-0 +3 names]": the names a row shows.
    /// Names, then where the spawning tasks were spawned (hooks source).
    pub fn names_suffix(&self) -> String {
        let names = self.names.iter().map(|(n, _)| &**n);
        // A place split by spawner names its spawner already.
        let (_, spawner) = taskscope_proto::names::unsplit_location(&self.location);
        let parents = self
            .spawned_from
            .iter()
            .filter(|(l, _)| Some(&**l) != spawner)
            .map(|(l, n)| (&**l, *n));
        let shares = self.shares.iter().map(|s| (&*s.target, s.live, s.suspect));
        let lints = self.lints.iter().map(|(l, n)| (l.label(), u64::from(*n)));
        wording::names(names, self.distinct_names, 1, 24, str::to_string)
            + &wording::targets(shares, 3, str::to_string)
            + &wording::ancestry(parents, 1, str::to_string)
            + &wording::lints(lints)
    }

    /// How the group's waits are known, in words (the hooks source): "waits
    /// captured for 12 of 40 tasks, 28 inferred from them, newest 1.2s
    /// ago"; `None` on the console source.
    pub fn waits_text(&self) -> Option<String> {
        self.waits.map(|w| wording::coverage(&w))
    }

    /// "97% chan send, 3% running" — the mix as text, largest first.
    pub fn mix_text(&self, max_parts: usize) -> String {
        let total: u32 = self.reasons.iter().map(|r| r.tasks).sum();
        if total == 0 {
            return String::new();
        }
        let parts = self.reasons.iter().map(|r| wording::MixPart {
            percent: wording::percent(r.tasks, total),
            label: r.reason.short(),
            from_dump: wording::mostly_from_dump(r.from_dump, r.tasks),
            inferred: wording::mostly_inferred(r.inferred, r.tasks),
        });
        wording::mix(parts, max_parts, self.reasons.len() > max_parts)
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

/// What grouping needs besides the tasks: where names and histories live,
/// and the target's clock.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub locations: &'a Locations,
    pub histories: &'a HashMap<GroupKey, CountHistory>,
    pub now: Ts,
    /// Newest instant for which counts are complete.
    pub horizon: Ts,
    /// Oldest instant from which they are (none: the histories' start).
    pub counts_since: Option<Ts>,
    /// Target-time spans without data (while disconnected).
    pub gaps: &'a [(Ts, Ts)],
    /// The traces verdicts refer to (`Verdict::trace`), from a task dump.
    pub traces: &'a [Arc<Trace>],
    /// Groups the target counted itself (the hooks source).
    pub aggregates: Option<&'a Aggregates>,
    /// The task dump, for the hooks source's groups (by location).
    pub dump: Option<&'a TaskDump>,
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
        traces: state.dump.as_ref().map(|d| &d.traces[..]).unwrap_or(&[]),
        aggregates: state.hooks.as_ref(),
        dump: state.dump.as_ref(),
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
        out.extend(super::aggregated::groups(agg, frame, params, &mut totals));
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
        if verdict.from_dump {
            rc.from_dump += 1;
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

/// The order groups are listed in: suspects first, then by size.
pub fn display_order(a: &Group, b: &Group) -> std::cmp::Ordering {
    b.suspect
        .is_some()
        .cmp(&a.suspect.is_some())
        .then(b.live.cmp(&a.live))
        .then_with(|| a.location.cmp(&b.location))
        .then(a.kind.cmp(&b.kind))
}

/// The count history's verdicts on a group: change over the window,
/// growth, sparkline, suspect.
/// How long a group's finished tasks lived: the typical (median or
/// mean) lifetime and the tail's (see [`trend::TAIL`]).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Lifetimes {
    pub typical: Option<Duration>,
    pub tail: Option<Duration>,
}

impl Lifetimes {
    /// From every finished task's lifetime, sorted (the console source):
    /// the median and the tail's quantile.
    pub fn of_sorted(sorted: &[Duration]) -> Lifetimes {
        Lifetimes {
            typical: sorted.get(sorted.len() / 2).copied(),
            tail: (!sorted.is_empty()).then(|| {
                let rank = (sorted.len() as f64 * trend::TAIL).ceil() as usize;
                sorted[rank.clamp(1, sorted.len()) - 1]
            }),
        }
    }
}

pub(super) fn judge(
    g: &mut Group,
    frame: &Frame<'_>,
    params: &Params,
    lives: Lifetimes,
    ages: &dyn trend::Ages,
) {
    let horizon = frame.horizon;
    let window_start = horizon.minus(params.window);
    let mut finished_in_window = 0;
    if let Some(h) = frame.histories.get(&g.key) {
        let counts = h.fine_counts(window_start.minus(Duration::from_secs(1)), horizon);
        if let (Some(first), Some(last)) = (counts.first(), counts.last()) {
            g.delta = last.1 - first.1;
        }
        let since = frame.counts_since.map_or(h.start(), |s| s.max(h.start()));
        let grace = trend::grace(lives.typical, lives.tail);
        g.growth = trend::growth_over(h, since, horizon, params.window, grace, ages);
        finished_in_window = u64::from(
            h.flows(
                horizon.minus(g.growth.window()),
                horizon.plus(Duration::from_secs(1)),
            )
            .deaths,
        );
        let spark_from = horizon.minus(Duration::from_secs(params.spark_points as u64));
        g.spark = h
            .fine_counts(spark_from, horizon)
            .into_iter()
            .map(|(t, c)| {
                let blind = frame.gaps.iter().any(|(a, b)| t > *a && t <= *b);
                (!blind).then_some(c.max(0) as u64)
            })
            .collect();
    }
    let ctx = suspect::Context {
        window: g.growth.window(),
        finished_in_window,
        typical_lifetime: lives.typical,
    };
    let facts = suspect::Facts {
        live: g.live,
        main: g.main_reason(),
        longest_idle: g.longest_idle,
        lost: (g.kind != TaskKind::BlockOn)
            .then(|| {
                g.reasons
                    .iter()
                    .find(|r| r.reason == Reason::NoWaker)
                    .copied()
            })
            .flatten(),
    };
    g.suspect = suspect::judge(&facts, &g.growth, &ctx);
    g.advice = super::advice::advise(g);
}
