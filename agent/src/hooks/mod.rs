//! The hooks source: an exact record of every live task, kept by tokio's
//! runtime hooks (`on_task_spawn`, `on_task_terminate`,
//! `on_before_task_poll`, `on_after_task_poll`; `--cfg tokio_unstable`
//! only: no `tracing` feature, no console-subscriber).
//!
//! Cost is what decides the structure (see PERFORMANCE.md, "The hooks
//! source", for the measurements behind it):
//! - **Polls** (the hot path, every poll of every task) touch no shared
//!   lock and allocate nothing: `on_before_task_poll` writes the task id and
//!   the time into the worker thread's own slot (two relaxed atomic
//!   stores), `on_after_task_poll` folds the poll into the task's record
//!   under the lock of one of 64 shards chosen by task id, which another
//!   thread holds only if it touches a task of the same shard at the same
//!   instant.
//! - **Spawn and terminate** insert and remove the record in its shard and
//!   count per spawn location with atomics on a per-location counter made
//!   once per call site (call sites are `&'static`, so there are as many as
//!   the code has spawn sites).
//! - **Readers** (the server, once per interval) walk the shards one at a
//!   time; a shard's lock is held for a few hundred microseconds at most
//!   with a million tasks.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::capture::Slot;

mod site;
mod waits;
pub(crate) use site::spawn_as;
pub use site::{AGE_BUCKETS, Site, SplitRules};
use site::{age_bucket, spawned_as};
pub use waits::{Budget, CaptureStats, Coverage, TaskWait, Waits};

const SHARDS: usize = 64;
const LOC_SHARDS: usize = 16;
/// Seconds of per-location history the agent keeps (for a viewer that
/// attaches late to see the trend at once).
pub const HISTORY_SECS: usize = 300;

/// A tokio task id as a number, without formatting it: `Id` hashes as the
/// `u64` it wraps, so a hasher that keeps the last `u64` written reads it.
pub fn task_id(id: tokio::task::Id) -> u64 {
    let mut h = IdHasher(0);
    id.hash(&mut h);
    h.0
}

/// Hashes a `u64` key as itself (task ids are sequential: their low bits
/// spread over the shards and the table as well as any hash would).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Spread sequential ids over hashbrown's top-7-bit control bytes.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// One live task.
#[derive(Clone)]
struct Rec {
    site: &'static Site,
    /// Where the task that spawned it was spawned, if a task spawned it.
    parent_site: Option<&'static Location<'static>>,
    parent: u64,
    /// Nanoseconds since the recorder's epoch.
    created: u64,
    /// End of the last poll (0: never polled).
    last_poll_end: u64,
    polls: u64,
    busy: u64,
    /// The task's link with the agent, when its future is wrapped in
    /// [`crate::capture::Traced`].
    slot: Option<Arc<Slot>>,
}

/// Sites by (location, spawner) address.
type SiteMap = HashMap<(usize, usize), &'static Site>;

/// A worker thread's poll in progress.
#[derive(Default)]
struct WorkerSlot {
    /// The task being polled (0: none).
    task: AtomicU64,
    /// When its poll began (ns since the epoch).
    since: AtomicU64,
}

#[repr(align(64))]
struct Shard(Mutex<IdMap<Rec>>);

/// The record the hooks keep. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    id: usize,
    shards: Box<[Shard]>,
    /// Sites by (location, spawner) address (the spawner 0 unless the
    /// location is split: see `site`).
    sites: Box<[Mutex<SiteMap>]>,
    /// Which locations are split by spawner.
    split: SplitRules,
    workers: Mutex<Vec<Arc<WorkerSlot>>>,
    epoch: Instant,
    /// The coarse clock's reading at `epoch` (see [`coarse_ns`]).
    epoch_coarse: u64,
    epoch_unix_ns: i64,
    history: Mutex<History>,
    /// Polls the agent caused (captures and the real polls after them),
    /// and their time in poll: the agent's own cost.
    synthetic_polls: AtomicU64,
    synthetic_ns: AtomicU64,
    captures_asked: AtomicU64,
}

