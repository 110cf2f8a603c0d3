//! Which task a `Sleep` belongs to: the one its own async op names, when
//! the target's tokio sends one; else, as console data from tokio 1.53 on
//! ties a bare sleep to no task (CONSOLE-DATA.md), the one whose poll made
//! it, on the target's own clock.

use crate::model::{AsyncOp, LocId, OpSource, State, Ts};
use std::collections::{HashMap, HashSet};

/// Links live `Sleep` resources to idle tasks.
///
/// A sleep's own op (`Sleep::new_timeout`: every sleep of a tokio before
/// 1.53; `Sleep::reset`: a sleep re-armed, on any) names its task, which
/// then holds it for sure. An `Interval`'s sleep is the interval's (made
/// inside the interval's resource, or its op under `Interval::tick`): left
/// out.
///
/// Any other sleep is linked by time: it is created inside its task's
/// poll, so that task's last own poll window contains the sleep's
/// creation. On a multi-threaded runtime a task polled at the same moment
/// on another worker contains it too, so:
/// - a sleep that one window alone contains is linked for sure, and shows
///   which spawn locations create sleeps at which sleep locations;
/// - a sleep that several windows contain goes to those claimants whose
///   group was seen (for sure) creating sleeps at that location, when any
///   was; otherwise to all of them, marked ambiguous.
///
/// A task with a sure link is never ambiguous. Returns task → (sleep id,
/// ambiguous).
pub(super) fn link_sleeps(
    state: &State,
    op_by_task: &HashMap<u64, &AsyncOp>,
) -> HashMap<u64, (u64, bool)> {
    // A window holding more sleeps than this is not a sleep-then-park
    // poll; only the latest ones are considered (a sleep is awaited, so it
    // is created late in the poll). Bounds the work on a long poll.
    const MAX_PER_WINDOW: usize = 8;
    let (mut out, owned) = linked_by_op(state, op_by_task);
    let mut sleeps: Vec<(Ts, u64, Option<LocId>)> = state
        .console
        .resources
        .values()
        .filter(|r| r.dropped_at.is_none() && &**r.concrete_type() == "Sleep")
        .filter(|r| !owned.contains(&r.id))
        .filter_map(|r| r.created_at.map(|c| (c, r.id, r.location())))
        .collect();
    if sleeps.is_empty() {
        return out;
    }
    sleeps.sort_unstable_by_key(|&(c, id, _)| (c, id));
    // The candidate tasks' poll windows, by end: one sweep over the sorted
    // sleeps finds each window's sleeps (a binary search per task missed
    // the cache at every step: with 100 000 sleeping tasks it was most of
    // an analysis).
    let mut windows: Vec<(Ts, Ts, u64, LocId)> = state
        .live_tasks()
        // A sleeping task holds a waker (registered with the timer).
        .filter(|task| {
            !op_by_task.contains_key(&task.id)
                && !out.contains_key(&task.id)
                && task.stats.live_wakers() > 0
        })
        .filter_map(|task| {
            let (Some(start), Some(end)) = task.own_poll else {
                return None;
            };
            (end >= start).then_some((end, start, task.id, task.group.loc))
        })
        .collect();
    windows.sort_unstable_by_key(|&(end, start, id, _)| (end, start, id));
    // (sleep index, task id, task's spawn location), sorted by sleep.
    let mut claims: Vec<(usize, u64, LocId)> = Vec::new();
    let mut hi = 0;
    for (end, start, id, loc) in windows {
        // The sleeps created at or before the window's end: sleeps[..hi].
        while hi < sleeps.len() && sleeps[hi].0 <= end {
            hi += 1;
        }
        // Of the latest few, those created in the window.
        let first = hi.saturating_sub(MAX_PER_WINDOW);
        for (i, sleep) in sleeps[first..hi].iter().enumerate() {
            if sleep.0 >= start {
                claims.push((first + i, id, loc));
            }
        }
    }
    claims.sort_unstable_by_key(|&(i, t, _)| (i, t));
    // Each sleep's claims: claims[a..b].
    let mut spans = Vec::new();
    let mut a = 0;
    while a < claims.len() {
        // Runs are a few claims long: a scan, not a search over the rest.
        let mut b = a + 1;
        while b < claims.len() && claims[b].0 == claims[a].0 {
            b += 1;
        }
        spans.push((a, b));
        a = b;
    }
    // Sure links, and what they teach: (spawn location, sleep location).
    let mut creates: HashSet<(LocId, Option<LocId>)> = HashSet::new();
    for &(a, b) in &spans {
        if b - a == 1 {
            let (i, task, loc) = claims[a];
            let (_, sleep, sleep_loc) = sleeps[i];
            creates.insert((loc, sleep_loc));
            out.insert(task, (sleep, false));
        }
    }
    for &(a, b) in &spans {
        if b - a == 1 {
            continue;
        }
        let (_, sleep, sleep_loc) = sleeps[claims[a].0];
        let shared = &claims[a..b];
        let known = shared
            .iter()
            .filter(|c| creates.contains(&(c.2, sleep_loc)))
            .count();
        for &(_, task, loc) in shared {
            if known > 0 && !creates.contains(&(loc, sleep_loc)) {
                continue;
            }
            let ambiguous = if known > 0 { known > 1 } else { true };
            match out.get(&task) {
                Some((_, false)) => {}
                _ => {
                    out.insert(task, (sleep, ambiguous));
                }
            }
        }
    }
    out
}

