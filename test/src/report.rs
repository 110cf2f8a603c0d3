//! The failure: each leaked group named as taskscope's view names it, by
//! spawn location, with its wait, its spawn ancestry and, when a rule fits,
//! the likely cause and the fix (`taskscope_core::analysis::advice`).

use crate::census::{Captures, LiveTask};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use taskscope_core::analysis::advice::advise;
use taskscope_core::analysis::stack;
use taskscope_core::analysis::types::{Advice, Group, StackCount, Suspect, SuspectKind};
use taskscope_core::analysis::{Reason, ReasonCount};
use taskscope_core::model::{GroupKey, LocId, TaskKind, Trace, UNKNOWN_LOCATION};

/// What a check looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One test: the tasks it spawned (on its own runtime, or on the
    /// shared one by spawn ancestry).
    Test,
    /// A whole test binary's shared runtime, at the binary's end.
    Binary,
}

/// The tasks a check found alive after its grace period, by group.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Leaks {
    pub scope: Scope,
    /// Leaked tasks in all.
    pub tasks: usize,
    /// How long they were given to end.
    pub grace: Duration,
    /// Most tasks first.
    pub groups: Vec<LeakedGroup>,
}

/// Leaked tasks of one place.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LeakedGroup {
    /// The spawn location as taskscope's view names it: `file:line:col`,
    /// or for a line that spawns on others' behalf (a generic executor)
    /// `LINE ← SPAWNER`.
    pub location: String,
    pub tasks: usize,
    /// tokio's ids of the tasks.
    pub ids: Vec<u64>,
    /// What they wait on, most tasks first.
    pub waits: Vec<(Wait, usize)>,
    /// Who spawned them, most tasks first.
    pub spawned_by: Vec<(SpawnedBy, usize)>,
    /// The most common captured stack in one line: the task's own frame and
    /// the call it waits in.
    pub stack: Option<String>,
    /// The likely cause and the fix, when a rule fits the evidence.
    pub advice: Option<Advice>,
}

/// What a leaked task waits on, as far as the check can know.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Wait {
    /// Its wait, captured from the task itself (a fact).
    Captured(Reason),
    /// Inside a poll when checked (busy, or blocking its worker).
    Running,
    /// The agent can capture it, but it did not answer in time.
    NotCaptured,
    /// Spawned without `taskscope_agent::spawn` / `traced`: its wait is
    /// not known (its place and ancestry are).
    OutOfReach,
    /// No waits on this build or platform, and why.
    NotKnown(String),
}

/// Who spawned a leaked task.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpawnedBy {
    /// The test's body (on the shared runtime, the test's root task).
    TestBody,
    /// A task spawned at this place.
    TasksOf(String),
    /// Code outside any task: a test body run by `block_on`, or another
    /// thread.
    Outside,
}

impl Wait {
    fn phrase(&self) -> String {
        match self {
            Wait::Captured(r) => format!("{} (captured)", r.phrase()),
            Wait::Running => "running (inside a poll when checked)".into(),
            Wait::NotCaptured => "its wait not captured (the task did not answer in time)".into(),
            Wait::OutOfReach => {
                "out of reach (spawned without taskscope_agent::spawn or traced: its wait is not known)"
                    .into()
            }
            Wait::NotKnown(why) => format!("wait not known ({why})"),
        }
    }
}

impl LeakedGroup {
    /// The wait most of its tasks share.
    pub fn main_wait(&self) -> Option<&Wait> {
        self.waits.first().map(|(w, _)| w)
    }
}

impl Leaks {
    /// The group whose location contains `pattern` (a file, `file:line`).
    pub fn group(&self, pattern: &str) -> Option<&LeakedGroup> {
        self.groups.iter().find(|g| g.location.contains(pattern))
    }
}