/// A monotonic clock cheap enough for every poll: Linux's
/// `CLOCK_MONOTONIC_COARSE` (a few ns a read through the vDSO; it advances
/// every scheduler tick, 1–4 ms). Times in poll state, ages and idle times
/// are in seconds, where that resolution is invisible; busy time is the
/// sum of many such differences, right on average (a poll shorter than a
/// tick counts a whole tick with the probability that it spans one).
#[cfg(target_os = "linux")]
fn coarse_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE
    // exists on every Linux since 2.6.32 and this call cannot fail there.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

#[cfg(not(target_os = "linux"))]
fn coarse_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Whether this thread is inside a task's poll under a recorder's hooks.
pub(crate) fn polling_a_task() -> bool {
    POLLING.get().is_some()
}

/// Runs `poll` (a task's poll, or part of it) as a poll of a task placed
/// at `at`: the tasks it spawns record `at` as their spawner's location,
/// not the line that spawned it (a task the agent spawned with
/// [`spawn_as`], whose `spawned_at` is in the agent's source).
pub(crate) fn polling_as<R>(at: &'static Location<'static>, poll: impl FnOnce() -> R) -> R {
    let Some(was) = POLLING.get() else {
        return poll();
    };
    struct Restore(&'static Location<'static>);
    impl Drop for Restore {
        fn drop(&mut self) {
            POLLING.set(Some(self.0));
        }
    }
    let _restore = Restore(was);
    POLLING.set(Some(at));
    poll()
}

