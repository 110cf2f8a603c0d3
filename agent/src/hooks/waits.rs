//! The recorder's side of exact waits (see `crate::capture`): which tasks
//! to ask for a capture, and the captures that still hold.
//!
//! A capture holds while its task has not really run since: the recorder
//! does not count the agent's own polls, so "captured after the task's
//! last poll ended" is exact.

use super::table::Rec;
use super::{Recorder, Site, task_id};
use crate::slot::{Link, Slot, SlotRef};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// How many tasks of each spawn location are asked for a capture in one
/// round, and the most in a round overall.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub per_site: usize,
    pub total: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            per_site: 64,
            total: 1024,
        }
    }
}

/// One task's capture that still holds.
pub struct TaskWait {
    pub id: u64,
    /// Where it counts (its spawn location, and its spawner's for a split
    /// line), under the hooks source.
    pub site: Option<&'static Site>,
    pub stack: u32,
    /// When it was taken, on the wall clock.
    pub at_unix_ns: i64,
}

/// The captures that hold, and per spawn location how many tasks the
/// agent can reach.
#[derive(Default)]
pub struct Waits {
    pub tasks: Vec<TaskWait>,
    /// Captures that hold beyond the `max_tasks` asked for (not listed).
    pub more: u64,
}

/// Per spawn location: live tasks the agent can capture, those with a
/// capture that holds, and the newest capture's time (ns since the
/// epoch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    pub reachable: u64,
    pub held: u64,
    pub newest: Option<i64>,
}

impl Coverage {
    pub(super) fn add(&mut self, rec: &Rec, running: bool) {
        let Some(link) = &rec.link else {
            return;
        };
        self.reachable += 1;
        if let Some((_, at)) = holding(link, running) {
            self.held += 1;
            self.newest = Some(self.newest.map_or(at, |n| n.max(at)));
        }
    }
}

/// The task's last capture (stack, ns since the epoch), if it still
/// holds: the task has not really run since, and is not running now.
/// (A task never asked has no slot, and no capture.)
fn holding(link: &Link, running: bool) -> Option<(u32, i64)> {
    if running {
        return None;
    }
    link.as_slot().and_then(Slot::holding)
}

impl Recorder {
    /// Asks up to `budget.per_site` reachable idle tasks of each spawn
    /// location with no capture that holds (never captured, or run since)
    /// for one, at most `budget.total` in all. A capture that holds is
    /// exact until the task runs again: it is not taken again. Returns the
    /// slots asked (to wait for). Walks every task once; the wakes are made
    /// after the walk, with no lock held.
    pub fn request_captures(&self, budget: Budget) -> Vec<SlotRef> {
        // Slots made for tasks that ended before taking them go first.
        crate::slot::handoff::sweep();
        let mut table = self.table();
        let running = self.in_poll();
        let mut per_site: HashMap<u32, usize> = HashMap::new();
        let mut asked = Vec::new();
        for (id, rec) in table.tasks.iter_mut() {
            if asked.len() >= budget.total {
                break;
            }
            let site = rec.site();
            let Some(link) = &mut rec.link else {
                continue;
            };
            if running.get(id).is_some() || !link.askable() {
                continue;
            }
            let n = per_site.entry(site).or_default();
            if *n < budget.per_site {
                *n += 1;
                asked.extend(link.ask(*id));
            }
        }
        drop(table);
        let slots: Vec<SlotRef> = asked.into_iter().map(|a| a.send()).collect();
        self.inner
            .captures_asked
            .fetch_add(slots.len() as u64, Ordering::Relaxed);
        slots
    }

    /// The wrapped live tasks, at most `max` (for a console served beside
    /// the hooks source: see `capture::registry::wrapped`).
    pub fn wrapped(&self, max: usize) -> Vec<u64> {
        let table = self.table();
        table
            .tasks
            .iter()
            .filter(|(_, rec)| rec.link.is_some())
            .take(max)
            .map(|(id, _)| task_id(*id))
            .collect()
    }

    /// The captures that hold now, up to `max_tasks` of them listed.
    pub fn waits(&self, max_tasks: usize) -> Waits {
        let table = self.table();
        let running = self.in_poll();
        let now = crate::wire::unix_now_ns();
        let mut w = Waits::default();
        for (id, rec) in table.tasks.iter() {
            let Some(link) = &rec.link else {
                continue;
            };
            let Some((stack, at)) = holding(link, running.get(id).is_some()) else {
                continue;
            };
            if w.tasks.len() >= max_tasks {
                w.more += 1;
                continue;
            }
            w.tasks.push(TaskWait {
                id: task_id(*id),
                site: Some(table.sites[rec.site() as usize]),
                stack,
                at_unix_ns: crate::slot::latest_at(at, now),
            });
        }
        w
    }

    /// How many live tasks of each place hold a capture of each stack
    /// (site, stack, tasks): what a task profile needs, with no list of
    /// tasks. Walks every task once.
    pub fn held_stacks(&self) -> Vec<(&'static Site, u32, u64)> {
        let table = self.table();
        let running = self.in_poll();
        let mut counts: HashMap<(u32, u32), (&'static Site, u64)> = HashMap::new();
        for (id, rec) in table.tasks.iter() {
            let Some(link) = &rec.link else {
                continue;
            };
            if let Some((stack, _)) = holding(link, running.get(id).is_some()) {
                let site = table.sites[rec.site() as usize];
                counts.entry((rec.site(), stack)).or_insert((site, 0)).1 += 1;
            }
        }
        counts
            .into_iter()
            .map(|((_, stack), (at, n))| (at, stack, n))
            .collect()
    }

    /// The agent's own cost so far: captures asked, polls it caused and
    /// their time in poll (ns), distinct stacks, captures dropped for a
    /// full stack table.
    pub fn capture_stats(&self) -> CaptureStats {
        let (stacks, dropped) = crate::stacks::counts();
        CaptureStats {
            asked: self.inner.captures_asked.load(Ordering::Relaxed),
            polls: self.inner.synthetic_polls.load(Ordering::Relaxed),
            poll_ns: self.inner.synthetic_ns.load(Ordering::Relaxed),
            stacks,
            dropped,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub asked: u64,
    pub polls: u64,
    pub poll_ns: u64,
    pub stacks: u64,
    pub dropped: u64,
}