/// The sleeps whose own op names a live task with a waker out (the
/// timer's), not one with a tracked wait: task → (its newest such sleep,
/// not ambiguous); and every sleep an op names, to keep from the links by
/// time.
fn linked_by_op(
    state: &State,
    op_by_task: &HashMap<u64, &AsyncOp>,
) -> (HashMap<u64, (u64, bool)>, HashSet<u64>) {
    let mut newest: HashMap<u64, (Option<Ts>, u64)> = HashMap::new();
    let mut owned = HashSet::new();
    for op in state.console.async_ops.values() {
        if op.source != OpSource::Sleep || !op.is_live() || op.parent.is_some() {
            continue;
        }
        let (Some(task), Some(sleep)) = (op.task, op.resource) else {
            continue;
        };
        if state
            .console
            .resources
            .get(&sleep)
            .is_some_and(|r| r.parent().is_some())
        {
            continue;
        }
        owned.insert(sleep);
        let sleeping = state
            .console
            .tasks
            .get(&task)
            .is_some_and(|t| t.is_live() && t.stats.live_wakers() > 0);
        if !sleeping || op_by_task.contains_key(&task) {
            continue;
        }
        let mine = (op.created_at, sleep);
        newest
            .entry(task)
            .and_modify(|n| *n = (*n).max(mine))
            .or_insert(mine);
    }
    let links = newest
        .into_iter()
        .map(|(task, (_, sleep))| (task, (sleep, false)))
        .collect();
    (links, owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::update::{
        AsyncOpStats, NewAsyncOp, NewResource, NewTask, ResourceKind, ResourceStats, SourceLoc,
    };
    use crate::model::{Update, update::TaskStats};

    fn ts(ms: f64) -> Option<Ts> {
        Some(Ts::from_nanos(
            1_800_000_000_000_000_000 + (ms * 1e6) as i64,
        ))
    }

    fn loc(line: u32) -> Option<SourceLoc> {
        Some(SourceLoc {
            file: "src/app.rs".into(),
            line: Some(line),
            column: Some(5),
        })
    }

    /// Tasks spawned at `line` idle after one poll over `[from, to]` ms
    /// with one waker out, and sleeps created at `at` ms from `line`.
    struct World {
        up: Update,
        next: u64,
    }

    impl World {
        fn new() -> Self {
            World {
                up: Update {
                    now: ts(10_000.0),
                    has_metadata: true,
                    ..Update::default()
                },
                next: 1,
            }
        }

        fn task(&mut self, line: u32, from: f64, to: f64) -> u64 {
            let id = self.next;
            self.next += 1;
            self.up.tasks.push(NewTask {
                id,
                location: loc(line),
                fields: Vec::new(),
            });
            self.up.task_stats.push((
                id,
                TaskStats {
                    created_at: ts(from),
                    polls: 1,
                    first_poll: ts(from),
                    last_poll_started: ts(from),
                    last_poll_ended: ts(to),
                    waker_clones: 1,
                    ..TaskStats::default()
                },
            ));
            id
        }

        fn sleep(&mut self, line: u32, at: f64) -> u64 {
            let id = 1_000 + self.next;
            self.next += 1;
            self.up.resources.push(NewResource {
                id,
                concrete_type: "Sleep".into(),
                kind: ResourceKind::Timer,
                location: loc(line),
                parent: None,
                internal: false,
            });
            self.up.resource_stats.push((
                id,
                ResourceStats {
                    created_at: ts(at),
                    ..ResourceStats::default()
                },
            ));
            id
        }

        /// The sleep's own async op (`source`), polled in `task`.
        fn op(&mut self, source: &str, sleep: u64, task: u64) {
            let id = 2_000 + self.next;
            self.next += 1;
            self.up.async_ops.push(NewAsyncOp {
                id,
                source: OpSource::parse(source),
                parent: None,
                resource: Some(sleep),
            });
            let at = self.up.resource_stats.iter().find(|(r, _)| *r == sleep);
            self.up.async_op_stats.push((
                id,
                AsyncOpStats {
                    created_at: at.and_then(|(_, s)| s.created_at),
                    task: Some(task),
                    polls: 1,
                    ..AsyncOpStats::default()
                },
            ));
        }

        fn links(self) -> HashMap<u64, (u64, bool)> {
            let mut st = State::default();
            st.begin_stream();
            st.apply(self.up);
            link_sleeps(&st, &HashMap::new())
        }
    }

    #[test]
    fn a_sleep_in_one_window_alone_is_linked_for_sure() {
        let mut w = World::new();
        let t = w.task(10, 100.0, 100.2);
        let s = w.sleep(11, 100.1);
        let idle = w.task(20, 200.0, 200.2);
        let links = w.links();
        assert_eq!(links.get(&t), Some(&(s, false)));
        assert_eq!(links.get(&idle), None);
    }

    #[test]
    fn a_task_polled_beside_a_sleeper_does_not_take_its_sleep() {
        let mut w = World::new();
        // Sleepers from line 10 sleep at line 11; two polled alone.
        let a = w.task(10, 100.0, 100.2);
        let sa = w.sleep(11, 100.1);
        let b = w.task(10, 200.0, 200.2);
        let sb = w.sleep(11, 200.1);
        // A third polled on one worker while a receiver (line 30) was
        // polled on the other: both windows hold the sleep.
        let c = w.task(10, 300.0, 300.2);
        let sc = w.sleep(11, 300.1);
        let r = w.task(30, 300.05, 300.3);
        let links = w.links();
        assert_eq!(links.get(&a), Some(&(sa, false)));
        assert_eq!(links.get(&b), Some(&(sb, false)));
        assert_eq!(links.get(&c), Some(&(sc, false)));
        assert_eq!(links.get(&r), None, "the receiver never sleeps");
    }

    #[test]
    fn a_later_sleep_of_another_task_in_the_window_does_not_hide_its_own() {
        let mut w = World::new();
        let a = w.task(10, 100.0, 100.5);
        let sa = w.sleep(11, 100.1);
        // Another sleeper (line 40) polled alone, then overlapping a's end.
        let b0 = w.task(40, 50.0, 50.2);
        let sb0 = w.sleep(41, 50.1);
        let b = w.task(40, 100.3, 100.6);
        let sb = w.sleep(41, 100.4);
        let links = w.links();
        assert_eq!(links.get(&a), Some(&(sa, false)));
        assert_eq!(links.get(&b0), Some(&(sb0, false)));
        assert_eq!(links.get(&b), Some(&(sb, false)));
    }

    #[test]
    fn with_nothing_to_tell_them_apart_both_claimants_are_ambiguous() {
        let mut w = World::new();
        let a = w.task(10, 100.0, 100.2);
        let b = w.task(30, 100.05, 100.3);
        let s = w.sleep(11, 100.1);
        let links = w.links();
        assert_eq!(links.get(&a), Some(&(s, true)));
        assert_eq!(links.get(&b), Some(&(s, true)));
    }

    #[test]
    fn a_sleep_whose_own_op_names_its_task_is_that_tasks_for_sure() {
        // tokio-console's app.rs on a tokio before 1.53: `task1` spawns
        // `wait` and sleeps; `wait`, polled on the other worker meanwhile,
        // sleeps too; a receiver polled across both sleeps none.
        let mut w = World::new();
        let task1 = w.task(10, 100.0, 100.4);
        let wait = w.task(20, 100.1, 100.3);
        let recv = w.task(30, 100.0, 100.5);
        let s1 = w.sleep(11, 100.35);
        w.op("Sleep::new_timeout", s1, task1);
        let s2 = w.sleep(21, 100.2);
        w.op("Sleep::new_timeout", s2, wait);
        let links = w.links();
        assert_eq!(links.get(&task1), Some(&(s1, false)));
        assert_eq!(links.get(&wait), Some(&(s2, false)));
        assert_eq!(links.get(&recv), None, "the receiver never sleeps");
    }

    #[test]
    fn a_sleep_reset_in_an_earlier_poll_is_linked_by_its_op() {
        // tokio 1.53+: a `Sleep` made long ago, re-armed with `reset`.
        let mut w = World::new();
        let t = w.task(10, 500.0, 500.2);
        let s = w.sleep(11, 100.0);
        w.op("Sleep::reset", s, t);
        assert_eq!(w.links().get(&t), Some(&(s, false)));
    }
}