/// (recorder id, location address, spawner's location address, its
/// counters).
type CachedSite = (usize, usize, usize, &'static Site);

static NEXT_RECORDER: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// This thread's slot in each recorder it has polled for (a runtime's
    /// worker belongs to one; a thread that calls `block_on` on several
    /// runtimes has one per recorder). Filled on a thread's first poll.
    static SLOTS: RefCell<Vec<(usize, Arc<WorkerSlot>)>> = const { RefCell::new(Vec::new()) };
    /// Where the task being polled on this thread was spawned: a task it
    /// spawns records it as its parent's location.
    static POLLING: Cell<Option<&'static Location<'static>>> = const { Cell::new(None) };
    /// The last few sites this thread spawned at, per recorder: a loop that
    /// spawns from one line finds its counters without a lock.
    static SITE_CACHE: Cell<[Option<CachedSite>; 4]> = const { Cell::new([None; 4]) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::with_split(SplitRules::default())
    }

    /// A recorder that also splits the lines `split` names by spawner.
    pub(crate) fn with_split(split: SplitRules) -> Recorder {
        crate::capture::enable();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        Recorder {
            inner: Arc::new(Inner {
                id: NEXT_RECORDER.fetch_add(1, Ordering::Relaxed),
                shards: (0..SHARDS).map(|_| Shard(Mutex::default())).collect(),
                sites: (0..LOC_SHARDS).map(|_| Mutex::default()).collect(),
                split,
                workers: Mutex::default(),
                epoch: Instant::now(),
                epoch_coarse: coarse_ns(),
                epoch_unix_ns: now,
                history: Mutex::default(),
                synthetic_polls: AtomicU64::new(0),
                synthetic_ns: AtomicU64::new(0),
                captures_asked: AtomicU64::new(0),
            }),
        }
    }

    /// Installs the four hooks on `builder`. A builder holds one callback
    /// per hook, so this replaces any set before; to keep your own, pass
    /// them to [`Recorder::install_with`].
    #[cfg(tokio_unstable)]
    pub fn install(&self, builder: &mut tokio::runtime::Builder) {
        self.install_with(builder, OtherHooks::default());
    }

    /// Installs the hooks, calling `other`'s callbacks after the agent's
    /// own on each event (for services that use the hooks themselves, or
    /// another tool that does, e.g. tokio-metrics' task monitor or a
    /// flight recorder: give the agent their callbacks).
    #[cfg(tokio_unstable)]
    pub fn install_with(&self, builder: &mut tokio::runtime::Builder, other: OtherHooks) {
        let OtherHooks {
            on_spawn,
            on_terminate,
            on_before_poll,
            on_after_poll,
        } = other;
        let r = self.clone();
        builder.on_task_spawn(move |meta| {
            r.spawned(meta.id(), meta.spawned_at());
            if let Some(f) = &on_spawn {
                f(meta);
            }
        });
        let r = self.clone();
        builder.on_task_terminate(move |meta| {
            r.terminated(meta.id());
            if let Some(f) = &on_terminate {
                f(meta);
            }
        });
        let r = self.clone();
        builder.on_before_task_poll(move |meta| {
            r.before_poll(meta.id(), meta.spawned_at());
            if let Some(f) = &on_before_poll {
                f(meta);
            }
        });
        let r = self.clone();
        builder.on_after_task_poll(move |meta| {
            r.after_poll(meta.id());
            if let Some(f) = &on_after_poll {
                f(meta);
            }
        });
    }

    /// Nanoseconds since the recorder began, on the coarse clock: the
    /// hooks read it up to ten times in a short task's life (spawn, each
    /// poll's start and end, termination), and the precise clock costs
    /// ~20 ns a read, more than everything else a poll hook does.
    fn now(&self) -> u64 {
        coarse_ns().saturating_sub(self.inner.epoch_coarse)
    }

    fn shard(&self, id: u64) -> &Mutex<IdMap<Rec>> {
        &self.inner.shards[(id as usize) % SHARDS].0
    }

    /// The counters of a place (see [`site`]): the call site `loc`, and
    /// `spawner` when `split` or the rules split `loc`; made on its first
    /// spawn, found again in a per-thread cache.
    fn site(
        &self,
        loc: &'static Location<'static>,
        split: bool,
        spawner: Option<&'static Location<'static>>,
    ) -> &'static Site {
        let key = loc as *const Location<'static> as usize;
        let by = spawner.map_or(0, |l| l as *const Location<'static> as usize);
        let me = self.inner.id;
        let mut cache = SITE_CACHE.get();
        if let Some((_, _, _, site)) = cache
            .iter()
            .flatten()
            .find(|(r, k, b, _)| *r == me && *k == key && *b == by)
        {
            return site;
        }
        let site = self.site_locked(loc, key, split, spawner, by);
        cache.rotate_right(1);
        cache[0] = Some((me, key, by, site));
        SITE_CACHE.set(cache);
        site
    }

    fn site_locked(
        &self,
        loc: &'static Location<'static>,
        key: usize,
        split: bool,
        spawner: Option<&'static Location<'static>>,
        by: usize,
    ) -> &'static Site {
        let split = split || self.inner.split.splits(loc);
        let by = if split { by } else { 0 };
        let mut sites = lock(&self.inner.sites[(key >> 4) % LOC_SHARDS]);
        sites
            .entry((key, by))
            .or_insert_with(|| Box::leak(Box::new(Site::new(loc, split, spawner))))
    }

    /// This thread's slot (made on its first poll).
    fn with_slot<R>(&self, f: impl FnOnce(&WorkerSlot) -> R) -> R {
        let me = self.inner.id;
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            if let Some((_, s)) = slots.iter().find(|(id, _)| *id == me) {
                return f(s);
            }
            let slot = Arc::new(WorkerSlot::default());
            lock(&self.inner.workers).push(slot.clone());
            slots.push((me, slot));
            f(&slots[slots.len() - 1].1)
        })
    }

    pub fn spawned(&self, id: tokio::task::Id, at: &'static Location<'static>) {
        let id = task_id(id);
        let (at, split) = spawned_as(at);
        let parent = tokio::task::try_id().map_or(0, task_id);
        // The spawning task is the one polled on this thread right now.
        let parent_site = if parent != 0 { POLLING.get() } else { None };
        let site = self.site(at, split, parent_site);
        site.stripe().spawned.fetch_add(1, Ordering::Relaxed);
        let rec = Rec {
            site,
            parent_site,
            parent,
            created: self.now(),
            last_poll_end: 0,
            polls: 0,
            busy: 0,
            slot: None,
        };
        lock(self.shard(id)).insert(id, rec);
    }

    pub fn terminated(&self, id: tokio::task::Id) {
        let id = task_id(id);
        let rec = lock(self.shard(id)).remove(&id);
        if let Some(rec) = rec {
            let lived = self.now().saturating_sub(rec.created);
            let stripe = rec.site.stripe();
            stripe.lifetime_ns.fetch_add(lived, Ordering::Relaxed);
            stripe.lifetimes[age_bucket(lived)].fetch_add(1, Ordering::Relaxed);
            stripe.busy_ns.fetch_add(rec.busy, Ordering::Relaxed);
            stripe.terminated.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn before_poll(&self, id: tokio::task::Id, at: &'static Location<'static>) {
        let id = task_id(id);
        let now = self.now();
        POLLING.set(Some(at));
        self.with_slot(|s| {
            s.since.store(now, Ordering::Relaxed);
            s.task.store(id, Ordering::Release);
        });
    }

    pub fn after_poll(&self, id: tokio::task::Id) {
        let id = task_id(id);
        let now = self.now();
        POLLING.set(None);
        let since = self.with_slot(|s| {
            s.task.store(0, Ordering::Release);
            s.since.load(Ordering::Relaxed)
        });
        // A wrapped task's poll may leave its slot, a capture, or say that
        // the poll was the agent's (see `capture`).
        let mail = crate::capture::take_mail().filter(|m| m.task == id);
        let (adopt, stack, synthetic) = match mail {
            None => (None, None, false),
            Some(m) => {
                let stack = m.captured.and_then(crate::stacks::intern);
                (m.adopt, stack, m.synthetic)
            }
        };
        let busy = now.saturating_sub(since);
        if synthetic {
            self.inner.synthetic_polls.fetch_add(1, Ordering::Relaxed);
            self.inner.synthetic_ns.fetch_add(busy, Ordering::Relaxed);
        }
        if let Some(rec) = lock(self.shard(id)).get_mut(&id) {
            if adopt.is_some() {
                rec.slot = adopt;
            }
            if let (Some(stack), Some(slot)) = (stack, &rec.slot) {
                slot.store(stack);
            }
            if synthetic {
                // Not the task's own activity: its idle time goes on.
                return;
            }
            rec.polls += 1;
            rec.busy += busy;
            rec.last_poll_end = now;
        }
    }

    /// The wall clock of an instant on the recorder's clock.
    fn unix_ns(&self, at: u64) -> i64 {
        self.inner.epoch_unix_ns.saturating_add(at as i64)
    }

    /// Tasks being polled right now: task id → poll start.
    fn in_poll(&self) -> HashMap<u64, u64> {
        lock(&self.inner.workers)
            .iter()
            .filter_map(|s| {
                let task = s.task.load(Ordering::Acquire);
                (task != 0).then(|| (task, s.since.load(Ordering::Relaxed)))
            })
            .collect()
    }

    /// Every spawn location's aggregate, now. Walks every live task once.
    pub fn groups(&self) -> Aggregate {
        let now = self.now();
        let running = self.in_poll();
        let mut by_site: HashMap<usize, Group> = HashMap::new();
        for shard in self.inner.shards.iter() {
            let tasks = lock(&shard.0);
            for (id, rec) in tasks.iter() {
                let key = rec.site as *const Site as usize;
                let g = by_site.entry(key).or_insert_with(|| Group::new(rec.site));
                g.live += 1;
                g.ages[age_bucket(now.saturating_sub(rec.created))] += 1;
                g.polls += rec.polls;
                g.busy_ns += rec.busy;
                g.oldest_created = g.oldest_created.min(rec.created);
                g.waits.add(rec, running.contains_key(id));
                match running.get(id) {
                    Some(&since) => {
                        g.running += 1;
                        g.longest_poll_ns = g.longest_poll_ns.max(now.saturating_sub(since));
                    }
                    None => {
                        let idle_since = if rec.last_poll_end == 0 {
                            rec.created
                        } else {
                            rec.last_poll_end
                        };
                        g.idle += 1;
                        g.earliest_idle = g.earliest_idle.min(idle_since);
                    }
                }
                if let Some(p) = rec.parent_site {
                    *g.parents.entry(p).or_default() += 1;
                } else {
                    g.unparented += 1;
                }
            }
        }
        // Sites with no live task still count (spawned and all done).
        for shard in self.inner.sites.iter() {
            for &site in lock(shard).values() {
                let key = site as *const Site as usize;
                by_site.entry(key).or_insert_with(|| Group::new(site));
            }
        }
        let groups = by_site
            .into_values()
            .map(|mut g| {
                g.spawned = g.site.spawned();
                g.terminated = g.site.terminated();
                g.lifetime_ns = g.site.lifetime_ns();
                g.lifetimes = g.site.lifetimes();
                g
            })
            .collect();
        Aggregate {
            now_unix_ns: self.unix_ns(now),
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
        let running = self.in_poll();
        let mut rows: Vec<TaskRow> = Vec::new();
        for shard in self.inner.shards.iter() {
            let tasks = lock(&shard.0);
            for (&id, rec) in tasks.iter() {
                if id <= after || !rec.site.is(location, split, spawner) {
                    continue;
                }
                rows.push(TaskRow {
                    id,
                    reachable: rec.slot.is_some(),
                    parent: rec.parent,
                    parent_location: rec.parent_site,
                    created_unix_ns: self.unix_ns(rec.created),
                    polls: rec.polls,
                    busy_ns: rec.busy,
                    running_since_unix_ns: running.get(&id).map(|&s| self.unix_ns(s)),
                    idle_since_unix_ns: (!running.contains_key(&id)).then(|| {
                        self.unix_ns(if rec.last_poll_end == 0 {
                            rec.created
                        } else {
                            rec.last_poll_end
                        })
                    }),
                });
            }
        }
        rows.sort_unstable_by_key(|r| r.id);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Page { tasks: rows, next }
    }

    /// Records this second's per-site totals in the history (the server
    /// calls it once a second).
    pub fn sample(&self) {
        let unix_sec = (self.unix_ns(self.now()) / 1_000_000_000) as u64;
        let mut h = lock(&self.inner.history);
        for shard in self.inner.sites.iter() {
            for (&key, site) in lock(shard).iter() {
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

    /// Live tasks recorded (for tests and the bench).
    pub fn live(&self) -> usize {
        self.inner.shards.iter().map(|s| lock(&s.0).len()).sum()
    }

    /// Time since the recorder was made.
    pub fn uptime(&self) -> Duration {
        self.inner.epoch.elapsed()
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
}

#[cfg(tokio_unstable)]
pub type Callback = Box<dyn Fn(&tokio::runtime::TaskMeta<'_>) + Send + Sync>;

#[derive(Default)]
struct History {
    sites: HashMap<(usize, usize), Ring>,
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
    /// Live tasks by age (see [`AGE_BUCKETS`]).
    pub ages: [u64; AGE_BUCKETS],
    /// Summed lifetimes of the terminated tasks.
    pub lifetime_ns: u64,
    /// The terminated tasks by lifetime (see [`AGE_BUCKETS`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_read_as_their_numbers() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("rt");
        rt.block_on(async {
            let h = tokio::spawn(async {});
            let id = h.id();
            assert_eq!(task_id(id).to_string(), id.to_string());
            h.await.expect("join");
        });
    }
}
