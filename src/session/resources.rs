//! The resources view (`r`): every live resource the console reports
//! (mutexes, semaphores, channels' internal semaphores, sleeps, intervals,
//! oneshots…), grouped by location like tasks or one per row (`f`), and
//! one resource's waiting async ops and tasks.

use crate::model::{OpSource, Resource, State, UNKNOWN_LOCATION};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Resources of one location, kind and type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub location: Arc<str>,
    pub kind: Arc<str>,
    pub ty: Arc<str>,
}

/// A group's row.
#[derive(Clone, Debug)]
pub struct ResGroup {
    pub key: GroupKey,
    pub live: u32,
    /// Of them, tokio's internal ones (a channel's semaphore…).
    pub internal: u32,
    /// Distinct tasks waiting on them (live async ops).
    pub waiting: u32,
    pub oldest: Option<Duration>,
}

/// One resource, as the flat list shows it.
#[derive(Clone, Debug)]
pub struct ResRow {
    pub target: usize,
    pub id: u64,
    pub parent: Option<u64>,
    pub key: GroupKey,
    pub internal: bool,
    pub age: Option<Duration>,
    pub attributes: String,
    pub waiting: u32,
}

/// One task waiting on a resource (or on a resource under it).
#[derive(Clone, Debug)]
pub struct Waiter {
    pub target: usize,
    pub task: u64,
    /// The call it waits in (`Mutex::lock`, `Semaphore::acquire`, …).
    pub op: String,
    pub since: Option<Duration>,
}

fn key(st: &State, r: &Resource) -> GroupKey {
    GroupKey {
        location: r
            .location()
            .map(|l| st.log.locations.name(l).clone())
            .unwrap_or_else(|| UNKNOWN_LOCATION.into()),
        kind: r.kind().clone(),
        ty: r.concrete_type().clone(),
    }
}

/// Live async ops with a task (task, call, since), by resource.
type Waiting = HashMap<u64, Vec<(u64, OpSource, Option<crate::model::Ts>)>>;

/// Live async ops with a task, by the resource they are on and by that
/// resource's parent (a channel waits on its internal semaphore).
fn waiting_by_resource(st: &State) -> Waiting {
    let mut out: HashMap<u64, Vec<_>> = HashMap::new();
    for op in st.console.async_ops.values().filter(|o| o.is_live()) {
        let (Some(res), Some(task)) = (op.resource, op.task) else {
            continue;
        };
        if !st.console.tasks.contains_key(&task) {
            continue;
        }
        let entry = (task, op.source, op.created_at);
        out.entry(res).or_default().push(entry);
        if let Some(parent) = st.console.resources.get(&res).and_then(|r| r.parent()) {
            out.entry(parent).or_default().push(entry);
        }
    }
    out
}

/// One resource's row.
fn row(
    target: usize,
    r: &Resource,
    key: GroupKey,
    waiting: &Waiting,
    now: crate::model::Ts,
) -> ResRow {
    let mut tasks: Vec<u64> = waiting
        .get(&r.id)
        .map(|w| w.iter().map(|(t, _, _)| *t).collect())
        .unwrap_or_default();
    tasks.sort_unstable();
    tasks.dedup();
    ResRow {
        target,
        id: r.id,
        parent: r.parent(),
        key,
        internal: r.internal(),
        age: r.created_at.map(|c| now.since(c)),
        attributes: r.attributes.as_deref().unwrap_or("").to_string(),
        waiting: tasks.len() as u32,
    }
}

/// Every live resource of every target, one row each, sorted by
/// location, kind, type and id; `only` keeps one group.
pub fn rows(states: &[&State], only: Option<&GroupKey>) -> Vec<ResRow> {
    let mut out = Vec::new();
    for (t, st) in states.iter().enumerate() {
        let Some(now) = st.log.now else { continue };
        let waiting = waiting_by_resource(st);
        for r in st
            .console
            .resources
            .values()
            .filter(|r| r.dropped_at.is_none())
        {
            let k = key(st, r);
            if only.is_some_and(|o| *o != k) {
                continue;
            }
            out.push(row(t, r, k, &waiting, now));
        }
    }
    out.sort_by(|a, b| (&a.key, a.target, a.id).cmp(&(&b.key, b.target, b.id)));
    out
}

/// Resource `id` of target `target`, while it is live.
pub fn one(states: &[&State], target: usize, id: u64) -> Option<ResRow> {
    let st = states.get(target)?;
    let r = st
        .console
        .resources
        .get(&id)
        .filter(|r| r.dropped_at.is_none())?;
    let waiting = waiting_by_resource(st);
    Some(row(target, r, key(st, r), &waiting, st.log.now?))
}

/// The groups, most resources first.
pub fn groups(states: &[&State]) -> Vec<ResGroup> {
    let mut by: HashMap<GroupKey, ResGroup> = HashMap::new();
    for r in rows(states, None) {
        let g = by.entry(r.key.clone()).or_insert_with(|| ResGroup {
            key: r.key.clone(),
            live: 0,
            internal: 0,
            waiting: 0,
            oldest: None,
        });
        g.live += 1;
        g.internal += u32::from(r.internal);
        g.waiting += r.waiting;
        g.oldest = g.oldest.max(r.age);
    }
    let mut out: Vec<ResGroup> = by.into_values().collect();
    out.sort_by(|a, b| b.live.cmp(&a.live).then_with(|| a.key.cmp(&b.key)));
    out
}

/// The tasks waiting on resource `id` of target `target`, longest first.
pub fn waiters(states: &[&State], target: usize, id: u64) -> Vec<Waiter> {
    let Some(st) = states.get(target) else {
        return Vec::new();
    };
    let now = st.log.now;
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<Waiter> = waiting_by_resource(st)
        .remove(&id)
        .unwrap_or_default()
        .into_iter()
        // A task waits once, on the op nearest the resource (a mutex's
        // `lock` rather than its internal semaphore's acquire).
        .filter(|(task, _, _)| seen.insert(*task))
        .map(|(task, op, at)| Waiter {
            target,
            task,
            op: format!("{op:?}"),
            since: now.zip(at).map(|(n, a)| n.since(a)),
        })
        .collect();
    out.sort_by(|a, b| b.since.cmp(&a.since).then(a.task.cmp(&b.task)));
    out
}
