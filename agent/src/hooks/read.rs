//! What readers get from the record: every place's aggregate, a place's
//! tasks a page at a time, the per-second history. Each folds the logs
//! first (see `table`), then reads the table under the fold lock.

use std::collections::HashMap;
use std::panic::Location;

use super::places::NONE;
use super::site::{AGE_BUCKETS, Site, age_bucket};
use super::table::{Rec, Table};
use super::waits::Coverage;
use super::{HISTORY_SECS, Recorder, lock};
use tokio::task::Id;

/// A tokio task id as the number tokio shows (`Id`'s `Display`), for the
/// wire and the tests. Never on the hooks' path: the record keys tasks by
/// `tokio::task::Id` itself.
pub fn task_id(id: tokio::task::Id) -> u64 {
    use std::fmt::Write;
    /// Digits written into a buffer on the stack.
    struct Digits {
        buf: [u8; 20],
        len: usize,
    }
    impl Write for Digits {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.len + s.len();
            self.buf
                .get_mut(self.len..end)
                .ok_or(std::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut d = Digits {
        buf: [0; 20],
        len: 0,
    };
    if write!(d, "{id}").is_err() {
        return 0;
    }
    d.buf[..d.len]
        .iter()
        .try_fold(0u64, |n, &c| {
            c.is_ascii_digit()
                .then(|| n.checked_mul(10)?.checked_add(u64::from(c - b'0')))
                .flatten()
        })
        .unwrap_or(0)
}

/// The tasks in a poll now, and when each poll began (a handful: one per
/// thread polling).
pub(super) struct Running(Vec<(Id, u64)>);

impl Running {
    pub(super) fn get(&self, id: &Id) -> Option<u64> {
        self.0.iter().find(|(t, _)| t == id).map(|&(_, s)| s)
    }
}

impl Recorder {
    /// Tasks being polled right now: task id → poll start.
    pub(super) fn in_poll(&self) -> Running {
        Running(
            lock(&self.inner.logs)
                .iter()
                .filter_map(|l| l.running())
                .collect(),
        )
    }

    /// Every spawn location's aggregate, now. Walks every live task once.
    pub fn groups(&self) -> Aggregate {
        let table = self.table();
        let now = self.now();
        let running = self.in_poll();
        let mut by_site: Vec<Option<Group>> = table.sites.iter().map(|_| None).collect();
        // Parents per place, by location number.
        let mut parents: Vec<HashMap<u32, u64>> =
            table.sites.iter().map(|_| HashMap::new()).collect();
        for (id, rec) in table.tasks.iter() {
            let site = rec.site() as usize;
            let g = by_site[site].get_or_insert_with(|| Group::new(table.sites[site]));
            g.live += 1;
            g.ages[age_bucket(now.saturating_sub(rec.created))] += 1;
            g.polls += rec.polls();
            g.busy_ns += rec.busy_ns();
            g.oldest_created = g.oldest_created.min(rec.created);
            let in_poll = running.get(id);
            g.waits.add(rec, in_poll.is_some());
            match in_poll {
                Some(since) => {
                    g.running += 1;
                    g.longest_poll_ns = g.longest_poll_ns.max(now.saturating_sub(since));
                }
                None => {
                    g.idle += 1;
                    g.earliest_idle = g.earliest_idle.min(idle_since(rec));
                }
            }
            if rec.parent_loc() == NONE {
                g.unparented += 1;
            } else {
                *parents[site].entry(rec.parent_loc()).or_default() += 1;
            }
        }
        let groups = by_site
            .into_iter()
            .zip(parents)
            .enumerate()
            .map(|(i, (g, p))| {
                // Sites with no live task still count (spawned and all done).
                let mut g = g.unwrap_or_else(|| Group::new(table.sites[i]));
                g.parents = p
                    .into_iter()
                    .map(|(l, n)| (table.locations[l as usize], n))
                    .collect();
                g.spawned = g.site.spawned();
                g.terminated = g.site.terminated();
                g.lifetime_ns = g.site.lifetime_ns();
                g.lifetimes = g.site.lifetimes();
                g
            })
            .collect();
        Aggregate {
            now_unix_ns: self.inner.unix_ns(now),
            epoch_unix_ns: self.inner.epoch_unix_ns,
            groups,
        }
    }

    /// Up to `limit` live tasks of the place `location` (file, line, col)
    /// and `spawner` (for a split line, see [`Site`]), ids above `after`,
    /// in id order, and the id to continue after.
    pub fn tasks(
        &self,
        location: (&str, u32, u32),
        split: bool,
        spawner: Option<(&str, u32, u32)>,
        after: u64,
        limit: usize,
    ) -> Page {
        let table = self.table();
        let running = self.in_poll();
        let wanted: Vec<u32> = (0..table.sites.len() as u32)
            .filter(|&i| table.sites[i as usize].is(location, split, spawner))
            .collect();
        let mut found: Vec<(Id, &Rec)> = table
            .tasks
            .iter()
            .filter(|(_, r)| wanted.contains(&r.site()))
            .map(|(id, r)| (*id, r))
            .collect();
        // Ids order as the numbers they show: find `after` by bisection,
        // reading only a few ids as numbers.
        found.sort_unstable_by_key(|(id, _)| *id);
        let from = found.partition_point(|(id, _)| task_id(*id) <= after);
        let rest = &found[from..];
        let more = rest.len() > limit;
        let tasks: Vec<TaskRow> = rest
            .iter()
            .take(limit)
            .map(|&(id, rec)| self.row(&table, &running, id, rec))
            .collect();
        let next = if more {
            tasks.last().map(|r| r.id)
        } else {
            None
        };
        Page { tasks, next }
    }

    /// Every live task with its place, in one walk, in id order (for a
    /// reader in the process: the leak check).
    pub(crate) fn every_task(&self) -> Vec<(&'static Site, TaskRow)> {
        let table = self.table();
        let running = self.in_poll();
        let mut all: Vec<(Id, &Rec)> = table.tasks.iter().map(|(id, r)| (*id, r)).collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all.into_iter()
            .map(|(id, rec)| {
                (
                    table.sites[rec.site() as usize],
                    self.row(&table, &running, id, rec),
                )
            })
            .collect()
    }

    /// A live task's row.
    fn row(&self, table: &Table, running: &Running, id: Id, rec: &Rec) -> TaskRow {
        let in_poll = running.get(&id);
        TaskRow {
            id: task_id(id),
            reachable: rec.link.is_some(),
            parent: rec.parent.map_or(0, task_id),
            parent_location: (rec.parent_loc() != NONE)
                .then(|| table.locations[rec.parent_loc() as usize]),
            created_unix_ns: self.inner.unix_ns(rec.created),
            polls: rec.polls(),
            busy_ns: rec.busy_ns(),
            running_since_unix_ns: in_poll.map(|s| self.inner.unix_ns(s)),
            idle_since_unix_ns: in_poll
                .is_none()
                .then(|| self.inner.unix_ns(idle_since(rec))),
        }
    }

    /// Records this second's per-site totals in the history (the server
    /// calls it once a second).
    pub fn sample(&self) {
        let table = self.table();
        let unix_sec = (self.inner.unix_ns(self.now()) / 1_000_000_000) as u64;
        let mut h = lock(&self.inner.history);
        for &site in &table.sites {
            let key = site as *const Site as usize;
            let ring = h.sites.entry(key).or_insert_with(|| Ring {
                site,
                samples: std::collections::VecDeque::with_capacity(HISTORY_SECS),
            });
            if ring.samples.len() == HISTORY_SECS {
                ring.samples.pop_front();
            }
            ring.samples.push_back(Sample {
                unix_sec,
                spawned: site.spawned(),
                terminated: site.terminated(),
            });
        }
    }

    /// The kept history: per site, `(unix second, spawned, terminated)`
    /// totals, oldest first.
    pub fn history(&self) -> Vec<(&'static Site, Vec<Sample>)> {
        lock(&self.inner.history)
            .sites
            .values()
            .map(|r| (r.site, r.samples.iter().copied().collect()))
            .collect()
    }
}

/// Since when a task not in a poll has been idle.
fn idle_since(rec: &Rec) -> u64 {
    if rec.last_poll_end == 0 {
        rec.created
    } else {
        rec.last_poll_end
    }
}

/// Another user's hook callbacks, called after the agent's own.
#[cfg(tokio_unstable)]
#[derive(Default)]
pub struct OtherHooks {
    pub on_spawn: Option<Callback>,
    pub on_terminate: Option<Callback>,
    pub on_before_poll: Option<Callback>,
    pub on_after_poll: Option<Callback>,
    /// The runtime's `on_thread_park` (the agent folds its record there,
    /// when a worker has nothing to run).
    pub on_thread_park: Option<Box<dyn Fn() + Send + Sync>>,
}

#[cfg(tokio_unstable)]
pub type Callback = Box<dyn Fn(&tokio::runtime::TaskMeta<'_>) + Send + Sync>;

#[derive(Default)]
pub(super) struct History {
    sites: HashMap<usize, Ring>,
}

struct Ring {
    site: &'static Site,
    samples: std::collections::VecDeque<Sample>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub unix_sec: u64,
    pub spawned: u64,
    pub terminated: u64,
}

/// Every spawn location at one instant.
pub struct Aggregate {
    pub now_unix_ns: i64,
    pub epoch_unix_ns: i64,
    pub groups: Vec<Group>,
}

/// One spawn location's live tasks.
pub struct Group {
    pub site: &'static Site,
    pub live: u64,
    pub running: u64,
    pub idle: u64,
    pub spawned: u64,
    pub terminated: u64,
    pub polls: u64,
    pub busy_ns: u64,
    /// Recorder-clock ns; `u64::MAX` when no task is live.
    pub oldest_created: u64,
    pub earliest_idle: u64,
    pub longest_poll_ns: u64,
    /// Where the spawning tasks were spawned, and how many tasks each
    /// spawned here.
    pub parents: HashMap<&'static Location<'static>, u64>,
    /// Live tasks spawned from outside any task (`main`, `block_on`, a
    /// non-runtime thread).
    pub unparented: u64,
    /// Live tasks by age: under 1 s, then powers of two up to 2^18 s (three
    /// days), then older.
    pub ages: [u64; AGE_BUCKETS],
    /// Summed lifetimes of the terminated tasks.
    pub lifetime_ns: u64,
    /// The terminated tasks by lifetime, in the same buckets as `ages`.
    pub lifetimes: [u64; AGE_BUCKETS],
    /// The tasks whose waits the agent can capture, and its captures.
    pub waits: Coverage,
}

impl Group {
    fn new(site: &'static Site) -> Group {
        Group {
            site,
            live: 0,
            running: 0,
            idle: 0,
            spawned: 0,
            terminated: 0,
            polls: 0,
            busy_ns: 0,
            oldest_created: u64::MAX,
            earliest_idle: u64::MAX,
            longest_poll_ns: 0,
            parents: HashMap::new(),
            unparented: 0,
            ages: [0; AGE_BUCKETS],
            lifetime_ns: 0,
            lifetimes: [0; AGE_BUCKETS],
            waits: Coverage::default(),
        }
    }
}

/// One live task, for a group's task list.
pub struct TaskRow {
    pub id: u64,
    /// Whether the agent can capture its waits (its future is wrapped).
    pub reachable: bool,
    pub parent: u64,
    pub parent_location: Option<&'static Location<'static>>,
    pub created_unix_ns: i64,
    pub polls: u64,
    pub busy_ns: u64,
    pub running_since_unix_ns: Option<i64>,
    pub idle_since_unix_ns: Option<i64>,
}

pub struct Page {
    pub tasks: Vec<TaskRow>,
    /// Pass as `after` for the next page; `None` at the end.
    pub next: Option<u64>,
}

impl Aggregate {
    /// A recorder-clock instant on the wall clock (`None` for `u64::MAX`).
    pub fn unix_ns(&self, at: u64) -> Option<i64> {
        (at != u64::MAX).then(|| self.epoch_unix_ns.saturating_add(at as i64))
    }
}
