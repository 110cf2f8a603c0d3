//! The hooks source: an exact record of every live task, kept by tokio's
//! runtime hooks (`on_task_spawn`, `on_task_terminate`,
//! `on_before_task_poll`, `on_after_task_poll`; `--cfg tokio_unstable`
//! only: no `tracing` feature, no console-subscriber).
//!
//! Cost is what decides the structure (PERFORMANCE.md, "The hooks source
//! near zero", has the measurements behind it):
//! - **The hooks only write down what happened**, in their own thread's
//!   log (see [`log`]): a spawn (the task, the time, its place's and
//!   spawner's numbers; a second slot for its parent when a task spawned
//!   it), the end of a poll (the task, when the poll began and ended), an
//!   end. No lock, no hash lookup, no
//!   read-modify-write, no allocation: a few plain stores and a release
//!   store of the log's length. Before a poll, the hook notes the task and
//!   the time in its thread's "in poll" slot, which readers use for the
//!   running state. A task that ends inside its poll (most do) costs one
//!   event for both.
//! - **The table is made from the logs** (see [`table`]): every live task's
//!   record (48 bytes and its id), the young ones in a ring indexed by the
//!   id's number and the rest in 8 hash maps (see [`tasks`]), and each
//!   place's totals, brought up to date by a fold under one lock that a
//!   runtime's worker never waits for (see [`handoff`]): a worker whose
//!   log fills hands its chunk over and goes on in a spare one, and folds
//!   when it is about to park (tokio's `on_thread_park`: it has nothing
//!   else to do), or, after 4 chunks left unfolded, when nobody else is
//!   folding; a thread that runs no tasks (`block_on` spawning) folds its
//!   full chunk itself when nobody else is folding (the fold then runs on
//!   no worker), else leaves up to 4 chunks to others, then folds them,
//!   waiting for the lock if it must. So memory stays bounded without a
//!   thread of ours and without readers. (A folding thread of our own was
//!   tried: the same CPU, and wall time from 5 % better to 10 % worse on
//!   two busy cores, for the events it reads from the other cores.)
//! - **A wrapped task's waker** (its first `Pending` hands it over in the
//!   poll's mail, a thread-local; see `slot`) stays on that thread, in its
//!   log's stash (see [`log::Stash`]; the poll's event says so, so the
//!   record knows the task is wrapped), and is let go there when the task
//!   ends on it: most of a churn's tasks never put it in the log. It goes
//!   in the log, for the record to keep (see [`crate::slot::Link`]), when
//!   another task's takes its entry, when the thread parks or ends, or
//!   within 100 ms while it runs polls. Mail carries only that, a capture,
//!   or a poll the agent caused.
//! - **Readers fold first**, then read the table under the fold lock (the
//!   server once a second, a scrape, a page): they see every event
//!   published before they asked, exactly.

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

mod handoff;
mod log;
mod places;
mod read;
mod site;
mod table;
mod tasks;
mod waits;
pub use read::{Aggregate, Group, Sample, task_id};
#[cfg(tokio_unstable)]
pub use read::{Callback, OtherHooks};
pub(crate) use site::spawn_as;
pub use site::{Site, SplitRules};
pub(crate) use tasks::number as id_number;
pub use waits::{Budget, CaptureStats, TaskWait, Waits};

use handoff::full;
use log::{Chunk, Event, Local, ThreadLog};
use places::Places;
use site::spawned_as;
use table::Table;

/// Seconds of per-location history the agent keeps (for a viewer that
/// attaches late to see the trend at once).
pub const HISTORY_SECS: usize = 300;