/// The report on `tasks`, the leaked tasks. `root`: the test body's task
/// on a shared runtime.
pub fn build(
    tasks: &[LiveTask],
    caps: &Captures,
    scope: Scope,
    grace: Duration,
    root: Option<u64>,
) -> Leaks {
    let mut by_site: HashMap<usize, Vec<&LiveTask>> = HashMap::new();
    for t in tasks {
        by_site
            .entry(t.site as *const _ as usize)
            .or_default()
            .push(t);
    }
    let mut groups: Vec<LeakedGroup> = by_site
        .into_values()
        .map(|ts| group(&ts, caps, root))
        .collect();
    groups.sort_by(|a, b| {
        b.tasks
            .cmp(&a.tasks)
            .then_with(|| a.location.cmp(&b.location))
    });
    Leaks {
        scope,
        tasks: tasks.len(),
        grace,
        groups,
    }
}

fn group(tasks: &[&LiveTask], caps: &Captures, root: Option<u64>) -> LeakedGroup {
    let location = tasks
        .first()
        .map_or_else(|| UNKNOWN_LOCATION.to_string(), |t| t.site.name());
    let mut waits: HashMap<Wait, usize> = HashMap::new();
    let mut spawned_by: HashMap<SpawnedBy, usize> = HashMap::new();
    let mut stacks: HashMap<Arc<Trace>, usize> = HashMap::new();
    for t in tasks {
        let captured = caps.as_ref().ok().and_then(|m| m.get(&t.id));
        let wait = match (t.running, captured, caps) {
            (true, _, _) => Wait::Running,
            (false, Some(trace), _) => {
                *stacks.entry(trace.clone()).or_default() += 1;
                Wait::Captured(stack::reason(trace))
            }
            (false, None, Err(why)) => Wait::NotKnown(why.clone()),
            (false, None, Ok(_)) if !t.reachable => Wait::OutOfReach,
            (false, None, Ok(_)) => Wait::NotCaptured,
        };
        *waits.entry(wait).or_default() += 1;
        let by = match (t.parent, t.parent_location) {
            (0, _) => SpawnedBy::Outside,
            (p, _) if Some(p) == root => SpawnedBy::TestBody,
            (_, Some(l)) => SpawnedBy::TasksOf(l.to_string()),
            (_, None) => SpawnedBy::TasksOf(UNKNOWN_LOCATION.to_string()),
        };
        *spawned_by.entry(by).or_default() += 1;
    }
    let waits = most_first(waits);
    let stacks = most_first(stacks);
    let advice = advice(&location, tasks.len(), &waits, &stacks);
    LeakedGroup {
        location,
        tasks: tasks.len(),
        ids: tasks.iter().map(|t| t.id).collect(),
        // A stack with no tokio leaf says nothing its wait does not.
        stack: stacks
            .first()
            .filter(|(t, _)| !t.leaves.is_empty())
            .map(|(t, _)| stack::label(t)),
        waits,
        spawned_by: most_first(spawned_by),
        advice,
    }
}

fn most_first<K: Eq + std::hash::Hash + fmt::Debug>(m: HashMap<K, usize>) -> Vec<(K, usize)> {
    let mut v: Vec<(K, usize)> = m.into_iter().collect();
    // Ties in a stable order (the keys' debug form).
    v.sort_by_cached_key(|(k, n)| (std::cmp::Reverse(*n), format!("{k:?}")));
    v
}

/// The core's advice for the group, as the view would give it for a
/// suspect of these waits: every leaked task is a suspect's, so only the
/// evidence (one known wait for most of them) decides.
fn advice(
    location: &str,
    live: usize,
    waits: &[(Wait, usize)],
    stacks: &[(Arc<Trace>, usize)],
) -> Option<Advice> {
    let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    let mut g = Group::new(
        GroupKey {
            loc: LocId(0),
            kind: TaskKind::Task,
        },
        location.into(),
    );
    g.live = n(live);
    g.reasons = waits
        .iter()
        .map(|(w, count)| {
            let (reason, captured) = match w {
                Wait::Captured(r) => (*r, n(*count)),
                Wait::Running => (Reason::Running, 0),
                Wait::NotCaptured => (Reason::Uncaptured, 0),
                Wait::OutOfReach | Wait::NotKnown(_) => (Reason::OutOfReach, 0),
            };
            ReasonCount {
                reason,
                tasks: n(*count),
                captured,
                ..ReasonCount::default()
            }
        })
        .collect();
    g.stacks = stacks
        .iter()
        .map(|(trace, count)| StackCount {
            label: stack::label(trace),
            reason: stack::reason(trace),
            trace: trace.clone(),
            tasks: n(*count),
        })
        .collect();
    g.suspect = Some(Suspect {
        kind: SuspectKind::Stuck,
        reason: "alive at the end of the test".into(),
    });
    advise(&g)
}