/// The record the hooks keep. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    id: usize,
    /// The folded record (see [`table`]).
    table: Mutex<Table>,
    /// Every thread's log in this recorder.
    logs: Mutex<Vec<Arc<ThreadLog>>>,
    /// Folded chunks, for threads that hand theirs over.
    pool: Mutex<Vec<Arc<Chunk>>>,
    /// Events of threads whose log is gone (a hook run while the thread's
    /// thread-locals are torn down).
    stray: Mutex<Vec<Event>>,
    places: Places,
    /// Which locations are split by spawner.
    split: SplitRules,
    /// The coarse clock's reading when the recorder was made (see
    /// [`coarse_ns`]), and the wall clock's then.
    epoch_coarse: u64,
    epoch_unix_ns: i64,
    history: Mutex<read::History>,
    /// Polls the agent caused (captures and the real polls after them),
    /// and their time in poll: the agent's own cost.
    synthetic_polls: AtomicU64,
    synthetic_ns: AtomicU64,
    captures_asked: AtomicU64,
}

impl Inner {
    /// The wall clock of an instant on the recorder's clock.
    fn unix_ns(&self, at: u64) -> i64 {
        self.epoch_unix_ns.saturating_add(at as i64)
    }
}

/// A monotonic clock cheap enough for every poll: Linux's
/// `CLOCK_MONOTONIC_COARSE` (a few ns a read through the vDSO; it advances
/// every scheduler tick, 1–4 ms). Times in poll state, ages and idle times
/// are in seconds, where that resolution is invisible; busy time is the
/// sum of many such differences, right on average (a poll shorter than a
/// tick counts a whole tick with the probability that it spans one).
#[cfg(target_os = "linux")]
pub fn coarse_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC_COARSE)
}

/// Nanoseconds since boot on `clock`, one of Linux's monotonic clocks.
#[cfg(target_os = "linux")]
#[inline]
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC and
    // CLOCK_MONOTONIC_COARSE exist on every Linux since 2.6.32 and this
    // call cannot fail there.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    // Seconds since boot: no overflow for 584 years, and no branch on
    // every hook.
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// How far a reading of [`coarse_ns`] just taken lags the precise
/// monotonic clock: less than one tick, or more if the thread is
/// preempted between the reads (the recorder's times then read earlier
/// than they were, never later than the wall clock's now).
#[cfg(target_os = "linux")]
fn coarse_lag_ns(coarse: u64) -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC).saturating_sub(coarse)
}

#[cfg(not(target_os = "linux"))]
fn coarse_lag_ns(_coarse: u64) -> u64 {
    0
}

#[cfg(not(target_os = "linux"))]
pub fn coarse_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Whether this thread is inside a task's poll under a recorder's hooks.
#[inline]
pub(crate) fn polling_a_task() -> bool {
    POLL.with(|p| p.at.get().is_some())
}

/// Runs `poll` (a task's poll, or part of it) as a poll of a task placed
/// at `at`: the tasks it spawns record `at` as their spawner's location,
/// not the line that spawned it (a task the agent spawned with
/// [`spawn_as`], whose `spawned_at` is in the agent's source).
pub(crate) fn polling_as<R>(at: &'static Location<'static>, poll: impl FnOnce() -> R) -> R {
    let Some(was) = POLL.with(|p| p.at.get()) else {
        return poll();
    };
    struct Restore(&'static Location<'static>);
    impl Drop for Restore {
        fn drop(&mut self) {
            POLL.with(|p| p.at.set(Some(self.0)));
        }
    }
    let _restore = Restore(was);
    POLL.with(|p| p.at.set(Some(at)));
    poll()
}

static NEXT_RECORDER: AtomicUsize = AtomicUsize::new(1);

/// The poll under way on this thread, as the hooks see it.
struct PollNow {
    /// The task (a task it spawns records it as its parent).
    task: Cell<Option<tokio::task::Id>>,
    /// Where it was spawned (its children's spawner location).
    at: Cell<Option<&'static Location<'static>>>,
    /// When the poll began.
    since: Cell<u64>,
    /// The task ended inside this poll (its terminate hook ran).
    ended: Cell<bool>,
    /// This thread has kept a wrapped task's waker (see `log::Stash`), in
    /// some recorder: a task's end looks there.
    stashed: Cell<bool>,
}