/// Groups listed in full; the rest are counted.
const MAX_LISTED: usize = 20;

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms > 0 {
        format!("{ms}ms")
    } else {
        format!("{}µs", d.as_micros())
    }
}

impl fmt::Display for Leaks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.tasks;
        let (grace, s) = (duration(self.grace), plural(n));
        match self.scope {
            Scope::Test => writeln!(
                f,
                "taskscope-test: {n} task{s} leaked by this test (still alive {grace} after it ended)"
            )?,
            Scope::Binary => writeln!(
                f,
                "taskscope-test: {n} task{s} left on the test binary's shared runtime at its end (still alive after {grace})"
            )?,
        }
        for g in self.groups.iter().take(MAX_LISTED) {
            write_group(f, g, self.scope)?;
        }
        let rest = self.groups.len().saturating_sub(MAX_LISTED);
        if rest > 0 {
            let tasks: usize = self.groups[MAX_LISTED..].iter().map(|g| g.tasks).sum();
            writeln!(
                f,
                "  … and {tasks} more task{} in {rest} more place{}",
                plural(tasks),
                plural(rest)
            )?;
        }
        if self
            .groups
            .iter()
            .any(|g| g.waits.iter().any(|(w, _)| *w == Wait::OutOfReach))
        {
            writeln!(
                f,
                "  (spawn a task with taskscope_agent::spawn, or wrap its future in taskscope_agent::traced, for its wait to be named)"
            )?;
        }
        Ok(())
    }
}

fn write_group(f: &mut fmt::Formatter<'_>, g: &LeakedGroup, scope: Scope) -> fmt::Result {
    let waits = match g.waits.as_slice() {
        [(w, _)] => w.phrase(),
        many => many
            .iter()
            .map(|(w, n)| format!("{n} {}", w.phrase()))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let by = g
        .spawned_by
        .iter()
        .map(|(b, n)| {
            let who = match b {
                SpawnedBy::TestBody => "by the test body".to_string(),
                SpawnedBy::TasksOf(l) => format!("by tasks of {l}"),
                SpawnedBy::Outside if scope == Scope::Test => {
                    "by the test body (outside any task)".to_string()
                }
                SpawnedBy::Outside => "outside any task".to_string(),
            };
            if g.spawned_by.len() > 1 {
                format!("{who} ({n})")
            } else {
                who
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (n, s) = (g.tasks, plural(g.tasks));
    writeln!(f, "  {n} task{s} @ {}, {waits}, spawned {by}", g.location)?;
    if let Some(stack) = &g.stack {
        writeln!(f, "    waits in: {stack}")?;
    }
    if let Some(a) = &g.advice {
        writeln!(f, "    likely cause: {}", a.cause)?;
        writeln!(f, "    fix: {}", a.fix)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_short() {
        assert_eq!(duration(Duration::from_secs(1)), "1s");
        assert_eq!(duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration(Duration::from_millis(200)), "200ms");
        assert_eq!(duration(Duration::ZERO), "0µs");
    }

    #[test]
    fn a_known_wait_gets_its_fix_and_an_unknown_one_none() {
        let sleep = Arc::new(Trace {
            leaves: vec![vec![
                "app::f::{{closure}}".into(),
                "<tokio::time::sleep::Sleep as core::future::future::Future>::poll".into(),
            ]],
        });
        let a = advice(
            "src/a.rs:1:1",
            2,
            &[(Wait::Captured(Reason::Sleep), 2)],
            &[(sleep, 2)],
        );
        assert!(a.is_some_and(|a| a.fix.contains("CancellationToken")));
        assert_eq!(
            advice("src/a.rs:1:1", 2, &[(Wait::OutOfReach, 2)], &[]),
            None
        );
    }
}