thread_local! {
    static POLL: PollNow = const {
        PollNow {
            task: Cell::new(None),
            at: Cell::new(None),
            since: Cell::new(0),
            ended: Cell::new(false),
            stashed: Cell::new(false),
        }
    };
    /// This thread's log in each recorder it has recorded for (a runtime's
    /// worker belongs to one; a thread that calls `block_on` on several
    /// runtimes has one per recorder). Made on its first event.
    static LOGS: RefCell<Vec<Local>> = const { RefCell::new(Vec::new()) };
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
        crate::slot::enable();
        // The coarse clock's reading is the time of its last tick: the
        // epoch's wall time is taken as that tick's, so that no time of
        // the recorder's (an idle-since) is ever after the wall clock's
        // now (a capture listed at now read as taken before it).
        let (now, coarse) = (crate::wire::unix_now_ns(), coarse_ns());
        let now = now.saturating_sub(coarse_lag_ns(coarse) as i64);
        Recorder {
            inner: Arc::new(Inner {
                id: NEXT_RECORDER.fetch_add(1, Ordering::Relaxed),
                table: Mutex::default(),
                logs: Mutex::default(),
                pool: Mutex::default(),
                stray: Mutex::default(),
                places: Places::default(),
                split,
                epoch_coarse: coarse,
                epoch_unix_ns: now,
                history: Mutex::default(),
                synthetic_polls: AtomicU64::new(0),
                synthetic_ns: AtomicU64::new(0),
                captures_asked: AtomicU64::new(0),
            }),
        }
    }

    /// Installs the four task hooks and `on_thread_park` on `builder`. A
    /// builder holds one callback per hook, so this replaces any set
    /// before; to keep your own, pass them to [`Recorder::install_with`].
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
            on_thread_park,
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
        builder.on_thread_park(move || {
            r.parking();
            if let Some(f) = &on_thread_park {
                f();
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
    /// poll's start and end), and the precise clock costs ~20 ns a read.
    fn now(&self) -> u64 {
        coarse_ns().saturating_sub(self.inner.epoch_coarse)
    }

    /// Runs `f` on this thread's log (made on its first event); `None`
    /// once the thread's locals are torn down.
    #[inline]
    fn with_log<R>(&self, f: impl FnOnce(&mut Local, &Inner) -> R) -> Option<R> {
        let inner = &*self.inner;
        LOGS.try_with(|logs| {
            let mut logs = logs.try_borrow_mut().ok()?;
            let i = match logs.iter().position(|l| l.recorder == inner.id) {
                Some(i) => i,
                None => self.register(&mut logs),
            };
            Some(f(&mut logs[i], inner))
        })
        .ok()
        .flatten()
    }

    #[cold]
    fn register(&self, logs: &mut Vec<Local>) -> usize {
        // Logs of recorders gone: their tables no longer read them.
        logs.retain(|l| Arc::strong_count(&l.log) > 1);
        let local = Local::new(self.inner.id);
        lock(&self.inner.logs).push(local.log.clone());
        logs.push(local);
        logs.len() - 1
    }

    /// The thread is about to park (a runtime's worker with nothing to
    /// run): see [`handoff::parking`].
    pub fn parking(&self) {
        let inner = &*self.inner;
        let now = self.now();
        let _ = LOGS.try_with(|logs| {
            let Ok(mut logs) = logs.try_borrow_mut() else {
                return;
            };
            if let Some(local) = logs.iter_mut().find(|l| l.recorder == inner.id) {
                handoff::parking(local, inner, now);
            }
        });
    }

    pub fn spawned(&self, id: tokio::task::Id, at: &'static Location<'static>) {
        let (at, split) = spawned_as(at);
        // The spawning task is the one polled on this thread right now.
        let (parent, spawner) = POLL.with(|p| (p.task.get(), p.at.get()));
        let spawner = if parent.is_some() { spawner } else { None };
        let now = self.now();
        let done = self.with_log(|local, inner| {
            let (site, loc) = local
                .cache
                .get(&inner.places, &inner.split, at, split, spawner);
            let data = u64::from(site) | (u64::from(loc) << 32);
            match parent {
                Some(p) => local.push(|l| full(l, inner), id, log::SPAWN, now, data, Some(p)),
                None => local.push(|l| full(l, inner), id, log::SPAWN_ROOT, now, data, None),
            }
            local.flush_if_due(|l| full(l, inner), now);
        });
        if done.is_none() {
            let (site, parent_loc) =
                self.inner
                    .places
                    .number(&self.inner.split, at, split, spawner);
            self.stray(Event::Spawn {
                id,
                at: now,
                site,
                parent_loc,
                parent,
            });
        }
    }

    pub fn terminated(&self, id: tokio::task::Id) {
        let (in_its_poll, stashed) = POLL.with(|p| {
            let mine = p.task.get() == Some(id);
            if mine {
                p.ended.set(true);
            }
            (mine, p.stashed.get())
        });
        // A task ending inside its poll is recorded with that poll's end;
        // the waker this thread kept for it goes now, while tokio still
        // holds the task (let go after, it could be the task's last
        // reference, and free the task here, away from its spawner).
        if in_its_poll {
            if stashed {
                drop(self.with_log(|local, _| local.stash.take(id)));
            }
            return;
        }
        let at = self.now();
        let done = self.with_log(|local, inner| {
            local.push(|l| full(l, inner), id, log::TERM, at, 0, None);
            let waker = local.stash.take(id);
            // A thread that ends tasks but polls none (a blocking thread,
            // once a worker that called `block_in_place`) keeps no waker
            // past its time either.
            local.flush_if_due(|l| full(l, inner), at);
            waker
        });
        match done {
            None => self.stray(Event::Term { id, at }),
            Some(waker) => drop(waker),
        }
    }

    pub fn before_poll(&self, id: tokio::task::Id, at: &'static Location<'static>) {
        let now = self.now();
        POLL.with(|p| {
            p.task.set(Some(id));
            p.at.set(Some(at));
            p.since.set(now);
            p.ended.set(false);
        });
        self.with_log(|local, _| local.log.enter(id, now));
    }

    pub fn after_poll(&self, id: tokio::task::Id) {
        let now = self.now();
        let (since, ended) = POLL.with(|p| {
            p.task.set(None);
            p.at.set(None);
            (p.since.get(), p.ended.get())
        });
        // A wrapped task's poll may leave its waker, a capture, or say that
        // the poll was the agent's (see `capture`): rare, and apart.
        if crate::slot::has_mail() {
            // Its first `Pending`: the waker stays on this thread (the stash).
            if let Some(waker) = crate::slot::take_adoption(id) {
                return self.after_poll_adopting(id, now, since, ended, waker);
            }
            return self.after_poll_with_mail(id, now, since, ended);
        }
        let kind = if ended { log::POLL_END } else { log::POLL };
        let done = self.with_log(|local, inner| {
            local.log.leave();
            local.push(|l| full(l, inner), id, kind, now, since, None);
            local.flush_if_due(|l| full(l, inner), now);
        });
        if done.is_none() {
            self.stray_poll(id, since, now, ended);
        }
    }

    /// A wrapped task's poll that handed its waker over: the poll; the
    /// waker stays in this thread's stash (unless the task ended in it),
    /// and the one whose entry it takes goes in the log.
    fn after_poll_adopting(
        &self,
        id: tokio::task::Id,
        now: u64,
        since: u64,
        ended: bool,
        waker: std::task::Waker,
    ) {
        let mut waker = Some(waker);
        let done = self.with_log(|local, inner| {
            local.log.leave();
            if ended {
                local.push(|l| full(l, inner), id, log::POLL_END, now, since, None);
                return;
            }
            // The record knows the task is wrapped (and reachable) from
            // this poll on; its waker follows when it leaves the stash.
            let data = since | log::KEPT;
            local.push(|l| full(l, inner), id, log::POLL, now, data, None);
            POLL.with(|p| p.stashed.set(true));
            if let Some(w) = waker.take() {
                local.keep(|l| full(l, inner), id, w, now);
            }
        });
        drop(waker);
        if done.is_none() {
            self.stray_poll(id, since, now, ended);
        }
    }

    #[cold]
    #[inline(never)]
    fn after_poll_with_mail(&self, id: tokio::task::Id, now: u64, since: u64, ended: bool) {
        let mail = crate::slot::take_mail().filter(|m| m.task == Some(id));
        let synthetic = mail.as_ref().is_some_and(|m| m.synthetic);
        if synthetic {
            let busy = now.saturating_sub(since);
            self.inner.synthetic_polls.fetch_add(1, Ordering::Relaxed);
            self.inner.synthetic_ns.fetch_add(busy, Ordering::Relaxed);
        }
        let done = self.with_log(|local, inner| {
            local.log.leave();
            if let Some(m) = mail
                && (m.waker.is_some() || m.captured.is_some())
            {
                lock(&local.log.mail).push_back(m);
                local.push(|l| full(l, inner), id, log::MAIL, now, 0, None);
            }
            match (synthetic, ended) {
                // Not the task's own activity: its idle time goes on.
                (true, false) => {}
                (true, true) => local.push(|l| full(l, inner), id, log::TERM, now, 0, None),
                (false, _) => local.push(
                    |l| full(l, inner),
                    id,
                    if ended { log::POLL_END } else { log::POLL },
                    now,
                    since,
                    None,
                ),
            }
        });
        match (done, synthetic, ended) {
            (Some(()), _, _) => {}
            (None, false, _) => self.stray_poll(id, since, now, ended),
            // The agent's poll, in which the task ended: its end still
            // counts.
            (None, true, true) => self.stray(Event::Term { id, at: now }),
            (None, true, false) => {}
        }
    }

    #[cold]
    fn stray(&self, e: Event) {
        lock(&self.inner.stray).push(e);
    }

    /// A poll whose thread has no log any more (its locals are torn down).
    #[cold]
    fn stray_poll(&self, id: tokio::task::Id, start: u64, end: u64, ended: bool) {
        self.stray(Event::Poll {
            id,
            start,
            end,
            ended,
            kept: false,
        });
    }

    /// Folds every event published so far into the table, and holds it.
    fn table(&self) -> MutexGuard<'_, Table> {
        let mut t = lock(&self.inner.table);
        t.fold(&self.inner);
        t
    }

    /// Live tasks recorded (for tests and the bench).
    pub fn live(&self) -> usize {
        self.table().tasks.len()
    }
}

/// Real task ids, in the order tokio made them, for the hooks' tests (one
/// test at a time makes them: ids come from one counter, and a churn in
/// `tasks`' tests wants its own close together).
#[cfg(test)]
pub(crate) fn test_ids(n: usize) -> Vec<tokio::task::Id> {
    static ONE: Mutex<()> = Mutex::new(());
    let _one = lock(&ONE);
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("rt")
        .block_on(async { (0..n).map(|_| tokio::spawn(async {}).id()).collect() })
}

/// [`test_ids`] whose numbers follow one another (tests that spawn
/// meanwhile spread them: made again until none did), for tests whose
/// tasks must not share a stash's entry.
#[cfg(test)]
pub(crate) fn consecutive_ids(n: usize) -> Vec<tokio::task::Id> {
    (0..100)
        .map(|_| test_ids(n))
        .find(|ids| {
            ids.windows(2)
                .all(|w| tasks::number(&w[1]) == tasks::number(&w[0]) + 1)
        })
        .expect("consecutive ids in 100 tries")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task polled on one thread and then ended in a poll on another:
    /// both polls' time counts, whichever thread's log a fold reads
    /// first. (A fold reads the logs in the order their threads first
    /// recorded; the end, read first, once dropped the earlier poll as
    /// belonging to no task.)
    #[test]
    fn a_task_ended_on_another_thread_keeps_its_earlier_polls_time() {
        let ids = test_ids(2);
        let (other, task) = (ids[0], ids[1]);
        let recorder = Recorder::new();
        let r = &recorder;
        let at = Location::caller();
        let poll = move |id| {
            r.before_poll(id, at);
            let started = coarse_ns();
            // Long enough for the coarse clock to see it.
            while coarse_ns() < started + 30_000_000 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        };
        std::thread::scope(|s| {
            let (to_ender, ender) = std::sync::mpsc::channel::<()>();
            let (to_main, main) = std::sync::mpsc::channel::<()>();
            // The thread that will end the task records first: its log is
            // read first.
            let end = s.spawn(move || {
                r.spawned(other, at);
                to_main.send(()).unwrap();
                ender.recv().unwrap();
                poll(task);
                r.terminated(task);
                r.after_poll(task);
            });
            main.recv().unwrap();
            s.spawn(|| {
                r.spawned(task, at);
                let _ = r.groups(); // folded: the task is in the table
                poll(task);
                r.after_poll(task);
            })
            .join()
            .unwrap();
            to_ender.send(()).unwrap();
            end.join().unwrap();
        });
        // Two folds: what a fold keeps pending is dropped by the next.
        let _ = r.groups();
        let g = r.groups();
        let site = g
            .groups
            .iter()
            .find(|g| g.terminated == 1)
            .expect("the ended task's place")
            .site;
        assert!(
            site.terminated_busy_ns() >= 50_000_000,
            "both polls' time: {} ms",
            site.terminated_busy_ns() / 1_000_000
        );
    }

    /// The slots published, and not yet folded, in every thread's log
    /// (without folding).
    fn unfolded(r: &Recorder) -> Vec<usize> {
        lock(&r.inner.logs)
            .iter()
            .map(|l| {
                let c = lock(&l.chunks);
                c.full.iter().map(|c| c.capacity()).sum::<usize>()
                    + c.current.as_ref().map_or(0, |c| c.unfolded())
            })
            .collect()
    }

    /// A burst of short tasks, then nothing to run: the workers fold what
    /// they left as they park, so no log holds more than a park's
    /// threshold of events, nor a chunk handed over, with no reader ever
    /// asking. (Without the fold at park, the chunks a worker hands over
    /// wait for a reader.)
    #[cfg(tokio_unstable)]
    #[test]
    fn workers_fold_what_they_left_when_they_park() {
        let recorder = Recorder::new();
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(2);
        recorder.install(&mut builder);
        let rt = builder.build().expect("runtime");
        // Spawned from a task: every event is in a worker's log.
        rt.block_on(async {
            tokio::spawn(async {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..20_000 {
                    set.spawn(async {
                        for _ in 0..3 {
                            tokio::task::yield_now().await;
                        }
                    });
                }
                while set.join_next().await.is_some() {}
            })
            .await
            .expect("spawner");
        });
        // Nothing runs now: the workers park, and fold as they do. (A
        // worker that parks while the other folds leaves its events to
        // that fold, which may have read its log already: one tiny task
        // later, it parks again, alone.)
        for nudge in 0.. {
            let left = unfolded(&recorder);
            if left.iter().all(|&n| n < handoff::PARK_FOLD + 2) {
                break;
            }
            assert!(nudge < 50, "events left unfolded in the logs: {left:?}");
            std::thread::sleep(std::time::Duration::from_millis(5));
            rt.block_on(async { tokio::spawn(async {}).await.expect("task") });
        }
        // Everything a reader sees is exact (a task's join can be seen
        // just before its end is published).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while recorder.live() > 0 {
            assert!(std::time::Instant::now() < deadline, "tasks left live");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// A thread that runs no tasks (here the test's own: no runtime's
    /// worker) folds its full chunk itself when nobody else is folding,
    /// even with spare chunks it could hand it over for: its events cost
    /// the runtime's workers nothing. (Handed over, they waited for a
    /// worker's fold.)
    #[test]
    fn a_thread_that_runs_no_tasks_folds_its_own_full_chunk() {
        let recorder = Recorder::new();
        // Spares, as a runtime's workers leave them in the pool.
        lock(&recorder.inner.pool).extend((0..4).map(|_| Chunk::new(log::SLOTS)));
        let ids = test_ids(log::FIRST + 2 * log::SLOTS);
        let at = Location::caller();
        for &id in &ids {
            recorder.spawned(id, at);
        }
        let waiting = LOGS.with(|logs| {
            let logs = logs.borrow();
            let mine = logs.iter().find(|l| l.recorder == recorder.inner.id);
            mine.map(Local::waiting)
        });
        assert_eq!(waiting, Some(0), "chunks handed over");
        // Folded as each chunk filled, with no reader asking: all but the
        // last chunk's tasks are in the table.
        let folded = lock(&recorder.inner.table).tasks.len();
        assert!(folded >= log::FIRST + log::SLOTS, "{folded} folded");
    }

    /// A waker whose count says who holds it: `Arc::strong_count` is 1
    /// plus the wakers made of it and not let go.
    fn counted() -> Arc<crate::slot::test_wakers::Flag> {
        Arc::new(crate::slot::test_wakers::Flag)
    }

    /// A wrapped task's waker in a log no fold read (its recorder gone) is
    /// let go with the log.
    #[test]
    fn a_waker_in_a_log_nobody_folded_is_let_go() {
        let ids = test_ids(1);
        let recorder = Recorder::new();
        let waker = counted();
        let at = Location::caller();
        // A thread of its own, joined: its locals (its log) are gone then.
        let (r, w) = (recorder.clone(), std::task::Waker::from(waker.clone()));
        std::thread::spawn(move || {
            r.spawned(ids[0], at);
            r.before_poll(ids[0], at);
            r.after_poll_adopting(ids[0], 1, 0, false, w);
        })
        .join()
        .expect("thread");
        assert_eq!(Arc::strong_count(&waker), 2, "the log holds one");
        drop(recorder);
        assert_eq!(Arc::strong_count(&waker), 1, "let go with the log");
    }

    /// A wrapped task that ends on the thread where it first waited never
    /// puts its waker in the log: the thread kept it, and lets it go at
    /// the task's end (most of a churn's tasks).
    #[test]
    fn a_wrapped_task_that_ends_where_it_waited_never_logs_its_waker() {
        let id = test_ids(1)[0];
        let recorder = Recorder::new();
        let at = Location::caller();
        let waker = counted();
        recorder.spawned(id, at);
        recorder.before_poll(id, at);
        recorder.after_poll_adopting(id, 1, 0, false, std::task::Waker::from(waker.clone()));
        assert_eq!(Arc::strong_count(&waker), 2, "kept on its thread");
        recorder.before_poll(id, at);
        recorder.terminated(id);
        recorder.after_poll(id);
        assert_eq!(Arc::strong_count(&waker), 1, "let go at its end");
        // Its spawn and two polls, and no adoption.
        assert_eq!(unfolded(&recorder), vec![3]);
        let _ = recorder.groups();
        assert_eq!(lock(&recorder.inner.table).strays, 0);
    }

    /// Whether the record holds task `id`'s waker (or its slot): `false`
    /// while its thread keeps it; `None` for a task not wrapped.
    fn waker_in_table(r: &Recorder, id: tokio::task::Id) -> Option<bool> {
        let mut t = r.table();
        let link = t.tasks.get_mut(&id)?.link.as_ref()?;
        Some(!link.is_kept())
    }

    /// A thread keeps a wrapped task's waker until it parks, or, while it
    /// runs polls, for at most `log::STASH_FOR`: then the recorder has it,
    /// and can ask the task for a capture. The task counts as wrapped
    /// (reachable) from its first `Pending` on.
    #[test]
    fn kept_wakers_reach_the_recorder_at_a_park_or_soon() {
        let ids = consecutive_ids(4);
        let recorder = Recorder::new();
        let at = Location::caller();
        let wakers: Vec<_> = (0..3).map(|_| counted()).collect();
        for &id in &ids {
            recorder.spawned(id, at);
        }
        for (&id, w) in ids.iter().zip(&wakers[..2]) {
            recorder.before_poll(id, at);
            recorder.after_poll_adopting(id, 1, 0, false, std::task::Waker::from(w.clone()));
        }
        assert_eq!(waker_in_table(&recorder, ids[0]), Some(false), "kept");
        assert_eq!(waker_in_table(&recorder, ids[3]), None, "not wrapped");
        let mut wrapped = recorder.wrapped(10);
        wrapped.sort_unstable();
        assert_eq!(wrapped, vec![task_id(ids[0]), task_id(ids[1])]);
        recorder.parking();
        assert_eq!(waker_in_table(&recorder, ids[0]), Some(true));
        assert_eq!(waker_in_table(&recorder, ids[1]), Some(true));
        assert_eq!(recorder.request_captures(waits::Budget::default()).len(), 2);
        // A busy thread: its polls put the waker in the log once it has
        // kept it for a while.
        let busy = ids[2];
        recorder.before_poll(busy, at);
        recorder.after_poll_adopting(busy, 1, 0, false, std::task::Waker::from(wakers[2].clone()));
        let kept_at = std::time::Instant::now();
        assert_eq!(waker_in_table(&recorder, busy), Some(false));
        let deadline = kept_at + std::time::Duration::from_secs(10);
        while waker_in_table(&recorder, busy) == Some(false) {
            assert!(
                std::time::Instant::now() < deadline,
                "still kept after 10 s"
            );
            recorder.before_poll(ids[3], at);
            recorder.after_poll(ids[3]);
            std::thread::yield_now();
        }
        let kept_for = kept_at.elapsed();
        assert!(
            kept_for >= std::time::Duration::from_millis(90),
            "kept {kept_for:?}"
        );
        assert_eq!(
            waker_in_table(&recorder, busy),
            Some(true),
            "put in the log"
        );
        assert_eq!(Arc::strong_count(&wakers[2]), 2, "the recorder holds it");
    }

    /// A waker whose adoption a fold reads before its task's spawn waits
    /// for the spawn, then goes to the record and leaves with the task;
    /// one for a task never spawned under the hooks is let go. Each is
    /// let go once.
    #[test]
    fn an_adoption_read_before_its_spawn_waits_and_a_strays_is_let_go() {
        let ids = test_ids(3);
        let (first, task, never) = (ids[0], ids[1], ids[2]);
        let recorder = Recorder::new();
        let at = Location::caller();
        let (kept, stray) = (counted(), counted());
        let (to_adopter, adopter) = std::sync::mpsc::channel::<()>();
        let (to_main, main) = std::sync::mpsc::channel::<()>();
        let r = recorder.clone();
        let (k, st) = (
            std::task::Waker::from(kept.clone()),
            std::task::Waker::from(stray.clone()),
        );
        // This thread's log is read first: its adoption comes before the
        // spawn, which is in the other thread's log.
        let adopting = std::thread::spawn(move || {
            r.spawned(first, at);
            to_main.send(()).expect("main");
            adopter.recv().expect("go");
            r.before_poll(task, at);
            r.after_poll_adopting(task, 2, 1, false, k);
            r.before_poll(never, at);
            r.after_poll_adopting(never, 2, 1, false, st);
        });
        main.recv().expect("registered");
        let r = recorder.clone();
        std::thread::spawn(move || {
            r.spawned(task, at);
            to_adopter.send(()).expect("adopter");
        })
        .join()
        .expect("spawner");
        adopting.join().expect("adopter");
        let _ = recorder.groups();
        assert_eq!(Arc::strong_count(&kept), 2, "the record holds the waker");
        let _ = recorder.groups();
        assert_eq!(Arc::strong_count(&stray), 1, "the stray's waker is let go");
        recorder.terminated(task);
        let _ = recorder.groups();
        assert_eq!(Arc::strong_count(&kept), 1, "it leaves with its task");
    }

    /// A service's own `on_thread_park`, given to the agent, still runs.
    #[cfg(tokio_unstable)]
    #[test]
    fn the_services_own_park_callback_still_runs() {
        let parks = Arc::new(AtomicUsize::new(0));
        let p = parks.clone();
        let recorder = Recorder::new();
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(1);
        recorder.install_with(
            &mut builder,
            OtherHooks {
                on_thread_park: Some(Box::new(move || {
                    p.fetch_add(1, Ordering::Relaxed);
                })),
                ..OtherHooks::default()
            },
        );
        let rt = builder.build().expect("runtime");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while parks.load(Ordering::Relaxed) == 0 {
            assert!(std::time::Instant::now() < deadline, "never called");
            rt.block_on(async { tokio::spawn(async {}).await.expect("task") });
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

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
